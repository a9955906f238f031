"""Benchmark: the motion meter's cost (svc_plugin/motion_meter.py, run at every tick of the video stage) against a tick.

The video stage is configured by train_video.py's own option parsing (bench_train_video.stage_kwargs) on the demo data
rendered at --resolution; its training speed is bench_train_video.time_stage's, the meter's one measure() of G_ema.
Both are CPU seconds of this process (robust on a shared machine), or wall seconds on CUDA. The share of a tick is
meter seconds / (--tick kimg x sec/kimg): --tick=4 and --batch=64 are train_video.py's and the paper's settings.

    python benchmarks/bench_motion_meter.py                                             # 32x32, the paper's channels
    python benchmarks/bench_motion_meter.py --resolution=256 --batch=64 --batch-gpu=8   # the paper's settings, on a GPU
"""

import os
import sys
import tempfile
import time

import click
import torch

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT_DIR)

import svc_plugin # pylint: disable=wrong-import-position,unused-import # Puts the upstream layer on sys.path.
import dnnlib # pylint: disable=wrong-import-position
import training_loop_ext # pylint: disable=wrong-import-position
from benchmarks.bench_train_video import stage_kwargs, time_stage # pylint: disable=wrong-import-position
from svc_plugin import dataset_tool # pylint: disable=wrong-import-position
from svc_plugin import motion_meter # pylint: disable=wrong-import-position

#----------------------------------------------------------------------------

def time_meter(c, repeats, device):
    """Seconds (CPU time, or wall time on CUDA) of one MotionMeter.measure() of a fresh G_ema, best of `repeats` after a warm-up."""
    training_set = dnnlib.util.construct_class_by_name(**c.training_set_kwargs)
    _G, _D, G_ema = training_loop_ext.build_networks(training_set, c.G_kwargs, c.D_kwargs, None)
    G_ema = G_ema.to(device)
    with torch.no_grad():
        G_ema.synthesis.motion_mask.fill_(1) # Motion reaches the pixels, as after some training (the cost is the same).
    meter = motion_meter.MotionMeter(training_set, c.training_set_kwargs, G_ema.z_dim, device, videos=c.motion_meter_videos, seed=0)
    clock = time.perf_counter if device.type == 'cuda' else time.process_time
    seconds = []
    for _ in range(repeats + 1):
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        start = clock()
        meter.measure(G_ema)
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        seconds.append(clock() - start)
    return min(seconds[1:])

#----------------------------------------------------------------------------

@click.command()
@click.option('--resolution',   help='Frame size of the demo data', type=int, default=32, show_default=True)
@click.option('--cbase',        help='Capacity multiplier (the paper: 16384)', type=int, default=16384, show_default=True)
@click.option('--cmax',         help='Max. feature maps', type=int, default=512, show_default=True)
@click.option('--batch',        help='Clips per step', type=int, default=8, show_default=True)
@click.option('--batch-gpu',    help='Clips per forward pass', type=int, default=8, show_default=True)
@click.option('--steps',        help='Timed training steps', type=int, default=4, show_default=True)
@click.option('--tick',         help='kimg per tick (train_video.py default)', type=float, default=4, show_default=True)
@click.option('--paper-batch',  help='Clips per step of the paper (8 GPUs x 8)', type=int, default=64, show_default=True)
def main(resolution, cbase, cmax, batch, batch_gpu, steps, tick, paper_batch):
    """Print the meter's seconds, the training's sec/kimg and the meter's share of a tick."""
    device = torch.device('cuda') if torch.cuda.is_available() else torch.device('cpu')
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, 'demo.zip')
        dataset_tool.write_demo_dataset(data, num_videos=16, num_frames=64, resolution=resolution)
        c = stage_kwargs([f'--data={data}', '--cfg=stylegan3-t', f'--cbase={cbase}', f'--cmax={cmax}', f'--batch={batch}',
            f'--batch-gpu={batch_gpu}', '--gpus=1', '--metrics=none', '--workers=0', '--stage=video'])
        meter_sec = time_meter(c, repeats=2, device=device)
        sec_per_kimg = time_stage(c, steps, device)[0 if device.type == 'cpu' else 1]
    where = torch.cuda.get_device_name(device) if device.type == 'cuda' else f'CPU time, {torch.get_num_threads()} thread(s)'
    print(f'stylegan3-t {resolution}x{resolution}, cbase {cbase}, cmax {cmax}, batch {batch} clips of 3 frames, {where}')
    print(f'motion meter ({c.motion_meter_videos} videos x 4 frames + jerk): {meter_sec:.3f} s; training: {sec_per_kimg:.2f} s/kimg')
    print(f'share of a {tick:g}-kimg tick: {meter_sec / (meter_sec + tick * sec_per_kimg):.2%} (one process; with {paper_batch // batch_gpu} GPUs '
        f'sharing the tick, each measuring in parallel: {meter_sec / (meter_sec + tick * sec_per_kimg * batch_gpu / paper_batch):.2%})')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
