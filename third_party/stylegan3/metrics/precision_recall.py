"""Precision and recall of a generative model, from "Improved Precision and Recall Metric for Assessing Generative Models" (Kynkaanniemi et al. 2019)."""

import torch
from . import metric_utils

#----------------------------------------------------------------------------

def iterate_distances(row_features, col_features, num_gpus=1, rank=0, col_batch_size=10000):
    """Yield (first column, Euclidean distances [rows, batch] in float16) for consecutive column batches.

    The ranks compute the batches in turn and gather them, so every rank sees every batch. Features may be
    stored in fp16 to halve their memory; each batch is compared in float32 and the distances are rounded
    to float16, as the upstream's are: k-NN radii and probe distances that round to the same value tie,
    and a tie counts as inside. Reported precision/recall then compare with published tables. Only one
    batch of the [rows, cols] matrix exists at a time.
    """
    num_cols = col_features.shape[0]
    num_batches = -(-num_cols // (col_batch_size * num_gpus)) * num_gpus # A multiple of num_gpus, so every rank gets the same work.
    batch_size = -(-num_cols // num_batches)
    rows = row_features.float()
    for first in range(0, num_batches, num_gpus):
        begin = (first + rank) * batch_size
        col_batch = col_features[begin : begin + batch_size].float()
        col_batch = torch.nn.functional.pad(col_batch, [0, 0, 0, batch_size - col_batch.shape[0]]) # Zero rows past the end, dropped below.
        dist = torch.cdist(rows.unsqueeze(0), col_batch.unsqueeze(0))[0].to(torch.float16) # [rows, batch_size]
        gathered = [dist]
        if num_gpus > 1:
            gathered = [torch.empty_like(dist) for _ in range(num_gpus)]
            torch.distributed.all_gather(gathered, dist)
        for i, dist in enumerate(gathered):
            begin = (first + i) * batch_size
            if begin < num_cols:
                yield begin, dist[:, :num_cols - begin]

#----------------------------------------------------------------------------

def manifold_coverage(manifold, probes, nhood_size, row_batch_size=10000, col_batch_size=10000, num_gpus=1, rank=0):
    """Fraction of probes inside the manifold: within the k-NN radius (k = nhood_size) of at least one manifold point.

    Returns a float on rank 0 and NaN elsewhere. The radius of a manifold point is its distance to the
    (k+1)-th nearest manifold point, the first one being the point itself; distances and radii are float16.
    """
    if manifold.shape[0] <= nhood_size:
        raise ValueError(f'Precision/recall needs more than {nhood_size} samples per set, got {manifold.shape[0]}')
    kwargs = dict(num_gpus=num_gpus, rank=rank, col_batch_size=col_batch_size)

    # Radii: keep the k+1 smallest distances per row while the column batches stream by.
    radii = []
    for batch in manifold.split(row_batch_size):
        nearest = None
        for _begin, dist in iterate_distances(batch, manifold, **kwargs):
            if rank == 0:
                nearest = dist if nearest is None else torch.cat([nearest, dist], dim=1)
                nearest = nearest.topk(min(nhood_size + 1, nearest.shape[1]), dim=1, largest=False).values
        if rank == 0:
            radii.append(nearest[:, nhood_size])
    radii = torch.cat(radii) if rank == 0 else None # [manifold]

    # Coverage: a probe counts once it is inside any ball.
    inside = []
    for batch in probes.split(row_batch_size):
        hit = torch.zeros([batch.shape[0]], dtype=torch.bool, device=batch.device)
        for begin, dist in iterate_distances(batch, manifold, **kwargs):
            if rank == 0:
                hit |= (dist <= radii[begin : begin + dist.shape[1]].unsqueeze(0)).any(dim=1)
        inside.append(hit)
    return float(torch.cat(inside).float().mean()) if rank == 0 else float('nan')

#----------------------------------------------------------------------------

def compute_pr(opts, max_real, num_gen, nhood_size, row_batch_size, col_batch_size):
    detector_url = metric_utils.VGG16_URL
    detector_kwargs = dict(return_features=True)

    real_features = metric_utils.compute_feature_stats_for_dataset(
        opts=opts, detector_url=detector_url, detector_kwargs=detector_kwargs,
        rel_lo=0, rel_hi=0, capture_all=True, max_items=max_real).get_all_torch().to(torch.float16).to(opts.device)

    gen_features = metric_utils.compute_feature_stats_for_generator(
        opts=opts, detector_url=detector_url, detector_kwargs=detector_kwargs,
        rel_lo=0, rel_hi=1, capture_all=True, max_items=num_gen).get_all_torch().to(torch.float16).to(opts.device)

    kwargs = dict(nhood_size=nhood_size, row_batch_size=row_batch_size, col_batch_size=col_batch_size, num_gpus=opts.num_gpus, rank=opts.rank)
    precision = manifold_coverage(manifold=real_features, probes=gen_features, **kwargs)
    recall = manifold_coverage(manifold=gen_features, probes=real_features, **kwargs)
    return precision, recall

#----------------------------------------------------------------------------
