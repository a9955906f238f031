"""Tests for svc_plugin.networks: the video generator, image->video conversion, low-rank modulation, pickles."""

import io
import os
import pickle
import subprocess
import sys
import textwrap

import pytest
import torch

import legacy
from torch_utils import misc
from training import networks_stylegan2
from training import networks_stylegan3
from svc_plugin import networks

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MOTION = dict(z_dim=32, v_dim=32, motion_z_distance=4, max_period_len=64)
SMALL = dict(channel_base=1024, channel_max=32, num_layers=4, num_critical=1, margin_size=4)

def _image_generator(c_dim=0, seed=0, **kwargs):
    torch.manual_seed(seed)
    return networks_stylegan3.Generator(z_dim=32, c_dim=c_dim, w_dim=32, img_resolution=16, img_channels=3, **SMALL, **kwargs)

def _video_generator(low_rank=0, fuse_w='concat', motion_on=True, seed=0, **motion_kwargs):
    """A small video generator; motion_on sets the mask to non-zero so that frames depend on t."""
    torch.manual_seed(seed)
    G = networks.VideoGenerator(z_dim=32, c_dim=0, w_dim=32, img_resolution=16, img_channels=3, **SMALL,
        motion_kwargs=dict(MOTION, **motion_kwargs), fuse_w=fuse_w, low_rank=low_rank)
    if motion_on:
        with torch.no_grad():
            G.synthesis.motion_mask.fill_(1)
            for name, param in G.named_parameters():
                if name.endswith('temporal_gain'):
                    param.fill_(0.5)
    return G.eval()

def _frames(G, z, t, **kwargs):
    with torch.no_grad():
        if t is not None:
            kwargs['t'] = torch.as_tensor(t, dtype=torch.float32)
        return G(z, None, **kwargs)

@pytest.fixture(scope='module')
def G_image():
    return _image_generator()

@pytest.fixture(scope='module')
def G_video():
    return _video_generator(low_rank=2)

@pytest.fixture(scope='module')
def z():
    return torch.randn([2, 32], generator=torch.Generator().manual_seed(1))

#----------------------------------------------------------------------------

@pytest.mark.parametrize('fuse_w', ['concat', 'add'])
@pytest.mark.parametrize('low_rank', [0, 2])
def test_converted_image_generator_renders_its_images_at_every_t(G_image, z, fuse_w, low_rank):
    G = networks.VideoGenerator.from_image_generator(G_image, motion_kwargs=MOTION, fuse_w=fuse_w, low_rank=low_rank)
    images = _frames(G_image, z, None)
    t = [[0, 3.3, 17.5, 1e6], [5, 7, 9.25, 400]]
    frames = _frames(G, z, t)
    assert frames.shape == (8, 3, 16, 16)
    assert (frames - images.repeat_interleave(4, dim=0)).abs().max() < 1e-5
    assert (_frames(G, z, None) - images).abs().max() < 1e-5 # G(z, c) works like an image generator

def test_converted_snapshot_pickle_renders_its_images(G_image, z):
    D = networks_stylegan2.Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=16)
    snapshot = dict(G=G_image, D=D, G_ema=G_image, augment_pipe=None, training_set_kwargs=None)
    snapshot = {k: v.eval().requires_grad_(False) if isinstance(v, torch.nn.Module) else v for k, v in snapshot.items()}
    loaded = legacy.load_network_pkl(io.BytesIO(pickle.dumps(snapshot)))['G_ema']
    G = networks.VideoGenerator.from_image_generator(loaded, motion_kwargs=MOTION, low_rank=1)
    assert not G.training and not any(p.requires_grad for p in G.parameters())
    assert (_frames(G, z, [[0, 2.5], [9, 1e5]]) - _frames(G_image, z, None).repeat_interleave(2, dim=0)).abs().max() < 1e-5

def test_conversion_copies_every_image_weight_and_keeps_options(G_image):
    G = networks.VideoGenerator.from_image_generator(G_image, motion_kwargs=MOTION, low_rank=2)
    video = dict(misc.named_params_and_buffers(G))
    for name, tensor in misc.named_params_and_buffers(G_image):
        assert torch.equal(video[name], tensor), name
    assert G.init_kwargs.channel_base == SMALL['channel_base'] and G.init_kwargs.low_rank == 2
    assert G.motion_z_distance == MOTION['motion_z_distance']
    assert not G.synthesis.motion_mask.any()

def test_conversion_rejects_a_stylegan2_generator():
    G2 = networks_stylegan2.Generator(z_dim=32, c_dim=0, w_dim=32, img_resolution=16, img_channels=3, channel_base=256, channel_max=16)
    with pytest.raises(ValueError, match='not a StyleGAN3 image generator'):
        networks.VideoGenerator.from_image_generator(G2, motion_kwargs=MOTION)

def test_motion_mask_and_fusion_learn_from_the_first_step(G_image, z):
    # Mask at zero and every weight reading v random: the mask gets a gradient at the first step, and once it has
    # moved, each weight reading v (the fusion's v columns, the input's motion layer) gets one of its own.
    G = networks.VideoGenerator.from_image_generator(G_image, motion_kwargs=MOTION).requires_grad_(True)
    reads_v = lambda: [G.synthesis.fuse.weight.grad[:, G.synthesis.w_dim:], G.synthesis.input_motion.weight.grad]
    G(z[:1], None, t=torch.tensor([[0.0, 5.0]])).square().sum().backward()
    assert G.synthesis.motion_mask.grad.abs().max() > 0
    assert [grad.abs().max().item() for grad in reads_v()] == [0, 0] # v is gated off: the image generator's frames.
    with torch.no_grad():
        G.synthesis.motion_mask -= 0.01 * G.synthesis.motion_mask.grad # One SGD step.
    G.zero_grad()
    G(z[:1], None, t=torch.tensor([[0.0, 5.0]])).square().sum().backward()
    assert all(grad.abs().max() > 0 for grad in reads_v())

#----------------------------------------------------------------------------

def test_frames_are_video_major(G_video, z):
    t = torch.tensor([[0, 13.25], [4, 30]])
    frames = _frames(G_video, z, t, motion_seeds=[3, 4])
    for b, f in [(0, 1), (1, 0)]:
        single = _frames(G_video, z[b:b+1], t[b:b+1, f:f+1], motion_seeds=[[3, 4][b]])
        assert (frames[b * 2 + f] - single[0]).abs().max() < 1e-4

def test_frames_move_over_time(G_video, z):
    frames = _frames(G_video, z[:1], [[0, 1, 40]], motion_seeds=[0])
    assert (frames[0] - frames[1]).abs().max() > 1e-4 and (frames[1] - frames[2]).abs().max() > 1e-4

def test_chunked_generation_equals_one_piece(G_video, z):
    t = torch.arange(12, dtype=torch.float32).reshape(1, -1) * 1.5
    whole = _frames(G_video, z[:1], t, motion_seeds=[7])
    chunks = torch.cat([_frames(G_video, z[:1], t[:, lo:hi], motion_seeds=[7]) for lo, hi in [(0, 5), (5, 6), (6, 12)]])
    assert (chunks - whole).abs().max() < 1e-4

def test_cyclic_frames_repeat_exactly(G_video, z):
    period = 5 * MOTION['motion_z_distance']
    t = torch.tensor([[0, 0.5, 7.25, 19.875]])
    frames = _frames(G_video, z[:1], t, motion_seeds=[1], motion_period=period)
    for shift in [period, 50000 * period]:
        assert (_frames(G_video, z[:1], t + shift, motion_seeds=[1], motion_period=period) - frames).abs().max() < 1e-5

def test_far_frames_equal_shifted_noise(G_video, z):
    t = torch.tensor([[0, 1.5, 6.75]])
    with torch.no_grad():
        motion_z = G_video.synthesis.motion_encoder(None, t, motion_seeds=[2])['motion_z']
    near = _frames(G_video, z[:1], t, motion_z=motion_z)
    far = _frames(G_video, z[:1], t + 1e6, motion_z=motion_z) # 1e6 is a multiple of motion_z_distance
    assert torch.isfinite(far).all() and (far - near).abs().max() < 1e-4

@pytest.mark.parametrize('fuse_w', ['concat', 'add'])
def test_motion_leaves_the_input_transform_alone_and_moves_the_layers_styles(fuse_w, z):
    G = _video_generator(fuse_w=fuse_w)
    with torch.no_grad():
        G.synthesis.input.affine.weight.normal_() # Zero at init: the transform would ignore w altogether.
    outputs = {'input': [], 'layer': []}
    G.synthesis.input.affine.register_forward_hook(lambda module, args, out: outputs['input'].append(out))
    getattr(G.synthesis, G.synthesis.layer_names[0]).affine.register_forward_hook(lambda module, args, out: outputs['layer'].append(out))
    _frames(G, z[:1], [[0]], motion_seeds=[0])
    _frames(G, z[:1], [[9.5]], motion_seeds=[5]) # Other time, other motion codes.
    assert torch.equal(outputs['input'][0], outputs['input'][1]) # ws[0] is the content's: no global rotation/translation from motion.
    assert not torch.allclose(outputs['layer'][0], outputs['layer'][1])

def test_noise_kwargs_and_truncation_pass_through(G_video, z):
    t = [[0.0, 3.0]]
    a = _frames(G_video, z[:1], t, motion_seeds=[0], noise_mode='const', force_fp32=True, truncation_psi=0.5)
    b = _frames(G_video, z[:1], t, motion_seeds=[0])
    assert a.shape == b.shape and (a - b).abs().max() > 0

#----------------------------------------------------------------------------

def test_low_rank_is_a_no_op_at_init(G_image, z):
    G = networks.VideoGenerator.from_image_generator(G_image, motion_kwargs=MOTION, low_rank=3)
    plain = networks.VideoGenerator.from_image_generator(G_image, motion_kwargs=MOTION)
    misc.copy_params_and_buffers(G, plain) # same motion weights too
    with torch.no_grad():
        for g in (G, plain):
            g.synthesis.motion_mask.fill_(1) # motion on, temporal gains still zero
    t = [[0, 3.5], [8, 21]]
    assert (_frames(G, z, t, motion_seeds=[0, 1]) - _frames(plain, z, t, motion_seeds=[0, 1])).abs().max() < 1e-6

def test_low_rank_gain_learns_at_once_and_factors_after_one_step(G_image, z):
    G = networks.VideoGenerator.from_image_generator(G_image, motion_kwargs=MOTION, low_rank=2).requires_grad_(True)
    t = torch.tensor([[0.0, 5.0]])
    layers = [getattr(G.synthesis, name) for name in G.synthesis.layer_names]

    G(z[:1], None, t=t, motion_seeds=[0]).square().sum().backward()
    assert all(layer.temporal_gain.grad.abs().max() > 0 for layer in layers)
    assert all(not layer.temporal_weight_out.grad.any() for layer in layers) # gated by the zero gain

    torch.optim.Adam(G.parameters(), lr=1e-2).step()
    G.zero_grad()
    G(z[:1], None, t=t, motion_seeds=[0]).square().sum().backward()
    for layer in layers:
        for param in [layer.temporal_weight_out, layer.temporal_weight_in, layer.temporal_affine.weight]:
            assert param.grad.abs().max() > 0

def test_factored_low_rank_conv_equals_the_dense_modulated_conv(G_video):
    torch.manual_seed(0)
    for name in G_video.synthesis.layer_names[:2] + G_video.synthesis.layer_names[-1:]:
        layer = getattr(G_video.synthesis, name)
        x = torch.randn([3, layer.in_channels, 9, 9])
        v = torch.randn([3, layer.motion_dim])
        input_gain = torch.tensor(0.7)
        with torch.no_grad():
            ours = layer.temporal_conv(x, v, input_gain)
            dense = networks_stylegan3.modulated_conv2d(x=x, w=layer.temporal_kernel(), s=layer.temporal_affine(v),
                padding=layer.conv_kernel - 1, demodulate=True, input_gain=input_gain)
        assert torch.allclose(ours, dense * layer.temporal_gain.reshape(1, -1, 1, 1), atol=1e-5), name

def test_temporal_kernel_has_rank_at_most_r(G_video):
    layer = getattr(G_video.synthesis, G_video.synthesis.layer_names[1])
    kernel = layer.temporal_kernel() # [C_out, C_in, k, k]
    assert torch.linalg.matrix_rank(kernel[:, :, 1, 1]).item() <= layer.low_rank

#----------------------------------------------------------------------------

def test_invalid_fusion_is_rejected():
    with pytest.raises(ValueError, match='fuse_w'):
        networks.VideoGenerator(z_dim=32, c_dim=0, w_dim=32, img_resolution=16, img_channels=3, **SMALL, fuse_w='mul')

def test_label_conditions_content_and_motion(z):
    torch.manual_seed(0)
    G = networks.VideoGenerator(z_dim=32, c_dim=4, w_dim=32, img_resolution=16, img_channels=3, **SMALL, motion_kwargs=MOTION)
    c = torch.eye(4)[:2]
    t = torch.tensor([[0.0, 6.0], [0.0, 6.0]])
    with torch.no_grad():
        frames = G(z[:1].repeat(2, 1), c, t=t, motion_seeds=[0, 0])
        motion_v = G.synthesis.motion_encoder(c, t, motion_seeds=[0, 0])['motion_v']
    assert frames.shape == (4, 3, 16, 16) and (frames[:2] - frames[2:]).abs().max() > 1e-4
    assert (motion_v[:2] - motion_v[2:]).abs().max() > 1e-4

def test_rebuilding_from_init_kwargs_gives_the_same_network(G_video, z):
    clone = type(G_video)(**G_video.init_kwargs).eval()
    misc.copy_params_and_buffers(G_video, clone, require_all=True)
    t = [[0, 4.5, 13]]
    assert torch.equal(_frames(clone, z[:1], t, motion_seeds=[5]), _frames(G_video, z[:1], t, motion_seeds=[5]))

def test_pickle_round_trip_in_a_fresh_process(G_video, z, tmp_path):
    # The fresh process puts only the upstream layer on sys.path: the pickle carries everything else.
    t = torch.tensor([[0, 2.5, 1e6 + 0.25], [3, 3.5, 77]])
    expected = _frames(G_video, z, t, motion_seeds=[1, 2], motion_period=None)
    with open(tmp_path / 'snapshot.pkl', 'wb') as f:
        pickle.dump(dict(G=G_video, D=G_video, G_ema=G_video), f)
    torch.save(dict(z=z, t=t), tmp_path / 'inputs.pt')
    script = textwrap.dedent(f'''
        import sys
        sys.path.insert(0, {os.path.join(ROOT, 'third_party', 'stylegan3')!r})
        import torch, legacy
        with open({str(tmp_path / 'snapshot.pkl')!r}, 'rb') as f:
            G = legacy.load_network_pkl(f)['G_ema']
        assert 'svc_plugin' not in sys.modules
        inputs = torch.load({str(tmp_path / 'inputs.pt')!r})
        with torch.no_grad():
            frames = G(inputs['z'], None, t=inputs['t'], motion_seeds=[1, 2])
        torch.save(frames, {str(tmp_path / 'frames.pt')!r})
    ''')
    subprocess.run([sys.executable, '-c', script], check=True, cwd=tmp_path, env=dict(os.environ, PYTHONPATH=''))
    assert torch.equal(torch.load(tmp_path / 'frames.pt'), expected)

#----------------------------------------------------------------------------
