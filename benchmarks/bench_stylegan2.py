"""Benchmark the StyleGAN2 path (generator, discriminator, R1 penalty): the project's ops against the plain reference ops.

Rows: G forward + backward, D forward + backward, the R1 penalty (D's input gradient and its backward),
and a whole iteration of the four loss phases. Both paths run the same networks_stylegan2.Generator/
Discriminator in the same process;
tests/oracle_ops.oracle_ops() swaps upfirdn2d, filtered_lrelu and bias_act for their plain formulations
(zero-stuffing resampling, unfused bias + activation + gain + clamp). The video discriminator is this
discriminator applied to every frame, so its rows are the cost of every video training step.
Prints ms per step and the speed-up (reference time / project time) of each row.
"""

import argparse
import os
import sys
import time

_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (_root, os.path.join(_root, 'third_party', 'stylegan3')):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import torch
from training import networks_stylegan2
from training.loss import StyleGAN2Loss
from tests import oracle_ops

#----------------------------------------------------------------------------

def generator_step(G, D, z, c, img):
    """G forward + backward: the image and the gradient of a loss on it w.r.t. every parameter of G."""
    G(z, c).square().mean().backward()

def discriminator_step(G, D, z, c, img):
    """D forward + backward on a batch of images."""
    D(img, c).sum().backward()

def r1_step(G, D, z, c, img):
    """R1: D's gradient w.r.t. its input (with a graph), then the backward of its squared norm."""
    x = img.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(D(x, c).sum(), [x], create_graph=True)
    grad.square().sum().backward()

def training_step(G, D, z, c, img):
    """One iteration of StyleGAN2Loss: the phases Gmain, Greg (path length), Dmain and Dreg (R1), once each."""
    loss = StyleGAN2Loss(device=img.device, G=G, D=D, r1_gamma=1, pl_weight=2)
    for phase in ['Gmain', 'Greg', 'Dmain', 'Dreg']:
        G.requires_grad_(phase.startswith('G')) # Only the trained network requires gradients, as in the training loop.
        D.requires_grad_(phase.startswith('D'))
        loss.accumulate_gradients(phase=phase, real_img=img, real_c=c, gen_z=z, gen_c=c, gain=1, cur_nimg=0)
    G.requires_grad_(True)
    D.requires_grad_(True)

STEPS = {'G fwd+bwd': generator_step, 'D fwd+bwd': discriminator_step, 'R1': r1_step, 'iteration': training_step}

#----------------------------------------------------------------------------

def time_step(step, G, D, z, c, img, device):
    """Seconds of one step, gradients cleared afterwards."""
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    step(G, D, z, c, img)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    elapsed = time.perf_counter() - start
    G.zero_grad(set_to_none=True)
    D.zero_grad(set_to_none=True)
    return elapsed

def compare_paths(step, G, D, z, c, img, reps, device):
    """Best seconds per step (project, reference). The two paths alternate step by step, after one
    warm-up step each, so that a change in machine load affects both alike; the fastest of the reps is
    the one least disturbed by other work on the machine."""
    ours, reference = [], []
    for rep in range(reps + 1):
        t_ours = time_step(step, G, D, z, c, img, device)
        with oracle_ops.oracle_ops():
            t_reference = time_step(step, G, D, z, c, img, device)
        if rep > 0:
            ours.append(t_ours)
            reference.append(t_reference)
    return min(ours), min(reference)

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--res', type=int, default=64, help='image resolution')
    parser.add_argument('--cbase', type=int, default=8192, help='channel_base (32768 = the paper\'s stylegan2)')
    parser.add_argument('--cmax', type=int, default=256, help='channel_max (512 = the paper\'s stylegan2)')
    parser.add_argument('--batch', type=int, default=4, help='images per step')
    parser.add_argument('--reps', type=int, default=7, help='timed steps per path and row (best reported)')
    parser.add_argument('--threads', type=int, default=None, help='CPU threads (default: torch default)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args()
    if args.res < 4 or args.res & (args.res - 1) or min(args.cbase, args.cmax, args.batch, args.reps) < 1:
        parser.error('--res must be a power of two >= 4; --cbase, --cmax, --batch and --reps must be positive')
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)

    torch.manual_seed(0)
    kwargs = dict(c_dim=0, img_resolution=args.res, img_channels=3, channel_base=args.cbase, channel_max=args.cmax)
    G = networks_stylegan2.Generator(z_dim=512, w_dim=512, **kwargs).to(device)
    D = networks_stylegan2.Discriminator(**kwargs).to(device)
    z = torch.randn([args.batch, G.z_dim], device=device)
    c = torch.zeros([args.batch, 0], device=device)
    img = torch.randn([args.batch, 3, args.res, args.res], device=device)

    print(f'device={device} ({torch.get_num_threads()} threads), res={args.res}, cbase={args.cbase}, cmax={args.cmax}, batch={args.batch}, reps={args.reps}')
    print(f'{"step":>10} {"project ms":>11} {"reference ms":>13} {"speed-up":>9}')
    for name, step in STEPS.items():
        ours, reference = compare_paths(step, G, D, z, c, img, args.reps, device)
        print(f'{name:>10} {ours * 1e3:>11.1f} {reference * 1e3:>13.1f} {reference / ours:>8.2f}x')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
