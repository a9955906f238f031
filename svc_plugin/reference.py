"""The authors' StyleSV snapshots (genforce/StyleSV, arXiv 2212.07413) read as data and rebuilt as this project's networks.

The reference code pickles its networks with the source of their modules (its src.torch_utils.persistence,
NVIDIA's format) and its configuration as omegaconf objects. Nothing of that is imported or executed here:
a restricted unpickler turns every class or function the file names into an inert record of what it was
given, tensors are rebuilt by torch.load(weights_only=True), and the generator and discriminator are
built from this project's classes with the reference's weights, renamed (GENERATOR_RENAMES,
DISCRIMINATOR_RENAMES). A model whose formula this project does not have is refused in one line.
"""

import copy
import importlib
import io
import pickle
import pickletools
import re
import warnings

import numpy as np
import torch

from svc_plugin import motion
from svc_plugin.discriminator import VideoDiscriminator
from svc_plugin.networks import VideoGenerator

# Reference parameter name -> ours; the first pattern that matches applies. Everything else keeps its name.
GENERATOR_RENAMES = (
    (r'synthesis\.input\.motion_affine\.', 'synthesis.input_motion.'),
    (r'synthesis\.affine_w\.', 'synthesis.fuse.'), # FC([w; v]) in the same order.
    (r'synthesis\.motion_encoder\.conv\.([01])\.', r'synthesis.motion_encoder.conv\1.'),
    (r'synthesis\.motion_encoder\.time_encoder\.periods_predictor\.', 'synthesis.motion_encoder.period_predictor.'),
    (r'synthesis\.motion_encoder\.time_encoder\.aligners_predictor\.', 'synthesis.motion_encoder.aligner_predictor.'),
    (r'synthesis\.motion_encoder\.time_encoder\.', 'synthesis.motion_encoder.'), # freqs, phase_scales, phase_predictor
)
DISCRIMINATOR_RENAMES = (
    (r'time_encoder\.const_embed\.weight', 'time_encoder.embed'),
    (r'time_encoder\.time_encoder\.fourier_coefs', 'time_encoder.freqs'),
)
SQUEEZED = ('synthesis.motion_mask', 'synthesis.motion_encoder.freqs', 'synthesis.motion_encoder.phase_scales', 'time_encoder.freqs') # [1, N] there, [N] here.
REFERENCE_WIDTH = 512 # The reference hard-codes w and v widths of 512 (affine_w, motion_affine, motion_mask).

class UnsupportedReference(ValueError):
    """A reference snapshot that cannot be rebuilt exactly; the message is one line saying which option and why."""

#----------------------------------------------------------------------------
# Reading the pickle as data.

class Inert:
    """A class or function the pickle names, never imported: the arguments it was called with, and the state,
    items and list entries it was given (omegaconf nodes, EasyDicts, torch.nn containers, optimizers, ...)."""
    global_name = None

    def __new__(cls, *args, **kwargs):
        obj = object.__new__(cls)
        obj.args, obj.kwargs, obj.state, obj.items, obj.entries = args, kwargs, {}, {}, []
        return obj

    def __init__(self, *args, **kwargs):
        pass

    def __setstate__(self, state):
        self.state = state if isinstance(state, dict) else {'state': state}

    def __setitem__(self, key, value):
        self.items[key] = value

    def append(self, value):
        self.entries.append(value)

    def extend(self, values):
        self.entries.extend(values)

class PersistentRecord:
    """A persistent network object of the reference (meta: class_name, module_src, state), its source never run."""

    def __init__(self, meta):
        self.class_name = meta['class_name']
        self.state = dict(meta.get('state') or {})

def _storage_from_bytes(data):
    """torch.storage._load_from_bytes without running code: the storage's own torch.save bytes, weights only."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore') # TypedStorage deprecation
        return torch.load(io.BytesIO(data), map_location='cpu', weights_only=True)

# Globals resolved to the real object: tensors, arrays, plain containers. Every other global becomes Inert.
_SAFE_GLOBALS = {
    ('torch._utils', '_rebuild_tensor_v2'), ('torch._utils', '_rebuild_parameter'), ('torch._utils', '_rebuild_parameter_with_state'),
    ('torch', 'Size'), ('torch', 'device'), ('collections', 'OrderedDict'), ('_codecs', 'encode'), ('copyreg', '_reconstructor'),
    ('numpy', 'ndarray'), ('numpy', 'dtype'), ('numpy.core.multiarray', '_reconstruct'), ('numpy.core.multiarray', 'scalar'),
    ('numpy._core.multiarray', '_reconstruct'), ('numpy._core.multiarray', 'scalar'),
    *[('builtins', name) for name in ['dict', 'list', 'tuple', 'set', 'frozenset', 'int', 'float', 'complex', 'str', 'bytes',
        'bytearray', 'bool', 'slice', 'range', 'object']],
}

class ReferenceUnpickler(pickle.Unpickler):
    """Unpickler that imports nothing the file chooses beyond _SAFE_GLOBALS."""

    def __init__(self, f):
        super().__init__(f)
        self._inert_classes = {}

    def find_class(self, module, name):
        if module.endswith('torch_utils.persistence') and name == '_reconstruct_persistent_obj':
            return PersistentRecord
        if module == 'torch.storage' and name == '_load_from_bytes':
            return _storage_from_bytes
        if module == 'torch' and isinstance(getattr(torch, name, None), torch.dtype):
            return getattr(torch, name)
        if (module, name) in _SAFE_GLOBALS:
            with warnings.catch_warnings():
                warnings.simplefilter('ignore') # numpy.core is deprecated in numpy 2
                return getattr(importlib.import_module(module), name)
        key = f'{module}.{name}'
        if key not in self._inert_classes:
            self._inert_classes[key] = type(name, (Inert,), dict(global_name=key))
        return self._inert_classes[key]

def is_reference_pickle(f):
    """Whether the pickle in f comes from the reference code: the first module it names is one of the reference's
    (src.*) or omegaconf, not torch_utils.persistence (ours, NVIDIA's). Reads opcodes only, following the memo so that
    STACK_GLOBAL's module name is known; rewinds f."""
    memo, top = {}, [None, None] # the strings (or None) last pushed
    try:
        for opcode, arg, _pos in pickletools.genops(f):
            name = opcode.name
            if name in ('MEMOIZE', 'PUT', 'BINPUT', 'LONG_BINPUT'):
                memo[len(memo) if name == 'MEMOIZE' else arg] = top[-1]
                continue
            module = arg.split(' ')[0] if name == 'GLOBAL' else top[-2] if name == 'STACK_GLOBAL' else None
            if module is not None and (module.startswith('src.') or module.startswith('omegaconf')):
                return True
            if module is not None and module.endswith('torch_utils.persistence'):
                return False
            top = [top[-1], arg if 'UNICODE' in name else memo.get(arg) if name in ('GET', 'BINGET', 'LONG_BINGET') else None]
    except (ValueError, EOFError): # Not a complete pickle: the regular loader names the problem.
        pass
    finally:
        f.seek(0)
    return False

#----------------------------------------------------------------------------
# Modules and configuration, as data.

def _modules(node):
    return node.state.get('_modules') or {}

def tensors_of(node, prefix=''):
    """The state dict of a pickled module tree: {name: tensor}, parameters and persistent buffers."""
    skip = set(node.state.get('_non_persistent_buffers_set') or ())
    tensors = {prefix + name: value for name, value in (node.state.get('_parameters') or {}).items() if value is not None}
    tensors.update({prefix + name: value for name, value in (node.state.get('_buffers') or {}).items() if value is not None and name not in skip})
    for name, child in _modules(node).items():
        if child is not None:
            tensors.update(tensors_of(child, f'{prefix}{name}.'))
    return {name: value.detach() for name, value in tensors.items()}

def plain(value):
    """Inert EasyDicts and omegaconf nodes -> dicts, lists and values (interpolation strings left as they are)."""
    if isinstance(value, Inert):
        if '_content' in value.state: # DictConfig, ListConfig
            return plain(value.state['_content'])
        if '_val' in value.state: # AnyNode, IntegerNode, ...
            return plain(value.state['_val'])
        return plain(value.items) if value.items else plain(value.entries)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    return value

_INTERPOLATION = re.compile(r'\$\{([^${}]+)\}')

class Config:
    """Read access to one node of the reference's omegaconf config, ${a.b.c} interpolations resolved from its root."""

    def __init__(self, node):
        self.tree = plain(node)
        root = node
        while isinstance(root, Inert) and root.state.get('_parent') is not None:
            root = root.state['_parent']
        self.root = plain(root)

    def get(self, path, default=None, from_root=False):
        return self._walk(self.root if from_root else self.tree, path, default)

    def _walk(self, value, path, default):
        for key in path.split('.'):
            value = self._resolve(value)
            if not isinstance(value, dict) or key not in value:
                return default
            value = value[key]
        return self._resolve(value)

    def _resolve(self, value, depth=0):
        if not isinstance(value, str) or '${' not in value:
            return value
        if depth > 16:
            raise UnsupportedReference(f'its config interpolation {value} does not resolve')
        def lookup(match):
            missing = object()
            found = self._walk(self.root, match.group(1), missing)
            if found is missing:
                raise UnsupportedReference(f'its config interpolation ${{{match.group(1)}}} does not resolve')
            return self._resolve(found, depth + 1)
        whole = _INTERPOLATION.fullmatch(value)
        return lookup(whole) if whole else _INTERPOLATION.sub(lambda match: str(lookup(match)), value)

#----------------------------------------------------------------------------
# Generator.

def generator_kwargs(G):
    """VideoGenerator constructor arguments of a reference Generator record, after refusing what has no exact counterpart."""
    synthesis = _modules(G).get('synthesis')
    if synthesis is None or G.class_name != 'Generator':
        raise UnsupportedReference(f'its G_ema is a {G.class_name}, not a StyleSV video generator')
    if synthesis.class_name != 'SynthesisNetwork3v':
        raise UnsupportedReference(f'a StyleGAN-V generator ({synthesis.class_name}: StyleGAN2-based synthesis), not a StyleGAN3 '
            'video generator; only StyleSV snapshots (StyleGAN3 synthesis) convert')
    cfg = Config(G.state['cfg'])
    refusals = [
        (cfg.get('bspline'), 'model.generator.bspline=true: the reference\'s B-spline (blending periods and phases, with an optional '
            'random time offset per video) is not this project\'s; only bspline=false (linear) converts exactly'),
        (cfg.get('fuse_w') != 'concat', f'model.generator.fuse_w={cfg.get("fuse_w")!r}: w + v without a layer, the mask also on the '
            'input offset; only fuse_w=concat has a counterpart here'),
        ((cfg.get('low_rank') or 0) > 0, f'model.generator.low_rank={cfg.get("low_rank")}: the reference\'s low-rank '
            'branch (no per-channel gain, not demodulated in ToRGB) is not this project\'s --low-rank'),
        (G.state['w_dim'] != REFERENCE_WIDTH or cfg.get('motion.v_dim') != REFERENCE_WIDTH, f'w_dim={G.state["w_dim"]}, '
            f'motion.v_dim={cfg.get("motion.v_dim")}: the reference hard-codes widths of {REFERENCE_WIDTH} (affine_w, motion_affine)'),
        (cfg.get('motion.z_dim') != cfg.get('motion.v_dim'), f'motion.z_dim={cfg.get("motion.z_dim")} differs from motion.v_dim: '
            'the reference\'s second temporal convolution outputs v_dim-wide codes, ours z_dim-wide'),
        (not cfg.get('motion.fourier') or cfg.get('motion.gen_strategy') != 'conv', 'motion without the aligned Fourier time '
            'encoder or the conv generation strategy has no counterpart here'),
    ]
    for refused, why in refusals:
        if refused:
            raise UnsupportedReference(why)

    synthesis_kwargs = {key: value for key, value in plain(synthesis.state['_init_kwargs']).items()
        if key not in ('w_dim', 'img_resolution', 'img_channels', 'cfg')}
    mapping = _modules(G)['mapping']
    return dict(z_dim=G.state['z_dim'], c_dim=G.state['c_dim'], w_dim=G.state['w_dim'], img_resolution=G.state['img_resolution'],
        img_channels=G.state['img_channels'], fuse_w='concat', low_rank=0,
        mapping_kwargs=dict(num_layers=mapping.state['num_layers'], w_avg_beta=mapping.state['w_avg_beta']),
        motion_kwargs=dict(z_dim=cfg.get('motion.z_dim'), v_dim=cfg.get('motion.v_dim'), kind='linear',
            motion_z_distance=cfg.get('motion.motion_z_distance'), max_period_len=cfg.get('time_enc.max_period_len'),
            kernel_size=cfg.get('motion.kernel_size')),
        **synthesis_kwargs)

def renamed(tensors, renames):
    """{reference name: tensor} -> {our name: tensor}."""
    out = {}
    for name, value in tensors.items():
        for pattern, replacement in renames:
            if re.match(pattern, name):
                name = re.sub(pattern, replacement, name, count=1)
                break
        out[name] = value
    return out

def load_tensors(module, tensors, what):
    """Copy {our name: tensor} into every parameter and buffer of module; all must match, or the model is not one we can run."""
    ours = module.state_dict()
    missing, unexpected = sorted(set(ours) - set(tensors)), sorted(set(tensors) - set(ours))
    if missing or unexpected:
        raise UnsupportedReference(f'its {what} does not fit this project\'s network (no counterpart for {unexpected[:3]}, '
            f'nothing for {missing[:3]})')
    with torch.no_grad():
        for name, value in tensors.items():
            target = ours[name]
            fits = value.shape == target.shape or (name in SQUEEZED and value.shape == (1, *target.shape))
            if not fits:
                raise UnsupportedReference(f'its {what} tensor {name} is {list(value.shape)}, expected {list(target.shape)}')
            target.copy_(value.reshape(target.shape))
    return module

def convert_generator(G):
    """A VideoGenerator(kind='linear') drawing the frames of a reference Generator record."""
    try:
        ours = VideoGenerator(**generator_kwargs(G))
    except (TypeError, ValueError) as err: # Options this codebase's class does not take.
        raise UnsupportedReference(f'its generator options do not fit this project\'s VideoGenerator ({err})') from None
    return load_tensors(ours, renamed(tensors_of(G), GENERATOR_RENAMES), 'generator').eval().requires_grad_(False)

def motion_z_from_reference(motion_z, t, G):
    """The reference's motion noise for frame times t [B, F] -> this project's motion_z, so that G draws the same frames.

    The reference (MotionMappingNetwork, gen_strategy conv) draws one noise row per key slot from key 0 on,
    [B, rows, z_dim]; key code k reads rows k .. k+2R (R = kernel_size - 1), i.e. our noise slots k-R .. k+R:
    row r is our slot r - R. Ours holds only the distinct slots the frames read, in ascending order.
    """
    encoder = G.synthesis.motion_encoder
    _t, _keys, _u, window = encoder.frame_keys(t)
    distinct, _rank = motion.distinct_slots(window.flatten(1)) # [B, n]
    rows = (distinct + encoder.reach).to(motion_z.device)
    if rows.min() < 0 or rows.max() >= motion_z.shape[1]:
        raise ValueError(f'frame times in [{float(t.min())}, {float(t.max())}] read the reference\'s motion_z rows '
            f'{int(rows.min())} .. {int(rows.max())}; it has {motion_z.shape[1]}')
    z = motion_z[:t.shape[0], :, :encoder.z_dim]
    return z.gather(1, rows.unsqueeze(2).expand(-1, -1, encoder.z_dim))

#----------------------------------------------------------------------------
# Discriminator.

def discriminator_kwargs(D):
    """VideoDiscriminator constructor arguments of a reference Discriminator record."""
    cfg = Config(D.state['cfg'])
    init = plain(D.state['_init_kwargs'])
    frames = cfg.get('sampling.num_frames_per_video')
    architecture = init.get('architecture', 'resnet')
    if not cfg.get('tmean'):
        raise UnsupportedReference('model.discriminator.tmean=false: its concatenation of frames divides the channels by '
            'num_frames_div_factor; only tmean=true (the mean, StyleSV) has a counterpart here')
    if cfg.get('dummy_c'):
        raise UnsupportedReference('model.discriminator.dummy_c=true: a D whose conditioning is multiplied by zero')
    if cfg.get('tsm') and frames == 1 and architecture == 'resnet':
        raise UnsupportedReference('model.discriminator.tsm=true with single frames: it zeroes a quarter of the channels')
    kwargs = dict(c_dim=D.state['c_dim'], img_resolution=D.state['img_resolution'], img_channels=D.state['img_channels'],
        num_frames=frames, tsm=bool(cfg.get('tsm')) and architecture == 'resnet', fuse='mean', fuse_res=cfg.get('concat_res'),
        time_cond=_modules(D).get('time_encoder') is not None, architecture=architecture,
        **{key: init[key] for key in ['channel_base', 'channel_max', 'num_fp16_res', 'conv_clamp', 'cmap_dim',
            'block_kwargs', 'mapping_kwargs', 'epilogue_kwargs'] if init.get(key) is not None})
    if kwargs['time_cond']:
        time_encoder = _modules(D)['time_encoder']
        embed = tensors_of(time_encoder)['const_embed.weight'] # [max_num_frames, 256]
        kwargs.update(time_freqs=tensors_of(time_encoder)['time_encoder.fourier_coefs'].shape[-1], time_embed_dim=embed.shape[1],
            time_max_gap=embed.shape[0] - 1)
    return kwargs, cfg

def condition_columns(c_dim, num_gaps, reference_gaps, num_freqs, embed_dim):
    """For each input of our projection mapping, the index of the reference's input it reads, -1 for none.

    Ours per gap: [sin (F), cos (F), embedding (E)]; the reference's: [embedding (E), sin (F), cos (F)]. With
    sampling.type=uniform the reference conditions on the first gap only.
    """
    block = 2 * num_freqs + embed_dim
    within = [embed_dim + j if j < 2 * num_freqs else j - 2 * num_freqs for j in range(block)]
    return list(range(c_dim)) + [c_dim + gap * block + j if gap < reference_gaps else -1 for gap in range(num_gaps) for j in within]

def convert_discriminator(D):
    """A VideoDiscriminator giving a reference Discriminator record's logits (exactly at integer time gaps: the
    reference rounds a gap to its embedding row, ours interpolates between rows)."""
    kwargs, cfg = discriminator_kwargs(D)
    try:
        ours = VideoDiscriminator(**kwargs)
    except (TypeError, ValueError) as err:
        raise UnsupportedReference(f'its discriminator options do not fit this project\'s VideoDiscriminator ({err})') from None
    tensors = renamed(tensors_of(D), DISCRIMINATOR_RENAMES)
    if ours.time_encoder is not None:
        weight = tensors['mapping.embed.weight'] # [cmap_dim, reference inputs]
        reference_gaps = 1 if cfg.get('sampling.type') == 'uniform' else ours.num_frames - 1
        columns = torch.as_tensor(condition_columns(ours.c_dim, ours.num_frames - 1, reference_gaps,
            ours.time_encoder.num_freqs, ours.time_encoder.embed_dim))
        permuted = weight[:, columns.clamp(min=0)] * (columns >= 0)
        tensors['mapping.embed.weight'] = permuted * np.sqrt(len(columns) / weight.shape[1]) # Undo the equalized-lr gain's change.
    return load_tensors(ours, tensors, 'discriminator').eval().requires_grad_(False)

#----------------------------------------------------------------------------

def load_snapshot(f):
    """A snapshot dict in this project's terms from a reference pickle (a file object): G, G_ema, D (None, with the
    reason in D_refused, where the discriminator has no counterpart), fps of the training data when recorded."""
    data = ReferenceUnpickler(f).load()
    if not isinstance(data, dict) or not isinstance(data.get('G_ema'), PersistentRecord):
        raise UnsupportedReference('a pickle of the reference code, but not a network snapshot: it holds no G_ema')
    G_ema = convert_generator(data['G_ema'])
    G = convert_generator(data['G']) if isinstance(data.get('G'), PersistentRecord) else copy.deepcopy(G_ema)
    try:
        fps = Config(data['G_ema'].state['cfg']).get('dataset.fps', from_root=True)
    except UnsupportedReference: # Only a frame rate for gen_video.py: not worth refusing the model for.
        fps = None
    snapshot = dict(G=G, G_ema=G_ema, D=None, augment_pipe=None, training_set_kwargs=None,
        fps=fps if isinstance(fps, (int, float)) and fps > 0 else None)
    try:
        if isinstance(data.get('D'), PersistentRecord):
            snapshot['D'] = convert_discriminator(data['D'])
    except UnsupportedReference as err:
        snapshot['D_refused'] = str(err)
    return snapshot

#----------------------------------------------------------------------------
