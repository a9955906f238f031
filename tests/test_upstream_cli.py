"""Tests of the upstream command-line scripts: train.py, gen_images.py, calc_metrics.py."""

import json
import os
import pickle
import subprocess
import sys

import numpy as np
import PIL.Image
import pytest
import torch
from click.testing import CliRunner

import calc_metrics
import dnnlib
import gen_images
import train
from training import training_loop
from tests.test_training_loop import TEST_METRIC, make_image_zip, metric_env # noqa: F401 (metric_env is a fixture)

STYLEGAN3_DIR = os.path.dirname(os.path.abspath(train.__file__))

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def data_zip(tmp_path_factory):
    return make_image_zip(tmp_path_factory.mktemp('data') / 'tiny.zip')

@pytest.fixture(scope='module')
def snapshot_pkl(tmp_path_factory, data_zip):
    """A snapshot of untrained tiny networks inside a run directory (with training_options.json)."""
    run_dir = tmp_path_factory.mktemp('run')
    G = dnnlib.util.construct_class_by_name(class_name='training.networks_stylegan3.Generator', z_dim=8, c_dim=0, w_dim=8,
        img_resolution=16, img_channels=3, channel_base=256, channel_max=8, num_layers=4, margin_size=2, num_fp16_res=0,
        mapping_kwargs=dict(num_layers=1))
    D = dnnlib.util.construct_class_by_name(class_name='training.networks_stylegan2.Discriminator', c_dim=0, img_resolution=16,
        img_channels=3, channel_base=64, channel_max=8, num_fp16_res=0)
    training_set_kwargs = dict(class_name='training.dataset.ImageFolderDataset', path=data_zip, use_labels=False, xflip=False, resolution=16)
    data = training_loop.make_snapshot_data(dict(G=G, D=D, G_ema=G, augment_pipe=None), training_set_kwargs, num_gpus=1)
    path = os.path.join(run_dir, 'network-snapshot-000000.pkl')
    training_loop.save_snapshot(path, data)
    with open(os.path.join(run_dir, 'training_options.json'), 'w') as f:
        json.dump(dict(training_set_kwargs=training_set_kwargs), f)
    return path

def train_args(outdir, data, *extra):
    return [f'--outdir={outdir}', '--cfg=stylegan3-t', f'--data={data}', '--gpus=1', '--batch=4', '--gamma=1', '--metrics=none', *extra]

def run_script(script, *args):
    return subprocess.run([sys.executable, os.path.join(STYLEGAN3_DIR, script), *args], capture_output=True, text=True, timeout=120)

#----------------------------------------------------------------------------
# train.py

def test_train_dry_run_prints_config_and_creates_nothing(tmp_path, data_zip):
    outdir = tmp_path / 'runs'
    result = CliRunner().invoke(train.main, train_args(outdir, data_zip, '--cbase=1024', '--dry-run'))
    assert result.exit_code == 0, result.output
    config = json.loads(result.output[result.output.index('{'):result.output.index('\n}\n') + 2])
    assert config['G_kwargs']['class_name'] == 'training.networks_stylegan3.Generator'
    assert config['G_kwargs']['channel_base'] == 1024 and config['G_kwargs']['mapping_kwargs']['num_layers'] == 2
    assert config['G_opt_kwargs']['lr'] == 0.0025 and config['ema_kimg'] == 4 * 10 / 32
    assert config['training_set_kwargs']['resolution'] == 16 and config['training_set_kwargs']['max_size'] == 8
    assert config['ada_target'] == 0.6 and config['augment_kwargs']['class_name'] == 'training.augment.AugmentPipe'
    assert config['run_dir'] == os.path.join(str(outdir), '00000-stylegan3-t-tiny-gpus1-batch4-gamma1')
    assert 'Dry run; exiting.' in result.output
    assert not outdir.exists()

def test_train_config_variants_follow_cfg_and_flags(tmp_path, data_zip, snapshot_pkl):
    result = CliRunner().invoke(train.main, train_args(tmp_path, data_zip, '--cfg=stylegan3-r', '--aug=fixed', '--p=0.3', '--fp32=1',
        f'--resume={snapshot_pkl}', '--desc=exp', '-n'))
    assert result.exit_code == 0, result.output
    config = json.loads(result.output[result.output.index('{'):result.output.index('\n}\n') + 2])
    assert config['G_kwargs']['conv_kernel'] == 1 and config['G_kwargs']['use_radial_filters'] is True
    assert config['G_kwargs']['channel_base'] == 2 * 32768 and config['D_kwargs']['channel_base'] == 32768
    assert config['augment_p'] == 0.3 and 'ada_target' not in config
    assert config['G_kwargs']['num_fp16_res'] == 0 and config['D_kwargs']['conv_clamp'] is None
    assert config['resume_pkl'] == snapshot_pkl and config['ema_rampup'] is None and config['loss_kwargs']['blur_init_sigma'] == 0
    assert config['run_dir'].endswith('00000-stylegan3-r-tiny-gpus1-batch4-gamma1-exp')

def torchrun_env(rank=0, world_size=1):
    """The variables torchrun sets for one worker of a single-machine job."""
    return dict(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE=str(world_size), MASTER_ADDR='127.0.0.1', MASTER_PORT='29500')

NO_TORCHRUN_ENV = {name: None for name in torchrun_env()}

@pytest.mark.parametrize('env', [NO_TORCHRUN_ENV, torchrun_env()], ids=['spawn', 'torchrun'])
def test_train_writes_options_and_log_into_next_numbered_run_dir(tmp_path, data_zip, monkeypatch, env):
    calls = []
    monkeypatch.setattr(training_loop, 'training_loop', lambda **kwargs: calls.append(kwargs) or print('training...'))
    (tmp_path / '00007-old').mkdir()
    result = CliRunner().invoke(train.main, train_args(tmp_path, data_zip, '--kimg=2'), env=env)
    assert result.exit_code == 0, result.output
    run_dir = tmp_path / '00008-stylegan3-t-tiny-gpus1-batch4-gamma1'
    with open(run_dir / 'training_options.json') as f:
        options = json.load(f)
    assert len(calls) == 1 and calls[0]['rank'] == 0
    assert options == json.loads(json.dumps({k: v for k, v in calls[0].items() if k != 'rank'}))
    assert options['total_kimg'] == 2 and options['run_dir'] == str(run_dir)
    assert 'training...' in (run_dir / 'log.txt').read_text()

def test_train_missing_data_fails_with_one_line_error(tmp_path):
    result = run_script('train.py', *train_args(tmp_path, tmp_path / 'missing.zip'))
    assert result.returncode != 0
    assert 'Traceback' not in result.stderr + result.stdout
    assert result.stderr.strip().count('\n') == 0 and result.stderr.startswith('Error: --data')

@pytest.mark.parametrize('script, args', [
    ('gen_images.py', ['--seeds=0', '--outdir=out']),
    ('calc_metrics.py', []),
])
def test_scripts_reject_a_file_that_is_not_a_network_pickle_in_one_line(tmp_path, script, args):
    bad = tmp_path / 'bad.pkl'
    bad.write_bytes(b'garbage\n')
    result = run_script(script, f'--network={bad}', *args)
    assert result.returncode != 0 and 'Traceback' not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(f'Error: --network: {bad} is not a readable network pickle')

@pytest.mark.parametrize('extra, message', [
    (['--batch=6', '--gpus=4'], '--batch must be a multiple of --gpus'),
    (['--batch-gpu=2'], '--batch-gpu cannot be smaller than --mbstd-group'),
    (['--metrics=fid50k_full,nope'], '--metrics: unknown nope'),
    (['--resume=missing.pkl'], "--resume: [Errno 2] No such file or directory: 'missing.pkl'"),
])
def test_train_rejects_inconsistent_options(tmp_path, data_zip, extra, message):
    result = CliRunner().invoke(train.main, train_args(tmp_path, data_zip, *extra))
    assert result.exit_code != 0 and message in result.output

@pytest.mark.parametrize('env, message', [
    (torchrun_env(world_size=2), '--gpus=1 but torchrun started 2 processes; under torchrun --gpus must equal the world size'),
    (dict(torchrun_env(), RANK='zero'), 'torchrun variables RANK, LOCAL_RANK and WORLD_SIZE must be integers'),
])
def test_train_under_torchrun_rejects_inconsistent_environment(tmp_path, data_zip, env, message):
    result = CliRunner().invoke(train.main, train_args(tmp_path, data_zip), env=env)
    lines = result.output.strip().splitlines()
    assert result.exit_code != 0 and len(lines) == 1 and lines[0].startswith(f'Error: {message}')
    assert not os.listdir(tmp_path)

#----------------------------------------------------------------------------
# gen_images.py

def test_gen_images_writes_one_png_per_seed_matching_G_ema(tmp_path, snapshot_pkl):
    result = CliRunner().invoke(gen_images.generate_images, [f'--network={snapshot_pkl}', '--seeds=0,2-3', f'--outdir={tmp_path}'])
    assert result.exit_code == 0, result.output
    assert sorted(os.listdir(tmp_path)) == ['seed0000.png', 'seed0002.png', 'seed0003.png']
    with open(snapshot_pkl, 'rb') as f:
        G = pickle.load(f)['G_ema']
    z = torch.from_numpy(np.random.RandomState(2).randn(1, G.z_dim)).float()
    expected = (G(z, torch.zeros([1, 0]), noise_mode='const') * 127.5 + 128).clamp(0, 255).to(torch.uint8)[0].permute(1, 2, 0).numpy()
    with PIL.Image.open(tmp_path / 'seed0002.png') as img:
        assert img.mode == 'RGB'
        np.testing.assert_array_equal(np.asarray(img), expected)

def test_gen_images_translate_changes_the_image(tmp_path, snapshot_pkl):
    for name, translate in [('a', '0,0'), ('b', '0.3,0')]:
        result = CliRunner().invoke(gen_images.generate_images, [f'--network={snapshot_pkl}', '--seeds=1', f'--translate={translate}', f'--outdir={tmp_path / name}'])
        assert result.exit_code == 0, result.output
    a, b = [np.asarray(PIL.Image.open(tmp_path / name / 'seed0001.png')) for name in 'ab']
    assert not np.array_equal(a, b)

def test_gen_images_parses_seed_ranges():
    assert gen_images.parse_range('0,1,4-6') == [0, 1, 4, 5, 6]
    assert gen_images.parse_vec2('0.3,-1') == (0.3, -1.0)

#----------------------------------------------------------------------------
# calc_metrics.py

def test_calc_metrics_appends_result_to_run_dir(snapshot_pkl, metric_env):
    result = CliRunner().invoke(calc_metrics.calc_metrics, [f'--network={snapshot_pkl}', f'--metrics={TEST_METRIC}'])
    assert result.exit_code == 0, result.output
    with open(os.path.join(os.path.dirname(snapshot_pkl), f'metric-{TEST_METRIC}.jsonl')) as f:
        line = json.loads(f.readlines()[-1])
    assert line['snapshot_pkl'] == 'network-snapshot-000000.pkl' and np.isfinite(line['results'][TEST_METRIC])

def test_calc_metrics_inception_option_selects_the_detector_file(snapshot_pkl, metric_env, tmp_path, monkeypatch):
    from tests import detectors
    monkeypatch.setenv('STYLESV_INCEPTION', '/nonexistent/detector.pkl') # The option must win over this.
    local = detectors.save_detector(tmp_path / 'local-detector.pkl', num_channels=1)
    result = CliRunner().invoke(calc_metrics.calc_metrics, [f'--network={snapshot_pkl}', f'--metrics={TEST_METRIC}', f'--inception={local}'])
    assert result.exit_code == 0, result.output
    assert os.environ['STYLESV_INCEPTION'] == os.path.abspath(local)
    result = CliRunner().invoke(calc_metrics.calc_metrics, [f'--network={snapshot_pkl}', f'--metrics={TEST_METRIC}', '--inception=/missing.pkl'])
    assert result.exit_code != 0 and 'Error: --inception must point to a detector file: /missing.pkl' in result.output

def test_calc_metrics_unreachable_detector_fails_with_one_line_error(snapshot_pkl, tmp_path):
    env = dict(os.environ, STYLESV_INCEPTION='http://127.0.0.1:9/inception.pkl', DNNLIB_CACHE_DIR=str(tmp_path))
    res = subprocess.run([sys.executable, os.path.join(STYLEGAN3_DIR, 'calc_metrics.py'), f'--network={snapshot_pkl}', '--metrics=fid50k_full'],
        capture_output=True, text=True, timeout=120, env=env)
    assert res.returncode != 0 and 'Traceback' not in res.stderr
    assert res.stderr.strip().splitlines()[-1].startswith('Error: Could not download http://127.0.0.1:9/inception.pkl')

def test_calc_metrics_rejects_unknown_metric(snapshot_pkl):
    result = CliRunner().invoke(calc_metrics.calc_metrics, [f'--network={snapshot_pkl}', '--metrics=nope'])
    assert result.exit_code != 0 and 'Error: --metrics: unknown nope' in result.output

#----------------------------------------------------------------------------
