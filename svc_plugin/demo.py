"""Built-in demo data: a procedurally generated landscape time-lapse, written as a video dataset zip.

The videos pan smoothly over a rolling horizon under drifting clouds, so a model trained on them
must learn both per-frame appearance and smooth motion. Nothing is downloaded; the same seed
always gives the same bytes of pixels.
"""

import io
import json
import os
import sys
import zipfile

import click
import numpy as np
import PIL.Image

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

def write_demo_dataset(dest, num_videos=16, num_frames=64, resolution=32, fps=25, seed=0):
    """Write the demo videos to `dest` (a .zip): one folder per video, zero-padded PNG frames, dataset.json."""
    if not dest.lower().endswith('.zip'):
        raise ValueError(f'--dest must end with .zip: {dest}')
    rnd = np.random.RandomState(seed)
    tmp = f'{dest}.tmp{os.getpid()}'
    os.makedirs(os.path.dirname(os.path.abspath(dest)), exist_ok=True)
    with zipfile.ZipFile(tmp, 'w', compression=zipfile.ZIP_STORED) as zf:
        for v in range(num_videos):
            scene = random_scene(rnd)
            for t in range(num_frames):
                buf = io.BytesIO()
                PIL.Image.fromarray(render_frame(scene, t, resolution)).save(buf, format='png', compress_level=0)
                zf.writestr(f'video{v:05d}/{t:06d}.png', buf.getvalue())
        zf.writestr('dataset.json', json.dumps(dict(labels=None, fps=fps)))
    os.replace(tmp, dest)

#----------------------------------------------------------------------------

@click.command()
@click.option('--dest',       help='Output .zip', metavar='ZIP', required=True)
@click.option('--videos',     help='Number of videos', type=click.IntRange(min=1), default=16, show_default=True)
@click.option('--frames',     help='Frames per video', type=click.IntRange(min=1), default=64, show_default=True)
@click.option('--resolution', help='Frame size in pixels (a power of two)', type=click.IntRange(min=4), default=32, show_default=True)
@click.option('--fps',        help='Frame rate recorded in dataset.json', type=click.IntRange(min=1), default=25, show_default=True)
@click.option('--seed',       help='Random seed', type=int, default=0, show_default=True)
def main(dest, videos, frames, resolution, fps, seed):
    """Write the built-in demo video dataset (procedural landscape time-lapses)."""
    if resolution & (resolution - 1):
        raise click.BadParameter(f'must be a power of two, got {resolution}', param_hint='--resolution')
    try:
        write_demo_dataset(dest, num_videos=videos, num_frames=frames, resolution=resolution, fps=fps, seed=seed)
    except (OSError, ValueError) as err:
        raise click.ClickException(str(err))
    print(f'Wrote {videos} videos x {frames} frames at {resolution}x{resolution} to {dest}', file=sys.stderr)

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter
