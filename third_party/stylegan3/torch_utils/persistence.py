"""Pickles that carry the source code of each network's module, in the format of NVIDIA's StyleGAN3 release."""

import copy
import inspect
import io
import pickle
import sys
import types
import uuid

import dnnlib

#----------------------------------------------------------------------------

_version            = 6         # Format version stored in every pickle; bump on incompatible change.
_decorators         = set()     # Decorator classes returned by persistent_class().
_import_hooks       = []        # Callbacks applied to `meta` when unpickling.
_module_to_src_dict = dict()    # Module object -> source string.
_src_to_module_dict = dict()    # Source string -> module object.

#----------------------------------------------------------------------------

def persistent_class(orig_class):
    """Class decorator: instances pickle as `_reconstruct_persistent_obj(meta)` with the full source of
    the class's module in `meta`, so that a snapshot still loads after the code has changed or moved.

    The returned subclass records the constructor arguments (`init_args`, `init_kwargs`) so that an
    object can be re-created with different options, e.g. by `legacy.load_network_pkl(force_fp16=True)`.
    """
    assert isinstance(orig_class, type)
    if is_persistent(orig_class):
        return orig_class

    assert orig_class.__module__ in sys.modules
    orig_module = sys.modules[orig_class.__module__]
    orig_module_src = _module_to_src(orig_module)

    class Decorator(orig_class):
        _orig_module_src = orig_module_src
        _orig_class_name = orig_class.__name__

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._init_args = copy.deepcopy(args)
            self._init_kwargs = copy.deepcopy(kwargs)
            _check_pickleable(self._init_args)
            _check_pickleable(self._init_kwargs)

        @property
        def init_args(self):
            return copy.deepcopy(self._init_args)

        @property
        def init_kwargs(self):
            return dnnlib.EasyDict(copy.deepcopy(self._init_kwargs))

        def __reduce__(self):
            fields = list(super().__reduce__())
            fields += [None] * max(3 - len(fields), 0)
            if fields[0] is not _reconstruct_persistent_obj:
                meta = dict(type='class', version=_version, module_src=self._orig_module_src,
                    class_name=self._orig_class_name, state=fields[2])
                fields[0] = _reconstruct_persistent_obj # Global name: torch_utils.persistence._reconstruct_persistent_obj.
                fields[1] = (meta,)
                fields[2] = None
            return tuple(fields)

    Decorator.__name__ = orig_class.__name__
    Decorator.__qualname__ = orig_class.__qualname__
    Decorator.__doc__ = orig_class.__doc__
    _decorators.add(Decorator)
    return Decorator

#----------------------------------------------------------------------------

def is_persistent(obj):
    """True for a class returned by persistent_class() or an instance of one."""
    try:
        if obj in _decorators:
            return True
    except TypeError: # Unhashable objects cannot be decorator classes.
        pass
    return type(obj) in _decorators

#----------------------------------------------------------------------------

def import_hook(hook):
    """Register `hook(meta) -> meta`, applied to every persistent object as it is unpickled.

    `meta` is an EasyDict with fields type, version, module_src, class_name and state; a hook typically
    patches `meta.module_src` so that old pickles run against a newer code base.
    """
    assert callable(hook)
    _import_hooks.append(hook)

#----------------------------------------------------------------------------

def _reconstruct_persistent_obj(meta):
    """Unpickling entry point: rebuild an object from its embedded module source and state."""
    meta = dnnlib.EasyDict(meta)
    meta.state = dnnlib.EasyDict(meta.state if meta.state is not None else {})
    for hook in _import_hooks:
        meta = hook(meta)
        assert meta is not None

    assert meta.version == _version
    module = _src_to_module(meta.module_src)

    assert meta.type == 'class'
    orig_class = module.__dict__[meta.class_name]
    decorator_class = persistent_class(orig_class)
    obj = decorator_class.__new__(decorator_class) # Bypass __init__: the state is restored as-is.

    setstate = getattr(obj, '__setstate__', None)
    if callable(setstate):
        setstate(meta.state)
    else:
        obj.__dict__.update(meta.state)
    return obj

#----------------------------------------------------------------------------

def _module_to_src(module):
    """Source text of a module, cached so that exec'd modules report the exact text they came from."""
    src = _module_to_src_dict.get(module, None)
    if src is None:
        src = inspect.getsource(module)
        _module_to_src_dict[module] = src
        _src_to_module_dict[src] = module
    return src

def _src_to_module(src):
    """Module for a source text; identical text gives the same module and therefore the same classes."""
    module = _src_to_module_dict.get(src, None)
    if module is None:
        module_name = '_imported_module_' + uuid.uuid4().hex
        module = types.ModuleType(module_name)
        # Register before exec so that persistent_class() inside the source finds this module and text.
        sys.modules[module_name] = module
        _module_to_src_dict[module] = src
        _src_to_module_dict[src] = module
        exec(src, module.__dict__) # pylint: disable=exec-used
    return module

#----------------------------------------------------------------------------

def _check_pickleable(obj):
    """Raise if constructor arguments cannot be pickled; common safe types are accepted without a trial."""
    def strip(obj):
        if isinstance(obj, (list, tuple, set)):
            return [strip(x) for x in obj]
        if isinstance(obj, dict):
            return [[strip(x), strip(y)] for x, y in obj.items()]
        if obj is None or isinstance(obj, (str, int, float, bool, complex, bytes, bytearray)):
            return None
        if f'{type(obj).__module__}.{type(obj).__name__}' in ['numpy.ndarray', 'torch.Tensor', 'torch.nn.parameter.Parameter']:
            return None
        if is_persistent(obj):
            return None
        return obj
    with io.BytesIO() as f:
        pickle.dump(strip(obj), f)

#----------------------------------------------------------------------------
