"""Training loop of StyleSV (Zhang et al., Towards Smooth Video Composition, ICLR 2023, arXiv 2212.07413) on the public StyleGAN3 API.

One loop runs both stages of the paper: image pre-training (clips of 1 frame, the upstream StyleGAN3 generator,
StyleGAN2 discriminator and loss, ADA) and video fine-tuning (clips of `frames` frames at random times,
VideoGenerator / VideoDiscriminator / VideoLoss). It is assembled from the public upstream pieces only, so it
runs unchanged on NVIDIA's release in third_party/stylegan3, and adds what the upstream loop lacks: CPU or CUDA
processes (self-spawned or torchrun), kimg counted in frames, the full training state saved beside every snapshot
and restored on resume, preview videos, video metrics with a kept best snapshot, and a stop on NaN/Inf.
"""

import copy
import functools
import os
import pickle
import sys
import time
import traceback

import numpy as np
import torch

import svc_plugin # Puts the upstream layer on sys.path.
import dnnlib
from metrics import metric_main
from torch_utils import misc
from torch_utils import training_stats
from torch_utils.ops import conv2d_gradfix
from torch_utils.ops import grid_sample_gradfix
from svc_plugin import checkpoint
from svc_plugin import dataset
from svc_plugin import distributed
from svc_plugin import fileio
from svc_plugin import motion_meter
from svc_plugin import previews
from svc_plugin import runs
from svc_plugin import tfevents
from svc_plugin import training_state
from svc_plugin.metrics import video_metrics # Registers FVD, FID over frames and smoothness with metric_main.

try:
    import resource # Unix only: peak memory of the process.
except ImportError:
    resource = None

#----------------------------------------------------------------------------

class TrainingStopped(Exception):
    """The run stopped itself (NaN/Inf, unusable resume state); the message is meant for the user."""

#----------------------------------------------------------------------------
# Each process of a run (svc_plugin.distributed starts one per GPU): the stages, one after the other.

def run_stages(rank, num_gpus, run_dir, stages):
    """Train the stages one after the other in this process; a stage after the first starts from the previous one's
    best snapshot if it kept one, else its last (weights only, image -> video), and continues its kimg count. Rank 0
    tees its output into log.txt.
    An error is printed with its traceback (into log.txt on rank 0) before it propagates."""
    log_file = os.path.join(run_dir, 'log.txt') if rank == 0 else None
    with dnnlib.util.Logger(file_name=log_file, file_mode='a', should_flush=True):
        try:
            previous = None
            for stage in stages:
                kwargs = dict(stage)
                if previous is not None:
                    resume_pkl, which = runs.video_stage_start(previous.snapshot_pkl, previous.best)
                    if rank == 0:
                        print(which)
                    kwargs.update(resume_pkl=resume_pkl, resume_kimg=previous.cur_nimg / 1000)
                previous = training_loop(run_dir=run_dir, rank=rank, num_gpus=num_gpus, **kwargs)
        except (TrainingStopped, OSError) as err: # The run's own verdict, or the environment's (disk full, ...): the message says it all.
            if rank == 0 or not isinstance(err, TrainingStopped):
                print(f'\nrank {rank}: {err}', file=sys.stderr)
            raise
        except BaseException: # A bug, or KeyboardInterrupt: say where it happened, then let it end the process.
            print(f'\nrank {rank}: training failed:\n{traceback.format_exc()}', file=sys.stderr)
            raise

def launch(stages, num_gpus, open_run_dir):
    """Train `stages` (a list of training_loop kwargs) in num_gpus processes (svc_plugin.distributed.launch).
    open_run_dir() runs once, on global rank 0: it creates and returns the run directory, or None for a dry run."""
    distributed.launch(functools.partial(run_stages, stages=stages), num_gpus, prepare=open_run_dir)

#----------------------------------------------------------------------------
# Networks: fresh, or from a snapshot (straight load, or an image snapshot turned into video networks).

def video_only_kwargs(kwargs, image_module):
    """The constructor options of `kwargs` that an image module does not have (motion_kwargs, num_frames, tsm, ...)."""
    return {key: value for key, value in kwargs.items() if key != 'class_name' and key not in image_module.init_kwargs}

def networks_from_snapshot(snapshot, G_kwargs, D_kwargs):
    """G, D, G_ema of the kind G_kwargs/D_kwargs name, from a snapshot: the snapshot's own modules when they are of
    that kind, else (an image snapshot for a video run) video modules built from them with every image weight."""
    G_class = dnnlib.util.get_obj_by_name(G_kwargs['class_name'])
    D_class = dnnlib.util.get_obj_by_name(D_kwargs['class_name'])
    if type(snapshot['G']).__name__ == G_class.__name__:
        return snapshot['G'], snapshot['D'], snapshot['G_ema']
    if not hasattr(G_class, 'from_image_generator'):
        raise TrainingStopped(f'cannot train a {G_class.__name__} from a snapshot of a {type(snapshot["G"]).__name__}')
    G = G_class.from_image_generator(snapshot['G'], **video_only_kwargs(G_kwargs, snapshot['G']))
    G_ema = G_class.from_image_generator(snapshot['G_ema'], **video_only_kwargs(G_kwargs, snapshot['G_ema']))
    copy_new_weights(G, G_ema, image_module=snapshot['G_ema'])
    D = D_class.from_image_discriminator(snapshot['D'], **video_only_kwargs(D_kwargs, snapshot['D']))
    return G, D, G_ema

def copy_new_weights(src, dst, image_module):
    """Copy into dst src's params and buffers that image_module has no counterpart of (motion encoder, fusion,
    input offset, ...): G and G_ema start from one draw of the video-only weights, not two, while each keeps its
    own image weights."""
    image_names = {name for name, _ in misc.named_params_and_buffers(image_module)}
    src_tensors = dict(misc.named_params_and_buffers(src))
    with torch.no_grad():
        for name, tensor in misc.named_params_and_buffers(dst):
            if name not in image_names:
                tensor.copy_(src_tensors[name])

def build_networks(training_set, G_kwargs, D_kwargs, snapshot):
    """G, D, G_ema for the dataset: from the resume snapshot if there is one, else freshly initialised."""
    if snapshot is not None:
        G, D, G_ema = networks_from_snapshot(snapshot, G_kwargs, D_kwargs)
    else:
        shape_kwargs = dict(c_dim=training_set.label_dim, img_resolution=training_set.resolution, img_channels=training_set.num_channels)
        G = dnnlib.util.construct_class_by_name(**G_kwargs, **shape_kwargs)
        D = dnnlib.util.construct_class_by_name(**D_kwargs, **shape_kwargs)
        G_ema = copy.deepcopy(G)
    for name, module in dict(G=G, D=D).items():
        if (module.img_resolution, module.img_channels) != (training_set.resolution, training_set.num_channels):
            raise TrainingStopped(f'the resumed {name} makes {module.img_channels}-channel {module.img_resolution}x{module.img_resolution} '
                f'images but the dataset has {training_set.num_channels}-channel {training_set.resolution}x{training_set.resolution} frames')
    return G.train().requires_grad_(False), D.train().requires_grad_(False), G_ema.eval().requires_grad_(False)

def build_augment_pipe(augment_kwargs, augment_p, ada_target, snapshot):
    """The augmentation pipe (None when augmentation is off); p continues from a snapshot of the same pipe."""
    if augment_kwargs is None or not (augment_p > 0 or ada_target is not None):
        return None
    augment_pipe = dnnlib.util.construct_class_by_name(**augment_kwargs).train().requires_grad_(False)
    augment_pipe.p.fill_(float(augment_p))
    if snapshot is not None and snapshot.get('augment_pipe') is not None:
        augment_pipe.p.copy_(snapshot['augment_pipe'].p)
    return augment_pipe

def print_summaries(G, D, frames, device):
    """Layer tables of G and D, run on one zero clip per mbstd group. Without cuDNN autotuning: these 4-clip shapes are
    seldom the training step's, so tuning them would mostly delay the first step."""
    clips = 4
    z = torch.zeros([clips, G.z_dim], device=device)
    c = torch.zeros([clips, G.c_dim], device=device)
    inputs = [z, c] if frames == 1 else [z, c, torch.arange(frames, device=device, dtype=torch.float32).repeat(clips, 1)] # t: [clips, frames]
    benchmark, torch.backends.cudnn.benchmark = torch.backends.cudnn.benchmark, False
    try:
        images = misc.print_module_summary(G, inputs)
        misc.print_module_summary(D, [images, *inputs[1:]])
    finally:
        torch.backends.cudnn.benchmark = benchmark

#----------------------------------------------------------------------------
# Optimisation: phases with lazy regularisation, gradients averaged over processes, G_ema, ADA.

def make_phases(G, D, G_opt_kwargs, D_opt_kwargs, G_reg_interval, D_reg_interval):
    """Training phases and the optimizers {'G': ..., 'D': ...}. A network without lazy regularisation has one phase
    '<X>both'; with it, '<X>main' every step and '<X>reg' every `interval` steps, sharing one optimizer that therefore
    steps (interval + 1) / interval times as often, so its lr and betas are scaled to compensate (StyleGAN2, App. B)."""
    phases, optimizers = [], {}
    for net, module, opt_kwargs, interval in (('G', G, G_opt_kwargs, G_reg_interval), ('D', D, D_opt_kwargs, D_reg_interval)):
        scale = 1 if interval is None else interval / (interval + 1)
        kwargs = dict(opt_kwargs, lr=opt_kwargs['lr'] * scale)
        if 'betas' in opt_kwargs:
            kwargs['betas'] = [float(beta) ** scale for beta in opt_kwargs['betas']] # Floats: current torch rejects a mixed [0, 0.99].
        optimizers[net] = dnnlib.util.construct_class_by_name(params=module.parameters(), **kwargs)
        schedule = [('both', 1)] if interval is None else [('main', 1), ('reg', interval)]
        phases += [dnnlib.EasyDict(name=net + part, module=module, opt=optimizers[net], interval=every) for part, every in schedule]
    return phases, optimizers

def train_step(phases, loss, reals, fakes_per_phase, cur_nimg, batch_idx, num_gpus):
    """Every phase due at batch_idx: accumulate its gradients over the chunks, average them, step. The gain is the
    phase interval, so a lazy regulariser weighs as much as if it ran every step."""
    real_images, real_c, real_t = reals
    batch_gpu = real_c[0].shape[0]
    for phase, fakes in zip(phases, fakes_per_phase):
        if batch_idx % phase.interval != 0:
            continue
        phase.opt.zero_grad(set_to_none=True)
        phase.module.requires_grad_(True)
        gen_z, gen_c, gen_t = (x.split(batch_gpu) if x is not None else [None] * len(real_c) for x in fakes)
        for images, c, t, z, gc, gt in zip(real_images, real_c, real_t, gen_z, gen_c, gen_t):
            times = {} if gt is None else dict(real_t=t, gen_t=gt) # Clips of several frames: VideoLoss takes their times.
            loss.accumulate_gradients(phase=phase.name, real_img=images, real_c=c, gen_z=z, gen_c=gc, gain=phase.interval, cur_nimg=cur_nimg, **times)
        phase.module.requires_grad_(False)
        distributed.average_gradients(phase.module, num_gpus)
        phase.opt.step()

def ema_beta(cur_nimg, step_nimg, ema_kimg, ema_rampup):
    """G_ema decay per step of step_nimg frames: half-life ema_kimg thousand frames, during ramp-up at most
    ema_rampup times the frames seen so far."""
    half_life = ema_kimg * 1000
    if ema_rampup is not None:
        half_life = min(half_life, cur_nimg * ema_rampup)
    return 0.5 ** (step_nimg / max(half_life, 1e-8))

def update_ema(G, G_ema, beta):
    """G_ema <- beta * G_ema + (1 - beta) * G for parameters (paired by position); buffers copied from G."""
    with torch.no_grad():
        for average, live in zip(G_ema.parameters(), G.parameters()):
            average.lerp_(live, 1 - beta)
        for average, live in zip(G_ema.buffers(), G.buffers()):
            average.copy_(live)

class AdaptiveAugment:
    """ADA (Karras et al. 2020, §3): every `interval` steps, p rises when E[sign(D(real))] since the previous
    adjustment exceeds the target (D overfits) and falls otherwise, fast enough to cross [0, 1] in ada_kimg thousand
    clips (one sign per clip, as StyleGAN-V: in a video stage p moves per clip, not per frame); p >= 0. The signs gathered since the last adjustment (`pending`: count, sum) belong to the training state,
    so a resumed run adjusts p exactly as the uninterrupted run would."""

    def __init__(self, augment_pipe, target, interval, ada_kimg):
        self.augment_pipe = augment_pipe
        self.target = target
        self.interval = interval
        self.ada_kimg = ada_kimg
        self.collector = training_stats.Collector(regex='Loss/signs/real', keep_previous=False)
        self.collector.update() # Forget what an earlier stage in this process reported.
        self.pending = [0.0, 0.0]

    def collect(self):
        """Add the signs reported since the last call (by every process) to `pending`."""
        self.collector.update()
        count = self.collector.num('Loss/signs/real')
        if count > 0:
            self.pending = [self.pending[0] + count, self.pending[1] + self.collector.mean('Loss/signs/real') * count]

    def step(self, batch_idx, step_clips):
        """After step batch_idx (counted from 1) of step_clips clips: adjust p if it is due."""
        if batch_idx % self.interval != 0:
            return
        self.collect()
        count, total = self.pending
        self.pending = [0.0, 0.0]
        if count > 0:
            delta = np.sign(total / count - self.target) * step_clips * self.interval / (self.ada_kimg * 1000)
            self.augment_pipe.p.copy_((self.augment_pipe.p + delta).clamp(min=0))

#----------------------------------------------------------------------------
# Guard: a run whose losses or weights stop being finite ends before it writes another snapshot.

def find_non_finite(stats, modules):
    """Name of the first loss statistic, weight or floating-point buffer (w_avg, magnitude EMAs) that is NaN/Inf, or None."""
    for name, value in stats.items():
        if name.startswith('Loss/') and value.num > 0 and not np.isfinite(value.mean):
            return name
    for module_name, module in modules.items():
        for name, tensor in misc.named_params_and_buffers(module):
            if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
                return f'{module_name}.{name}'
    return None

#----------------------------------------------------------------------------
# Ticks: progress line, statistics.

def peak_cpu_memory_gb():
    """Peak resident memory of this process in GiB (0 where the resource module is missing)."""
    if resource is None:
        return 0.0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (2**30 if sys.platform == 'darwin' else 2**20)

def duration(seconds):
    return f'{dnnlib.util.format_time(seconds):<12s}'

def report_tick(cur_tick, cur_nimg, end_nimg, tick_nimg, tick_sec, total_sec, maintenance_sec, augment_pipe, device):
    """Report the tick's Progress/*, Timing/* and Resources/* statistics (rank 0's) and return its console line."""
    sec_per_kimg = tick_sec / max(tick_nimg, 1) * 1000
    on_gpu = (device.type == 'cuda')
    fields = [ # (label, statistic, value, shown as)
        ('tick',        'Progress/tick',                        cur_tick,                                               '{:<5d}'.format),
        ('kimg',        'Progress/kimg',                        cur_nimg / 1000,                                        '{:<8.3f}'.format),
        ('time',        'Timing/total_sec',                     total_sec,                                              duration),
        ('sec/tick',    'Timing/sec_per_tick',                  tick_sec,                                               '{:<7.1f}'.format),
        ('sec/kimg',    'Timing/sec_per_kimg',                  sec_per_kimg,                                           '{:<7.2f}'.format),
        ('ETA',         'Timing/eta_sec',                       max(end_nimg - cur_nimg, 0) / 1000 * sec_per_kimg,      duration),
        ('maintenance', 'Timing/maintenance_sec',               maintenance_sec,                                        '{:<6.1f}'.format),
        ('cpumem',      'Resources/cpu_mem_gb',                 peak_cpu_memory_gb(),                                   '{:<6.2f}'.format),
        ('gpumem',      'Resources/peak_gpu_mem_gb',            torch.cuda.max_memory_allocated(device) / 2**30 if on_gpu else 0.0, '{:<6.2f}'.format),
        ('reserved',    'Resources/peak_gpu_mem_reserved_gb',   torch.cuda.max_memory_reserved(device) / 2**30 if on_gpu else 0.0, '{:<6.2f}'.format),
        ('augment',     'Progress/augment',                     float(augment_pipe.p) if augment_pipe is not None else 0.0, '{:.3f}'.format),
    ]
    if on_gpu:
        torch.cuda.reset_peak_memory_stats(device)
    training_stats.report0('Timing/total_hours', total_sec / 3600)
    training_stats.report0('Timing/total_days', total_sec / 86400)
    return '  '.join(f'{label} {show(training_stats.report0(name, value))}' for label, name, value, show in fields)

def report_motion(meter, G_ema):
    """Report the motion meter's Motion/* statistics (rank 0's) and Timing/motion_meter_sec; return its part of the console line."""
    began = time.time()
    values = meter.measure(G_ema)
    training_stats.report0('Timing/motion_meter_sec', time.time() - began)
    return f"  motion {training_stats.report0('Motion/ratio', values['Motion/ratio']):<6.3f}  jerk {training_stats.report0('Motion/jerk', values['Motion/jerk']):.3f}"

#----------------------------------------------------------------------------
# Snapshot writing and metrics.

def snapshot_dict(G, D, G_ema, augment_pipe, training_set_kwargs, fps, num_gpus):
    """The upstream snapshot dict: CPU copies in eval mode without grads, plus the dataset's frame rate (key 'fps' when
    the dataset records one; upstream loaders ignore extra keys), so that videos play at the data's speed. With several
    processes, first checks that every rank holds rank 0's weights (running averages, kept per rank, excepted)."""
    data = dict(training_set_kwargs=dict(training_set_kwargs))
    if fps is not None:
        data['fps'] = fps
    for name, module in dict(G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe).items():
        if module is not None:
            if distributed.is_multiprocess(num_gpus):
                misc.check_ddp_consistency(module, ignore_regex=training_state.RUNNING_AVERAGES)
            module = copy.deepcopy(module).cpu().requires_grad_(False).eval()
        data[name] = module
    if distributed.is_multiprocess(num_gpus) and torch.distributed.get_rank() == 0:
        print(f'Weights checked: all {num_gpus} processes hold the same G, D, G_ema and augment pipe.')
    return data

def write_weights_only(snapshot_pkl, snapshot):
    """network-snapshot-NNNNNN.pt beside the pickle: the same networks as a weights-only checkpoint (svc_plugin.checkpoint)."""
    path = runs.weights_only_path(snapshot_pkl)
    try:
        checkpoint.save_weights(path, snapshot)
    except OSError as err:
        raise OSError(f'{err}{runs.RESUME_HINT}') from err

def evaluate_metrics(metrics, snapshot, snapshot_pkl, run_dir, num_gpus, rank, device):
    """{result name: value} of every metric on the snapshot's G_ema; rank 0 appends them to metric-<name>.jsonl."""
    results = {}
    for metric in metrics:
        result = metric_main.calc_metric(metric=metric, G=snapshot['G_ema'], dataset_kwargs=snapshot['training_set_kwargs'],
            num_gpus=num_gpus, rank=rank, device=device)
        if rank == 0:
            metric_main.report_metric(result, run_dir=run_dir, snapshot_pkl=snapshot_pkl)
        results[metric] = result.results
    return results

def save_snapshot(run_dir, progress, trainer, training_set_kwargs, fps, metrics, export_safe, num_gpus, rank, device):
    """Write network-snapshot-<kimg>.pkl with its training state (rank 0) and, with export_safe, its weights-only twin .pt,
    evaluate the metrics on it (every rank) and keep best-<metric>.pkl. Returns EasyDict(snapshot_pkl, cur_nimg, metrics)."""
    snapshot = snapshot_dict(trainer.G, trainer.D, trainer.G_ema, trainer.augment_pipe, training_set_kwargs, fps, num_gpus)
    snapshot_pkl = runs.snapshot_pkl_path(run_dir, progress.cur_nimg)
    snapshot_bytes = pickle.dumps(snapshot)
    if trainer.ada is not None:
        trainer.ada.collect() # Every rank, so that the pending signs are complete and the same everywhere.
    state = training_state.capture(progress, trainer, num_gpus, snapshot_bytes)
    if rank == 0:
        runs.write_snapshot(snapshot_pkl, snapshot_bytes, state)
        if export_safe:
            write_weights_only(snapshot_pkl, snapshot)
    results = {}
    if len(metrics) > 0:
        if rank == 0:
            print('Evaluating metrics...')
        with training_state.random_streams_kept(trainer.rnd): # As saved in the state: a resumed run draws what this one does.
            results = evaluate_metrics(metrics, snapshot, snapshot_pkl, run_dir, num_gpus, rank, device)
        best = progress.best
        if best['metric'] is not None and (best['value'] is None or metric_value(results, best['metric']) < best['value']):
            progress.best = dict(best, value=metric_value(results, best['metric']), path=runs.best_pkl_path(run_dir, best['metric']),
                kimg=progress.cur_nimg / 1000)
            if rank == 0:
                fileio.write_bytes_atomically(progress.best['path'], snapshot_bytes, hint=runs.RESUME_HINT)
                fileio.replace_atomically(runs.state_path_of(snapshot_pkl), fileio.torch_writer(dict(state, best=progress.best)), hint=runs.RESUME_HINT)
    return dnnlib.EasyDict(snapshot_pkl=snapshot_pkl, cur_nimg=progress.cur_nimg, metrics=results)

def metric_value(results, metric):
    """The number that ranks snapshots for `metric`: its result of the same name, else its only result."""
    values = results[metric]
    if metric in values:
        return float(values[metric])
    if len(values) != 1:
        raise ValueError(f'best_metric={metric!r} gives several results ({", ".join(values)}); name one of them')
    return float(next(iter(values.values())))

#----------------------------------------------------------------------------

def training_loop(
    run_dir                 = '.',      # Run directory: snapshots, training states, previews, stats, log.
    training_set_kwargs     = {},       # Clip dataset (svc_plugin.dataset.VideoFramesFolderDataset kwargs, frames included).
    data_loader_kwargs      = {},       # torch.utils.data.DataLoader options (num_workers, pin_memory, prefetch_factor).
    G_kwargs                = {},       # Generator: networks_stylegan3.Generator (image stage) or VideoGenerator.
    D_kwargs                = {},       # Discriminator: networks_stylegan2.Discriminator or VideoDiscriminator.
    G_opt_kwargs            = {},       # Generator optimizer.
    D_opt_kwargs            = {},       # Discriminator optimizer.
    augment_kwargs          = None,     # Augmentation pipe, None = no augmentation.
    loss_kwargs             = {},       # Loss: upstream StyleGAN2Loss (image stage) or VideoLoss (clips).
    metrics                 = [],       # Metrics evaluated at every network snapshot.
    random_seed             = 0,        # Global seed; rank r uses random_seed * num_gpus + r.
    num_gpus                = 1,        # Processes taking part (GPUs, or CPU processes without CUDA).
    rank                    = 0,        # This process's rank in [0, num_gpus).
    batch_size              = 4,        # Clips per step, over all processes.
    batch_gpu               = 4,        # Clips per forward pass of one process (gradient accumulation below batch_size / num_gpus).
    ema_kimg                = 10,       # Half-life of G_ema, in thousands of frames.
    ema_rampup              = 0.05,     # G_ema half-life ramp-up as a fraction of the frames seen, None = off.
    G_reg_interval          = None,     # Lazy regularisation interval of G, None = none (no path length).
    D_reg_interval          = 16,       # Lazy R1 interval of D, None = every step together with the main loss.
    augment_p               = 0,        # Initial augmentation probability.
    ada_target              = None,     # ADA target of E[sign(D(real))], None = fixed p.
    ada_interval            = 4,        # Steps between ADA adjustments.
    ada_kimg                = 500,      # Thousands of clips for ADA to move p by 1.
    total_kimg              = 25000,    # Length of this stage in thousands of frames, counted from its start.
    kimg_per_tick           = 4,        # Thousands of frames per tick (progress line, stats).
    image_snapshot_ticks    = 50,       # Ticks between preview grids / videos, None = none.
    network_snapshot_ticks  = 50,       # Ticks between network snapshots (+ training state, metrics), None = at the end only.
    resume_pkl              = None,     # Snapshot to start from; its training state, when saved beside it, is restored too.
    resume_kimg             = 0,        # Where this stage starts on the kimg axis when the state is not restored.
    cudnn_benchmark         = True,     # torch.backends.cudnn.benchmark.
    frames                  = 1,        # Frames per clip (1 = image stage); kimg counts frames: batch_size * frames per step.
    best_metric             = None,     # Keep best-<metric>.pkl, a copy of the snapshot with the lowest value of this metric.
    preview_frames          = 32,       # Frames of the preview videos.
    preview_grid            = None,     # Columns x rows of the previews, None = 16 x 8 images at most (image stage), 4 x 2 videos.
    export_safe             = False,    # Also write each snapshot as a weights-only checkpoint network-snapshot-<kimg>.pt.
    motion_meter_videos     = 4,        # Video stage: G_ema clips of the motion meter at every tick (Motion/*), 0 = off.
):
    """Train one stage; returns EasyDict(snapshot_pkl, cur_nimg) of its last snapshot and its best so far (best)."""
    start_time = time.time()
    device = distributed.current_device()
    rnd = training_state.seed_everything(random_seed * num_gpus + rank)
    torch.backends.cudnn.benchmark = cudnn_benchmark
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False # Full float32 precision.
    conv2d_gradfix.enabled = grid_sample_gradfix.enabled = True # Double backward for R1.
    for metric in metrics: # Names of the general form fvd<videos>_<frames>f exist once registered, in every process.
        if not video_metrics.is_valid_metric(metric):
            raise ValueError(f'unknown metric {metric!r}')
    if best_metric is not None and best_metric not in metrics:
        raise ValueError(f'best_metric={best_metric!r} is not one of the metrics {metrics}')

    # Resume source: a snapshot, and its training state when it has one of the same kind of networks.
    snapshot = state = None
    if resume_pkl is not None:
        if rank == 0:
            print(f'Resuming from "{resume_pkl}"')
        snapshot = checkpoint.load_network(resume_pkl)
        state = runs.load_training_state(resume_pkl)
        if state is not None and state['generator'] != G_kwargs['class_name'].rsplit('.', 1)[-1]:
            state = None # Image snapshot -> video stage: weights only, the kimg count continues from resume_kimg.
    start_nimg = int(round(resume_kimg * 1000))
    progress = training_state.Progress(stage_start_nimg=start_nimg, cur_nimg=start_nimg, best=dict(metric=best_metric, value=None, path=None), ema_rampup=ema_rampup)

    # Data, first: opening the loader draws DataLoader's base seed from torch's RNG, which is then as in the run resumed.
    if rank == 0:
        print('Loading training set...')
    training_set = dnnlib.util.construct_class_by_name(**training_set_kwargs)
    clips_per_rank = batch_size // num_gpus
    clips_done = (state['batch_idx'] if state is not None else 0) * clips_per_rank
    clip_stream = dataset.open_clip_stream(training_set, data_loader_kwargs, rank, num_gpus, clips_per_rank, clips_done, random_seed, device)
    if rank == 0:
        print(f'Num clips: {len(training_set)}, frames per clip: {frames}, frame shape: {training_set.image_shape}, label shape: {training_set.label_shape}')
        print('Constructing networks...')
    G, D, G_ema = build_networks(training_set, G_kwargs, D_kwargs, snapshot)
    augment_pipe = build_augment_pipe(augment_kwargs, augment_p, ada_target, snapshot)
    G, D, G_ema = G.to(device), D.to(device), G_ema.to(device)
    augment_pipe = augment_pipe.to(device) if augment_pipe is not None else None
    if rank == 0:
        print_summaries(G, D, frames, device)
    distributed.broadcast_from_rank0([G, D, G_ema, augment_pipe], num_gpus)
    loss = dnnlib.util.construct_class_by_name(device=device, G=G, D=D, augment_pipe=augment_pipe, **loss_kwargs)
    phases, optimizers = make_phases(G, D, G_opt_kwargs, D_opt_kwargs, G_reg_interval, D_reg_interval)
    ada = AdaptiveAugment(augment_pipe, ada_target, ada_interval, ada_kimg) if (augment_pipe is not None and ada_target is not None) else None
    trainer = training_state.Trainer(G=G, D=D, G_ema=G_ema, augment_pipe=augment_pipe, loss=loss, optimizers=optimizers, ada=ada, rnd=rnd)

    # Counters, optimizer states, RNG and loss state: from the training state, or a fresh start at resume_kimg.
    if state is not None:
        training_state.restore(state, progress, trainer, num_gpus, rank, run_dir)
    cur_nimg, cur_tick, batch_idx = progress.cur_nimg, progress.cur_tick, progress.batch_idx
    end_nimg = progress.stage_start_nimg + int(round(total_kimg * 1000))
    fresh_start = (cur_nimg == 0)

    # Outputs: the real data and the starting point, then a stats line per tick.
    previewer = events = None
    if rank == 0:
        events = tfevents.EventsWriter(run_dir, purge_nimg=cur_nimg if state is not None else None)
        print('Exporting previews...')
        previewer = previews.Previews(run_dir, training_set, G.z_dim, frames, preview_grid or ((4, 2) if frames > 1 else (16, 8)), preview_frames, batch_gpu, random_seed, device)
        previewer.save_reals(training_set)
        events.add_image('Previews/fakes', previewer.save(G_ema, '_init'), cur_nimg)
    meter = motion_meter.MotionMeter(training_set, training_set_kwargs, G.z_dim, device, videos=motion_meter_videos, seed=random_seed) \
        if (frames > 1 and motion_meter_videos > 0) else None
    tick_stats = training_stats.Collector(regex='.*')
    tick_stats.update() # Forget what an earlier stage in this process reported.
    last = dnnlib.EasyDict(snapshot_pkl=resume_pkl, cur_nimg=cur_nimg)

    if rank == 0:
        print(f'Training from kimg {cur_nimg / 1000:.3f} to {end_nimg / 1000:.3f} (frames)...\n')
    step_nimg = batch_size * frames
    tick = dnnlib.EasyDict(first_nimg=cur_nimg, began=time.time()) # The tick under way.
    tick.maintenance_sec = tick.began - start_time # Set-up, then each tick's snapshot, previews and metrics.
    while True:
        # One step: real clips, one draw of generator inputs per phase, every phase due, G_ema, ADA.
        reals = dataset.real_clips(clip_stream, frames, batch_gpu, device)
        fakes = [dataset.generator_inputs(rnd, training_set, clips_per_rank, frames, G.z_dim, device) for _ in phases]
        train_step(phases, loss, reals, fakes, cur_nimg, batch_idx, num_gpus)
        update_ema(G, G_ema, ema_beta(cur_nimg, step_nimg, ema_kimg, progress.ema_rampup))
        cur_nimg += step_nimg
        batch_idx += 1
        if ada is not None:
            ada.step(batch_idx, batch_size)

        # A tick ends after the first step, then every kimg_per_tick.
        done = (cur_nimg >= end_nimg)
        if not done and cur_nimg < tick.first_nimg + kimg_per_tick * 1000 and not (fresh_start and cur_tick == 0):
            continue
        tick.ended = time.time()
        status = report_tick(cur_tick, cur_nimg, end_nimg, cur_nimg - tick.first_nimg, tick.ended - tick.began,
            tick.ended - start_time, tick.maintenance_sec, augment_pipe, device)
        if meter is not None:
            status += report_motion(meter, G_ema)
        if rank == 0:
            print(status)
        tick_stats.update()
        stats = tick_stats.as_dict()
        if rank == 0:
            fileio.append_jsonl(os.path.join(run_dir, 'stats.jsonl'), dict(stats, timestamp=time.time()))
            events.add_stats(stats, cur_nimg)
        bad = find_non_finite(stats, dict(G=G, D=D, G_ema=G_ema))
        if bad is not None:
            raise TrainingStopped(f'{bad} is NaN/Inf at tick {cur_tick} (kimg {cur_nimg / 1000:.3f}): stopped without writing a snapshot. '
                f'Resume from the last snapshot with --resume=latest, e.g. with a lower learning rate or a larger --gamma.')

        first_tick = (cur_tick == 0 and fresh_start)
        if rank == 0 and image_snapshot_ticks is not None and (done or first_tick or (cur_tick > 0 and cur_tick % image_snapshot_ticks == 0)):
            events.add_image('Previews/fakes', previewer.save(G_ema, f'{cur_nimg // 1000:06d}'), cur_nimg)
        snapshot_due = done or first_tick or (network_snapshot_ticks is not None and cur_tick > 0 and cur_tick % network_snapshot_ticks == 0)
        if snapshot_due and not done and runs.replaces_previous_stage_snapshot(run_dir, cur_nimg, resume_pkl, progress.stage_start_nimg):
            snapshot_due = False # The previous stage's result stays; this stage's next snapshot gets a name of its own.
            if rank == 0:
                print(f'No snapshot at kimg {cur_nimg / 1000:.3f}: it would replace {os.path.basename(runs.snapshot_pkl_path(run_dir, cur_nimg))}, the previous stage\'s last.')
        if snapshot_due:
            progress.cur_nimg, progress.cur_tick, progress.batch_idx = cur_nimg, cur_tick, batch_idx
            last = save_snapshot(run_dir, progress, trainer, training_set_kwargs, training_set.fps, metrics, export_safe, num_gpus, rank, device)
            if rank == 0:
                events.add_metrics(last.metrics, cur_nimg)

        cur_tick += 1
        now = time.time()
        tick = dnnlib.EasyDict(first_nimg=cur_nimg, began=now, maintenance_sec=now - tick.ended)
        if done:
            break

    if rank == 0:
        events.close()
        print('\nExiting...')
    return dnnlib.EasyDict(last, best=progress.best)

#----------------------------------------------------------------------------
