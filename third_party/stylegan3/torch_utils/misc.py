"""Small PyTorch helpers shared by the networks, the training loop and the metrics."""

import contextlib
import functools
import re
import warnings

import numpy as np
import torch

import dnnlib

#----------------------------------------------------------------------------
# Cached constant tensors: avoids re-uploading the same small tensor on every forward pass.

_constant_cache = dict()

def constant(value, shape=None, dtype=None, device=None, memory_format=None):
    value = np.asarray(value)
    if shape is not None:
        shape = tuple(shape)
    if dtype is None:
        dtype = torch.get_default_dtype()
    device = torch.device('cpu') if device is None else torch.device(device)
    if memory_format is None:
        memory_format = torch.contiguous_format

    key = (value.shape, value.dtype, value.tobytes(), shape, dtype, device, memory_format)
    tensor = _constant_cache.get(key, None)
    if tensor is None:
        tensor = torch.as_tensor(value.copy(), dtype=dtype, device=device)
        if shape is not None:
            tensor = tensor.expand(torch.broadcast_shapes(tensor.shape, shape))
        tensor = tensor.contiguous(memory_format=memory_format)
        _constant_cache[key] = tensor
    return tensor

#----------------------------------------------------------------------------

nan_to_num = torch.nan_to_num   # Kept under this name for code written against older PyTorch.
symbolic_assert = torch._assert # Assertion that survives torch.jit tracing.

#----------------------------------------------------------------------------

class suppress_tracer_warnings(warnings.catch_warnings):
    """Context manager that silences torch.jit.TracerWarning (shape checks are intentional)."""

    def __enter__(self):
        super().__enter__()
        warnings.simplefilter('ignore', category=torch.jit.TracerWarning)
        return self

#----------------------------------------------------------------------------

def assert_shape(tensor, ref_shape):
    """Check tensor.shape against ref_shape, where None matches any size."""
    if tensor.ndim != len(ref_shape):
        raise AssertionError(f'Wrong number of dimensions: got {tensor.ndim}, expected {len(ref_shape)}')
    for idx, (size, ref_size) in enumerate(zip(tensor.shape, ref_shape)):
        if ref_size is None:
            continue
        if isinstance(ref_size, torch.Tensor) or isinstance(size, torch.Tensor): # Traced sizes.
            with suppress_tracer_warnings():
                symbolic_assert(torch.equal(torch.as_tensor(size), torch.as_tensor(ref_size)), f'Wrong size for dimension {idx}')
        elif size != ref_size:
            raise AssertionError(f'Wrong size for dimension {idx}: got {size}, expected {ref_size}')

#----------------------------------------------------------------------------

def profiled_function(fn):
    """Decorator: the call shows up under the function's name in the autograd profiler."""
    @functools.wraps(fn)
    def decorator(*args, **kwargs):
        with torch.autograd.profiler.record_function(fn.__name__):
            return fn(*args, **kwargs)
    return decorator

#----------------------------------------------------------------------------

class InfiniteSampler(torch.utils.data.Sampler):
    """Endless sampler over a dataset, split between replicas by index parity.

    With shuffling, the order is a seeded permutation that keeps evolving: after visiting position i,
    the item there is swapped with one up to `window` positions earlier, so consecutive passes differ.
    """

    def __init__(self,
        dataset,                # Dataset to sample from; only its length is used.
        rank            = 0,    # Index of this replica.
        num_replicas    = 1,    # Total number of replicas (processes).
        shuffle         = True, # Randomise the order?
        seed            = 0,    # Seed of the shuffling RNG; identical across replicas.
        window_size     = 0.5,  # Swap window as a fraction of the dataset size.
    ):
        assert len(dataset) > 0
        assert num_replicas > 0
        assert 0 <= rank < num_replicas
        assert 0 <= window_size <= 1
        super().__init__()
        self.dataset = dataset
        self.rank = rank
        self.num_replicas = num_replicas
        self.shuffle = shuffle
        self.seed = seed
        self.window_size = window_size

    def __iter__(self):
        order = np.arange(len(self.dataset))
        rnd = None
        window = 0
        if self.shuffle:
            rnd = np.random.RandomState(self.seed)
            rnd.shuffle(order)
            window = int(np.rint(order.size * self.window_size))

        idx = 0
        while True:
            i = idx % order.size
            if idx % self.num_replicas == self.rank:
                yield order[i]
            if window >= 2:
                j = (i - rnd.randint(window)) % order.size
                order[i], order[j] = order[j], order[i]
            idx += 1

#----------------------------------------------------------------------------

def params_and_buffers(module):
    assert isinstance(module, torch.nn.Module)
    return list(module.parameters()) + list(module.buffers())

def named_params_and_buffers(module):
    assert isinstance(module, torch.nn.Module)
    return list(module.named_parameters()) + list(module.named_buffers())

@torch.no_grad()
def copy_params_and_buffers(src_module, dst_module, require_all=False):
    """Copy every parameter/buffer of dst_module that src_module has under the same name."""
    assert isinstance(src_module, torch.nn.Module)
    assert isinstance(dst_module, torch.nn.Module)
    src_tensors = dict(named_params_and_buffers(src_module))
    for name, tensor in named_params_and_buffers(dst_module):
        if name not in src_tensors:
            if require_all:
                raise AssertionError(f'Source module has no parameter or buffer named {name!r}')
            continue
        tensor.copy_(src_tensors[name].detach())

#----------------------------------------------------------------------------

@contextlib.contextmanager
def ddp_sync(module, sync):
    """Skip DDP's gradient all-reduce when sync is False (gradient accumulation rounds)."""
    assert isinstance(module, torch.nn.Module)
    if sync or not isinstance(module, torch.nn.parallel.DistributedDataParallel):
        yield
    else:
        with module.no_sync():
            yield

#----------------------------------------------------------------------------

def check_ddp_consistency(module, ignore_regex=None):
    """Assert that every parameter/buffer equals rank 0's copy (NaN and inf compare as finite values)."""
    assert isinstance(module, torch.nn.Module)
    for name, tensor in named_params_and_buffers(module):
        fullname = type(module).__name__ + '.' + name
        if ignore_regex is not None and re.fullmatch(ignore_regex, fullname):
            continue
        tensor = tensor.detach()
        if tensor.is_floating_point():
            tensor = nan_to_num(tensor)
        other = tensor.clone()
        torch.distributed.broadcast(tensor=other, src=0)
        assert (tensor == other).all(), fullname

#----------------------------------------------------------------------------

def print_module_summary(module, inputs, max_nesting=3, skip_redundant=True):
    """Run module(*inputs) once, print a table of submodules with their sizes and outputs, return the outputs.

    Parameters, buffers and outputs are attributed to the innermost module call that owns them, so the
    table sums to the totals without double counting.
    """
    assert isinstance(module, torch.nn.Module)
    assert not isinstance(module, torch.jit.ScriptModule)
    assert isinstance(inputs, (tuple, list))

    # Record module calls up to max_nesting levels below the top.
    entries = []
    nesting = [0]
    def pre_hook(_mod, _inputs):
        nesting[0] += 1
    def post_hook(mod, _inputs, outputs):
        nesting[0] -= 1
        if nesting[0] <= max_nesting:
            outputs = list(outputs) if isinstance(outputs, (tuple, list)) else [outputs]
            entries.append(dnnlib.EasyDict(mod=mod, outputs=[t for t in outputs if isinstance(t, torch.Tensor)]))
    hooks = [mod.register_forward_pre_hook(pre_hook) for mod in module.modules()]
    hooks += [mod.register_forward_hook(post_hook) for mod in module.modules()]
    try:
        outputs = module(*inputs)
    finally:
        for hook in hooks:
            hook.remove()

    # Inner calls finish first, so they claim their tensors before their parents.
    tensors_seen = set()
    for e in entries:
        e.params = [t for t in e.mod.parameters() if id(t) not in tensors_seen]
        e.buffers = [t for t in e.mod.buffers() if id(t) not in tensors_seen]
        e.new_outputs = [t for t in e.outputs if id(t) not in tensors_seen]
        tensors_seen |= {id(t) for t in e.params + e.buffers + e.new_outputs}
    if skip_redundant:
        entries = [e for e in entries if len(e.params) or len(e.buffers) or len(e.new_outputs)]

    # Build the table.
    rows = [[type(module).__name__, 'Parameters', 'Buffers', 'Output shape', 'Datatype']]
    rows += [['---'] * len(rows[0])]
    names = {mod: name for name, mod in module.named_modules()}
    param_total = 0
    buffer_total = 0
    for e in entries:
        name = '<top-level>' if e.mod is module else names[e.mod]
        param_size = sum(t.numel() for t in e.params)
        buffer_size = sum(t.numel() for t in e.buffers)
        shapes = [str(list(t.shape)) for t in e.outputs] or ['-']
        dtypes = [str(t.dtype).split('.')[-1] for t in e.outputs] or ['-']
        rows += [[name + (':0' if len(e.outputs) >= 2 else ''),
            str(param_size) if param_size else '-',
            str(buffer_size) if buffer_size else '-',
            shapes[0], dtypes[0]]]
        for idx in range(1, len(e.outputs)):
            rows += [[name + f':{idx}', '-', '-', shapes[idx], dtypes[idx]]]
        param_total += param_size
        buffer_total += buffer_size
    rows += [['---'] * len(rows[0])]
    rows += [['Total', str(param_total), str(buffer_total), '-', '-']]

    widths = [max(len(cell) for cell in column) for column in zip(*rows)]
    print()
    for row in rows:
        print('  '.join(cell + ' ' * (width - len(cell)) for cell, width in zip(row, widths)))
    print()
    return outputs

#----------------------------------------------------------------------------
