"""Main training loop of StyleGAN2-ADA / StyleGAN3: lazy regularization phases, G_ema, ADA, snapshots, stats, metrics."""

import copy
import importlib.util
import json
import os
import pickle
import sys
import tempfile
import time
import uuid

import numpy as np
import PIL.Image
import torch

import dnnlib
import legacy
from metrics import metric_main
from torch_utils import misc
from torch_utils import training_stats
from torch_utils.ops import conv2d_gradfix
from torch_utils.ops import grid_sample_gradfix

#----------------------------------------------------------------------------
# Files: everything the loop writes goes through these two helpers.

def write_file_atomic(path, write_fn, mode='wb'):
    """Write a file through `write_fn(f)` under a temporary name in the same folder, then rename it over `path`,
    so that a crash or a reader polling the run directory never sees a half-written snapshot, image or JSON."""
    tmp_path = os.path.join(os.path.dirname(os.path.abspath(path)), f'.{os.path.basename(path)}.{uuid.uuid4().hex}.tmp')
    try:
        with open(tmp_path, mode.replace('w', 'x')) as f:
            write_fn(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp_path, path)
    finally:
        if os.path.exists(tmp_path):
            os.remove(tmp_path)

#----------------------------------------------------------------------------

def append_line(path, line):
    """Append one complete text line with an O_APPEND write: earlier lines are never rewritten, a line is never split."""
    assert line.endswith('\n') and '\n' not in line[:-1]
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
    try:
        data = line.encode('utf-8')
        while len(data) > 0: # One write in practice; the loop only guards against a short write.
            data = data[os.write(fd, data):]
        os.fsync(fd)
    finally:
        os.close(fd)

#----------------------------------------------------------------------------
# Image grids.

def setup_snapshot_image_grid(training_set, random_seed=0):
    """Choose the reals shown in reals.png (and the labels of fakes*.png): a random sample, or, for labelled
    data, one label per row so that generated and real images can be compared class by class."""
    rnd = np.random.RandomState(random_seed)
    gw = int(np.clip(7680 // training_set.image_shape[2], 7, 32))
    gh = int(np.clip(4320 // training_set.image_shape[1], 4, 32))

    if not training_set.has_labels:
        all_indices = list(range(len(training_set)))
        rnd.shuffle(all_indices)
        grid_indices = [all_indices[i % len(all_indices)] for i in range(gw * gh)]
    else:
        label_groups = dict() # label tuple => [dataset index, ...]
        for idx in range(len(training_set)):
            label = tuple(np.asarray(training_set.get_details(idx).raw_label).flat[::-1])
            label_groups.setdefault(label, []).append(idx)
        label_order = sorted(label_groups.keys())
        for indices in label_groups.values():
            rnd.shuffle(indices)
        grid_indices = []
        for y in range(gh):
            label = label_order[y % len(label_order)]
            indices = label_groups[label]
            grid_indices += [indices[x % len(indices)] for x in range(gw)]
            label_groups[label] = [indices[(i + gw) % len(indices)] for i in range(len(indices))] # Next row of this label shows other images.

    images, labels = zip(*[training_set[i] for i in grid_indices])
    return (gw, gh), np.stack(images), np.stack(labels)

#----------------------------------------------------------------------------

def save_image_grid(img, fname, drange, grid_size):
    """Tile [N, C, H, W] images (values in `drange`) into a gw x gh grid and save it as an 8-bit 'L' or 'RGB' image."""
    lo, hi = drange
    img = np.asarray(img, dtype=np.float32)
    img = np.rint((img - lo) * (255 / (hi - lo))).clip(0, 255).astype(np.uint8)

    gw, gh = grid_size
    _N, C, H, W = img.shape
    assert C in [1, 3], 'Image grids need 1 or 3 channels'
    img = img.reshape(gh, gw, C, H, W).transpose(0, 3, 1, 4, 2).reshape(gh * H, gw * W, C) # [gh*H, gw*W, C]
    image = PIL.Image.fromarray(img[:, :, 0], 'L') if C == 1 else PIL.Image.fromarray(img, 'RGB')
    image_format = PIL.Image.registered_extensions().get(os.path.splitext(fname)[1].lower(), 'PNG')
    write_file_atomic(fname, lambda f: image.save(f, format=image_format))

#----------------------------------------------------------------------------

def generate_grid_images(G_ema, grid_z, grid_c):
    """Images of the grid latents, batch by batch, with constant noise so that successive grids are comparable."""
    with torch.no_grad():
        return torch.cat([G_ema(z=z, c=c, noise_mode='const').cpu() for z, c in zip(grid_z, grid_c)]).numpy()

#----------------------------------------------------------------------------

def save_fakes_grid(run_dir, cur_nimg, G_ema, grid_size, grid_z, grid_c):
    """fakes{kimg:06d}.png: G_ema on the fixed grid latents."""
    images = generate_grid_images(G_ema, grid_z, grid_c)
    save_image_grid(images, os.path.join(run_dir, f'fakes{cur_nimg // 1000:06d}.png'), drange=[-1, 1], grid_size=grid_size)

#----------------------------------------------------------------------------

def export_initial_grids(run_dir, training_set, G_ema, batch_gpu, device):
    """Write reals.png and fakes_init.png; return (grid_size, grid_z, grid_c) for the later fakes*.png."""
    print('Exporting sample images...')
    grid_size, images, labels = setup_snapshot_image_grid(training_set=training_set)
    save_image_grid(images, os.path.join(run_dir, 'reals.png'), drange=[0, 255], grid_size=grid_size)
    grid_z = torch.randn([labels.shape[0], G_ema.z_dim], device=device).split(batch_gpu)
    grid_c = torch.from_numpy(labels).to(device).split(batch_gpu)
    images = generate_grid_images(G_ema, grid_z, grid_c)
    save_image_grid(images, os.path.join(run_dir, 'fakes_init.png'), drange=[-1, 1], grid_size=grid_size)
    return grid_size, grid_z, grid_c

#----------------------------------------------------------------------------
# Process set-up.

TORCHRUN_VARIABLES = ['RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT']

def torchrun_env():
    """This process's place in a torchrun job (rank, local_rank, world_size), read from the variables torchrun sets
    for every worker, or None when the process was not started by torchrun (then train.py spawns its own processes)."""
    if not all(name in os.environ for name in TORCHRUN_VARIABLES):
        return None
    try:
        return dnnlib.EasyDict({name.lower(): int(os.environ[name]) for name in ['RANK', 'LOCAL_RANK', 'WORLD_SIZE']})
    except ValueError:
        raise ValueError('torchrun variables RANK, LOCAL_RANK and WORLD_SIZE must be integers') from None

#----------------------------------------------------------------------------

def training_device(rank):
    """The device of process `rank`: its own GPU when CUDA is available, else the CPU. The GPU index is the rank on
    this machine: LOCAL_RANK under torchrun, whose ranks span machines, else the rank (spawned processes share one machine)."""
    if not torch.cuda.is_available():
        return torch.device('cpu')
    env = torchrun_env()
    return torch.device('cuda', env.local_rank if env is not None else rank)

#----------------------------------------------------------------------------

def rendezvous_url(init_file):
    """Where the processes meet: file:// of the shared init file, or env:// (MASTER_ADDR/MASTER_PORT, set by torchrun) for None."""
    if init_file is None:
        return 'env://'
    init_path = os.path.abspath(init_file).replace('\\', '/')
    return f'file:///{init_path}' if os.name == 'nt' else f'file://{init_path}'

#----------------------------------------------------------------------------

def init_process_group(rank, num_gpus, init_file=None):
    """Join the process group of a multi-process run (NCCL on GPUs, gloo on CPU) through a shared init file, or,
    with init_file=None, through the env:// rendezvous that torchrun sets up; route training_stats through it.
    A single process needs neither. Returns this process's device."""
    device = training_device(rank)
    if num_gpus > 1:
        backend = 'nccl' if (device.type == 'cuda' and os.name != 'nt') else 'gloo'
        if device.type == 'cuda':
            torch.cuda.set_device(device)
        torch.distributed.init_process_group(backend=backend, init_method=rendezvous_url(init_file), rank=rank, world_size=num_gpus)
        training_stats.init_multiprocessing(rank=rank, sync_device=device)
    return device

#----------------------------------------------------------------------------

def launch_processes(fn, args, num_gpus):
    """Run fn(rank, *args, init_file) for every rank: in this process when num_gpus = 1, else in num_gpus spawned
    processes that meet through an init file in a temporary folder (see init_process_group)."""
    with tempfile.TemporaryDirectory() as temp_dir:
        init_file = os.path.join(temp_dir, '.torch_distributed_init')
        if num_gpus == 1:
            fn(0, *args, init_file)
        else:
            torch.multiprocessing.spawn(fn=fn, args=(*args, init_file), nprocs=num_gpus)

#----------------------------------------------------------------------------

def close_process_group(num_gpus):
    """Leave the process group that init_process_group joined, so that NCCL / gloo shut down before the process exits;
    after a barrier, so that no rank tears its connections down while another still uses them."""
    if is_distributed(num_gpus):
        torch.distributed.barrier()
        torch.distributed.destroy_process_group()

def exit_worker_process(num_gpus):
    """After close_process_group() in a worker of a multi-process run: end the process without the interpreter's
    teardown. Current torch (2.13, gloo) cannot free a group once torch.optim has loaded its distributed modules after
    the group was joined; the group's native threads then abort about one exit in three (SIGABRT) during the teardown,
    turning a finished run into a failed one."""
    if num_gpus > 1:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)

#----------------------------------------------------------------------------

def configure_torch(random_seed, num_gpus, rank, cudnn_benchmark):
    """Seed this process, keep matmuls/convs in full fp32 (no TF32) and enable the ops' double-backward paths."""
    np.random.seed(random_seed * num_gpus + rank)
    torch.manual_seed(random_seed * num_gpus + rank)
    torch.backends.cudnn.benchmark = cudnn_benchmark
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    conv2d_gradfix.enabled = True
    grid_sample_gradfix.enabled = True

#----------------------------------------------------------------------------

def is_distributed(num_gpus):
    """True when gradients and parameters must be exchanged with other processes."""
    return num_gpus > 1 and torch.distributed.is_available() and torch.distributed.is_initialized()

#----------------------------------------------------------------------------
# Construction.

def build_training_set(training_set_kwargs, data_loader_kwargs, rank, num_gpus, batch_size, random_seed, device):
    """Dataset plus an endless iterator over this process's share of each minibatch (batch_size // num_gpus)."""
    training_set = dnnlib.util.construct_class_by_name(**training_set_kwargs)
    sampler = misc.InfiniteSampler(dataset=training_set, rank=rank, num_replicas=num_gpus, seed=random_seed)
    loader_kwargs = dict(data_loader_kwargs)
    if loader_kwargs.get('num_workers', 0) == 0:
        loader_kwargs.pop('prefetch_factor', None) # Only meaningful (and only accepted) with worker processes.
    if device.type != 'cuda':
        loader_kwargs.pop('pin_memory', None) # Nothing to pin for; avoids a warning on CPU-only machines.
    loader = torch.utils.data.DataLoader(dataset=training_set, sampler=sampler, batch_size=batch_size // num_gpus, **loader_kwargs)
    training_set.close() # Forked workers must not share an open zip handle (and its file offset) with this process; both reopen lazily.
    return training_set, iter(loader)

#----------------------------------------------------------------------------

def build_networks(training_set, G_kwargs, D_kwargs, device):
    """G and D shaped by the dataset (labels, resolution, channels), plus G_ema = a copy of G in eval mode."""
    common_kwargs = dict(c_dim=training_set.label_dim, img_resolution=training_set.resolution, img_channels=training_set.num_channels)
    G = dnnlib.util.construct_class_by_name(**G_kwargs, **common_kwargs).train().requires_grad_(False).to(device)
    D = dnnlib.util.construct_class_by_name(**D_kwargs, **common_kwargs).train().requires_grad_(False).to(device)
    G_ema = copy.deepcopy(G).eval()
    return G, D, G_ema

#----------------------------------------------------------------------------

def resume_networks(resume_pkl, modules):
    """Copy parameters and buffers of a snapshot into `modules` ({'G': G, 'D': D, 'G_ema': G_ema}) by name;
    names absent from the snapshot keep their fresh values, so a grown architecture can start from a smaller one."""
    with dnnlib.util.open_url(resume_pkl) as f:
        resume_data = legacy.load_network_pkl(f)
    for name, module in modules.items():
        misc.copy_params_and_buffers(resume_data[name], module, require_all=False)

#----------------------------------------------------------------------------

def print_network_summaries(G, D, batch_gpu, device):
    """Layer tables of G and D, run on one zero batch."""
    z = torch.zeros([batch_gpu, G.z_dim], device=device)
    c = torch.zeros([batch_gpu, G.c_dim], device=device)
    img = misc.print_module_summary(G, [z, c])
    misc.print_module_summary(D, [img, c])

#----------------------------------------------------------------------------

def build_augment_pipe(augment_kwargs, augment_p, ada_target, device):
    """The augmentation pipe, or None when augmentation is off (no kwargs, or p = 0 without ADA)."""
    if augment_kwargs is None or (augment_p <= 0 and ada_target is None):
        return None
    augment_pipe = dnnlib.util.construct_class_by_name(**augment_kwargs).train().requires_grad_(False).to(device)
    augment_pipe.p.copy_(torch.as_tensor(augment_p))
    return augment_pipe

#----------------------------------------------------------------------------

def broadcast_modules(modules, num_gpus):
    """Make every process start from rank 0's parameters and buffers (fresh init differs per seed, resume is rank 0 only)."""
    if not is_distributed(num_gpus):
        return
    for module in modules:
        if module is not None:
            for tensor in misc.params_and_buffers(module):
                torch.distributed.broadcast(tensor, src=0)

#----------------------------------------------------------------------------
# Phases and optimisation.

class PhaseTimer:
    """Duration of the latest run of a phase: CUDA events on GPU (no sync inside the step), a wall clock on CPU."""
    def __init__(self, device):
        self.use_events = (device.type == 'cuda')
        self.start_event = torch.cuda.Event(enable_timing=True) if self.use_events else None
        self.end_event = torch.cuda.Event(enable_timing=True) if self.use_events else None
        self.start_time = None
        self.elapsed = None

    def start(self):
        if self.use_events:
            self.start_event.record(torch.cuda.current_stream())
        self.start_time = time.perf_counter()

    def stop(self):
        if self.use_events:
            self.end_event.record(torch.cuda.current_stream())
        self.elapsed = time.perf_counter() - self.start_time

    def seconds(self):
        """Seconds of the latest run, or None if the phase has not run yet."""
        if self.elapsed is None:
            return None
        if self.use_events:
            self.end_event.synchronize()
            return self.start_event.elapsed_time(self.end_event) / 1000
        return self.elapsed

#----------------------------------------------------------------------------

def lazy_regularization_opt_kwargs(opt_kwargs, reg_interval):
    """Optimizer kwargs for a network whose regularizer runs every `reg_interval` minibatches: the optimizer then
    steps (reg_interval + 1) times per reg_interval minibatches, so lr and Adam betas are rescaled by
    r = reg_interval / (reg_interval + 1) to keep the effective step size and momentum (StyleGAN2, Sec. 3.1)."""
    r = reg_interval / (reg_interval + 1)
    opt_kwargs = dnnlib.EasyDict(opt_kwargs)
    opt_kwargs.lr = opt_kwargs.lr * r
    if 'betas' in opt_kwargs:
        opt_kwargs.betas = [beta ** r for beta in opt_kwargs.betas]
    return opt_kwargs

#----------------------------------------------------------------------------

def setup_phases(G, D, G_opt_kwargs, D_opt_kwargs, G_reg_interval, D_reg_interval, device):
    """One phase '<X>both' per network without lazy regularization, else '<X>main' (every minibatch) and
    '<X>reg' (every reg_interval-th) sharing one optimizer. Each phase: name, module, opt, interval, timer."""
    phases = []
    for name, module, opt_kwargs, reg_interval in [('G', G, G_opt_kwargs, G_reg_interval), ('D', D, D_opt_kwargs, D_reg_interval)]:
        if 'betas' in opt_kwargs:
            opt_kwargs = dict(opt_kwargs, betas=[float(beta) for beta in opt_kwargs['betas']]) # Current torch rejects mixed int/float betas such as [0, 0.99].
        if reg_interval is None:
            opt = dnnlib.util.construct_class_by_name(params=module.parameters(), **opt_kwargs)
            phases += [dnnlib.EasyDict(name=name + 'both', module=module, opt=opt, interval=1)]
        else:
            opt = dnnlib.util.construct_class_by_name(module.parameters(), **lazy_regularization_opt_kwargs(opt_kwargs, reg_interval))
            phases += [dnnlib.EasyDict(name=name + 'main', module=module, opt=opt, interval=1)]
            phases += [dnnlib.EasyDict(name=name + 'reg', module=module, opt=opt, interval=reg_interval)]
    for phase in phases:
        phase.timer = PhaseTimer(device)
    return phases

#----------------------------------------------------------------------------

def fetch_batch(training_set_iterator, training_set, num_phases, batch_gpu, z_dim, device):
    """This process's next minibatch: reals scaled to [-1, 1], and one (z, c) draw per phase with c taken from
    random dataset labels; everything split into chunks of batch_gpu (gradient accumulation rounds).
    Returns (real_img chunks, real_c chunks, [z chunks per phase], [c chunks per phase])."""
    real_img, real_c = next(training_set_iterator)
    batch = real_img.shape[0]
    real_img = (real_img.to(device).to(torch.float32) / 127.5 - 1).split(batch_gpu)
    real_c = real_c.to(device).split(batch_gpu)
    gen_z = torch.randn([num_phases, batch, z_dim], device=device)
    gen_c = np.stack([training_set.get_label(np.random.randint(len(training_set))) for _ in range(num_phases * batch)])
    gen_c = torch.from_numpy(gen_c).to(device).reshape(num_phases, batch, gen_c.shape[1]) # [phase, batch, c_dim]
    return real_img, real_c, [z.split(batch_gpu) for z in gen_z], [c.split(batch_gpu) for c in gen_c]

#----------------------------------------------------------------------------

def run_phase(phase, loss, real_img, real_c, gen_z, gen_c, cur_nimg, num_gpus):
    """Accumulate the phase's gradients over the batch_gpu chunks, then take one optimizer step. The loss gain is the
    phase interval so that a lazy regularizer weighs as much as if it ran every minibatch."""
    with torch.autograd.profiler.record_function(phase.name):
        phase.timer.start()
        phase.opt.zero_grad(set_to_none=True)
        phase.module.requires_grad_(True)
        for img, c, z, gc in zip(real_img, real_c, gen_z, gen_c):
            loss.accumulate_gradients(phase=phase.name, real_img=img, real_c=c, gen_z=z, gen_c=gc, gain=phase.interval, cur_nimg=cur_nimg)
        phase.module.requires_grad_(False)
        step_optimizer(phase.module, phase.opt, num_gpus)
        phase.timer.stop()

#----------------------------------------------------------------------------

def run_phases(phases, loss, batch, cur_nimg, batch_idx, num_gpus):
    """One training step: every phase due at `batch_idx`, each with its own (z, c) draw from `batch` (see fetch_batch)."""
    real_img, real_c, all_gen_z, all_gen_c = batch
    for phase, gen_z, gen_c in zip(phases, all_gen_z, all_gen_c):
        if batch_idx % phase.interval == 0:
            run_phase(phase, loss, real_img, real_c, gen_z, gen_c, cur_nimg, num_gpus)

#----------------------------------------------------------------------------

def step_optimizer(module, opt, num_gpus):
    """Average the gradients over processes (one all-reduce of all grads flattened), replace NaN/inf, and step."""
    params = [param for param in module.parameters() if param.numel() > 0 and param.grad is not None]
    if len(params) > 0:
        flat = torch.cat([param.grad.flatten() for param in params])
        if is_distributed(num_gpus):
            torch.distributed.all_reduce(flat)
            flat /= num_gpus
        misc.nan_to_num(flat, nan=0, posinf=1e5, neginf=-1e5, out=flat)
        for param, grad in zip(params, flat.split([param.numel() for param in params])):
            param.grad = grad.reshape(param.shape)
    opt.step()

#----------------------------------------------------------------------------
# Exponential moving average of G.

def ema_beta(cur_nimg, batch_size, ema_kimg, ema_rampup):
    """Per-step EMA decay: the EMA half-life is ema_kimg thousand images, capped during ramp-up at
    ema_rampup times the images seen so far (so early G_ema is not dominated by the random init)."""
    ema_nimg = ema_kimg * 1000
    if ema_rampup is not None:
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    return 0.5 ** (batch_size / max(ema_nimg, 1e-8))

#----------------------------------------------------------------------------

def update_ema(G, G_ema, beta):
    """G_ema params <- p + beta * (p_ema - p), paired by position; buffers (w_avg, magnitude EMAs, ...) copied."""
    with torch.no_grad():
        for p_ema, p in zip(G_ema.parameters(), G.parameters()):
            p_ema.copy_(p.lerp(p_ema, beta))
        for b_ema, b in zip(G_ema.buffers(), G.buffers()):
            b_ema.copy_(b)

#----------------------------------------------------------------------------
# Adaptive discriminator augmentation.

def ada_adjustment(signs_real, ada_target, batch_size, ada_interval, ada_kimg):
    """Change of the augmentation probability p (StyleGAN2-ADA, Sec. 3): the overfitting heuristic
    r_t = E[sign(D(real))] above the target means D is overfitting, so p rises; below, p falls. The step size lets
    p move from 0 to 1 in ada_kimg thousand images. No measurement (NaN) means no change."""
    if not np.isfinite(signs_real):
        return 0.0
    return float(np.sign(signs_real - ada_target)) * (batch_size * ada_interval) / (ada_kimg * 1000)

#----------------------------------------------------------------------------

def adjust_ada(augment_pipe, ada_stats, ada_target, batch_size, ada_interval, ada_kimg):
    """Collect Loss/signs/real since the previous adjustment (over all processes) and move augment_pipe.p, kept >= 0."""
    ada_stats.update()
    adjust = ada_adjustment(ada_stats['Loss/signs/real'], ada_target, batch_size, ada_interval, ada_kimg)
    augment_pipe.p.copy_((augment_pipe.p + adjust).clamp(min=0))

#----------------------------------------------------------------------------
# Snapshots and metrics.

def make_snapshot_data(modules, training_set_kwargs, num_gpus):
    """The snapshot dict (G, D, G_ema, augment_pipe, training_set_kwargs): CPU deep copies in eval mode without
    grads. With several processes, first checks that every process holds the same weights."""
    snapshot_data = dict(training_set_kwargs=dict(training_set_kwargs))
    for name, module in modules.items():
        if module is not None:
            if is_distributed(num_gpus):
                misc.check_ddp_consistency(module, ignore_regex=r'.*\.[^.]+_(avg|ema)')
            module = copy.deepcopy(module).eval().requires_grad_(False).cpu()
        snapshot_data[name] = module
    return snapshot_data

#----------------------------------------------------------------------------

def snapshot_path(run_dir, cur_nimg):
    return os.path.join(run_dir, f'network-snapshot-{cur_nimg // 1000:06d}.pkl')

#----------------------------------------------------------------------------

def save_snapshot(path, snapshot_data):
    """Pickle the snapshot dict atomically."""
    write_file_atomic(path, lambda f: pickle.dump(snapshot_data, f))

#----------------------------------------------------------------------------

def evaluate_metrics(metrics, snapshot_data, snapshot_pkl, run_dir, num_gpus, rank, device):
    """Compute each metric on the snapshot's G_ema against its training data; rank 0 reports to metric-<name>.jsonl.
    Returns {result name: value} for the stats outputs."""
    results = dict()
    for metric in metrics:
        result_dict = metric_main.calc_metric(metric=metric, G=snapshot_data['G_ema'], dataset_kwargs=snapshot_data['training_set_kwargs'],
            num_gpus=num_gpus, rank=rank, device=device)
        if rank == 0:
            metric_main.report_metric(result_dict, run_dir=run_dir, snapshot_pkl=snapshot_pkl)
        results.update(result_dict.results)
    return results

#----------------------------------------------------------------------------

def snapshot_and_evaluate(run_dir, cur_nimg, modules, training_set_kwargs, metrics, num_gpus, rank, device):
    """Write network-snapshot-{kimg:06d}.pkl (rank 0) and evaluate the metrics on it (all ranks take part).
    Returns {result name: value}."""
    snapshot_data = make_snapshot_data(modules, training_set_kwargs, num_gpus)
    snapshot_pkl = snapshot_path(run_dir, cur_nimg)
    if rank == 0:
        save_snapshot(snapshot_pkl, snapshot_data)
    if len(metrics) == 0:
        return dict()
    if rank == 0:
        print('Evaluating metrics...')
    return evaluate_metrics(metrics, snapshot_data, snapshot_pkl, run_dir, num_gpus, rank, device)

#----------------------------------------------------------------------------
# Tick statistics.

def cpu_memory_gb():
    """Resident memory of this process in GiB (psutil when installed, else /proc on Linux, else 0)."""
    if importlib.util.find_spec('psutil') is not None:
        import psutil
        return psutil.Process(os.getpid()).memory_info().rss / 2**30
    if os.path.exists('/proc/self/statm'):
        with open('/proc/self/statm') as f:
            return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**30
    return 0.0

#----------------------------------------------------------------------------

def report_tick(cur_tick, cur_nimg, tick_start_nimg, start_time, tick_start_time, tick_end_time, maintenance_time, augment_pipe, device):
    """Report the tick's Progress/*, Timing/* and Resources/* stats and return the console status line."""
    tick_sec = tick_end_time - tick_start_time
    total_sec = tick_end_time - start_time
    gpu_mem_gb = gpu_reserved_gb = 0.0
    if device.type == 'cuda':
        gpu_mem_gb = torch.cuda.max_memory_allocated(device) / 2**30
        gpu_reserved_gb = torch.cuda.max_memory_reserved(device) / 2**30
        torch.cuda.reset_peak_memory_stats(device)
    augment_p = float(augment_pipe.p.cpu()) if augment_pipe is not None else 0.0
    report0 = training_stats.report0
    fields = [
        f"tick {report0('Progress/tick', cur_tick):<5d}",
        f"kimg {report0('Progress/kimg', cur_nimg / 1e3):<8.1f}",
        f"time {dnnlib.util.format_time(report0('Timing/total_sec', total_sec)):<12s}",
        f"sec/tick {report0('Timing/sec_per_tick', tick_sec):<7.1f}",
        f"sec/kimg {report0('Timing/sec_per_kimg', tick_sec / max(cur_nimg - tick_start_nimg, 1) * 1e3):<7.2f}",
        f"maintenance {report0('Timing/maintenance_sec', maintenance_time):<6.1f}",
        f"cpumem {report0('Resources/cpu_mem_gb', cpu_memory_gb()):<6.2f}",
        f"gpumem {report0('Resources/peak_gpu_mem_gb', gpu_mem_gb):<6.2f}",
        f"reserved {report0('Resources/peak_gpu_mem_reserved_gb', gpu_reserved_gb):<6.2f}",
        f"augment {report0('Progress/augment', augment_p):.3f}",
    ]
    report0('Timing/total_hours', total_sec / (60 * 60))
    report0('Timing/total_days', total_sec / (24 * 60 * 60))
    return ' '.join(fields)

#----------------------------------------------------------------------------

def report_phase_timings(phases):
    """Timing/<phase>: seconds of the latest run of each phase."""
    for phase in phases:
        seconds = phase.timer.seconds()
        if seconds is not None:
            training_stats.report0('Timing/' + phase.name, seconds)

#----------------------------------------------------------------------------

def open_tensorboard(run_dir):
    """A TensorBoard writer for run_dir, or None when TensorBoard is not installed."""
    try:
        import torch.utils.tensorboard as tensorboard
    except ImportError as err:
        print(f'Skipping tfevents export: {err}')
        return None
    return tensorboard.SummaryWriter(run_dir)

#----------------------------------------------------------------------------

def write_tick_stats(stats_jsonl, stats_tfevents, stats_dict, stats_metrics, timestamp, global_step, walltime):
    """One stats.jsonl line {name: {num, mean, std}, ..., timestamp} and, if enabled, TensorBoard scalars."""
    append_line(stats_jsonl, json.dumps(dict(stats_dict, timestamp=timestamp)) + '\n')
    if stats_tfevents is not None:
        for name, value in stats_dict.items():
            stats_tfevents.add_scalar(name, value.mean, global_step=global_step, walltime=walltime)
        for name, value in stats_metrics.items():
            stats_tfevents.add_scalar(f'Metrics/{name}', value, global_step=global_step, walltime=walltime)
        stats_tfevents.flush()

#----------------------------------------------------------------------------

def training_loop(
    run_dir                 = '.',      # Output directory.
    training_set_kwargs     = {},       # Options for training set.
    data_loader_kwargs      = {},       # Options for torch.utils.data.DataLoader.
    G_kwargs                = {},       # Options for generator network.
    D_kwargs                = {},       # Options for discriminator network.
    G_opt_kwargs            = {},       # Options for generator optimizer.
    D_opt_kwargs            = {},       # Options for discriminator optimizer.
    augment_kwargs          = None,     # Options for augmentation pipeline. None = disable.
    loss_kwargs             = {},       # Options for loss function.
    metrics                 = [],       # Metrics to evaluate during training.
    random_seed             = 0,        # Global random seed.
    num_gpus                = 1,        # Number of processes (GPUs, or CPU processes without CUDA) taking part.
    rank                    = 0,        # Rank of the current process in [0, num_gpus).
    batch_size              = 4,        # Total batch size for one training iteration. Can be larger than batch_gpu * num_gpus.
    batch_gpu               = 4,        # Number of samples processed at a time by one process.
    ema_kimg                = 10,       # Half-life of the exponential moving average (EMA) of generator weights.
    ema_rampup              = 0.05,     # EMA ramp-up coefficient. None = no rampup.
    G_reg_interval          = None,     # How often to perform regularization for G? None = disable lazy regularization.
    D_reg_interval          = 16,       # How often to perform regularization for D? None = disable lazy regularization.
    augment_p               = 0,        # Initial value of augmentation probability.
    ada_target              = None,     # ADA target value. None = fixed p.
    ada_interval            = 4,        # How often to perform ADA adjustment?
    ada_kimg                = 500,      # ADA adjustment speed, measured in how many kimg it takes for p to increase/decrease by one unit.
    total_kimg              = 25000,    # Total length of the training, measured in thousands of real images.
    kimg_per_tick           = 4,        # Progress snapshot interval.
    image_snapshot_ticks    = 50,       # How often to save image snapshots? None = disable.
    network_snapshot_ticks  = 50,       # How often to save network snapshots? None = disable.
    resume_pkl              = None,     # Network pickle to resume training from.
    resume_kimg             = 0,        # First kimg to report when resuming training.
    cudnn_benchmark         = True,     # Enable torch.backends.cudnn.benchmark?
    abort_fn                = None,     # Callback that determines whether to abort training. Must return consistent results across ranks.
    progress_fn             = None,     # Callback function for updating training progress. Called for all ranks.
):
    start_time = time.time()
    device = training_device(rank)
    configure_torch(random_seed, num_gpus, rank, cudnn_benchmark)

    if rank == 0:
        print('Loading training set...')
    training_set, training_set_iterator = build_training_set(training_set_kwargs, data_loader_kwargs, rank, num_gpus, batch_size, random_seed, device)
    if rank == 0:
        print(f'Num images: {len(training_set)}, image shape: {training_set.image_shape}, label shape: {training_set.label_shape}')
        print('Constructing networks...')
    G, D, G_ema = build_networks(training_set, G_kwargs, D_kwargs, device)
    if rank == 0 and resume_pkl is not None:
        print(f'Resuming from "{resume_pkl}"')
        resume_networks(resume_pkl, dict(G=G, D=D, G_ema=G_ema))
    if rank == 0:
        print_network_summaries(G, D, batch_gpu, device)

    augment_pipe = build_augment_pipe(augment_kwargs, augment_p, ada_target, device)
    ada_stats = training_stats.Collector(regex='Loss/signs/real') if (augment_pipe is not None and ada_target is not None) else None
    broadcast_modules([G, D, G_ema, augment_pipe], num_gpus)

    loss = dnnlib.util.construct_class_by_name(device=device, G=G, D=D, augment_pipe=augment_pipe, **loss_kwargs)
    phases = setup_phases(G, D, G_opt_kwargs, D_opt_kwargs, G_reg_interval, D_reg_interval, device)

    grid_size = grid_z = grid_c = None
    stats_jsonl = stats_tfevents = None
    if rank == 0:
        grid_size, grid_z, grid_c = export_initial_grids(run_dir, training_set, G_ema, batch_gpu, device)
        stats_jsonl = os.path.join(run_dir, 'stats.jsonl')
        stats_tfevents = open_tensorboard(run_dir)
    stats_collector = training_stats.Collector(regex='.*')
    stats_metrics = dict()

    if rank == 0:
        print(f'Training for {total_kimg} kimg...\n')
    cur_nimg = resume_kimg * 1000
    cur_tick = 0
    batch_idx = 0
    tick_start_nimg = cur_nimg
    tick_start_time = time.time()
    maintenance_time = tick_start_time - start_time
    if progress_fn is not None:
        progress_fn(cur_nimg // 1000, total_kimg)

    while True:
        # One training step: every phase due at this batch index, then EMA and ADA.
        batch = fetch_batch(training_set_iterator, training_set, len(phases), batch_gpu, G.z_dim, device)
        run_phases(phases, loss, batch, cur_nimg, batch_idx, num_gpus)
        update_ema(G, G_ema, ema_beta(cur_nimg, batch_size, ema_kimg, ema_rampup))
        cur_nimg += batch_size
        batch_idx += 1
        if ada_stats is not None and batch_idx % ada_interval == 0:
            adjust_ada(augment_pipe, ada_stats, ada_target, batch_size, ada_interval, ada_kimg)
        if progress_fn is not None:
            progress_fn(cur_nimg // 1000, total_kimg)

        # Tick maintenance: tick 0 ends after the first step, later ticks every kimg_per_tick.
        done = (cur_nimg >= total_kimg * 1000)
        if (not done) and (cur_tick != 0) and (cur_nimg < tick_start_nimg + kimg_per_tick * 1000):
            continue
        tick_end_time = time.time()
        status = report_tick(cur_tick, cur_nimg, tick_start_nimg, start_time, tick_start_time, tick_end_time, maintenance_time, augment_pipe, device)
        if rank == 0:
            print(status)
        if (not done) and (abort_fn is not None) and abort_fn():
            done = True
            if rank == 0:
                print('\nAborting...')

        if rank == 0 and (image_snapshot_ticks is not None) and (done or cur_tick % image_snapshot_ticks == 0):
            save_fakes_grid(run_dir, cur_nimg, G_ema, grid_size, grid_z, grid_c)
        if (network_snapshot_ticks is not None) and (done or cur_tick % network_snapshot_ticks == 0):
            stats_metrics.update(snapshot_and_evaluate(run_dir, cur_nimg, dict(G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe),
                training_set_kwargs, metrics, num_gpus, rank, device))

        report_phase_timings(phases)
        stats_collector.update()
        timestamp = time.time()
        if rank == 0:
            write_tick_stats(stats_jsonl, stats_tfevents, stats_collector.as_dict(), stats_metrics, timestamp,
                global_step=int(cur_nimg / 1e3), walltime=timestamp - start_time)

        cur_tick += 1
        tick_start_nimg = cur_nimg
        tick_start_time = time.time()
        maintenance_time = tick_start_time - tick_end_time
        if done:
            break

    if rank == 0:
        print('\nExiting...')

#----------------------------------------------------------------------------
