"""Shared machinery of the quality metrics: options, feature detectors, feature statistics, progress.

Feature detectors are the published Inception and VGG16 networks (INCEPTION_URL, VGG16_URL). To use a
local copy instead (offline machines, converted detectors), set the environment variable named in
DETECTOR_OVERRIDE_ENV to a path or URL: `STYLESV_INCEPTION=/data/inception-2015-12-05.pkl` and
`STYLESV_VGG16=/data/vgg16.pkl`. A detector file is either a pickle (NVIDIA's format, read with
`pickle.load`) or a TorchScript archive (`torch.jit.save`) whose forward takes the same keywords.
The override is resolved before anything is cached, so dataset statistics computed with a local
detector are keyed by that file's path and never mixed up with those of the published one.
"""

import copy
import hashlib
import os
import pickle
import time
import uuid

import numpy as np
import torch
import dnnlib

#----------------------------------------------------------------------------

INCEPTION_URL = 'https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/metrics/inception-2015-12-05.pkl'
VGG16_URL = 'https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/metrics/vgg16.pkl'

# Environment variable that replaces each published detector by a local file or another URL.
DETECTOR_OVERRIDE_ENV = {
    INCEPTION_URL: 'STYLESV_INCEPTION',
    VGG16_URL:     'STYLESV_VGG16',
}

#----------------------------------------------------------------------------

class MetricOptions:
    """Everything a metric needs besides its own constants: the generator, the data and the process layout."""
    def __init__(self,
        G               = None,     # Generator to evaluate (nn.Module); copied to `device` by the metric.
        G_kwargs        = {},       # Extra keyword arguments of G(z, c) and G.synthesis(ws).
        dataset_kwargs  = {},       # Real data: kwargs of dnnlib.util.construct_class_by_name().
        num_gpus        = 1,        # Number of processes taking part (torch.distributed world size).
        rank            = 0,        # Rank of this process.
        device          = None,     # Torch device; default cuda:<rank> when CUDA is available, else CPU.
        progress        = None,     # Parent ProgressMonitor, or None.
        cache           = True,     # Reuse dataset statistics from the cache directory?
    ):
        if not 0 <= rank < num_gpus:
            raise ValueError(f'Metric rank must satisfy 0 <= rank < num_gpus, got rank={rank}, num_gpus={num_gpus}')
        if num_gpus > 1 and not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            raise ValueError(f'num_gpus={num_gpus} requires torch.distributed to be initialised first')
        self.G              = G
        self.G_kwargs       = dnnlib.EasyDict(G_kwargs)
        self.dataset_kwargs = dnnlib.EasyDict(dataset_kwargs)
        self.num_gpus       = num_gpus
        self.rank           = rank
        if device is None:
            device = torch.device('cuda', rank) if torch.cuda.is_available() else torch.device('cpu')
        self.device         = torch.device(device)
        self.progress       = progress.sub() if progress is not None else ProgressMonitor()
        self.cache          = cache

#----------------------------------------------------------------------------

def resolve_detector_url(url):
    """The detector location actually used: the override from DETECTOR_OVERRIDE_ENV if one is set."""
    env = DETECTOR_OVERRIDE_ENV.get(url)
    override = os.environ.get(env) if env is not None else None
    return override if override else url

#----------------------------------------------------------------------------

def get_feature_detector_name(url):
    return os.path.splitext(url.split('/')[-1])[0]

#----------------------------------------------------------------------------

_feature_detector_cache = dict()

def get_feature_detector(url, device=torch.device('cpu'), num_gpus=1, rank=0, verbose=False):
    """Load a detector once per (location, device). Rank 0 goes first so that only it downloads."""
    assert 0 <= rank < num_gpus
    url = resolve_detector_url(url)
    key = (url, torch.device(device))
    is_leader = (rank == 0)
    if not is_leader and num_gpus > 1:
        torch.distributed.barrier() # Wait for the leader to fill the download cache.
    if key not in _feature_detector_cache:
        with dnnlib.util.open_url(url, verbose=(verbose and is_leader)) as f:
            is_torchscript = (f.read(2) == b'PK') # TorchScript archives are zip files; pickles are not.
            f.seek(0)
            detector = torch.jit.load(f, map_location='cpu') if is_torchscript else pickle.load(f)
        detector = detector.eval().to(key[1])
        for param in detector.parameters(): # Module.requires_grad_() is not available on ScriptModules.
            param.requires_grad = False
        _feature_detector_cache[key] = detector
    if is_leader and num_gpus > 1:
        torch.distributed.barrier() # Release the others.
    return _feature_detector_cache[key]

#----------------------------------------------------------------------------

def iterate_random_labels(opts, batch_size):
    """Endless stream of [batch_size, c_dim] label batches drawn at random from the dataset (empty if unconditional)."""
    if opts.G.c_dim == 0:
        c = torch.zeros([batch_size, 0], device=opts.device)
        while True:
            yield c
    else:
        dataset = dnnlib.util.construct_class_by_name(**opts.dataset_kwargs)
        while True:
            c = np.stack([dataset.get_label(np.random.randint(len(dataset))) for _ in range(batch_size)])
            yield torch.from_numpy(c).to(opts.device)

#----------------------------------------------------------------------------

class FeatureStats:
    """Accumulates detector features: all of them, and/or their first two moments in float64."""
    def __init__(self,
        capture_all         = False,    # Keep every feature vector (KID, P/R, IS)?
        capture_mean_cov    = False,    # Accumulate sum and sum of outer products (FID)?
        max_items           = None,     # Ignore everything beyond this many items; None = unlimited.
    ):
        self.capture_all = capture_all
        self.capture_mean_cov = capture_mean_cov
        self.max_items = max_items
        self.num_items = 0
        self.num_features = None
        self.all_features = None
        self.raw_mean = None
        self.raw_cov = None

    def set_num_features(self, num_features):
        if self.num_features is not None:
            assert num_features == self.num_features, 'Feature dimension changed between batches'
            return
        self.num_features = num_features
        self.all_features = []
        self.raw_mean = np.zeros([num_features], dtype=np.float64)
        self.raw_cov = np.zeros([num_features, num_features], dtype=np.float64)

    def is_full(self):
        return (self.max_items is not None) and (self.num_items >= self.max_items)

    def append(self, x):
        x = np.asarray(x, dtype=np.float32)
        assert x.ndim == 2, 'Features must be [items, features]'
        if self.max_items is not None:
            x = x[:max(self.max_items - self.num_items, 0)]
        self.set_num_features(x.shape[1])
        if x.shape[0] == 0:
            return
        self.num_items += x.shape[0]
        if self.capture_all:
            self.all_features.append(x)
        if self.capture_mean_cov:
            x64 = x.astype(np.float64)
            self.raw_mean += x64.sum(axis=0)
            self.raw_cov += x64.T @ x64

    def append_torch(self, x, num_gpus=1, rank=0):
        """Append one batch per rank; items end up interleaved by rank, matching the rank-strided data order."""
        assert isinstance(x, torch.Tensor) and x.ndim == 2
        assert 0 <= rank < num_gpus
        if num_gpus > 1:
            ys = [torch.empty_like(x) for _ in range(num_gpus)]
            torch.distributed.all_gather(ys, x)
            x = torch.stack(ys, dim=1).flatten(0, 1) # [items, ranks, features] -> [items * ranks, features]
        self.append(x.detach().float().cpu().numpy())

    def get_all(self):
        assert self.capture_all
        if not self.all_features:
            return np.zeros([0, self.num_features or 0], dtype=np.float32)
        return np.concatenate(self.all_features, axis=0)

    def get_all_torch(self):
        return torch.from_numpy(self.get_all())

    def get_mean_cov(self):
        """Mean and population covariance (divided by the number of items, as in the FID definition)."""
        assert self.capture_mean_cov
        if self.num_items == 0:
            raise ValueError('No features were collected: the dataset or the sample count is empty')
        mean = self.raw_mean / self.num_items
        cov = self.raw_cov / self.num_items - np.outer(mean, mean)
        return mean, cov

    def save(self, pkl_file):
        write_file_atomic(pkl_file, pickle.dumps(self.__dict__))

    @staticmethod
    def load(pkl_file):
        with open(pkl_file, 'rb') as f:
            s = dnnlib.EasyDict(pickle.load(f))
        obj = FeatureStats(capture_all=s.capture_all, max_items=s.max_items)
        obj.__dict__.update(s)
        return obj

#----------------------------------------------------------------------------

def write_file_atomic(path, data):
    """Write bytes to a temporary name beside `path`, then rename: readers never see a partial file."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f'{path}.{uuid.uuid4().hex}.tmp'
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)

#----------------------------------------------------------------------------

class ProgressMonitor:
    """Prints throughput now and then and maps item counts of nested phases onto one progress callback."""
    def __init__(self,
        tag             = None,     # Name printed in verbose mode; None = silent.
        num_items       = None,     # Items expected in this phase, for the progress callback.
        flush_interval  = 1000,     # Report at most once per this many items.
        verbose         = False,    # Print lines?
        progress_fn     = None,     # Callback progress_fn(cur, total), or None.
        pfn_lo          = 0,        # Callback value at the start of this phase.
        pfn_hi          = 1000,     # Callback value at its end.
        pfn_total       = 1000,     # Callback total.
    ):
        self.tag = tag
        self.num_items = num_items
        self.verbose = verbose
        self.flush_interval = flush_interval
        self.progress_fn = progress_fn
        self.pfn_lo = pfn_lo
        self.pfn_hi = pfn_hi
        self.pfn_total = pfn_total
        self.start_time = time.time()
        self.batch_time = self.start_time
        self.batch_items = 0
        if self.progress_fn is not None:
            self.progress_fn(self.pfn_lo, self.pfn_total)

    def update(self, cur_items):
        assert (self.num_items is None) or (cur_items <= self.num_items)
        done = (self.num_items is not None) and (cur_items >= self.num_items)
        if cur_items < self.batch_items + self.flush_interval and not done:
            return
        cur_time = time.time()
        total_time = cur_time - self.start_time
        time_per_item = (cur_time - self.batch_time) / max(cur_items - self.batch_items, 1)
        if self.verbose and self.tag is not None:
            print(f'{self.tag:<19s} items {cur_items:<7d} time {dnnlib.util.format_time(total_time):<12s} ms/item {time_per_item * 1e3:.2f}', flush=True)
        self.batch_time = cur_time
        self.batch_items = cur_items
        if self.progress_fn is not None and self.num_items:
            self.progress_fn(self.pfn_lo + (self.pfn_hi - self.pfn_lo) * (cur_items / self.num_items), self.pfn_total)

    def sub(self, tag=None, num_items=None, flush_interval=1000, rel_lo=0, rel_hi=1):
        """Child monitor covering the fraction [rel_lo, rel_hi] of this one's callback range."""
        span = self.pfn_hi - self.pfn_lo
        return ProgressMonitor(
            tag             = tag,
            num_items       = num_items,
            flush_interval  = flush_interval,
            verbose         = self.verbose,
            progress_fn     = self.progress_fn,
            pfn_lo          = self.pfn_lo + span * rel_lo,
            pfn_hi          = self.pfn_lo + span * rel_hi,
            pfn_total       = self.pfn_total,
        )

#----------------------------------------------------------------------------

def _to_detector_input(images):
    """Detectors expect RGB: repeat grayscale to three channels."""
    return images.repeat([1, 3, 1, 1]) if images.shape[1] == 1 else images

#----------------------------------------------------------------------------

def compute_feature_stats_for_dataset(opts, detector_url, detector_kwargs, rel_lo=0, rel_hi=1, batch_size=64, data_loader_kwargs=None, max_items=None, **stats_kwargs):
    """Features of the real images, cached on disk.

    The cache file is `make_cache_dir_path('gan-metrics', '<dataset name>-<detector name>-<md5>.pkl')`, md5 over
    `repr(sorted(dict(dataset_kwargs=, detector_url=, detector_kwargs=, stats_kwargs=).items()))` where
    detector_url is the resolved location (see module docstring) and stats_kwargs includes max_items.
    """
    dataset = dnnlib.util.construct_class_by_name(**opts.dataset_kwargs)
    detector_url = resolve_detector_url(detector_url)
    if data_loader_kwargs is None:
        data_loader_kwargs = dict(pin_memory=(opts.device.type == 'cuda'), num_workers=min(3, os.cpu_count() or 1), prefetch_factor=2)

    # Look in the cache; rank 0 decides for everyone so that all ranks take the same branch.
    cache_file = None
    if opts.cache:
        args = dict(dataset_kwargs=opts.dataset_kwargs, detector_url=detector_url, detector_kwargs=detector_kwargs, stats_kwargs=dict(stats_kwargs, max_items=max_items))
        md5 = hashlib.md5(repr(sorted(args.items())).encode('utf-8')).hexdigest()
        cache_tag = f'{dataset.name}-{get_feature_detector_name(detector_url)}-{md5}'
        cache_file = dnnlib.make_cache_dir_path('gan-metrics', cache_tag + '.pkl')
        found = os.path.isfile(cache_file) if opts.rank == 0 else False
        if opts.num_gpus > 1:
            found = torch.as_tensor(found, dtype=torch.float32, device=opts.device)
            torch.distributed.broadcast(tensor=found, src=0)
            found = bool(found.item() != 0)
        if found:
            return FeatureStats.load(cache_file)

    # Every rank reads every num_gpus-th image; the last stride wraps around so all ranks see equal batches.
    num_items = len(dataset) if max_items is None else min(len(dataset), max_items)
    if num_items == 0:
        raise ValueError(f'No real images to compute statistics on: dataset {dataset.name!r} is empty or max_items is 0')
    stats = FeatureStats(max_items=num_items, **stats_kwargs)
    progress = opts.progress.sub(tag='dataset features', num_items=num_items, rel_lo=rel_lo, rel_hi=rel_hi)
    detector = get_feature_detector(url=detector_url, device=opts.device, num_gpus=opts.num_gpus, rank=opts.rank, verbose=progress.verbose)
    item_subset = [(i * opts.num_gpus + opts.rank) % num_items for i in range((num_items - 1) // opts.num_gpus + 1)]
    loader = torch.utils.data.DataLoader(dataset=dataset, sampler=item_subset, batch_size=batch_size, **data_loader_kwargs)
    for images, _labels in loader:
        features = detector(_to_detector_input(images.to(opts.device)), **detector_kwargs)
        stats.append_torch(features, num_gpus=opts.num_gpus, rank=opts.rank)
        progress.update(stats.num_items)

    if cache_file is not None and opts.rank == 0:
        stats.save(cache_file)
    return stats

#----------------------------------------------------------------------------

def compute_feature_stats_for_generator(opts, detector_url, detector_kwargs, rel_lo=0, rel_hi=1, batch_size=64, batch_gen=None, **stats_kwargs):
    """Features of generated images: G runs in chunks of batch_gen, the detector on batches of batch_size."""
    if batch_gen is None:
        batch_gen = min(batch_size, 4)
    if batch_size % batch_gen != 0:
        raise ValueError(f'batch_size ({batch_size}) must be a multiple of batch_gen ({batch_gen})')
    stats = FeatureStats(**stats_kwargs)
    if stats.max_items is None:
        raise ValueError('compute_feature_stats_for_generator needs max_items (the number of images to generate)')

    G = copy.deepcopy(opts.G).eval().requires_grad_(False).to(opts.device)
    c_iter = iterate_random_labels(opts=opts, batch_size=batch_gen)
    progress = opts.progress.sub(tag='generator features', num_items=stats.max_items, rel_lo=rel_lo, rel_hi=rel_hi)
    detector = get_feature_detector(url=detector_url, device=opts.device, num_gpus=opts.num_gpus, rank=opts.rank, verbose=progress.verbose)
    while not stats.is_full():
        # Up to batch_size images per rank, but only as many G calls as the remaining items need.
        remaining = -(-(stats.max_items - stats.num_items) // opts.num_gpus)
        images = []
        for _i in range(min(batch_size // batch_gen, -(-remaining // batch_gen))):
            z = torch.randn([batch_gen, G.z_dim], device=opts.device)
            img = G(z=z, c=next(c_iter), **opts.G_kwargs)
            images.append((img * 127.5 + 128).clamp(0, 255).to(torch.uint8))
        features = detector(_to_detector_input(torch.cat(images)), **detector_kwargs)
        stats.append_torch(features, num_gpus=opts.num_gpus, rank=opts.rank)
        progress.update(stats.num_items)
    return stats

#----------------------------------------------------------------------------
