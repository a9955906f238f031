"""The release's CUDA ops on current PyTorch: its plugins load where they build, its reference path runs where not.

NVIDIA's `custom_ops.get_plugin` builds a plugin with `torch.utils.cpp_extension.load`, ignores the module that
returns and imports it by name. PyTorch used to register the module in `sys.modules` while loading it; since
it loads through `importlib.util.module_from_spec` it no longer does, so the import fails and with it every
CUDA op. The first hook registers what `load` returns under its name, which is all the release expects.

Where a plugin cannot be built at all (no nvcc or ninja, a CUDA or compiler newer than its sources), the
release raises at the first op on a CUDA tensor and the run ends. Each of its ops also holds a plain PyTorch
reference path, the one it takes on the CPU; the second hook sends the op there, with one warning, so the
release runs wherever PyTorch runs, as the project's own ops do, and fast where its kernels build.
"""

import functools
import importlib
import sys
import types
import warnings

PLUGIN_OPS = ('torch_utils.ops.bias_act', 'torch_utils.ops.upfirdn2d', 'torch_utils.ops.filtered_lrelu')

#----------------------------------------------------------------------------

def registering_load(load):
    """Wrap `cpp_extension.load` so that the module it returns can also be imported by its name."""
    @functools.wraps(load)
    def load_and_register(*args, **kwargs):
        module = load(*args, **kwargs)
        if isinstance(module, types.ModuleType):
            sys.modules.setdefault(module.__name__, module)
        return module
    load_and_register.registers_module = True
    return load_and_register

def reference_on_failure(init):
    """Wrap an op module's `_init` (builds the plugin, returns True) to return False once the build has failed."""
    failures = []
    @functools.wraps(init)
    def init_or_reference():
        if failures:
            return False
        try:
            return init()
        except Exception as e: # pylint: disable=broad-except # Build errors come as any type.
            failures.append(e)
            warnings.warn(f'{init.__module__}: CUDA plugin unavailable ({type(e).__name__}: {e}); using the reference implementation')
            return False
    init_or_reference.falls_back = True
    return init_or_reference

def adapt_plugin_ops(ops):
    """Apply both hooks to the op modules that build a plugin (ours build none: no `_init`)."""
    ops = [op for op in ops if callable(getattr(op, '_init', None))]
    if not ops:
        return
    import torch.utils.cpp_extension # pylint: disable=import-outside-toplevel # Slow to import; only the release needs it.
    if not getattr(torch.utils.cpp_extension.load, 'registers_module', False):
        torch.utils.cpp_extension.load = registering_load(torch.utils.cpp_extension.load)
    for op in ops:
        if not getattr(op._init, 'falls_back', False): # pylint: disable=protected-access
            op._init = reference_on_failure(op._init) # pylint: disable=protected-access

def apply():
    adapt_plugin_ops([importlib.import_module(name) for name in PLUGIN_OPS])

#----------------------------------------------------------------------------
