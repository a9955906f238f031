"""Videos: a video generator's frames rendered chunk by chunk, quantised to uint8, tiled into grids and streamed
into an H.264 mp4 (or a folder of PNGs).

Shared by gen_video.py, the training loop's preview videos and the video metrics. Frames go into the encoder as they
are produced, so a video of any length costs the memory of a few chunks; stream_clips encodes in a thread of its own
while the next chunk is generated. Every output is written under a temporary name and renamed once complete: an
interrupted run never leaves a partial file under the final name.
"""

import os
import queue
import re
import signal
import subprocess
import tempfile
import threading
from fractions import Fraction

import click
import imageio_ffmpeg
import numpy as np
import PIL.Image
import torch

from svc_plugin import fileio

DEFAULT_FPS = 25 # Frame rate of videos whose training data records none, and of the demo data.

#----------------------------------------------------------------------------

def render_video_chunks(G, z, c, t, motion_seeds, frames_per_chunk, **G_kwargs):
    """Yield the videos of z [V, z_dim], c [V, c_dim] at times t [frames] (the same for every video, any float dtype)
    as float chunks [V, F_chunk, C, H, W] in about [-1, 1], frames_per_chunk consecutive frames per forward pass, so
    memory does not grow with the length. The motion noise of video v is seeded by motion_seeds[v] per key slot, so
    a frame does not depend on where the chunks start. No graph is kept (no_grad, not inference_mode: constants that
    the ops cache on first use, as misc.constant does, would be inference tensors, which a later training step in the
    same process, after its preview videos, could not save for its backward)."""
    V = z.shape[0]
    for first in range(0, t.numel(), frames_per_chunk):
        tv = t[first : first + frames_per_chunk].to(z.device).unsqueeze(0).repeat(V, 1) # [V, F_chunk]
        with torch.no_grad():
            img = G(z=z, c=c, t=tv, motion_seeds=motion_seeds, **G_kwargs) # [V * F_chunk, C, H, W], video-major
        yield img.reshape(V, tv.shape[1], *img.shape[1:])

def to_uint8(images):
    """Generator output in [-1, 1] -> uint8 in [0, 255], the upstream quantisation (x * 127.5 + 128, clamped)."""
    return (images * 127.5 + 128).clamp(0, 255).to(torch.uint8)

def parse_grid(value):
    """--grid: 'COLSxROWS' (or 'COLS,ROWS') -> (cols, rows), both at least 1; a tuple passes through (click types
    see defaults too)."""
    if value is None or isinstance(value, tuple):
        return value
    match = re.fullmatch(r'\s*(\d+)\s*[x,]\s*(\d+)\s*', value)
    if match is None or int(match.group(1)) < 1 or int(match.group(2)) < 1:
        raise click.BadParameter(f'expected COLSxROWS like 4x2, got {value!r}')
    return int(match.group(1)), int(match.group(2))

def tile_clips(clips, grid):
    """Lay V clips out as one video: clips [V, F, C, H, W] (a tensor on any device, or an array) -> [F, rows*H, cols*W, C],
    contiguous, a tensor on the clips' device.

    `grid` is (cols, rows); clip v goes to row v // cols, column v % cols.
    """
    cols, rows = grid
    clips = torch.as_tensor(clips)
    V, F, C, H, W = clips.shape
    if V != cols * rows:
        raise ValueError(f'a {cols}x{rows} grid needs {cols * rows} clips, got {V}')
    frames = clips.reshape(rows, cols, F, C, H, W).permute(2, 0, 4, 1, 5, 3) # [F, rows, H, cols, W, C]
    return frames.reshape(F, rows * H, cols * W, C).contiguous()

def to_host(frames):
    """(frames in host memory, a CUDA event to wait on before reading them, or None). From a CUDA device the copy goes
    into pinned memory without blocking: the GPU's queue runs on while the encoder waits for the event instead."""
    if frames.device.type != 'cuda':
        return frames, None
    host = torch.empty(frames.shape, dtype=frames.dtype, pin_memory=True)
    host.copy_(frames, non_blocking=True)
    ready = torch.cuda.Event()
    ready.record(torch.cuda.current_stream(frames.device))
    return host, ready

def stream_clips(writer, chunks, grid, pending_chunks=2, progress=None):
    """Write chunks of clips [V, F, C, H, W] (generator output in [-1, 1], on any device) into `writer` as one video tiled
    into `grid`, then close it (or abort it on any error). Quantisation and tiling run on the clips' device; the encoder
    runs in a thread of its own (BackgroundWriter), so the next chunk is generated while this one is encoded.
    progress(num_frames), if given, is called per chunk."""
    with BackgroundWriter(writer, pending_chunks) as background:
        for clips in chunks:
            with torch.no_grad():
                frames = tile_clips(to_uint8(clips), grid) # [F, rows*H, cols*W, C]
            background.write(*to_host(frames))
            if progress is not None:
                progress(clips.shape[1])

#----------------------------------------------------------------------------

class _AtomicOutput:
    """An output that becomes visible under its final name only when close() succeeds.

    As a context manager: closed on success, aborted (temporary output removed) on any exception.
    """
    def __init__(self, path):
        self.path = str(path)
        self.tmp_path = fileio.temporary_path(self.path)
        self.num_frames = 0

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def write(self, frames):
        """Append frames: uint8 [F, H, W, C] (C = 1 or 3), a tensor or an array."""
        frames = np.asarray(frames)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] not in (1, 3):
            raise ValueError(f'expected uint8 frames [F, H, W, 1 or 3], got {frames.dtype} {list(frames.shape)}')
        self._write(frames)
        self.num_frames += frames.shape[0]

#----------------------------------------------------------------------------

class Mp4Writer(_AtomicOutput):
    """H.264 mp4 through the ffmpeg binary that imageio-ffmpeg ships; the encoder runs in its own process.

    ffmpeg is driven directly (not through imageio_ffmpeg.write_frames) so that its exit status and
    error text are known: a failed encode raises and is never renamed into place.
    """
    def __init__(self, path, fps=DEFAULT_FPS, crf=18, preset='medium'):
        super().__init__(path)
        self.fps = Fraction(fps).limit_denominator(1001) # ffmpeg takes the rate as a rational
        self.crf = crf          # H.264 constant rate factor: 0 lossless, 18 visually lossless, 23 ffmpeg's default, 51 worst
        self.preset = preset    # x264 speed/size trade-off
        self._proc = None       # ffmpeg, started by the first write (which fixes the frame size)
        self._log = None
        self._shape = None

    def _start(self, height, width, channels):
        self._log = tempfile.TemporaryFile() # ffmpeg's stderr; a file, so a chatty ffmpeg cannot block on a full pipe
        cmd = [imageio_ffmpeg.get_ffmpeg_exe(), '-y', '-loglevel', 'error',
            '-f', 'rawvideo', '-pix_fmt', 'rgb24' if channels == 3 else 'gray', '-s', f'{width}x{height}', '-r', str(self.fps), '-i', '-',
            '-an', '-c:v', 'libx264', '-preset', self.preset, '-crf', str(self.crf),
            '-vf', 'pad=ceil(iw/2)*2:ceil(ih/2)*2', '-pix_fmt', 'yuv420p', # 4:2:0 (what players expect) needs even sizes
            '-f', 'mp4', self.tmp_path]
        self._proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self._log)
        self._shape = (height, width, channels)

    def _write(self, frames):
        if self._proc is None:
            self._start(*frames.shape[1:])
        if frames.shape[1:] != self._shape:
            raise ValueError(f'frame size changed within a video: {list(self._shape)} -> {list(frames.shape[1:])}')
        try:
            self._proc.stdin.write(frames.tobytes())
        except BrokenPipeError:
            self._proc.wait()
            raise OSError(f'ffmpeg stopped: {self._ffmpeg_error()}') from None

    def _ffmpeg_error(self):
        self._log.seek(0)
        lines = self._log.read().decode(errors='replace').strip().splitlines()
        if lines:
            return lines[-1]
        code = self._proc.returncode
        if code is not None and code < 0: # Killed: SIGXFSZ when the output outgrows the file size limit (ulimit -f).
            return f'killed by {signal.Signals(-code).name}' + (' (file size limit exceeded)' if -code == signal.SIGXFSZ else '')
        return f'exit status {code}'

    def close(self):
        """Finish the encode and rename the file into place."""
        if self._proc is None:
            raise ValueError(f'no frames written to {self.path}')
        try:
            self._proc.stdin.close()
            if self._proc.wait() != 0:
                raise OSError(f'ffmpeg failed: {self._ffmpeg_error()}')
            fileio.rename_into_place(self.tmp_path, self.path)
        finally:
            self.abort()

    def abort(self):
        """Stop ffmpeg and remove the temporary file (if it is still there)."""
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.kill()
            self._proc.wait()
            self._log.close()
        fileio.discard(self.tmp_path)

#----------------------------------------------------------------------------

class PngFolderWriter(_AtomicOutput):
    """A folder of frames 000000.png, 000001.png, ... (the layout of one video in a video dataset)."""
    def __init__(self, path):
        super().__init__(path)
        os.makedirs(self.tmp_path)

    def _write(self, frames):
        for index, frame in enumerate(frames, start=self.num_frames):
            image = PIL.Image.fromarray(frame[:, :, 0], 'L') if frame.shape[2] == 1 else PIL.Image.fromarray(frame, 'RGB')
            image.save(os.path.join(self.tmp_path, f'{index:06d}.png'))

    def close(self):
        """Rename the folder into place, replacing an earlier folder of the same name."""
        try:
            fileio.rename_into_place(self.tmp_path, self.path)
        finally:
            self.abort()

    def abort(self):
        fileio.discard(self.tmp_path)

#----------------------------------------------------------------------------

class BackgroundWriter:
    """Runs a writer's write() calls in a thread of its own, fed through a queue of at most `pending_chunks` chunks.

    The producer waits only when that many chunks are already waiting, so memory stays bounded however long the video.
    As a context manager it closes the writer on success and aborts it (temporary output removed) on any error. An
    error in the thread is raised again in the producer, at its next write() or at the end.
    """
    def __init__(self, writer, pending_chunks=2):
        self.writer = writer
        self._queue = queue.Queue(maxsize=pending_chunks)
        self._error = None          # The first exception raised by writer.write in the thread.
        self._cancelled = False     # Set on the producer's error: the thread drops what is still queued.
        self._thread = threading.Thread(target=self._drain, name='video writer', daemon=True)
        self._thread.start()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc_value, traceback):
        self._cancelled = exc_type is not None
        self._queue.put(None)
        self._thread.join()
        if exc_type is not None or self._error is not None:
            self.writer.abort()
            if exc_type is None:
                raise self._error
            return
        self.writer.close()

    def write(self, frames, ready=None):
        """Queue uint8 frames [F, H, W, C] (as writer.write takes them); `ready`, if given, is an event to wait on first."""
        if self._error is not None:
            raise self._error
        self._queue.put((frames, ready))

    def _drain(self):
        while (item := self._queue.get()) is not None:
            if self._error is not None or self._cancelled:
                continue
            frames, ready = item
            try:
                if ready is not None:
                    ready.synchronize()
                self.writer.write(frames)
            except BaseException as err: # Handed to the producer, which raises it.
                self._error = err

#----------------------------------------------------------------------------

def open_video(path, format='mp4', fps=DEFAULT_FPS, crf=18):
    """A writer for `path`: format 'mp4' (H.264 at `fps`, `crf`) or 'png' (a folder of frames)."""
    if format == 'mp4':
        return Mp4Writer(path, fps=fps, crf=crf)
    if format == 'png':
        return PngFolderWriter(path)
    raise ValueError(f'unknown video format {format!r}: expected mp4 or png')

def write_video(path, frames, fps=DEFAULT_FPS, crf=18):
    """Write a whole mp4 at once: frames uint8 [F, H, W, C], or an iterable of such chunks."""
    chunks = [frames] if isinstance(frames, (np.ndarray, torch.Tensor)) else frames
    with Mp4Writer(path, fps=fps, crf=crf) as writer:
        for chunk in chunks:
            writer.write(chunk)

#----------------------------------------------------------------------------
