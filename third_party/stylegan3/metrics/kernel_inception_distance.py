"""Kernel Inception Distance (KID), from "Demystifying MMD GANs" (Binkowski et al. 2018)."""

import numpy as np
from . import metric_utils

#----------------------------------------------------------------------------

def kernel_distance(real_features, gen_features, num_subsets, max_subset_size, rnd=np.random):
    """Unbiased MMD^2 with the cubic polynomial kernel k(x, y) = (x.y / n + 1)^3, averaged over random subsets."""
    n = real_features.shape[1]
    m = min(real_features.shape[0], gen_features.shape[0], max_subset_size)
    if m < 2:
        raise ValueError(f'KID needs at least 2 real and 2 generated samples, got {real_features.shape[0]} and {gen_features.shape[0]}')
    t = 0
    for _subset_idx in range(num_subsets):
        x = gen_features[rnd.choice(gen_features.shape[0], m, replace=False)]
        y = real_features[rnd.choice(real_features.shape[0], m, replace=False)]
        a = (x @ x.T / n + 1) ** 3 + (y @ y.T / n + 1) ** 3 # Within-set kernels; the diagonal is excluded below.
        b = (x @ y.T / n + 1) ** 3
        t += (a.sum() - np.diag(a).sum()) / (m - 1) - b.sum() * 2 / m
    return float(t / num_subsets / m)

#----------------------------------------------------------------------------

def compute_kid(opts, max_real, num_gen, num_subsets, max_subset_size):
    detector_url = metric_utils.INCEPTION_URL
    detector_kwargs = dict(return_features=True) # 2048-d pool features, before the classifier.

    real_features = metric_utils.compute_feature_stats_for_dataset(
        opts=opts, detector_url=detector_url, detector_kwargs=detector_kwargs,
        rel_lo=0, rel_hi=0, capture_all=True, max_items=max_real).get_all()

    gen_features = metric_utils.compute_feature_stats_for_generator(
        opts=opts, detector_url=detector_url, detector_kwargs=detector_kwargs,
        rel_lo=0, rel_hi=1, capture_all=True, max_items=num_gen).get_all()

    if opts.rank != 0:
        return float('nan')
    return kernel_distance(real_features, gen_features, num_subsets=num_subsets, max_subset_size=max_subset_size)

#----------------------------------------------------------------------------
