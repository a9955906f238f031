"""Tests for benchmarks/gpu_check.py: one table from isolated parts, each under a time budget."""

import json
import os
import subprocess
import sys

from benchmarks import gpu_check

#----------------------------------------------------------------------------

def test_the_table_shows_each_timing_beside_nvidias_with_the_ratio():
    rows = [dict(part='g_d', measure='R1', value=58.0, unit='ms', reference=116.0, note='a|b'),
            dict(part='env', measure='GPU', value='none', unit='', reference=None, note='')]
    lines = gpu_check.markdown_table(rows).splitlines()
    assert len(lines) == 4
    assert lines[2] == '| g_d | R1 | 58 | ms | 116 | 0.50x | a/b |'
    assert lines[3] == '| env | GPU | none |  |  |  |  |'

def test_nvidias_iteration_estimate_adds_up_its_figures_like_ours():
    assert abs(gpu_check.NVIDIA_H200_MS['iteration'] - 212.45) < 1e-9

def test_a_part_that_runs_past_its_budget_is_one_failed_row_with_its_rows_so_far(tmp_path, monkeypatch):
    monkeypatch.setitem(gpu_check.BUDGET_SEC, 'g_d', 0.01)
    args = type('Args', (), dict(small=True, profile=False))()
    rows = gpu_check.run_part('g_d', args, str(tmp_path))
    assert rows[-1]['measure'] == 'FAILED' and 'time budget' in rows[-1]['note']

def test_the_command_prints_one_table_and_writes_it_as_markdown_and_json(tmp_path):
    out = tmp_path / 'sub' / 'check.md'
    result = subprocess.run([sys.executable, 'benchmarks/gpu_check.py', '--small', '--parts=env', f'--out={out}'],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith('| part | measure |') and '| env | PyTorch |' in result.stdout
    assert out.read_text() == result.stdout
    assert {row['measure'] for row in json.loads((tmp_path / 'sub' / 'check.json').read_text())} >= {'PyTorch', 'Triton', 'GPU'}

def test_an_unknown_part_is_a_one_line_error():
    result = subprocess.run([sys.executable, 'benchmarks/gpu_check.py', '--parts=nope'],
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))), capture_output=True, text=True, timeout=60)
    assert result.returncode != 0 and 'Traceback' not in result.stderr and "unknown part 'nope'" in result.stderr

def test_the_formulations_of_the_ops_are_timed_side_by_side():
    rows = [dict(part='g_d_plain', measure='G inference', value=400.0, unit='ms', reference=38.0, note=''),
            dict(part='g_d', measure='G inference', value=68.0, unit='ms', reference=38.0, note=''),
            dict(part='g_d', measure='formulation', value='matrix', unit='', reference=None, note=''),
            dict(part='g_d_triton', measure='formulation', value='triton not available', unit='', reference=None, note='')]
    lines = gpu_check.formulation_table(rows).splitlines()
    assert lines[0] == '| g_d (ms) | plain | matrix | triton | NVIDIA H200 |'
    assert lines[2] == '| G inference | 400 | 68 | triton not available | 38 |'
    assert lines[3] == '| G fwd+bwd | failed | failed | triton not available |  |' # Stopped before this row.
    assert gpu_check.formulation_table(rows[:0]) == ''

def test_the_triton_formulation_is_one_row_saying_why_where_triton_cannot_run(tmp_path):
    args = type('Args', (), dict(small=True, profile=False))()
    rows = gpu_check.run_part('g_d_triton', args, str(tmp_path))
    assert [(row['measure'], row['value']) for row in rows] == [('formulation', 'triton not available')]
    assert rows[0]['note']

#----------------------------------------------------------------------------
