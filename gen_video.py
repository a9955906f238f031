"""Generate videos of any length from a video snapshot, computed chunk by chunk and streamed to mp4.

Examples:

\b
    python gen_video.py --network=network-snapshot-001000.pkl --frames=10000
    python gen_video.py --network=network-snapshot-001000.pkl --seeds=0-7 --grid=4x2 --frames=256
    python gen_video.py --network=network-snapshot-001000.pkl --seeds=0-3 --motion-seed=10-13 --decompose
    python gen_video.py --network=network-snapshot-001000.pkl --frames=128 --loop
"""

import os
import re
import sys
from fractions import Fraction

import click
import numpy as np
import torch
import tqdm

import svc_plugin  # noqa: F401  (puts the upstream layer on sys.path)
from svc_plugin import checkpoint, video_io

#----------------------------------------------------------------------------

def parse_range(s):
    """'0,1,4-6' -> [0, 1, 4, 5, 6] (ranges inclusive)."""
    if isinstance(s, list):
        return s
    values = []
    for part in s.split(','):
        match = re.fullmatch(r'\s*(\d+)\s*(?:-\s*(\d+)\s*)?', part)
        if match is None:
            raise click.BadParameter(f'expected comma-separated integers or ranges like 0,1,4-6, got "{s}"')
        first = int(match.group(1))
        values.extend(range(first, int(match.group(2) or first) + 1))
    if not values:
        raise click.BadParameter(f'"{s}" is an empty range')
    return values

#----------------------------------------------------------------------------

def content_z(G, seed):
    """The content code of a seed: [1, z_dim], drawn as gen_images.py draws it, so a seed means the same content in both."""
    return torch.from_numpy(np.random.RandomState(seed).randn(1, G.z_dim)).to(torch.float32)

def loop_timing(num_frames, speed, key_distance):
    """(step, period) of a seamless loop of `num_frames` frames; step is an exact Fraction.

    The motion period must be a whole number of key distances, so it is the multiple of `key_distance`
    nearest to num_frames * speed (halves round up; at least one), and the frames are spread evenly over
    exactly one period: the step from the last frame back to the first equals every other step.
    """
    period = max(1, int(num_frames * speed / key_distance + 0.5)) * key_distance
    return Fraction(period, num_frames), period

#----------------------------------------------------------------------------

def generate_frames(G, videos, num_frames, batch=16, start=0.0, step=1.0, motion_period=None, truncation_psi=1.0, label=None):
    """Yield the frames of several videos at times t = start + i * step (i = 0 .. num_frames-1) in chunks.

    videos: list of (content seed, motion seed). Each chunk is the generator's output, float in [-1, 1]
    on its device, [V, F_chunk, C, H, W]: max(1, batch // V) consecutive frames of every video, computed
    in one forward pass (video_io.render_video_chunks). Times are float64 and `step` is used as an exact
    fraction (a loop's, from loop_timing), so frame i lands on start + i * step however long the video.
    """
    device = next(G.parameters()).device
    V = len(videos)
    z = torch.cat([content_z(G, seed) for seed, _ in videos]).to(device)     # [V, z_dim]
    c = torch.zeros([V, G.c_dim], device=device) if label is None else label.to(device).expand(V, -1)
    step = Fraction(step)   # exact: a float's fraction has a power-of-two denominator
    t = start + torch.arange(num_frames, dtype=torch.float64) * step.numerator / step.denominator # [num_frames]
    yield from video_io.render_video_chunks(G, z, c, t, [seed for _, seed in videos], max(1, batch // V),
        truncation_psi=truncation_psi, motion_period=motion_period)

def stream_video(writer, chunks, grid, num_frames, desc):
    """Quantise each chunk of clips, tile it into `grid` and stream it into `writer`, encoding in a thread of its own while
    the next chunk is generated (video_io.stream_clips), with a progress bar in frames/s."""
    with tqdm.tqdm(total=num_frames, unit='frame', desc=desc, leave=True) as bar:
        video_io.stream_clips(writer, chunks, grid, progress=bar.update)

#----------------------------------------------------------------------------

def plan_outputs(seeds, motion_seeds, grid, decompose):
    """The videos to write: a list of (name, [(content seed, motion seed), ...], (cols, rows))."""
    if decompose:
        motion = motion_seeds or seeds
        pairs = [(s, m) for s in seeds for m in motion]    # row = content, column = motion
        return [(f'decompose{len(motion)}x{len(seeds)}-seed{seeds[0]:04d}-motion{motion[0]:04d}', pairs, (len(motion), len(seeds)))]
    pairs = [(s, m) for s in seeds for m in (motion_seeds or [s])]
    if grid is not None:
        if len(pairs) != grid[0] * grid[1]:
            raise click.BadParameter(f'a {grid[0]}x{grid[1]} grid holds {grid[0] * grid[1]} videos, but the seeds give {len(pairs)}', param_hint='--grid')
        return [(f'grid{grid[0]}x{grid[1]}-seed{seeds[0]:04d}', pairs, grid)]
    name = lambda s, m: f'seed{s:04d}' + ('' if motion_seeds is None else f'-motion{m:04d}')
    return [(name(s, m), [(s, m)], (1, 1)) for s, m in pairs]

def default_seeds(grid, motion_seeds, decompose):
    """Content seeds when --seeds is not given: enough to fill the grid, 0-3 for a decomposition, else 0."""
    if decompose:
        return list(range(4))
    if grid is not None and motion_seeds is None:
        return list(range(grid[0] * grid[1]))
    return [0]

def make_label(G, class_idx):
    """One-hot [1, c_dim] label; required for a conditional network."""
    if G.c_dim == 0:
        if class_idx is not None:
            print('warn: --class ignored: the network is unconditional', file=sys.stderr)
        return None
    if class_idx is None or not 0 <= class_idx < G.c_dim:
        raise click.BadParameter(f'a conditional network needs --class in [0, {G.c_dim - 1}]', param_hint='--class')
    label = torch.zeros([1, G.c_dim])
    label[0, class_idx] = 1
    return label

def prepare_outdir(outdir):
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as err:
        raise click.ClickException(f'--outdir: cannot create {outdir}: {err.strerror or err}')
    if not os.access(outdir, os.W_OK | os.X_OK):
        raise click.ClickException(f'--outdir: {outdir} is not writable')

#----------------------------------------------------------------------------

@click.command(help=__doc__)
@click.option('--network',     help='Network pickle or weights-only checkpoint (path or URL), or latest: the newest snapshot in runs/', metavar='PKL', required=True)
@click.option('--frames',      help='Frames per video', type=click.IntRange(min=1), default=128, show_default=True)
@click.option('--seeds',       help='Content seeds, e.g. 0,1,4-6 (default: 0, or as many as --grid holds)', type=parse_range, metavar='LIST')
@click.option('--motion-seed', 'motion_seeds', help='Motion seeds (default: each video\'s content seed); several give one video per pair', type=parse_range, metavar='LIST')
@click.option('--grid',        help='One video tiling all videos, COLSxROWS', type=video_io.parse_grid, metavar='COLSxROWS')
@click.option('--decompose',   help='One video: rows share content (--seeds), columns share motion (--motion-seed)', is_flag=True)
@click.option('--loop',        help='A seamless loop: the last frame flows into the first', is_flag=True)
@click.option('--trunc',       'truncation_psi', help='Truncation psi', type=float, default=1, show_default=True)
@click.option('--class',       'class_idx', help='Class label of a conditional network', type=click.IntRange(min=0))
@click.option('--start-frame', help='Time of the first frame, in frames', type=click.FloatRange(min=0), default=0, show_default=True)
@click.option('--speed',       help='Time step between frames, in frames of the training data', type=click.FloatRange(min=0, min_open=True), default=1, show_default=True)
@click.option('--batch',       help='Frames per forward pass', type=click.IntRange(min=1), default=16, show_default=True)
@click.option('--fps',         help=f'Frame rate (default: the training data\'s if recorded, else {video_io.DEFAULT_FPS})', type=click.FloatRange(min=0, min_open=True))
@click.option('--crf',         help='H.264 quality: 0 lossless .. 51 worst', type=click.IntRange(0, 51), default=18, show_default=True)
@click.option('--format',      'video_format', help='mp4, or png (a folder of frames per video)', type=click.Choice(['mp4', 'png']), default='mp4', show_default=True)
@click.option('--outdir',      help='Where to write the videos', metavar='DIR', default='out', show_default=True)
def main(network, frames, seeds, motion_seeds, grid, decompose, loop, truncation_psi, class_idx, start_frame, speed, batch, fps, crf, video_format, outdir):
    if decompose and grid is not None:
        raise click.BadParameter('--decompose lays out its own grid; leave --grid out', param_hint='--grid')
    seeds = seeds or default_seeds(grid, motion_seeds, decompose)
    outputs = plan_outputs(seeds, motion_seeds, grid, decompose)
    prepare_outdir(outdir)

    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    try:
        network = checkpoint.resolve_network(network)
        print(f'Loading networks from "{network}"...', file=sys.stderr)
        snapshot = checkpoint.load_network(network, device=device)
        G = checkpoint.generator_of(snapshot, network, needed_by='gen_video.py')
    except checkpoint.NetworkLoadError as err:
        raise click.ClickException(str(err))
    label = make_label(G, class_idx)
    fps = fps or snapshot.get('fps') or video_io.DEFAULT_FPS # The training data's rate, when the snapshot records it.
    step, period = speed, None
    if loop:
        step, period = loop_timing(frames, speed, G.motion_z_distance)
        print(f'--loop: {frames} frames span one motion period of {period} frames (a multiple of the key distance {G.motion_z_distance}), '
            f'step {float(step):g} per frame', file=sys.stderr)

    for name, videos, video_grid in outputs:
        path = os.path.join(outdir, f'{name}.mp4' if video_format == 'mp4' else name)
        chunks = generate_frames(G, videos, frames, batch=batch, start=start_frame, step=step, motion_period=period,
            truncation_psi=truncation_psi, label=label)
        try:
            stream_video(video_io.open_video(path, video_format, fps=fps, crf=crf), chunks, video_grid, frames, desc=name)
        except OSError as err:
            raise click.ClickException(f'cannot write {path}: {err.strerror or err}')
        print(path)

#----------------------------------------------------------------------------

def run(args=None):
    """Run the CLI; every usage or input error ends in one line on stderr and exit status 1."""
    try:
        main.main(args, standalone_mode=False)
    except click.ClickException as err:
        sys.exit(f'error: {err.format_message()}')
    except click.exceptions.Abort:
        sys.exit('aborted')

if __name__ == '__main__':
    run()

#----------------------------------------------------------------------------
