"""Benchmark the FVD detector: I3D clips/s on uint8 clips, called as the FVD metrics call it (rescale, resize to 224x224).

Runs on the CPU, and on CUDA when present (TF32 off, as for metrics, so the figures are full float32).
"""

import argparse
import os
import statistics
import sys
import time

_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _root not in sys.path:
    sys.path.insert(0, _root)

import torch
from svc_plugin.metrics import i3d

#----------------------------------------------------------------------------

def clips_per_second(detector, clips, repeats):
    """Median clips/s of detector(clips, rescale=True, resize=True, return_features=True) after one warm-up call."""
    device = clips.device
    times = []
    for _ in range(repeats + 1):
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        detector(clips, rescale=True, resize=True, return_features=True)
        if device.type == 'cuda':
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return clips.shape[0] / statistics.median(times[1:])

#----------------------------------------------------------------------------

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frames', type=int, default=16, help='Frames per clip.')
    parser.add_argument('--res', type=int, default=256, help='Input frame size (resized to 224x224 by the detector).')
    parser.add_argument('--cpu-batch', type=int, default=2, help='Clips per call on the CPU.')
    parser.add_argument('--cuda-batch', type=int, default=8, help='Clips per call on CUDA (StyleGAN-V: 128 frames per call).')
    parser.add_argument('--repeats', type=int, default=5, help='Timed calls per device (median reported).')
    args = parser.parse_args()

    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.benchmark = True
    devices = [('cpu', args.cpu_batch)] + ([('cuda', args.cuda_batch)] if torch.cuda.is_available() else [])
    for device, batch in devices:
        name = torch.cuda.get_device_name() if device == 'cuda' else f'CPU, {torch.get_num_threads()} threads'
        clips = torch.randint(0, 256, [batch, 3, args.frames, args.res, args.res], dtype=torch.uint8, device=device)
        with torch.no_grad():
            rate = clips_per_second(i3d.load_i3d(device), clips, args.repeats)
        print(f'I3D {device:4s} ({name}): {rate:7.2f} clips/s  ({batch} x {args.frames} frames at {args.res}x{args.res} -> 224x224 per call)')

if __name__ == '__main__':
    main()

#----------------------------------------------------------------------------
