"""Tests for torch_utils.training_stats."""

import math
import uuid

import numpy as np
import pytest
import torch

import dnnlib
from torch_utils import training_stats

#----------------------------------------------------------------------------

@pytest.fixture
def prefix():
    """Unique name prefix: reported names are global to the process."""
    return f'Test{uuid.uuid4().hex}/'

#----------------------------------------------------------------------------

def test_collector_mean_std_num_across_reports(prefix):
    collector = training_stats.Collector(regex=prefix + '.*')
    values = [1.0, 2.0, 3.0, 4.0, 10.0]
    assert training_stats.report(prefix + 'loss', torch.tensor(values[:3])) is not None
    training_stats.report(prefix + 'loss', values[3])
    training_stats.report(prefix + 'loss', np.array([[values[4]]]))
    collector.update()
    assert collector.num(prefix + 'loss') == 5
    assert collector.mean(prefix + 'loss') == pytest.approx(np.mean(values))
    assert collector.std(prefix + 'loss') == pytest.approx(np.std(values))
    assert collector[prefix + 'loss'] == collector.mean(prefix + 'loss')

def test_report_returns_value_unchanged(prefix):
    x = torch.randn(3, requires_grad=True)
    assert training_stats.report(prefix + 'x', x) is x

def test_collector_counts_only_data_since_previous_update(prefix):
    collector = training_stats.Collector(regex=prefix + '.*')
    training_stats.report(prefix + 'a', [1, 1])
    collector.update()
    training_stats.report(prefix + 'a', [5])
    collector.update()
    assert collector.num(prefix + 'a') == 1 and collector.mean(prefix + 'a') == 5 and collector.std(prefix + 'a') == 0

def test_keep_previous_controls_names_without_new_data(prefix):
    keep = training_stats.Collector(regex=prefix + '.*', keep_previous=True)
    drop = training_stats.Collector(regex=prefix + '.*', keep_previous=False)
    training_stats.report(prefix + 'a', [2.0, 4.0])
    keep.update()
    drop.update()
    assert keep.mean(prefix + 'a') == 3 and drop.mean(prefix + 'a') == 3
    keep.update()
    drop.update()
    assert keep.num(prefix + 'a') == 2 and keep.mean(prefix + 'a') == 3
    assert drop.num(prefix + 'a') == 0 and math.isnan(drop.mean(prefix + 'a')) and math.isnan(drop.std(prefix + 'a'))

def test_collectors_are_independent_and_filter_by_regex(prefix):
    first = training_stats.Collector(regex=prefix + 'Loss/.*')
    training_stats.report(prefix + 'Loss/G', [1.0])
    training_stats.report(prefix + 'Timing/step', [7.0])
    first.update()
    second = training_stats.Collector(regex=prefix + '.*') # Created after the reports: sees nothing yet.
    training_stats.report(prefix + 'Loss/G', [3.0])
    second.update()
    first.update()
    assert first.names() == [prefix + 'Loss/G']
    assert first.mean(prefix + 'Loss/G') == 3 and second.mean(prefix + 'Loss/G') == 3
    assert second.num(prefix + 'Timing/step') == 0

def test_empty_report_registers_name_and_as_dict(prefix):
    collector = training_stats.Collector(regex=prefix + '.*')
    training_stats.report(prefix + 'empty', [])
    training_stats.report0(prefix + 'r0', torch.tensor([1.0, 3.0]))
    collector.update()
    stats = collector.as_dict()
    assert isinstance(stats, dnnlib.EasyDict) and set(stats.keys()) == {prefix + 'empty', prefix + 'r0'}
    assert stats[prefix + 'empty'].num == 0 and math.isnan(stats[prefix + 'empty'].mean)
    assert stats[prefix + 'r0'] == dict(num=2, mean=2.0, std=1.0)

def test_report0_ignores_nonzero_ranks(prefix, monkeypatch):
    collector = training_stats.Collector(regex=prefix + '.*')
    monkeypatch.setattr(training_stats, '_rank', 1)
    training_stats.report0(prefix + 'v', [5.0])
    collector.update()
    assert prefix + 'v' in collector.names() and collector.num(prefix + 'v') == 0

def test_update_all_reduces_across_ranks(prefix, monkeypatch, tmp_path):
    # A one-process gloo group exercises the all_reduce path end to end.
    assert not torch.distributed.is_initialized()
    torch.distributed.init_process_group('gloo', init_method=f'file://{tmp_path}/pg', rank=0, world_size=1)
    try:
        monkeypatch.setattr(training_stats, '_sync_called', False)
        monkeypatch.setattr(training_stats, '_rank', 0)
        monkeypatch.setattr(training_stats, '_sync_device', None)
        training_stats.init_multiprocessing(rank=0, sync_device=torch.device('cpu'))
        collector = training_stats.Collector(regex=prefix + '.*')
        training_stats.report(prefix + 'd', [1.0, 2.0])
        collector.update()
        assert collector.num(prefix + 'd') == 2 and collector.mean(prefix + 'd') == 1.5
        with pytest.raises(AssertionError):
            training_stats.init_multiprocessing(rank=0, sync_device=None) # Too late after a sync.
    finally:
        torch.distributed.destroy_process_group()

#----------------------------------------------------------------------------
