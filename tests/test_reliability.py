"""Reliability across the four entry points (issue 9): bad input fails in one line and leaves nothing, a full disk and a
SIGKILL while a snapshot is written leave the run resumable, and weights-only checkpoints stand in for pickles.

Covered elsewhere, not repeated here: bad options of train_video.py (--cfg, --metrics, --frames=0, negative --batch,
--batch vs --gpus, too many --gpus, --outdir inside a file, non-square data, a --resume of another resolution or
truncated: test_train_video.py), the NaN guard and a failing gloo DDP rank (test_training_loop_ext.py), a SIGKILL
between snapshots (test_train_video.py), grayscale and RGBA sources converted and reported (test_dataset_tool.py), gen_video's
option errors (test_gen_video.py), calc_metrics_video's (test_calc_metrics_video.py), the I3D weights unpickler that
admits arrays only (test_i3d.py) and weights-only checkpoints that name a foreign class (test_checkpoint.py).
"""

import copy
import hashlib
import json
import os
import pickle
import resource
import signal
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import calc_metrics_video
import gen_video
import train_video
import training_loop_ext
from svc_plugin import checkpoint
from svc_plugin import dataset_tool
from svc_plugin import runs
from svc_plugin.networks import VideoGenerator
from training import networks_stylegan2
from training import networks_stylegan3

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RUN_ENV = dict(os.environ, OMP_NUM_THREADS='1') # Processes share two cores: no thread oversubscription.
TINY_RUN = ['--cfg=stylegan2', '--stage=image', '--cbase=1024', '--cmax=16', '--map-depth=1', '--batch=4', '--workers=0',
    '--metrics=none', '--grid=1x1', '--snap=1', '--tick=0.004'] # One step of 4 frames per tick, a snapshot every tick.

#----------------------------------------------------------------------------
# Inputs: small frame-folder datasets, network files good and bad.

def write_video(folder, num_frames, shape, seed=0):
    """A folder of PNG frames; shape [H, W] (grayscale) or [H, W, C]."""
    os.makedirs(folder)
    for t in range(num_frames):
        PIL.Image.fromarray(np.random.RandomState(seed + t).randint(0, 256, shape, dtype=np.uint8)).save(os.path.join(folder, f'{t:06d}.png'))

@pytest.fixture(scope='module')
def data(tmp_path_factory):
    """{name: path} of good and bad inputs for the dataset tool and the training and metric scripts."""
    root = tmp_path_factory.mktemp('data')
    paths = {name: str(root / name) for name in ['good', 'mixed_sizes', 'mixed_channels', 'rgba', 'short', 'not_videos', 'empty']}
    for v in range(3):
        write_video(os.path.join(paths['good'], f'video{v}'), 8, [16, 16, 3], seed=v)
    write_video(os.path.join(paths['mixed_sizes'], 'a'), 4, [16, 16, 3])
    write_video(os.path.join(paths['mixed_sizes'], 'b'), 4, [32, 32, 3])
    write_video(os.path.join(paths['mixed_channels'], 'a'), 4, [16, 16, 3])
    write_video(os.path.join(paths['mixed_channels'], 'b'), 4, [16, 16])
    write_video(os.path.join(paths['rgba'], 'a'), 4, [16, 16, 4])
    write_video(os.path.join(paths['short'], 'a'), 2, [16, 16, 3])
    write_video(os.path.join(paths['short'], 'b'), 1, [16, 16, 3])
    os.makedirs(paths['not_videos'])
    for name in ['notes.txt', 'table.csv']:
        (root / 'not_videos' / name).write_text('not footage')
    os.makedirs(paths['empty'])
    paths['not_a_zip'] = str(root / 'not_a_zip.zip')
    (root / 'not_a_zip.zip').write_text('hello')
    paths['good_zip'] = str(root / 'good.zip')
    dataset_tool.convert_dataset(paths['good'], paths['good_zip'], 16)
    paths['truncated_zip'] = str(root / 'truncated.zip')
    (root / 'truncated.zip').write_bytes((root / 'good.zip').read_bytes()[:-100]) # The zip's directory is at its end.
    paths['a_file'] = str(root / 'a_file')
    (root / 'a_file').write_text('')
    return paths

@pytest.fixture(scope='module')
def G():
    """A tiny VideoGenerator whose motion is switched on (its motion mask starts at zero)."""
    torch.manual_seed(0)
    G = VideoGenerator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=1024, channel_max=16, num_layers=4,
        margin_size=2, mapping_kwargs=dict(num_layers=2), motion_kwargs=dict(z_dim=8, v_dim=8, motion_z_distance=4, max_period_len=64))
    with torch.no_grad():
        G.synthesis.motion_mask.fill_(1)
    return G.eval().requires_grad_(False)

@pytest.fixture(scope='module')
def nets(tmp_path_factory, G):
    """{name: path} of network files: a video snapshot (pickle and weights-only), an image snapshot and unusable files."""
    root = tmp_path_factory.mktemp('nets')
    D = networks_stylegan2.Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=8)
    G_image = networks_stylegan3.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, channel_base=1024,
        channel_max=16, num_layers=4, margin_size=2, mapping_kwargs=dict(num_layers=2))
    video = pickle.dumps(dict(G=G, D=D, G_ema=copy.deepcopy(G), augment_pipe=None, training_set_kwargs=None))
    files = dict(
        video=video,
        image=pickle.dumps(dict(G=G_image, D=D, G_ema=G_image, augment_pipe=None, training_set_kwargs=None)),
        truncated=video[:len(video) // 2],
        empty=b'',
        not_a_pickle=b'a text file, not a network\n',
        no_generator=pickle.dumps(dict(D=D)),
    )
    paths = {}
    for name, content in files.items():
        paths[name] = str(root / f'{name}.pkl')
        (root / f'{name}.pkl').write_bytes(content)
    paths['weights'] = str(root / 'video.pt')
    checkpoint.save_weights(paths['weights'], checkpoint.load_network(paths['video']))
    paths['truncated_weights'] = str(root / 'truncated.pt')
    (root / 'truncated.pt').write_bytes(open(paths['weights'], 'rb').read()[:20000])
    return paths

#----------------------------------------------------------------------------
# Checks shared by the tests.

def assert_one_line_error(stderr, message):
    """Exactly one error line, holding `message`, and no traceback (click adds its usage lines to a usage error)."""
    lines = [line for line in stderr.splitlines() if line.lower().startswith('error:')]
    assert len(lines) == 1 and message in lines[0], stderr[-2000:]
    assert 'Traceback' not in stderr

def files_under(folder):
    return sorted(os.path.relpath(os.path.join(d, f), folder) for d, _dirs, fs in os.walk(folder) for f in fs) if os.path.isdir(folder) else []

def sha256(path):
    return hashlib.sha256(open(path, 'rb').read()).hexdigest()

def limited_file_size(max_bytes):
    """preexec_fn of a process whose writes past max_bytes fail with EFBIG, as on a full disk (SIGXFSZ ignored, so the write
    returns an error instead of killing the process; processes it starts get the signal back and die of it)."""
    def preexec():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
    return preexec

def run_script(args, max_bytes=None, timeout=300):
    return subprocess.run([sys.executable, *args], cwd=ROOT_DIR, env=RUN_ENV, capture_output=True, text=True, timeout=timeout,
        preexec_fn=None if max_bytes is None else limited_file_size(max_bytes))

#----------------------------------------------------------------------------
# dataset_tool.

DATASET_TOOL_CASES = [ # (name, source key, dest inside a file, extra options, message)
    ('zip that is not a zip',    'not_a_zip',      False, [],                 'not a valid zip file'),
    ('truncated zip',            'truncated_zip',  False, [],                 'not a valid zip file'),
    ('folder of non-videos',     'not_videos',     False, [],                 'holds no video file (.avi, .mkv, .mov, .mp4, .webm) and no folder of images: only 2 other files'),
    ('empty folder',             'empty',          False, [],                 'holds no video file'),
    ('every video too short',    'short',          False, ['--min-frames=3'], 'no video written: 2 sources skipped (2 too short)'),
    ('dest inside a file',       'good',           True,  [],                 'is a file, not a folder'),
]

@pytest.mark.parametrize('source,inside_file,options,message', [case[1:] for case in DATASET_TOOL_CASES], ids=[case[0] for case in DATASET_TOOL_CASES])
def test_dataset_tool_bad_input(tmp_path, data, source, inside_file, options, message):
    dest = os.path.join(data['a_file'], 'out.zip') if inside_file else str(tmp_path / 'out.zip')
    result = CliRunner().invoke(dataset_tool.main, [f'--source={data[source]}', f'--dest={dest}', '--resolution=16', '--workers=1', *options])
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, message)
    assert files_under(tmp_path) == []

@pytest.mark.parametrize('dest,max_bytes', [('out.zip', 10000), ('out', 200)]) # The zip outgrows 10 kB; every 16x16 frame 200 bytes.
def test_dataset_tool_on_a_full_disk_leaves_nothing(tmp_path, data, dest, max_bytes):
    result = run_script(['-m', 'svc_plugin.dataset_tool', f'--source={data["good"]}', f'--dest={tmp_path / dest}', '--resolution=16',
        '--workers=1'], max_bytes=max_bytes)
    assert result.returncode == 1
    assert_one_line_error(result.stderr, f'cannot write {tmp_path / dest}: File too large')
    assert files_under(tmp_path) == []

#----------------------------------------------------------------------------
# train_video.py: data and --resume files (a dry run: every check happens before the run directory would be made).

TRAIN_CASES = [ # (name, options, message)
    ('zip that is not a zip',     ['--data={not_a_zip}'],                        'is not a valid zip file'),
    ('truncated zip',             ['--data={truncated_zip}'],                    'is not a valid zip file'),
    ('no videos',                 ['--data={not_videos}'],                       'No frame folders found'),
    ('every video too short',     ['--data={short}', '--stage=video'],           'has the 3 frames a clip needs'),
    ('mixed frame sizes',         ['--data={mixed_sizes}'],                      'videos differ in frame format: a has 16x16 RGB frames, b has 32x32 RGB frames'),
    ('mixed channel counts',      ['--data={mixed_channels}'],                   'a has 16x16 RGB frames, b has 16x16 grayscale frames'),
    ('RGBA frames',               ['--data={rgba}'],                             'video a has RGBA frames'),
    ('resume: not a pickle',      ['--data={good}', '--resume={not_a_pickle}'],  'not a network pickle or weights-only checkpoint'),
    ('resume: empty file',        ['--data={good}', '--resume={empty}'],         'the file is empty'),
    ('resume: no generator',      ['--data={good}', '--resume={no_generator}'],  'holds no generator'),
    ('resume: truncated .pt',     ['--data={good}', '--resume={truncated_weights}'], 'truncated or damaged weights-only checkpoint'),
    ('resume: other resolution',  ['--data={good_zip32}', '--resume={video}'],   'make the data with python -m svc_plugin.dataset_tool --resolution=16'),
]

@pytest.fixture(scope='module')
def train_inputs(data, nets, tmp_path_factory):
    root = tmp_path_factory.mktemp('data32')
    write_video(str(root / 'v' / 'video0'), 4, [32, 32, 3])
    return dict(data, **nets, good_zip32=str(root / 'v'))

@pytest.mark.parametrize('options,message', [case[1:] for case in TRAIN_CASES], ids=[case[0] for case in TRAIN_CASES])
def test_train_video_bad_input(tmp_path, train_inputs, options, message):
    options = [option.format(**train_inputs) for option in options]
    result = CliRunner().invoke(train_video.main, ['--cfg=stylegan3-t', '--stage=image', '--batch=4', '--metrics=none', *options,
        f'--outdir={tmp_path / "runs"}', '--dry-run']) # A later --stage wins.
    assert result.exit_code == 1
    assert_one_line_error(result.stderr, message)
    assert not os.path.exists(tmp_path / 'runs')

def test_train_video_turns_a_failed_process_into_one_line(tmp_path, data, monkeypatch):
    """A spawned process that raised (its traceback is in log.txt): the run ends with the exception's own line."""
    def fail(*_args, **_kwargs):
        raise torch.multiprocessing.ProcessRaisedException('\n\n-- Process 1 terminated with the following error:\nTraceback (most '
            'recent call last):\n  File "x.py", line 1, in f\nRuntimeError: injected failure on rank 1\n', 1, 12345)
    monkeypatch.setattr(training_loop_ext, 'launch', fail)
    result = CliRunner().invoke(train_video.main, [*TINY_RUN, f'--data={data["good"]}', f'--outdir={tmp_path}'])
    assert result.exit_code == 1
    assert result.stderr.strip() == 'Error: RuntimeError: injected failure on rank 1'

#----------------------------------------------------------------------------
# train_video.py: weights-only snapshots, a full disk, SIGKILL while a snapshot is being written.

def train(*args, outdir, max_bytes=None):
    return run_script(['train_video.py', *TINY_RUN, *args, f'--outdir={outdir}'], max_bytes=max_bytes)

def run_dirs(outdir):
    return sorted(os.path.join(outdir, name) for name in os.listdir(outdir))

@pytest.fixture(scope='module')
def safe_run(tmp_path_factory, data):
    """The run directory of one tick of a tiny image stage with --export-safe."""
    outdir = str(tmp_path_factory.mktemp('safe'))
    result = train(f'--data={data["good"]}', '--kimg=0.004', '--export-safe', outdir=outdir)
    assert result.returncode == 0, result.stderr[-3000:]
    return run_dirs(outdir)[0]

def test_export_safe_writes_a_weights_only_twin_of_every_snapshot(safe_run):
    pkls = [name for name in os.listdir(safe_run) if name.startswith('network-snapshot-') and name.endswith('.pkl')]
    assert pkls == ['network-snapshot-000000.pkl'] and os.path.isfile(os.path.join(safe_run, 'network-snapshot-000000.pt'))
    torch.load(os.path.join(safe_run, 'network-snapshot-000000.pt'), weights_only=True) # Tensors, numbers and strings only.
    pickled, safe = (checkpoint.load_network(os.path.join(safe_run, f'network-snapshot-000000.{ext}')) for ext in ['pkl', 'pt'])
    z = torch.randn([2, safe['G_ema'].z_dim])
    assert torch.equal(safe['G_ema'](z, None, noise_mode='const'), pickled['G_ema'](z, None, noise_mode='const'))
    assert safe['training_set_kwargs'] == pickled['training_set_kwargs'] and float(safe['augment_pipe'].p) == float(pickled['augment_pipe'].p)

def test_full_disk_while_writing_a_snapshot_is_one_line_and_the_earlier_snapshot_stays(safe_run, data):
    """Resumed from the weights-only twin (so --resume takes it), with writes capped below a snapshot's size."""
    outdir = os.path.dirname(safe_run)
    before = {name: sha256(os.path.join(safe_run, name)) for name in os.listdir(safe_run)}
    result = train(f'--data={data["good"]}', '--kimg=0.004', f'--resume={safe_run}/network-snapshot-000000.pt', outdir=outdir, max_bytes=10**6)
    assert result.returncode == 1
    assert_one_line_error(result.stderr, 'File too large (files written before are intact; free some space, then continue with --resume=latest)')
    assert {name: sha256(os.path.join(safe_run, name)) for name in os.listdir(safe_run)} == before
    failed_run = run_dirs(outdir)[1]
    assert 'Resuming from' in open(os.path.join(failed_run, 'log.txt')).read()
    assert [name for name in os.listdir(failed_run) if 'snapshot' in name or 'state' in name or '.tmp' in name] == []
    assert runs.find_latest_snapshot(outdir) == os.path.join(safe_run, 'network-snapshot-000000.pkl')

# Runs train_video.py; with $KILL_AT_SNAPSHOT=n, SIGKILLs itself when the n-th snapshot pickle is being flushed to disk (its
# temporary file cut to half, as a kill mid-write leaves it); with $WRITES_LOG, lists every file opened for writing under
# --outdir (Python's audit hook sees every open) into that file at exit.
TRAIN_DRIVER = '''
import os, re, signal, sys
import train_video
outdir = os.path.abspath([arg for arg in sys.argv if arg.startswith('--outdir=')][0].split('=', 1)[1])
written, snapshots, fsync = set(), [], os.fsync
def audit(event, args):
    if event == 'open' and isinstance(args[0], str) and os.path.abspath(args[0]).startswith(outdir + os.sep):
        if (args[1] is not None and any(c in args[1] for c in 'wax+')) or (args[1] is None and args[2] & (os.O_WRONLY | os.O_RDWR)):
            written.add(os.path.basename(args[0]))
def fsync_or_die(fd):
    path = os.readlink(f'/proc/self/fd/{fd}')
    if re.search(r'network-snapshot-[0-9]+[.]pkl[.]tmp', path):
        snapshots.append(path)
        if len(snapshots) == int(os.environ['KILL_AT_SNAPSHOT']):
            os.truncate(path, os.path.getsize(path) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
    fsync(fd)
if os.environ.get('KILL_AT_SNAPSHOT'):
    os.fsync = fsync_or_die
if os.environ.get('WRITES_LOG'):
    sys.addaudithook(audit)
try:
    train_video.main()
finally:
    if os.environ.get('WRITES_LOG'):
        with open(os.environ['WRITES_LOG'], 'w') as f:
            f.write(chr(10).join(sorted(written)))
'''

@pytest.mark.skipif(not sys.platform.startswith('linux'), reason='reads /proc/self/fd')
def test_sigkill_while_a_snapshot_is_written_then_resume_latest(tmp_path, data):
    """Two ticks, each with a snapshot of the same name (kimg < 1): the run dies while writing the second one, over the first."""
    args = ['-c', TRAIN_DRIVER, *TINY_RUN, f'--data={data["good"]}', '--kimg=0.008', f'--outdir={tmp_path}']
    killed = subprocess.run([sys.executable, *args], cwd=ROOT_DIR, env=dict(RUN_ENV, KILL_AT_SNAPSHOT='2'), capture_output=True, text=True, timeout=300)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    killed_run = run_dirs(tmp_path)[0]
    assert any('.tmp' in name for name in os.listdir(killed_run)) # The half-written temporary file that a SIGKILL cannot clean up ...
    for name in os.listdir(killed_run): # ... and under every final name a complete file: the first snapshot and its state.
        if name.startswith('network-snapshot-') and '.tmp' not in name:
            checkpoint.load_network(os.path.join(killed_run, name))
    assert runs.load_training_state(os.path.join(killed_run, 'network-snapshot-000000.pkl'))['cur_nimg'] == 4

    writes_log = tmp_path.parent / f'{tmp_path.name}-writes.txt'
    resumed = subprocess.run([sys.executable, *args[:-2], '--kimg=0.008', '--resume=latest', f'--outdir={tmp_path}'], cwd=ROOT_DIR,
        env=dict(RUN_ENV, WRITES_LOG=str(writes_log)), capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    resumed_run = run_dirs(tmp_path)[1]
    assert 'Restored the training state: kimg 0.004' in open(os.path.join(resumed_run, 'log.txt')).read()
    assert runs.load_training_state(os.path.join(resumed_run, 'network-snapshot-000000.pkl'))['cur_nimg'] == 8
    written = writes_log.read_text().split()
    assert {'training_options.json', 'network-snapshot-000000.pkl', 'training-state-000000.pt'} <= {name.split('.tmp')[0] for name in written}
    assert [name for name in written if '.tmp' not in name] == ['log.txt', 'stats.jsonl'] # Only the append-only logs are written in place.

#----------------------------------------------------------------------------
# gen_video.py.

GEN_CASES = [ # (name, network file key, message)
    ('truncated pickle',          'truncated',          'the file is truncated'),
    ('empty file',                'empty',              'the file is empty'),
    ('pickle without generator',  'no_generator',       'holds no generator'),
    ('truncated weights-only',    'truncated_weights',  'truncated or damaged weights-only checkpoint'),
]

def run_gen_video(args):
    """gen_video.run in this process: 0, or the message it exits with (exit status 1)."""
    try:
        gen_video.run(args)
    except SystemExit as exit:
        return exit.code
    return 0

@pytest.mark.parametrize('network,message', [case[1:] for case in GEN_CASES], ids=[case[0] for case in GEN_CASES])
def test_gen_video_bad_network_file(tmp_path, nets, network, message, capsys):
    code = run_gen_video([f'--network={nets[network]}', '--frames=2', f'--outdir={tmp_path / "out"}'])
    assert isinstance(code, str) and code.startswith(f'error: cannot load {nets[network]}: ') and message in code and '\n' not in code
    assert 'Traceback' not in capsys.readouterr().err
    assert files_under(tmp_path) == []

def test_gen_video_refuses_a_dataset_zip_as_network(tmp_path, data):
    code = run_gen_video([f'--network={data["good_zip"]}', '--frames=2', f'--outdir={tmp_path / "out"}'])
    assert code == f'error: cannot load {data["good_zip"]}: a zip archive, not a weights-only checkpoint or network pickle'
    assert files_under(tmp_path) == []

@pytest.mark.parametrize('video_format,max_bytes,message', [
    ('mp4', 1000, 'killed by SIGXFSZ (file size limit exceeded)'), # ffmpeg, which gets the signal back, dies of it.
    ('png', 200, 'File too large'),
])
def test_gen_video_on_a_full_disk_leaves_nothing(tmp_path, nets, video_format, max_bytes, message):
    result = run_script(['gen_video.py', f'--network={nets["video"]}', '--frames=64', '--batch=32', f'--format={video_format}',
        f'--outdir={tmp_path}'], max_bytes=max_bytes)
    assert result.returncode == 1
    assert_one_line_error(result.stderr, f'cannot write {tmp_path / "seed0000"}')
    assert message in result.stderr and files_under(tmp_path) == []

#----------------------------------------------------------------------------
# calc_metrics_video.py.

def test_calc_metrics_video_bad_input(tmp_path, data, nets):
    too_many = (torch.cuda.device_count() if torch.cuda.is_available() else os.cpu_count()) + 1
    cases = [
        ([f'--network={nets["truncated"]}'],                                  'the file is truncated'),
        ([f'--network={nets["video"]}', f'--gpus={too_many}'],               f'--gpus={too_many}'),
        ([f'--network={nets["video"]}', f'--data={data["mixed_sizes"]}'],     'videos differ in frame format'),
        ([f'--network={nets["video"]}', f'--data={data["rgba"]}'],            'has RGBA frames'),
        ([f'--network={nets["video"]}', f'--data={data["truncated_zip"]}'],   'not a valid zip file'),
    ]
    for options, message in cases:
        result = CliRunner().invoke(calc_metrics_video.main, ['--metrics=jerk_kf', '--quiet', *options])
        assert result.exit_code == 1
        assert_one_line_error(result.stderr, message)
    assert files_under(os.path.dirname(nets['video'])) == sorted(os.path.basename(path) for path in nets.values())

def test_calc_metrics_video_takes_a_weights_only_checkpoint(nets, G):
    G_loaded, training_set_kwargs = calc_metrics_video.load_generator(nets['weights'], ['fvd2048_16f'], None)
    assert type(G_loaded).__name__ == 'VideoGenerator' and training_set_kwargs is None
    assert all(torch.equal(a, b) for a, b in zip(G_loaded.state_dict().values(), G.state_dict().values()))

#----------------------------------------------------------------------------
# Weights-only checkpoints of a video generator.

def test_weights_only_round_trip_gives_the_pickle_s_frames(tmp_path, nets):
    """Converted with `python -m svc_plugin.checkpoint` (in this process): every frame equal, bit for bit."""
    dest = str(tmp_path / 'video.pt')
    result = CliRunner().invoke(checkpoint.main, [f'--source={nets["video"]}', f'--dest={dest}'])
    assert result.exit_code == 0, result.output
    data = torch.load(dest, weights_only=True) # No code runs to read it.
    assert json.loads(data['config'])['networks']['G_ema']['class_name'] == 'svc_plugin.networks.VideoGenerator'
    videos = [(0, 0), (1, 5)]
    frames = [torch.cat(list(gen_video.generate_frames(checkpoint.load_generator(path), videos, 9, batch=6, start=0.5, step=0.75)), dim=1)
        for path in [nets['video'], dest]] # [videos, frames, C, H, W], chunks of 3 frames
    assert frames[0].shape == (2, 9, 3, 16, 16) and torch.equal(frames[0], frames[1])
    assert (frames[0][:, 1:] - frames[0][:, :-1]).abs().amax() > 1e-3 # The frames move: motion is part of what was saved.

#----------------------------------------------------------------------------
