"""The authors' StyleSV snapshots (genforce/StyleSV) in our tools: a reference-format pickle is written here as data (the
reference's module and class names, constructor arguments, omegaconf config and state-dict names and shapes; none of its
code), then read without running anything, converted, and checked against the reference's formulas."""

import collections
import contextlib
import os
import pickle
import re
import subprocess
import sys
import types
import typing

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gen_video
from svc_plugin import checkpoint
from svc_plugin import dataset_tool
from svc_plugin import reference
from svc_plugin.discriminator import VideoDiscriminator
from svc_plugin.networks import VideoGenerator

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RES, D_MOTION, FRAMES, MAX_NUM_FRAMES = 16, 4, 3, 16
EMBEDDED_SOURCE = "raise RuntimeError('the embedded source of a reference module was executed')\n"

#----------------------------------------------------------------------------
# The reference's pickle layout, as data.

def _obj(cls, state=None, items=None):
    """An instance of cls holding state (and items, for a dict): it pickles as NEWOBJ, SETITEMS, BUILD, the way a
    plain class, an EasyDict, an omegaconf node or a torch.nn container of the reference pickles."""
    obj = cls.__new__(cls)
    obj.__dict__.update(state or {})
    if items is not None:
        obj.update(items)
    return obj

def _reconstruct_persistent_obj(meta):
    raise AssertionError('only its name is pickled')

class _Persistent:
    """A persistent object of the reference (src.torch_utils.persistence, NVIDIA's format 6): its module's source,
    class name and state."""

    def __init__(self, class_name, state):
        self.class_name, self.state = class_name, state

    def __reduce__(self):
        return (_reconstruct_persistent_obj, (dict(type='class', version=6, module_src=EMBEDDED_SOURCE,
            class_name=self.class_name, state=self.state),))

_FAKE_MODULES = {'src.torch_utils.persistence': ['_reconstruct_persistent_obj'], 'src.dnnlib.util': ['EasyDict'],
    'omegaconf.dictconfig': ['DictConfig'], 'omegaconf.listconfig': ['ListConfig'], 'omegaconf.nodes': ['AnyNode'],
    'omegaconf.base': ['ContainerMetadata', 'Metadata'], 'training.layers': ['TemporalDifferenceEncoder']}
CLASSES = {name: type(name, (dict if name == 'EasyDict' else object,), {}) for names in _FAKE_MODULES.values() for name in names}

@contextlib.contextmanager
def _reference_names():
    """The reference's module names, for pickle to write; removed again before anything is loaded."""
    added = {}
    for module_name, names in _FAKE_MODULES.items():
        parts = module_name.split('.')
        for i in range(1, len(parts) + 1):
            name = '.'.join(parts[:i])
            if name not in sys.modules:
                added[name] = sys.modules[name] = types.ModuleType(name)
        for name in names:
            obj = _reconstruct_persistent_obj if name == '_reconstruct_persistent_obj' else CLASSES[name]
            obj.__module__, obj.__qualname__ = module_name, name
            setattr(sys.modules[module_name], name, obj)
    try:
        yield
    finally:
        for name in added:
            del sys.modules[name]

def easydict(**items):
    return _obj(CLASSES['EasyDict'], items=items)

def omegaconf(value, key=None, parent=None):
    """DictConfig / ListConfig / AnyNode as omegaconf 2.0 pickles them: _metadata, _parent, then _content or _val."""
    metadata = dict(ref_type=typing.Any, object_type=dict if isinstance(value, dict) else None, optional=True, key=key, flags={})
    if not isinstance(value, (dict, list)):
        return _obj(CLASSES['AnyNode'], dict(_metadata=_obj(CLASSES['Metadata'], metadata), _parent=parent, _val=value))
    node = _obj(CLASSES['DictConfig' if isinstance(value, dict) else 'ListConfig'], dict(_metadata=_obj(CLASSES['ContainerMetadata'], metadata), _parent=parent))
    items = value.items() if isinstance(value, dict) else enumerate(value)
    content = {k: omegaconf(v, k, node) for k, v in items}
    node._content = content if isinstance(value, dict) else list(content.values())
    return node

def reference_config(generator={}, discriminator={}):
    """The reference's experiment config (configs/*.yaml), as the small networks below need it; overrides per network."""
    return dict(
        dataset=dict(c_dim=0, max_num_frames=MAX_NUM_FRAMES, fps=25),
        sampling=dict(type='random', num_frames_per_video=FRAMES, max_num_frames='${dataset.max_num_frames}', max_dist=32,
            name='random${sampling.num_frames_per_video}_max${sampling.max_dist}', total_dists=[1, 2, 4, 8]),
        model=dict(
            generator=dict(dict(z_dim=8, c_dim='${dataset.c_dim}', w_dim=512, sampling='${sampling}', fuse_w='concat', bspline=False,
                bs_emb=False, offset=0, low_rank=-1, learnable_motion_mask=True, init_motion_mask='zeros', freezesyn=0,
                motion=dict(z_dim=512, v_dim=512, motion_z_distance='${model.generator.time_enc.min_period_len}', gen_strategy='conv',
                    kernel_size=3, use_fractional_t=True, fourier=True),
                time_enc=dict(cond_type='concat_const', dim=256, min_period_len=D_MOTION, max_period_len=64)), **generator),
            discriminator=dict(dict(sampling='${sampling}', concat_res=8, num_frames_div_factor=2, dummy_c=False, tsm=True, tmean=True),
                **discriminator)))

def _state(node):
    return node.state if isinstance(node, _Persistent) else vars(node)

def module_tree(tensors, buffers, classes, attrs):
    """A pickled module tree from a flat state dict: classes[path] a reference class name (persistent) or a torch class
    (plain nn.Module); buffers: the names held as buffers; attrs[path]: further attributes of that module."""
    nodes = {}
    def node(path):
        if path not in nodes:
            cls = classes[path]
            state = dict(training=False, _parameters=collections.OrderedDict(), _buffers=collections.OrderedDict(),
                _non_persistent_buffers_set=set(), _modules=collections.OrderedDict(), **attrs.get(path, {}))
            nodes[path] = _Persistent(cls, state) if isinstance(cls, str) else _obj(cls, state)
            if path:
                parent, _, name = path.rpartition('.')
                _state(node(parent))['_modules'][name] = nodes[path]
        return nodes[path]
    for path in classes:
        node(path)
    for name, value in tensors.items():
        path, _, leaf = name.rpartition('.')
        kind = '_buffers' if name in buffers else '_parameters'
        _state(node(path))[kind][leaf] = value if kind == '_buffers' else torch.nn.Parameter(value, requires_grad=False)
    return node('')

#----------------------------------------------------------------------------
# A reference generator and discriminator: ours with random weights, written out under the reference's names.

# The table, ours -> reference (prefixes), written out here independently of svc_plugin.reference.
TO_REFERENCE = [('synthesis.input_motion.', 'synthesis.input.motion_affine.'), ('synthesis.fuse.', 'synthesis.affine_w.'),
    ('synthesis.motion_encoder.conv0.', 'synthesis.motion_encoder.conv.0.'), ('synthesis.motion_encoder.conv1.', 'synthesis.motion_encoder.conv.1.'),
    ('synthesis.motion_encoder.period_predictor.', 'synthesis.motion_encoder.time_encoder.periods_predictor.'),
    ('synthesis.motion_encoder.aligner_predictor.', 'synthesis.motion_encoder.time_encoder.aligners_predictor.'),
    ('synthesis.motion_encoder.phase_predictor.', 'synthesis.motion_encoder.time_encoder.phase_predictor.'),
    ('synthesis.motion_encoder.freqs', 'synthesis.motion_encoder.time_encoder.freqs'),
    ('synthesis.motion_encoder.phase_scales', 'synthesis.motion_encoder.time_encoder.phase_scales')]
G_CLASSES = [(r'', 'Generator'), (r'synthesis', 'SynthesisNetwork3v'), (r'mapping', 'MappingNetwork3'), (r'synthesis\.input', 'SynthesisInput3v'),
    (r'synthesis\.L\d+_\d+_\d+', 'SynthesisLayer'), (r'synthesis\.motion_encoder', 'MotionMappingNetwork'),
    (r'synthesis\.motion_encoder\.time_encoder', 'AlignedTimeEncoder'), (r'synthesis\.motion_encoder\.conv', torch.nn.Sequential),
    (r'synthesis\.motion_encoder\.conv\.\d', 'EqLRConv1d'), (r'.*', 'FullyConnectedLayer')]
G_BUFFERS = ('magnitude_ema', 'up_filter', 'down_filter', 'transform', 'input.freqs', 'phases', 'time_encoder.freqs', 'phase_scales', 'w_avg')
SYNTHESIS_KWARGS = dict(channel_base=2048, channel_max=512, num_layers=2, num_critical=1, margin_size=2, num_fp16_res=0, conv_clamp=256)

def classify(paths, table):
    return {path: next(cls for pattern, cls in table if re.fullmatch(pattern, path)) for path in paths}

def reference_time_freqs(dim, min_period_len, max_period_len):
    """construct_linspaced_frequencies of the reference: ascending frequencies, [1, dim]."""
    freqs = 2 * np.pi / (2 ** np.linspace(np.log2(min_period_len), np.log2(max_period_len), dim))
    return torch.from_numpy(freqs[::-1].copy().astype(np.float32)).unsqueeze(0)

def random_video_generator(seed=0):
    """Our VideoGenerator(kind='linear') as the reference config above describes it, every weight random (mask included)
    and the reference's time-encoder buffers (ascending frequencies)."""
    torch.manual_seed(seed)
    G = VideoGenerator(z_dim=8, c_dim=0, w_dim=512, img_resolution=RES, img_channels=3, mapping_kwargs=dict(num_layers=2),
        motion_kwargs=dict(z_dim=512, v_dim=512, motion_z_distance=D_MOTION, kind='linear', max_period_len=64, kernel_size=3),
        **SYNTHESIS_KWARGS).eval().requires_grad_(False)
    freqs = reference_time_freqs(256, D_MOTION, 64)
    with torch.no_grad():
        for name, param in G.named_parameters():
            param.copy_(torch.randn_like(param) * (0.2 if name.endswith('bias') else 1))
        G.mapping.w_avg.normal_()
        G.synthesis.motion_encoder.freqs.copy_(freqs[0])
        G.synthesis.motion_encoder.phase_scales.copy_(64 / (2 * np.pi / freqs[0]))
    return G

def reference_generator_state(G):
    """Our G's state dict under the reference's names and shapes."""
    tensors = {}
    for name, value in G.state_dict().items():
        for ours, theirs in TO_REFERENCE:
            if name.startswith(ours):
                name = theirs + name[len(ours):]
                break
        squeezed = name in ('synthesis.motion_mask', 'synthesis.motion_encoder.time_encoder.freqs', 'synthesis.motion_encoder.time_encoder.phase_scales')
        tensors[name] = value.clone().unsqueeze(0) if squeezed else value.clone()
    return tensors

def reference_G(tensors, cfg, synthesis_class='SynthesisNetwork3v', w_dim=512):
    """The reference's Generator record (src/training/networks.py) with these tensors."""
    paths = {name.rpartition('.')[0] for name in tensors} | {'', 'synthesis', 'mapping'}
    paths |= {'.'.join(path.split('.')[:i]) for path in paths for i in range(1, len(path.split('.')))}
    classes = classify(paths, G_CLASSES)
    classes['synthesis'] = synthesis_class
    buffers = {name for name in tensors if name.endswith(G_BUFFERS) or name == 'synthesis.input.freqs'}
    shape = dict(c_dim=0, w_dim=w_dim, img_resolution=RES, img_channels=3)
    attrs = {'': dict(shape, z_dim=8, num_ws=4, cfg=cfg, sampling_dict=dict(type='random', num_frames_per_video=FRAMES), _init_args=(),
            _init_kwargs=dict(shape, mapping_kwargs=easydict(num_layers=2, cfg=cfg), synthesis_kwargs=easydict(**SYNTHESIS_KWARGS), cfg=cfg)),
        'synthesis': dict(w_dim=w_dim, num_ws=4, cfg=cfg, _init_args=(), _init_kwargs=dict(w_dim=w_dim, img_resolution=RES, img_channels=3,
            cfg=cfg, **SYNTHESIS_KWARGS)),
        'mapping': dict(z_dim=8, c_dim=0, w_dim=w_dim, num_ws=4, num_layers=2, w_avg_beta=0.998)}
    for path in classes: # Sizes and cutoffs as numpy arrays and scalars, as the reference's StyleGAN3 layers keep them.
        if classes[path] == 'SynthesisLayer':
            attrs[path] = dict(in_size=np.broadcast_to(np.asarray(20), [2]), in_cutoff=np.float64(2.0), use_fp16=False)
    return module_tree(tensors, buffers, classes, attrs)

D_CLASSES = [(r'', 'Discriminator'), (r'b4', 'DiscriminatorEpilogue'), (r'b\d+', 'DiscriminatorBlock'), (r'mapping', 'MappingNetwork'),
    (r'time_encoder', CLASSES['TemporalDifferenceEncoder']), (r'time_encoder\.const_embed', torch.nn.Embedding),
    (r'time_encoder\.time_encoder', 'FixedTimeEncoder'), (r'mapping\..*|b4\.fc|b4\.out', 'FullyConnectedLayer'), (r'.*', 'Conv2dLayer')]
D_KWARGS = dict(channel_base=256, channel_max=32, num_fp16_res=0, conv_clamp=256, block_kwargs=dict(freeze_layers=0),
    mapping_kwargs=dict(num_layers=2), epilogue_kwargs=dict(mbstd_group_size=2))
NUM_FREQS = 4 # construct_log_spaced_freqs(max_num_frames=16): pi * 2^i / 16, i = 0..3

def random_video_discriminator(seed=1):
    torch.manual_seed(seed)
    D = VideoDiscriminator(c_dim=0, img_resolution=RES, img_channels=3, num_frames=FRAMES, tsm=True, fuse='mean', fuse_res=8,
        time_freqs=NUM_FREQS, time_embed_dim=256, time_max_gap=MAX_NUM_FRAMES - 1, **D_KWARGS).eval().requires_grad_(False)
    with torch.no_grad():
        for param in D.parameters():
            param.copy_(torch.randn_like(param) * 0.5)
    return D

def reference_discriminator_state(D):
    """Our D's state dict under the reference's names, shapes and conditioning layout ([embedding, sin, cos] per gap)."""
    tensors = {}
    for name, value in D.state_dict().items():
        if name == 'time_encoder.embed':
            name = 'time_encoder.const_embed.weight'
        elif name == 'time_encoder.freqs':
            name, value = 'time_encoder.time_encoder.fourier_coefs', value.unsqueeze(0)
        elif name == 'mapping.embed.weight':
            blocks = value.split(2 * NUM_FREQS + 256, dim=1) # ours per gap: [sin, cos, embedding]
            value = torch.cat([torch.cat([block[:, 2 * NUM_FREQS:], block[:, :2 * NUM_FREQS]], dim=1) for block in blocks], dim=1)
        tensors[name] = value.clone()
    return tensors

def reference_D(tensors, cfg):
    paths = {name.rpartition('.')[0] for name in tensors} | {''}
    paths |= {'.'.join(path.split('.')[:i]) for path in paths for i in range(1, len(path.split('.')))}
    buffers = {name for name in tensors if name.endswith(('resample_filter', 'fourier_coefs'))}
    shape = dict(c_dim=0, img_resolution=RES, img_channels=3)
    init = dict(shape, architecture='resnet', cfg=cfg, **{key: easydict(**value) if isinstance(value, dict) else value for key, value in D_KWARGS.items()})
    return module_tree(tensors, buffers, classify(paths, D_CLASSES), {'': dict(shape, cfg=cfg, _init_args=(), _init_kwargs=init)})

def write_reference_pickle(path, generator_cfg={}, discriminator_cfg={}, synthesis_class='SynthesisNetwork3v', w_dim=512, G=None, D=None,
        G_tensors=None):
    """A network snapshot as the reference's training loop pickles it (G, D, G_ema, augment_pipe, optimizers, vis, stats);
    G_tensors: the generator's state dict under the reference's names, by default G's."""
    root = omegaconf(reference_config(generator_cfg, discriminator_cfg))
    model = root._content['model']._content
    G_tensors = reference_generator_state(G or random_video_generator()) if G_tensors is None else G_tensors
    G_record = reference_G(G_tensors, model['generator'], synthesis_class, w_dim)
    D_record = reference_D(reference_discriminator_state(D or random_video_discriminator()), model['discriminator'])
    snapshot = dict(training_set_kwargs=dict(class_name='training.dataset.VideoFramesFolderDataset', path='ytb.zip',
        cfg=root._content['dataset'], use_labels=False, xflip=False, resolution=RES),
        G=G_record, D=D_record, G_ema=G_record, augment_pipe=None, G_opt=torch.optim.Adam([torch.nn.Parameter(torch.zeros([2]))], lr=0.0025),
        vis=dict(grid_size=(2, 1)), stats=dict(cur_nimg=1000, cur_tick=1, batch_idx=10))
    with _reference_names(), open(path, 'wb') as f:
        pickle.dump(snapshot, f)
    return str(path)

@pytest.fixture(scope='module')
def networks():
    return random_video_generator(), random_video_discriminator()

@pytest.fixture(scope='module')
def reference_pkl(tmp_path_factory, networks):
    return write_reference_pickle(tmp_path_factory.mktemp('ref') / 'network-snapshot-000001.pkl', G=networks[0], D=networks[1])

@pytest.fixture(scope='module')
def converted(reference_pkl):
    return checkpoint.load_network(reference_pkl)

#----------------------------------------------------------------------------
# Reading and converting.

def test_reference_pickle_is_read_without_importing_or_running_its_code(reference_pkl, converted):
    assert 'src' not in sys.modules and 'omegaconf' not in sys.modules and 'training.layers' not in sys.modules
    with pytest.raises(ModuleNotFoundError): # What every entry point said before: the reference's code is not installed.
        with open(reference_pkl, 'rb') as f:
            pickle.load(f)
    assert type(converted['G_ema']).__name__ == 'VideoGenerator' and converted['G_ema'].synthesis.motion_encoder.kind == 'linear'
    assert type(converted['D']).__name__ == 'VideoDiscriminator' and converted['fps'] == 25
    assert converted['augment_pipe'] is None and converted['training_set_kwargs'] is None

def test_renamed_tensors_land_in_their_places(networks, converted):
    G, _ = networks
    ours = converted['G_ema'].synthesis
    assert torch.equal(ours.input_motion.weight, G.synthesis.input_motion.weight) and torch.equal(ours.fuse.bias, G.synthesis.fuse.bias)
    assert torch.equal(ours.motion_encoder.conv1.weight, G.synthesis.motion_encoder.conv1.weight)
    assert ours.motion_mask.shape == (512,) and torch.equal(ours.motion_mask, G.synthesis.motion_mask)
    freqs = ours.motion_encoder.freqs
    assert freqs.shape == (256,) and torch.equal(freqs, reference_time_freqs(256, D_MOTION, 64)[0]) and freqs[0] < freqs[-1] # the reference's order
    assert {name: value.shape for name, value in converted['G_ema'].state_dict().items()} == {name: value.shape for name, value in G.state_dict().items()}

def test_converted_generator_draws_the_frames_of_the_weights_it_was_written_from(networks, converted):
    G, _ = networks
    z = torch.randn([2, 8], generator=torch.Generator().manual_seed(3))
    t = torch.tensor([[1.5, 40], [3, 16.25]])
    for psi in [1, 0.7]:
        assert torch.equal(converted['G_ema'](z, None, t, truncation_psi=psi, motion_seeds=[1, 2]), G(z, None, t, truncation_psi=psi, motion_seeds=[1, 2]))
    assert torch.equal(converted['G'](z[:1], None, t[:1], motion_seeds=[1]), G(z[:1], None, t[:1], motion_seeds=[1]))

def _reference_motion_v(tensors, motion_z, t):
    """genforce/StyleSV MotionMappingNetwork + AlignedTimeEncoder (gen_strategy conv, linear), in float64 from its
    tensors: trajectories by two padding-free convolutions over the noise rows, key k = floor(t/d)."""
    get = lambda name: tensors['synthesis.motion_encoder.' + name].double()
    x = motion_z.double().permute(0, 2, 1) # [B, z_dim, rows]
    for i in range(2):
        weight = get(f'conv.{i}.weight')
        x = F.leaky_relu(F.conv1d(x, weight * 0.01 / np.sqrt(weight.shape[1] * weight.shape[2]), get(f'conv.{i}.bias') * 0.01), 0.2)
    trajs = x.permute(0, 2, 1) # [B, rows - 2R, z_dim]
    left = torch.floor(t / D_MOTION).long()
    batch = torch.arange(t.shape[0]).unsqueeze(1)
    u_left, u_right = trajs[batch, left], trajs[batch, left + 1] # [B, F, z_dim]
    fc = lambda name, u: u @ (get(f'time_encoder.{name}.weight') / np.sqrt(u.shape[-1])).t()
    periods, phases = fc('periods_predictor', u_left).tanh() + 1, fc('phase_predictor', u_left) * get('time_encoder.phase_scales')
    t = t.double().unsqueeze(2)
    t_left = t - t % D_MOTION
    e = lambda s: torch.cat([(get('time_encoder.freqs') * periods * s + phases).sin(), (get('time_encoder.freqs') * periods * s + phases).cos()], dim=2)
    w = (t % D_MOTION) / D_MOTION
    v = e(t) - (e(t_left) * (1 - w) + e(t_left + D_MOTION) * w) + fc('aligners_predictor', u_left) * (1 - w) + fc('aligners_predictor', u_right) * w
    return v.flatten(0, 1) # [B*F, v_dim]

def test_reference_motion_noise_gives_the_reference_motion_and_style_fusion(networks, converted):
    G, _ = networks
    tensors = reference_generator_state(G)
    t = torch.tensor([[0, 1.5, 6.25, 9], [2, 4, 11.5, 13]])
    rows = int(t.max()) // D_MOTION + 2 + 2 * 2 # as the reference draws them: ceil(max t / d) + 2 keys, + 2R
    motion_z = torch.randn([2, rows, 512], generator=torch.Generator().manual_seed(5))
    expected = _reference_motion_v(tensors, motion_z, t)
    ours = converted['G_ema'].synthesis
    v = ours.motion_encoder(None, t, motion_z=checkpoint.motion_z_from_reference(motion_z, t, converted['G_ema']))['motion_v']
    assert (v.double() - expected).abs().max() < 1e-4 # float32 against float64, phases of tens of radians

    # Motion enters as the reference's SynthesisNetwork3v: v * mask, input offset motion_affine(v), w = affine_w([w; v]).
    v = v * ours.motion_mask
    ws = torch.randn([v.shape[0], 3, 512])
    affine = lambda name, x: x @ (tensors[f'synthesis.{name}.weight'] / np.sqrt(x.shape[1])).t() + tensors[f'synthesis.{name}.bias']
    fused = torch.stack([affine('affine_w', torch.cat([ws[:, i], v], dim=1)) for i in range(3)], dim=1)
    assert torch.allclose(ours.fuse_motion(ws, v), fused, atol=1e-4)
    assert torch.allclose(ours.input_motion(v), affine('input.motion_affine', v), atol=1e-5)
    with pytest.raises(ValueError, match='rows'):
        checkpoint.motion_z_from_reference(motion_z[:, :4], t, converted['G_ema'])

def test_converted_discriminator_gives_the_logits_at_integer_gaps(networks, converted):
    _, D = networks
    torch.manual_seed(7)
    img = torch.randn([4 * FRAMES, 3, RES, RES])
    t = torch.tensor([[0., 1, 3], [2, 6, 7], [5, 9, 13], [0, 8, 15]])
    assert torch.allclose(converted['D'](img, None, t), D(img, None, t), atol=1e-5)

    # The projection mapping's first layer reads the reference's [c, per gap: embedding of round(gap), sin, cos] as it did.
    tensors = reference_discriminator_state(D)
    gaps = (t[:, 1:] - t[:, :-1]).reshape(-1, 1)
    coefs = np.pi * 2.0 ** torch.arange(NUM_FREQS) / 16 # construct_log_spaced_freqs(16)
    cond = torch.cat([tensors['time_encoder.const_embed.weight'][gaps[:, 0].round().long()], (coefs * gaps).sin(), (coefs * gaps).cos()], dim=1)
    cond = cond.reshape(t.shape[0], -1)
    weight = tensors['mapping.embed.weight']
    expected = cond @ (weight / np.sqrt(weight.shape[1])).t() + tensors['mapping.embed.bias']
    assert torch.allclose(converted['D'].mapping.embed(converted['D'].time_encoder(t)), expected, atol=1e-4)

def test_condition_columns_reorder_each_gap_and_leave_uniform_sampling_s_later_gaps_empty():
    # c_dim 2, F = 1, E = 2: ours per gap [sin, cos, e0, e1] reads the reference's [e0, e1, sin, cos].
    assert reference.condition_columns(2, 2, 2, 1, 2) == [0, 1, 4, 5, 2, 3, 8, 9, 6, 7]
    assert reference.condition_columns(2, 2, 1, 1, 2) == [0, 1, 4, 5, 2, 3, -1, -1, -1, -1] # sampling.type=uniform: one gap

#----------------------------------------------------------------------------
# What cannot be reproduced exactly is refused in one line.

@pytest.mark.parametrize('options, message', [
    (dict(generator_cfg=dict(bspline=True)), 'model.generator.bspline=true'),
    (dict(generator_cfg=dict(fuse_w='add')), "model.generator.fuse_w='add'"),
    (dict(generator_cfg=dict(low_rank=4)), 'model.generator.low_rank=4'),
    (dict(w_dim=256), 'w_dim=256'),
    (dict(generator_cfg=dict(motion=dict(z_dim=512, v_dim=256, motion_z_distance=4, gen_strategy='conv', kernel_size=3, fourier=True))), 'motion.v_dim=256'),
    (dict(synthesis_class='SynthesisNetwork'), 'not a StyleGAN3 video generator'),
])
def test_what_cannot_be_reproduced_is_refused_in_one_line(tmp_path, networks, options, message):
    # Refused on the configuration, before any weight is read: a generator of one tensor will do.
    path = write_reference_pickle(tmp_path / 'ref.pkl', D=networks[1], G_tensors={'mapping.w_avg': torch.zeros([512])}, **options)
    with pytest.raises(checkpoint.NetworkLoadError) as info:
        checkpoint.load_network(path)
    assert message in str(info.value) and '\n' not in str(info.value) and path in str(info.value)
    code = None
    try:
        gen_video.run([f'--network={path}', f'--outdir={tmp_path / "out"}', '--frames=2'])
    except SystemExit as exit:
        code = exit.code
    assert isinstance(code, str) and code.startswith('error: ') and message in code and '\n' not in code

def test_converter_cli_refuses_a_stylegan_v_pickle_in_one_line(tmp_path, networks):
    path = write_reference_pickle(tmp_path / 'stylegan-v.pkl', D=networks[1], G_tensors={'mapping.w_avg': torch.zeros([512])},
        synthesis_class='SynthesisNetwork')
    result = subprocess.run([sys.executable, '-m', 'svc_plugin.checkpoint', f'--source={path}', f'--dest={tmp_path / "x.pt"}'],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and 'Traceback' not in result.stderr and not os.path.exists(tmp_path / 'x.pt')
    assert len(result.stderr.strip().splitlines()) == 1 and 'not a StyleGAN3 video generator' in result.stderr

def test_a_discriminator_without_counterpart_leaves_the_generator_usable(tmp_path, networks):
    path = write_reference_pickle(tmp_path / 'ref.pkl', discriminator_cfg=dict(tmean=False), G=networks[0], D=networks[1])
    snapshot = checkpoint.load_network(path)
    assert snapshot['D'] is None and 'tmean=false' in snapshot['D_refused']
    assert type(checkpoint.load_generator(path)).__name__ == 'VideoGenerator'
    data = str(tmp_path / 'data.zip')
    dataset_tool.write_demo_dataset(data, num_videos=2, num_frames=8, resolution=RES)
    result = subprocess.run([sys.executable, 'train_video.py', f'--data={data}', '--cfg=stylegan3-t', '--stage=video', f'--resume={path}', f'--outdir={tmp_path / "runs"}'],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and 'Traceback' not in result.stderr and 'tmean=false' in result.stderr.strip().splitlines()[-1]

#----------------------------------------------------------------------------
# Every entry point.

def test_weights_only_export_draws_the_same_frames(reference_pkl, converted, tmp_path):
    dest = tmp_path / 'ref.pt'
    result = subprocess.run([sys.executable, '-m', 'svc_plugin.checkpoint', f'--source={reference_pkl}', f'--dest={dest}'],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    torch.load(dest, weights_only=True)
    rebuilt = checkpoint.load_network(str(dest))
    z, t = torch.randn([1, 8]), torch.tensor([[0, 5.5, 9]])
    assert torch.equal(rebuilt['G_ema'](z, None, t, motion_seeds=[4]), converted['G_ema'](z, None, t, motion_seeds=[4]))
    assert type(rebuilt['D']).__name__ == 'VideoDiscriminator' and rebuilt['fps'] == 25

def test_gen_video_writes_a_video_from_the_reference_snapshot(reference_pkl, tmp_path):
    assert gen_video.run([f'--network={reference_pkl}', f'--outdir={tmp_path}', '--frames=3', '--seeds=0']) is None
    assert len(os.listdir(tmp_path)) == 1

def test_video_stage_resumes_from_the_reference_snapshot(reference_pkl, tmp_path):
    data = str(tmp_path / 'data.zip')
    dataset_tool.write_demo_dataset(data, num_videos=4, num_frames=16, resolution=RES)
    result = subprocess.run([sys.executable, 'train_video.py', f'--data={data}', '--cfg=stylegan3-t', '--stage=video', f'--resume={reference_pkl}',
        '--frames=3', '--kimg=0.012', '--tick=0.012', '--batch=4', '--workers=0', '--metrics=none', '--grid=1x1', '--snap=1',
        '--motion=linear', f'--motion-dist={D_MOTION}', f'--outdir={tmp_path / "runs"}'],
        cwd=ROOT, env=dict(os.environ, OMP_NUM_THREADS='1'), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    [run_dir] = os.listdir(tmp_path / 'runs')
    with open(tmp_path / 'runs' / run_dir / 'network-snapshot-000000.pkl', 'rb') as f:
        snapshot = pickle.load(f)
    assert type(snapshot['G_ema']).__name__ == 'VideoGenerator' and snapshot['G_ema'].synthesis.motion_encoder.kind == 'linear'
    assert snapshot['D'].num_frames == FRAMES and snapshot['D'].tsm

#----------------------------------------------------------------------------
