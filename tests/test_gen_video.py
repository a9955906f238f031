"""Tests of gen_video.py: long videos in flat memory, chunking, seamless loops, content x motion grids, CLI errors."""

import copy
import os
import pickle
import shutil
import subprocess
import sys
import weakref
from fractions import Fraction

import imageio.v3 as iio
import imageio_ffmpeg
import click
import numpy as np
import pytest
import torch

import gen_video
from svc_plugin import checkpoint, video_io
from svc_plugin.networks import VideoGenerator
from training import networks_stylegan2, networks_stylegan3

ROOT = os.path.dirname(os.path.abspath(gen_video.__file__))

#----------------------------------------------------------------------------

G_KWARGS = dict(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=1024, channel_max=16,
    num_layers=4, margin_size=2, mapping_kwargs=dict(num_layers=2))

def save_snapshot(path, G, **extra):
    D = networks_stylegan2.Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=8)
    with open(path, 'wb') as f:
        pickle.dump(dict(G=G, D=D, G_ema=G, augment_pipe=None, **extra), f)
    return str(path)

@pytest.fixture(scope='module')
def G_image():
    torch.manual_seed(0)
    return networks_stylegan3.Generator(**G_KWARGS).eval().requires_grad_(False)

@pytest.fixture(scope='module')
def G(G_image):
    """A tiny VideoGenerator whose motion is switched on (its motion mask starts at zero)."""
    G = VideoGenerator.from_image_generator(G_image, motion_kwargs=dict(z_dim=8, v_dim=8, motion_z_distance=4, max_period_len=64))
    with torch.no_grad():
        G.synthesis.motion_mask.fill_(1)
    return G

@pytest.fixture(scope='module')
def video_pkl(tmp_path_factory, G):
    return save_snapshot(tmp_path_factory.mktemp('net') / 'network-snapshot-000000.pkl', G, fps=10)

@pytest.fixture(scope='module')
def image_pkl(tmp_path_factory, G_image):
    return save_snapshot(tmp_path_factory.mktemp('net') / 'image-snapshot.pkl', G_image)

def frames_of(G, videos, num_frames, **kwargs):
    """All frames of the videos as the generator gives them: float [V, F, C, H, W]."""
    return torch.cat(list(gen_video.generate_frames(G, videos, num_frames, **kwargs)), dim=1)

def seed_z(seed):
    """A seed's content code, drawn as StyleGAN3's gen_images.py draws it: [1, z_dim]."""
    return torch.from_numpy(np.random.RandomState(seed).randn(1, G_KWARGS['z_dim'])).float()

def quantised(images):
    """Generator output [F, C, H, W] in [-1, 1] as the uint8 frames [F, H, W, C] a video holds: x * 127.5 + 128, clamped."""
    return np.clip(images.detach().permute(0, 2, 3, 1).numpy().astype(np.float64) * 127.5 + 128, 0, 255).astype(np.uint8).astype(int)

def read_png_frames(folder):
    """The frames of a --format=png video, in order: int [F, H, W, C]."""
    return np.stack([iio.imread(path) for path in sorted(folder.iterdir())]).astype(int)

def run_cli(*args):
    """gen_video.run in this process: 0, or the message it exits with."""
    try:
        gen_video.run(list(args))
    except SystemExit as exit:
        return exit.code
    return 0

#----------------------------------------------------------------------------

def test_long_video_streams_while_computing_the_next_chunks(video_pkl, tmp_path, monkeypatch):
    """Flat memory, measured by what would grow: the frames computed but not yet handed to the encoder (at most the
    chunk being encoded and the two queued for it), and the float chunks alive at once. Holding every frame before
    writing makes both grow with the video's length."""
    writers, lags, alive = [], [], []
    chunks_alive = weakref.WeakSet()
    open_video, generate_frames = video_io.open_video, gen_video.generate_frames
    def recording_open_video(*args, **kwargs):
        writers.append(open_video(*args, **kwargs))
        return writers[-1]
    def recording_generate_frames(*args, **kwargs):
        computed = 0
        for chunk in generate_frames(*args, **kwargs):
            lags.append(computed - writers[-1].num_frames) # asked for the next chunk: what came before is written
            alive.append(len(chunks_alive))
            chunks_alive.add(chunk)
            computed += chunk.shape[1]
            yield chunk
    monkeypatch.setattr(video_io, 'open_video', recording_open_video)
    monkeypatch.setattr(gen_video, 'generate_frames', recording_generate_frames)
    assert run_cli(f'--network={video_pkl}', '--frames=2000', '--batch=100', f'--outdir={tmp_path}') == 0
    assert len(lags) == 20 and max(lags) <= 3 * 100 and max(alive) <= 1, (lags, alive)
    path = tmp_path / 'seed0000.mp4'
    assert os.listdir(tmp_path) == ['seed0000.mp4']
    assert imageio_ffmpeg.count_frames_and_secs(str(path)) == (2000, 2000 / 10) # at the snapshot's fps
    assert len(iio.imread(path)) == 2000

def assert_same_frames(a, b):
    """Frames of different forward passes agree up to float32 rounding, which depends on the batch size of
    the convolutions (~1e-6 here), so not bit for bit; frames a step apart differ by ~1e-1."""
    assert a.shape == b.shape and (a - b).abs().max() < 1e-5

def test_chunked_generation_equals_one_piece(G):
    videos = [(0, 0), (1, 5), (2, 7)]
    one_piece = frames_of(G, videos, 12, batch=3 * 12, start=2.5, step=0.75)
    assert one_piece.shape == (3, 12, 3, 16, 16)
    for batch in [6, 15]: # 2 and 5 frames per chunk, the last chunk shorter
        assert_same_frames(frames_of(G, videos, 12, batch=batch, start=2.5, step=0.75), one_piece)
    assert (one_piece[:, 1:] - one_piece[:, :-1]).abs().amax(dim=(2, 3, 4)).min() > 1e-3 # every frame moves

def test_start_and_speed_set_the_frame_times(G):
    normal = frames_of(G, [(3, 3)], 12)
    assert_same_frames(frames_of(G, [(3, 3)], 4, start=8), normal[:, 8:12])
    assert_same_frames(frames_of(G, [(3, 3)], 6, step=2), normal[:, ::2])

def test_a_seed_means_the_same_content_as_in_gen_images(G_image, image_pkl, tmp_path):
    """gen_images.py's PNG of seed 3 is every frame gen_video writes for seed 3 from the same network with motion off."""
    import gen_images # third_party/stylegan3's script, run as a user runs it
    gen_images.generate_images.main([f'--network={image_pkl}', '--seeds=3', f'--outdir={tmp_path / "images"}'], standalone_mode=False)
    image = iio.imread(tmp_path / 'images' / 'seed0003.png')
    G = VideoGenerator.from_image_generator(G_image) # motion mask at zero: every frame is the image G's image
    video_pkl = save_snapshot(tmp_path / 'video.pkl', G)
    assert run_cli(f'--network={video_pkl}', '--seeds=3', '--motion-seed=8', '--frames=3', '--start-frame=100', '--format=png', f'--outdir={tmp_path}') == 0
    frames = sorted((tmp_path / 'seed0003-motion0008').iterdir())
    assert len(frames) == 3
    for frame in frames:
        assert (iio.imread(frame) == image).all()

#----------------------------------------------------------------------------

@pytest.mark.parametrize('num_frames, speed, period', [(32, 1, 32), (30, 1, 32), (10, 1, 12), (1, 1, 4), (100, 0.5, 52), (7, 3, 20)])
def test_loop_period_is_the_nearest_multiple_of_the_key_distance(num_frames, speed, period):
    step, loop_period = gen_video.loop_timing(num_frames, speed, 4)
    assert loop_period == period and step == Fraction(period, num_frames)

@pytest.mark.parametrize('num_frames, speed', [(12, 1), (10, 1), (9, 0.7)])
def test_loop_frame_n_equals_frame_0(G, num_frames, speed):
    step, period = gen_video.loop_timing(num_frames, speed, G.motion_z_distance)
    frames = frames_of(G, [(0, 0), (1, 9)], num_frames + 1, start=3, step=step, motion_period=period, batch=6)
    assert_same_frames(frames[:, num_frames], frames[:, 0])
    assert (frames[:, num_frames // 2] - frames[:, 0]).abs().max() > 0.05 # it moves in between

def test_loop_cli_spreads_the_frames_over_one_motion_period_and_closes_the_loop(G, video_pkl, tmp_path):
    """30 frames, key distance 4: the period is 32 (the multiple of 4 nearest 30), frame i is G at t = i * 32/30 with
    the motion wrapping every 32 frames, and the frame after the last (t = 32) is the first again."""
    assert run_cli(f'--network={video_pkl}', '--frames=30', '--loop', '--format=png', f'--outdir={tmp_path}') == 0
    written = read_png_frames(tmp_path / 'seed0000')
    assert written.shape == (30, 16, 16, 3)
    t = torch.arange(31, dtype=torch.float64)[None] * 32 / 30 # [1, 31]: the 30 frames, then the one after the last
    expected = quantised(G(seed_z(0), torch.zeros([1, 0]), t=t, motion_seeds=[0], motion_period=32))
    assert np.abs(written - expected[:30]).max() <= 1 # Rounding of a different batch.
    assert np.abs(written[0] - expected[30]).max() <= 1
    assert np.abs(written[-1] - written[0]).max() > 1 # The last frame is not the first one repeated.

#----------------------------------------------------------------------------

class Recorder(torch.nn.Module):
    """Wraps G and records the content codes and motion seeds of every call."""
    def __init__(self, G):
        super().__init__()
        self.G, self.z_dim, self.c_dim, self.calls = G, G.z_dim, G.c_dim, []

    def forward(self, z, c, **kwargs):
        self.calls.append((z.clone(), list(kwargs['motion_seeds'])))
        return self.G(z, c, **kwargs)

def test_decompose_rows_share_content_and_columns_share_motion(G):
    (name, videos, grid), = gen_video.plan_outputs(seeds=[0, 1], motion_seeds=[10, 11, 12], grid=None, decompose=True)
    assert grid == (3, 2) and name == 'decompose3x2-seed0000-motion0010'
    recorder = Recorder(G)
    clips = frames_of(recorder, videos, 4, batch=24) # one call, [6, 4, C, H, W], video v at row v // 3, column v % 3
    z, motion_seeds = recorder.calls[0]
    assert [torch.equal(z[v], gen_video.content_z(G, [0, 1][v // 3])[0]) for v in range(6)] == [True] * 6
    assert motion_seeds == [10, 11, 12, 10, 11, 12]
    for v, (content, motion) in enumerate([(0, 10), (0, 11), (0, 12), (1, 10), (1, 11), (1, 12)]):
        assert_same_frames(clips[v], frames_of(G, [(content, motion)], 4)[0])

def test_motion_seed_varies_motion_with_fixed_content(G):
    outputs = gen_video.plan_outputs(seeds=[4], motion_seeds=[0, 1], grid=None, decompose=False)
    assert [(name, videos) for name, videos, _ in outputs] == [('seed0004-motion0000', [(4, 0)]), ('seed0004-motion0001', [(4, 1)])]
    a, b = frames_of(G, [(4, 0), (4, 1)], 4)
    assert (a - b).abs().max() > 0.05

def test_grid_and_decompose_cli_write_one_tiled_video(video_pkl, tmp_path):
    assert run_cli(f'--network={video_pkl}', '--frames=5', '--grid=3x2', f'--outdir={tmp_path}') == 0
    assert run_cli(f'--network={video_pkl}', '--frames=5', '--decompose', '--seeds=0-1', '--motion-seed=3-5', '--fps=5', f'--outdir={tmp_path}') == 0
    assert sorted(os.listdir(tmp_path)) == ['decompose3x2-seed0000-motion0003.mp4', 'grid3x2-seed0000.mp4']
    assert iio.imread(tmp_path / 'grid3x2-seed0000.mp4').shape == (5, 32, 48, 3)
    assert imageio_ffmpeg.count_frames_and_secs(str(tmp_path / 'decompose3x2-seed0000-motion0003.mp4')) == (5, 1.0)

#----------------------------------------------------------------------------

def test_weights_only_checkpoint_is_accepted(video_pkl, tmp_path):
    weights = str(tmp_path / 'network.pt')
    checkpoint.save_weights(weights, checkpoint.load_network(video_pkl))
    assert run_cli(f'--network={weights}', '--frames=3', '--format=png', f'--outdir={tmp_path}') == 0
    assert sorted(os.listdir(tmp_path / 'seed0000')) == ['000000.png', '000001.png', '000002.png']

def test_latest_is_the_newest_snapshot_in_runs(video_pkl, tmp_path, monkeypatch):
    os.makedirs(tmp_path / 'runs' / '00001-demo')
    shutil.copyfile(video_pkl, tmp_path / 'runs' / '00001-demo' / 'network-snapshot-000004.pkl')
    monkeypatch.chdir(tmp_path)
    assert run_cli('--network=latest', '--frames=2', '--format=png') == 0
    assert sorted(os.listdir(tmp_path / 'out' / 'seed0000')) == ['000000.png', '000001.png']

def test_a_training_run_s_previews_and_snapshot_play_at_its_dataset_s_frame_rate(image_pkl, tmp_path):
    """Data at 10 fps (not the default 25): training's preview videos, and gen_video on its snapshots, play at 10 fps."""
    env = dict(os.environ, OMP_NUM_THREADS='1')
    data = str(tmp_path / 'data10.zip')
    subprocess.run([sys.executable, '-m', 'svc_plugin.dataset_tool', '--source=demo', f'--dest={data}', '--resolution=16', '--fps=10',
        '--demo-videos=2', '--demo-frames=40', '--workers=1'], cwd=ROOT, env=env, check=True, capture_output=True, timeout=300)
    subprocess.run([sys.executable, 'train_video.py', '--cfg=stylegan3-t', f'--data={data}', '--stage=video', f'--resume={image_pkl}',
        '--kimg=0.006', '--tick=0.006', '--batch=2', '--batch-gpu=2', '--mbstd-group=2', '--workers=0', '--metrics=none', '--grid=1x1',
        '--snap=1', '--export-safe', f'--outdir={tmp_path / "runs"}'], cwd=ROOT, env=env, check=True, capture_output=True, timeout=600)
    (run_dir,) = os.listdir(tmp_path / 'runs')
    previews = sorted(name for name in os.listdir(tmp_path / 'runs' / run_dir) if name.endswith('.mp4'))
    assert previews == ['fakes000000.mp4', 'fakes_init.mp4', 'reals.mp4']
    for name in previews:
        assert iio.immeta(tmp_path / 'runs' / run_dir / name)['fps'] == 10
    for network in ['network-snapshot-000000.pkl', 'network-snapshot-000000.pt']: # Pickle and weights-only checkpoint.
        outdir = tmp_path / network
        assert run_cli(f'--network={tmp_path / "runs" / run_dir / network}', '--frames=4', f'--outdir={outdir}') == 0
        (video,) = os.listdir(outdir)
        assert iio.immeta(outdir / video)['fps'] == 10

def test_class_picks_the_label_of_a_conditional_network(G_image, tmp_path):
    torch.manual_seed(1)
    G = VideoGenerator.from_image_generator(networks_stylegan3.Generator(**dict(G_KWARGS, c_dim=3)), motion_kwargs=dict(z_dim=8, v_dim=8, motion_z_distance=4, max_period_len=64))
    with torch.no_grad():
        G.synthesis.motion_mask.fill_(1)
    pkl = save_snapshot(tmp_path / 'conditional.pkl', G.eval())
    t = torch.arange(3.0)[None]
    for class_idx in [0, 2]:
        assert run_cli(f'--network={pkl}', '--seeds=5', f'--class={class_idx}', '--frames=3', '--format=png', f'--outdir={tmp_path / str(class_idx)}') == 0
        written = read_png_frames(tmp_path / str(class_idx) / 'seed0005')
        with torch.no_grad():
            expected = quantised(G(seed_z(5), torch.eye(3)[[class_idx]], t=t, motion_seeds=[5]))
        assert np.abs(written - expected).max() <= 1 # Rounding of a different batch.
    assert (written != np.stack([iio.imread(path) for path in sorted((tmp_path / '0' / 'seed0005').iterdir())])).any()
    message = run_cli(f'--network={pkl}', '--frames=3', f'--outdir={tmp_path / "none"}')
    assert message.startswith('error: ') and '--class' in message and '\n' not in message

def test_latest_without_runs_is_one_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    message = run_cli('--network=latest', '--frames=2')
    assert message.startswith('error: --network=latest: no network-snapshot-*.pkl') and '\n' not in message
    assert os.listdir(tmp_path) == ['out'] and os.listdir(tmp_path / 'out') == [] # As prepared before loading.

def test_image_only_pickle_gets_one_line_and_a_way_forward(image_pkl, tmp_path):
    result = subprocess.run([sys.executable, 'gen_video.py', f'--network={image_pkl}', f'--outdir={tmp_path}'],
        cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith('error: ') and 'image-only' in last and 'train_video.py --stage=video' in last
    assert os.listdir(tmp_path) == []

@pytest.mark.parametrize('case, args', [
    ('missing pickle',       ['--network={tmp}/missing.pkl']),
    ('not a pickle',         ['--network={tmp}/junk.pkl']),
    ('frames=0',             ['--network={pkl}', '--frames=0']),
    ('negative batch',       ['--network={pkl}', '--batch=-4']),
    ('unwritable outdir',    ['--network={pkl}', '--outdir={tmp}/a_file/out']),
    ('grid of another size', ['--network={pkl}', '--grid=2x2', '--seeds=0-2']),
    ('grid and decompose',   ['--network={pkl}', '--grid=2x2', '--decompose']),
    ('bad seeds',            ['--network={pkl}', '--seeds=a-b']),
])
def test_bad_input_gives_one_line_and_no_file(case, args, video_pkl, tmp_path, capsys):
    (tmp_path / 'junk.pkl').write_bytes(b'not a pickle at all')
    (tmp_path / 'a_file').write_text('')
    args = [arg.format(tmp=tmp_path, pkl=video_pkl) for arg in args]
    message = run_cli(f'--outdir={tmp_path / "out"}', '--frames=3', *args) # later options win
    assert isinstance(message, str) and message.startswith('error: ') and '\n' not in message, message
    assert 'Traceback' not in capsys.readouterr().err
    assert not (tmp_path / 'out').exists() or os.listdir(tmp_path / 'out') == []

def test_start_frame_continues_a_video_exactly(video_pkl, tmp_path):
    """Frames 6-11 written by a second run with --start-frame=6 are those of frames 6-11 of one run, byte for byte
    (chunks of the same frames: --batch divides the split)."""
    common = [f'--network={video_pkl}', '--format=png', '--batch=3']
    assert run_cli(*common, '--frames=12', f'--outdir={tmp_path / "whole"}') == 0
    assert run_cli(*common, '--frames=6', f'--outdir={tmp_path / "first"}') == 0
    assert run_cli(*common, '--frames=6', '--start-frame=6', f'--outdir={tmp_path / "second"}') == 0
    read = lambda folder, index: (tmp_path / folder / 'seed0000' / f'{index:06d}.png').read_bytes()
    for index in range(12):
        assert read('whole', index) == (read('first', index) if index < 6 else read('second', index - 6))
    assert read('whole', 0) != read('whole', 6)

def test_an_encoder_failure_is_one_line_and_leaves_no_file(video_pkl, tmp_path, monkeypatch):
    class FullDisk(video_io.Mp4Writer):
        def _write(self, frames):
            if self.num_frames > 0:
                raise OSError(28, 'No space left on device')
            super()._write(frames)
    monkeypatch.setattr(video_io, 'open_video', lambda path, *args, **kwargs: FullDisk(path))
    message = run_cli(f'--network={video_pkl}', '--frames=40', '--batch=4', f'--outdir={tmp_path}')
    assert message == f'error: cannot write {tmp_path / "seed0000.mp4"}: No space left on device'
    assert os.listdir(tmp_path) == []

def test_interrupted_generation_leaves_no_file(G, tmp_path):
    def interrupted():
        yield from gen_video.generate_frames(G, [(0, 0)], 4, batch=2)
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        gen_video.stream_video(video_io.open_video(str(tmp_path / 'seed0000.mp4')), interrupted(), (1, 1), 8, desc='seed0000')
    assert os.listdir(tmp_path) == []

def test_parse_range_accepts_upstream_seed_lists():
    assert gen_video.parse_range('0,1,4-6') == [0, 1, 4, 5, 6]
    assert gen_video.parse_range(' 7 ') == [7]
    assert video_io.parse_grid('4x2') == (4, 2)

def test_bad_seed_lists_and_grids_say_what_was_wrong():
    with pytest.raises(click.BadParameter) as error:
        gen_video.parse_range('0,a')
    assert error.value.message == 'expected comma-separated integers or ranges like 0,1,4-6, got "0,a"'
    with pytest.raises(click.BadParameter) as error:
        gen_video.parse_range('5-3')
    assert error.value.message == '"5-3" is an empty range'
    with pytest.raises(click.BadParameter) as error:
        gen_video.plan_outputs(seeds=[0, 1, 2, 3, 4], motion_seeds=None, grid=(3, 2), decompose=False)
    assert (error.value.message, error.value.param_hint) == ('a 3x2 grid holds 6 videos, but the seeds give 5', '--grid')

def test_default_seeds_fill_the_grid_or_four_rows_of_a_decomposition():
    assert gen_video.default_seeds(grid=None, motion_seeds=[5], decompose=True) == [0, 1, 2, 3]
    assert gen_video.default_seeds(grid=(3, 2), motion_seeds=None, decompose=False) == [0, 1, 2, 3, 4, 5]
    assert gen_video.default_seeds(grid=(3, 2), motion_seeds=[1], decompose=False) == [0]

#----------------------------------------------------------------------------

def test_trunc_draws_every_frame_from_w_pulled_towards_its_average(G, tmp_path):
    """--trunc=0.5: each w halfway from the mapping's w to the running average w_avg (StyleGAN's truncation trick)."""
    G = copy.deepcopy(G)
    G.mapping.w_avg.copy_(torch.randn([G_KWARGS['w_dim']], generator=torch.Generator().manual_seed(1)) * 3) # Far from w.
    pkl = save_snapshot(tmp_path / 'net.pkl', G)
    t = torch.arange(4.0)[None]
    with torch.no_grad():
        w = G.mapping(seed_z(2), None) # [1, num_ws, w_dim], untruncated
        w_half = G.mapping.w_avg + 0.5 * (w - G.mapping.w_avg)
        expected = {psi: quantised(G.synthesis(ws, t=t, motion_seeds=[2])) for psi, ws in [('1', w), ('0.5', w_half)]}
    for psi in ['1', '0.5']:
        assert run_cli(f'--network={pkl}', '--seeds=2', '--frames=4', f'--trunc={psi}', '--format=png', f'--outdir={tmp_path / psi}') == 0
        assert np.abs(read_png_frames(tmp_path / psi / 'seed0002') - expected[psi]).max() <= 1
    assert np.abs(expected['1'] - expected['0.5']).max() > 10

#----------------------------------------------------------------------------
