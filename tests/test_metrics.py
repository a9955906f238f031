"""Tests of the StyleGAN3 metrics layer (metrics.metric_main, metric_utils and the metric formulas)."""

import io
import json
import os
import zipfile

import numpy as np
import PIL.Image
import pytest
import torch

import dnnlib
from metrics import metric_main
from metrics import metric_utils
from metrics import frechet_inception_distance
from metrics import kernel_inception_distance
from metrics import precision_recall
from metrics import inception_score
from metrics import perceptual_path_length
from tests import detectors

#----------------------------------------------------------------------------
# Fixtures and stand-ins.

@pytest.fixture(autouse=True)
def isolated_metrics(tmp_path, monkeypatch):
    """Private cache directory and tiny local detectors in place of the published ones."""
    cache_root = tmp_path / 'cache'
    monkeypatch.setattr(dnnlib, 'make_cache_dir_path', lambda *paths: os.path.join(str(cache_root), *paths))
    monkeypatch.setenv('DNNLIB_CACHE_DIR', str(cache_root))
    monkeypatch.setenv('STYLESV_INCEPTION', detectors.save_detector(tmp_path / 'inception.pkl', seed=1))
    monkeypatch.setenv('STYLESV_VGG16', detectors.save_detector(tmp_path / 'vgg16.pkl', seed=2))
    return tmp_path

class ArrayDataset:
    """In-memory dataset with the upstream Dataset protocol: uint8 [C, H, W] images, random but seeded."""
    def __init__(self, num_images=10, resolution=8, channels=3, seed=0, **_kwargs): # Ignores max_size, xflip.
        self.name = f'array{seed}'
        self.images = np.random.RandomState(seed).randint(0, 256, [num_images, channels, resolution, resolution]).astype(np.uint8)
    def __len__(self):
        return len(self.images)
    def __getitem__(self, idx):
        return self.images[idx], np.zeros([0], dtype=np.float32)
    def get_label(self, idx):
        return np.zeros([0], dtype=np.float32)

class ReplayGenerator(torch.nn.Module):
    """Ignores z and returns the given uint8 images in order, so its fakes are exactly those images."""
    def __init__(self, images):
        super().__init__()
        self.z_dim, self.c_dim = 4, 0
        self.img_channels, self.img_resolution = images.shape[1], images.shape[2]
        self.register_buffer('images', (torch.as_tensor(images, dtype=torch.float32) - 127.5) / 127.5) # Maps back to x + 0.5, which truncates to x.
        self.next_idx = 0
    def forward(self, z, c, **_kwargs):
        idx = (torch.arange(z.shape[0]) + self.next_idx) % self.images.shape[0]
        self.next_idx += z.shape[0]
        return self.images[idx]

class LinearGenerator(torch.nn.Module):
    """Mapping + synthesis with a fixed linear map, enough for every generator-side metric."""
    def __init__(self, z_dim=4, img_resolution=8, img_channels=3, scale=1.0):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, 0, z_dim, 2
        self.img_resolution, self.img_channels = img_resolution, img_channels
        g = torch.Generator().manual_seed(0)
        self.register_buffer('weight', torch.randn([z_dim, img_channels * img_resolution ** 2], generator=g) * scale)
    def mapping(self, z, c, **_kwargs):
        return z.unsqueeze(1).repeat([1, self.num_ws, 1])
    def synthesis(self, ws, **_kwargs):
        return torch.tanh(ws.mean(dim=1) @ self.weight).reshape([-1, self.img_channels, self.img_resolution, self.img_resolution])
    def forward(self, z, c, **kwargs):
        return self.synthesis(self.mapping(z, c), **kwargs)

def array_opts(G=None, **dataset_kwargs):
    return metric_utils.MetricOptions(G=G, dataset_kwargs=dict(class_name='tests.test_metrics.ArrayDataset', **dataset_kwargs), device='cpu')

def write_image_zip(path, images):
    """An ImageFolderDataset zip: one PNG per uint8 [C, H, W] image, no labels."""
    with zipfile.ZipFile(path, 'w') as zf:
        for i, img in enumerate(images):
            buf = io.BytesIO()
            PIL.Image.fromarray(img.transpose(1, 2, 0)).save(buf, format='png')
            zf.writestr(f'00000/img{i:08d}.png', buf.getvalue())
        zf.writestr('dataset.json', json.dumps(dict(labels=None)))
    return str(path)

def count_detector_images(monkeypatch):
    """Wrap get_feature_detector so every image that reaches a detector is counted (and checked to be RGB)."""
    counts = []
    orig = metric_utils.get_feature_detector
    def counting(*args, **kwargs):
        detector = orig(*args, **kwargs)
        def call(x, **kw):
            assert x.shape[1] == 3
            counts.append(x.shape[0])
            return detector(x, **kw)
        return call
    monkeypatch.setattr(metric_utils, 'get_feature_detector', counting)
    return counts

#----------------------------------------------------------------------------
# Formulas against independent computations.

def test_frechet_distance_matches_eigenvalue_formula():
    rnd = np.random.RandomState(0)
    x = rnd.randn(200, 6)
    y = rnd.randn(300, 6) @ rnd.randn(6, 6) + 0.5
    mu1, s1 = x.mean(0), np.cov(x, rowvar=False, bias=True)
    mu2, s2 = y.mean(0), np.cov(y, rowvar=False, bias=True)
    # tr sqrt(S1 S2) = sum of sqrt eigenvalues of the symmetric S1^1/2 S2 S1^1/2.
    e, v = np.linalg.eigh(s1)
    s1_half = (v * np.sqrt(e)) @ v.T
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(np.linalg.eigvalsh(s1_half @ s2 @ s1_half).clip(0)).sum()
    assert frechet_inception_distance.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)

def test_frechet_distance_is_zero_for_same_set_and_grows_with_shift():
    x = np.random.RandomState(1).randn(500, 5)
    mu, cov = x.mean(0), np.cov(x, rowvar=False, bias=True)
    assert abs(frechet_inception_distance.frechet_distance(mu, cov, mu, cov)) < 1e-6
    shift = np.full(5, 0.3)
    assert frechet_inception_distance.frechet_distance(mu + shift, cov, mu, cov) == pytest.approx(np.sum(shift ** 2), rel=1e-6)

def test_kernel_distance_matches_unbiased_mmd_with_cubic_kernel():
    rnd = np.random.RandomState(2)
    x, y = rnd.randn(30, 7), rnd.randn(30, 7) + 0.2
    k = lambda a, b: (a @ b.T / 7 + 1) ** 3
    m = 30
    expected = ((k(x, x).sum() - np.trace(k(x, x))) + (k(y, y).sum() - np.trace(k(y, y)))) / (m * (m - 1)) - 2 * k(x, y).sum() / m ** 2
    # Subsets of the full size are permutations, to which the statistic is invariant.
    kid = kernel_inception_distance.kernel_distance(x, y, num_subsets=3, max_subset_size=1000)
    assert kid == pytest.approx(expected, rel=1e-9)

def distance_matrix(rows, cols, **kwargs):
    batches = list(precision_recall.iterate_distances(rows, cols, **kwargs))
    assert [begin for begin, _dist in batches] == list(np.cumsum([0] + [dist.shape[1] for _begin, dist in batches[:-1]]))
    return torch.cat([dist for _begin, dist in batches], dim=1)

def test_iterated_distances_match_cdist_across_column_batches():
    rnd = torch.Generator().manual_seed(0)
    rows, cols = torch.randn([9, 4], generator=rnd), torch.randn([23, 4], generator=rnd)
    dist = distance_matrix(rows, cols.half(), col_batch_size=5)
    assert dist.shape == (9, 23) and dist.dtype == torch.float16 # Rounded to float16, as upstream.
    assert torch.equal(dist, torch.cdist(rows, cols.half().float()).half())

def test_precision_recall_on_constructed_point_clouds():
    g = torch.Generator().manual_seed(0)
    real = torch.randn([40, 8], generator=g)
    far = torch.randn([40, 8], generator=g) + 100
    cover = lambda manifold, probes: precision_recall.manifold_coverage(manifold, probes, nhood_size=3, row_batch_size=7, col_batch_size=11)
    assert (cover(real, real), cover(real, real)) == (1.0, 1.0)    # Identical sets: precision 1, recall 1.
    assert (cover(real, far), cover(far, real)) == (0.0, 0.0)      # Disjoint, far apart: 0 and 0.
    half = torch.cat([real[:20], far[:20]])                        # Half the fakes are off the real manifold.
    assert cover(real, half) == 0.5

def test_precision_recall_rounds_distances_and_radii_to_float16_as_upstream():
    # Manifold points 0, 1, ..., 7 on a line: every 1-NN radius is 1. A probe 1.0002 from point 0 is
    # outside in float32 but at distance 1 in float16 (spacing 2^-10 above 1), and the tie counts as
    # inside; one 1.002 away stays outside. Radii are rounded too: at spacing 0.9999 they become 1.
    line = lambda xs: torch.nn.functional.pad(torch.tensor(xs)[:, None], [0, 3]) # Points [n, 4] on the x axis.
    cover = lambda manifold, probes: precision_recall.manifold_coverage(manifold, probes, nhood_size=1)
    assert cover(line([float(i) for i in range(8)]), line([-1.0002, -1.002])) == 0.5
    assert cover(line([0.9999 * i for i in range(8)]), line([-1.0001])) == 1.0

def test_inception_score_of_constructed_probabilities():
    one_hot = np.tile(np.eye(5), [4, 1])                           # 20 confident samples, classes balanced per split.
    assert inception_score.inception_score(one_hot, num_splits=4) == pytest.approx((5.0, 0.0))
    assert inception_score.inception_score(np.full([20, 5], 0.2), num_splits=2) == pytest.approx((1.0, 0.0))
    p = np.random.RandomState(3).dirichlet(np.ones(4), size=12)
    expected = np.exp(np.mean(np.sum(p * (np.log(p) - np.log(p.mean(0))), axis=1)))
    assert inception_score.inception_score(p, num_splits=1)[0] == pytest.approx(expected)

#----------------------------------------------------------------------------
# FeatureStats.

def test_feature_stats_mean_cov_respect_max_items_and_survive_save_load(tmp_path):
    x = np.random.RandomState(4).randn(50, 3).astype(np.float32)
    stats = metric_utils.FeatureStats(capture_all=True, capture_mean_cov=True, max_items=35)
    for chunk in np.split(x, 5):
        stats.append_torch(torch.from_numpy(chunk))
    assert stats.is_full() and stats.num_items == 35
    np.testing.assert_array_equal(stats.get_all(), x[:35])
    mean, cov = stats.get_mean_cov()
    np.testing.assert_allclose(mean, x[:35].astype(np.float64).mean(0), atol=1e-12)
    np.testing.assert_allclose(cov, np.cov(x[:35].astype(np.float64), rowvar=False, bias=True), atol=1e-12)
    stats.save(str(tmp_path / 'stats.pkl'))
    assert not [name for name in os.listdir(tmp_path) if name.endswith('.tmp')] # Written atomically.
    loaded = metric_utils.FeatureStats.load(str(tmp_path / 'stats.pkl'))
    np.testing.assert_array_equal(loaded.get_mean_cov()[1], cov)
    assert loaded.num_items == 35 and loaded.max_items == 35

#----------------------------------------------------------------------------
# Detectors and dataset statistics.

@pytest.mark.filterwarnings('ignore:`torch.jit:DeprecationWarning') # TorchScript is deprecated in torch 2.x but still how detectors ship.
def test_detector_override_and_torchscript_detectors_load(tmp_path, monkeypatch):
    assert metric_utils.get_feature_detector_name(metric_utils.INCEPTION_URL) == 'inception-2015-12-05'
    monkeypatch.delenv('STYLESV_INCEPTION')
    assert metric_utils.resolve_detector_url(metric_utils.INCEPTION_URL) == metric_utils.INCEPTION_URL
    path = detectors.save_detector(tmp_path / 'inception.pt', torchscript=True, seed=1)
    monkeypatch.setenv('STYLESV_INCEPTION', path)
    detector = metric_utils.get_feature_detector(metric_utils.INCEPTION_URL)
    assert isinstance(detector, torch.jit.ScriptModule)
    x = torch.randint(0, 256, [2, 3, 8, 8], dtype=torch.uint8)
    assert torch.equal(detector(x, return_features=True), detectors.TinyDetector(seed=1)(x, return_features=True))
    assert metric_utils.get_feature_detector(metric_utils.INCEPTION_URL) is detector # Cached per (url, device).

def test_dataset_stats_are_cached_and_reused(monkeypatch, isolated_metrics):
    counts = count_detector_images(monkeypatch)
    opts = array_opts(num_images=10)
    kwargs = dict(detector_url=metric_utils.INCEPTION_URL, detector_kwargs=dict(return_features=True), batch_size=4, data_loader_kwargs=dict(), capture_mean_cov=True)
    first = metric_utils.compute_feature_stats_for_dataset(opts, **kwargs)
    assert sum(counts) == 10
    cached = os.listdir(isolated_metrics / 'cache' / 'gan-metrics')
    assert len(cached) == 1 and cached[0].startswith('array0-inception-') and cached[0].endswith('.pkl')
    second = metric_utils.compute_feature_stats_for_dataset(opts, **kwargs)
    assert sum(counts) == 10 # Nothing recomputed.
    np.testing.assert_array_equal(first.get_mean_cov()[1], second.get_mean_cov()[1])
    metric_utils.compute_feature_stats_for_dataset(opts, max_items=6, **kwargs) # Another key: computed anew.
    assert sum(counts) == 16 and len(os.listdir(isolated_metrics / 'cache' / 'gan-metrics')) == 2

def test_generator_stats_repeat_grayscale_and_stop_at_max_items(monkeypatch):
    counts = count_detector_images(monkeypatch)
    opts = array_opts(G=LinearGenerator(img_channels=1))
    stats = metric_utils.compute_feature_stats_for_generator(opts, metric_utils.INCEPTION_URL, dict(return_features=True), batch_size=8, capture_all=True, max_items=10)
    assert stats.get_all().shape == (10, 32)
    assert counts == [8, 4] # Batches of 8; the last one needs only one G call of batch_gen = 4.

#----------------------------------------------------------------------------
# Metrics end to end.

def test_fid_of_dataset_against_itself_is_zero_and_positive_for_other_images():
    images = ArrayDataset(num_images=12).images
    replay = frechet_inception_distance.compute_fid(array_opts(G=ReplayGenerator(images), num_images=12), max_real=None, num_gen=12)
    other = frechet_inception_distance.compute_fid(array_opts(G=LinearGenerator(), num_images=12), max_real=None, num_gen=12)
    assert abs(replay) < 1e-3 and other > 0.1

def test_kid_pr_and_ppl_reach_their_known_values_on_tiny_generators():
    opts = lambda G: array_opts(G=G, num_images=12)
    images = ArrayDataset(num_images=12).images
    kid = lambda G: kernel_inception_distance.compute_kid(opts(G), max_real=None, num_gen=12, num_subsets=2, max_subset_size=12)
    assert kid(ReplayGenerator(images)) < 0 < kid(LinearGenerator()) # Unbiased MMD^2 of a set against itself dips below 0.
    precision, recall = precision_recall.compute_pr(opts(ReplayGenerator(images)), max_real=None, num_gen=12, nhood_size=3, row_batch_size=5, col_batch_size=5)
    assert (precision, recall) == (1.0, 1.0)
    ppl = perceptual_path_length.compute_ppl(opts(LinearGenerator()), num_samples=8, epsilon=1e-2, space='w', sampling='end', crop=False, batch_size=2)
    flat = perceptual_path_length.compute_ppl(opts(LinearGenerator(scale=0.0)), num_samples=8, epsilon=1e-2, space='z', sampling='full', crop=True, batch_size=2)
    assert ppl > 0 and np.isfinite(ppl) and flat == 0

def test_fid_kid_and_is_equal_numpy_on_the_detector_s_own_outputs():
    """End to end, each metric equals its formula in numpy/scipy applied to the test detector's outputs for the same images."""
    import pickle, scipy.linalg
    reals, fakes = ArrayDataset(num_images=12, seed=0).images, ArrayDataset(num_images=12, seed=7).images
    with open(os.environ['STYLESV_INCEPTION'], 'rb') as f:
        detector = pickle.load(f)
    run = lambda images, **kwargs: detector(torch.as_tensor(images), **kwargs).double().numpy()
    real, fake = run(reals, return_features=True), run(fakes, return_features=True)
    probs = run(fakes, no_output_bias=True)
    opts = lambda: array_opts(G=ReplayGenerator(fakes), num_images=12)

    s1, s2 = np.cov(real, rowvar=False, bias=True), np.cov(fake, rowvar=False, bias=True) # As upstream: divided by N.
    fid = np.sum((real.mean(0) - fake.mean(0)) ** 2) + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert frechet_inception_distance.compute_fid(opts(), max_real=None, num_gen=12) == pytest.approx(fid, rel=1e-4)

    k = lambda a, b: (a @ b.T / a.shape[1] + 1) ** 3
    off_diagonal = lambda a: k(a, a).sum() - np.trace(k(a, a))
    kid = (off_diagonal(real) + off_diagonal(fake)) / (12 * 11) - 2 * k(real, fake).sum() / 12 ** 2
    assert kernel_inception_distance.compute_kid(opts(), max_real=None, num_gen=12, num_subsets=2, max_subset_size=12) == pytest.approx(kid, abs=1e-6) # float32 features, sums in any order

    scores = [np.exp(np.mean(np.sum(p * (np.log(p) - np.log(p.mean(0))), axis=1))) for p in (probs[:6], probs[6:])]
    assert inception_score.compute_is(opts(), num_gen=12, num_splits=2) == pytest.approx((np.mean(scores), np.std(scores)), rel=1e-4)

def test_calc_metric_fid50k_full_end_to_end_on_image_folder_zip(tmp_path, monkeypatch):
    images = np.random.RandomState(5).randint(0, 256, [8, 3, 16, 16]).astype(np.uint8)
    dataset_kwargs = dict(class_name='training.dataset.ImageFolderDataset', path=write_image_zip(tmp_path / 'data.zip', images), use_labels=False, max_size=8, xflip=True)
    compute_fid = frechet_inception_distance.compute_fid
    monkeypatch.setattr(frechet_inception_distance, 'compute_fid', lambda opts, max_real, num_gen: compute_fid(opts, max_real, num_gen=8))
    result = metric_main.calc_metric('fid50k_full', G=ReplayGenerator(images), dataset_kwargs=dataset_kwargs, device='cpu')
    assert set(result.keys()) == {'results', 'metric', 'total_time', 'total_time_str', 'num_gpus'}
    assert result.metric == 'fid50k_full' and result.num_gpus == 1 and list(result.results) == ['fid50k_full']
    assert abs(result.results.fid50k_full) < 1e-3 # All reals (xflip dropped) against the same 8 images.
    noise = metric_main.calc_metric('fid50k_full', G=LinearGenerator(img_resolution=16), dataset_kwargs=dataset_kwargs, device='cpu')
    assert noise.results.fid50k_full > 0.1

def test_fid_and_ppl_accept_the_upstream_generator_interface():
    from training import networks_stylegan2 # Noise buffers, mapping/synthesis keywords as the metrics use them.
    G = networks_stylegan2.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3, mapping_kwargs=dict(num_layers=1), channel_base=256, channel_max=16)
    opts = array_opts(G=G, num_images=4, resolution=16)
    assert frechet_inception_distance.compute_fid(opts, max_real=None, num_gen=4) > 0 # One generator call each.
    assert perceptual_path_length.compute_ppl(opts, num_samples=2, epsilon=1e-4, space='w', sampling='end', crop=False, batch_size=2) > 0

def _distributed_worker(rank, init_method, cache_dir, inception, out_dir):
    """One of two gloo ranks: dataset statistics, distances and a whole metric, saved for the parent to compare."""
    os.environ['DNNLIB_CACHE_DIR'] = cache_dir
    os.environ['STYLESV_INCEPTION'] = inception
    torch.distributed.init_process_group('gloo', init_method=init_method, rank=rank, world_size=2)
    compute_dataset_stats = metric_utils.compute_feature_stats_for_dataset # Load in-process: spawning loader workers takes seconds.
    metric_utils.compute_feature_stats_for_dataset = lambda *args, **kwargs: compute_dataset_stats(*args, **dict(kwargs, data_loader_kwargs=dict()))
    opts = metric_utils.MetricOptions(G=LinearGenerator(), dataset_kwargs=dict(class_name='tests.test_metrics.ArrayDataset', num_images=9), num_gpus=2, rank=rank, device='cpu')
    stats = metric_utils.compute_feature_stats_for_dataset(opts, metric_utils.INCEPTION_URL, dict(return_features=True), batch_size=2, data_loader_kwargs=dict(), capture_all=True, capture_mean_cov=True)
    rows, cols = torch.arange(12.0).reshape(3, 4), torch.arange(44.0).reshape(11, 4).flip(0)
    dist = distance_matrix(rows, cols, num_gpus=2, rank=rank, col_batch_size=2)
    points = torch.randn([10, 4], generator=torch.Generator().manual_seed(0))
    coverage = precision_recall.manifold_coverage(points, points + 50 * (torch.arange(10) >= 5)[:, None], nhood_size=3, row_batch_size=4, col_batch_size=3, num_gpus=2, rank=rank)
    compute_fid = frechet_inception_distance.compute_fid
    frechet_inception_distance.compute_fid = lambda opts, max_real, num_gen: compute_fid(opts, max_real, num_gen=8)
    fakes = ArrayDataset(num_images=8, seed=7).images[rank::2] # Each rank's share; gathered, they are all 8 in order.
    result = metric_main.calc_metric('fid50k_full', G=ReplayGenerator(fakes), dataset_kwargs=opts.dataset_kwargs, num_gpus=2, rank=rank, device='cpu')
    torch.save(dict(features=stats.get_all(), mean_cov=stats.get_mean_cov(), dist=dist, coverage=coverage, fid=result.results.fid50k_full), os.path.join(out_dir, f'rank{rank}.pt'))
    torch.distributed.destroy_process_group()

def test_two_ranks_match_a_single_process(isolated_metrics):
    out_dir = isolated_metrics / 'ranks'
    out_dir.mkdir()
    args = ('file://' + str(isolated_metrics / 'dist_init'), str(isolated_metrics / 'cache'), os.environ['STYLESV_INCEPTION'], str(out_dir))
    torch.multiprocessing.spawn(_distributed_worker, args=args, nprocs=2)
    r0, r1 = [torch.load(out_dir / f'rank{rank}.pt', weights_only=False) for rank in (0, 1)]

    # Rank-strided reading with wrap-around, gathered back in dataset order on every rank.
    single = metric_utils.compute_feature_stats_for_dataset(array_opts(num_images=9), metric_utils.INCEPTION_URL, dict(return_features=True), capture_all=True, data_loader_kwargs=dict())
    np.testing.assert_allclose(r0['features'], single.get_all(), atol=1e-6)
    np.testing.assert_array_equal(r0['mean_cov'][1], r1['mean_cov'][1])
    assert torch.equal(r0['dist'], r1['dist']) and torch.equal(r0['dist'], torch.cdist(torch.arange(12.0).reshape(3, 4), torch.arange(44.0).reshape(11, 4).flip(0)).half())
    assert r0['coverage'] == 0.5 and np.isnan(r1['coverage']) # Only rank 0 reduces.
    fid = frechet_inception_distance.compute_fid(array_opts(G=ReplayGenerator(ArrayDataset(num_images=8, seed=7).images), num_images=9), max_real=None, num_gen=8)
    assert r0['fid'] == pytest.approx(fid, rel=1e-5) and r0['fid'] == r1['fid'] # Rank 0's value, broadcast.

#----------------------------------------------------------------------------
# Registry and reporting.

def test_metric_registry_holds_upstream_metrics_in_order():
    expected = ['fid50k_full', 'kid50k_full', 'pr50k3_full', 'ppl2_wend', 'eqt50k_int', 'eqt50k_frac', 'eqr50k', 'fid50k', 'kid50k', 'pr50k3', 'is50k']
    assert metric_main.list_valid_metrics()[:len(expected)] == expected
    assert metric_main.is_valid_metric('fid50k_full') and not metric_main.is_valid_metric('fid1k')
    with pytest.raises(ValueError, match='Unknown metric'):
        metric_main.calc_metric('fid1k')

def test_equivariance_metrics_request_one_fp32_psnr_each(monkeypatch):
    calls = []
    def fake_psnr(opts, num_samples, batch_size, **flags):
        calls.append((dict(opts.G_kwargs), num_samples, batch_size, flags))
        return 42.0 # Upstream contract: one requested metric -> one float.
    monkeypatch.setattr(metric_main.equivariance, 'compute_equivariance_metrics', fake_psnr)
    for name, flag in [('eqt50k_int', 'compute_eqt_int'), ('eqt50k_frac', 'compute_eqt_frac'), ('eqr50k', 'compute_eqr')]:
        result = metric_main.calc_metric(name, G=LinearGenerator(), device='cpu')
        assert result.results == {name: 42.0}
        assert calls[-1] == (dict(force_fp32=True), 50000, 4, {flag: True})

def test_report_metric_appends_json_lines_with_relative_snapshot(tmp_path, capsys):
    run_dir = tmp_path / 'run'
    run_dir.mkdir()
    (run_dir / 'metric-fid50k_full.jsonl').write_text('{"earlier": 1}\n')
    result = dnnlib.EasyDict(results=dnnlib.EasyDict(fid50k_full=12.5), metric='fid50k_full', total_time=3.0, total_time_str='3s', num_gpus=1)
    for kimg in (0, 4):
        metric_main.report_metric(result, run_dir=str(run_dir), snapshot_pkl=str(run_dir / f'network-snapshot-{kimg:06d}.pkl'))
    lines = (run_dir / 'metric-fid50k_full.jsonl').read_text().splitlines()
    assert lines[0] == '{"earlier": 1}' and len(lines) == 3
    entry = json.loads(lines[2])
    assert set(entry) == {'results', 'metric', 'total_time', 'total_time_str', 'num_gpus', 'snapshot_pkl', 'timestamp'}
    assert entry['snapshot_pkl'] == 'network-snapshot-000004.pkl' and entry['results'] == {'fid50k_full': 12.5}
    assert json.loads(capsys.readouterr().out.splitlines()[-1]) == entry

#----------------------------------------------------------------------------
