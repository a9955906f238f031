"""Benchmark: training speed of the video stage against the image stage, per frame, at the same configuration.

Both stages are configured by train_video.py's own option parsing (same --cfg, channels, batch of clips) on the demo data
rendered at --resolution, and run through training_loop_ext's training step (every phase, lazy R1 included, G_ema):
- image: 1 frame per clip, upstream StyleGAN3 G + StyleGAN2 D + StyleGAN2Loss, without and with ADA (the paper's stage 1);
- video: 3-frame clips, VideoGenerator (B-spline motion) + VideoDiscriminator (TSM) + VideoLoss (the paper's stage 2).
Figures are sec/kimg, kimg counting frames in both stages; on CPU both the process CPU time (robust on a shared
machine) and the wall time are given. Target: video / image (same augmentation) <= 1.25 per frame.

    python benchmarks/bench_train_video.py                          # CPU: 32x32, small channels
    python benchmarks/bench_train_video.py --resolution=256 --cbase=16384 --cmax=512 --batch=16 --steps=20
"""

import inspect
import os
import sys
import tempfile
import time

import click
import numpy as np
import torch

ROOT_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT_DIR)

import svc_plugin # pylint: disable=wrong-import-position,unused-import # Puts the upstream layer on sys.path.
import dnnlib # pylint: disable=wrong-import-position
import train_video # pylint: disable=wrong-import-position
import training_loop_ext # pylint: disable=wrong-import-position
from svc_plugin import dataset_tool # pylint: disable=wrong-import-position
from svc_plugin.dataset import generator_inputs, open_clip_stream, real_clips # pylint: disable=wrong-import-position

#----------------------------------------------------------------------------

def stage_kwargs(args):
    """training_loop kwargs of the one stage that `train_video.py ARGS` would train."""
    opts = dnnlib.EasyDict(train_video.main.make_context('train_video.py', args).params)
    stages, _desc = train_video.configure(opts)
    [stage] = stages.values()
    defaults = {name: param.default for name, param in inspect.signature(training_loop_ext.training_loop).parameters.items()}
    return dnnlib.EasyDict(defaults, **stage)

def time_stage(c, steps, device):
    """(CPU seconds, wall seconds) per 1000 frames of `steps` training steps after two warm-up steps."""
    training_set = dnnlib.util.construct_class_by_name(**c.training_set_kwargs)
    stream = open_clip_stream(training_set, c.data_loader_kwargs, 0, 1, c.batch_size, 0, 0, device)
    G, D, G_ema = training_loop_ext.build_networks(training_set, c.G_kwargs, c.D_kwargs, None)
    G, D, G_ema = G.to(device), D.to(device), G_ema.to(device)
    augment_pipe = training_loop_ext.build_augment_pipe(c.augment_kwargs, c.augment_p, c.ada_target, None)
    augment_pipe = augment_pipe.to(device) if augment_pipe is not None else None
    loss = dnnlib.util.construct_class_by_name(device=device, G=G, D=D, augment_pipe=augment_pipe, **c.loss_kwargs)
    phases, _optimizers = training_loop_ext.make_phases(G, D, c.G_opt_kwargs, c.D_opt_kwargs, c.G_reg_interval, c.D_reg_interval)
    rnd = np.random.RandomState(0)
    for step in range(steps + 2):
        if step == 2:
            if device.type == 'cuda':
                torch.cuda.synchronize(device)
            cpu_start, wall_start = time.process_time(), time.perf_counter()
        reals = real_clips(stream, c.frames, c.batch_gpu, device)
        fakes = [generator_inputs(rnd, training_set, c.batch_size, c.frames, G.z_dim, device) for _ in phases]
        training_loop_ext.train_step(phases, loss, reals, fakes, step * c.batch_size * c.frames, step, num_gpus=1)
        training_loop_ext.update_ema(G, G_ema, 0.999)
    if device.type == 'cuda':
        torch.cuda.synchronize(device)
    kimg = steps * c.batch_size * c.frames / 1000
    return (time.process_time() - cpu_start) / kimg, (time.perf_counter() - wall_start) / kimg

#----------------------------------------------------------------------------

@click.command()
@click.option('--resolution',   help='Frame size of the demo data', type=int, default=32, show_default=True)
@click.option('--cfg',          help='Base configuration', type=click.Choice(['stylegan3-t', 'stylegan3-r']), default='stylegan3-t', show_default=True)
@click.option('--cbase',        help='Capacity multiplier', type=int, default=2048, show_default=True)
@click.option('--cmax',         help='Max. feature maps', type=int, default=64, show_default=True)
@click.option('--batch',        help='Clips per step (both stages)', type=int, default=8, show_default=True)
@click.option('--steps',        help='Timed steps per stage (a multiple of 16 covers lazy R1 evenly)', type=int, default=16, show_default=True)
@click.option('--threads',      help='CPU threads (torch.set_num_threads)', type=int, default=1, show_default=True)
def main(resolution, cfg, cbase, cmax, batch, steps, threads):
    """Print sec/kimg (per 1000 frames) of the image and the video stage, and their ratio."""
    device = torch.device('cuda') if torch.cuda.is_available() else torch.device('cpu')
    torch.set_num_threads(threads)
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, 'demo.zip')
        dataset_tool.write_demo_dataset(data, num_videos=16, num_frames=64, resolution=resolution)
        common = [f'--data={data}', f'--cfg={cfg}', f'--cbase={cbase}', f'--cmax={cmax}', f'--batch={batch}', f'--batch-gpu={batch}', '--gpus=1', '--metrics=none', '--workers=0']
        rows = [(name, time_stage(stage_kwargs(common + args), steps, device)) for name, args in [
            ('image stage, no augmentation', ['--stage=image', '--aug=noaug']),
            ('image stage, ADA (paper)', ['--stage=image', '--aug=ada']),
            ('video stage, 3-frame clips', ['--stage=video', '--aug=noaug'])]]

    where = torch.cuda.get_device_name(device) if device.type == 'cuda' else f'CPU, {threads} thread(s)'
    print(f'{cfg} {resolution}x{resolution}, cbase {cbase}, cmax {cmax}, batch {batch} clips, {steps} steps per stage, {where}')
    print(f'{"":32s} {"CPU sec/kimg":>13s} {"wall sec/kimg":>14s}')
    for name, (cpu, wall) in rows:
        print(f'{name:32s} {cpu:13.2f} {wall:14.2f}')
    (image_cpu, image_wall), (video_cpu, video_wall) = rows[0][1], rows[2][1]
    print(f'video / image per frame: {video_cpu / image_cpu:.2f}x CPU time, {video_wall / image_wall:.2f}x wall time (target <= 1.25x)')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main() # pylint: disable=no-value-for-parameter

#----------------------------------------------------------------------------
