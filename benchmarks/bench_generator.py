"""Benchmark StyleGAN3-T generator forward + backward: the project's ops against the zero-stuffing oracle ops.

Both paths run the same networks_stylegan3.Generator in the same process; tests/oracle_ops.oracle_ops()
swaps upfirdn2d/filtered_lrelu/bias_act for their naive definitions. Prints ms per image and the speed-up.
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
from tests import oracle_ops

#----------------------------------------------------------------------------

def time_step(G, z, device):
    """Seconds per image of G(z) followed by backward of its sum."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    G(z, None).sum().backward()
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    G.zero_grad(set_to_none=True)
    return (time.perf_counter() - start) / z.shape[0]

#----------------------------------------------------------------------------

def compare_paths(G, batch, reps, device):
    """Median seconds per image (project, oracle). The two paths alternate step by step, after one
    warm-up step each, so that a change in machine load affects both alike."""
    z = torch.randn([batch, G.z_dim], device=device)
    ours, oracle = [], []
    for rep in range(reps + 1):
        t_ours = time_step(G, z, device)
        with oracle_ops.oracle_ops():
            t_oracle = time_step(G, z, device)
        if rep > 0:
            ours.append(t_ours)
            oracle.append(t_oracle)
    return statistics.median(ours), statistics.median(oracle)

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--res', type=int, nargs='+', default=[64, 256], help='output resolutions')
    parser.add_argument('--cbase', type=int, default=1024, help='channel_base (32768 = the paper\'s stylegan3-t)')
    parser.add_argument('--cmax', type=int, default=32, help='channel_max (512 = the paper\'s stylegan3-t)')
    parser.add_argument('--batch', type=int, default=2, help='images per step')
    parser.add_argument('--reps', type=int, default=5, help='timed steps per path (median reported)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args()
    if args.cbase < 1 or args.cmax < 1 or args.batch < 1 or args.reps < 1:
        parser.error('--cbase, --cmax, --batch and --reps must be positive')
    device = torch.device(args.device)

    print(f'device={device} ({torch.get_num_threads()} threads), cbase={args.cbase}, cmax={args.cmax}, batch={args.batch}, reps={args.reps}')
    print(f'{"resolution":>10} {"project ms/img":>15} {"oracle ms/img":>14} {"speed-up":>9}')
    for res in args.res:
        torch.manual_seed(0)
        G = networks_stylegan3.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=res, img_channels=3,
            channel_base=args.cbase, channel_max=args.cmax).to(device)
        ours, oracle = compare_paths(G, args.batch, args.reps, device)
        print(f'{res:>10} {ours * 1e3:>15.1f} {oracle * 1e3:>14.1f} {oracle / ours:>8.2f}x')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
