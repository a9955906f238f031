"""Tests for torch_utils.misc."""

import warnings

import numpy as np
import pytest
import torch

from torch_utils import misc

#----------------------------------------------------------------------------

def _reference_sampler_stream(n, rank, num_replicas, seed, window_size, count):
    """Independent re-statement of the documented InfiniteSampler algorithm."""
    rnd = np.random.RandomState(seed)
    order = [int(v) for v in rnd.permutation(n)]
    window = int(round(n * window_size))
    out, idx = [], 0
    while len(out) < count:
        i = idx % n
        if idx % num_replicas == rank:
            out.append(order[i])
        if window >= 2:
            j = (i - rnd.randint(window)) % n
            order[i], order[j] = order[j], order[i]
        idx += 1
    return out

def _take(sampler, count):
    it = iter(sampler)
    return [int(next(it)) for _ in range(count)]

#----------------------------------------------------------------------------

@pytest.mark.parametrize('n, seed, window_size', [(10, 0, 0.5), (7, 123, 0.5), (16, 5, 1.0), (5, 3, 0.2)])
def test_infinite_sampler_matches_documented_shuffle(n, seed, window_size):
    sampler = misc.InfiniteSampler(range(n), seed=seed, window_size=window_size)
    assert _take(sampler, 5 * n) == _reference_sampler_stream(n, 0, 1, seed, window_size, 5 * n)

def test_infinite_sampler_replicas_interleave_the_single_stream():
    full = _take(misc.InfiniteSampler(range(9), seed=4), 40)
    parts = [_take(misc.InfiniteSampler(range(9), rank=r, num_replicas=3, seed=4), 14) for r in range(3)]
    assert [parts[k % 3][k // 3] for k in range(40)] == full

def test_infinite_sampler_without_shuffle_cycles_in_order():
    assert _take(misc.InfiniteSampler(range(4), shuffle=False), 10) == [0, 1, 2, 3, 0, 1, 2, 3, 0, 1]

#----------------------------------------------------------------------------

def test_constant_is_cached_per_value_dtype_and_shape():
    a = misc.constant([1, 2, 3])
    assert a is misc.constant([1, 2, 3])
    assert a.dtype == torch.get_default_dtype() and a.device.type == 'cpu'
    assert misc.constant([1, 2, 3], dtype=torch.float64) is not a
    assert misc.constant([1, 2, 4]) is not a
    b = misc.constant([1, 2], shape=[3, 2])
    assert b.shape == (3, 2) and b.is_contiguous() and b[2].tolist() == [1, 2]
    c = misc.constant(0.5, shape=[1, 3, 2, 2], memory_format=torch.channels_last)
    assert c.is_contiguous(memory_format=torch.channels_last)

def test_assert_shape_accepts_wildcards_and_reports_mismatch():
    x = torch.zeros(2, 3, 4)
    misc.assert_shape(x, [None, 3, None])
    with pytest.raises(AssertionError, match='Wrong number of dimensions'):
        misc.assert_shape(x, [2, 3])
    with pytest.raises(AssertionError, match='Wrong size for dimension 1'):
        misc.assert_shape(x, [2, 5, 4])

def test_suppress_tracer_warnings_silences_only_tracer_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter('error')
        with misc.suppress_tracer_warnings():
            warnings.warn('traced', torch.jit.TracerWarning)
        with pytest.raises(UserWarning):
            with misc.suppress_tracer_warnings():
                warnings.warn('other', UserWarning)

def test_profiled_function_keeps_name_and_result():
    @misc.profiled_function
    def double_it(x):
        return x * 2
    assert double_it.__name__ == 'double_it'
    assert double_it(torch.ones(2)).tolist() == [2, 2]

def test_nan_to_num_and_symbolic_assert_are_torch_functions():
    assert misc.nan_to_num(torch.tensor([float('nan'), 1.0])).tolist() == [0, 1]
    assert misc.symbolic_assert is torch._assert

#----------------------------------------------------------------------------

def _net():
    return torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))

def test_copy_params_and_buffers_copies_by_name_and_keeps_requires_grad():
    src, dst = _net(), _net()
    with torch.no_grad():
        src[0].weight.fill_(0.25)
        src[1].running_mean.fill_(3)
    dst[0].weight.requires_grad_(False)
    misc.copy_params_and_buffers(src, dst, require_all=True)
    assert torch.equal(dst[0].weight, src[0].weight) and dst[0].weight.requires_grad is False
    assert dst[0].bias.requires_grad is True and torch.equal(dst[0].bias, src[0].bias)
    assert torch.equal(dst[1].running_mean, torch.full([4], 3.0))
    assert dst[0].weight.data_ptr() != src[0].weight.data_ptr()

def test_copy_params_and_buffers_missing_names():
    src = torch.nn.Sequential(torch.nn.Linear(3, 4))
    dst = _net()
    misc.copy_params_and_buffers(src, dst) # Partial copy is fine by default.
    assert torch.equal(dst[0].weight, src[0].weight)
    with pytest.raises(AssertionError, match='1.weight'):
        misc.copy_params_and_buffers(src, dst, require_all=True)

def test_params_and_buffers_lists_params_then_buffers():
    net = _net()
    names = [name for name, _ in misc.named_params_and_buffers(net)]
    assert names == ['0.weight', '0.bias', '1.weight', '1.bias', '1.running_mean', '1.running_var', '1.num_batches_tracked']
    assert len(misc.params_and_buffers(net)) == len(names)

def test_print_module_summary_returns_outputs_and_totals(capsys):
    net = _net().eval()
    x = torch.randn(5, 3)
    out = misc.print_module_summary(net, [x])
    assert torch.allclose(out, net(x))
    text = capsys.readouterr().out
    assert 'Sequential' in text and 'Output shape' in text
    total = [line for line in text.splitlines() if line.startswith('Total')][0].split()
    assert total[1] == str(sum(p.numel() for p in net.parameters()))
    assert total[2] == str(sum(b.numel() for b in net.buffers()))

#----------------------------------------------------------------------------

@pytest.fixture
def process_group(tmp_path):
    """A one-process gloo group: enough for DDP wrappers and broadcasts. torch._dynamo is loaded first: DDP loads it,
    and loaded after init_process_group (torch 2.13) it keeps the group alive past destroy_process_group, whose gloo
    threads can then abort pytest itself at exit (see training_loop.exit_worker_process)."""
    import torch._dynamo # pylint: disable=unused-import,import-outside-toplevel
    assert not torch.distributed.is_initialized()
    torch.distributed.init_process_group('gloo', init_method=f'file://{tmp_path}/pg', rank=0, world_size=1)
    yield
    torch.distributed.destroy_process_group()

def test_check_ddp_consistency_in_single_process_group(process_group):
    net = _net()
    with torch.no_grad():
        net[0].weight[0, 0] = float('nan') # NaN must compare equal to itself.
    misc.check_ddp_consistency(net, ignore_regex=r'.*\.num_batches_tracked')

def test_check_ddp_consistency_names_a_tensor_that_differs_from_rank_0(process_group, monkeypatch):
    """One process is its own rank 0, so rank 0's copy is simulated: the broadcast hands back weight + 1."""
    net = _net()
    broadcast = torch.distributed.broadcast
    def from_another_rank_0(tensor, src):
        broadcast(tensor=tensor, src=src)
        if tensor.shape == net[0].weight.shape:
            tensor.add_(1)
    monkeypatch.setattr(torch.distributed, 'broadcast', from_another_rank_0)
    with pytest.raises(AssertionError, match=r'^Sequential\.0\.weight$'):
        misc.check_ddp_consistency(net)
    misc.check_ddp_consistency(net, ignore_regex=r'Sequential\.0\.weight') # Ignored: the running averages' way out.

def test_ddp_sync_skips_gradient_all_reduce_only_when_asked(process_group):
    with misc.ddp_sync(_net(), sync=False): # Plain modules have nothing to switch off.
        pass
    ddp = torch.nn.parallel.DistributedDataParallel(torch.nn.Linear(3, 4))
    with misc.ddp_sync(ddp, sync=False):
        assert not ddp.require_backward_grad_sync
    assert ddp.require_backward_grad_sync
    with misc.ddp_sync(ddp, sync=True):
        assert ddp.require_backward_grad_sync

#----------------------------------------------------------------------------
