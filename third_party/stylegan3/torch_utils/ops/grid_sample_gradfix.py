"""Bilinear grid sampling for StyleGAN2-ADA augmentation, with double backward w.r.t. the input."""

import torch

#----------------------------------------------------------------------------

enabled = False     # Kept for interface compatibility: torch.nn.functional.grid_sample already supports
                    # double backward w.r.t. the input (checked with gradgradcheck in the tests).

#----------------------------------------------------------------------------

def grid_sample(input, grid):
    """Bilinear sampling of input [N, C, H, W] at grid [N, Ho, Wo, 2] in [-1, 1], zero padding, pixel centres."""
    return torch.nn.functional.grid_sample(input=input, grid=grid, mode='bilinear', padding_mode='zeros', align_corners=False)

#----------------------------------------------------------------------------
