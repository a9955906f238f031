"""Fused multiply-add `a * b + c` with broadcasting (StyleGAN2 non-fused modulation)."""

import torch

#----------------------------------------------------------------------------

def fma(a, b, c):
    """a * b + c in one op; autograd reduces each gradient back to its operand's broadcast shape."""
    return torch.addcmul(c, a, b)

#----------------------------------------------------------------------------
