"""Tests of training.training_loop: a tiny StyleGAN3-T run on CPU, resume, snapshot reload, and the loop's helpers."""

import json
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import PIL.Image
import pytest
import torch

import dnnlib
from metrics import frechet_inception_distance
from metrics import metric_main
from torch_utils.ops import conv2d_gradfix
from torch_utils.ops import grid_sample_gradfix
from training import training_loop
from tests import detectors

STYLEGAN3_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'third_party', 'stylegan3')
RESOLUTION = 16
TEST_METRIC = 'fid8_test'
TICK_STATS = [
    'Progress/tick', 'Progress/kimg', 'Progress/augment', 'Timing/total_sec', 'Timing/sec_per_tick', 'Timing/sec_per_kimg',
    'Timing/maintenance_sec', 'Timing/total_hours', 'Timing/total_days', 'Timing/Gboth', 'Timing/Dmain', 'Timing/Dreg',
    'Resources/cpu_mem_gb', 'Resources/peak_gpu_mem_gb', 'Resources/peak_gpu_mem_reserved_gb',
    'Loss/G/loss', 'Loss/D/loss', 'Loss/scores/real', 'Loss/scores/fake', 'Loss/signs/real', 'Loss/r1_penalty',
]

#----------------------------------------------------------------------------
# Fixtures: data, a tiny detector + metric, a tiny configuration.

@pytest.fixture(scope='module', autouse=True)
def restore_gradfix_flags():
    """training_loop() enables the gradfix ops process-wide; put the flags back for the test modules that follow."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(conv2d_gradfix, 'enabled', conv2d_gradfix.enabled)
        mp.setattr(grid_sample_gradfix, 'enabled', grid_sample_gradfix.enabled)
        yield

def make_image_zip(path, num_images=8, resolution=RESOLUTION, labels=None):
    """A dataset zip of random RGB PNGs (+ dataset.json when labels are given)."""
    rnd = np.random.RandomState(123)
    with zipfile.ZipFile(path, 'w') as zf:
        names = [f'00000/img{i:08d}.png' for i in range(num_images)]
        for name in names:
            img = PIL.Image.fromarray(rnd.randint(0, 256, size=[resolution, resolution, 3], dtype=np.uint8))
            with zf.open(name, 'w') as f:
                img.save(f, format='PNG')
        if labels is not None:
            zf.writestr('dataset.json', json.dumps(dict(labels=[[name, label] for name, label in zip(names, labels)])))
    return str(path)

def fid8_test(opts):
    """FID against 8 reals with 8 fakes, through the real metric machinery."""
    opts.dataset_kwargs.update(max_size=None, xflip=False)
    return dict(fid8_test=frechet_inception_distance.compute_fid(opts, max_real=8, num_gen=8))

@pytest.fixture(scope='module')
def metric_env(tmp_path_factory):
    """Register the tiny metric and point the Inception detector at a pickled tests.detectors.TinyDetector."""
    tmp = tmp_path_factory.mktemp('detector')
    detector_path = detectors.save_detector(tmp / 'tiny-detector.pkl', num_channels=1) # 4 features: a full-rank covariance from 8 samples.
    metric_main.register_metric(fid8_test)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv('STYLESV_INCEPTION', detector_path)
        mp.setenv('DNNLIB_CACHE_DIR', str(tmp / 'cache'))
        yield

def tiny_config(data_zip, run_dir, **overrides):
    """training_loop kwargs for a 16x16 StyleGAN3-T with a few hundred parameters per layer, ADA on."""
    c = dnnlib.EasyDict(
        run_dir             = str(run_dir),
        training_set_kwargs = dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=data_zip, use_labels=False,
                                              max_size=8, xflip=False, resolution=RESOLUTION, random_seed=0),
        data_loader_kwargs  = dnnlib.EasyDict(num_workers=0),
        G_kwargs            = dnnlib.EasyDict(class_name='training.networks_stylegan3.Generator', z_dim=8, w_dim=8,
                                              mapping_kwargs=dnnlib.EasyDict(num_layers=1), channel_base=256, channel_max=8,
                                              num_layers=4, margin_size=2, num_fp16_res=0, magnitude_ema_beta=0.5 ** (4 / 20000)),
        D_kwargs            = dnnlib.EasyDict(class_name='training.networks_stylegan2.Discriminator', channel_base=64, channel_max=8,
                                              num_fp16_res=0, block_kwargs=dnnlib.EasyDict(freeze_layers=0), mapping_kwargs=dnnlib.EasyDict(),
                                              epilogue_kwargs=dnnlib.EasyDict(mbstd_group_size=4)),
        G_opt_kwargs        = dnnlib.EasyDict(class_name='torch.optim.Adam', lr=0.0025, betas=[0, 0.99], eps=1e-8),
        D_opt_kwargs        = dnnlib.EasyDict(class_name='torch.optim.Adam', lr=0.002, betas=[0, 0.99], eps=1e-8),
        loss_kwargs         = dnnlib.EasyDict(class_name='training.loss.StyleGAN2Loss', r1_gamma=1),
        augment_kwargs      = dnnlib.EasyDict(class_name='training.augment.AugmentPipe', xflip=1, rotate90=1, xint=1,
                                              brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1),
        ada_target          = -2,       # Below any E[sign(D(real))] >= -1: p must rise every step.
        ada_interval        = 1,
        ada_kimg            = 0.1,
        batch_size          = 4,
        batch_gpu           = 4,
        ema_kimg            = 4 * 10 / 32,
        total_kimg          = 0.012,
        kimg_per_tick       = 0.004,
        image_snapshot_ticks    = 2,
        network_snapshot_ticks  = 2,
        metrics             = [TEST_METRIC],
        cudnn_benchmark     = False,
    )
    c.update(overrides)
    return c

def small_snapshot_image_grid(training_set, random_seed=0, _full_grid=training_loop.setup_snapshot_image_grid):
    """The first 4x2 cells of the real grid: a 32x32 grid of generated images would dominate a CPU test."""
    _grid_size, images, labels = _full_grid(training_set, random_seed)
    return (4, 2), images[:8], labels[:8]

@pytest.fixture(scope='module')
def trained_run(tmp_path_factory, metric_env):
    """One tiny run: 3 steps of 4 images, a tick after each, snapshots and metrics at ticks 0 and 2."""
    tmp = tmp_path_factory.mktemp('train')
    data_zip = make_image_zip(tmp / 'data.zip')
    run_dir = tmp / 'run'
    run_dir.mkdir()
    progress = []
    c = tiny_config(data_zip, run_dir, progress_fn=lambda cur, total: progress.append((cur, total)))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(training_loop, 'setup_snapshot_image_grid', small_snapshot_image_grid)
        training_loop.training_loop(**c)
    return dnnlib.EasyDict(data_zip=data_zip, run_dir=str(run_dir), config=c, progress=progress)

def load_snapshot(path):
    with open(path, 'rb') as f:
        return pickle.load(f)

#----------------------------------------------------------------------------
# End-to-end run.

def test_run_writes_snapshot_with_documented_keys(trained_run):
    data = load_snapshot(os.path.join(trained_run.run_dir, 'network-snapshot-000000.pkl'))
    assert set(data.keys()) == {'G', 'D', 'G_ema', 'augment_pipe', 'training_set_kwargs'}
    for name in ['G', 'D', 'G_ema', 'augment_pipe']:
        module = data[name]
        assert isinstance(module, torch.nn.Module) and not module.training
        assert all(not t.requires_grad and t.device.type == 'cpu' for t in list(module.parameters()) + list(module.buffers()))
    assert type(data['training_set_kwargs']) is dict
    assert data['training_set_kwargs'] == dict(trained_run.config.training_set_kwargs)
    assert not [name for name in os.listdir(trained_run.run_dir) if name.endswith('.tmp')]

def test_run_writes_one_stats_line_per_tick_with_documented_names(trained_run):
    with open(os.path.join(trained_run.run_dir, 'stats.jsonl')) as f:
        lines = [json.loads(line) for line in f]
    assert len(lines) == 3 # Ticks end after steps 1, 2 and 3 (tick 0 after the first step).
    for tick, line in enumerate(lines):
        assert 'timestamp' in line
        missing = [name for name in TICK_STATS if name not in line]
        assert not missing
        assert set(line['Progress/tick'].keys()) == {'num', 'mean', 'std'}
        assert line['Progress/tick']['mean'] == tick
        assert line['Progress/kimg']['mean'] == pytest.approx((tick + 1) * 0.004)
    assert trained_run.progress[0] == (0, 0.012) and len(trained_run.progress) == 4

def test_run_adapts_augment_probability(trained_run):
    with open(os.path.join(trained_run.run_dir, 'stats.jsonl')) as f:
        augment = [json.loads(line)['Progress/augment']['mean'] for line in f]
    assert augment == [pytest.approx(0.04), pytest.approx(0.08), pytest.approx(0.12)] # 4 / (0.1 * 1000) per minibatch.

def test_run_writes_image_grids(trained_run):
    names = os.listdir(trained_run.run_dir)
    for name in ['reals.png', 'fakes_init.png', 'fakes000000.png']:
        assert name in names
    with PIL.Image.open(os.path.join(trained_run.run_dir, 'reals.png')) as img:
        assert img.mode == 'RGB' and img.size == (4 * RESOLUTION, 2 * RESOLUTION)

def test_run_reports_metric_at_snapshots(trained_run):
    with open(os.path.join(trained_run.run_dir, f'metric-{TEST_METRIC}.jsonl')) as f:
        lines = [json.loads(line) for line in f]
    assert len(lines) == 2 # Snapshots at tick 0 and at the end (tick 2).
    for line in lines:
        assert line['metric'] == TEST_METRIC
        assert line['snapshot_pkl'] == 'network-snapshot-000000.pkl'
        assert np.isfinite(line['results'][TEST_METRIC])

def test_resume_starts_from_snapshot_weights_and_continues_kimg(trained_run, tmp_path, monkeypatch):
    snapshot_pkl = os.path.join(trained_run.run_dir, 'network-snapshot-000000.pkl')
    snapshot = load_snapshot(snapshot_pkl)
    resumed = dict()
    def recording_resume(resume_pkl, modules):
        original_resume(resume_pkl, modules)
        resumed.update({name: {k: v.detach().cpu().clone() for k, v in module.state_dict().items()} for name, module in modules.items()})
    original_resume = training_loop.resume_networks
    monkeypatch.setattr(training_loop, 'resume_networks', recording_resume)

    monkeypatch.setattr(training_loop, 'setup_snapshot_image_grid', small_snapshot_image_grid)
    c = tiny_config(trained_run.data_zip, tmp_path, resume_pkl=snapshot_pkl, resume_kimg=1, total_kimg=1.004, ema_rampup=None,
        metrics=[], image_snapshot_ticks=None)
    training_loop.training_loop(**c)

    for name in ['G', 'D', 'G_ema']:
        expected = snapshot[name].state_dict()
        assert resumed[name].keys() == expected.keys()
        for key, value in expected.items():
            assert torch.equal(resumed[name][key], value), f'{name}.{key}'
    with open(os.path.join(tmp_path, 'stats.jsonl')) as f:
        kimg = [json.loads(line)['Progress/kimg']['mean'] for line in f]
    assert kimg == [pytest.approx(1.004)]
    data = load_snapshot(os.path.join(tmp_path, 'network-snapshot-000001.pkl'))
    changed = [key for key, value in data['D'].state_dict().items() if not torch.equal(value, snapshot['D'].state_dict()[key])]
    assert changed # Training went on from the snapshot.

def test_snapshot_loads_in_fresh_process_and_reproduces_G_ema(trained_run, tmp_path):
    snapshot_pkl = os.path.join(trained_run.run_dir, 'network-snapshot-000000.pkl')
    out_npy = str(tmp_path / 'img.npy')
    script = (
        'import sys, numpy as np, torch\n'
        f'sys.path.insert(0, {STYLEGAN3_DIR!r})\n'
        'import dnnlib, legacy\n'
        f'with dnnlib.util.open_url({snapshot_pkl!r}) as f:\n'
        '    G = legacy.load_network_pkl(f)["G_ema"]\n'
        'z = torch.from_numpy(np.random.RandomState(5).randn(2, G.z_dim)).float()\n'
        'img = G(z, torch.zeros([2, G.c_dim]), noise_mode="const")\n'
        f'np.save({out_npy!r}, img.detach().numpy())\n'
    )
    subprocess.run([sys.executable, '-c', script], check=True, cwd=str(tmp_path), timeout=120)
    G = load_snapshot(snapshot_pkl)['G_ema']
    z = torch.from_numpy(np.random.RandomState(5).randn(2, G.z_dim)).float()
    expected = G(z, torch.zeros([2, G.c_dim]), noise_mode='const').detach().numpy()
    np.testing.assert_allclose(np.load(out_npy), expected, rtol=1e-5, atol=1e-6)

#----------------------------------------------------------------------------
# Helpers.

_STYLEGAN2_G = dnnlib.EasyDict(class_name='training.networks_stylegan2.Generator', z_dim=8, w_dim=8, channel_base=64, channel_max=8,
    num_fp16_res=0, mapping_kwargs=dnnlib.EasyDict(num_layers=2))

@pytest.mark.parametrize('cfg, G_overrides, loss_overrides, G_reg_interval', [
    ('stylegan3-r', dict(conv_kernel=1, use_radial_filters=True), dict(blur_init_sigma=10, blur_fade_kimg=0.1), None),
    ('stylegan2', None, dict(style_mixing_prob=0.9, pl_weight=2, pl_no_weight_grad=True), 2),
])
def test_every_cfg_trains_a_labelled_dataset_to_a_snapshot(tmp_path, cfg, G_overrides, loss_overrides, G_reg_interval, monkeypatch):
    data_zip = make_image_zip(tmp_path / 'labelled.zip', labels=[0, 1, 2, 0, 1, 2, 0, 1])
    (tmp_path / 'run').mkdir()
    c = tiny_config(data_zip, tmp_path / 'run', metrics=[], total_kimg=0.008, G_reg_interval=G_reg_interval, augment_kwargs=None)
    c.training_set_kwargs.use_labels = True
    c.G_kwargs = _STYLEGAN2_G if G_overrides is None else dnnlib.EasyDict(c.G_kwargs, **G_overrides)
    c.loss_kwargs.update(loss_overrides)
    monkeypatch.setattr(training_loop, 'setup_snapshot_image_grid', small_snapshot_image_grid)
    training_loop.training_loop(**c)
    snapshot = load_snapshot(os.path.join(c.run_dir, 'network-snapshot-000000.pkl'))
    G = snapshot['G_ema']
    assert G.c_dim == 3 and snapshot['D'].c_dim == 3
    with open(os.path.join(c.run_dir, 'stats.jsonl')) as f:
        stats = [json.loads(line) for line in f]
    phases = {name for line in stats for name in line if name.startswith('Timing/G')} # training_stats is process-wide: earlier runs' names stay.
    assert ({'Timing/Gmain', 'Timing/Greg'} if G_reg_interval else {'Timing/Gboth'}) <= phases
    assert all(np.isfinite(line['Loss/G/loss']['mean']) for line in stats if 'Loss/G/loss' in line)

def test_ema_beta_has_ema_kimg_half_life_and_ramps_up():
    # Without ramp-up, ema_kimg thousand images halve the weight of the old average.
    beta = training_loop.ema_beta(cur_nimg=10**6, batch_size=32, ema_kimg=10, ema_rampup=None)
    assert beta ** (10_000 / 32) == pytest.approx(0.5)
    # During ramp-up the half-life is ema_rampup times the images seen so far.
    beta = training_loop.ema_beta(cur_nimg=1000, batch_size=4, ema_kimg=10, ema_rampup=0.05)
    assert beta == pytest.approx(0.5 ** (4 / 50))
    assert training_loop.ema_beta(cur_nimg=0, batch_size=4, ema_kimg=10, ema_rampup=0.05) == 0 # First step copies G.

def test_update_ema_interpolates_params_and_copies_buffers():
    G = torch.nn.BatchNorm1d(3)
    G_ema = torch.nn.BatchNorm1d(3)
    with torch.no_grad():
        G.weight.fill_(2)
        G_ema.weight.fill_(4)
        G.running_mean.fill_(7)
    training_loop.update_ema(G, G_ema, beta=0.25)
    assert torch.allclose(G_ema.weight, torch.full([3], 2 + 0.25 * (4 - 2)))
    assert torch.equal(G_ema.running_mean, G.running_mean)

def test_ada_raises_p_when_D_overfits_and_lowers_it_otherwise():
    step = 64 * 4 / (500 * 1000)
    assert training_loop.ada_adjustment(0.9, 0.6, batch_size=64, ada_interval=4, ada_kimg=500) == pytest.approx(step)
    assert training_loop.ada_adjustment(0.1, 0.6, batch_size=64, ada_interval=4, ada_kimg=500) == pytest.approx(-step)
    assert training_loop.ada_adjustment(float('nan'), 0.6, batch_size=64, ada_interval=4, ada_kimg=500) == 0

def test_lazy_regularization_rescales_lr_and_betas():
    opt_kwargs = dict(class_name='torch.optim.Adam', lr=0.002, betas=[0, 0.99], eps=1e-8)
    scaled = training_loop.lazy_regularization_opt_kwargs(opt_kwargs, reg_interval=16)
    r = 16 / 17
    assert scaled.lr == pytest.approx(0.002 * r)
    assert scaled.betas == [0, pytest.approx(0.99 ** r)]
    assert opt_kwargs['lr'] == 0.002 # Caller's dict untouched.

def test_setup_phases_splits_lazily_regularized_network():
    G, D = torch.nn.Linear(2, 2), torch.nn.Linear(2, 2)
    opt_kwargs = dict(class_name='torch.optim.Adam', lr=0.01, betas=[0, 0.99])
    phases = training_loop.setup_phases(G, D, opt_kwargs, opt_kwargs, G_reg_interval=None, D_reg_interval=16, device=torch.device('cpu'))
    assert [(p.name, p.interval) for p in phases] == [('Gboth', 1), ('Dmain', 1), ('Dreg', 16)]
    assert phases[1].opt is phases[2].opt
    assert phases[1].opt.param_groups[0]['lr'] == pytest.approx(0.01 * 16 / 17)

def test_step_optimizer_replaces_nan_gradients():
    module = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        module.weight.fill_(1)
    module.weight.grad = torch.tensor([[float('nan'), 1.0]])
    training_loop.step_optimizer(module, torch.optim.SGD(module.parameters(), lr=1), num_gpus=1)
    assert torch.equal(module.weight.detach(), torch.tensor([[1.0, 0.0]]))

def test_save_image_grid_tiles_rows_and_columns(tmp_path):
    img = np.zeros([6, 3, 2, 2], dtype=np.float32) - 1
    img[4] = 1 # Sample 4 = row 1 (of 2), column 1 (of 3).
    fname = str(tmp_path / 'grid.png')
    training_loop.save_image_grid(img, fname, drange=[-1, 1], grid_size=(3, 2))
    with PIL.Image.open(fname) as f:
        arr = np.asarray(f)
    assert arr.shape == (4, 6, 3)
    assert (arr[2:4, 2:4] == 255).all() and arr.sum() == 4 * 3 * 255
    assert os.listdir(tmp_path) == ['grid.png']

def test_snapshot_grid_groups_labels_by_row(tmp_path):
    data_zip = make_image_zip(tmp_path / 'labelled.zip', num_images=6, labels=[0, 1, 2, 0, 1, 2])
    training_set = dnnlib.util.construct_class_by_name(class_name='training.dataset.ImageFolderDataset', path=data_zip, use_labels=True)
    (gw, gh), images, labels = training_loop.setup_snapshot_image_grid(training_set)
    assert (gw, gh) == (32, 32) and images.shape == (gw * gh, 3, RESOLUTION, RESOLUTION)
    row_labels = labels.reshape(gh, gw, -1).argmax(axis=2) # [gh, gw]
    assert (row_labels == row_labels[:, :1]).all()
    assert list(row_labels[:3, 0]) == [0, 1, 2]

def test_write_file_atomic_leaves_old_file_on_failure(tmp_path):
    path = str(tmp_path / 'out.json')
    training_loop.write_file_atomic(path, lambda f: f.write('old'), mode='w')
    def failing_write(f):
        f.write('partial')
        raise RuntimeError('disk full')
    with pytest.raises(RuntimeError):
        training_loop.write_file_atomic(path, failing_write, mode='w')
    assert open(path).read() == 'old' and os.listdir(tmp_path) == ['out.json']

#----------------------------------------------------------------------------
