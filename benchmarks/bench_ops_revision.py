"""Benchmark the plain (CPU) path of the ops against the same ops at an earlier git revision, interleaved in one process.

The op files (upfirdn2d, bias_act, filtered_lrelu, conv2d_resample) of --rev are read with `git show` into a
temporary package; their public functions are swapped into torch_utils.ops for the 'then' steps, so both run the
same networks and inputs, step after step, and a change in machine load affects both alike. Rows: each op at the
shapes StyleGAN2/3 use it with (forward + backward), a StyleGAN3-T G forward + backward, and a StyleGAN2 D
forward + backward + R1. Prints the fastest ms of each, now / then of the fastest and of the medians (below 1: now is
faster). By default one thread and the process's CPU time, which other work on a shared machine disturbs far less
than wall-clock time (it still inflates some steps: the fastest of many is the steadier figure).
"""

import argparse
import contextlib
import importlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time

_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (_root, os.path.join(_root, 'third_party', 'stylegan3')):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import numpy as np
import torch

from torch_utils.ops import bias_act, conv2d_resample, filtered_lrelu, upfirdn2d
from training import networks_stylegan2, networks_stylegan3

OPS = dict(upfirdn2d=upfirdn2d, bias_act=bias_act, filtered_lrelu=filtered_lrelu, conv2d_resample=conv2d_resample)
OPS_DIR = 'third_party/stylegan3/torch_utils/ops'

#----------------------------------------------------------------------------

def load_revision(rev, tmpdir):
    """The op modules of git revision `rev` as a package of their own (importing one another, not today's)."""
    package = f'ops_{re.sub(r"[^0-9A-Za-z]", "_", rev)}'
    os.makedirs(os.path.join(tmpdir, package))
    open(os.path.join(tmpdir, package, '__init__.py'), 'w').close()
    for name in OPS:
        source = subprocess.run(['git', 'show', f'{rev}:{OPS_DIR}/{name}.py'], cwd=_root, check=True, capture_output=True, text=True).stdout
        source = re.sub(r'from \.(\w*) import', r'from torch_utils.ops.\1 import', source).replace('torch_utils.ops. import', 'torch_utils.ops import')
        source = re.sub(rf'from torch_utils\.ops import ({"|".join(OPS)})\b', rf'from {package} import \1', source)
        source = re.sub(rf'from torch_utils\.ops\.({"|".join(OPS)}) import', rf'from {package}.\1 import', source)
        with open(os.path.join(tmpdir, package, f'{name}.py'), 'w') as f:
            f.write(source)
    sys.path.insert(0, tmpdir)
    return {name: importlib.import_module(f'{package}.{name}') for name in OPS}

@contextlib.contextmanager
def swapped_in(modules):
    """Today's op modules with the public functions of `modules` in place of their own."""
    saved = []
    for name, module in modules.items():
        for attr, value in vars(module).items():
            if callable(value) and not attr.startswith('_') and getattr(value, '__module__', None) == module.__name__:
                saved.append((OPS[name], attr, getattr(OPS[name], attr)))
                setattr(OPS[name], attr, value)
    try:
        yield
    finally:
        for module, attr, value in saved:
            setattr(module, attr, value)

#----------------------------------------------------------------------------

def op_steps(batch, scale):
    """name -> step (forward + backward of one op call) at shapes of StyleGAN2/3 layers; `scale` multiplies channels."""
    gen = torch.Generator().manual_seed(0)
    rand = lambda *shape: torch.randn(shape, generator=gen)
    C = max(1, int(128 * scale))
    f4 = upfirdn2d.setup_filter([1, 3, 3, 1])
    fu = torch.as_tensor(np.kaiser(12, 4.0) / np.kaiser(12, 4.0).sum(), dtype=torch.float32) # StyleGAN3-T's up-2 filter length
    fd = torch.as_tensor(np.kaiser(12, 4.0) / np.kaiser(12, 4.0).sum(), dtype=torch.float32)
    x32, x64 = rand(batch, C, 32, 32), rand(batch, C, 64, 64)
    w = rand(C, C, 3, 3) / 30
    b = rand(C)
    def fwd_bwd(fn, *inputs):
        def step():
            leaves = [t.detach().requires_grad_(True) for t in inputs]
            fn(*leaves).square().mean().backward()
        return step
    return {
        'upfirdn2d up2 4-tap': fwd_bwd(lambda x: upfirdn2d.upsample2d(x, f4), x32),
        'upfirdn2d down2 4-tap': fwd_bwd(lambda x: upfirdn2d.downsample2d(x, f4), x64),
        'bias_act lrelu': fwd_bwd(lambda x, b: bias_act.bias_act(x, b, act='lrelu', clamp=256), x64, b),
        'filtered_lrelu up2 down2': fwd_bwd(lambda x, b: filtered_lrelu.filtered_lrelu(x, fu, fd, b, up=2, down=2, padding=11, clamp=256), x32, b),
        'filtered_lrelu up2 down1': fwd_bwd(lambda x, b: filtered_lrelu.filtered_lrelu(x, fu, None, b, up=2, down=1, padding=[11, 10, 11, 10], clamp=256), x32, b),
        'conv2d_resample up2': fwd_bwd(lambda x, w: conv2d_resample.conv2d_resample(x, w, f=f4, up=2, padding=1), x32, w),
        'conv2d_resample down2': fwd_bwd(lambda x, w: conv2d_resample.conv2d_resample(x, w, f=f4, down=2, padding=1), x64, w),
    }

def network_steps(res, batch, cbase, cmax):
    """name -> step: StyleGAN3-T G forward + backward, StyleGAN2 D forward + backward + R1 (the penalty's backward)."""
    torch.manual_seed(0)
    common = dict(c_dim=0, img_resolution=res, img_channels=3, channel_base=cbase, channel_max=cmax)
    G = networks_stylegan3.Generator(z_dim=512, w_dim=512, **common)
    D = networks_stylegan2.Discriminator(**common)
    z = torch.randn([batch, 512])
    img = torch.randn([batch, 3, res, res])
    def g_step():
        G(z, None).square().mean().backward()
        G.zero_grad(set_to_none=True)
    def d_step():
        x = img.detach().requires_grad_(True)
        logits = D(x, None)
        (grad,) = torch.autograd.grad(logits.sum(), [x], create_graph=True)
        (grad.square().sum() + logits.sum()).backward()
        D.zero_grad(set_to_none=True)
    return {f'G fwd+bwd {res}px': g_step, f'D fwd+bwd+R1 {res}px': d_step}

#----------------------------------------------------------------------------

def seconds(step, clock):
    start = clock()
    step()
    return clock() - start

def compare(steps, then_modules, reps, clock):
    """Print the fastest ms of each step now and then, and their ratios; the two alternate step by step (which goes first
    alternating too) after one warm-up each."""
    print(f'{"":>28} {"now ms":>9} {"then ms":>9} {"now/then min":>13} {"of medians":>13}')
    for name, step in steps.items():
        now, then = [], []
        for rep in range(reps + 1):
            with swapped_in(then_modules if rep % 2 else {}): # Which runs first alternates: no bias for either.
                first = seconds(step, clock)
            with swapped_in({} if rep % 2 else then_modules):
                second = seconds(step, clock)
            t_now, t_then = (second, first) if rep % 2 else (first, second)
            if rep > 0:
                now.append(t_now)
                then.append(t_then)
        ratio = statistics.median(now) / statistics.median(then)
        print(f'{name:>28} {min(now) * 1e3:>9.2f} {min(then) * 1e3:>9.2f} {min(now) / min(then):>12.2f}x {ratio:>12.2f}x', flush=True)

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--rev', default='2b39810', help='git revision to compare with (default: the ops before the GPU work)')
    parser.add_argument('--res', type=int, default=64, help='resolution of the networks')
    parser.add_argument('--cbase', type=int, default=8192, help='channel_base of the networks')
    parser.add_argument('--cmax', type=int, default=128, help='channel_max of the networks')
    parser.add_argument('--batch', type=int, default=4, help='batch of the networks and the ops')
    parser.add_argument('--scale', type=float, default=0.5, help='channels of the op rows, times 128')
    parser.add_argument('--reps', type=int, default=15, help='timed steps per path')
    parser.add_argument('--threads', type=int, default=1, help='torch threads')
    parser.add_argument('--clock', choices=['cpu', 'wall'], default='cpu', help="the process's CPU time or wall-clock time")
    parser.add_argument('--skip', default='', help='comma-separated: ops, networks')
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    clock = time.process_time if args.clock == 'cpu' else time.perf_counter
    steps = {}
    if 'ops' not in args.skip:
        steps.update(op_steps(args.batch, args.scale))
    if 'networks' not in args.skip:
        steps.update(network_steps(args.res, args.batch, args.cbase, args.cmax))
    print(f'CPU, {torch.get_num_threads()} threads, {args.clock} time; ops of {args.rev} ("then") vs the working tree ("now"), '
        f'batch {args.batch}, reps {args.reps}', flush=True)
    with tempfile.TemporaryDirectory() as tmpdir:
        compare(steps, load_revision(args.rev, tmpdir), args.reps, clock)

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
