"""The plugin uses only what NVIDIA's stylegan3 release also has.

Two promises rest on this. A network pickle embeds the full source of the module that defines each
persistent class, and the loader executes it against whatever upstream layer is installed; and a user
must be able to drop NVIDIA's release into third_party/stylegan3 and run every script of the project.
So every module of svc_plugin and patches/, every top-level script, and our own upstream modules whose
source travels in pickles may import and call only upstream names, and pass only keywords, that NVIDIA's
release (NVlabs/stylegan3) defines — never a helper that exists only in our upstream layer. The table below restates that
interface; the tests walk each module's syntax tree against it, class-name strings included.
"""

import ast
import glob
import importlib
import inspect
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Upstream module -> {public name: parameter names, or None for a non-callable or unchecked name}.
UPSTREAM = {
    'dnnlib': dict(EasyDict=None, make_cache_dir_path=None, util=None),
    'dnnlib.util': dict(
        EasyDict=None, Logger=['file_name', 'file_mode', 'should_flush'], set_cache_dir=['path'], make_cache_dir_path=None,
        open_url=['url', 'cache_dir', 'num_attempts', 'verbose', 'return_filename', 'cache'], is_url=['obj', 'allow_file_urls'],
        call_func_by_name=None, construct_class_by_name=None, get_obj_by_name=['name'], get_module_from_obj_name=['obj_name'],
        get_obj_from_module=['module', 'obj_name'], get_module_dir_by_obj_name=['obj_name'],
        is_top_level_function=['obj'], get_top_level_function_name=['obj'], format_time=['seconds'],
        format_time_brief=['seconds'], ask_yes_no=['question'], tuple_product=['t'], get_dtype_and_ctype=['type_obj'],
        is_pickleable=['obj'], list_dir_recursively_with_ignore=['dir_path', 'ignores', 'add_base_to_relative'],
        copy_files_and_create_dirs=['files']),
    'torch_utils': dict(misc=None, persistence=None, training_stats=None, custom_ops=None, ops=None),
    'torch_utils.ops': dict(bias_act=None, upfirdn2d=None, filtered_lrelu=None, conv2d_gradfix=None,
        conv2d_resample=None, fma=None, grid_sample_gradfix=None),
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
    'torch_utils.training_stats': dict(report=['name', 'value'], report0=['name', 'value'],
        init_multiprocessing=['rank', 'sync_device'], Collector=None),
    'torch_utils.custom_ops': dict(verbosity=None, get_plugin=None),
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
    'training': dict(networks_stylegan2=None, networks_stylegan3=None, loss=None, augment=None, dataset=None, training_loop=None),
    'training.networks_stylegan2': dict.fromkeys(['normalize_2nd_moment', 'modulated_conv2d', 'FullyConnectedLayer',
        'Conv2dLayer', 'MappingNetwork', 'SynthesisLayer', 'ToRGBLayer', 'SynthesisBlock', 'SynthesisNetwork', 'Generator',
        'DiscriminatorBlock', 'MinibatchStdLayer', 'DiscriminatorEpilogue', 'Discriminator']),
    'training.networks_stylegan3': dict.fromkeys(['modulated_conv2d', 'FullyConnectedLayer', 'MappingNetwork',
        'SynthesisInput', 'SynthesisLayer', 'SynthesisNetwork', 'Generator']),
    'training.loss': dict(Loss=None, StyleGAN2Loss=None),
    'training.augment': dict.fromkeys(['AugmentPipe', 'wavelets', 'matrix', 'translate2d', 'translate3d', 'scale2d',
        'scale3d', 'rotate2d', 'rotate3d', 'translate2d_inv', 'scale2d_inv', 'rotate2d_inv']),
    'training.dataset': dict(Dataset=None, ImageFolderDataset=None),
    'training.training_loop': dict(training_loop=None, setup_snapshot_image_grid=['training_set', 'random_seed'],
        save_image_grid=['img', 'fname', 'drange', 'grid_size']),
    'metrics': dict(metric_main=None, metric_utils=None),
    'metrics.metric_main': dict(register_metric=['fn'], is_valid_metric=None, list_valid_metrics=[], calc_metric=None,
        report_metric=['result_dict', 'run_dir', 'snapshot_pkl'], **dict.fromkeys(['fid50k_full', 'kid50k_full',
        'pr50k3_full', 'ppl2_wend', 'eqt50k_int', 'eqt50k_frac', 'eqr50k', 'fid50k', 'kid50k', 'pr50k3', 'is50k'])),
    'metrics.metric_utils': dict(MetricOptions=None, get_feature_detector_name=['url'],
        get_feature_detector=['url', 'device', 'num_gpus', 'rank', 'verbose'], iterate_random_labels=['opts', 'batch_size'],
        FeatureStats=None, ProgressMonitor=None, compute_feature_stats_for_dataset=None,
        compute_feature_stats_for_generator=None),
    'legacy': dict(load_network_pkl=['f', 'force_fp16'], convert_tf_generator=None, convert_tf_discriminator=None,
        convert_network_pickle=None),
}
UPSTREAM_PACKAGES = ('dnnlib', 'torch_utils', 'training', 'metrics', 'legacy')
UPSTREAM_MODULES = set(UPSTREAM)
DOTTED_UPSTREAM_NAME = re.compile(r'(?:%s)(?:\.[A-Za-z_]\w*)+' % '|'.join(UPSTREAM_PACKAGES))

#----------------------------------------------------------------------------

def persistent_sources():
    """The project's modules that define persistent classes, i.e. whose source travels in pickles."""
    paths = glob.glob(os.path.join(ROOT, 'third_party', 'stylegan3', 'training', '*.py'))
    paths += glob.glob(os.path.join(ROOT, 'svc_plugin', '**', '*.py'), recursive=True)
    return sorted(p for p in paths if 'persistent_class' in open(p, encoding='utf-8').read())

def plugin_sources():
    """Every module of the plugin: svc_plugin, patches and the top-level scripts, pickled or not."""
    paths = glob.glob(os.path.join(ROOT, 'svc_plugin', '**', '*.py'), recursive=True)
    paths += glob.glob(os.path.join(ROOT, 'patches', '**', '*.py'), recursive=True)
    paths += glob.glob(os.path.join(ROOT, '*.py'))
    return sorted(paths)

def split_upstream(path):
    """'training.loss.StyleGAN2Loss.x' -> ('training.loss', 'StyleGAN2Loss'): the longest upstream module and the name after it."""
    parts = path.split('.')
    for i in range(len(parts) - 1, 0, -1):
        if '.'.join(parts[:i]) in UPSTREAM_MODULES:
            return '.'.join(parts[:i]), parts[i]
    return None

def upstream_aliases(tree):
    """Local name -> upstream dotted path (module, or module.name), for every absolute import of an upstream package."""
    aliases, bad = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module and node.module.split('.')[0] in UPSTREAM_PACKAGES:
            for alias in node.names:
                full = f'{node.module}.{alias.name}'
                if full in UPSTREAM_MODULES or alias.name in UPSTREAM.get(node.module, {}):
                    aliases[alias.asname or alias.name] = full
                else:
                    bad.append(f'line {node.lineno}: from {node.module} import {alias.name}')
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split('.')[0] in UPSTREAM_PACKAGES:
                    if alias.name not in UPSTREAM_MODULES:
                        bad.append(f'line {node.lineno}: import {alias.name}')
                    elif alias.asname:
                        aliases[alias.asname] = alias.name
                    else: # `import a.b` binds a
                        aliases[alias.name.split('.')[0]] = alias.name.split('.')[0]
    return aliases, bad

def dotted_name(node):
    """'a.b.c' for a name or an attribute chain on a name, else None."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return '.'.join([node.id] + parts[::-1]) if isinstance(node, ast.Name) else None

def resolve(node, aliases):
    """(upstream module, name) that an expression refers to, or None."""
    dotted = dotted_name(node)
    if dotted is None:
        return None
    head, _, tail = dotted.partition('.')
    if head not in aliases:
        return None
    return split_upstream(aliases[head] + ('.' + tail if tail else ''))

def foreign_uses(tree, aliases):
    """Uses of upstream modules that the original interface does not have: names, keywords, class-name strings."""
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            target = resolve(node, aliases)
            if target is not None and target[1] not in UPSTREAM[target[0]]:
                bad.append(f'line {node.lineno}: {dotted_name(node)} is not in {target[0]}')
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and DOTTED_UPSTREAM_NAME.fullmatch(node.value):
            target = split_upstream(node.value)
            if target is None or target[1] not in UPSTREAM[target[0]]:
                bad.append(f'line {node.lineno}: {node.value!r} names no public upstream object')
        if isinstance(node, ast.Call):
            target = resolve(node.func, aliases)
            params = UPSTREAM[target[0]].get(target[1]) if target is not None else None
            if params is None:
                continue
            if len(node.args) > len(params) and not any(isinstance(a, ast.Starred) for a in node.args):
                bad.append(f'line {node.lineno}: {target[1]}() takes at most {len(params)} positional arguments')
            for kw in node.keywords:
                if kw.arg is not None and kw.arg not in params:
                    bad.append(f'line {node.lineno}: {target[1]}() has no keyword {kw.arg!r} upstream')
    return bad

def check_source(source):
    """Everything in a module's source text that NVIDIA's release lacks, one line each."""
    tree = ast.parse(source)
    aliases, bad = upstream_aliases(tree)
    return bad + foreign_uses(tree, aliases)

def check_file(path):
    return check_source(open(path, encoding='utf-8').read())

#----------------------------------------------------------------------------

def test_persistent_modules_are_found():
    names = [os.path.basename(p) for p in persistent_sources()]
    assert {'networks_stylegan2.py', 'networks_stylegan3.py', 'augment.py'} <= set(names)

@pytest.mark.parametrize('path', persistent_sources(), ids=lambda p: os.path.relpath(p, ROOT))
def test_embedded_source_uses_only_upstream_names(path):
    bad = check_file(path)
    assert not bad, f'{os.path.relpath(path, ROOT)} would not load under NVIDIA\'s release:\n' + '\n'.join(bad)

@pytest.mark.parametrize('path', plugin_sources(), ids=lambda p: os.path.relpath(p, ROOT))
def test_plugin_source_uses_only_public_upstream_names(path):
    bad = check_file(path)
    assert not bad, f'{os.path.relpath(path, ROOT)} would not run on NVIDIA\'s release:\n' + '\n'.join(bad)

def test_every_kind_of_plugin_module_is_checked():
    checked = {os.path.relpath(p, ROOT) for p in plugin_sources()}
    assert {'svc_plugin/__init__.py', 'svc_plugin/discriminator.py', 'svc_plugin/loss.py'} <= checked
    assert any(os.sep not in p for p in checked) # top-level scripts

def test_our_upstream_layer_has_every_listed_name_and_keyword():
    for module_name, names in UPSTREAM.items():
        module = importlib.import_module(module_name)
        for name, params in names.items():
            if f'{module_name}.{name}' in UPSTREAM_MODULES: # a submodule: import it
                importlib.import_module(f'{module_name}.{name}')
            assert hasattr(module, name), f'{module_name}.{name} is missing'
            if params:
                ours = list(inspect.signature(getattr(module, name)).parameters)
                assert ours[:len(params)] == params, f'{module_name}.{name}{tuple(ours)} differs from upstream {tuple(params)}'

def test_checker_catches_foreign_names_keywords_and_class_names():
    source = '\n'.join([
        'from torch_utils.ops import upfirdn2d',
        'import dnnlib',
        'import training.training_loop',
        'from training.training_loop import write_file_atomic',
        'from metrics.frechet_inception_distance import compute_fid',
        'from .metrics import anything',                                # relative: the plugin's own package
        'upfirdn2d.upsample2d(x, f, up=2, fast=True)',                  # keyword NVIDIA's op does not take
        'upfirdn2d.mine(x)',                                            # name NVIDIA's module does not have
        'dnnlib.util.open_url(url, retries=3)',                         # keyword, through a nested module
        'training.training_loop.launch_processes()',                    # our helper, not NVIDIA's
        "cfg = dnnlib.EasyDict(class_name='training.loss.VideoLoss')",  # class-name string
        "ok = dnnlib.EasyDict(class_name='training.loss.StyleGAN2Loss')",
    ])
    bad = check_source(source)
    expected = ['write_file_atomic', 'compute_fid', "'fast'", 'upfirdn2d.mine', "'retries'", 'launch_processes', 'VideoLoss']
    assert len(bad) == len(expected) and all(any(e in b for b in bad) for e in expected), bad
#----------------------------------------------------------------------------
