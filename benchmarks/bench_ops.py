"""Benchmark filtered_lrelu (forward + backward) against the zero-stuffing oracle at StyleGAN3-T 256x256 layer shapes."""

import argparse
import math
import os
import statistics
import sys
import time

_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (_root, os.path.join(_root, 'third_party', 'stylegan3')):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import numpy as np
import scipy.signal
import torch
from torch_utils.ops import filtered_lrelu
from tests import oracle_ops

#----------------------------------------------------------------------------

def stylegan3_layers(
    img_resolution      = 256,          # Output resolution R.
    num_layers          = 14,           # Synthesis layers, excluding the input.
    num_critical        = 2,            # Critically sampled layers at the end.
    first_cutoff        = 2,            # Cutoff of the first layer.
    first_stopband      = 2 ** 2.1,     # Stopband of the first layer.
    last_stopband_rel   = 2 ** 0.3,     # Stopband of the last layer, relative to R/2.
    margin_size         = 10,           # Extra pixels around the image at each layer.
    channel_base        = 32768,        # Channel count numerator.
    channel_max         = 512,          # Max channels per layer.
    conv_kernel         = 3,            # Convolution kernel (stylegan3-t).
    filter_size         = 6,            # Filter taps per up/down factor.
    lrelu_upsampling    = 2,            # Oversampling of the nonlinearity.
):
    """filtered_lrelu arguments of every synthesis layer, from the StyleGAN3 layer-schedule formulas."""
    R, L = img_resolution, num_layers
    e = [min(i / (L - num_critical), 1) for i in range(L + 1)]
    cutoffs = [first_cutoff * (R / 2 / first_cutoff) ** t for t in e]
    stopbands = [first_stopband * (R / 2 * last_stopband_rel / first_stopband) ** t for t in e]
    rates = [2 ** math.ceil(math.log2(min(2 * s, R))) for s in stopbands]
    half_widths = [max(s, r / 2) - c for s, r, c in zip(stopbands, rates, cutoffs)]
    sizes = [r + 2 * margin_size for r in rates[:-2]] + [R, R]
    channels = [int(np.rint(min(channel_base / 2 / c, channel_max))) for c in cutoffs[:-1]] + [3]

    layers = []
    for i in range(L + 1):
        p = max(i - 1, 0)
        is_torgb = (i == L)
        k = 1 if is_torgb else conv_kernel
        tmp_rate = max(rates[p], rates[i]) * (1 if is_torgb else lrelu_upsampling)
        up = int(np.rint(tmp_rate / rates[p]))
        down = int(np.rint(tmp_rate / rates[i]))
        up_taps = filter_size * up if up > 1 and not is_torgb else 1
        down_taps = filter_size * down if down > 1 and not is_torgb else 1
        fu = _lowpass(up_taps, cutoffs[p], 2 * half_widths[p], tmp_rate)
        fd = _lowpass(down_taps, cutoffs[i], 2 * half_widths[i], tmp_rate)
        pad_total = (sizes[i] - 1) * down + 1 - (sizes[p] + k - 1) * up + up_taps + down_taps - 2
        pad_lo = (pad_total + up) // 2
        pad_hi = pad_total - pad_lo
        layers.append(dict(
            name=f'L{i}_{sizes[i]}_{channels[i]}', channels=channels[i], size=sizes[p] + k - 1,
            kwargs=dict(fu=fu, fd=fd, up=up, down=down, padding=[pad_lo, pad_hi, pad_lo, pad_hi],
                        gain=(1 if is_torgb else math.sqrt(2)), slope=(1 if is_torgb else 0.2), clamp=256)))
    return layers

#----------------------------------------------------------------------------

def time_fwd_bwd(fn, x, b, kwargs, repeats):
    """Median seconds of one forward + backward (w.r.t. x and b), after a warm-up call."""
    times = []
    for i in range(repeats + 1):
        xg = x.detach().requires_grad_(True)
        bg = b.detach().requires_grad_(True)
        if x.is_cuda:
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        y = fn(xg, b=bg, **kwargs)
        y.backward(torch.ones_like(y))
        if x.is_cuda:
            torch.cuda.synchronize()
        if i > 0:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('--batch', type=int, default=1, help='Batch size.')
    parser.add_argument('--channel-scale', type=float, default=1.0, help='Multiply channel counts (shrink on CPU).')
    parser.add_argument('--repeats', type=int, default=5, help='Timed repeats per layer (median).')
    parser.add_argument('--threads', type=int, default=None, help='CPU threads (default: torch default).')
    parser.add_argument('--device', default=('cuda' if torch.cuda.is_available() else 'cpu'), help='cpu or cuda.')
    args = parser.parse_args()
    device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    print(f'device={device} threads={torch.get_num_threads()} batch={args.batch} channel_scale={args.channel_scale} repeats={args.repeats}')
    print(f'{"layer":<14} {"input shape":<22} {"up/dn":>5} {"project ms":>11} {"oracle ms":>10} {"speed-up":>9}')

    total_ours = total_ref = 0
    for layer in stylegan3_layers():
        C = max(int(round(layer['channels'] * args.channel_scale)), 1)
        kwargs = dict(layer['kwargs'])
        kwargs['fu'] = kwargs['fu'].to(device) if kwargs['fu'] is not None else None
        kwargs['fd'] = kwargs['fd'].to(device) if kwargs['fd'] is not None else None
        x = torch.randn([args.batch, C, layer['size'], layer['size']], device=device)
        b = torch.randn([C], device=device)
        t_ours = time_fwd_bwd(filtered_lrelu.filtered_lrelu, x, b, kwargs, args.repeats)
        t_ref = time_fwd_bwd(oracle_ops.filtered_lrelu_ref, x, b, kwargs, args.repeats)
        total_ours += t_ours
        total_ref += t_ref
        print(f'{layer["name"]:<14} {str(list(x.shape)):<22} {kwargs["up"]}/{kwargs["down"]:<3} {t_ours * 1e3:11.2f} {t_ref * 1e3:10.2f} {t_ref / t_ours:8.2f}x')
    print(f'{"total":<14} {"":<22} {"":>5} {total_ours * 1e3:11.2f} {total_ref * 1e3:10.2f} {total_ref / total_ours:8.2f}x')

#----------------------------------------------------------------------------

def _lowpass(numtaps, cutoff, width, fs):
    """Kaiser-window low-pass FIR with unit DC gain (the StyleGAN3 separable design); 1 tap -> None."""
    if numtaps == 1:
        return None
    return torch.as_tensor(scipy.signal.firwin(numtaps=numtaps, cutoff=cutoff, width=width, fs=fs), dtype=torch.float32)

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
