"""Benchmark the cost of motion: VideoGenerator against the image Generator of the same config, fwd+bwd per frame.

Both generators run in the same process on the same number of frames (clips x frames per clip; the
image generator sees them as independent images). Steps of the variants alternate, after one warm-up
step each, so that a change in machine load affects all alike. On CUDA a step is timed by the wall
clock; on the CPU by this process's CPU time, which other processes sharing the cores do not inflate.
Prints the median ms per frame and the cost over the image generator, for each low-rank setting asked for.
"""

import argparse
import os
import statistics
import sys
import time

_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (_root, os.path.join(_root, 'third_party', 'stylegan3')):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import torch
from training import networks_stylegan3
from svc_plugin import networks

#----------------------------------------------------------------------------

def clip_times(batch, frames, max_dist, device):
    """Training-like frame times [batch, frames]: sorted, real-valued, spread over at most max_dist frames."""
    start = torch.rand([batch, 1], device=device) * 1000
    return start + (torch.rand([batch, frames], device=device) * max_dist).sort(dim=1).values

def time_step(run, num_frames, device):
    """Seconds per frame of run() (forward, returns frames) followed by backward of their sum."""
    clock = time.perf_counter if device.type == 'cuda' else time.process_time
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    start = clock()
    run().sum().backward()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    return (clock() - start) / num_frames

def compare(variants, num_frames, reps, device):
    """Median seconds per frame of every variant, steps interleaved."""
    times = {name: [] for name in variants}
    for rep in range(reps + 1):
        for name, (G, run) in variants.items():
            seconds = time_step(run, num_frames, device)
            G.zero_grad(set_to_none=True)
            if rep > 0:
                times[name].append(seconds)
    return {name: statistics.median(t) for name, t in times.items()}

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--res', type=int, default=64, help='output resolution')
    parser.add_argument('--cbase', type=int, default=4096, help='channel_base (16384 = StyleSV\'s fmaps 0.5)')
    parser.add_argument('--cmax', type=int, default=128, help='channel_max (512 = StyleSV)')
    parser.add_argument('--batch', type=int, default=2, help='clips per step')
    parser.add_argument('--frames', type=int, default=3, help='frames per clip')
    parser.add_argument('--low-rank', type=int, nargs='+', default=[0, 4], help='ranks of the temporal modulation to time')
    parser.add_argument('--reps', type=int, default=5, help='timed steps per variant (median reported)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int, default=None, help='CPU threads (default: torch\'s choice)')
    args = parser.parse_args()
    if min(args.res, args.cbase, args.cmax, args.batch, args.frames, args.reps, args.threads or 1) < 1 or min(args.low_rank) < 0:
        parser.error('sizes, --reps and --threads must be positive, --low-rank non-negative')
    device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    # Image generator and its video conversions; motion on (mask and temporal gains non-zero) so nothing is skipped.
    torch.manual_seed(0)
    G_image = networks_stylegan3.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=args.res, img_channels=3,
        channel_base=args.cbase, channel_max=args.cmax).to(device).requires_grad_(True)
    z = torch.randn([args.batch, 512], device=device)
    t = clip_times(args.batch, args.frames, 32, device)
    z_frames = z.repeat_interleave(args.frames, dim=0)
    variants = {'image': (G_image, lambda: G_image(z_frames, None))}
    for rank in args.low_rank:
        G = networks.VideoGenerator.from_image_generator(G_image, low_rank=rank)
        with torch.no_grad():
            for name, param in G.named_parameters():
                if name.endswith('motion_mask') or name.endswith('temporal_gain'):
                    param.fill_(0.1)
        variants[f'video, low_rank={rank}'] = (G, lambda G=G: G(z, None, t=t))

    num_frames = args.batch * args.frames
    clock = 'wall clock' if device.type == 'cuda' else 'process CPU time'
    print(f'device={device} ({torch.get_num_threads()} threads, {clock}), res={args.res}, cbase={args.cbase}, cmax={args.cmax}, '
        f'{args.batch} clips x {args.frames} frames, reps={args.reps}')
    results = compare(variants, num_frames, args.reps, device)
    print(f'{"generator":>22} {"ms/frame fwd+bwd":>17} {"vs image":>9}')
    for name, seconds in results.items():
        print(f'{name:>22} {seconds * 1e3:>17.1f} {(seconds / results["image"] - 1) * 100:>+8.1f}%')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
