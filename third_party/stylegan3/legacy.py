"""Loading network pickles: native snapshots and legacy TensorFlow StyleGAN2 pickles (converted on the fly)."""

import os
import pickle
import re
import uuid

import click
import numpy as np
import torch

import dnnlib
from torch_utils import misc
from torch_utils import persistence

#----------------------------------------------------------------------------

def load_network_pkl(f, force_fp16=False):
    """Load a snapshot dict {G, D, G_ema, augment_pipe, training_set_kwargs, ...} from a binary file object.

    TensorFlow pickles (a (G, D, Gs) tuple) are converted to training.networks_stylegan2 modules.
    With force_fp16, G, D and G_ema are rebuilt with num_fp16_res=4 and conv_clamp=256.
    """
    source = getattr(f, 'name', 'The input')
    try:
        data = _LegacyUnpickler(f).load()
    except Exception as e: # Arbitrary bytes make the unpickler raise almost anything.
        raise ValueError(f'{source} is not a readable network pickle ({type(e).__name__}: {e})') from e

    # Legacy TensorFlow pickle => convert.
    if isinstance(data, tuple) and len(data) == 3 and all(isinstance(net, _TFNetworkStub) for net in data):
        tf_G, tf_D, tf_Gs = data
        data = dict(G=convert_tf_generator(tf_G), D=convert_tf_discriminator(tf_D), G_ema=convert_tf_generator(tf_Gs))

    # Fill in keys that older snapshots lack, and validate.
    if not isinstance(data, dict):
        raise ValueError(f'{source} is not a network pickle: expected a dict with G, D and G_ema, got {type(data).__name__}')
    data.setdefault('training_set_kwargs', None)
    data.setdefault('augment_pipe', None)
    for key in ['G', 'D', 'G_ema']:
        if not isinstance(data.get(key), torch.nn.Module):
            raise ValueError(f'{source} is not a network pickle: {key!r} is missing or not a torch.nn.Module')
    if not isinstance(data['training_set_kwargs'], (dict, type(None))):
        raise ValueError(f'{source}: training_set_kwargs must be a dict or None')
    if not isinstance(data['augment_pipe'], (torch.nn.Module, type(None))):
        raise ValueError(f'{source}: augment_pipe must be a torch.nn.Module or None')

    if force_fp16:
        for key in ['G', 'D', 'G_ema']:
            data[key] = _rebuild_fp16(data[key])
    return data

#----------------------------------------------------------------------------

def _rebuild_fp16(old):
    """Re-create a persistent network with fp16 enabled in its top four resolutions, keeping its weights."""
    if not persistence.is_persistent(old):
        raise ValueError(f'force_fp16 needs persistent networks; {type(old).__name__} does not record its constructor arguments')
    kwargs = old.init_kwargs
    fp16_kwargs = kwargs.get('synthesis_kwargs', kwargs)
    fp16_kwargs['num_fp16_res'] = 4
    fp16_kwargs['conv_clamp'] = 256
    if kwargs == old.init_kwargs:
        return old
    new = type(old)(*old.init_args, **kwargs).eval().requires_grad_(False)
    misc.copy_params_and_buffers(old, new, require_all=True)
    return new

#----------------------------------------------------------------------------

class _TFNetworkStub(dnnlib.EasyDict):
    """Stand-in for dnnlib.tflib.network.Network: unpickles its state (version, static_kwargs,
    components, variables, ...) as attributes so that TensorFlow is not needed."""

class _LegacyUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if module == 'dnnlib.tflib.network' and name == 'Network':
            return _TFNetworkStub
        return super().find_class(module, name)

#----------------------------------------------------------------------------

def _collect_tf_params(tf_net):
    """Flatten the variables of a TF network and its components into {'component/scope/var': array}."""
    tf_params = dict()
    def recurse(prefix, net):
        for name, value in net.variables:
            tf_params[prefix + name] = value
        for name, component in net.components.items():
            recurse(prefix + name + '/', component)
    recurse('', tf_net)
    return tf_params

class _TFKwargs:
    """Reads TF static_kwargs with defaults, remembering which names were consumed."""

    def __init__(self, tf_net, kind):
        if tf_net.version < 4:
            raise ValueError(f'TensorFlow {kind} pickle version {tf_net.version} is too old; version 4 or newer is needed')
        self.kind = kind
        self.static_kwargs = tf_net.static_kwargs
        self.known = set()

    def __call__(self, tf_name, default=None, none=None):
        """Value of a TF kwarg; `none` replaces an explicit None."""
        self.known.add(tf_name)
        value = self.static_kwargs.get(tf_name, default)
        return value if value is not None else none

    def common(self):
        """PyTorch kwargs that TF generators and discriminators name and default alike."""
        return dict(
            c_dim           = self('label_size', 0),
            img_resolution  = self('resolution', 1024),
            img_channels    = self('num_channels', 3),
            channel_base    = self('fmap_base', 16384) * 2,
            channel_max     = self('fmap_max', 512),
            num_fp16_res    = self('num_fp16_res', 0),
            conv_clamp      = self('conv_clamp', None),
        )

    def ignore(self, *tf_names):
        self.known.update(tf_names)

    def check_all_known(self):
        unknown = sorted(set(self.static_kwargs.keys()) - self.known)
        if unknown:
            raise ValueError(f'Unknown TensorFlow {self.kind} kwarg {unknown[0]!r}; cannot convert this pickle')

def _conv_weight(w, flip=False):
    """TF conv kernel [kh, kw, I, O] -> PyTorch [O, I, kh, kw]; flip for TF's transposed-conv kernels."""
    if flip:
        w = w[::-1, ::-1]
    return w.transpose(3, 2, 0, 1)

def _build_from_tf(class_name, kwargs, tf_params, tf_value_fn):
    """Construct the PyTorch network, then assign every parameter/buffer from tf_value_fn(name, tf_params)
    (None = keep the constructed value, e.g. filters derived from the kwargs)."""
    module = dnnlib.util.construct_class_by_name(class_name=class_name, **kwargs).eval().requires_grad_(False)
    for name, tensor in misc.named_params_and_buffers(module):
        try:
            value = tf_value_fn(name, tf_params)
        except KeyError as e:
            raise ValueError(f'TensorFlow pickle lacks variable {e.args[0]!r} needed for {name!r}') from e
        if value is None:
            continue
        value = torch.from_numpy(np.array(value, dtype=np.float32))
        if value.shape != tensor.shape:
            raise ValueError(f'TensorFlow value for {name!r} has shape {list(value.shape)}, expected {list(tensor.shape)}')
        with torch.no_grad():
            tensor.copy_(value)
    return module

#----------------------------------------------------------------------------

def convert_tf_generator(tf_G):
    """Build a training.networks_stylegan2.Generator from a TF StyleGAN2(-ADA) generator stub."""
    kwarg = _TFKwargs(tf_G, 'generator')
    kwargs = dnnlib.EasyDict(
        z_dim               = kwarg('latent_size', 512),
        w_dim               = kwarg('dlatent_size', 512),
        **kwarg.common(),
        architecture        = kwarg('architecture', 'skip'),
        resample_filter     = kwarg('resample_kernel', [1, 3, 3, 1]),
        use_noise           = kwarg('use_noise', True),
        activation          = kwarg('nonlinearity', 'lrelu'),
        mapping_kwargs      = dnnlib.EasyDict(
            num_layers      = kwarg('mapping_layers', 8),
            embed_features  = kwarg('label_fmaps', None),
            layer_features  = kwarg('mapping_fmaps', None),
            activation      = kwarg('mapping_nonlinearity', 'lrelu'),
            lr_multiplier   = kwarg('mapping_lrmul', 0.01),
            w_avg_beta      = kwarg('w_avg_beta', 0.995, none=1),
        ),
    )
    kwarg.ignore('truncation_psi', 'truncation_cutoff', 'style_mixing_prob', 'structure', 'conditioning', 'fused_modconv')
    kwarg.check_all_known()

    tf_params = _collect_tf_params(tf_G)
    if any(name.startswith('synthesis/ToRGB_lod') for name in tf_params):
        raise ValueError("TensorFlow generators with architecture 'orig' (ToRGB_lod* layers) are not supported")

    return _build_from_tf('training.networks_stylegan2.Generator', kwargs, tf_params, _tf_generator_value)

def _tf_generator_value(name, tf):
    """TF value for one Generator parameter/buffer name."""
    if name.endswith('resample_filter'):
        return None # Derived from the kwargs.
    if name == 'mapping.w_avg':
        return tf['dlatent_avg']
    m = re.fullmatch(r'mapping\.(embed|fc(\d+))\.(weight|bias)', name)
    if m:
        scope = 'LabelEmbed' if m[1] == 'embed' else f'Dense{m[2]}'
        value = tf[f'mapping/{scope}/{m[3]}']
        return value.T if m[3] == 'weight' else value
    if name == 'synthesis.b4.const':
        return tf['synthesis/4x4/Const/const'][0]
    m = re.fullmatch(r'synthesis\.b(\d+)\.(conv0|conv1|torgb|skip)\.(.+)', name)
    if m:
        res, layer, field = int(m[1]), m[2], m[3]
        scope = {'conv0': 'Conv0_up', 'conv1': 'Conv' if res == 4 else 'Conv1', 'torgb': 'ToRGB', 'skip': 'Skip'}[layer]
        prefix = f'synthesis/{res}x{res}/{scope}'
        if field == 'weight':
            return _conv_weight(tf[f'{prefix}/weight'], flip=(scope in ['Conv0_up', 'Skip']))
        if field in ['bias', 'noise_strength']:
            return tf[f'{prefix}/{field}']
        if field == 'affine.weight':
            return tf[f'{prefix}/mod_weight'].T
        if field == 'affine.bias':
            return tf[f'{prefix}/mod_bias'] + 1 # TF adds the 1 at run time; PyTorch folds it into the bias.
        if field == 'noise_const':
            noise_idx = 0 if res == 4 else int(np.log2(res)) * 2 - (5 if layer == 'conv0' else 4)
            return tf[f'synthesis/noise{noise_idx}'][0, 0]
    raise ValueError(f'No TensorFlow counterpart known for generator parameter {name!r}')

#----------------------------------------------------------------------------

def convert_tf_discriminator(tf_D):
    """Build a training.networks_stylegan2.Discriminator from a TF StyleGAN2(-ADA) discriminator stub."""
    kwarg = _TFKwargs(tf_D, 'discriminator')
    kwargs = dnnlib.EasyDict(
        **kwarg.common(),
        architecture            = kwarg('architecture', 'resnet'),
        cmap_dim                = kwarg('mapping_fmaps', None),
        block_kwargs            = dnnlib.EasyDict(
            activation          = kwarg('nonlinearity', 'lrelu'),
            resample_filter     = kwarg('resample_kernel', [1, 3, 3, 1]),
            freeze_layers       = kwarg('freeze_layers', 0),
        ),
        mapping_kwargs          = dnnlib.EasyDict(
            num_layers          = kwarg('mapping_layers', 0),
            embed_features      = kwarg('mapping_fmaps', None),
            layer_features      = kwarg('mapping_fmaps', None),
            activation          = kwarg('nonlinearity', 'lrelu'),
            lr_multiplier       = kwarg('mapping_lrmul', 0.1),
        ),
        epilogue_kwargs         = dnnlib.EasyDict(
            mbstd_group_size    = kwarg('mbstd_group_size', None),
            mbstd_num_channels  = kwarg('mbstd_num_features', 1),
            activation          = kwarg('nonlinearity', 'lrelu'),
        ),
    )
    kwarg.ignore('structure', 'conditioning')
    kwarg.check_all_known()

    return _build_from_tf('training.networks_stylegan2.Discriminator', kwargs, _collect_tf_params(tf_D), _tf_discriminator_value)

def _tf_discriminator_value(name, tf):
    """TF value for one Discriminator parameter/buffer name."""
    if name.endswith('resample_filter'):
        return None # Derived from the kwargs.
    m = re.fullmatch(r'(b(\d+)\.(fromrgb|conv0|conv1|skip|conv|fc|out)|mapping\.(embed|fc(\d+)))\.(weight|bias)', name)
    if m:
        field = m[6]
        if m[2] is not None:
            res, layer = int(m[2]), m[3]
            scope = {'fromrgb': 'FromRGB', 'conv0': 'Conv0', 'conv1': 'Conv1_down', 'skip': 'Skip', 'conv': 'Conv', 'fc': 'Dense0'}.get(layer)
            tf_name = 'Output' if layer == 'out' else f'{res}x{res}/{scope}'
            is_dense = layer in ['fc', 'out']
        else:
            tf_name = 'LabelEmbed' if m[4] == 'embed' else f'Mapping{m[5]}'
            is_dense = True
        value = tf[f'{tf_name}/{field}']
        if field == 'weight':
            return value.T if is_dense else _conv_weight(value)
        return value
    raise ValueError(f'No TensorFlow counterpart known for discriminator parameter {name!r}')

#----------------------------------------------------------------------------

@click.command()
@click.option('--source', help='Input pickle (path or URL)', required=True, metavar='PATH')
@click.option('--dest', help='Output pickle', required=True, metavar='PATH')
@click.option('--force-fp16', help='Force the networks to use FP16', type=bool, default=False, metavar='BOOL', show_default=True)
def convert_network_pickle(source, dest, force_fp16):
    """Convert a legacy network pickle into the native PyTorch format.

    Example:

    \b
    python legacy.py \\
        --source=https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/stylegan2-cat-config-f.pkl \\
        --dest=stylegan2-cat-config-f.pkl
    """
    print(f'Loading "{source}"...')
    try:
        with dnnlib.util.open_url(source) as f:
            data = load_network_pkl(f, force_fp16=force_fp16)
    except (ValueError, IOError) as e:
        raise click.ClickException(str(e))

    print(f'Saving "{dest}"...')
    dest_dir = os.path.dirname(os.path.abspath(dest))
    os.makedirs(dest_dir, exist_ok=True)
    tmp = os.path.join(dest_dir, f'.{os.path.basename(dest)}.tmp-{uuid.uuid4().hex}')
    with open(tmp, 'wb') as f:
        pickle.dump(data, f)
    os.replace(tmp, dest)
    print('Done.')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    convert_network_pickle() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
