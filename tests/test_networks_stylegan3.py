"""Tests for training.networks_stylegan3: state-dict layout, layer geometry (Alias-Free GAN's config T), forward semantics."""

import copy
import pickle

import numpy as np
import pytest
import torch

from training import networks_stylegan3 as n3

#----------------------------------------------------------------------------
# Reference layer table for --cfg=stylegan3-t at 1024x1024 (Karras et al., Alias-Free GAN, NeurIPS 2021, arXiv 2106.12423;
# the layer summary NVlabs/stylegan3 prints for this config):
# name, in size, out size, in sr, out sr, tmp sr, in cutoff, out cutoff, in half-width, out half-width,
# up, down, up taps, down taps, padding, in ch, out ch, fp16.

T1024_TABLE = [
    ('L0_36_512',    36,   36,   16,   16,   32,    2,       2,       6,       6,       2, 2, 12, 12, [9, 8, 9, 8],         512, 512, False),
    ('L1_36_512',    36,   36,   16,   16,   32,    2,       3.175,   6,       4.825,   2, 2, 12, 12, [9, 8, 9, 8],         512, 512, False),
    ('L2_52_512',    36,   52,   16,   32,   64,    3.175,   5.040,   4.825,   10.960,  4, 2, 24, 12, [-6, -9, -6, -9],     512, 512, False),
    ('L3_52_512',    52,   52,   32,   32,   64,    5.040,   8,       10.960,  8,       2, 2, 12, 12, [9, 8, 9, 8],         512, 512, False),
    ('L4_84_512',    52,   84,   32,   64,   128,   8,       12.699,  8,       19.301,  4, 2, 24, 12, [-6, -9, -6, -9],     512, 512, False),
    ('L5_148_512',   84,   148,  64,   128,  256,   12.699,  20.159,  19.301,  43.841,  4, 2, 24, 12, [-6, -9, -6, -9],     512, 512, True),
    ('L6_148_512',   148,  148,  128,  128,  256,   20.159,  32,      43.841,  32,      2, 2, 12, 12, [9, 8, 9, 8],         512, 512, True),
    ('L7_276_323',   148,  276,  128,  256,  512,   32,      50.797,  32,      77.203,  4, 2, 24, 12, [-6, -9, -6, -9],     512, 323, True),
    ('L8_276_203',   276,  276,  256,  256,  512,   50.797,  80.635,  77.203,  47.365,  2, 2, 12, 12, [9, 8, 9, 8],         323, 203, True),
    ('L9_532_128',   276,  532,  256,  512,  1024,  80.635,  128,     47.365,  128,     4, 2, 24, 12, [-6, -9, -6, -9],     203, 128, True),
    ('L10_1044_81',  532,  1044, 512,  1024, 2048,  128,     203.187, 128,     308.813, 4, 2, 24, 12, [-6, -9, -6, -9],     128, 81,  True),
    ('L11_1044_51',  1044, 1044, 1024, 1024, 2048,  203.187, 322.540, 308.813, 189.460, 2, 2, 12, 12, [9, 8, 9, 8],         81,  51,  True),
    ('L12_1044_32',  1044, 1044, 1024, 1024, 2048,  322.540, 512,     189.460, 118.346, 2, 2, 12, 12, [9, 8, 9, 8],         51,  32,  True),
    ('L13_1024_32',  1044, 1024, 1024, 1024, 2048,  512,     512,     118.346, 118.346, 2, 2, 12, 12, [-11, -12, -11, -12], 32,  32,  True),
    ('L14_1024_3',   1024, 1024, 1024, 1024, 1024,  512,     512,     118.346, 118.346, 1, 1, 1,  1,  [0, 0, 0, 0],         32,  3,   True),
]

def _small_generator(cfg='t', res=64, c_dim=0, **kwargs):
    kwargs = dict(dict(channel_base=512, channel_max=16), **kwargs)
    if cfg == 'r':
        kwargs.update(conv_kernel=1, use_radial_filters=True)
    return n3.Generator(z_dim=32, c_dim=c_dim, w_dim=32, img_resolution=res, img_channels=3, **kwargs)

@pytest.fixture(scope='module')
def g_t1024():
    torch.manual_seed(0)
    return n3.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=1024, img_channels=3)

@pytest.fixture(scope='module')
def g_small():
    torch.manual_seed(0)
    return _small_generator(res=32, num_layers=6) # Shallow: the full-depth geometry is checked on g_t1024.

#----------------------------------------------------------------------------

def test_t1024_layer_geometry_matches_api_table(g_t1024):
    syn = g_t1024.synthesis
    assert syn.layer_names == [row[0] for row in T1024_TABLE]
    assert syn.num_ws == g_t1024.num_ws == 16
    for (name, in_size, out_size, in_sr, out_sr, tmp_sr, in_fc, out_fc, in_fh, out_fh,
            up, down, up_taps, down_taps, padding, in_ch, out_ch, fp16) in T1024_TABLE:
        layer = getattr(syn, name)
        assert isinstance(layer.in_size, np.ndarray) and list(layer.in_size) == [in_size, in_size], name
        assert list(layer.out_size) == [out_size, out_size], name
        assert (layer.in_sampling_rate, layer.out_sampling_rate, layer.tmp_sampling_rate) == (in_sr, out_sr, tmp_sr), name
        assert layer.in_cutoff == pytest.approx(in_fc, abs=1e-3) and layer.out_cutoff == pytest.approx(out_fc, abs=1e-3), name
        assert layer.in_half_width == pytest.approx(in_fh, abs=1e-3) and layer.out_half_width == pytest.approx(out_fh, abs=1e-3), name
        assert (layer.up_factor, layer.down_factor, layer.up_taps, layer.down_taps) == (up, down, up_taps, down_taps), name
        assert layer.padding == padding and all(type(p) is int for p in layer.padding), name
        assert (layer.in_channels, layer.out_channels, layer.use_fp16) == (in_ch, out_ch, fp16), name
        assert layer.is_critically_sampled == (name.startswith('L12') or name.startswith('L13') or name.startswith('L14'))
    assert syn.input.channels == 512 and list(syn.input.size) == [36, 36]
    assert syn.input.sampling_rate == 16 and syn.input.bandwidth == 2

def test_t1024_state_dict_names_shapes_and_order(g_t1024):
    sd = g_t1024.state_dict()
    keys = list(sd.keys())
    # Synthesis before mapping; the Fourier input first.
    assert keys[:6] == ['synthesis.input.weight', 'synthesis.input.transform', 'synthesis.input.freqs',
        'synthesis.input.phases', 'synthesis.input.affine.weight', 'synthesis.input.affine.bias']
    assert keys[-5:] == ['mapping.w_avg', 'mapping.fc0.weight', 'mapping.fc0.bias', 'mapping.fc1.weight', 'mapping.fc1.bias']
    assert max(i for i, k in enumerate(keys) if k.startswith('synthesis.')) < keys.index('mapping.w_avg')
    shapes = {k: list(v.shape) for k, v in sd.items()}
    assert shapes['synthesis.input.weight'] == [512, 512] and shapes['synthesis.input.freqs'] == [512, 2]
    assert shapes['synthesis.input.affine.weight'] == [4, 512] and shapes['synthesis.input.transform'] == [3, 3]
    assert shapes['mapping.fc0.weight'] == [512, 512] and shapes['mapping.w_avg'] == [512]
    for name in g_t1024.synthesis.layer_names[:-1]:
        layer_keys = [k[len(f'synthesis.{name}.'):] for k in keys if k.startswith(f'synthesis.{name}.')]
        assert layer_keys == ['weight', 'bias', 'magnitude_ema', 'up_filter', 'down_filter', 'affine.weight', 'affine.bias']
    assert [k for k in keys if k.startswith('synthesis.L14_1024_3.')] == [
        'synthesis.L14_1024_3.weight', 'synthesis.L14_1024_3.bias', 'synthesis.L14_1024_3.magnitude_ema',
        'synthesis.L14_1024_3.affine.weight', 'synthesis.L14_1024_3.affine.bias']
    assert shapes['synthesis.L7_276_323.weight'] == [323, 512, 3, 3]
    assert shapes['synthesis.L7_276_323.affine.weight'] == [512, 512]
    assert shapes['synthesis.L7_276_323.up_filter'] == [24] and shapes['synthesis.L7_276_323.down_filter'] == [12]
    assert shapes['synthesis.L14_1024_3.weight'] == [3, 32, 1, 1] and shapes['synthesis.L14_1024_3.magnitude_ema'] == []
    assert sd['synthesis.L0_36_512.up_filter'].dtype == torch.float32
    assert float(sd['synthesis.L0_36_512.magnitude_ema']) == 1

def test_layer_names_at_256_and_512():
    names256 = n3.SynthesisNetwork(w_dim=8, img_resolution=256, img_channels=3).layer_names
    assert names256 == ['L0_36_512', 'L1_36_512', 'L2_36_512', 'L3_52_512', 'L4_52_512', 'L5_84_512', 'L6_84_512',
        'L7_148_512', 'L8_148_512', 'L9_148_362', 'L10_276_256', 'L11_276_181', 'L12_276_128', 'L13_256_128', 'L14_256_3']
    names512 = n3.SynthesisNetwork(w_dim=8, img_resolution=512, img_channels=3).layer_names
    assert names512 == ['L0_36_512', 'L1_36_512', 'L2_52_512', 'L3_52_512', 'L4_84_512', 'L5_84_512', 'L6_148_512',
        'L7_148_483', 'L8_276_323', 'L9_276_215', 'L10_532_144', 'L11_532_96', 'L12_532_64', 'L13_512_64', 'L14_512_3']

def test_r1024_radial_filters_unit_kernels_and_paddings():
    syn = n3.SynthesisNetwork(w_dim=8, img_resolution=1024, img_channels=3, channel_base=65536, channel_max=1024,
        conv_kernel=1, use_radial_filters=True)
    assert syn.layer_names == ['L0_36_1024', 'L1_36_1024', 'L2_52_1024', 'L3_52_1024', 'L4_84_1024', 'L5_148_1024',
        'L6_148_1024', 'L7_276_645', 'L8_276_406', 'L9_532_256', 'L10_1044_161', 'L11_1044_102', 'L12_1044_64',
        'L13_1024_64', 'L14_1024_3']
    assert list(syn.input.weight.shape) == [1024, 1024]
    for idx, name in enumerate(syn.layer_names):
        layer = getattr(syn, name)
        assert list(layer.weight.shape) == [layer.out_channels, layer.in_channels, 1, 1]
        if idx <= 11:
            assert list(layer.down_filter.shape) == [12, 12]
            assert float(layer.down_filter.sum()) == pytest.approx(1, abs=1e-5)
            assert torch.equal(layer.down_filter, layer.down_filter.t()) # radially symmetric
            assert layer.padding == ([11, 10, 11, 10] if layer.up_factor == 2 else [-2, -5, -2, -5])
        elif idx <= 13:
            assert list(layer.down_filter.shape) == [12]
        else:
            assert layer.down_filter is None and layer.up_filter is None
    assert syn.L13_1024_64.padding == [-9, -10, -9, -10]

def test_design_lowpass_filter_variants():
    assert n3.SynthesisLayer.design_lowpass_filter(numtaps=1, cutoff=2, width=12, fs=32) is None
    f = n3.SynthesisLayer.design_lowpass_filter(numtaps=12, cutoff=2, width=12, fs=32)
    assert f.dtype == torch.float32 and list(f.shape) == [12]
    assert float(f.sum()) == pytest.approx(1, abs=1e-6)
    assert torch.allclose(f, f.flip(0))
    g = n3.SynthesisLayer.design_lowpass_filter(numtaps=12, cutoff=2, width=12, fs=32, radial=True)
    assert list(g.shape) == [12, 12] and float(g.sum()) == pytest.approx(1, abs=1e-6)
    assert torch.allclose(g, g.flip(0)) and torch.allclose(g, g.t())

#----------------------------------------------------------------------------

def test_modulated_conv2d_equals_per_sample_convolution():
    torch.manual_seed(1)
    x, w, s = torch.randn([3, 4, 7, 7]), torch.randn([5, 4, 3, 3]), torch.randn([3, 4])
    gain = torch.rand([4]) + 0.5
    y = n3.modulated_conv2d(x, w, s, demodulate=True, padding=1, input_gain=gain)
    for n in range(3):
        wn = w * s[n].reshape(1, 4, 1, 1)
        wn = wn / wn.square().sum(dim=[1, 2, 3], keepdim=True).sqrt()
        ref = torch.nn.functional.conv2d(x[n:n+1], wn * gain.reshape(1, 4, 1, 1), padding=1)
        assert torch.allclose(y[n:n+1], ref, atol=1e-4)
    y = n3.modulated_conv2d(x, w, s, demodulate=False)
    ref = torch.nn.functional.conv2d(x[1:2], w * s[1].reshape(1, 4, 1, 1))
    assert torch.allclose(y[1:2], ref, atol=1e-4)

def test_forward_shapes_and_dtypes(g_small):
    z = torch.randn([2, g_small.z_dim])
    ws = g_small.mapping(z, None)
    assert list(ws.shape) == [2, g_small.num_ws, g_small.w_dim] and ws.dtype == torch.float32
    x = g_small.synthesis.input(ws[:, 0])
    assert list(x.shape) == [2, g_small.synthesis.input.channels, 36, 36] # sampling rate 16 + 2 * margin 10
    img = g_small.synthesis(ws, noise_mode='const', force_fp32=False) # use_fp16 layers stay float32 on CPU
    assert list(img.shape) == [2, 3, 32, 32] and img.dtype == torch.float32 and torch.isfinite(img).all()
    with pytest.raises(AssertionError):
        g_small.synthesis(ws, noise_mode='bogus')

@torch.no_grad()
def test_generator_is_deterministic_for_a_given_z(g_small):
    z = torch.randn([2, g_small.z_dim])
    a = g_small(z, None)
    b = g_small(z.clone(), None, noise_mode='random') # StyleGAN3 has no noise inputs.
    assert torch.equal(a, b)
    assert not torch.allclose(a[0], a[1]) # ... but the image does depend on z.

def test_fp16_layers_compute_in_float16_and_match_float32_even_with_huge_weights(fp16_on_cpu):
    """The GPU default (use_fp16 layers in float16), reached on CPU. Weights of 1e5 exceed float16's range (65504):
    demodulation cancels their scale, and the layer must bring them into range before the cast."""
    torch.manual_seed(0)
    G = _small_generator(res=16, num_layers=4, num_fp16_res=4).eval()
    dtypes = {}
    with torch.no_grad():
        for name in G.synthesis.layer_names:
            layer = getattr(G.synthesis, name)
            if not layer.is_torgb:
                layer.weight.mul_(1e5)
            layer.register_forward_hook(lambda _module, _inputs, output, name=name: dtypes.setdefault(name, output.dtype) and None)
        z = torch.randn([2, 32], generator=torch.Generator().manual_seed(1))
        half = G(z, None)
        full = G(z, None, force_fp32=True)
    fp16_layers = [name for name in G.synthesis.layer_names if getattr(G.synthesis, name).use_fp16]
    assert fp16_layers and all(dtypes[name] == torch.float16 for name in fp16_layers)
    assert half.dtype == torch.float32 and torch.allclose(half, full, atol=0.02 * full.abs().max().item())

def test_truncation_pulls_towards_w_avg(g_small):
    G = copy.deepcopy(g_small)
    G.mapping.w_avg.copy_(torch.randn([G.w_dim]))
    z = torch.randn([3, G.z_dim])
    ws = G.mapping(z, None)
    ws0 = G.mapping(z, None, truncation_psi=0)
    assert torch.allclose(ws0, G.mapping.w_avg.expand_as(ws0))
    half = G.mapping(z, None, truncation_psi=0.5, truncation_cutoff=4)
    assert torch.allclose(half[:, :4], (G.mapping.w_avg + ws[:, :4]) / 2, atol=1e-6)
    assert torch.equal(half[:, 4:], ws[:, 4:])

@torch.no_grad()
def test_update_emas_tracks_w_avg_and_input_magnitudes(g_small):
    G = copy.deepcopy(g_small)
    z = torch.randn([4, G.z_dim])
    G(z, None)
    layer = getattr(G.synthesis, G.synthesis.layer_names[3])
    assert float(G.mapping.w_avg.abs().sum()) == 0 and float(layer.magnitude_ema) == 1
    ws = G.mapping(z, None)
    G(z, None, update_emas=True)
    beta = G.mapping.w_avg_beta
    assert torch.allclose(G.mapping.w_avg, (1 - beta) * ws[:, 0].mean(0), atol=1e-6)
    assert float(layer.magnitude_ema) != 1

def test_conditional_mapping_embeds_labels():
    torch.manual_seed(0)
    G = _small_generator(res=32, c_dim=5)
    assert list(G.mapping.embed.weight.shape) == [32, 5] and list(G.mapping.fc0.weight.shape) == [32, 64]
    z = torch.randn([2, 32]).repeat([2, 1])
    c = torch.eye(5)[[0, 0, 1, 1]]
    ws = G.mapping(z, c)
    assert not torch.allclose(ws[0], ws[2])

@torch.no_grad()
def test_pickle_round_trip_preserves_output(g_small):
    G2 = pickle.loads(pickle.dumps(g_small))
    z = torch.randn([1, g_small.z_dim])
    assert torch.equal(G2(z, None), g_small(z, None))
    assert G2.init_kwargs.channel_base == 512

#----------------------------------------------------------------------------

@pytest.mark.parametrize('cfg', ['t', 'r'])
def test_cuda_formulation_of_the_ops_gives_the_same_images_and_gradients(cfg, monkeypatch):
    # The whole generator with upfirdn2d/filtered_lrelu's CUDA formulation (banded matrix products) forced
    # on CPU, against the plain path: images, parameter gradients, and the double backward of path length.
    from torch_utils.ops import upfirdn2d
    torch.manual_seed(0)
    G = _small_generator(cfg, res=16, num_layers=4)
    z = torch.randn([2, G.z_dim])
    results = []
    for matmul in (False, True):
        monkeypatch.setattr(upfirdn2d, '_matmul_path', lambda x, impl: matmul)
        G.zero_grad(set_to_none=True)
        ws = G.mapping(z, None)
        img = G.synthesis(ws, noise_mode='const')
        (gw,) = torch.autograd.grad((img * img.detach().cos()).sum(), [ws], create_graph=True)
        (img.square().mean() + gw.square().sum()).backward()
        results.append([img] + [p.grad for p in G.parameters()])
    for a, b in zip(*results):
        assert torch.allclose(a, b, rtol=1e-4, atol=1e-5 * b.abs().max().item()) # float32 rounding
