"""Benchmark gen_video: frames/s of the whole pipeline, encoding overlapped with generation or not, and the per-frame
cost of the video generator next to the image generator's.

The video generator is built from the image generator (VideoGenerator.from_image_generator), so the two
share every synthesis weight and differ only by the motion path. Timed in one process, alternating
rep by rep after a warm-up, so that a change in machine load affects all alike:
  image G      G_image(z [batch], c): one image per sample
  video G      G_video(z [1], c, t [1, batch]): `batch` frames of one video (the call gen_video makes)
  generation   gen_video.generate_frames -> uint8 on the device -> host memory, `frames` frames of one video, no encoder
  encoder      those frames (made once, beforehand) -> H.264 mp4 in chunks of `batch`, no generation
  synchronous  generation -> H.264 mp4, each chunk written before the next is generated (gen_video before the
               encoder got a thread of its own)
  gen_video    generation -> H.264 mp4 as gen_video.py writes it: the encoder fed from a thread of its own
               (video_io.stream_clips) while the next chunk is generated
Every mp4 row runs ffmpeg in its own process (competing with the generator for the CPU cores), start-up included.
Overlapping can at best turn generation + encoder into the larger of the two; on a CPU, generation and ffmpeg share
the same cores, so only a GPU (generating while the CPU encodes) can gain the whole of it.
"""

import argparse
import os
import statistics
import sys
import tempfile

_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (_root, os.path.join(_root, 'third_party', 'stylegan3')):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import torch

import gen_video
from svc_plugin import video_io
from svc_plugin.networks import VideoGenerator
from training import networks_stylegan3
from timing import timed

#----------------------------------------------------------------------------

def generation(G, num_frames, batch):
    """gen_video's frames in host memory as uint8, no encoder."""
    for clips in gen_video.generate_frames(G, [(0, 0)], num_frames, batch=batch):
        video_io.to_uint8(clips).cpu()

def synchronous_pipeline(G, num_frames, batch, path):
    """gen_video.py for one video with each chunk encoded before the next is generated."""
    with video_io.Mp4Writer(path, fps=25) as writer:
        for clips in gen_video.generate_frames(G, [(0, 0)], num_frames, batch=batch):
            writer.write(video_io.tile_clips(video_io.to_uint8(clips), (1, 1)).cpu())

def pipeline(G, num_frames, batch, path):
    """What gen_video.py does for one video, without the progress bar."""
    video_io.stream_clips(video_io.Mp4Writer(path, fps=25), gen_video.generate_frames(G, [(0, 0)], num_frames, batch=batch), (1, 1))

def measure(G_image, G_video, args, device, outdir):
    """Median seconds per frame of each step below."""
    z = torch.randn([args.batch, G_image.z_dim], device=device)
    t = torch.arange(args.batch, dtype=torch.float32, device=device).unsqueeze(0) # [1, batch]
    clips = torch.cat(list(gen_video.generate_frames(G_video, [(0, 0)], args.frames, batch=args.batch)), dim=1) # [1, frames, C, H, W]
    encoded = video_io.tile_clips(video_io.to_uint8(clips), (1, 1)).cpu()                                       # [frames, H, W, C]
    steps = dict(
        image=lambda: G_image(z, None),
        video=lambda: G_video(z[:1], None, t=t, motion_seeds=[0]),
        generation=lambda: generation(G_video, args.frames, args.batch),
        encoder=lambda: video_io.write_video(os.path.join(outdir, 'encoder.mp4'), encoded.split(args.batch)),
        synchronous=lambda: synchronous_pipeline(G_video, args.frames, args.batch, os.path.join(outdir, 'sync.mp4')),
        pipeline=lambda: pipeline(G_video, args.frames, args.batch, os.path.join(outdir, 'bench.mp4')),
    )
    frames = dict(image=args.batch, video=args.batch, generation=args.frames, encoder=args.frames, synchronous=args.frames, pipeline=args.frames)
    times = {name: [] for name in steps}
    with torch.no_grad():
        for rep in range(args.reps + 1):
            for name, step in steps.items():
                seconds = timed(step, device)
                if rep > 0:
                    times[name].append(seconds / frames[name])
    return {name: statistics.median(values) for name, values in times.items()}

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--res', type=int, default=256, help='frame resolution')
    parser.add_argument('--cbase', type=int, default=4096, help='channel_base (16384 = the paper\'s 256x256 runs)')
    parser.add_argument('--cmax', type=int, default=128, help='channel_max (512 = the paper\'s)')
    parser.add_argument('--batch', type=int, default=8, help='frames per forward pass (gen_video --batch)')
    parser.add_argument('--frames', type=int, default=32, help='frames per pipeline run')
    parser.add_argument('--reps', type=int, default=3, help='timed reps (median reported)')
    parser.add_argument('--device', default='cuda' if torch.cuda.is_available() else 'cpu')
    args = parser.parse_args()
    if min(args.res, args.cbase, args.cmax, args.batch, args.frames, args.reps) < 1:
        parser.error('all options must be positive')
    device = torch.device(args.device)

    torch.manual_seed(0)
    G_image = networks_stylegan3.Generator(z_dim=512, c_dim=0, w_dim=512, img_resolution=args.res, img_channels=3,
        channel_base=args.cbase, channel_max=args.cmax).eval().requires_grad_(False).to(device)
    G_video = VideoGenerator.from_image_generator(G_image).eval().requires_grad_(False).to(device)
    with tempfile.TemporaryDirectory() as outdir:
        sec = measure(G_image, G_video, args, device, outdir)

    threads = f' ({torch.get_num_threads()} threads)' if device.type == 'cpu' else f' ({torch.cuda.get_device_name(device)})'
    print(f'device={device}{threads}, {args.res}x{args.res}, cbase={args.cbase}, cmax={args.cmax}, batch={args.batch}, '
        f'frames={args.frames}, reps={args.reps}')
    print(f'{"":>12} {"ms/frame":>9} {"frames/s":>9} {"vs image G":>11}')
    for name, label in [('image', 'image G'), ('video', 'video G'), ('generation', 'generation'), ('encoder', 'encoder'),
            ('synchronous', 'synchronous'), ('pipeline', 'gen_video')]:
        print(f'{label:>12} {sec[name] * 1e3:>9.1f} {1 / sec[name]:>9.2f} {sec[name] / sec["image"]:>10.2f}x')
    print(f'gen_video (encoder in its own thread) vs synchronous: {sec["synchronous"] / sec["pipeline"]:.2f}x the frames/s')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
