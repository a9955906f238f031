"""Compute quality metrics (FID, KID, precision/recall, PPL, equivariance) of a network pickle."""

import copy
import os

import click
import torch

import dnnlib
import legacy
from metrics import metric_main
from metrics import metric_utils
from training import training_loop
from train import parse_metric_list

#----------------------------------------------------------------------------

def subprocess_fn(rank, args, init_file):
    """Body of each metric process: join the process group, then compute and (rank 0) report every metric."""
    device = training_loop.init_process_group(rank, args.num_gpus, init_file)
    G = copy.deepcopy(args.G).eval().requires_grad_(False).to(device)
    for metric in args.metrics:
        if rank == 0 and args.verbose:
            print(f'Calculating {metric}...')
        progress = metric_utils.ProgressMonitor(verbose=(args.verbose and rank == 0))
        result_dict = metric_main.calc_metric(metric=metric, G=G, dataset_kwargs=args.dataset_kwargs,
            num_gpus=args.num_gpus, rank=rank, device=device, progress=progress)
        if rank == 0:
            metric_main.report_metric(result_dict, run_dir=args.run_dir, snapshot_pkl=args.network_pkl)
    if rank == 0 and args.verbose:
        print('Exiting...')

#----------------------------------------------------------------------------

def dataset_kwargs_for(network_dict, G, data, mirror):
    """Real-data kwargs: --data if given, else the pickle's training set, matched to G's resolution and labels."""
    if data is not None:
        dataset_kwargs = dnnlib.EasyDict(class_name='training.dataset.ImageFolderDataset', path=data)
    elif network_dict['training_set_kwargs'] is not None:
        dataset_kwargs = dnnlib.EasyDict(network_dict['training_set_kwargs'])
    else:
        raise click.ClickException('--data is required: the network pickle does not name its training set')
    dataset_kwargs.resolution = G.img_resolution
    dataset_kwargs.use_labels = (G.c_dim != 0)
    if mirror is not None:
        dataset_kwargs.xflip = mirror
    return dataset_kwargs

#----------------------------------------------------------------------------

def override_detectors(**paths):
    """Point the metrics at local detector files (through the environment, so spawned processes see it too)."""
    for name, path in paths.items():
        if path is not None:
            if not os.path.isfile(path):
                raise click.ClickException(f'--{name} must point to a detector file: {path}')
            os.environ[metric_utils.DETECTOR_OVERRIDE_ENV[getattr(metric_utils, name.upper() + '_URL')]] = os.path.abspath(path)

#----------------------------------------------------------------------------

@click.command()
@click.option('network_pkl', '--network', help='Network pickle filename or URL', metavar='PATH', required=True)
@click.option('--metrics', help='Quality metrics', metavar='[NAME|A,B,C|none]', type=parse_metric_list, default='fid50k_full', show_default=True)
@click.option('--data', help='Dataset to evaluate against  [default: look up]', metavar='[ZIP|DIR]')
@click.option('--mirror', help='Enable dataset x-flips  [default: look up]', type=bool, metavar='BOOL')
@click.option('--gpus', help='Number of GPUs to use (processes on the CPU when CUDA is absent)', type=click.IntRange(min=1), default=1, metavar='INT', show_default=True)
@click.option('--verbose', help='Print optional information', type=bool, default=True, metavar='BOOL', show_default=True)
@click.option('--inception', help='Local Inception detector file instead of the published URL', metavar='PATH')
@click.option('--vgg16', help='Local VGG16 detector file instead of the published URL (PPL, P/R)', metavar='PATH')
def calc_metrics(network_pkl, metrics, data, mirror, gpus, verbose, inception, vgg16):
    """Calculate quality metrics for previous training run or pretrained network pickle.

    \b
    python calc_metrics.py --metrics=fid50k_full --data=~/datasets/ffhq-1024x1024.zip --mirror=1 \\
        --network=training-runs/00000-stylegan3-t-ffhq-gpus8-batch32-gamma8.2/network-snapshot-025000.pkl
    """
    args = dnnlib.EasyDict(metrics=metrics, num_gpus=gpus, network_pkl=network_pkl, verbose=verbose)
    if torch.cuda.is_available() and gpus > torch.cuda.device_count():
        raise click.ClickException(f'--gpus={gpus} but only {torch.cuda.device_count()} CUDA device(s) are visible')
    if not dnnlib.util.is_url(network_pkl, allow_file_urls=True) and not os.path.isfile(network_pkl):
        raise click.ClickException(f'--network must point to a file or URL: {network_pkl}')
    override_detectors(inception=inception, vgg16=vgg16)

    if args.verbose:
        print(f'Loading network from "{network_pkl}"...')
    try:
        with dnnlib.util.open_url(network_pkl, verbose=args.verbose) as f:
            network_dict = legacy.load_network_pkl(f)
    except (OSError, ValueError) as err:
        raise click.ClickException(f'--network: {err}')
    args.G = network_dict['G_ema'] # subclass of torch.nn.Module
    args.dataset_kwargs = dataset_kwargs_for(network_dict, args.G, data, mirror)

    # Results go next to the snapshot when it lies in a training run directory.
    pkl_dir = os.path.dirname(network_pkl) or '.'
    args.run_dir = pkl_dir if os.path.isfile(network_pkl) and os.path.isfile(os.path.join(pkl_dir, 'training_options.json')) else None

    if args.verbose:
        print('Launching processes...')
    try:
        training_loop.launch_processes(subprocess_fn, (args,), args.num_gpus)
    except (OSError, torch.multiprocessing.ProcessRaisedException) as err: # E.g. a detector that cannot be downloaded.
        raise click.ClickException(str(err).strip().splitlines()[-1])

#----------------------------------------------------------------------------

if __name__ == '__main__':
    calc_metrics() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
