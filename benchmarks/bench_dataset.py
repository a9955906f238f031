"""Benchmark VideoFramesFolderDataset: clips per second through a DataLoader, by number of worker processes.

Writes a temporary demo dataset (the dataset tool's demo source) at the given resolution, then times
batches of clips the way the training loop draws them (shuffled indices, uint8 clips, times, labels).
"""

import argparse
import os
import sys
import tempfile
import time

_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
for _path in (_root, os.path.join(_root, 'third_party', 'stylegan3')):
    if _path not in sys.path:
        sys.path.insert(0, _path)

import torch
from svc_plugin import dataset_tool
from svc_plugin.dataset import VideoFramesFolderDataset

#----------------------------------------------------------------------------

def clips_per_second(dataset, workers, batch, batches):
    """Clips per second over `batches` batches, after one batch that starts the workers."""
    sampler = torch.utils.data.RandomSampler(dataset, replacement=True, num_samples=batch * (batches + 1))
    loader = torch.utils.data.DataLoader(dataset, sampler=sampler, batch_size=batch, num_workers=workers)
    iterator = iter(loader)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batch * batches / (time.perf_counter() - start)

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--res', type=int, default=256, help='frame resolution')
    parser.add_argument('--videos', type=int, default=16, help='demo videos')
    parser.add_argument('--video-frames', type=int, default=64, help='frames per demo video')
    parser.add_argument('--frames', type=int, default=3, help='frames per clip (3 = the paper\'s video stage)')
    parser.add_argument('--format', default='png', choices=['png', 'jpg'], help='frame file format')
    parser.add_argument('--workers', type=int, nargs='+', default=[1, 4], help='DataLoader worker counts to time')
    parser.add_argument('--batch', type=int, default=16, help='clips per batch')
    parser.add_argument('--batches', type=int, default=40, help='timed batches per worker count')
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, f'demo{args.res}.zip')
        dataset_tool.convert_dataset('demo', path, args.res, fmt=args.format, demo_videos=args.videos,
                                     demo_frames=args.video_frames, workers=min(8, os.cpu_count() or 1))
        dataset = VideoFramesFolderDataset(path, frames=args.frames)
        print(f'{args.videos} videos x {args.video_frames} frames, {args.res}x{args.res} {args.format} in a zip, '
              f'clips of {args.frames} frames, batch {args.batch}, {os.cpu_count()} CPUs')
        for workers in args.workers:
            rate = clips_per_second(dataset, workers, args.batch, args.batches)
            print(f'workers={workers}: {rate:7.1f} clips/s = {rate * args.frames:7.1f} frames/s')

#----------------------------------------------------------------------------

if __name__ == '__main__':
    main()
