"""Train a StyleGAN2 / StyleGAN3 image generator: command-line options -> config dict -> training_loop()."""

import json
import os
import re

import click
import torch

import dnnlib
import legacy
from metrics import metric_main
from torch_utils import custom_ops
from training import training_loop

#----------------------------------------------------------------------------

def run_training(rank, c):
    """Body of every training process once it has joined the process group: train, rank 0 teeing its output into
    run_dir/log.txt (the run directory exists only on rank 0's machine when torchrun spans several)."""
    log_file = os.path.join(c.run_dir, 'log.txt') if rank == 0 else None
    with dnnlib.util.Logger(file_name=log_file, file_mode='a', should_flush=True):
        if rank != 0:
            custom_ops.verbosity = 'none'
        training_loop.training_loop(rank=rank, **c)

#----------------------------------------------------------------------------

def subprocess_fn(rank, c, init_file):
    """Body of each process that train.py starts itself: join the group through the shared init file, train, leave."""
    training_loop.init_process_group(rank, c.num_gpus, init_file)
    run_training(rank, c)
    training_loop.close_process_group(c.num_gpus)
    training_loop.exit_worker_process(c.num_gpus)

#----------------------------------------------------------------------------

def next_run_dir(outdir, desc):
    """<outdir>/<NNNNN>-<desc> with NNNNN one above the largest numeric prefix already in outdir."""
    run_ids = []
    if os.path.isdir(outdir):
        for name in os.listdir(outdir):
            match = re.match(r'^\d+', name)
            if match is not None and os.path.isdir(os.path.join(outdir, name)):
                run_ids.append(int(match.group()))
    run_dir = os.path.join(outdir, f'{max(run_ids, default=-1) + 1:05d}-{desc}')
    assert not os.path.exists(run_dir)
    return run_dir

#----------------------------------------------------------------------------

def print_summary(c):
    print()
    print('Training options:')
    print(json.dumps(c, indent=2))
    print()
    print(f'Output directory:    {c.run_dir}')
    if torch.cuda.is_available():
        print(f'Number of GPUs:      {c.num_gpus}')
    else:
        print(f'Device:              CPU (no CUDA device found), {c.num_gpus} process(es)')
    print(f'Batch size:          {c.batch_size} images')
    print(f'Training duration:   {c.total_kimg} kimg')
    print(f'Dataset path:        {c.training_set_kwargs.path}')
    print(f'Dataset size:        {c.training_set_kwargs.max_size} images')
    print(f'Dataset resolution:  {c.training_set_kwargs.resolution}')
    print(f'Dataset labels:      {c.training_set_kwargs.use_labels}')
    print(f'Dataset x-flips:     {c.training_set_kwargs.xflip}')
    print()

#----------------------------------------------------------------------------

def create_run_dir(c, desc, outdir, dry_run):
    """Rank 0's part of the launch: pick the next run directory, print the options and, unless dry_run, create the
    directory with training_options.json. Returns the run directory, or None for a dry run."""
    c.run_dir = next_run_dir(outdir, desc)
    print_summary(c)
    if dry_run:
        print('Dry run; exiting.')
        return None
    print('Creating output directory...')
    os.makedirs(c.run_dir)
    training_loop.write_file_atomic(os.path.join(c.run_dir, 'training_options.json'), lambda f: json.dump(c, f, indent=2), mode='w')
    return c.run_dir

#----------------------------------------------------------------------------

def broadcast_from_rank0(value, num_gpus):
    """Rank 0's `value` (any picklable object) on every process."""
    if not training_loop.is_distributed(num_gpus):
        return value
    objects = [value]
    torch.distributed.broadcast_object_list(objects, src=0)
    return objects[0]

#----------------------------------------------------------------------------

def launch_spawned(c, desc, outdir, dry_run):
    """Plain `python train.py --gpus=N`: create the run directory, then train in this process (N = 1) or in N spawned ones."""
    if create_run_dir(c, desc, outdir, dry_run) is None:
        return
    print('Launching processes...')
    training_loop.launch_processes(subprocess_fn, (c,), c.num_gpus)

#----------------------------------------------------------------------------

def launch_under_torchrun(c, desc, outdir, dry_run, rank):
    """Every torchrun worker runs train.py: join the env:// group, let rank 0 create the run directory and tell
    the others its name, then train as `rank` of num_gpus (= the world size)."""
    training_loop.init_process_group(rank, c.num_gpus)
    run_dir = create_run_dir(c, desc, outdir, dry_run) if rank == 0 else None
    c.run_dir = broadcast_from_rank0(run_dir, c.num_gpus)
    if c.run_dir is not None:
        run_training(rank, c)
    training_loop.close_process_group(c.num_gpus)
    training_loop.exit_worker_process(c.num_gpus)

#----------------------------------------------------------------------------

def launch_training(c, desc, outdir, dry_run):
    """Train with the processes torchrun started, if it started this one, else with processes of our own."""
    env = training_loop.torchrun_env()
    if env is None:
        launch_spawned(c, desc, outdir, dry_run)
    else:
        launch_under_torchrun(c, desc, outdir, dry_run, rank=env.rank)

#----------------------------------------------------------------------------

def init_dataset_kwargs(data):
    """Dataset kwargs for `data` with resolution, labels and size read from the data itself; bad data -> click error."""
    if not os.path.exists(data):
        raise click.ClickException(f'--data: no such file or directory: {data}')
    dataset_kwargs = dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=data, use_labels=True, max_size=None, xflip=False)
    try:
        dataset_obj = dnnlib.util.construct_class_by_name(**dataset_kwargs) # Subclass of training.dataset.Dataset.
        dataset_kwargs.resolution = dataset_obj.resolution # Be explicit about resolution.
        dataset_kwargs.use_labels = dataset_obj.has_labels # Be explicit about labels.
        dataset_kwargs.max_size = len(dataset_obj) # Be explicit about dataset size.
        name = dataset_obj.name
        dataset_obj.close()
    except (OSError, ValueError, AssertionError) as err:
        raise click.ClickException(f'--data: {str(err) or type(err).__name__}')
    return dataset_kwargs, name

#----------------------------------------------------------------------------

def parse_comma_separated_list(s):
    """'a,b' -> ['a', 'b']; 'none' or '' -> []."""
    if isinstance(s, list):
        return s
    if s is None or s.lower() == 'none' or s == '':
        return []
    return s.split(',')

#----------------------------------------------------------------------------

def parse_metric_list(s):
    """--metrics: 'a,b' -> ['a', 'b'], each a registered metric, else a one-line click error (also used by calc_metrics.py)."""
    metrics = parse_comma_separated_list(s)
    invalid = [metric for metric in metrics if not metric_main.is_valid_metric(metric)]
    if len(invalid) > 0:
        raise click.ClickException(f'--metrics: unknown {", ".join(invalid)}; valid values: {", ".join(metric_main.list_valid_metrics())}')
    return metrics

#----------------------------------------------------------------------------

def build_config(opts):
    """The training_loop kwargs for the parsed command-line options."""
    c = dnnlib.EasyDict()
    c.G_kwargs = dnnlib.EasyDict(class_name=None, z_dim=512, w_dim=512, mapping_kwargs=dnnlib.EasyDict())
    c.D_kwargs = dnnlib.EasyDict(class_name='training.networks_stylegan2.Discriminator', block_kwargs=dnnlib.EasyDict(),
        mapping_kwargs=dnnlib.EasyDict(), epilogue_kwargs=dnnlib.EasyDict())
    c.G_opt_kwargs = dnnlib.EasyDict(class_name='torch.optim.Adam', betas=[0, 0.99], eps=1e-8)
    c.D_opt_kwargs = dnnlib.EasyDict(class_name='torch.optim.Adam', betas=[0, 0.99], eps=1e-8)
    c.loss_kwargs = dnnlib.EasyDict(class_name='training.loss.StyleGAN2Loss')
    c.data_loader_kwargs = dnnlib.EasyDict(pin_memory=True, prefetch_factor=2)

    # Data.
    c.training_set_kwargs, dataset_name = init_dataset_kwargs(data=opts.data)
    if opts.cond and not c.training_set_kwargs.use_labels:
        raise click.ClickException('--cond=True requires labels specified in dataset.json')
    c.training_set_kwargs.use_labels = opts.cond
    c.training_set_kwargs.xflip = opts.mirror

    # Hyperparameters and settings.
    is_sg2 = (opts.cfg == 'stylegan2')
    c.num_gpus = opts.gpus
    c.batch_size = opts.batch
    c.batch_gpu = opts.batch_gpu or opts.batch // opts.gpus
    c.G_kwargs.channel_base = c.D_kwargs.channel_base = opts.cbase
    c.G_kwargs.channel_max = c.D_kwargs.channel_max = opts.cmax
    c.G_kwargs.mapping_kwargs.num_layers = (8 if is_sg2 else 2) if opts.map_depth is None else opts.map_depth
    c.D_kwargs.block_kwargs.freeze_layers = opts.freezed
    c.D_kwargs.epilogue_kwargs.mbstd_group_size = opts.mbstd_group
    c.loss_kwargs.r1_gamma = opts.gamma
    c.G_opt_kwargs.lr = (0.002 if is_sg2 else 0.0025) if opts.glr is None else opts.glr
    c.D_opt_kwargs.lr = opts.dlr
    c.metrics = opts.metrics
    c.total_kimg = opts.kimg
    c.kimg_per_tick = opts.tick
    c.image_snapshot_ticks = c.network_snapshot_ticks = opts.snap
    c.random_seed = c.training_set_kwargs.random_seed = opts.seed
    c.data_loader_kwargs.num_workers = opts.workers
    c.ema_kimg = c.batch_size * 10 / 32

    # Architecture.
    if is_sg2:
        c.G_kwargs.class_name = 'training.networks_stylegan2.Generator'
        c.loss_kwargs.style_mixing_prob = 0.9 # Enable style mixing regularization.
        c.loss_kwargs.pl_weight = 2 # Enable path length regularization.
        c.G_reg_interval = 4 # Enable lazy regularization for G.
        c.G_kwargs.fused_modconv_default = 'inference_only' # Speed up training by using regular convolutions instead of grouped convolutions.
        c.loss_kwargs.pl_no_weight_grad = True # Speed up path length regularization by skipping gradient computation wrt. conv2d weights.
    else:
        c.G_kwargs.class_name = 'training.networks_stylegan3.Generator'
        c.G_kwargs.magnitude_ema_beta = 0.5 ** (c.batch_size / (20 * 1e3))
        if opts.cfg == 'stylegan3-r':
            c.G_kwargs.conv_kernel = 1 # Use 1x1 convolutions.
            c.G_kwargs.channel_base *= 2 # Double the number of feature maps.
            c.G_kwargs.channel_max *= 2
            c.G_kwargs.use_radial_filters = True # Use radially symmetric downsampling filters.
            c.loss_kwargs.blur_init_sigma = 10 # Blur the images seen by the discriminator.
            c.loss_kwargs.blur_fade_kimg = c.batch_size * 200 / 32 # Fade out the blur during the first N kimg.

    # Augmentation.
    if opts.aug != 'noaug':
        c.augment_kwargs = dnnlib.EasyDict(class_name='training.augment.AugmentPipe', xflip=1, rotate90=1, xint=1, scale=1,
            rotate=1, aniso=1, xfrac=1, brightness=1, contrast=1, lumaflip=1, hue=1, saturation=1)
        if opts.aug == 'ada':
            c.ada_target = opts.target
        if opts.aug == 'fixed':
            c.augment_p = opts.p

    # Resume.
    if opts.resume is not None:
        c.resume_pkl = opts.resume
        c.ada_kimg = 100 # Make ADA react faster at the beginning.
        c.ema_rampup = None # Disable EMA rampup.
        c.loss_kwargs.blur_init_sigma = 0 # Disable blur rampup.

    # Performance-related toggles.
    if opts.fp32:
        c.G_kwargs.num_fp16_res = c.D_kwargs.num_fp16_res = 0
        c.G_kwargs.conv_clamp = c.D_kwargs.conv_clamp = None
    if opts.nobench:
        c.cudnn_benchmark = False

    desc = f'{opts.cfg:s}-{dataset_name:s}-gpus{c.num_gpus:d}-batch{c.batch_size:d}-gamma{c.loss_kwargs.r1_gamma:g}'
    if opts.desc is not None:
        desc += f'-{opts.desc}'
    return c, desc

#----------------------------------------------------------------------------

def check_options(opts):
    """Option combinations that click's per-option types cannot check; each failure is a one-line click error."""
    if opts.batch % opts.gpus != 0:
        raise click.ClickException('--batch must be a multiple of --gpus')
    if opts.batch_gpu is not None and opts.batch % (opts.gpus * opts.batch_gpu) != 0:
        raise click.ClickException('--batch must be a multiple of --gpus times --batch-gpu')
    if (opts.batch_gpu or opts.batch // opts.gpus) < opts.mbstd_group:
        raise click.ClickException('--batch-gpu cannot be smaller than --mbstd-group')
    if opts.resume is not None:
        try: # Fail now, not after the training set and networks are built.
            with dnnlib.util.open_url(opts.resume) as f:
                legacy.load_network_pkl(f)
        except (OSError, ValueError) as err:
            raise click.ClickException(f'--resume: {err}')
    check_process_count(opts.gpus)

#----------------------------------------------------------------------------

def check_process_count(gpus):
    """--gpus must be the number of processes torchrun started (if it started this one) and fit the visible GPUs."""
    try:
        env = training_loop.torchrun_env()
    except ValueError as err:
        raise click.ClickException(str(err))
    if env is not None and gpus != env.world_size:
        raise click.ClickException(f'--gpus={gpus} but torchrun started {env.world_size} processes; under torchrun --gpus must equal the world size (nnodes x nproc_per_node)')
    local_gpus = gpus if env is None else env.local_rank + 1 # Under torchrun, this process needs CUDA device LOCAL_RANK.
    if torch.cuda.is_available() and local_gpus > torch.cuda.device_count():
        raise click.ClickException(f'--gpus={gpus} needs {local_gpus} CUDA device(s) on this machine but only {torch.cuda.device_count()} are visible')

#----------------------------------------------------------------------------

@click.command()

# Required.
@click.option('--outdir',       help='Where to save the results', metavar='DIR',                    required=True)
@click.option('--cfg',          help='Base configuration',                                          type=click.Choice(['stylegan3-t', 'stylegan3-r', 'stylegan2']), required=True)
@click.option('--data',         help='Training data', metavar='[ZIP|DIR]',                          type=str, required=True)
@click.option('--gpus',         help='Number of GPUs to use (CPU processes without CUDA; the world size under torchrun)', metavar='INT', type=click.IntRange(min=1), required=True)
@click.option('--batch',        help='Total batch size', metavar='INT',                             type=click.IntRange(min=1), required=True)
@click.option('--gamma',        help='R1 regularization weight', metavar='FLOAT',                   type=click.FloatRange(min=0), required=True)

# Optional features.
@click.option('--cond',         help='Train conditional model', metavar='BOOL',                     type=bool, default=False, show_default=True)
@click.option('--mirror',       help='Enable dataset x-flips', metavar='BOOL',                      type=bool, default=False, show_default=True)
@click.option('--aug',          help='Augmentation mode',                                           type=click.Choice(['noaug', 'ada', 'fixed']), default='ada', show_default=True)
@click.option('--resume',       help='Resume from given network pickle', metavar='[PATH|URL]',      type=str)
@click.option('--freezed',      help='Freeze first layers of D', metavar='INT',                     type=click.IntRange(min=0), default=0, show_default=True)

# Misc hyperparameters.
@click.option('--p',            help='Probability for --aug=fixed', metavar='FLOAT',                type=click.FloatRange(min=0, max=1), default=0.2, show_default=True)
@click.option('--target',       help='Target value for --aug=ada', metavar='FLOAT',                 type=click.FloatRange(min=0, max=1), default=0.6, show_default=True)
@click.option('--batch-gpu',    help='Limit batch size per GPU', metavar='INT',                     type=click.IntRange(min=1))
@click.option('--cbase',        help='Capacity multiplier', metavar='INT',                          type=click.IntRange(min=1), default=32768, show_default=True)
@click.option('--cmax',         help='Max. feature maps', metavar='INT',                            type=click.IntRange(min=1), default=512, show_default=True)
@click.option('--glr',          help='G learning rate  [default: varies]', metavar='FLOAT',         type=click.FloatRange(min=0))
@click.option('--dlr',          help='D learning rate', metavar='FLOAT',                            type=click.FloatRange(min=0), default=0.002, show_default=True)
@click.option('--map-depth',    help='Mapping network depth  [default: varies]', metavar='INT',     type=click.IntRange(min=1))
@click.option('--mbstd-group',  help='Minibatch std group size', metavar='INT',                     type=click.IntRange(min=1), default=4, show_default=True)

# Misc settings.
@click.option('--desc',         help='String to include in result dir name', metavar='STR',         type=str)
@click.option('--metrics',      help='Quality metrics', metavar='[NAME|A,B,C|none]',                type=parse_metric_list,         default='fid50k_full', show_default=True)
@click.option('--kimg',         help='Total training duration', metavar='KIMG',                     type=click.IntRange(min=1), default=25000, show_default=True)
@click.option('--tick',         help='How often to print progress', metavar='KIMG',                 type=click.IntRange(min=1), default=4, show_default=True)
@click.option('--snap',         help='How often to save snapshots', metavar='TICKS',                type=click.IntRange(min=1), default=50, show_default=True)
@click.option('--seed',         help='Random seed', metavar='INT',                                  type=click.IntRange(min=0), default=0, show_default=True)
@click.option('--fp32',         help='Disable mixed-precision', metavar='BOOL',                     type=bool, default=False, show_default=True)
@click.option('--nobench',      help='Disable cuDNN benchmarking', metavar='BOOL',                  type=bool, default=False, show_default=True)
@click.option('--workers',      help='DataLoader worker processes', metavar='INT',                  type=click.IntRange(min=1), default=3, show_default=True)
@click.option('-n','--dry-run', help='Print training options and exit',                             is_flag=True)

def main(**kwargs):
    """Train a GAN using the techniques described in the paper
    "Alias-Free Generative Adversarial Networks".

    Examples:

    \b
    # Train StyleGAN3-T for AFHQv2 using 8 GPUs.
    python train.py --outdir=~/training-runs --cfg=stylegan3-t --data=~/datasets/afhqv2-512x512.zip \\
        --gpus=8 --batch=32 --gamma=8.2 --mirror=1

    \b
    # AFHQv2 on 2 machines x 8 GPUs: the same command on each machine, --gpus = world size.
    torchrun --nnodes=2 --nproc_per_node=8 --node_rank=<0|1> --master_addr=<host of rank 0> --master_port=29500 \\
        train.py --outdir=~/training-runs --cfg=stylegan3-t --data=~/datasets/afhqv2-512x512.zip \\
        --gpus=16 --batch=64 --gamma=8.2 --mirror=1

    \b
    # Tiny run on the CPU (no CUDA device: --gpus counts CPU processes).
    python train.py --outdir=~/training-runs --cfg=stylegan3-t --data=~/datasets/tiny.zip \\
        --gpus=1 --batch=4 --gamma=1 --cbase=1024 --cmax=32 --kimg=1 --tick=1 --metrics=none
    """
    opts = dnnlib.EasyDict(kwargs) # Command line arguments.
    check_options(opts)
    c, desc = build_config(opts)
    try:
        launch_training(c=c, desc=desc, outdir=opts.outdir, dry_run=opts.dry_run)
    except (OSError, torch.multiprocessing.ProcessRaisedException) as err: # E.g. a detector that cannot be downloaded.
        raise click.ClickException(str(err).strip().splitlines()[-1])

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
