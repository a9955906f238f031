"""Tests for svc_plugin.discriminator: the temporal shift, the TSM video discriminator, its fusion, its
time conditioning, the image -> video conversion and its pickles."""

import os
import pickle
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

from svc_plugin.discriminator import TimeGapEncoder, VideoDiscriminator, temporal_shift
from training import networks_stylegan2

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RES = 32
SMALL = dict(channel_base=1024, channel_max=32)
D_LAYERS_OF_B64 = 4 # fromrgb, conv0, conv1, skip of the first block of a 64x64 D.

#----------------------------------------------------------------------------

def _clips(batch=2, frames=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    img = torch.randn([batch * frames, 3, RES, RES], generator=g) # [batch * frames, C, H, W]
    t = torch.sort(torch.randint(0, 33, [batch, frames], generator=g).float(), dim=1).values
    return img, t

def _block_io(D, res, img, c, t):
    """(input of block b{res}, output of block b{res}) during one forward pass."""
    seen = {}
    def record_input(module, args):
        seen['in'] = args[0]
    def record_output(module, args, out):
        seen['out'] = out[0]
    block = getattr(D, f'b{res}')
    handles = [block.register_forward_pre_hook(record_input), block.register_forward_hook(record_output)]
    D(img, c, t)
    for handle in handles:
        handle.remove()
    return seen['in'], seen['out']

#----------------------------------------------------------------------------

@pytest.mark.parametrize('frames, channels', [(3, 16), (4, 24), (1, 8), (2, 7)])
def test_temporal_shift_matches_index_by_index_construction(frames, channels):
    batch, fold = 2, channels // 8
    x = torch.randn([batch * frames, channels, 3, 2])
    expected = torch.zeros_like(x)
    for b in range(batch):
        for f in range(frames):
            row = b * frames + f
            for ch in range(channels):
                if ch < fold:
                    expected[row, ch] = x[row + 1, ch] if f + 1 < frames else 0
                elif ch < 2 * fold:
                    expected[row, ch] = x[row - 1, ch] if f > 0 else 0
                else:
                    expected[row, ch] = x[row, ch]
    assert torch.equal(temporal_shift(x, frames), expected)

def test_temporal_shift_gradients_of_first_and_second_order():
    x = torch.randn([2 * 3, 16, 2, 2], dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: temporal_shift(x, 3), [x])
    assert torch.autograd.gradgradcheck(lambda x: temporal_shift(x, 3), [x]) # R1 differentiates a gradient

def test_temporal_shift_fold_div_sets_the_shifted_fraction():
    x = torch.randn([3, 16, 1, 1])
    y = temporal_shift(x, num_frames=3, fold_div=4) # channels [0, 4) from the next frame, [4, 8) from the previous
    assert torch.equal(y[0, :4], x[1, :4]) and torch.equal(y[2, 4:8], x[1, 4:8]) and torch.equal(y[:, 8:], x[:, 8:])

#----------------------------------------------------------------------------

@pytest.mark.parametrize('frames', [1, 3])
@pytest.mark.parametrize('c_dim', [0, 4])
def test_output_is_one_logit_per_clip(frames, c_dim):
    D = VideoDiscriminator(c_dim, RES, 3, num_frames=frames, **SMALL)
    img, t = _clips(batch=2, frames=frames)
    c = torch.randn([2, c_dim])
    logits = D(img, c, t)
    assert logits.shape == (2, 1) and torch.isfinite(logits).all()
    if frames == 1:
        assert D.time_encoder is None and torch.equal(D(img, c), logits) # no time conditioning for single frames

def test_missing_times_and_bad_options_are_reported():
    D = VideoDiscriminator(0, RES, 3, **SMALL)
    img, t = _clips()
    with pytest.raises(ValueError, match='frame times'):
        D(img, None)
    with pytest.raises(ValueError, match='clips of 3 frames'):
        D(img[:5], None, t)
    with pytest.raises(ValueError, match='fuse'):
        VideoDiscriminator(0, RES, 3, fuse='sum', **SMALL)
    with pytest.raises(ValueError, match='fuse_res'):
        VideoDiscriminator(0, RES, 3, fuse_res=32, **SMALL)

#----------------------------------------------------------------------------

@pytest.mark.parametrize('tsm', [True, False])
def test_tsm_couples_neighbouring_frames_before_fusion(tsm):
    torch.manual_seed(0)
    D = VideoDiscriminator(0, RES, 3, tsm=tsm, **SMALL)
    img, t = _clips(batch=2)
    edited = img.clone()
    edited[0] += torch.randn_like(edited[0]) # frame 0 of clip 0
    _, before = _block_io(D, 32, img, None, t) # b32: the only block above fuse_res=16, [batch * frames, C, 16, 16]
    _, after = _block_io(D, 32, edited, None, t)
    changed = [not torch.equal(before[row], after[row]) for row in range(6)]
    # One shift reaches one frame: frame 1 sees frame 0 only through TSM; frame 2 and clip 1 never do.
    assert changed == [True, tsm, False, False, False, False]

def test_tsm_sits_on_the_residual_branch_of_blocks_above_fuse_res():
    D = VideoDiscriminator(0, 64, 3, fuse_res=16, **SMALL)
    shifted = {res for res in D.block_resolutions if hasattr(getattr(D, f'b{res}').conv0, 'num_frames')}
    assert shifted == {64, 32}
    assert not any(hasattr(getattr(D, f'b{res}').skip, 'num_frames') for res in D.block_resolutions)

@pytest.mark.parametrize('freeze_layers, frozen', [(1, 'fromrgb'), (2, 'conv0'), (D_LAYERS_OF_B64, 'skip')])
def test_tsm_only_in_blocks_whose_every_layer_trains(freeze_layers, frozen):
    D = VideoDiscriminator(0, 64, 3, fuse_res=16, block_kwargs=dict(freeze_layers=freeze_layers), **SMALL)
    assert 'weight' in dict(getattr(D.b64, frozen).named_buffers()) # b64's first freeze_layers layers are frozen ...
    shifted = {res for res in D.block_resolutions if hasattr(getattr(D, f'b{res}').conv0, 'num_frames')}
    assert shifted == {32} # ... so only b32 shifts (the reference's `total_train`).

#----------------------------------------------------------------------------

def test_mean_fusion_averages_the_frames_of_each_clip():
    D = VideoDiscriminator(0, RES, 3, fuse='mean', **SMALL)
    img, t = _clips()
    _, frames = _block_io(D, 32, img, None, t)
    fused, _ = _block_io(D, 16, img, None, t)
    assert fused.shape == (2, 32, 16, 16)
    assert torch.allclose(fused, frames.reshape(2, 3, 32, 16, 16).mean(dim=1))

def test_concat_fusion_stacks_the_frames_along_channels():
    D = VideoDiscriminator(0, RES, 3, fuse='concat', **SMALL)
    img, t = _clips()
    _, frames = _block_io(D, 32, img, None, t)
    fused, out = _block_io(D, 16, img, None, t)
    assert fused.shape == (2, 3 * 32, 16, 16) and out.shape == (2, 32, 8, 8)
    assert torch.equal(fused[:, 32:64], frames[1::3]) # channels [C, 2C) hold frame 1 of every clip
    assert D(img, None, t).shape == (2, 1)

#----------------------------------------------------------------------------

def test_time_gap_encoder_interpolates_the_learned_embedding_at_fractional_gaps():
    enc = TimeGapEncoder(num_frames=2, num_freqs=3, embed_dim=4, max_gap=8)
    features = enc(torch.tensor([[0.0, 2.0], [1.0, 3.5], [0.0, 20.0]])) # gaps 2, 2.5, 20 (beyond max_gap)
    assert features.shape == (3, 2 * 3 + 4)
    assert torch.allclose(features[0, 6:], enc.embed[2])
    assert torch.allclose(features[1, 6:], (enc.embed[2] + enc.embed[3]) / 2)
    assert torch.allclose(features[2, 6:], enc.embed[8])
    assert torch.allclose(features[0, :3], torch.sin(2 * torch.pi * 2 / torch.tensor([16.0, 8.0, 4.0])), atol=1e-6)

def test_time_gap_frequencies_are_stylegan_v_log_spaced_periods_2048_down_to_4():
    # StyleGAN-V's construct_log_spaced_freqs(1024): pi * 2^i / 1024, i = 0..9, i.e. periods 2048, 1024, ..., 4 frames.
    periods = 2 * np.pi / TimeGapEncoder(num_frames=3).freqs.double().numpy()
    assert np.allclose(periods, [2048, 1024, 512, 256, 128, 64, 32, 16, 8, 4])
    features = TimeGapEncoder(num_frames=2, embed_dim=0)(torch.tensor([[0.0, 3.0]]))
    assert torch.allclose(features[0, 8:10], torch.tensor([np.sin(2 * np.pi * 3 / 8), np.sin(2 * np.pi * 3 / 4)], dtype=torch.float32), atol=1e-6)

def test_logits_depend_on_the_time_gaps():
    torch.manual_seed(0)
    D = VideoDiscriminator(0, RES, 3, **SMALL)
    img, _ = _clips()
    assert not torch.allclose(D(img, None, torch.tensor([[0., 1, 2], [0, 1, 2]])), D(img, None, torch.tensor([[0., 4, 16], [0, 8, 32]])))

#----------------------------------------------------------------------------

def _image_D(c_dim, seed=0):
    torch.manual_seed(seed)
    D = networks_stylegan2.Discriminator(c_dim, RES, 3, **SMALL)
    with torch.no_grad(): # a trained-looking head: non-zero biases
        D.b4.out.bias.normal_()
    return D

@pytest.mark.parametrize('c_dim', [0, 4])
def test_converted_single_frame_discriminator_equals_the_image_discriminator(c_dim):
    D_image = _image_D(c_dim)
    D = VideoDiscriminator.from_image_discriminator(D_image, num_frames=1)
    img, _ = _clips(batch=4, frames=1)
    c = torch.randn([4, c_dim])
    assert torch.allclose(D(img, c), D_image(img, c), atol=1e-6)

@pytest.mark.parametrize('c_dim', [0, 4])
def test_converted_video_discriminator_scores_static_clips_like_the_image_discriminator(c_dim):
    D_image = _image_D(c_dim)
    D = VideoDiscriminator.from_image_discriminator(D_image, num_frames=3, tsm=False)
    frames, _ = _clips(batch=2, frames=1)
    clips = frames.repeat_interleave(3, dim=0) # every frame of clip b is image b
    c = torch.randn([2, c_dim])
    expected = D_image(frames, c)
    for t in ([[0., 1, 2], [3, 4, 5]], [[0., 7.5, 30], [2, 18, 34]]):
        assert torch.allclose(D(clips, c, torch.tensor(t)), expected, atol=1e-5)

@pytest.mark.parametrize('c_dim', [0, 4])
def test_converted_tsm_discriminator_is_time_independent_at_start_and_learns_time(c_dim):
    D_image = _image_D(c_dim)
    D = VideoDiscriminator.from_image_discriminator(D_image, num_frames=3)
    assert torch.equal(D.b32.conv0.weight, D_image.b32.conv0.weight) and torch.equal(D.b4.fc.weight, D_image.b4.fc.weight)
    img, t = _clips()
    c = torch.randn([2, c_dim])
    logits = D(img, c, t)
    assert torch.allclose(logits, D(img, c, t.flip(0) * 0.5), atol=1e-5)

    # The time features get gradients, and differing ones, so conditioning on t is not stuck at the start.
    logits.sum().backward()
    layer = D.mapping.embed if c_dim > 0 else getattr(D.mapping, f'fc{D.mapping.num_layers - 1}')
    grad = layer.weight.grad[:, c_dim:] if c_dim > 0 else layer.weight.grad
    assert grad.abs().sum() > 0 and not torch.allclose(grad, grad[:1].expand_as(grad))

def test_conversion_keeps_what_fits_for_concat_fusion():
    D_image = _image_D(0)
    D = VideoDiscriminator.from_image_discriminator(D_image, fuse='concat')
    assert torch.equal(D.b32.conv0.weight, D_image.b32.conv0.weight) and torch.equal(D.b8.conv1.weight, D_image.b8.conv1.weight)
    assert D.b16.conv0.weight.shape == (96, 96, 3, 3) # rebuilt for 3 x 32 channels, starts fresh
    assert D.init_kwargs.channel_base == 1024 and D.init_kwargs.fuse == 'concat'

#----------------------------------------------------------------------------

def test_pickle_round_trip_in_a_fresh_process_gives_the_same_logits(tmp_path):
    torch.manual_seed(0)
    D = VideoDiscriminator(4, RES, 3, fuse='mean', **SMALL).eval().requires_grad_(False)
    img, t = _clips()
    c = torch.randn([2, 4])
    with open(tmp_path / 'D.pkl', 'wb') as f:
        pickle.dump(dict(D=D), f)
    torch.save(dict(img=img, c=c, t=t), tmp_path / 'inputs.pt')
    # The fresh process has only the upstream layer on its path: the pickle must carry the plugin's code.
    script = textwrap.dedent(f'''
        import pickle, sys, torch
        sys.path.insert(0, {os.path.join(ROOT, 'third_party', 'stylegan3')!r})
        D = pickle.load(open({str(tmp_path / 'D.pkl')!r}, 'rb'))['D']
        assert 'svc_plugin' not in sys.modules
        x = torch.load({str(tmp_path / 'inputs.pt')!r})
        torch.save(D(x['img'], x['c'], x['t']), {str(tmp_path / 'logits.pt')!r})
    ''')
    subprocess.run([sys.executable, '-c', script], check=True, cwd=tmp_path)
    assert torch.equal(torch.load(tmp_path / 'logits.pt'), D(img, c, t))

#----------------------------------------------------------------------------

def _channels_moved_in_time(layer, channels, frames=3):
    """(channels frame 0 reads from frame 1, channels frame 2 reads from frame 1) through a TSM conv layer whose 3x3
    kernel is set to the identity, so each output channel is its own (shifted) input channel, activated."""
    with torch.no_grad():
        layer.weight.zero_()
        layer.weight[:, :, 1, 1] = torch.eye(channels) / layer.weight_gain
        layer.bias.zero_()
    x = torch.rand([frames, channels, 4, 4]) + 1 # [frames, C, H, W], one clip
    edited = x.clone()
    edited[1] += 1 # Only the middle frame changes.
    with torch.no_grad():
        changed = (layer(edited) != layer(x)).flatten(2).any(dim=2) # [frames, C]
    return changed[0].nonzero().flatten().tolist(), changed[2].nonzero().flatten().tolist()

def test_tsm_by_default_moves_an_eighth_of_the_channels_each_way():
    """The paper's TSM (arXiv 2212.07413; Lin et al., TSM, 2019): 1/8 of the channels from the next frame, 1/8 from the previous."""
    D = VideoDiscriminator(0, RES, 3, **SMALL) # b32: the block above fuse_res=16, conv0 of 32 channels
    assert D.b32.conv0.in_channels == 32
    from_next, from_prev = _channels_moved_in_time(D.b32.conv0, 32)
    assert (from_next, from_prev) == ([0, 1, 2, 3], [4, 5, 6, 7])
    layer = type(D.b32.conv0)(16, 16, kernel_size=3, activation='lrelu', num_frames=3) # The layer's own default.
    assert _channels_moved_in_time(layer, 16) == ([0, 1], [2, 3])

#----------------------------------------------------------------------------
