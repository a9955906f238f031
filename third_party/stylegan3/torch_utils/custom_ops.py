"""Just-in-time building of optional C++/CUDA plugins via torch.utils.cpp_extension (unused by the pure-PyTorch ops)."""

import glob
import hashlib
import os
import re
import shutil
import uuid

import torch
import torch.utils.cpp_extension

#----------------------------------------------------------------------------

verbosity = 'brief' # Build log level: 'none', 'brief' or 'full'.

_cached_plugins = dict() # module_name => imported extension module.

#----------------------------------------------------------------------------

def _find_compiler_bindir():
    """Newest MSVC host compiler directory on Windows, or None."""
    patterns = [
        'C:/Program Files*/Microsoft Visual Studio/*/*/VC/Tools/MSVC/*/bin/Hostx64/x64',
        'C:/Program Files*/Microsoft Visual Studio */vc/bin',
    ]
    for pattern in patterns:
        matches = sorted(glob.glob(pattern))
        if matches:
            return matches[-1]
    return None

def _get_mangled_device_name():
    """Build directories are per GPU model because binaries are compiled for the visible architecture."""
    name = torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'
    return re.sub('[^0-9a-zA-Z_-]', '-', name.lower())

#----------------------------------------------------------------------------

def get_plugin(module_name, sources, headers=None, source_dir=None, **build_kwargs):
    """Build (or reuse) and import the extension `module_name` from the given sources.

    Sources and headers are copied to `<build root>/<module_name>/<md5 of their contents>-<device name>/`,
    so that edited sources trigger a rebuild and concurrent processes never share a half-built directory.
    The build root is $TORCH_EXTENSIONS_DIR or ~/.cache/torch_extensions.
    """
    assert verbosity in ['none', 'brief', 'full']
    headers = [] if headers is None else headers
    if source_dir is not None:
        sources = [os.path.join(source_dir, fname) for fname in sources]
        headers = [os.path.join(source_dir, fname) for fname in headers]
    if module_name in _cached_plugins:
        return _cached_plugins[module_name]

    if verbosity == 'full':
        print(f'Setting up PyTorch plugin "{module_name}"...')
    elif verbosity == 'brief':
        print(f'Setting up PyTorch plugin "{module_name}"... ', end='', flush=True)
    verbose_build = (verbosity == 'full')

    try:
        if os.name == 'nt' and shutil.which('cl.exe') is None:
            compiler_bindir = _find_compiler_bindir()
            if compiler_bindir is None:
                raise RuntimeError('Could not find MSVC (cl.exe); install Visual Studio or add it to PATH')
            os.environ['PATH'] += ';' + compiler_bindir
        os.environ['TORCH_CUDA_ARCH_LIST'] = '' # Compile for the visible GPUs only.

        all_files = sorted(sources + headers)
        digest = hashlib.md5()
        for fname in all_files:
            with open(fname, 'rb') as f:
                digest.update(f.read())
        build_root = os.environ.get('TORCH_EXTENSIONS_DIR', torch.utils.cpp_extension.get_default_build_root())
        build_dir = os.path.join(build_root, module_name, f'{digest.hexdigest()}-{_get_mangled_device_name()}')

        # Populate the build directory atomically: copy into a temp dir, then rename.
        if not os.path.isdir(build_dir):
            tmp_dir = os.path.join(build_root, module_name, f'srctmp-{uuid.uuid4().hex}')
            os.makedirs(tmp_dir)
            for fname in all_files:
                shutil.copyfile(fname, os.path.join(tmp_dir, os.path.basename(fname)))
            try:
                os.replace(tmp_dir, build_dir)
            except OSError: # Another process created it first.
                shutil.rmtree(tmp_dir)
                if not os.path.isdir(build_dir):
                    raise

        build_sources = [os.path.join(build_dir, os.path.basename(fname)) for fname in sources]
        module = torch.utils.cpp_extension.load(name=module_name, sources=build_sources,
            build_directory=build_dir, verbose=verbose_build, **build_kwargs)
    except BaseException:
        if verbosity == 'brief':
            print('Failed!')
        raise

    if verbosity == 'full':
        print(f'Done setting up PyTorch plugin "{module_name}".')
    elif verbosity == 'brief':
        print('Done.')
    _cached_plugins[module_name] = module
    return module

#----------------------------------------------------------------------------
