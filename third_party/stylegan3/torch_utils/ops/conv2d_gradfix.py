"""2-D convolution entry points of StyleGAN2-ADA/3, numerically identical to torch.nn.functional."""

import contextlib
import torch

#----------------------------------------------------------------------------

enabled = False                     # Kept for interface compatibility; plain PyTorch supports double backward.
weight_gradients_disabled = False   # Set by no_weight_gradients(); see the note there.

#----------------------------------------------------------------------------

@contextlib.contextmanager
def no_weight_gradients(disable=True):
    """Declare that weight gradients are not needed inside the block (e.g. path-length regularisation).

    Nothing else is required here: torch.autograd.grad(outputs, inputs) only computes the gradients on
    the path to `inputs`, and the convolution backward then skips the weight gradient by itself.
    """
    global weight_gradients_disabled
    old = weight_gradients_disabled
    if disable:
        weight_gradients_disabled = True
    try:
        yield
    finally:
        weight_gradients_disabled = old

#----------------------------------------------------------------------------

def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """torch.nn.functional.conv2d; first and second derivatives w.r.t. input and weight."""
    return torch.nn.functional.conv2d(input=input, weight=weight, bias=bias, stride=stride, padding=padding, dilation=dilation, groups=groups)

#----------------------------------------------------------------------------

def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1, dilation=1):
    """torch.nn.functional.conv_transpose2d; first and second derivatives w.r.t. input and weight."""
    return torch.nn.functional.conv_transpose2d(input=input, weight=weight, bias=bias, stride=stride, padding=padding, output_padding=output_padding, groups=groups, dilation=dilation)

#----------------------------------------------------------------------------
