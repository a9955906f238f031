"""Generate images from a trained network pickle: one PNG per seed, optionally translated/rotated (StyleGAN3 input transform)."""

import os
import re

import click
import numpy as np
import PIL.Image
import torch

import dnnlib
import legacy
from training.training_loop import write_file_atomic

#----------------------------------------------------------------------------

def parse_range(s):
    """'1,2,5-10' -> [1, 2, 5, 6, 7, 8, 9, 10] (ranges inclusive)."""
    if isinstance(s, list):
        return s
    values = []
    for part in s.split(','):
        match = re.fullmatch(r'\s*(\d+)\s*-\s*(\d+)\s*', part)
        if match is not None:
            values.extend(range(int(match.group(1)), int(match.group(2)) + 1))
        elif re.fullmatch(r'\s*\d+\s*', part):
            values.append(int(part))
        else:
            raise click.BadParameter(f'expected comma-separated integers or ranges like 0,1,4-6, got "{s}"')
    return values

#----------------------------------------------------------------------------

def parse_vec2(s):
    """'0.1,-0.2' -> (0.1, -0.2)."""
    if isinstance(s, tuple):
        return s
    parts = s.split(',')
    if len(parts) != 2:
        raise click.BadParameter(f'expected two comma-separated numbers like 0.1,-0.2, got "{s}"')
    try:
        return (float(parts[0]), float(parts[1]))
    except ValueError:
        raise click.BadParameter(f'expected two comma-separated numbers like 0.1,-0.2, got "{s}"') from None

#----------------------------------------------------------------------------

def make_transform(translate, angle):
    """3x3 matrix rotating by `angle` degrees and translating by `translate` (image units)."""
    s = np.sin(angle / 360.0 * np.pi * 2)
    c = np.cos(angle / 360.0 * np.pi * 2)
    return np.array([[c, s, translate[0]], [-s, c, translate[1]], [0, 0, 1]])

#----------------------------------------------------------------------------

def make_label(G, class_idx, device):
    """One-hot [1, c_dim] label; required for conditional networks, ignored (with a note) otherwise."""
    label = torch.zeros([1, G.c_dim], device=device)
    if G.c_dim != 0:
        if class_idx is None:
            raise click.ClickException('Must specify class label with --class when using a conditional network')
        if not 0 <= class_idx < G.c_dim:
            raise click.ClickException(f'--class must be in [0, {G.c_dim - 1}], got {class_idx}')
        label[:, class_idx] = 1
    elif class_idx is not None:
        print('warn: --class=lbl ignored when running on an unconditional network')
    return label

#----------------------------------------------------------------------------

def save_image(img, path):
    """Save one [C, H, W] uint8 tensor as PNG (atomically)."""
    img = img.permute(1, 2, 0).cpu().numpy() # [H, W, C]
    image = PIL.Image.fromarray(img[:, :, 0], 'L') if img.shape[2] == 1 else PIL.Image.fromarray(img, 'RGB')
    write_file_atomic(path, lambda f: image.save(f, format='PNG'))

#----------------------------------------------------------------------------

@click.command()
@click.option('--network', 'network_pkl', help='Network pickle filename', required=True)
@click.option('--seeds', type=parse_range, help='List of random seeds (e.g., \'0,1,4-6\')', required=True)
@click.option('--trunc', 'truncation_psi', type=float, help='Truncation psi', default=1, show_default=True)
@click.option('--class', 'class_idx', type=int, help='Class label (unconditional if not specified)')
@click.option('--noise-mode', help='Noise mode', type=click.Choice(['const', 'random', 'none']), default='const', show_default=True)
@click.option('--translate', help='Translate XY-coordinate (e.g. \'0.3,1\')', type=parse_vec2, default='0,0', show_default=True, metavar='VEC2')
@click.option('--rotate', help='Rotation angle in degrees', type=float, default=0, show_default=True, metavar='ANGLE')
@click.option('--outdir', help='Where to save the output images', type=str, required=True, metavar='DIR')
def generate_images(network_pkl, seeds, truncation_psi, noise_mode, outdir, translate, rotate, class_idx):
    """Generate images using pretrained network pickle.

    \b
    python gen_images.py --outdir=out --trunc=1 --seeds=2 \\
        --network=training-runs/00000-stylegan3-t-data-gpus1-batch4-gamma1/network-snapshot-000000.pkl
    """
    device = torch.device('cuda') if torch.cuda.is_available() else torch.device('cpu')
    print(f'Loading networks from "{network_pkl}"...')
    try:
        with dnnlib.util.open_url(network_pkl) as f:
            G = legacy.load_network_pkl(f)['G_ema'].to(device) # type: ignore
    except (OSError, ValueError) as err:
        raise click.ClickException(f'--network: {err}')

    os.makedirs(outdir, exist_ok=True)
    label = make_label(G, class_idx, device)
    if hasattr(G.synthesis, 'input'):
        m = np.linalg.inv(make_transform(translate, rotate)) # The input transform is the inverse of the output transform.
        G.synthesis.input.transform.copy_(torch.from_numpy(m))

    for seed_idx, seed in enumerate(seeds):
        print(f'Generating image for seed {seed} ({seed_idx}/{len(seeds)}) ...')
        z = torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).to(device=device, dtype=torch.float32)
        with torch.no_grad():
            img = G(z, label, truncation_psi=truncation_psi, noise_mode=noise_mode)
        img = (img * 127.5 + 128).clamp(0, 255).to(torch.uint8)
        save_image(img[0], os.path.join(outdir, f'seed{seed:04d}.png'))

#----------------------------------------------------------------------------

if __name__ == '__main__':
    generate_images() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
