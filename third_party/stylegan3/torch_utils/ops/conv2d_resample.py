"""2-D convolution with optional FIR up/downsampling (StyleGAN2 layers), choosing the cheapest exact form."""

import numbers
import torch

from . import conv2d_gradfix
from . import upfirdn2d
from .upfirdn2d import _parse_padding, _get_filter_size

#----------------------------------------------------------------------------

def conv2d_resample(x, w, f=None, up=1, down=1, padding=0, groups=1, flip_weight=True, flip_filter=False):
    """Upsample (zero insertion + f, gain up**2), pad, convolve with w, downsample (f, down).

    x: [N, I, H, W]; w: [O, I/groups, kh, kw] in x's dtype; f: float32 filter from setup_filter() or None.
    Padding is w.r.t. the upsampled image. `flip_weight=True` is a correlation (like F.conv2d), False a
    true convolution. Filtering is linear and channel-wise, so it commutes with the convolution; each
    case below uses that to run at the lowest sample rate and channel count, with identical results.
    """
    if x.ndim != 4 or w.ndim != 4 or w.dtype != x.dtype:
        raise ValueError('conv2d_resample: x and w must be 4-D tensors of the same dtype')
    if f is not None and (f.ndim not in (1, 2) or f.dtype != torch.float32):
        raise ValueError('conv2d_resample: f must be a 1-D or 2-D float32 filter or None')
    if not (isinstance(up, numbers.Integral) and up >= 1 and isinstance(down, numbers.Integral) and down >= 1):
        raise ValueError(f'conv2d_resample: up and down must be ints >= 1, got {up!r}, {down!r}')
    up, down = int(up), int(down)
    out_channels, in_channels_per_group, kh, kw = w.shape
    fw, fh = _get_filter_size(f)
    px0, px1, py0, py1 = _parse_padding(padding)

    # Padding that centres the resampling filter.
    if up > 1:
        px0 += (fw + up - 1) // 2
        px1 += (fw - up) // 2
        py0 += (fh + up - 1) // 2
        py1 += (fh - up) // 2
    if down > 1:
        px0 += (fw - down + 1) // 2
        px1 += (fw - down) // 2
        py0 += (fh - down + 1) // 2
        py1 += (fh - down) // 2

    # 1x1 kernel + downsampling: filter and decimate first, then mix channels on the small image.
    if kw == 1 and kh == 1 and (down > 1 and up == 1):
        x = upfirdn2d.upfirdn2d(x=x, f=f, down=down, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv2d(x, w, groups=groups, flip_weight=flip_weight)

    # 1x1 kernel + upsampling: mix channels on the small image, then upsample.
    if kw == 1 and kh == 1 and (up > 1 and down == 1):
        x = _conv2d(x, w, groups=groups, flip_weight=flip_weight)
        return upfirdn2d.upfirdn2d(x=x, f=f, up=up, padding=[px0, px1, py0, py1], gain=up ** 2, flip_filter=flip_filter)

    # Downsampling only: filter at full rate, then a strided convolution computes only the kept samples.
    if down > 1 and up == 1:
        x = upfirdn2d.upfirdn2d(x=x, f=f, padding=[px0, px1, py0, py1], flip_filter=flip_filter)
        return _conv2d(x, w, stride=down, groups=groups, flip_weight=flip_weight)

    # Upsampling only: a strided transposed convolution does zero insertion + convolution in one go;
    # its output is the full convolution, so the remaining padding is relative to that, then filter.
    if up > 1 and down == 1:
        wt = w if not flip_weight else w.flip([2, 3])
        wt = wt.reshape(groups, out_channels // groups, in_channels_per_group, kh, kw) # [groups, O/groups, I/groups, kh, kw]
        wt = wt.transpose(1, 2).reshape(groups * in_channels_per_group, out_channels // groups, kh, kw)  # [I, O/groups, kh, kw]
        x = conv2d_gradfix.conv_transpose2d(input=x, weight=wt, stride=up, groups=groups)
        p = [px0 - (kw - 1), px1 - kw + up, py0 - (kh - 1), py1 - kh + up]
        return upfirdn2d.upfirdn2d(x=x, f=f, padding=p, gain=up ** 2, flip_filter=flip_filter)

    # No resampling: a plain convolution.
    if up == 1 and down == 1:
        if px0 == px1 and py0 == py1 and px0 >= 0 and py0 >= 0:
            return _conv2d(x, w, padding=[py0, px0], groups=groups, flip_weight=flip_weight)

    # Generic path.
    x = upfirdn2d.upfirdn2d(x=x, f=(f if up > 1 else None), up=up, padding=[px0, px1, py0, py1], gain=up ** 2, flip_filter=flip_filter)
    x = _conv2d(x, w, groups=groups, flip_weight=flip_weight)
    if down > 1:
        x = upfirdn2d.upfirdn2d(x=x, f=f, down=down, flip_filter=flip_filter)
    return x

#----------------------------------------------------------------------------

def _conv2d(x, w, stride=1, padding=0, groups=1, flip_weight=True):
    """conv2d as correlation (flip_weight=True) or true convolution (False)."""
    if not flip_weight:
        w = w.flip([2, 3])
    return conv2d_gradfix.conv2d(input=x, weight=w, stride=stride, padding=padding, groups=groups)

#----------------------------------------------------------------------------
