"""Tests of multi-process training under torchrun: environment detection, rendezvous, one run directory per job.

Run as a script (`python -m torch.distributed.run ... tests/test_distributed.py DATA OUTDIR`) this file is also the
torchrun worker of the end-to-end test: a tiny training_loop config launched through train.py's launch helpers."""

import json
import os
import subprocess
import sys

import torch

import train
from training import training_loop
from tests.test_training_loop import make_image_zip, tiny_config

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TORCHRUN_ENV = dict(RANK='3', LOCAL_RANK='1', WORLD_SIZE='4', MASTER_ADDR='127.0.0.1', MASTER_PORT='29500')

#----------------------------------------------------------------------------
# Environment detection.

def test_torchrun_env_reads_rank_local_rank_and_world_size(monkeypatch):
    for name, value in TORCHRUN_ENV.items():
        monkeypatch.setenv(name, value)
    assert training_loop.torchrun_env() == dict(rank=3, local_rank=1, world_size=4)

def test_torchrun_env_is_none_unless_every_torchrun_variable_is_set(monkeypatch):
    for name, value in TORCHRUN_ENV.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv('MASTER_PORT')
    assert training_loop.torchrun_env() is None
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    assert training_loop.torchrun_env() is None

def test_training_device_is_local_rank_under_torchrun_and_rank_otherwise(monkeypatch):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    for name in TORCHRUN_ENV:
        monkeypatch.delenv(name, raising=False)
    assert training_loop.training_device(3) == torch.device('cuda', 3)
    for name, value in TORCHRUN_ENV.items():
        monkeypatch.setenv(name, value)
    assert training_loop.training_device(3) == torch.device('cuda', 1) # Rank 3 is the second process on its machine.

def test_rendezvous_is_env_under_torchrun_and_a_shared_file_otherwise(tmp_path):
    assert training_loop.rendezvous_url(None) == 'env://'
    assert training_loop.rendezvous_url(str(tmp_path / 'init')) == f'file://{tmp_path}/init'

#----------------------------------------------------------------------------
# Processes started by train.py / calc_metrics.py themselves.

def report_rank_and_world_size(rank, out_dir, init_file):
    """Body of each spawned process: meet through init_file, then record the world size this rank sees."""
    training_loop.init_process_group(rank, 2, init_file)
    (out_dir / f'rank{rank}.txt').write_text(str(torch.distributed.get_world_size()))
    training_loop.close_process_group(2)

def test_launch_processes_spawns_every_rank_into_one_group(tmp_path):
    training_loop.launch_processes(report_rank_and_world_size, (tmp_path,), num_gpus=2)
    assert sorted(os.listdir(tmp_path)) == ['rank0.txt', 'rank1.txt']
    assert all((tmp_path / name).read_text() == '2' for name in os.listdir(tmp_path))

def test_launch_processes_runs_a_single_rank_in_this_process(tmp_path):
    calls = []
    training_loop.launch_processes(lambda rank, value, init_file: calls.append((rank, value)), ('x',), num_gpus=1)
    assert calls == [(0, 'x')]

def test_exit_worker_process_flushes_the_output_and_skips_the_teardown():
    code = ('import atexit; from training import training_loop; atexit.register(print, "teardown"); print("done", end=""); '
        'training_loop.exit_worker_process(2); print("not reached")') # A pipe buffers "done" until a flush.
    result = subprocess.run([sys.executable, '-c', code], cwd=os.path.dirname(os.path.abspath(train.__file__)), capture_output=True, text=True, timeout=120)
    assert (result.returncode, result.stdout) == (0, 'done')

def test_exit_worker_process_leaves_a_single_process_running():
    assert training_loop.exit_worker_process(1) is None

#----------------------------------------------------------------------------
# End to end: two gloo processes started by torchrun.

def run_torchrun_worker(data_zip, outdir):
    """Body of each torchrun worker: a 3-step run of tiny nets (4 images per step, 2 per process) launched by train.py."""
    c = tiny_config(data_zip, run_dir=None, num_gpus=2, batch_gpu=2, total_kimg=0.01, kimg_per_tick=1, metrics=[],
        augment_kwargs=None, ada_target=None)
    c.D_kwargs.epilogue_kwargs.mbstd_group_size = 2 # Groups within one process's share of the batch.
    train.launch_training(c, desc='tiny', outdir=outdir, dry_run=False) # Sets c.run_dir: rank 0's choice, on every rank.
    raise AssertionError('a finished torchrun worker ends inside launch_training') # Not reached: see exit_worker_process.

def test_torchrun_two_processes_write_one_run_dir(tmp_path):
    data_zip = make_image_zip(tmp_path / 'data.zip')
    outdir = tmp_path / 'runs'
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([ROOT_DIR, os.path.dirname(os.path.abspath(train.__file__))]), OMP_NUM_THREADS='1')
    for name in TORCHRUN_ENV:
        env.pop(name, None)
    result = subprocess.run([sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node=2',
        os.path.abspath(__file__), data_zip, str(outdir)], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr # torchrun exits 0 only if every worker did.

    assert os.listdir(outdir) == ['00000-tiny']
    run_dir = outdir / '00000-tiny'
    names = os.listdir(run_dir)
    assert [name for name in names if name.startswith('network-snapshot-')] == ['network-snapshot-000000.pkl']
    assert not [name for name in names if name.endswith('.tmp')]
    assert json.loads((run_dir / 'training_options.json').read_text())['num_gpus'] == 2
    assert 'Exiting...' in (run_dir / 'log.txt').read_text()
    with open(run_dir / 'stats.jsonl') as f:
        lines = [json.loads(line) for line in f]
    assert [line['Progress/tick']['mean'] for line in lines] == [0, 1] # Tick 0 after the first step, tick 1 at the end.
    assert lines[0]['Loss/G/loss']['num'] == 4 # One step's G loss summed over both processes' 2 images.

#----------------------------------------------------------------------------

if __name__ == '__main__':
    run_torchrun_worker(data_zip=sys.argv[1], outdir=sys.argv[2])

#----------------------------------------------------------------------------
# svc_plugin.distributed: two gloo processes take one step as one process does with their whole batch.

def one_step(module, inputs, targets, num_gpus):
    """One SGD step of a mean-squared loss over this process's share of the batch; the gradients averaged over the
    processes by svc_plugin.distributed, as the video training loop averages them."""
    from svc_plugin import distributed
    loss = (module(inputs) - targets).square().mean()
    loss.backward()
    distributed.average_gradients(module, num_gpus)
    torch.optim.SGD(module.parameters(), lr=0.1).step()
    return [param.grad.clone() for param in module.parameters()], [param.detach().clone() for param in module.parameters()]

def gradient_step_batch():
    """A linear layer and a batch of 4 (inputs, targets), the same in every process."""
    torch.manual_seed(0)
    return torch.nn.Linear(3, 2), torch.randn([4, 3]), torch.randn([4, 2])

def step_on_half_the_batch(rank, num_gpus, out_dir):
    """Body of each of the two processes that svc_plugin.distributed.launch starts: rank r steps on samples 2r, 2r+1."""
    module, inputs, targets = gradient_step_batch()
    grads, params = one_step(module, inputs[2 * rank : 2 * rank + 2], targets[2 * rank : 2 * rank + 2], num_gpus)
    torch.save(dict(grads=grads, params=params), os.path.join(out_dir, f'rank{rank}.pt'))

def test_two_processes_step_as_one_process_with_their_whole_batch(tmp_path):
    """README: multi-GPU training equals one-process training at the same total batch (4 = 2 x 2)."""
    from svc_plugin import distributed
    distributed.launch(step_on_half_the_batch, 2, lambda: str(tmp_path))
    module, inputs, targets = gradient_step_batch()
    grads, params = one_step(module, inputs, targets, num_gpus=1)
    for rank in range(2):
        result = torch.load(tmp_path / f'rank{rank}.pt')
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(result['grads'], grads))
        assert all(torch.allclose(a, b, atol=1e-6) for a, b in zip(result['params'], params))

def test_averaged_gradients_are_made_finite_even_for_a_single_parameter():
    """NaN -> 0 and +-Inf -> +-1e5, so that one bad batch cannot poison the weights (the NaN guard still sees the losses)."""
    from svc_plugin import distributed
    module = torch.nn.Linear(4, 1, bias=False)
    module.weight.grad = torch.tensor([[float('nan'), float('inf'), -float('inf'), 1.5]])
    distributed.average_gradients(module, num_gpus=1)
    assert module.weight.grad.tolist() == [[0.0, 1e5, -1e5, 1.5]]

#----------------------------------------------------------------------------
