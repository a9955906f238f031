"""Every module whose source travels inside a pickle calls only what NVIDIA's release also has.

A network pickle embeds the full source of the module that defines each persistent class, and the
loader executes it against whatever upstream layer is installed. So these modules may import and
call only names, and pass only keywords, that exist in the original release (STYLEGAN3_API.md §2.2-§4).
The table below restates that interface; the test walks each module's syntax tree against it.
"""

import ast
import glob
import inspect
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Upstream module -> {public name: parameter names, or None for a non-callable / unchecked name}.
UPSTREAM = {
    'torch_utils.misc': dict(
        constant=['value', 'shape', 'dtype', 'device', 'memory_format'],
        nan_to_num=None, symbolic_assert=None,
        suppress_tracer_warnings=[], assert_shape=['tensor', 'ref_shape'], profiled_function=['fn'],
        InfiniteSampler=['dataset', 'rank', 'num_replicas', 'shuffle', 'seed', 'window_size'],
        params_and_buffers=['module'], named_params_and_buffers=['module'],
        copy_params_and_buffers=['src_module', 'dst_module', 'require_all'], ddp_sync=['module', 'sync'],
        check_ddp_consistency=['module', 'ignore_regex'],
        print_module_summary=['module', 'inputs', 'max_nesting', 'skip_redundant']),
    'torch_utils.persistence': dict(persistent_class=['orig_class'], is_persistent=['obj'], import_hook=['hook']),
    'torch_utils.training_stats': dict(report=['name', 'value'], report0=['name', 'value']),
    'torch_utils.ops.upfirdn2d': dict(
        setup_filter=['f', 'device', 'normalize', 'flip_filter', 'gain', 'separable'],
        upfirdn2d=['x', 'f', 'up', 'down', 'padding', 'flip_filter', 'gain', 'impl'],
        filter2d=['x', 'f', 'padding', 'flip_filter', 'gain', 'impl'],
        upsample2d=['x', 'f', 'up', 'padding', 'flip_filter', 'gain', 'impl'],
        downsample2d=['x', 'f', 'down', 'padding', 'flip_filter', 'gain', 'impl']),
    'torch_utils.ops.bias_act': dict(
        bias_act=['x', 'b', 'dim', 'act', 'alpha', 'gain', 'clamp', 'impl'], activation_funcs=None),
    'torch_utils.ops.filtered_lrelu': dict(
        filtered_lrelu=['x', 'fu', 'fd', 'b', 'up', 'down', 'padding', 'gain', 'slope', 'clamp', 'flip_filter', 'impl']),
    'torch_utils.ops.conv2d_gradfix': dict(
        conv2d=['input', 'weight', 'bias', 'stride', 'padding', 'dilation', 'groups'],
        conv_transpose2d=['input', 'weight', 'bias', 'stride', 'padding', 'output_padding', 'groups', 'dilation'],
        no_weight_gradients=['disable'], enabled=None, weight_gradients_disabled=None),
    'torch_utils.ops.conv2d_resample': dict(
        conv2d_resample=['x', 'w', 'f', 'up', 'down', 'padding', 'groups', 'flip_weight', 'flip_filter']),
    'torch_utils.ops.fma': dict(fma=['a', 'b', 'c']),
    'torch_utils.ops.grid_sample_gradfix': dict(grid_sample=['input', 'grid'], enabled=None),
}
UPSTREAM_PACKAGES = ('dnnlib', 'torch_utils', 'training', 'metrics', 'legacy')
UPSTREAM_MODULES = set(UPSTREAM) | {'dnnlib', 'dnnlib.util', 'torch_utils', 'torch_utils.ops', 'training',
    'training.networks_stylegan2', 'training.networks_stylegan3', 'training.augment'}

#----------------------------------------------------------------------------

def persistent_sources():
    """The project's modules that define persistent classes, i.e. whose source travels in pickles."""
    paths = glob.glob(os.path.join(ROOT, 'third_party', 'stylegan3', 'training', '*.py'))
    paths += glob.glob(os.path.join(ROOT, 'svc_plugin', '**', '*.py'), recursive=True)
    return sorted(p for p in paths if 'persistent_class' in open(p, encoding='utf-8').read())

def upstream_aliases(tree):
    """Local name -> upstream module path, for every `from X import Y` / `import X` of an upstream package."""
    aliases, bad = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split('.')[0] in UPSTREAM_PACKAGES:
            for alias in node.names:
                full = f'{node.module}.{alias.name}'
                if full in UPSTREAM_MODULES:
                    aliases[alias.asname or alias.name] = full
                elif node.module in UPSTREAM and alias.name in UPSTREAM[node.module]:
                    continue
                else:
                    bad.append(f'line {node.lineno}: from {node.module} import {alias.name}')
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split('.')[0] in UPSTREAM_PACKAGES:
                    if alias.name not in UPSTREAM_MODULES:
                        bad.append(f'line {node.lineno}: import {alias.name}')
                    aliases[alias.asname or alias.name] = alias.name
    return aliases, bad

def foreign_uses(tree, aliases):
    """Attribute accesses and calls on upstream modules that the original interface does not have."""
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
            module = aliases[node.value.id]
            if module in UPSTREAM and node.attr not in UPSTREAM[module]:
                bad.append(f'line {node.lineno}: {node.value.id}.{node.attr} is not in {module}')
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and isinstance(node.func.value, ast.Name):
            module = aliases.get(node.func.value.id)
            params = UPSTREAM.get(module, {}).get(node.func.attr)
            if params is None:
                continue
            if len(node.args) > len(params) and not any(isinstance(a, ast.Starred) for a in node.args):
                bad.append(f'line {node.lineno}: {node.func.attr}() takes at most {len(params)} positional arguments')
            for kw in node.keywords:
                if kw.arg is not None and kw.arg not in params:
                    bad.append(f'line {node.lineno}: {node.func.attr}() has no keyword {kw.arg!r} upstream')
    return bad

#----------------------------------------------------------------------------

def test_persistent_modules_are_found():
    names = [os.path.basename(p) for p in persistent_sources()]
    assert {'networks_stylegan2.py', 'networks_stylegan3.py', 'augment.py'} <= set(names)

@pytest.mark.parametrize('path', persistent_sources(), ids=lambda p: os.path.relpath(p, ROOT))
def test_embedded_source_uses_only_upstream_names(path):
    tree = ast.parse(open(path, encoding='utf-8').read())
    aliases, bad = upstream_aliases(tree)
    bad += foreign_uses(tree, aliases)
    assert not bad, f'{os.path.relpath(path, ROOT)} would not load under NVIDIA\'s release:\n' + '\n'.join(bad)

def test_our_ops_accept_every_upstream_keyword():
    import importlib
    for module_name, names in UPSTREAM.items():
        module = importlib.import_module(module_name)
        for name, params in names.items():
            assert hasattr(module, name), f'{module_name}.{name} is missing'
            if params:
                ours = list(inspect.signature(getattr(module, name)).parameters)
                assert ours[:len(params)] == params, f'{module_name}.{name}{tuple(ours)} differs from upstream {tuple(params)}'

def test_checker_catches_a_foreign_keyword():
    tree = ast.parse('from torch_utils.ops import upfirdn2d\nupfirdn2d.upsample2d(x, f, up=2, fast=True)\nupfirdn2d.mine(x)\n')
    aliases, bad = upstream_aliases(tree)
    bad += foreign_uses(tree, aliases)
    assert len(bad) == 2 and any("'fast'" in b for b in bad) and any('upfirdn2d.mine' in b for b in bad)
