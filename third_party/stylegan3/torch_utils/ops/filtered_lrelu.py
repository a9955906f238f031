"""Filtered leaky ReLU of Alias-Free GAN (StyleGAN3): upsample, lrelu, clamp, downsample in PyTorch, or fused in Triton."""

import math
import numbers
import torch
import torch.nn.functional as F

from . import bias_act
from . import triton_select
from . import upfirdn2d

#----------------------------------------------------------------------------

def filtered_lrelu(x, fu=None, fd=None, b=None, up=1, down=1, padding=0, gain=math.sqrt(2), slope=0.2, clamp=None, flip_filter=False, impl='cuda'):
    """Bias -> upsample (fu, gain up**2) -> pad -> lrelu * gain -> clamp -> downsample (fd), per channel.

    x: [N, C, H, W]; fu/fd: float32 1-D (separable), 2-D or None; b: [C] or None. Padding is w.r.t. the
    upsampled image. Output width (W*up + px0 + px1 - (fu_w-1) - (fd_w-1) + (down-1)) // down.
    The activation gain rides on the upsampling filter. On CUDA (`impl='cuda'`) both resamplings are
    upfirdn2d's banded matrix products and the backward keeps a one-byte code per upsampled sample
    instead of the activation's output; elsewhere polyphase upsampling and strided downsampling.
    With `impl='triton'` (or STYLESV_OPS=triton), where Triton runs, separable filters (1-D or 2-D of rank 1)
    in float16/32 take the fused Triton kernels of filtered_lrelu_triton; other calls the paths above.
    Gradients of any order w.r.t. x and b.
    """
    if not isinstance(x, torch.Tensor) or x.ndim != 4:
        raise ValueError('filtered_lrelu: x must be a 4-D [N, C, H, W] tensor')
    if not (isinstance(up, numbers.Integral) and up >= 1 and isinstance(down, numbers.Integral) and down >= 1):
        raise ValueError(f'filtered_lrelu: up and down must be ints >= 1, got up={up!r}, down={down!r}')
    up, down = int(up), int(down)
    if not gain > 0 or not slope >= 0 or (clamp is not None and not clamp >= 0):
        raise ValueError(f'filtered_lrelu: need gain > 0, slope >= 0, clamp None or >= 0; got {gain}, {slope}, {clamp}')
    px0, px1, py0, py1 = upfirdn2d._parse_padding(padding)
    if b is not None and (not isinstance(b, torch.Tensor) or b.shape != (x.shape[1],)):
        raise ValueError('filtered_lrelu: b must be a [C] tensor')

    padding = _trimmed_padding(x.shape, fu, fd, up, down, (px0, px1, py0, py1))
    if triton_select.use_triton(x, impl):
        from . import filtered_lrelu_triton
        if filtered_lrelu_triton.supports(x, fu, fd):
            keep_code = torch.is_grad_enabled() and (x.requires_grad or (b is not None and b.requires_grad))
            return _FilteredLReLUTriton.apply(x, b, fu, fd, (up, down, padding, gain, slope, clamp, flip_filter, impl), keep_code)
    return _filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter, impl)

#----------------------------------------------------------------------------

def _trimmed_padding(x_shape, fu, fd, up, down, padding):
    """Padding (x0, x1, y0, y1) with the end trimmed of upsampled samples that no output depends on (the
    ragged end left by the decimation)."""
    px0, px1, py0, py1 = padding
    fu_w, fu_h = upfirdn2d._get_filter_size(fu)
    fd_w, fd_h = upfirdn2d._get_filter_size(fd)
    W_out = (x_shape[3] * up + px0 + px1 - (fu_w - 1) - (fd_w - 1) + (down - 1)) // down
    H_out = (x_shape[2] * up + py0 + py1 - (fu_h - 1) - (fd_h - 1) + (down - 1)) // down
    px1 -= (x_shape[3] * up + px0 + px1 - (fu_w - 1)) - ((W_out - 1) * down + fd_w)
    py1 -= (x_shape[2] * up + py0 + py1 - (fu_h - 1)) - ((H_out - 1) * down + fd_h)
    return px0, px1, py0, py1

#----------------------------------------------------------------------------

def _filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter, impl):
    """filtered_lrelu() in PyTorch (banded matrix products on CUDA, polyphase elsewhere), trimmed padding."""
    matmul = upfirdn2d._matmul_path(x, impl)
    x, restore = (x, lambda y: y) if matmul else upfirdn2d._fast_layout(x)
    if b is not None:  # Added once, on the small input of the first stage.
        x = x + b.to(x.dtype).reshape([1, -1, 1, 1])
    # lrelu(g * v) = g * lrelu(v) for g > 0: the gain rides along with the upsampling filter's up**2.
    x = upfirdn2d.upfirdn2d(x, fu, up=up, padding=padding, flip_filter=flip_filter, gain=up ** 2 * gain, impl=impl)
    if slope != 1 or clamp is not None:
        keep_code = matmul and torch.is_grad_enabled() and x.requires_grad # No code for a backward that cannot come.
        x = _LReLUClamp.apply(x, float(slope), None if clamp is None else float(clamp), matmul, keep_code) # In place, on a fresh tensor.
    x = upfirdn2d.upfirdn2d(x, fd, down=down, flip_filter=flip_filter, impl=impl)
    return restore(x)

#----------------------------------------------------------------------------

class _FilteredLReLUTriton(torch.autograd.Function):
    """filtered_lrelu() through the fused Triton kernels as one autograd node.

    The backward is the fused backward kernel, reading the one-byte derivative code the forward wrote.
    Where a second order is asked for (create_graph), it differentiates the PyTorch formulation, recomputed
    from the saved input, instead. An absent incoming gradient stays absent.
    """

    @staticmethod
    def forward(ctx, x, b, fu, fd, config, keep_code):
        from . import filtered_lrelu_triton
        ctx.set_materialize_grads(False)
        up, down, padding, gain, slope, clamp, flip_filter, impl = config
        y, ctx.code = filtered_lrelu_triton.forward(x, b, fu, fd, up, down, padding, gain, slope, clamp, flip_filter, keep_code)
        ctx.save_for_backward(x, b, fu, fd)
        ctx.config = config
        return y

    @staticmethod
    def backward(ctx, dy):
        from . import filtered_lrelu_triton
        if dy is None:
            return None, None, None, None, None, None
        x, b, fu, fd = ctx.saved_tensors
        up, down, padding, gain, slope, clamp, flip_filter, impl = ctx.config
        if torch.is_grad_enabled():
            inputs = [t for t, needed in zip((x, b), ctx.needs_input_grad) if needed]
            with torch.enable_grad():
                y = _filtered_lrelu(x, fu, fd, b, up, down, padding, gain, slope, clamp, flip_filter, impl)
            grads = iter(torch.autograd.grad(y, inputs, dy, create_graph=True))
            dx, db = [next(grads) if needed else None for needed in ctx.needs_input_grad[:2]]
        else:
            dx, db = filtered_lrelu_triton.backward(dy, ctx.code, x, fu, fd, up, down, padding, gain, slope, flip_filter, ctx.needs_input_grad[1])
            db = None if db is None else db.to(b.dtype)
        return dx, db, None, None, None, None

#----------------------------------------------------------------------------

class _LReLUClamp(torch.autograd.Function):
    """In-place leaky ReLU + clamp of a fresh tensor, keeping what its gradient needs.

    The gradient is 1, the slope or 0 (clamped) at each sample. On the CUDA path the backward keeps that
    as a one-byte code (_derivative_code, made only when a backward can follow) rather than the output
    itself (half or a quarter of the memory of the op's largest tensor), and applies it with PyTorch's
    own activation-gradient kernels, reading the code as an output. Elsewhere it reads the mask back
    from the output, and skips the clamp (and its mask) when no value exceeds it, the common case,
    saving two passes on CPU. Either backward is differentiable w.r.t. the incoming gradient (double
    backward). An absent incoming gradient stays absent.
    """

    @staticmethod
    def forward(ctx, x, slope, clamp, compact, keep_code):
        ctx.set_materialize_grads(False)
        ctx.mark_dirty(x)
        if slope != 1:
            F.leaky_relu_(x, slope)
        if clamp is not None and (compact or x.is_cuda or bias_act._reaches(x, clamp)):
            x.clamp_(-clamp, clamp)
        else:
            clamp = None
        ctx.slope, ctx.clamp = slope, clamp
        ctx.code = _derivative_code(x, clamp) if keep_code else None
        ctx.save_for_backward(None if compact else x)
        return x

    @staticmethod
    def backward(ctx, dy):
        if dy is None:
            return None, None, None, None, None
        if ctx.code is not None: # Code 2 lies outside (-0.5, 1.5): zero; code 0 is not > 0: the slope.
            y, limits = ctx.code.to(dy.dtype), (-0.5, 1.5) # One conversion shared by both kernels.
        else:
            y, limits = ctx.saved_tensors[0].detach(), (-ctx.clamp, ctx.clamp) if ctx.clamp is not None else None
        if ctx.clamp is not None:
            dy = torch.ops.aten.hardtanh_backward(dy, y, *limits)
        if ctx.slope != 1:
            dy = torch.ops.aten.leaky_relu_backward(dy, y, ctx.slope, True)
        return dy, None, None, None, None

#----------------------------------------------------------------------------

def _derivative_code(y, clamp):
    """uint8 [N, C, H, W]: 0 where the derivative of lrelu + clamp at output y is the slope (y <= 0),
    1 where it is 1, 2 where it is 0 (|y| at the clamp: as hardtanh_backward, the limit itself counts)."""
    code = (y > 0).view(torch.uint8) # bool and uint8 share their bytes: no conversion pass
    if clamp is not None:
        code.masked_fill_(y.abs() >= clamp, 2)
    return code

#----------------------------------------------------------------------------
