"""Tests for benchmarks/triton_sweep.py: the Triton calls of a step are recorded per table key, each key's
candidate tiles timed, and the fastest written where triton_select.tile_config reads it."""

import json
import os
import subprocess
import sys

import torch

from benchmarks import triton_sweep
from torch_utils.ops import bias_act, filtered_lrelu, triton_select, upfirdn2d
from tests.test_filtered_lrelu import _lowpass

#----------------------------------------------------------------------------

def _tiny_step(small, device):
    """One call of each Triton op, forward and backward, at a few pixels."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn([1, 2, 8, 8], generator=g).requires_grad_(True)
    b = torch.zeros([2], requires_grad=True)
    y = bias_act.bias_act(upfirdn2d.downsample2d(x, upfirdn2d.setup_filter([1, 3, 3, 1])), b, act='lrelu', clamp=256)
    z = filtered_lrelu.filtered_lrelu(x, _lowpass(12), _lowpass(12), b, up=2, down=2, padding=[9, 8, 9, 8], clamp=256)
    (y.square().sum() + z.square().sum()).backward()

def test_the_sweep_writes_the_fastest_tile_of_every_key_a_step_uses(tmp_path, monkeypatch, triton_interpreter):
    monkeypatch.setenv(triton_select.ENV, 'triton')
    monkeypatch.setattr(triton_sweep, 'run_step', _tiny_step)
    problems = triton_sweep.record_problems(small=True, device=torch.device('cpu'))
    assert set(problems) == {'filtered_lrelu_fwd', 'filtered_lrelu_bwd', 'upfirdn2d', 'bias_act'}
    assert set(problems['bias_act']) == {'forward-lrelu-bias-float32', 'grad-lrelu-bias-float32'}
    results = triton_sweep.sweep(problems, torch.device('cpu'), reps=1, max_configs=2)
    table = tmp_path / 'triton_configs.json'
    table.write_text(json.dumps({'sm80': {'upfirdn2d': {'kept': {'BLOCK': 64}}}}))
    triton_sweep.write_table(results, 'interpreter', str(table))
    written = json.loads(table.read_text())
    assert written['sm80'] == {'upfirdn2d': {'kept': {'BLOCK': 64}}} # Other architectures' entries stay.
    monkeypatch.setattr(triton_select, '_table', lambda: written)
    for kernel, keys in problems.items():
        assert set(written['interpreter'][kernel]) == set(keys)
        for key, (best, ms, ran, calls) in results[kernel].items():
            assert best in triton_sweep.candidates(kernel)[:2] and ran == 2 and calls == len(keys[key]) and ms > 0
            assert triton_select.tile_config(kernel, key, dict(extra=1)) == dict(best, extra=1)
    assert '| filtered_lrelu_bwd |' in triton_sweep.markdown(results, 'CPU')

def test_the_sweep_refuses_to_run_without_a_gpu_or_the_interpreter_in_one_line():
    env = {k: v for k, v in os.environ.items() if k != 'TRITON_INTERPRET'}
    result = subprocess.run([sys.executable, 'benchmarks/triton_sweep.py'], env=env, capture_output=True, text=True, timeout=120,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert result.returncode != 0 and result.stderr.strip().splitlines() == ['triton_sweep: needs Triton and a CUDA GPU (or TRITON_INTERPRET=1 with --small)']

#----------------------------------------------------------------------------
