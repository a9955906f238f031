"""Where the ops' Triton kernels run, and the tile configuration each kernel takes on a given GPU.

`impl='triton'` asks an op for its Triton kernel; `STYLESV_OPS=triton` in the environment makes the default
`impl='cuda'` ask for it too, so a whole run switches without touching the networks. Triton runs CUDA tensors,
and CPU tensors under `TRITON_INTERPRET=1` (how the kernels are tested on a machine without a GPU). Where it
cannot run, an op takes its other formulations exactly as without Triton. Tile configurations come from
`triton_configs.json`, measured once per GPU architecture by `benchmarks/triton_sweep.py` and committed, so
that no kernel autotunes in a training run.
"""

import functools
import importlib.util
import json
import os

ENV = 'STYLESV_OPS'

#----------------------------------------------------------------------------

def use_triton(x, impl):
    """Whether an op on tensor x runs as a Triton kernel for this `impl` argument."""
    asked = impl == 'triton' or (impl == 'cuda' and os.environ.get(ENV, '') == 'triton')
    return asked and (x.is_cuda or interpreting()) and available()

def interpreting():
    """Whether Triton runs kernels on CPU tensors through its interpreter (read when Triton is imported)."""
    return os.environ.get('TRITON_INTERPRET', '0') == '1'

@functools.lru_cache(None)
def available():
    """Whether Triton is installed (looked up without importing it: the import takes seconds)."""
    return importlib.util.find_spec('triton') is not None

#----------------------------------------------------------------------------

def tile_config(kernel, key, default, device=None):
    """The committed tile configuration (a dict) of `kernel` for a problem `key` (a string) on `device`'s
    architecture, else `default`. Looked up per call from a cached table: no measurement at run time."""
    return {**default, **_table().get(_arch(device), {}).get(kernel, {}).get(key, {})}

@functools.lru_cache(None)
def _table():
    with open(os.path.join(os.path.dirname(__file__), 'triton_configs.json'), encoding='utf-8') as f:
        return json.load(f)

@functools.lru_cache(None)
def _arch(device):
    """'sm90' for an H100/H200 and so on; 'interpreter' for CPU tensors."""
    import torch
    if device is None or torch.device(device).type != 'cuda':
        return 'interpreter'
    major, minor = torch.cuda.get_device_capability(device)
    return f'sm{major}{minor}'

#----------------------------------------------------------------------------
