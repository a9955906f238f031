"""Wall-clock timing of one call for the benchmarks, synchronised with CUDA; needs nothing beyond PyTorch."""

import time

import torch

#----------------------------------------------------------------------------

def timed(fn, device):
    """Seconds taken by fn()."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    fn()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return time.perf_counter() - start

#----------------------------------------------------------------------------
