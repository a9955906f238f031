"""Tests for training.networks_stylegan2: generator/discriminator state layout (as NVlabs/stylegan3's networks_stylegan2) and forward semantics."""

import numpy as np
import pytest
import torch

from training import networks_stylegan2 as n2

#----------------------------------------------------------------------------

def _tiny_generator(**kwargs):
    return n2.Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=16, img_channels=3,
        channel_base=128, channel_max=16, mapping_kwargs=dict(num_layers=2), **kwargs)

#----------------------------------------------------------------------------

def test_generator_state_names_at_256_with_labels():
    G = n2.Generator(z_dim=512, c_dim=10, w_dim=512, img_resolution=256, img_channels=3)
    assert G.num_ws == G.synthesis.num_ws == 14
    sd = G.state_dict()
    keys = list(sd.keys())
    assert keys[:13] == ['synthesis.b4.const', 'synthesis.b4.resample_filter',
        'synthesis.b4.conv1.weight', 'synthesis.b4.conv1.noise_strength', 'synthesis.b4.conv1.bias',
        'synthesis.b4.conv1.resample_filter', 'synthesis.b4.conv1.noise_const',
        'synthesis.b4.conv1.affine.weight', 'synthesis.b4.conv1.affine.bias',
        'synthesis.b4.torgb.weight', 'synthesis.b4.torgb.bias', 'synthesis.b4.torgb.affine.weight', 'synthesis.b4.torgb.affine.bias']
    assert keys[keys.index('mapping.w_avg'):] == ['mapping.w_avg', 'mapping.embed.weight', 'mapping.embed.bias'] + \
        [f'mapping.fc{i}.{p}' for i in range(8) for p in ['weight', 'bias']]
    shapes = {k: list(v.shape) for k, v in sd.items()}
    assert shapes['synthesis.b4.const'] == [512, 4, 4]
    assert shapes['synthesis.b256.conv0.weight'] == [128, 256, 3, 3]
    assert shapes['synthesis.b256.conv0.noise_const'] == [256, 256]
    assert shapes['synthesis.b256.conv0.noise_strength'] == []
    assert shapes['synthesis.b256.torgb.weight'] == [3, 128, 1, 1]
    assert shapes['synthesis.b128.conv1.affine.weight'] == [256, 512]
    assert shapes['mapping.embed.weight'] == [512, 10] and shapes['mapping.fc0.weight'] == [512, 1024]
    assert 'synthesis.b8.skip.weight' not in sd # 'skip' architecture by default

def test_discriminator_state_names_order_and_layer_indices_at_256():
    D = n2.Discriminator(c_dim=10, img_resolution=256, img_channels=3)
    sd = D.state_dict()
    keys = list(sd.keys())
    blocks = [k.split('.')[0] for k in keys]
    assert list(dict.fromkeys(blocks)) == ['b256', 'b128', 'b64', 'b32', 'b16', 'b8', 'mapping', 'b4']
    assert [k for k in keys if k.startswith('b256.')] == ['b256.resample_filter',
        'b256.fromrgb.weight', 'b256.fromrgb.bias', 'b256.fromrgb.resample_filter',
        'b256.conv0.weight', 'b256.conv0.bias', 'b256.conv0.resample_filter',
        'b256.conv1.weight', 'b256.conv1.bias', 'b256.conv1.resample_filter',
        'b256.skip.weight', 'b256.skip.resample_filter']
    assert not any(k.startswith('b128.fromrgb') for k in keys)
    assert [k for k in keys if k.startswith('b4.')] == ['b4.conv.weight', 'b4.conv.bias', 'b4.conv.resample_filter',
        'b4.fc.weight', 'b4.fc.bias', 'b4.out.weight', 'b4.out.bias']
    assert 'mapping.w_avg' not in sd
    shapes = {k: list(v.shape) for k, v in sd.items()}
    assert shapes['b256.fromrgb.weight'] == [128, 3, 1, 1] and shapes['b256.conv1.weight'] == [256, 128, 3, 3]
    assert shapes['b256.skip.weight'] == [256, 128, 1, 1] and shapes['b256.resample_filter'] == [4, 4]
    assert shapes['mapping.embed.weight'] == [512, 10] and shapes['mapping.fc7.weight'] == [512, 512]
    assert shapes['b4.conv.weight'] == [512, 513, 3, 3] and shapes['b4.fc.weight'] == [512, 8192]
    assert shapes['b4.out.weight'] == [512, 512]
    firsts = [(getattr(D, f'b{r}').first_layer_idx, getattr(D, f'b{r}').num_layers) for r in D.block_resolutions]
    assert firsts == [(0, 4), (4, 3), (7, 3), (10, 3), (13, 3), (16, 3)]
    assert [getattr(D, f'b{r}').use_fp16 for r in D.block_resolutions] == [True, True, True, True, False, False]

def test_freeze_layers_turns_weights_into_buffers():
    D = n2.Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=128, channel_max=16,
        block_kwargs=dict(freeze_layers=5))
    params = dict(D.named_parameters())
    buffers = dict(D.named_buffers())
    for name in ['b16.fromrgb', 'b16.conv0', 'b16.conv1', 'b16.skip', 'b8.conv0']: # layer indices 0..4
        assert f'{name}.weight' in buffers and f'{name}.weight' not in params
    assert 'b8.conv1.weight' in params and 'b8.skip.weight' in params
    assert list(D.state_dict().keys())[:4] == ['b16.resample_filter', 'b16.fromrgb.resample_filter', 'b16.fromrgb.weight', 'b16.fromrgb.bias']

#----------------------------------------------------------------------------

def test_fused_and_non_fused_modconv_agree():
    torch.manual_seed(0)
    x, w, s = torch.randn([3, 4, 8, 8]), torch.randn([5, 4, 3, 3]), torch.randn([3, 4])
    noise = torch.randn([3, 1, 16, 16])
    f = torch.tensor([[1, 3, 3, 1]], dtype=torch.float32)
    f = (f.t() @ f) / 64
    for demodulate in [True, False]:
        a = n2.modulated_conv2d(x, w, s, noise=noise, up=2, padding=1, resample_filter=f, demodulate=demodulate, flip_weight=False, fused_modconv=True)
        b = n2.modulated_conv2d(x, w, s, noise=noise, up=2, padding=1, resample_filter=f, demodulate=demodulate, flip_weight=False, fused_modconv=False)
        assert list(a.shape) == [3, 5, 16, 16]
        assert torch.allclose(a, b, atol=1e-4)
    ref = torch.nn.functional.conv2d(x[2:], w * s[2].reshape(1, 4, 1, 1), padding=1)
    ref = ref / (w * s[2].reshape(1, 4, 1, 1)).square().sum(dim=[1, 2, 3]).sqrt().reshape(1, 5, 1, 1)
    assert torch.allclose(n2.modulated_conv2d(x, w, s, padding=1)[2:], ref, atol=1e-4)

@pytest.mark.parametrize('architecture', ['orig', 'skip', 'resnet'])
def test_generator_architectures_forward(architecture):
    torch.manual_seed(0)
    G = _tiny_generator(architecture=architecture)
    for name, p in G.named_parameters():
        if name.endswith('noise_strength'):
            p.data.fill_(0.1) # initialised to zero
    z = torch.randn([2, 16])
    img = G(z, None, noise_mode='const')
    assert list(img.shape) == [2, 3, 16, 16] and img.dtype == torch.float32 and torch.isfinite(img).all()
    assert torch.equal(img, G(z, None, noise_mode='const')) # deterministic for a given z with constant noise
    assert not torch.equal(img, G(z, None, noise_mode='random'))
    assert torch.equal(G(z, None, noise_mode='none'), G(z, None, noise_mode='none'))
    assert hasattr(G.synthesis.b16, 'skip') == (architecture == 'resnet')
    assert hasattr(G.synthesis.b8, 'torgb') == (architecture == 'skip')

def test_generator_fused_modconv_modes_agree():
    torch.manual_seed(0)
    G = _tiny_generator(fused_modconv_default='inference_only')
    z = torch.randn([2, 16])
    a = G.eval()(z, None, noise_mode='const')
    b = G.train()(z, None, noise_mode='const')
    assert torch.allclose(a, b, atol=1e-5)

@pytest.mark.parametrize('architecture', ['orig', 'skip', 'resnet'])
def test_discriminator_architectures_forward(architecture):
    torch.manual_seed(0)
    D = n2.Discriminator(c_dim=4, img_resolution=16, img_channels=3, architecture=architecture,
        channel_base=128, channel_max=16, mapping_kwargs=dict(num_layers=2), epilogue_kwargs=dict(mbstd_group_size=2))
    img = torch.randn([4, 3, 16, 16], requires_grad=True)
    c = torch.eye(4)
    logits = D(img, c, force_fp32=True)
    assert list(logits.shape) == [4, 1] and logits.dtype == torch.float32
    grad, = torch.autograd.grad(logits.sum(), img, create_graph=True) # R1 needs the double backward
    grad.square().sum().backward()
    assert torch.isfinite(grad).all()

def test_minibatch_std_groups_samples_modulo_group_count():
    x = torch.zeros([4, 2, 1, 1])
    x[0], x[2] = 1, 3 # group {0, 2} (std 1); group {1, 3} stays zero (std 0)
    y = n2.MinibatchStdLayer(group_size=2)(x)
    assert list(y.shape) == [4, 3, 1, 1]
    assert torch.allclose(y[:, 2, 0, 0], torch.tensor([1.0, 0.0, 1.0, 0.0]), atol=1e-3)
    y = n2.MinibatchStdLayer(group_size=None, num_channels=2)(x)
    assert list(y.shape) == [4, 4, 1, 1]

def test_mapping_truncation_and_label_only_mode():
    torch.manual_seed(0)
    M = n2.MappingNetwork(z_dim=8, c_dim=0, w_dim=8, num_ws=3, num_layers=2)
    M.w_avg.copy_(torch.randn([8]))
    z = torch.randn([2, 8])
    w = M(z, None)
    assert torch.allclose(M(z, None, truncation_psi=0), M.w_avg.expand(2, 3, 8))
    half = M(z, None, truncation_psi=0.5, truncation_cutoff=1)
    assert torch.allclose(half[:, 0], (w[:, 0] + M.w_avg) / 2) and torch.equal(half[:, 1:], w[:, 1:])
    M(z, None, update_emas=True)
    assert not torch.allclose(M.w_avg, w.new_zeros(8))
    E = n2.MappingNetwork(z_dim=0, c_dim=5, w_dim=6, num_ws=None, w_avg_beta=None)
    assert list(E(None, torch.eye(5)).shape) == [5, 6] and not hasattr(E, 'w_avg')

def test_layer_gains_and_initialisation():
    fc = n2.FullyConnectedLayer(4, 3, lr_multiplier=0.01, bias_init=1)
    assert torch.equal(fc.bias, torch.ones(3)) and fc.weight_gain == pytest.approx(0.01 / 2)
    conv = n2.Conv2dLayer(2, 3, kernel_size=3, activation='lrelu', trainable=False)
    assert conv.act_gain == pytest.approx(np.sqrt(2)) and conv.weight_gain == pytest.approx(1 / np.sqrt(18))
    assert set(dict(conv.named_buffers())) == {'resample_filter', 'weight', 'bias'}
    assert list(conv(torch.randn([1, 2, 5, 5])).shape) == [1, 3, 5, 5]
    down = n2.Conv2dLayer(2, 3, kernel_size=3, down=2)
    assert list(down(torch.randn([1, 2, 8, 8])).shape) == [1, 3, 4, 4]

#----------------------------------------------------------------------------

def test_cuda_formulation_of_the_ops_gives_the_same_logits_and_r1_gradients(monkeypatch):
    # The discriminator with upfirdn2d's CUDA formulation (banded matrix products) forced on CPU, against
    # the plain path: logits, R1 penalty (double backward) and its parameter gradients.
    from torch_utils.ops import upfirdn2d
    torch.manual_seed(0)
    D = n2.Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=128, channel_max=16,
        epilogue_kwargs=dict(mbstd_group_size=2))
    img0 = torch.randn([4, 3, 16, 16])
    results = []
    for matmul in (False, True):
        monkeypatch.setattr(upfirdn2d, '_matmul_path', lambda x, impl: matmul)
        results.append(logits_r1_and_gradients(D, img0))
    for a, b in zip(*results):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item()) # float32 rounding

def logits_r1_and_gradients(D, img0):
    """D's logits, R1's input gradient (double backward) and the parameter gradients of logits + R1."""
    D.zero_grad(set_to_none=True)
    img = img0.clone().requires_grad_(True)
    logits = D(img, None)
    (grad,) = torch.autograd.grad(logits.sum(), [img], create_graph=True)
    (logits.mean() + grad.square().sum()).backward()
    return [logits, grad] + [p.grad for p in D.parameters()]

def test_fp16_blocks_compute_in_float16_and_match_float32(fp16_on_cpu):
    """The GPU default (the upper blocks in float16), reached on CPU: G and D against their force_fp32 results. G's
    fp16 convolutions get weights of 1e5, beyond float16's range; demodulation cancels the scale, if the layer
    brings them into range before the cast."""
    torch.manual_seed(0)
    G = _tiny_generator(num_fp16_res=2, conv_clamp=256).eval()
    D = n2.Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=128, channel_max=16, num_fp16_res=2, conv_clamp=256,
        epilogue_kwargs=dict(mbstd_group_size=2))
    with torch.no_grad():
        G.synthesis.b16.conv0.weight.mul_(1e5)
        G.synthesis.b16.conv1.weight.mul_(1e5)
    dtypes = {}
    for name, block in [('G', G.synthesis.b16), ('D', D.b16)]:
        block.conv0.register_forward_hook(lambda _module, _inputs, output, name=name: dtypes.setdefault(name, output.dtype) and None)
    z = torch.randn([2, 16], generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        half, full = G(z, None, fused_modconv=False), G(z, None, fused_modconv=False, force_fp32=True) # Unfused, as in training.
        logits_half, logits_full = D(half, None), D(half, None, force_fp32=True)
    assert dtypes == dict(G=torch.float16, D=torch.float16)
    assert half.dtype == logits_half.dtype == torch.float32
    assert torch.allclose(half, full, atol=0.02 * full.abs().max().item())
    assert torch.allclose(logits_half, logits_full, atol=0.02 * logits_full.abs().max().item())
