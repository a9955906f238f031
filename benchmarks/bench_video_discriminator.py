"""Benchmark the TSM video discriminator against the upstream image discriminator, forward + backward.

All discriminators see the same frames in the same process: the image Discriminator scores every frame,
the VideoDiscriminator scores clips of --frames frames, with TSM and without it (same fusion and time
conditioning), so the last column isolates the cost of the temporal shift. Steps alternate between the
networks, so that a change in machine load affects all alike. Prints ms per frame (median).
"""

import argparse
import os
import statistics
import sys
import time

_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _root not in sys.path:
    sys.path.insert(0, _root)

import svc_plugin # puts the upstream layer on sys.path
import torch
from svc_plugin.discriminator import VideoDiscriminator
from training import networks_stylegan2

#----------------------------------------------------------------------------

def time_step(D, img, t, device):
    """Seconds per frame of D(img) followed by backward of its sum (gradients w.r.t. weights and frames)."""
    clock = time.perf_counter if device.type == 'cuda' else time.process_time
    img = img.detach().requires_grad_(True)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    start = clock()
    logits = D(img, None) if t is None else D(img, None, t)
    logits.sum().backward()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    D.zero_grad(set_to_none=True)
    return (clock() - start) / img.shape[0]

def compare(nets, img, reps, device):
    """Seconds per frame of each (name, D, times), (median, best), after one warm-up step each, steps interleaved."""
    times = {name: [] for name, _D, _t in nets}
    for rep in range(reps + 1):
        for name, D, clip_t in nets:
            seconds = time_step(D, img, clip_t, device)
            if rep > 0:
                times[name].append(seconds)
    return {name: (statistics.median(values), min(values)) for name, values in times.items()}

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--res', type=int, nargs='+', default=[64], help='frame resolutions')
    parser.add_argument('--cbase', type=int, default=4096, help='channel_base (the paper: 16384 at 256 px, 64 channels in the first block; 4096 at 64 px gives the same)')
    parser.add_argument('--cmax', type=int, default=256, help='channel_max (512 = the paper\'s D)')
    parser.add_argument('--clips', type=int, default=4, help='clips per step')
    parser.add_argument('--frames', type=int, default=3, help='frames per clip')
    parser.add_argument('--fuse', choices=['mean', 'concat'], default='mean', help='frame fusion of the video D')
    parser.add_argument('--reps', type=int, default=10, help='timed steps per network (median and best reported)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    parser.add_argument('--threads', type=int, default=None, help='CPU threads (default: torch\'s choice)')
    args = parser.parse_args()
    if min(args.cbase, args.cmax, args.clips, args.reps) < 1 or args.frames < 2:
        parser.error('--cbase, --cmax, --clips and --reps must be positive, --frames at least 2')
    device = torch.device(args.device)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    clock = 'wall time' if device.type == 'cuda' else 'process CPU time'
    print(f'device={device} ({torch.get_num_threads()} threads, {clock}), cbase={args.cbase}, cmax={args.cmax}, '
        f'{args.clips} clips x {args.frames} frames, fuse={args.fuse}, reps={args.reps}')
    print(f'{"resolution":>10} {"statistic":>9} {"image D ms/frame":>17} {"video D no TSM":>15} {"video D TSM":>12} '
        f'{"TSM vs image D":>15} {"TSM vs no TSM":>14}')
    for res in args.res:
        torch.manual_seed(0)
        common = dict(c_dim=0, img_resolution=res, img_channels=3, channel_base=args.cbase, channel_max=args.cmax)
        D_image = networks_stylegan2.Discriminator(**common).to(device)
        D_plain = VideoDiscriminator(**common, num_frames=args.frames, tsm=False, fuse=args.fuse).to(device)
        D_tsm = VideoDiscriminator(**common, num_frames=args.frames, tsm=True, fuse=args.fuse).to(device)
        img = torch.randn([args.clips * args.frames, 3, res, res], device=device)
        t = torch.sort(torch.randint(0, 33, [args.clips, args.frames], device=device).float(), dim=1).values
        seconds = compare([('image', D_image, None), ('plain', D_plain, t), ('tsm', D_tsm, t)], img, args.reps, device)
        for i, statistic in enumerate(['median', 'best']):
            image, plain, tsm = (seconds[name][i] * 1e3 for name in ['image', 'plain', 'tsm'])
            print(f'{res:>10} {statistic:>9} {image:>17.2f} {plain:>15.2f} {tsm:>12.2f} '
                f'{100 * (tsm / image - 1):>+14.1f}% {100 * (tsm / plain - 1):>+13.1f}%')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
