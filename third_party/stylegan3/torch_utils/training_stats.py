"""Training statistics: `report(name, value)` from anywhere, read back by a `Collector` as num/mean/std over all devices and ranks."""

import re

import numpy as np
import torch

import dnnlib

from . import misc

#----------------------------------------------------------------------------

_num_moments    = 3             # [count, sum, sum of squares].
_counter_dtype  = torch.float64 # Enough precision for long runs with many small values.
_rank           = 0             # Rank of this process.
_sync_device    = None          # Device for all_reduce across processes, or None for a single process.
_sync_called    = False         # Has a Collector synchronised yet?
_counters       = dict()        # name => device => moments since the last sync.
_cumulative     = dict()        # name => moments since the start (CPU), summed over devices and ranks.

#----------------------------------------------------------------------------

def init_multiprocessing(rank, sync_device):
    """Enable summing the statistics across processes; call before the first Collector.update().

    sync_device is the device used for torch.distributed.all_reduce (e.g. torch.device('cuda', rank)),
    or None to keep the statistics local to this process.
    """
    global _rank, _sync_device
    assert not _sync_called
    _rank = rank
    _sync_device = sync_device

#----------------------------------------------------------------------------

@misc.profiled_function
def report(name, value):
    """Accumulate all scalars of `value` under `name`; returns `value` so that it can wrap an expression.

    An empty value only registers the name, so that every rank takes part in the same all_reduce.
    """
    if name not in _counters:
        _counters[name] = dict()

    elems = torch.as_tensor(value)
    if elems.numel() == 0:
        return value

    elems = elems.detach().flatten().to(_counter_dtype)
    moments = torch.stack([torch.ones_like(elems).sum(), elems.sum(), elems.square().sum()])
    device = moments.device
    if device not in _counters[name]:
        _counters[name][device] = torch.zeros_like(moments)
    _counters[name][device].add_(moments)
    return value

#----------------------------------------------------------------------------

def report0(name, value):
    """Like report(), but only rank 0 contributes (for values that every rank computes identically)."""
    report(name, value if _rank == 0 else [])
    return value

#----------------------------------------------------------------------------

class Collector:
    """Reads the statistics reported since the previous update() for names matching a regex."""

    def __init__(self,
        regex           = '.*', # Only collect names that fully match this regex.
        keep_previous   = True, # Keep the previous values for names that received no new data.
    ):
        self._regex = re.compile(regex)
        self._keep_previous = keep_previous
        self._cumulative = dict()   # name => cumulative moments at our last update.
        self._moments = dict()      # name => moments between our last two updates.
        self.update()
        self._moments.clear() # Start counting from construction time.

    def names(self):
        return [name for name in _counters if self._regex.fullmatch(name)]

    def update(self):
        """Sync the counters and store the new data since the previous update as this collector's values."""
        if not self._keep_previous:
            self._moments.clear()
        for name, cumulative in _sync(self.names()):
            if name not in self._cumulative:
                self._cumulative[name] = torch.zeros_like(cumulative)
            delta = cumulative - self._cumulative[name]
            self._cumulative[name].copy_(cumulative)
            if float(delta[0]) != 0:
                self._moments[name] = delta

    def num(self, name):
        if name not in self._moments:
            return 0
        return int(self._moments[name][0])

    def mean(self, name):
        count = self.num(name)
        if count == 0:
            return float('nan')
        return float(self._moments[name][1] / count)

    def std(self, name):
        """Population standard deviation; 0 for a single sample, NaN without data."""
        count = self.num(name)
        if count == 0 or not np.isfinite(float(self._moments[name][1])):
            return float('nan')
        if count == 1:
            return float(0)
        mean = float(self._moments[name][1] / count)
        mean_sq = float(self._moments[name][2] / count)
        return float(np.sqrt(max(mean_sq - np.square(mean), 0)))

    def as_dict(self):
        """EasyDict {name: EasyDict(num, mean, std)}, e.g. for writing to a JSON log."""
        stats = dnnlib.EasyDict()
        for name in self.names():
            stats[name] = dnnlib.EasyDict(num=self.num(name), mean=self.mean(name), std=self.std(name))
        return stats

    def __getitem__(self, name):
        return self.mean(name)

#----------------------------------------------------------------------------

def _sync(names):
    """Move the per-device counters of `names` into the global cumulative moments, summed over ranks."""
    global _sync_called
    if len(names) == 0:
        return []
    _sync_called = True
    names = sorted(names) # Same order on every rank for all_reduce.

    # Sum over devices within this process, resetting the counters.
    device = _sync_device if _sync_device is not None else torch.device('cpu')
    deltas = []
    for name in names:
        delta = torch.zeros([_num_moments], dtype=_counter_dtype, device=device)
        for counter in _counters[name].values():
            delta.add_(counter.to(device))
            counter.zero_()
        deltas.append(delta)
    deltas = torch.stack(deltas) # [name, moment]

    # Sum over processes.
    if _sync_device is not None:
        torch.distributed.all_reduce(deltas)

    deltas = deltas.cpu()
    for idx, name in enumerate(names):
        if name not in _cumulative:
            _cumulative[name] = torch.zeros([_num_moments], dtype=_counter_dtype)
        _cumulative[name].add_(deltas[idx])
    return [(name, _cumulative[name]) for name in names]

#----------------------------------------------------------------------------
