"""Tests of svc_plugin/video_io.py: mp4 and PNG-folder writers, grid tiling, uint8 quantisation."""

import os
import threading
import time

import imageio.v3 as iio
import imageio_ffmpeg
import numpy as np
import PIL.Image
import pytest
import torch

from svc_plugin import video_io

#----------------------------------------------------------------------------

def random_frames(num_frames, size=16, channels=3, seed=0):
    return np.random.RandomState(seed).randint(0, 256, size=(num_frames, size, size, channels), dtype=np.uint8)

def smooth_frames(num_frames, size=32):
    """Frames that survive lossy coding almost unchanged: a gradient moving one pixel per frame."""
    x = np.arange(size)[None, None, :, None] + np.arange(num_frames)[:, None, None, None]
    return np.broadcast_to((x * 4 % 256).astype(np.uint8), (num_frames, size, size, 3))

#----------------------------------------------------------------------------

def test_to_uint8_follows_the_upstream_quantisation():
    x = torch.tensor([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0])
    assert video_io.to_uint8(x).tolist() == [0, 0, 128, 191, 255, 255]
    assert video_io.to_uint8(x).dtype == torch.uint8

def test_tile_clips_places_clip_v_at_row_v_div_cols():
    V, F, C, H, W = 6, 2, 3, 4, 5
    clips = torch.arange(V * F * C * H * W).reshape(V, F, C, H, W) % 251
    frames = video_io.tile_clips(clips.to(torch.uint8), (3, 2))
    assert frames.shape == (F, 2 * H, 3 * W, C)
    for v in range(V):
        row, col = divmod(v, 3)
        expected = clips[v].permute(0, 2, 3, 1).numpy()  # [F, H, W, C]
        assert np.array_equal(frames[:, row * H:(row + 1) * H, col * W:(col + 1) * W], expected)

def test_tile_clips_refuses_a_grid_of_another_size():
    with pytest.raises(ValueError, match='needs 4 clips'):
        video_io.tile_clips(np.zeros([3, 1, 3, 4, 4], np.uint8), (2, 2))

#----------------------------------------------------------------------------

def test_mp4_streamed_in_chunks_has_every_frame_at_the_given_rate(tmp_path):
    path = str(tmp_path / 'video.mp4')
    frames = smooth_frames(50)
    with video_io.Mp4Writer(path, fps=12.5, crf=0) as writer:
        for first in range(0, 50, 7):
            writer.write(frames[first:first + 7])
    assert sorted(os.listdir(tmp_path)) == ['video.mp4']
    assert imageio_ffmpeg.count_frames_and_secs(path) == (50, 4.0)
    decoded = iio.imread(path)
    assert decoded.shape == frames.shape
    assert np.abs(decoded.astype(int) - frames).mean() < 2 # lossless H.264, then 4:2:0 and back to RGB

def test_mp4_accepts_grayscale_tensors_and_odd_sizes(tmp_path):
    path = str(tmp_path / 'gray.mp4')
    video_io.write_video(path, torch.from_numpy(random_frames(5, size=15, channels=1)))
    assert imageio_ffmpeg.count_frames_and_secs(path)[0] == 5
    assert iio.imread(path).shape[1:3] == (16, 16) # padded to even sizes for 4:2:0

def test_mp4_error_leaves_no_file_under_either_name(tmp_path):
    path = str(tmp_path / 'video.mp4')
    with pytest.raises(RuntimeError, match='stop'):
        with video_io.Mp4Writer(path) as writer:
            writer.write(random_frames(3))
            raise RuntimeError('stop')
    assert os.listdir(tmp_path) == []

def test_mp4_encoder_failure_is_an_oserror_with_ffmpegs_reason(tmp_path):
    path = str(tmp_path / 'missing_dir' / 'video.mp4')
    with pytest.raises(OSError, match='ffmpeg') as info:
        video_io.write_video(path, random_frames(3))
    assert '\n' not in str(info.value)
    assert not os.path.exists(tmp_path / 'missing_dir')

def test_writer_refuses_frames_of_the_wrong_type_or_size(tmp_path):
    with pytest.raises(ValueError, match='uint8'):
        video_io.write_video(str(tmp_path / 'a.mp4'), random_frames(2).astype(np.float32))
    with pytest.raises(ValueError, match='size changed'):
        video_io.write_video(str(tmp_path / 'b.mp4'), [random_frames(2, size=16), random_frames(2, size=8)])
    assert os.listdir(tmp_path) == []

#----------------------------------------------------------------------------

def test_png_folder_holds_exact_frames_and_replaces_an_older_folder(tmp_path):
    path = str(tmp_path / 'seed0000')
    os.makedirs(path)
    open(os.path.join(path, 'stale.png'), 'wb').close()
    frames = random_frames(12)
    with video_io.open_video(path, 'png') as writer:
        writer.write(frames[:5])
        writer.write(frames[5:])
    names = sorted(os.listdir(path))
    assert names == [f'{i:06d}.png' for i in range(12)]
    for name, frame in zip(names, frames):
        assert np.array_equal(np.asarray(PIL.Image.open(os.path.join(path, name))), frame)
    assert os.listdir(tmp_path) == ['seed0000']

def test_png_folder_is_removed_on_error(tmp_path):
    with pytest.raises(KeyboardInterrupt):
        with video_io.open_video(str(tmp_path / 'clip'), 'png') as writer:
            writer.write(random_frames(2))
            raise KeyboardInterrupt
    assert os.listdir(tmp_path) == []

def random_clips(num_chunks, videos=2, frames=3, size=8, seed=0):
    """Chunks of generator-like clips, float [V, F, 3, H, W] in about [-1, 1]."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.rand([videos, frames, 3, size, size], generator=gen) * 2.2 - 1.1 for _ in range(num_chunks)]

def test_streamed_clips_encode_to_the_bytes_of_the_synchronous_writes(tmp_path):
    chunks = random_clips(5)
    with video_io.Mp4Writer(str(tmp_path / 'sync.mp4'), fps=10) as writer:
        for clips in chunks:
            writer.write(video_io.tile_clips(video_io.to_uint8(clips), (2, 1)))
    seen = []
    video_io.stream_clips(video_io.Mp4Writer(str(tmp_path / 'streamed.mp4'), fps=10), chunks, (2, 1), progress=seen.append)
    assert (tmp_path / 'streamed.mp4').read_bytes() == (tmp_path / 'sync.mp4').read_bytes()
    assert seen == [3] * 5
    video_io.stream_clips(video_io.open_video(str(tmp_path / 'png'), 'png'), chunks, (1, 2))
    expected = torch.cat([video_io.to_uint8(clips) for clips in chunks], dim=1) # [V, F, C, H, W]
    for index, name in enumerate(sorted(os.listdir(tmp_path / 'png'))):
        frame = torch.from_numpy(np.array(PIL.Image.open(tmp_path / 'png' / name))) # [2*H, W, C]: clip 0 above clip 1
        assert torch.equal(frame, torch.cat(list(expected[:, index].permute(0, 2, 3, 1)), dim=0))

class BlockedWriter(video_io.PngFolderWriter):
    """A PNG folder writer whose writes wait until `go` is set."""
    def __init__(self, path):
        super().__init__(path)
        self.go = threading.Event()
    def _write(self, frames):
        self.go.wait()
        super()._write(frames)

def test_a_slow_encoder_holds_back_generation_after_a_bounded_number_of_chunks(tmp_path):
    writer, produced = BlockedWriter(str(tmp_path / 'clip')), []
    def chunks():
        for index, clips in enumerate(random_clips(20, videos=1)):
            produced.append(index)
            yield clips
    thread = threading.Thread(target=video_io.stream_clips, args=(writer, chunks(), (1, 1)), kwargs=dict(pending_chunks=2))
    thread.start()
    time.sleep(1) # Time for an unbounded producer to run ahead.
    assert len(produced) == 4 # One in the writer's hands, two queued, one waiting for room.
    writer.go.set()
    thread.join()
    assert len(os.listdir(tmp_path / 'clip')) == 20 * 3

class FailingWriter(video_io.PngFolderWriter):
    """A PNG folder writer whose second write fails as a full disk does."""
    def _write(self, frames):
        if self.num_frames > 0:
            raise OSError(28, 'No space left on device')
        super()._write(frames)

def test_an_encoder_error_in_its_thread_reaches_the_caller_and_leaves_no_output(tmp_path):
    produced = []
    def chunks():
        for clips in random_clips(50, videos=1):
            produced.append(clips)
            yield clips
    with pytest.raises(OSError, match='No space left'):
        video_io.stream_clips(FailingWriter(str(tmp_path / 'clip')), chunks(), (1, 1))
    assert os.listdir(tmp_path) == []
    assert len(produced) < 50 # Generation stopped at the error, not at the end.

def test_a_generation_error_aborts_the_encoder_and_leaves_no_output(tmp_path):
    def chunks():
        yield from random_clips(3, videos=1)
        raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        video_io.stream_clips(video_io.Mp4Writer(str(tmp_path / 'video.mp4')), chunks(), (1, 1))
    assert os.listdir(tmp_path) == []

#----------------------------------------------------------------------------
