"""Built-in demo data: procedurally generated landscape time-lapses, the `demo` source of the dataset tool.

The videos pan smoothly over a rolling horizon under drifting clouds, so a model trained on them
must learn both per-frame appearance and smooth motion. Nothing is downloaded; the same seed
always gives the same bytes of pixels.
"""

import numpy as np

#----------------------------------------------------------------------------

def render_frame(scene, t, resolution):
    """Render frame `t` (a real number, in frames) of a scene as uint8 [H, W, 3]."""
    y, x = np.mgrid[0:resolution, 0:resolution] / resolution     # [H, W] each, in [0, 1)
    u = x + scene['pan_speed'] * t                               # world coordinate under the camera

    # Sky: vertical gradient between two colours, with soft clouds drifting faster than the pan.
    sky = scene['sky_top'] + (scene['sky_bottom'] - scene['sky_top']) * y[..., None]
    clouds = np.zeros_like(x)
    for cx, cy, r, speed in scene['clouds']:
        dx = (u * 0.5 + speed * t - cx) % 2.0 - 1.0              # wrap clouds around a 2-unit loop
        clouds += np.exp(-((dx / r) ** 2 + ((y - cy) / (0.4 * r)) ** 2))
    img = sky + np.clip(clouds, 0, 1)[..., None] * (1 - sky) * 0.8

    # Ground: a horizon made of a few sinusoids of the world coordinate.
    horizon = scene['horizon'] + sum(a * np.sin(2 * np.pi * (f * u + p)) for a, f, p in scene['waves'])
    ground = (y > horizon)[..., None]
    shade = 0.75 + 0.25 * np.sin(2 * np.pi * (3 * u + 5 * y))[..., None]
    img = np.where(ground, scene['ground'] * shade, img)
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8)

#----------------------------------------------------------------------------

def random_scene(rnd):
    """Draw the parameters of one video from a RandomState."""
    return dict(
        pan_speed=rnd.uniform(0.004, 0.02) * rnd.choice([-1, 1]),
        sky_top=rnd.uniform([0.1, 0.2, 0.5], [0.3, 0.5, 0.9]),
        sky_bottom=rnd.uniform([0.6, 0.5, 0.4], [1.0, 0.8, 0.8]),
        clouds=[(rnd.uniform(-1, 1), rnd.uniform(0.1, 0.4), rnd.uniform(0.1, 0.3), rnd.uniform(-0.01, 0.01)) for _ in range(3)],
        horizon=rnd.uniform(0.55, 0.75),
        waves=[(rnd.uniform(0.02, 0.08) / (i + 1), rnd.uniform(0.5, 2.0) * (i + 1), rnd.uniform()) for i in range(3)],
        ground=rnd.uniform([0.1, 0.25, 0.05], [0.4, 0.5, 0.2]),
    )

#----------------------------------------------------------------------------

def random_scenes(num_videos, seed):
    """The scenes of the demo dataset: `num_videos` draws from one RandomState(seed), in video order."""
    rnd = np.random.RandomState(seed)
    return [random_scene(rnd) for _ in range(num_videos)]

#----------------------------------------------------------------------------
