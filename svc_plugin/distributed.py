"""Processes of a multi-GPU run: one per GPU (CPU processes without CUDA), started here or by torchrun.

Joining and leaving the process group (NCCL on GPUs, gloo on CPU), spawning the per-GPU workers, and the
collectives the training loop and the metrics share. Used by train_video.py (through training_loop_ext) and
calc_metrics_video.py alike.
"""

import datetime
import os
import sys
import tempfile

import torch

import dnnlib
from torch_utils import misc
from torch_utils import training_stats

PROCESS_GROUP_TIMEOUT = datetime.timedelta(minutes=10) # A collective that waits longer than this fails (a hung peer).

#----------------------------------------------------------------------------

def torchrun_world():
    """EasyDict(rank, local_rank, world_size, local_world_size) when torchrun started this process, else None."""
    names = ['RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT']
    if not all(name in os.environ for name in names):
        return None
    world = dnnlib.EasyDict(rank=int(os.environ['RANK']), local_rank=int(os.environ['LOCAL_RANK']), world_size=int(os.environ['WORLD_SIZE']))
    world.local_world_size = int(os.environ.get('LOCAL_WORLD_SIZE', world.world_size))
    return world

def process_device(local_rank):
    """cuda:<local rank> when CUDA is available, else the CPU."""
    return torch.device('cuda', local_rank) if torch.cuda.is_available() else torch.device('cpu')

def current_device():
    """The device that join_process_group() gave this process."""
    return process_device(torch.cuda.current_device() if torch.cuda.is_available() else 0)

def join_process_group(rank, num_gpus, local_rank, local_world_size, init_method):
    """Enter the process group of a multi-process run (NCCL on GPUs, gloo on CPU) and share the CPU cores.
    The group timeout makes a collective fail, rather than hang, when a peer has died."""
    device = process_device(local_rank)
    if device.type == 'cuda':
        torch.cuda.set_device(device)
    else:
        torch.set_num_threads(max(1, torch.get_num_threads() // local_world_size)) # The processes of a machine share its cores.
    if num_gpus > 1:
        backend = 'nccl' if device.type == 'cuda' else 'gloo'
        torch.distributed.init_process_group(backend, init_method=init_method, rank=rank, world_size=num_gpus, timeout=PROCESS_GROUP_TIMEOUT)
        training_stats.init_multiprocessing(rank=rank, sync_device=device)

def wait_for_all_ranks():
    """After a successful run only (a failed rank would leave the others waiting): no rank closes its connections
    while another still uses them for its last collective."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.barrier()

def leave_process_group():
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()

def exit_finished_worker():
    """End a finished worker of a multi-process run (everything written, group left) with os._exit: its process
    group's native threads can abort the interpreter's teardown, and a finished run would then be reported failed."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)

#----------------------------------------------------------------------------

def launch(worker, num_gpus, prepare):
    """Run worker(rank, num_gpus, prepared) in num_gpus processes: the ones torchrun started, if it started this one
    (env:// rendezvous, num_gpus = world size), else this process (num_gpus = 1) or num_gpus spawned ones.
    prepare() runs once, on global rank 0, before any worker: its result (e.g. the run directory) goes to every rank,
    and None means there is nothing to run (a dry run). When one spawned process fails, torch.multiprocessing.spawn
    terminates the others and raises here. A worker process (torchrun's or a spawned one) that has finished ends in
    here, through exit_finished_worker()."""
    world = torchrun_world()
    if world is not None:
        join_process_group(world.rank, num_gpus, world.local_rank, world.local_world_size, init_method='env://')
        def prepare_then_work():
            prepared = [prepare() if world.rank == 0 else None]
            if num_gpus > 1:
                torch.distributed.broadcast_object_list(prepared, src=0)
            if prepared[0] is not None:
                worker(world.rank, num_gpus, prepared[0])
        finish_worker_process(prepare_then_work)
    prepared = prepare()
    if prepared is None:
        return
    if num_gpus == 1:
        join_process_group(0, 1, local_rank=0, local_world_size=1, init_method=None)
        worker(0, 1, prepared)
        return
    with tempfile.TemporaryDirectory() as rendezvous_dir:
        init_method = 'file://' + os.path.join(os.path.abspath(rendezvous_dir), 'rendezvous').replace(os.sep, '/')
        torch.multiprocessing.spawn(spawned_process, args=(worker, num_gpus, prepared, init_method), nprocs=num_gpus)

def spawned_process(rank, worker, num_gpus, prepared, init_method):
    """Body of each process that launch() starts itself."""
    join_process_group(rank, num_gpus, local_rank=rank, local_world_size=num_gpus, init_method=init_method)
    finish_worker_process(lambda: worker(rank, num_gpus, prepared))

def finish_worker_process(work):
    """In a worker process that has joined its group: work(), then wait for every rank, leave the group and exit."""
    try:
        work()
        wait_for_all_ranks()
    finally:
        leave_process_group()
    exit_finished_worker()

#----------------------------------------------------------------------------
# Collectives of the training loop.

def is_multiprocess(num_gpus):
    return num_gpus > 1 and torch.distributed.is_available() and torch.distributed.is_initialized()

def broadcast_from_rank0(modules, num_gpus):
    """Start every rank from rank 0's weights (fresh initialisations differ per rank seed)."""
    if is_multiprocess(num_gpus):
        for module in modules:
            if module is not None:
                for value in misc.params_and_buffers(module):
                    torch.distributed.broadcast(value, src=0)

def average_gradients(module, num_gpus):
    """Mean gradient over the processes (one all_reduce of all gradients, flattened), with NaN/Inf entries made
    finite so that one bad batch cannot poison the weights (the NaN guard still sees it in the losses)."""
    grads = [param.grad for param in module.parameters() if param.grad is not None]
    if len(grads) == 0:
        return
    flat = torch.cat([grad.reshape(-1) for grad in grads])
    if is_multiprocess(num_gpus):
        torch.distributed.all_reduce(flat)
        flat /= num_gpus
    flat = torch.nan_to_num(flat, nan=0.0, posinf=1e5, neginf=-1e5)
    for grad, part in zip(grads, flat.split([grad.numel() for grad in grads])):
        grad.copy_(part.view_as(grad))

#----------------------------------------------------------------------------
