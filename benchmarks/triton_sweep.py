"""Measure every candidate tile configuration of the ops' Triton kernels on every problem the paper's networks pose,
and write the fastest per problem into torch_utils/ops/triton_configs.json under this GPU's architecture.

The problems are recorded, not listed by hand: G (StyleGAN3-T) forward + backward and D (StyleGAN2) forward + backward
+ R1 of `gpu_check.py`'s paper config run once with STYLESV_OPS=triton, and every call that reaches a Triton kernel is
kept with its shapes and arguments. Calls that share a table key (the kernels' own `config_key`s) are timed together,
so a key's configuration is the one fastest over all the calls it serves. A configuration that does not compile or
launch on this GPU (registers, shared memory) is skipped. Run once per GPU architecture and commit the table; training
then reads it and never autotunes:

    python benchmarks/triton_sweep.py --out triton_sweep.md        # on the GPU; --small: tiny shapes (also on CPU
                                                                    # under TRITON_INTERPRET=1, as the tests do)
"""

import argparse
import collections
import json
import os
import statistics
import sys

_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (_root, os.path.join(_root, 'third_party', 'stylegan3'), os.path.dirname(os.path.abspath(__file__))):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import torch
import gpu_check
from timing import timed
from torch_utils.ops import triton_select

#----------------------------------------------------------------------------

def record_problems(small, device):
    """{kernel: {table key: [zero-argument function of a config -> function running one call]}} of every Triton
    call that the paper's G and D make in a training step."""
    from torch_utils.ops import bias_act_triton, filtered_lrelu_triton, upfirdn2d_triton
    problems = collections.defaultdict(lambda: collections.defaultdict(list))

    def flrelu_forward(x, b, fu, fd, up, down, padding, gain, slope, clamp, flip_filter, write_code, config=None):
        common = dict(fu=fu, fd=fd, up=up, down=down, padding=padding, gain=gain, slope=slope, flip_filter=flip_filter)
        key = filtered_lrelu_triton.config_key(x, fu, fd, up, down)
        x_, b_ = torch.randn_like(x), None if b is None else b.detach().clone()
        problems['filtered_lrelu_fwd'][key].append(lambda config: lambda: original['flrelu'](
            x_, b_, clamp=clamp, write_code=False, config=config, **common))
        y, code = original['flrelu'](x_, b_, clamp=clamp, write_code=True, **common)
        dy = torch.ones_like(y)
        problems['filtered_lrelu_bwd'][key].append(lambda config: lambda: filtered_lrelu_triton.backward(
            dy, code, x_, need_db=b_ is not None, config=config, **common))
        return original['flrelu'](x, b, fu, fd, up, down, padding, gain, slope, clamp, flip_filter, write_code, config)

    def fir_pass(x, taps, up, down, pad, config=None):
        key = upfirdn2d_triton.config_key(x, taps, up, down)
        x_ = torch.randn_like(x)
        problems['upfirdn2d'][key].append(lambda config: lambda: original['fir'](x_, taps, up, down, pad, config))
        return original['fir'](x, taps, up, down, pad, config)

    def bias_act(x, b, dim, act, alpha, gain, clamp):
        if dim == 1 and x.ndim == 4 and clamp >= 0:
            for grad in (False, True):
                problems['bias_act'][bias_act_triton.config_key(x, act, b is not None, grad)].append(lambda config, grad=grad, shape=tuple(x.shape), dtype=x.dtype:
                    bias_act_triton.run_case(shape, dtype, act, config, grad=grad, device=device))
        return original['bias_act'](x, b, dim, act, alpha, gain, clamp)

    original = dict(flrelu=filtered_lrelu_triton.forward, fir=upfirdn2d_triton.fir_pass, bias_act=bias_act_triton.bias_act)
    filtered_lrelu_triton.forward, upfirdn2d_triton.fir_pass, bias_act_triton.bias_act = flrelu_forward, fir_pass, bias_act
    try:
        run_step(small, device)
    finally:
        filtered_lrelu_triton.forward, upfirdn2d_triton.fir_pass, bias_act_triton.bias_act = original.values()
    return problems

def run_step(small, device):
    """G forward + backward and D forward + backward + R1 of the paper's config, once."""
    G, D = gpu_check.paper_networks(small, device)
    _common, _G_kwargs, batch = gpu_check.paper_config(small)
    z = torch.randn([batch, G.z_dim], device=device)
    gpu_check.backward_and_clear(G, lambda: G(z, None).square().mean())
    x = torch.rand([batch, 3, G.img_resolution, G.img_resolution], device=device) * 2 - 1
    gpu_check.backward_and_clear(D, lambda: gpu_check.r1_objective(D, x))

#----------------------------------------------------------------------------

def candidates(kernel):
    from torch_utils.ops import bias_act_triton, filtered_lrelu_triton, upfirdn2d_triton
    module = dict(filtered_lrelu_fwd=filtered_lrelu_triton, filtered_lrelu_bwd=filtered_lrelu_triton,
        upfirdn2d=upfirdn2d_triton, bias_act=bias_act_triton)[kernel]
    return module.CANDIDATE_CONFIGS

def time_config(calls, config, device, reps):
    """Median seconds of running every call of a key once with `config`; None where it fails to compile or launch."""
    try:
        fns = [make(config) for make in calls]
        run = lambda: [fn() for fn in fns]
        run()
        return statistics.median(timed(run, device) for _ in range(reps))
    except Exception: # Triton's compile and launch errors (out of resources) have no common base class.
        return None

def sweep(problems, device, reps, max_configs):
    """{kernel: {key: (fastest config, its ms over the key's calls, configs that ran, calls)}}."""
    results = {}
    for kernel, keys in problems.items():
        results[kernel] = {}
        for key, calls in keys.items():
            timings = [(time_config(calls, config, device, reps), config) for config in candidates(kernel)[:max_configs]]
            ran = [(t, config) for t, config in timings if t is not None]
            if ran:
                t, best = min(ran, key=lambda item: item[0])
                results[kernel][key] = (best, t * 1e3, len(ran), len(calls))
    return results

def write_table(results, arch, path):
    """Merge the winners into the committed table under `arch`, written under a temporary name and renamed."""
    with open(path, encoding='utf-8') as f:
        table = json.load(f)
    for kernel, keys in results.items():
        table.setdefault(arch, {}).setdefault(kernel, {}).update({key: best for key, (best, *_rest) in keys.items()})
    with open(path + '.tmp', 'w', encoding='utf-8') as f:
        json.dump(table, f, indent=1, sort_keys=True)
        f.write('\n')
    os.replace(path + '.tmp', path)

def markdown(results, device_name):
    lines = [f'Triton tile sweep on {device_name}', '', '| kernel | key | calls | configs run | best config | ms |', '| --- | --- | --- | --- | --- | --- |']
    for kernel, keys in results.items():
        for key, (best, ms, ran, calls) in sorted(keys.items()):
            lines.append(f'| {kernel} | {key} | {calls} | {ran} | {json.dumps(best, sort_keys=True)} | {ms:.3f} |')
    return '\n'.join(lines) + '\n'

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--small', action='store_true', help='tiny shapes, a few configs (a check of the script itself)')
    parser.add_argument('--reps', type=int, default=5, help='timed repetitions per configuration')
    parser.add_argument('--table', default=os.path.join(_root, 'third_party', 'stylegan3', 'torch_utils', 'ops', 'triton_configs.json'))
    parser.add_argument('--out', help='also write the markdown table here')
    args = parser.parse_args()
    device = gpu_check.device_of(torch)
    if not triton_select.available() or (device.type != 'cuda' and not triton_select.interpreting()):
        sys.exit('triton_sweep: needs Triton and a CUDA GPU (or TRITON_INTERPRET=1 with --small)')
    os.environ[triton_select.ENV] = 'triton'
    gpu_check.set_backends(torch)
    problems = record_problems(args.small, device)
    results = sweep(problems, device, reps=1 if args.small else args.reps, max_configs=2 if args.small else None)
    arch = triton_select._arch(device)
    write_table(results, arch, args.table)
    text = markdown(results, torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU (Triton interpreter)')
    print(text)
    if args.out:
        with open(args.out, 'w', encoding='utf-8') as f:
            f.write(text)

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
