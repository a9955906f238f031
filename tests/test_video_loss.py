"""Tests for svc_plugin.loss: VideoLoss on clips (times to G and D, one augmentation draw per clip,
R1 averaged over the frames of real clips, each phase training its own network) and the image stage without times."""

import pytest
import torch

from svc_plugin.discriminator import VideoDiscriminator
from svc_plugin import loss as video_loss
from svc_plugin.loss import VideoLoss, augment_clips
from svc_plugin.networks import VideoGenerator
from torch_utils import training_stats
from torch_utils.ops import grid_sample_gradfix
from training import networks_stylegan2
from training.augment import AugmentPipe

RES = 16
BATCH, FRAMES = 2, 3
PHASES = ['Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth']
ALL_AUGMENTS = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1,
    brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)

#----------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _second_order_grid_sample(monkeypatch):
    """R1 through ADA's augmentation needs grid_sample's double backward: on, as the training loops set it."""
    monkeypatch.setattr(grid_sample_gradfix, 'enabled', True)

#----------------------------------------------------------------------------
# A tiny generator with the video generator's interface: G.mapping(z, c) -> ws [batch, num_ws, w_dim],
# G.synthesis(ws, c=c, t=t) -> frames [batch * frames, C, H, W], video-major; t=None means frame 0.

class ClipMapping(torch.nn.Module):
    def __init__(self, z_dim, w_dim, num_ws):
        super().__init__()
        self.num_ws = num_ws
        self.fc = torch.nn.Linear(z_dim, w_dim)

    def forward(self, z, c, truncation_psi=1, truncation_cutoff=None, update_emas=False):
        return torch.tanh(self.fc(z)).unsqueeze(1).repeat(1, self.num_ws, 1) # [batch, num_ws, w_dim]

class ClipSynthesis(torch.nn.Module):
    def __init__(self, w_dim, num_ws):
        super().__init__()
        self.content = torch.nn.Linear(num_ws * w_dim, 3 * RES * RES)
        self.motion = torch.nn.Parameter(torch.randn([3 * RES * RES]))
        self.calls = []

    def forward(self, ws, c=None, t=None, update_emas=False):
        self.calls.append(dict(c=c, t=t))
        t = torch.zeros([ws.shape[0], 1], device=ws.device) if t is None else t
        frames = self.content(ws.flatten(1)).unsqueeze(1) + torch.sin(t.unsqueeze(2) * self.motion) # [batch, frames, 3*H*W]
        return torch.tanh(frames).reshape(-1, 3, RES, RES)

class ClipG(torch.nn.Module):
    def __init__(self, z_dim=8, w_dim=8, num_ws=4):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, 0, w_dim, num_ws
        self.mapping = ClipMapping(z_dim, w_dim, num_ws)
        self.synthesis = ClipSynthesis(w_dim, num_ws)

    def forward(self, z, c, t=None, update_emas=False):
        return self.synthesis(self.mapping(z, c), c=c, t=t, update_emas=update_emas)

#----------------------------------------------------------------------------

def _video_D(**kwargs):
    return VideoDiscriminator(0, RES, 3, num_frames=FRAMES, fuse_res=8, channel_base=512, channel_max=16, **kwargs)

def _data(seed=0):
    g = torch.Generator().manual_seed(seed)
    times = lambda: torch.sort(torch.rand([BATCH, FRAMES], generator=g) * 32, dim=1).values
    return dict(real_img=torch.rand([BATCH * FRAMES, 3, RES, RES], generator=g) * 2 - 1, real_c=torch.zeros([BATCH, 0]),
        gen_z=torch.randn([BATCH, 8], generator=g), gen_c=torch.zeros([BATCH, 0]), real_t=times(), gen_t=times())

def _setup(G=None, D=None, **loss_kwargs):
    torch.manual_seed(0)
    G = ClipG() if G is None else G
    D = _video_D() if D is None else D
    return VideoLoss(device=torch.device('cpu'), G=G, D=D, **loss_kwargs), G, D

def _run(loss, phase, data, seed=1):
    torch.manual_seed(seed)
    loss.accumulate_gradients(phase=phase, gain=1, cur_nimg=0, **data)

def _grad_sum(module):
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    assert all(torch.isfinite(g).all() for g in grads)
    return sum(g.abs().sum().item() for g in grads)

def _record_D_inputs(D):
    inputs = []
    def record(module, args):
        inputs.append(args[0].detach())
    D.register_forward_pre_hook(record)
    return inputs

#----------------------------------------------------------------------------

@pytest.mark.parametrize('phase', PHASES)
def test_each_phase_gives_gradients_to_its_network(phase):
    loss, G, D = _setup(r1_gamma=1, pl_weight=1, blur_init_sigma=1, blur_fade_kimg=1,
        augment_pipe=AugmentPipe(xflip=1, scale=1, brightness=1))
    _run(loss, phase, _data())
    trained = G if phase.startswith('G') else D
    assert _grad_sum(trained) > 0
    if phase.startswith('D'):
        assert all(p.grad is None for p in G.parameters()) # G runs without a graph in D's phases

def test_generator_and_discriminator_see_the_clip_times():
    loss, G, D = _setup(r1_gamma=0)
    data = _data()
    inputs = _record_D_inputs(D)
    _run(loss, 'Dmain', data)
    assert len(G.synthesis.calls) == 1 and torch.equal(G.synthesis.calls[0]['t'], data['gen_t'])
    assert [x.shape[0] for x in inputs] == [BATCH * FRAMES, BATCH * FRAMES] # fake clips, then real clips
    assert torch.equal(inputs[1], data['real_img'])

#----------------------------------------------------------------------------

def test_one_augmentation_draw_per_clip():
    torch.manual_seed(0)
    pipe = AugmentPipe(**ALL_AUGMENTS)
    a, b = torch.rand([2, 3, RES, RES]) * 2 - 1
    clips = torch.stack([a, b, a]).repeat(4, 1, 1, 1) # 4 clips, each (a, b, a): [4 * 3, C, H, W]
    out = augment_clips(pipe, clips, num_frames=3).reshape(4, 3, 3, RES, RES)
    for clip in range(4):
        # Frames 0 and 2 hold the same image: the same transform makes them equal again; frame 1 differs.
        torch.testing.assert_close(out[clip, 0], out[clip, 2])
        assert not torch.allclose(out[clip, 0], out[clip, 1], atol=1e-3)
    for clip in range(1, 4): # the same content in every clip: different draws make them differ
        assert not torch.allclose(out[0, 0], out[clip, 0], atol=1e-3)

def test_augmentation_in_the_loss_is_shared_by_the_frames_of_each_real_clip():
    loss, G, D = _setup(r1_gamma=0, augment_pipe=AugmentPipe(**ALL_AUGMENTS))
    data = _data()
    data['real_img'] = data['real_img'][:1].repeat(BATCH * FRAMES, 1, 1, 1) # every frame of every clip the same image
    inputs = _record_D_inputs(D)
    _run(loss, 'Dmain', data)
    real = inputs[1].reshape(BATCH, FRAMES, 3, RES, RES)
    for f in range(1, FRAMES):
        torch.testing.assert_close(real[:, f], real[:, 0])
    assert not torch.allclose(real[0, 0], real[1, 0], atol=1e-3)

def test_augment_clips_leaves_the_rng_where_one_call_would():
    pipe = AugmentPipe(xflip=1, brightness=1)
    torch.manual_seed(5)
    augment_clips(pipe, torch.zeros([BATCH * FRAMES, 3, RES, RES]), num_frames=FRAMES)
    after_clips = torch.rand([4])
    torch.manual_seed(5)
    pipe(torch.zeros([BATCH, 3, RES, RES]))
    assert torch.equal(after_clips, torch.rand([4]))

def test_augment_clips_rewinds_the_generator_the_pipe_draws_from(monkeypatch):
    """As on CUDA, where the pipe draws from the device's generator, not the CPU's: here a generator object stands
    in for it, rewound through rng_state_functions."""
    device_rng = torch.Generator().manual_seed(3)
    monkeypatch.setattr(video_loss, 'rng_state_functions', lambda device: (device_rng.get_state, device_rng.set_state))
    pipe = lambda x: x + torch.rand([x.shape[0], 1, 1, 1], generator=device_rng)
    out = augment_clips(pipe, torch.zeros([BATCH * FRAMES, 3, RES, RES]), num_frames=FRAMES).reshape(BATCH, FRAMES, 3, RES, RES)
    for f in range(1, FRAMES):
        assert torch.equal(out[:, f], out[:, 0])
    assert not torch.equal(out[0, 0], out[1, 0])
    after_clips = torch.rand([4], generator=device_rng)
    device_rng.manual_seed(3)
    pipe(torch.zeros([BATCH, 3, RES, RES]))
    assert torch.equal(after_clips, torch.rand([4], generator=device_rng))

def test_rng_state_functions_of_a_cuda_device_save_and_restore_that_device_s_generator(monkeypatch):
    """torch.cuda's RNG functions replaced by per-device generator objects, so that the CUDA branch runs without a GPU."""
    devices = {0: torch.Generator().manual_seed(0), 1: torch.Generator().manual_seed(1)}
    monkeypatch.setattr(torch.cuda, 'get_rng_state', lambda device='cuda': devices[torch.device(device).index or 0].get_state())
    monkeypatch.setattr(torch.cuda, 'set_rng_state', lambda new_state, device='cuda': devices[torch.device(device).index or 0].set_state(new_state))
    get_state, set_state = video_loss.rng_state_functions(torch.device('cuda', 1))
    state = get_state()
    draws = lambda: (torch.rand([3]), torch.rand([3], generator=devices[1]), torch.rand([3], generator=devices[0]))
    first = draws()
    set_state(state)
    second = draws()
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1]) # The CPU's and device 1's rewound ...
    assert not torch.equal(first[2], second[2]) # ... device 0's not.

#----------------------------------------------------------------------------

class FrameProductD(torch.nn.Module):
    """Toy clip D: sum over frames of (w_f . x_f)^2, so frame f's gradient is 2 (w_f . x_f) w_f."""
    def __init__(self):
        super().__init__()
        self.weight = torch.nn.Parameter(torch.randn([FRAMES, 3 * RES * RES]))

    def forward(self, img, c, t=None, update_emas=False):
        x = img.reshape(-1, FRAMES, 3 * RES * RES) # [batch, frames, C*H*W]
        return (x * self.weight).sum(dim=2).square().sum(dim=1, keepdim=True) # [batch, 1]

def test_r1_penalty_is_each_frame_s_squared_gradient_norm_averaged_over_the_clip():
    gamma = 4
    loss, G, D = _setup(D=FrameProductD(), r1_gamma=gamma)
    data = _data()
    collector = training_stats.Collector(regex='Loss/.*')
    _run(loss, 'Dreg', data)
    collector.update()

    x = data['real_img'].reshape(BATCH, FRAMES, -1)
    per_frame = (2 * (x * D.weight).sum(dim=2, keepdim=True) * D.weight).square().sum(dim=2) # [batch, frames]
    assert (per_frame > 0).all() # every frame contributes
    assert collector.num('Loss/r1_penalty') == BATCH
    assert collector.mean('Loss/r1_penalty') == pytest.approx(per_frame.mean().item(), rel=1e-4) # not FRAMES times it
    assert collector.mean('Loss/D/reg') == pytest.approx(per_frame.mean().item() * gamma / 2, rel=1e-4)

def test_upstream_loss_statistics_are_reported_per_clip():
    loss, G, D = _setup(r1_gamma=1, pl_weight=1)
    collector = training_stats.Collector(regex='Loss/.*')
    for phase in ['Gboth', 'Dboth']:
        _run(loss, phase, _data())
    collector.update()
    for name in ['Loss/scores/fake', 'Loss/signs/fake', 'Loss/G/loss', 'Loss/pl_penalty', 'Loss/G/reg',
                 'Loss/scores/real', 'Loss/signs/real', 'Loss/D/loss', 'Loss/r1_penalty', 'Loss/D/reg']:
        assert collector.num(name) > 0, name
    assert collector.num('Loss/scores/real') == BATCH and collector.num('Loss/signs/fake') == 2 * BATCH

def test_style_mixing_draws_ws_from_a_second_latent_from_a_cutoff_on():
    loss, G, D = _setup(style_mixing_prob=1)
    data = _data()
    _img, ws = loss.run_G(data['gen_z'], data['gen_c'], t=data['gen_t'])
    plain = G.mapping(data['gen_z'], data['gen_c'])
    mixed = [not torch.allclose(ws[:, i], plain[:, i]) for i in range(G.num_ws)]
    assert not mixed[0] and mixed[-1] and mixed == sorted(mixed)

#----------------------------------------------------------------------------

def test_without_times_the_loss_trains_upstream_image_networks():
    torch.manual_seed(0)
    D = networks_stylegan2.Discriminator(0, RES, 3, channel_base=512, channel_max=16)
    loss, G, D = _setup(D=D, r1_gamma=1)
    data = dict(_data(), real_img=torch.rand([BATCH, 3, RES, RES]) * 2 - 1, real_t=None, gen_t=None)
    for phase, net in [('Gmain', G), ('Dboth', D)]:
        _run(loss, phase, data)
        assert _grad_sum(net) > 0
    assert all(call['t'] is None and call['c'] is None for call in G.synthesis.calls) # called as G.synthesis(ws)

#----------------------------------------------------------------------------

def test_the_video_generator_learns_motion_from_the_clip_loss():
    torch.manual_seed(0)
    G = VideoGenerator(z_dim=32, c_dim=0, w_dim=32, img_resolution=RES, img_channels=3, channel_base=1024,
        channel_max=32, num_layers=4, num_critical=1, margin_size=4,
        motion_kwargs=dict(z_dim=32, v_dim=32, motion_z_distance=4, max_period_len=64))
    loss, G, D = _setup(G=G, r1_gamma=1)
    data = dict(_data(), gen_z=torch.randn([BATCH, 32]))
    _run(loss, 'Gmain', data)
    # The motion mask starts at zero (frames = the image generator's) and gets a gradient from the clips.
    assert G.synthesis.motion_mask.grad.abs().sum() > 0 and _grad_sum(G.mapping) > 0
    G.zero_grad(set_to_none=True)
    _run(loss, 'Dboth', data)
    assert _grad_sum(D) > 0 and all(p.grad is None for p in G.parameters())

#----------------------------------------------------------------------------
