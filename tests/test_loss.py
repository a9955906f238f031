"""Tests for training.loss: StyleGAN2Loss phases, R1 and path-length regularisation, style mixing and the blur fade-in."""

import numpy as np
import pytest
import torch

from torch_utils import training_stats
from torch_utils.ops import grid_sample_gradfix
from training import networks_stylegan2
from training import networks_stylegan3
from training.augment import AugmentPipe
from training.loss import StyleGAN2Loss

RES = 8
PHASES = ['Gmain', 'Greg', 'Gboth', 'Dmain', 'Dreg', 'Dboth']

#----------------------------------------------------------------------------

@pytest.fixture(autouse=True)
def _second_order_grid_sample(monkeypatch):
    """R1 through ADA's augmentation needs grid_sample's double backward: on, as the training loops set it."""
    monkeypatch.setattr(grid_sample_gradfix, 'enabled', True)

#----------------------------------------------------------------------------
# Tiny stand-in networks with the interface the loss relies on.

class TinyMapping(torch.nn.Module):
    def __init__(self, z_dim=4, w_dim=6, num_ws=4):
        super().__init__()
        self.num_ws = num_ws
        self.fc = torch.nn.Linear(z_dim, w_dim)
        self.calls = 0

    def forward(self, z, c, update_emas=False):
        self.calls += 1
        return torch.tanh(self.fc(z)).unsqueeze(1).repeat(1, self.num_ws, 1) # [N, num_ws, w_dim]

class TinySynthesis(torch.nn.Module):
    def __init__(self, w_dim=6, num_ws=4):
        super().__init__()
        self.fc = torch.nn.Linear(num_ws * w_dim, 3 * RES * RES)

    def forward(self, ws, update_emas=False):
        return torch.tanh(self.fc(ws.flatten(1))).reshape(-1, 3, RES, RES)

class TinyG(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.z_dim, self.c_dim, self.num_ws = 4, 0, 4
        self.mapping = TinyMapping(num_ws=self.num_ws)
        self.synthesis = TinySynthesis(num_ws=self.num_ws)

class TinyD(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3, padding=1)
        self.fc = torch.nn.Linear(4 * RES * RES, 1)
        self.inputs = []

    def forward(self, img, c, update_emas=False):
        self.inputs.append(img.detach())
        return self.fc(torch.nn.functional.softplus(self.conv(img)).flatten(1))

def _setup(seed=0, **loss_kwargs):
    torch.manual_seed(seed)
    G, D = TinyG(), TinyD()
    loss = StyleGAN2Loss(device=torch.device('cpu'), G=G, D=D, **loss_kwargs)
    data = dict(real_img=torch.randn([4, 3, RES, RES]), real_c=torch.zeros([4, 0]), gen_z=torch.randn([4, 4]), gen_c=torch.zeros([4, 0]))
    return loss, G, D, data

def _grads(module):
    return [None if p.grad is None else p.grad.clone() for p in module.parameters()]

def _zero_grads(*modules):
    for module in modules:
        for p in module.parameters():
            p.grad = None

def _run(loss, phase, data, seed=1, gain=1, cur_nimg=0):
    torch.manual_seed(seed)
    loss.accumulate_gradients(phase=phase, gain=gain, cur_nimg=cur_nimg, **data)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('phase', PHASES)
def test_every_phase_gives_finite_gradients_to_its_network(phase):
    loss, G, D, data = _setup(r1_gamma=1, pl_weight=2, style_mixing_prob=0.5, blur_init_sigma=1, blur_fade_kimg=1,
        augment_pipe=AugmentPipe(xflip=1, rotate90=1, scale=1, brightness=1, saturation=1))
    _run(loss, phase, data, cur_nimg=100)
    trained = G if phase.startswith('G') else D
    grads = [g for g in _grads(trained) if g is not None]
    assert len(grads) > 0 and all(torch.isfinite(g).all() for g in grads)
    assert sum(g.abs().sum() for g in grads) > 0
    if phase.startswith('D'):
        assert all(g is None for g in _grads(G)) # D's phases do not backpropagate into G.

def test_r1_penalty_equals_an_independent_autograd_computation():
    gamma = 4
    loss, G, D, data = _setup(r1_gamma=gamma)
    collector = training_stats.Collector(regex='Loss/.*')
    _run(loss, 'Dreg', data)
    collector.update()
    loss_grads = _grads(D)

    _zero_grads(D)
    x = data['real_img'].clone().requires_grad_(True)
    (grad_x,) = torch.autograd.grad(D(x, data['real_c']).sum(), [x], create_graph=True)
    penalty = grad_x.square().sum(dim=[1, 2, 3])
    (penalty * (gamma / 2)).mean().backward()

    assert collector.num('Loss/r1_penalty') == 4
    assert collector.mean('Loss/r1_penalty') == pytest.approx(penalty.mean().item(), rel=1e-5)
    assert collector.mean('Loss/D/reg') == pytest.approx(penalty.mean().item() * gamma / 2, rel=1e-5)
    for got, expected in zip(loss_grads, _grads(D)):
        if expected is None:
            assert got is None or got.abs().max() == 0
        else:
            torch.testing.assert_close(got, expected)

def test_all_loss_statistics_are_reported():
    loss, G, D, data = _setup(r1_gamma=1, pl_weight=1)
    collector = training_stats.Collector(regex='Loss/.*')
    for phase in ['Gboth', 'Dboth']:
        _run(loss, phase, data)
    collector.update()
    expected = ['Loss/scores/fake', 'Loss/signs/fake', 'Loss/G/loss', 'Loss/pl_penalty', 'Loss/G/reg',
                'Loss/scores/real', 'Loss/signs/real', 'Loss/D/loss', 'Loss/r1_penalty', 'Loss/D/reg']
    for name in expected:
        assert collector.num(name) > 0, name
    assert collector.num('Loss/signs/fake') == 8 # Once for G's loss, once for D's.
    assert collector.num('Loss/pl_penalty') == 2 # Half the batch (pl_batch_shrink=2).

def test_zero_weights_skip_reg_phases_and_turn_both_into_main():
    loss, G, D, data = _setup(r1_gamma=0, pl_weight=0)
    calls = G.mapping.calls
    _run(loss, 'Greg', data)
    _run(loss, 'Dreg', data)
    assert G.mapping.calls == calls and len(D.inputs) == 0
    assert all(g is None for g in _grads(G) + _grads(D))
    for both, main in [('Gboth', 'Gmain'), ('Dboth', 'Dmain')]:
        net = G if both.startswith('G') else D
        _zero_grads(G, D)
        _run(loss, both, data)
        grads_both = _grads(net)
        _zero_grads(G, D)
        _run(loss, main, data)
        for a, b in zip(grads_both, _grads(net)):
            torch.testing.assert_close(a, b)

def test_both_phases_equal_main_plus_reg():
    loss, G, D, data = _setup(r1_gamma=3, pl_weight=2, style_mixing_prob=0.5)
    for prefix, net in [('G', G), ('D', D)]:
        loss.pl_mean.zero_()
        _zero_grads(G, D)
        _run(loss, prefix + 'both', data, seed=7)
        grads_both = _grads(net)
        loss.pl_mean.zero_()
        _zero_grads(G, D)
        torch.manual_seed(7) # One random stream for both calls, as within the 'both' phase.
        loss.accumulate_gradients(phase=prefix + 'main', gain=1, cur_nimg=0, **data)
        loss.accumulate_gradients(phase=prefix + 'reg', gain=1, cur_nimg=0, **data)
        for a, b in zip(grads_both, _grads(net)):
            if a is not None:
                torch.testing.assert_close(a, b)

def test_gain_scales_the_gradients():
    loss, G, D, data = _setup(r1_gamma=2)
    _run(loss, 'Dboth', data, gain=1)
    ref = _grads(D)
    _zero_grads(D)
    _run(loss, 'Dboth', data, gain=3)
    for a, b in zip(ref, _grads(D)):
        torch.testing.assert_close(b, a * 3)

def test_path_length_penalty_updates_pl_mean_from_the_jacobian_norm():
    loss, G, D, data = _setup(pl_weight=1, pl_decay=0.25)
    _run(loss, 'Greg', data, seed=3)

    torch.manual_seed(3) # Same noise as inside the loss (no style mixing, so no other draws).
    ws = G.mapping(data['gen_z'][:2], data['gen_c'][:2])
    img = G.synthesis(ws)
    noise = torch.randn_like(img) / RES
    (grad_ws,) = torch.autograd.grad((img * noise).sum(), [ws])
    lengths = grad_ws.square().sum(2).mean(1).sqrt()
    assert loss.pl_mean.item() == pytest.approx(0.25 * lengths.mean().item(), rel=1e-5)
    assert not loss.pl_mean.requires_grad

def test_style_mixing_replaces_ws_from_a_cutoff_layer_on():
    loss, G, D, data = _setup(style_mixing_prob=1)
    z = data['gen_z']
    _img, ws = loss.run_G(z, data['gen_c'])
    plain = G.mapping(z, data['gen_c'])
    torch.testing.assert_close(ws[:, 0], plain[:, 0])
    mixed = [(ws[:, i] - plain[:, i]).abs().max() > 0 for i in range(G.num_ws)]
    assert mixed[-1] and mixed == sorted(mixed) # Layers [cutoff, num_ws) come from another latent.
    loss.style_mixing_prob = 0
    torch.testing.assert_close(loss.run_G(z, data['gen_c'])[1], plain)

def test_blur_uses_the_normalised_kernel_two_to_the_minus_k_over_sigma_squared():
    loss, G, D, data = _setup()
    img = torch.zeros([1, 3, RES, RES])
    img[:, :, 4, 4] = 1
    loss.run_D(img, torch.zeros([1, 0]), blur_sigma=1)
    k = 2.0 ** -(np.arange(-3, 4) ** 2)
    k = k / k.sum()
    expected = np.zeros([RES, RES])
    expected[1:, 1:] = np.outer(k, k)[:7, :7]
    np.testing.assert_allclose(D.inputs[-1][0, 0].numpy(), expected, atol=1e-6)
    loss.run_D(img, torch.zeros([1, 0]), blur_sigma=0.3) # floor(3 sigma) = 0: no blur.
    torch.testing.assert_close(D.inputs[-1], img)

def test_blur_fades_out_over_blur_fade_kimg():
    loss, G, D, data = _setup(r1_gamma=0, blur_init_sigma=2, blur_fade_kimg=1)
    real = data['real_img']
    _run(loss, 'Dmain', data, cur_nimg=500) # sigma = 2 * (1 - 500 / 1000) = 1
    reference = TinyD()
    StyleGAN2Loss(device='cpu', G=G, D=reference).run_D(real, data['real_c'], blur_sigma=1)
    torch.testing.assert_close(D.inputs[-1], reference.inputs[-1])
    _run(loss, 'Dmain', data, cur_nimg=1000)
    torch.testing.assert_close(D.inputs[-1], real)

#----------------------------------------------------------------------------
# The real networks: which parameters each phase trains.

def _real_networks(arch, res=16):
    torch.manual_seed(0)
    kwargs = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=res, img_channels=3, channel_base=256, channel_max=16, mapping_kwargs=dict(num_layers=2))
    if arch == 'stylegan2':
        G = networks_stylegan2.Generator(**kwargs)
        rgb_biases = {f'synthesis.b{r}.torgb.bias' for r in G.synthesis.block_resolutions}
    else:
        G = networks_stylegan3.Generator(num_layers=4, **kwargs)
        rgb_biases = {f'synthesis.{G.synthesis.layer_names[-1]}.bias'}
    D = networks_stylegan2.Discriminator(c_dim=0, img_resolution=res, img_channels=3, channel_base=256, channel_max=16)
    return G, D, rgb_biases

@pytest.mark.parametrize('arch', ['stylegan2', 'stylegan3'])
def test_each_phase_gives_gradients_exactly_to_the_parameters_its_loss_depends_on(arch):
    # G's and D's main losses depend on every parameter of the network they train. The path-length
    # penalty is a function of d(img)/d(ws), in which the biases of the ToRGB layers (constants added to
    # the image) do not appear. The R1 penalty is a function of d(logits)/d(img); past the minibatch-stddev
    # layer D is piecewise linear, so the biases of the 4x4 epilogue only move its kinks. Such parameters
    # must get no gradient (None), not a zero one: Adam advances its state on a zero gradient.
    G, D, rgb_biases = _real_networks(arch)
    augment_pipe = AugmentPipe(xflip=1, rotate=1, scale=1, brightness=1, saturation=1, noise=1, cutout=1)
    augment_pipe.p.fill_(0.5)
    loss = StyleGAN2Loss(device=torch.device('cpu'), G=G, D=D, augment_pipe=augment_pipe, r1_gamma=1, pl_weight=2, style_mixing_prob=0.5)
    data = dict(real_img=torch.randn([4, 3, 16, 16]), real_c=torch.zeros([4, 0]), gen_z=torch.randn([4, 8]), gen_c=torch.zeros([4, 0]))
    independent = dict(Gmain=set(), Greg=rgb_biases, Dmain=set(), Dreg={'b4.conv.bias', 'b4.fc.bias', 'b4.out.bias'})
    for phase, excluded in independent.items():
        net = G if phase.startswith('G') else D
        G.requires_grad_(net is G) # Only the trained network requires gradients, as in the training loop.
        D.requires_grad_(net is D)
        _zero_grads(G, D)
        _run(loss, phase, data)
        params = dict(net.named_parameters())
        assert excluded <= set(params)
        assert {name for name, p in params.items() if p.grad is not None} == set(params) - excluded, phase
        assert all(p.grad.abs().max() > 0 for p in params.values() if p.grad is not None), phase

#----------------------------------------------------------------------------
