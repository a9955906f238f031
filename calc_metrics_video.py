"""Compute video metrics of a snapshot: FVD (StyleGAN-V protocol), FID over frames, key-frame smoothness.

    python calc_metrics_video.py --metrics=fvd16,fvd128 --network=network-snapshot-005000.pkl
    python calc_metrics_video.py --metrics=fvd16      # the newest snapshot of the newest run in runs/

Prints `<name> <value>` per metric and appends a JSON line with every protocol setting to
metric-<name>.jsonl beside the snapshot.
"""

import functools
import os
import sys
import time

import click
import numpy as np
import torch
import tqdm

import svc_plugin # pylint: disable=unused-import # Puts the upstream layer on sys.path.
import dnnlib
from metrics import metric_main
from metrics import metric_utils
from svc_plugin import checkpoint
from svc_plugin import distributed
from svc_plugin import fileio
from svc_plugin.metrics import frame_fid
from svc_plugin.metrics import fvd
from svc_plugin.metrics import i3d
from svc_plugin.metrics import smoothness
from svc_plugin.metrics import video_metrics

#----------------------------------------------------------------------------

def parse_metrics(_ctx, _param, value):
    """--metrics=a,b -> ['a', 'b'], each a video metric, an FVD name of the general form, or an upstream metric."""
    names = [name.strip() for name in value.split(',') if name.strip()]
    unknown = [name for name in names if not video_metrics.is_valid_metric(name)]
    if not names or unknown:
        raise click.ClickException(f'--metrics: unknown metric {", ".join(unknown) or repr(value)}; valid: {", ".join(metric_main.list_valid_metrics())}, '
            'or fvd{videos}_{frames}f[_subsample{k}f]')
    return names

def load_generator(network_pkl, metrics, motion):
    """G_ema of the snapshot (with the other motion blending if asked) and the snapshot's training-set kwargs."""
    snapshot = checkpoint.load_network(network_pkl)
    video_only = [name for name in metrics if video_metrics.needs_video_generator(name)]
    G = checkpoint.generator_of(snapshot, network_pkl, video=bool(video_only) or motion is not None, needed_by=', '.join(video_only) or '--motion')
    if motion is not None:
        G = smoothness.with_motion_kind(G, motion)
    return G, snapshot.get('training_set_kwargs')

def dataset_kwargs_for(data, training_set_kwargs, G):
    """Real data: --data as a video dataset, else the snapshot's training set; frames at G's resolution, no flips."""
    if data is not None:
        kwargs = dnnlib.EasyDict(class_name='svc_plugin.dataset.VideoFramesFolderDataset', path=data)
    elif training_set_kwargs is not None:
        kwargs = dnnlib.EasyDict(training_set_kwargs)
    else:
        raise click.ClickException('--data is required: the snapshot does not name its training set')
    kwargs.update(resolution=G.img_resolution, use_labels=(G.c_dim != 0), xflip=False, max_size=None)
    try:
        dnnlib.util.construct_class_by_name(**kwargs).close() # Fail here, in one line, rather than inside a metric.
    except (OSError, ValueError) as err:
        raise click.ClickException(f'dataset {kwargs.path}: {err}')
    return kwargs

def set_detectors(i3d_path, inception_path):
    """Local detector files, through the environment so that spawned processes see them too."""
    for flag, path, env in [('--i3d', i3d_path, fvd.I3D_ENV), ('--inception', inception_path, frame_fid.INCEPTION_ENV)]:
        if path is not None:
            if not dnnlib.util.is_url(path) and not os.path.isfile(path):
                raise click.ClickException(f'{flag} must name a detector file or URL: {path}')
            os.environ[env] = path if dnnlib.util.is_url(path) else os.path.abspath(path)

#----------------------------------------------------------------------------

def progress_bar(metric, enabled):
    """A ProgressMonitor that drives a tqdm bar (on stderr) over the whole metric."""
    if not enabled:
        return metric_utils.ProgressMonitor()
    bar = tqdm.tqdm(total=1000, desc=metric, leave=False, bar_format='{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining}')
    def update(cur, _total):
        bar.n = int(cur)
        bar.refresh()
    return metric_utils.ProgressMonitor(progress_fn=update)

def record(args, metric, result, G):
    """The JSON line of one result: the upstream fields, then every setting it depends on."""
    return dict(result, snapshot_pkl=os.path.basename(args.network_pkl), data=args.dataset_kwargs.path, seed=args.seed,
        motion=smoothness.motion_kind(G), protocol=video_metrics.describe_protocol(metric, G), timestamp=time.time())

def report(args, metric, line):
    """Print `<name> <value>` and append the JSON line to metric-<name>.jsonl beside a local snapshot."""
    for key in [metric] if metric in line['results'] else line['results']: # E.g. pr50k3_full has two values.
        print(f'{key} {line["results"][key]:g}', flush=True)
    if os.path.isfile(args.network_pkl):
        fileio.append_jsonl(os.path.join(os.path.dirname(os.path.abspath(args.network_pkl)), f'metric-{metric}.jsonl'), line)

def compute_and_report(rank, args, device):
    """Every metric in turn on this process's device; rank 0 prints and records the results."""
    G = args.G.to(device)
    for metric in args.metrics:
        video_metrics.is_valid_metric(metric) # Registers an on-demand FVD name in this process.
        torch.manual_seed(args.seed * args.num_gpus + rank) # Per metric: a result does not depend on the order of --metrics.
        np.random.seed(args.seed * args.num_gpus + rank)
        result = metric_main.calc_metric(metric=metric, G=G, dataset_kwargs=args.dataset_kwargs, num_gpus=args.num_gpus,
            rank=rank, device=device, progress=progress_bar(metric, args.verbose and rank == 0))
        if rank == 0:
            report(args, metric, record(args, metric, result, G))

def launch(args):
    """One process per GPU (processes on the CPU without CUDA), as the upstream calc_metrics.py."""
    distributed.launch(functools.partial(run_metrics, args=args), args.num_gpus, prepare=lambda: True)

def run_metrics(rank, num_gpus, _prepared, args):
    """Body of each process: compute every metric on this process's device and (rank 0) report it."""
    compute_and_report(rank, args, distributed.current_device())

#----------------------------------------------------------------------------

@click.command()
@click.option('network_pkl', '--network', help='Network pickle or weights-only checkpoint (path or URL), or latest: the newest snapshot in runs/', metavar='PATH', default='latest', show_default=True)
@click.option('--metrics', help='Comma-separated metrics, e.g. fvd16,fvd128,fid50k_full,jerk_kf,jitter_kf', metavar='LIST', callback=parse_metrics, default='fvd2048_16f', show_default=True)
@click.option('--data', help='Video dataset (zip or folder of frame folders)  [default: the snapshot\'s training set]', metavar='PATH')
@click.option('i3d_path', '--i3d', help='TorchScript I3D (path or URL) instead of the built-in port', metavar='PATH')
@click.option('--inception', help='Inception detector file for FID instead of the published URL', metavar='PATH')
@click.option('--gpus', help='Number of GPUs (processes on the CPU without CUDA)', type=click.IntRange(min=1), default=1, show_default=True)
@click.option('--seed', help='Seed of the generated samples', type=click.IntRange(min=0), default=0, show_default=True)
@click.option('--motion', help='Re-evaluate the same weights with this motion blending', type=click.Choice(['bspline', 'linear']))
@click.option('--verbose/--quiet', help='Progress bar', default=True, show_default=True)
def main(network_pkl, metrics, data, i3d_path, inception, gpus, seed, motion, verbose):
    """Calculate video metrics of a snapshot; see README "Metrics" for what each measures."""
    if torch.cuda.is_available() and gpus > torch.cuda.device_count():
        raise click.ClickException(f'--gpus={gpus} but only {torch.cuda.device_count()} CUDA device(s) are visible')
    if not torch.cuda.is_available() and gpus > (os.cpu_count() or 1):
        raise click.ClickException(f'--gpus={gpus}: no CUDA device, and {gpus} CPU processes would exceed the {os.cpu_count()} CPU cores')
    set_detectors(i3d_path, inception)
    try:
        if network_pkl == 'latest':
            network_pkl = checkpoint.resolve_network(network_pkl)
            print(f'--network=latest: {network_pkl}', file=sys.stderr)
        G, training_set_kwargs = load_generator(network_pkl, metrics, motion)
    except checkpoint.NetworkLoadError as err:
        raise click.ClickException(str(err))
    args = dnnlib.EasyDict(network_pkl=network_pkl, metrics=metrics, G=G, num_gpus=gpus, seed=seed, verbose=verbose,
        dataset_kwargs=dataset_kwargs_for(data, training_set_kwargs, G))
    try:
        launch(args)
    except torch.multiprocessing.ProcessRaisedException as err: # A metric failed in a spawned process; the last line says why.
        raise click.ClickException(str(err).strip().splitlines()[-1])
    except torch.multiprocessing.ProcessExitedException as err: # A spawned process died (signal, abort).
        raise click.ClickException(str(err))
    except (i3d.DetectorError, OSError, ValueError, RuntimeError) as err: # Detector or data that fails inside a metric.
        raise click.ClickException(str(err).strip().splitlines()[0])

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
