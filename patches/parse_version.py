"""`pkg_resources.parse_version` for the release's gradfix modules, where setuptools no longer ships pkg_resources.

NVIDIA's `torch_utils/ops/conv2d_gradfix.py` and `grid_sample_gradfix.py` import `parse_version` from
`pkg_resources` at import time to compare `torch.__version__` with 1.11 and 1.12. setuptools deprecated
pkg_resources and has since removed it, so on a current environment those imports fail, and with them
every network, the loss and the augmentation. Where that happens, a module holding only `parse_version`
(packaging's `Version`, what the real one returns) takes the name `pkg_resources`.
"""

import importlib
import sys
import types

GRADFIX_MODULES = ('torch_utils.ops.conv2d_gradfix', 'torch_utils.ops.grid_sample_gradfix')

#----------------------------------------------------------------------------

def provide_parse_version(module_name):
    """Import `module_name`; if only a missing pkg_resources stops it, provide a minimal one and import again."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as e:
        if e.name != 'pkg_resources':
            raise
    import packaging.version # pylint: disable=import-outside-toplevel
    sys.modules['pkg_resources'] = types.ModuleType('pkg_resources', 'parse_version only, for code written against the removed pkg_resources.')
    sys.modules['pkg_resources'].parse_version = packaging.version.Version
    return importlib.import_module(module_name)

def apply():
    for name in GRADFIX_MODULES:
        provide_parse_version(name)

#----------------------------------------------------------------------------
