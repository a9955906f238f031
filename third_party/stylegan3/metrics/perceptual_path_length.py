"""Perceptual Path Length (PPL), from "A Style-Based Generator Architecture for Generative Adversarial Networks" (Karras et al. 2019), Section 4.1 and Appendix."""

import copy
import numpy as np
import torch
from . import metric_utils

#----------------------------------------------------------------------------

def slerp(a, b, t):
    """Spherical interpolation between the directions of a and b (rows), as used for paths in Z."""
    a = a / a.norm(dim=-1, keepdim=True)
    b = b / b.norm(dim=-1, keepdim=True)
    d = (a * b).sum(dim=-1, keepdim=True)
    p = t * torch.acos(d.clamp(-1, 1))
    c = b - d * a
    c = c / c.norm(dim=-1, keepdim=True)
    d = a * torch.cos(p) + c * torch.sin(p)
    return d / d.norm(dim=-1, keepdim=True)

#----------------------------------------------------------------------------

def ppl_distances(G, c, vgg16, epsilon, space, sampling, crop, G_kwargs={}):
    """Squared LPIPS distance / epsilon^2 between images at latent path positions t and t + epsilon, one per label row."""
    batch_size = c.shape[0]
    t = torch.rand([batch_size], device=c.device) if sampling == 'full' else torch.zeros([batch_size], device=c.device)
    z0, z1 = torch.randn([batch_size * 2, G.z_dim], device=c.device).chunk(2)

    # Two nearby points on the path between two random latents.
    if space == 'w':
        w0, w1 = G.mapping(z=torch.cat([z0, z1]), c=torch.cat([c, c])).chunk(2) # [batch, num_ws, w_dim] each
        t = t[:, np.newaxis, np.newaxis]
        ws = torch.cat([w0.lerp(w1, t), w0.lerp(w1, t + epsilon)])
    else:
        t = t[:, np.newaxis]
        z = torch.cat([slerp(z0, z1, t), slerp(z0, z1, t + epsilon)])
        ws = G.mapping(z=z, c=torch.cat([c, c]))

    # Fresh constant noise per batch, identical for both points of a pair.
    for name, buf in G.named_buffers():
        if name.endswith('.noise_const'):
            buf.copy_(torch.randn_like(buf))
    img = G.synthesis(ws=ws, **dict(G_kwargs, noise_mode='const', force_fp32=True)) # [batch * 2, C, H, W]

    # Face region (FFHQ alignment): rows 3/8..7/8, columns 2/8..6/8.
    if crop:
        assert img.shape[2] == img.shape[3]
        s = img.shape[2] // 8
        img = img[:, :, s * 3 : s * 7, s * 2 : s * 6]

    # Box-filter down to at most 256x256, then map [-1, 1] to [0, 255].
    factor = G.img_resolution // 256
    if factor > 1:
        img = img.reshape([img.shape[0], img.shape[1], img.shape[2] // factor, factor, img.shape[3] // factor, factor]).mean([3, 5]) # [N, C, H/f, f, W/f, f] -> [N, C, H/f, W/f]
    img = (img + 1) * (255 / 2)
    if img.shape[1] == 1:
        img = img.repeat([1, 3, 1, 1])

    lpips_t0, lpips_t1 = vgg16(img, resize_images=False, return_lpips=True).chunk(2)
    return (lpips_t0 - lpips_t1).square().sum(dim=1) / epsilon ** 2

#----------------------------------------------------------------------------

def compute_ppl(opts, num_samples, epsilon, space, sampling, crop, batch_size):
    if space not in ('z', 'w'):
        raise ValueError(f"PPL space must be 'z' or 'w', got {space!r}")
    if sampling not in ('full', 'end'):
        raise ValueError(f"PPL sampling must be 'full' or 'end', got {sampling!r}")
    vgg16 = metric_utils.get_feature_detector(metric_utils.VGG16_URL, device=opts.device, num_gpus=opts.num_gpus, rank=opts.rank, verbose=opts.progress.verbose)
    G = copy.deepcopy(opts.G).eval().requires_grad_(False).to(opts.device)
    c_iter = metric_utils.iterate_random_labels(opts=opts, batch_size=batch_size)

    # Gather distances from all ranks.
    stats = metric_utils.FeatureStats(capture_all=True, max_items=num_samples)
    progress = opts.progress.sub(tag='ppl sampling', num_items=num_samples)
    while not stats.is_full():
        dist = ppl_distances(G, next(c_iter), vgg16, epsilon=epsilon, space=space, sampling=sampling, crop=crop, G_kwargs=opts.G_kwargs)
        stats.append_torch(dist[:, np.newaxis], num_gpus=opts.num_gpus, rank=opts.rank)
        progress.update(stats.num_items)
    if opts.rank != 0:
        return float('nan')

    # Mean over the values between the 1st and 99th percentiles, which drops outliers.
    dist = stats.get_all()[:, 0].astype(np.float64)
    lo = np.percentile(dist, 1, method='lower')
    hi = np.percentile(dist, 99, method='higher')
    return float(dist[(dist >= lo) & (dist <= hi)].mean())

#----------------------------------------------------------------------------
