"""Training state: everything besides the networks that a resumed run needs to continue as if never stopped.

Counters, optimizer moments, loss state, augmentation probability and ADA's pending signs, every rank's random
streams and running averages, the best metric so far and the ramp-ups; saved beside each snapshot as tensors and plain
values, so that torch.load(weights_only=True) reads it back (svc_plugin.runs pairs it with its snapshot).
"""

import contextlib
import dataclasses
import hashlib
import random
import re

import numpy as np
import torch

from svc_plugin import distributed
from svc_plugin import runs

RUNNING_AVERAGES = r'.*\.[^.]+_(avg|ema)' # Buffers (w_avg, magnitude_ema) that each rank updates from its own data.

#----------------------------------------------------------------------------

@dataclasses.dataclass
class Progress:
    """Where a stage stands; saved in the training state and restored on resume."""
    stage_start_nimg: int   # Frames seen when the stage started (its kimg axis continues the previous stage's).
    cur_nimg: int           # Frames seen so far.
    cur_tick: int = 0       # Ticks done.
    batch_idx: int = 0      # Steps done.
    best: dict = None       # Best metric so far: dict(metric, value, path, kimg of the snapshot it copies).
    ema_rampup: float = None # G_ema half-life ramp-up of the run that started the stage (kept on resume).

@dataclasses.dataclass
class Trainer:
    """What the steps change, and a snapshot and its training state record: networks, loss, optimizers, ADA, RNG."""
    G: torch.nn.Module
    D: torch.nn.Module
    G_ema: torch.nn.Module
    augment_pipe: torch.nn.Module   # None without augmentation.
    loss: object                    # StyleGAN2Loss or VideoLoss.
    optimizers: dict                # {'G': ..., 'D': ...}
    ada: object                     # AdaptiveAugment, None for a fixed p.
    rnd: np.random.RandomState      # The loop's own random stream.

#----------------------------------------------------------------------------
# Random state: seeded per rank, saved with every snapshot, restored on resume.

def seed_everything(seed):
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return np.random.RandomState(seed) # The loop's own stream: labels and frame times of generated clips.

def capture_rng(rnd):
    """This process's RNG states (and the loop's `rnd`, unless None) as tensors and plain numbers (torch.load(weights_only=True) reads them back)."""
    def numpy_state(state):
        return dict(key=torch.from_numpy(state[1].astype(np.int64)), pos=int(state[2]), has_gauss=int(state[3]), gauss=float(state[4]))
    version, internal, gauss = random.getstate()
    return dict(
        torch=torch.get_rng_state(),
        cuda=torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        numpy=numpy_state(np.random.get_state()),
        loop=None if rnd is None else numpy_state(rnd.get_state()),
        python=dict(version=version, internal=list(internal), gauss=gauss),
    )

def restore_rng(saved, rnd):
    def numpy_state(state):
        return ('MT19937', state['key'].numpy().astype(np.uint32), state['pos'], state['has_gauss'], state['gauss'])
    torch.set_rng_state(saved['torch'])
    if torch.cuda.is_available() and len(saved['cuda']) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(saved['cuda'])
    np.random.set_state(numpy_state(saved['numpy']))
    if rnd is not None:
        rnd.set_state(numpy_state(saved['loop']))
    random.setstate((saved['python']['version'], tuple(saved['python']['internal']), saved['python']['gauss']))

@contextlib.contextmanager
def random_streams_kept(rnd=None):
    """Run a block (metrics, the motion meter: they draw from the global streams as upstream's do) and put every random
    stream back, the loop's own `rnd` too if given."""
    saved = capture_rng(rnd)
    try:
        yield
    finally:
        restore_rng(saved, rnd)

def gather_per_rank(value, num_gpus):
    """Every rank's `value`, in rank order (the same list on every rank)."""
    values = [value]
    if distributed.is_multiprocess(num_gpus):
        values = [None] * num_gpus
        torch.distributed.all_gather_object(values, value)
    return values

#----------------------------------------------------------------------------
# Running averages: a snapshot holds rank 0's, which every rank takes on resume (broadcast_from_rank0).

def capture_running_averages(G):
    return {name: value.detach().cpu().clone() for name, value in G.named_buffers() if re.fullmatch(RUNNING_AVERAGES, name)}

def restore_running_averages(saved, modules):
    """This rank's own running averages, into G and G_ema (whose buffers are G's, copied at every step)."""
    for module in modules:
        for name, value in module.named_buffers():
            if name in saved:
                value.copy_(saved[name])

#----------------------------------------------------------------------------
# The state as saved, and put back.

def capture(progress, trainer, num_gpus, snapshot_bytes):
    """The state saved beside a snapshot (tensors and plain values only, so torch.load(weights_only=True) reads it)."""
    return dict(format=runs.STATE_FORMAT, generator=type(trainer.G).__name__, snapshot_sha256=hashlib.sha256(snapshot_bytes).hexdigest(),
        stage_start_nimg=progress.stage_start_nimg, cur_nimg=progress.cur_nimg, cur_tick=progress.cur_tick, batch_idx=progress.batch_idx,
        optimizers={name: opt.state_dict() for name, opt in trainer.optimizers.items()},
        loss_state={name: value.detach().cpu() for name, value in vars(trainer.loss).items() if isinstance(value, torch.Tensor)}, # pl_mean, ...
        augment_p=float(trainer.augment_pipe.p) if trainer.augment_pipe is not None else None,
        ada_pending=list(trainer.ada.pending) if trainer.ada is not None else None,
        rng=gather_per_rank(capture_rng(trainer.rnd), num_gpus), running_averages=gather_per_rank(capture_running_averages(trainer.G), num_gpus),
        best=dict(progress.best),
        ema_rampup=progress.ema_rampup, blur_init_sigma=getattr(trainer.loss, 'blur_init_sigma', None))

def restore(state, progress, trainer, num_gpus, rank, run_dir):
    """Put a saved state back: counters (into `progress`; the next tick follows the saved one), optimizer moments,
    loss state, augment p and ADA's pending signs, this rank's random streams and running averages, the best metric so
    far, and the ramp-ups of the run that saved it (a resumed run would otherwise drop them, as upstream's resume does)."""
    progress.stage_start_nimg, progress.cur_nimg = state['stage_start_nimg'], state['cur_nimg']
    progress.cur_tick, progress.batch_idx = state['cur_tick'] + 1, state['batch_idx']
    progress.ema_rampup = state.get('ema_rampup', progress.ema_rampup)
    if state.get('blur_init_sigma') is not None and hasattr(trainer.loss, 'blur_init_sigma'):
        trainer.loss.blur_init_sigma = state['blur_init_sigma']
    for name, opt in trainer.optimizers.items():
        opt.load_state_dict(state['optimizers'][name])
    for name, value in state['loss_state'].items():
        getattr(trainer.loss, name).copy_(value)
    if trainer.augment_pipe is not None and state['augment_p'] is not None:
        trainer.augment_pipe.p.copy_(torch.as_tensor(state['augment_p']))
    if trainer.ada is not None and state['ada_pending'] is not None:
        trainer.ada.pending = list(state['ada_pending'])
    if state['best']['metric'] == progress.best['metric']:
        progress.best = dict(state['best'])
        if rank == 0:
            runs.keep_best_copy(progress.best, run_dir)
    if len(state['rng']) == num_gpus:
        restore_rng(state['rng'][rank], trainer.rnd)
        restore_running_averages(state.get('running_averages', [{}] * num_gpus)[rank], [trainer.G, trainer.G_ema])
    elif rank == 0:
        print(f'The state was saved by {len(state["rng"])} processes, this run has {num_gpus}: random streams start afresh.')
    if rank == 0:
        print(f'Restored the training state: kimg {progress.cur_nimg / 1000:.3f}, tick {progress.cur_tick}, step {progress.batch_idx}.')

#----------------------------------------------------------------------------
