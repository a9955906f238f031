"""Bilinear grid sampling for StyleGAN2-ADA augmentation, with double backward w.r.t. the input.

R1 through ADA's geometric augmentation differentiates grid_sample's input gradient once more. PyTorch's own
derivative of aten::grid_sampler_2d_backward exists only in its newest releases, so this module provides it: the
input gradient is the transpose of the sampling, a linear map of the incoming gradient, and the derivative of that
transpose is the sampling itself (StyleGAN2-ADA, arXiv 2006.06676, appendix B.2 names the same need).
"""

import torch

#----------------------------------------------------------------------------

enabled = False     # Set True by the training loops: use the op below, differentiable twice w.r.t. the input.

#----------------------------------------------------------------------------

def grid_sample(input, grid):
    """Bilinear sampling of input [N, C, H, W] at grid [N, Ho, Wo, 2] in [-1, 1], zero padding, pixel centres."""
    if enabled:
        return _BilinearSample.apply(input, grid)
    return _sample(input, grid)

#----------------------------------------------------------------------------

_BILINEAR = 0       # aten's interpolation_mode for 'bilinear'.
_ZEROS = 0          # aten's padding_mode for 'zeros'.

def _sample(input, grid):
    return torch.nn.functional.grid_sample(input=input, grid=grid, mode='bilinear', padding_mode='zeros', align_corners=False)

class _BilinearSample(torch.autograd.Function):
    """y = S(grid) x. Its backward is _BilinearSampleTranspose, an op that is itself differentiable."""
    @staticmethod
    def forward(ctx, input, grid):
        ctx.save_for_backward(input, grid)
        return _sample(input, grid)

    @staticmethod
    def backward(ctx, grad_output):
        input, grid = ctx.saved_tensors
        return _BilinearSampleTranspose.apply(grad_output, input, grid, ctx.needs_input_grad[1])

class _BilinearSampleTranspose(torch.autograd.Function):
    """(dL/dx, dL/dgrid) of y = S(grid) x, given dL/dy. dL/dx = S(grid)^T dL/dy is linear in dL/dy, so its derivative
    w.r.t. dL/dy is the sampling S(grid) again; dL/dgrid is not differentiated further (no double backward w.r.t. grid)."""
    @staticmethod
    def forward(ctx, grad_output, input, grid, need_grid_grad):
        ctx.save_for_backward(grid)
        grad_input, grad_grid = torch.ops.aten.grid_sampler_2d_backward(grad_output, input, grid, _BILINEAR, _ZEROS, False, [True, need_grid_grad])
        return grad_input, (grad_grid if need_grid_grad else None)

    @staticmethod
    def backward(ctx, grad2_grad_input, _grad2_grad_grid):
        grid, = ctx.saved_tensors
        grad2_grad_output = _BilinearSample.apply(grad2_grad_input, grid) if ctx.needs_input_grad[0] else None
        return grad2_grad_output, None, None, None

#----------------------------------------------------------------------------
