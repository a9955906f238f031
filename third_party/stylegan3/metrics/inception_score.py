"""Inception Score (IS), from "Improved Techniques for Training GANs" (Salimans et al. 2016)."""

import numpy as np
import scipy.special
from . import metric_utils

#----------------------------------------------------------------------------

def inception_score(probs, num_splits):
    """Mean and std over splits of exp(E_x KL(p(y|x) || p(y))), p(y) being the split's marginal."""
    num_items = probs.shape[0]
    if num_items < num_splits:
        raise ValueError(f'Inception Score needs at least one sample per split, got {num_items} samples for {num_splits} splits')
    scores = []
    for i in range(num_splits):
        part = probs[i * num_items // num_splits : (i + 1) * num_items // num_splits]
        marginal = np.mean(part, axis=0, keepdims=True)
        kl = scipy.special.xlogy(part, part) - scipy.special.xlogy(part, marginal) # 0 log 0 = 0.
        scores.append(np.exp(np.mean(np.sum(kl, axis=1))))
    return float(np.mean(scores)), float(np.std(scores))

#----------------------------------------------------------------------------

def compute_is(opts, num_gen, num_splits):
    detector_url = metric_utils.INCEPTION_URL
    detector_kwargs = dict(no_output_bias=True) # Class probabilities; the original IS code has no softmax bias.

    gen_probs = metric_utils.compute_feature_stats_for_generator(
        opts=opts, detector_url=detector_url, detector_kwargs=detector_kwargs,
        capture_all=True, max_items=num_gen).get_all()

    if opts.rank != 0:
        return float('nan'), float('nan')
    return inception_score(gen_probs.astype(np.float64), num_splits)

#----------------------------------------------------------------------------
