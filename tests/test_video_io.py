"""Tests of svc_plugin/video_io.py: mp4 and PNG-folder writers, grid tiling, uint8 quantisation."""

import os

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

#----------------------------------------------------------------------------
