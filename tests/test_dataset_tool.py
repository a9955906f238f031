"""Tests of svc_plugin.dataset_tool on short videos written here with imageio-ffmpeg, frame folders, zips and the demo source."""

import io
import json
import os
import subprocess
import sys
import zipfile

import imageio.v2 as imageio
import numpy as np
import PIL.Image
import pytest
from click.testing import CliRunner

from svc_plugin import dataset_tool
from svc_plugin.dataset import VideoFramesFolderDataset

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#----------------------------------------------------------------------------

def _level(t):
    return 16 * t + 8

def _write_video(path, width, height, frames, fps=10):
    """Frame t: the central square grey at _level(t), the margins outside it pure red (so cropping shows)."""
    side = min(width, height)
    x0, y0 = (width - side) // 2, (height - side) // 2
    writer = imageio.get_writer(str(path), fps=fps, codec='libx264', macro_block_size=1, ffmpeg_log_level='error', output_params=['-crf', '0'])
    for t in range(frames):
        frame = np.zeros([height, width, 3], dtype=np.uint8)
        frame[..., 0] = 255
        frame[y0:y0 + side, x0:x0 + side] = _level(t)
        writer.append_data(frame)
    writer.close()

def _read_dataset(path):
    """{video name: uint8 [T, H, W, C]} and dataset.json of a zip or folder dataset."""
    if os.path.isdir(path):
        files = {os.path.relpath(os.path.join(d, f), path).replace(os.sep, '/'): open(os.path.join(d, f), 'rb').read()
                 for d, _dirs, fs in os.walk(path) for f in fs}
    else:
        with zipfile.ZipFile(path) as zf:
            files = {name: zf.read(name) for name in zf.namelist()}
    info = json.loads(files.pop('dataset.json'))
    videos = {}
    for name in sorted(files):
        videos.setdefault(name.split('/')[0], []).append(np.asarray(PIL.Image.open(io.BytesIO(files[name]))))
    return {k: np.stack(v) for k, v in videos.items()}, info

def _frame_index(frames):
    """Source frame indices of output frames [T, H, W, C] (their centre grey level)."""
    centre = frames[:, frames.shape[1] // 2, frames.shape[2] // 2, 1].astype(np.float64)
    return np.rint((centre - 8) / 16).astype(int)

def _leftovers(folder):
    return [name for name in os.listdir(folder) if '.tmp' in name]

@pytest.fixture(scope='module')
def footage(tmp_path_factory):
    """A folder of videos of several sizes and aspect ratios, one too short, one corrupt, one not a video."""
    root = tmp_path_factory.mktemp('footage')
    _write_video(root / 'wide.mp4', 48, 32, 12)
    os.makedirs(root / 'more')
    _write_video(root / 'more' / 'tall.avi', 24, 40, 6)
    _write_video(root / 'short.mov', 16, 16, 3)
    _write_video(root / 'large.mkv', 96, 64, 5)
    (root / 'corrupt.mp4').write_bytes(np.random.RandomState(0).bytes(3000))
    (root / 'notes.txt').write_text('not footage')
    return root

#----------------------------------------------------------------------------

def test_videos_of_any_aspect_become_square_frames_and_bad_files_are_reported(footage, tmp_path):
    dest = tmp_path / 'out.zip'
    res = subprocess.run([sys.executable, '-m', 'svc_plugin.dataset_tool', f'--source={footage}', f'--dest={dest}',
                          '--resolution=16', '--min-frames=4', '--workers=2'], capture_output=True, text=True, cwd=ROOT)
    assert res.returncode == 0, res.stderr
    assert 'Wrote 3 videos, 23 frames (16x16, 10 fps)' in res.stdout
    assert '3 sources skipped (1 not a video, 1 undecodable, 1 too short)' in res.stdout
    assert 'corrupt.mp4: undecodable' in res.stdout and 'notes.txt: not a video' in res.stdout
    assert 'short.mov: too short (3 frames < --min-frames=4)' in res.stdout
    videos, info = _read_dataset(dest)
    assert info['fps'] == 10 and info['labels'] is None
    assert info['sources'] == {'video00001': 'large.mkv', 'video00002': 'more/tall.avi', 'video00004': 'wide.mp4'}
    assert {k: v.shape for k, v in videos.items()} == {'video00001': (5, 16, 16, 3), 'video00002': (6, 16, 16, 3), 'video00004': (12, 16, 16, 3)}
    for frames in videos.values():
        np.testing.assert_array_equal(_frame_index(frames), np.arange(len(frames)))
        assert np.abs(frames[..., 0].astype(int) - frames[..., 1]).max() < 40 # cropped: red margin gone but for chroma bleed
    ds = VideoFramesFolderDataset(str(dest), resolution=16, frames=3)
    assert ds.video_names == ['video00001', 'video00002', 'video00004'] and ds.fps == 10.0
    assert ds[0][0].shape == (3, 3, 16, 16)
    assert _leftovers(tmp_path) == []

def test_crop_none_squashes_the_whole_frame(footage, tmp_path):
    summary = dataset_tool.convert_dataset(str(footage / 'wide.mp4'), str(tmp_path / 'out'), 16, crop='none')
    assert summary['videos'] == 1 and summary['frames'] == 12
    frames = _read_dataset(tmp_path / 'out')[0]['video00000']
    assert frames[:, 8, 0, 0].min() > 200 and frames[:, 8, 0, 1].max() < 40 # the red margin, squeezed in
    assert frames[:, 8, 8, 0].max() == frames[:, 8, 8, 1].max() # a grey centre

def test_fps_selects_source_frames(footage, tmp_path):
    dataset_tool.convert_dataset(str(footage / 'wide.mp4'), str(tmp_path / 'slow.zip'), 16, fps=5)
    videos, info = _read_dataset(tmp_path / 'slow.zip')
    assert info['fps'] == 5
    np.testing.assert_array_equal(_frame_index(videos['video00000']), [0, 2, 4, 6, 8, 10])
    dataset_tool.convert_dataset(str(footage / 'wide.mp4'), str(tmp_path / 'odd.zip'), 16, fps=4)
    np.testing.assert_array_equal(_frame_index(_read_dataset(tmp_path / 'odd.zip')[0]['video00000']), [0, 2, 5, 7, 10])
    summary = dataset_tool.convert_dataset(str(footage / 'wide.mp4'), str(tmp_path / 'fast.zip'), 64, fps=20, max_frames=6)
    np.testing.assert_array_equal(_frame_index(_read_dataset(tmp_path / 'fast.zip')[0]['video00000']), [0, 0, 1, 1, 2, 2])
    assert summary['notes'] == {'upscaled': 1} # 32 pixels high, 64 wanted

def test_chunk_cuts_clips_and_drops_short_ones(footage, tmp_path):
    summary = dataset_tool.convert_dataset(str(footage / 'wide.mp4'), str(tmp_path / 'out.zip'), 16, chunk=5, min_frames=3, max_frames=12)
    assert summary['videos'] == 2 and summary['frames'] == 10 and summary['dropped'] == 1
    assert 'Dropped 1 chunk shorter than --min-frames.' in dataset_tool.format_summary(summary)
    videos, info = _read_dataset(tmp_path / 'out.zip')
    assert sorted(videos) == ['video00000_0', 'video00000_1'] and info['sources']['video00000_1'] == 'wide.mp4'
    np.testing.assert_array_equal(_frame_index(videos['video00000_1']), [5, 6, 7, 8, 9])
    with pytest.raises(ValueError, match='--chunk'):
        dataset_tool.convert_dataset(str(footage / 'wide.mp4'), str(tmp_path / 'x.zip'), 16, chunk=2, min_frames=3)

def test_max_frames_max_videos_and_jpg(footage, tmp_path):
    summary = dataset_tool.convert_dataset(str(footage), str(tmp_path / 'out'), 8, max_frames=4, max_videos=2, fmt='jpg')
    assert summary['videos'] == 2 and summary['frames'] == 8 and summary['stopped']
    assert sorted(os.listdir(tmp_path / 'out' / 'video00001')) == ['000000.jpg', '000001.jpg', '000002.jpg', '000003.jpg']
    assert sorted(os.listdir(tmp_path / 'out')) == ['dataset.json', 'video00001', 'video00002']
    assert 'upscaled' not in summary['notes']

#----------------------------------------------------------------------------

def _frame_folders(root):
    """Two frame folders at other sizes: grayscale 24x24 and RGBA 20x30, with labels and fps in dataset.json."""
    os.makedirs(root / 'clipA')
    os.makedirs(root / 'clipB')
    for t in range(4):
        PIL.Image.fromarray(np.full([24, 24], _level(t), dtype=np.uint8)).save(root / 'clipA' / f'f{t:02d}.png')
    for t in range(5):
        PIL.Image.fromarray(np.full([30, 20, 4], _level(t), dtype=np.uint8)).save(root / 'clipB' / f'f{t:02d}.png')
    (root / 'dataset.json').write_text(json.dumps(dict(fps=12, labels=[['clipA', 1], ['clipB', 0]])))

def test_frame_folders_and_their_zip_convert_alike_with_labels_and_fps(tmp_path):
    _frame_folders(tmp_path / 'frames')
    summary = dataset_tool.convert_dataset(str(tmp_path / 'frames'), str(tmp_path / 'from_dir.zip'), 8)
    assert summary['notes'] == {'grayscale': 1, 'alpha': 1}
    text = dataset_tool.format_summary(summary)
    assert '1 video: converted from grayscale to RGB.' in text and '1 video: had an alpha channel (dropped).' in text
    with zipfile.ZipFile(tmp_path / 'frames.zip', 'w') as zf:
        for dirpath, _dirs, files in os.walk(tmp_path / 'frames'):
            for fname in files:
                zf.write(os.path.join(dirpath, fname), os.path.relpath(os.path.join(dirpath, fname), tmp_path / 'frames'))
    dataset_tool.convert_dataset(str(tmp_path / 'frames.zip'), str(tmp_path / 'from_zip'), 8)
    (a, info_a), (b, info_b) = _read_dataset(tmp_path / 'from_dir.zip'), _read_dataset(tmp_path / 'from_zip')
    assert info_a == info_b == dict(fps=12, labels=[['video00000', 1], ['video00001', 0]], sources={'video00000': 'clipA', 'video00001': 'clipB'})
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert a['video00000'].shape == (4, 8, 8, 3) and a['video00001'].shape == (5, 8, 8, 3)
    np.testing.assert_array_equal(_frame_index(a['video00001']), np.arange(5))
    ds = VideoFramesFolderDataset(str(tmp_path / 'from_zip'), frames=2, use_labels=True)
    np.testing.assert_array_equal([ds.get_label(i) for i in range(2)], [[0, 1], [1, 0]])

def test_videos_inside_a_zip_and_missing_labels(footage, tmp_path):
    with zipfile.ZipFile(tmp_path / 'videos.zip', 'w') as zf:
        zf.write(footage / 'wide.mp4', 'set/wide.mp4')
        zf.writestr('dataset.json', json.dumps(dict(labels={'set/wide': [0.5, 2.0]})))
    summary = dataset_tool.convert_dataset(str(tmp_path / 'videos.zip'), str(tmp_path / 'out.zip'), 16)
    videos, info = _read_dataset(tmp_path / 'out.zip')
    assert summary['frames'] == 12 and info['labels'] == [['video00000', [0.5, 2.0]]] and info['fps'] == 10
    np.testing.assert_array_equal(_frame_index(videos['video00000']), np.arange(12))
    with zipfile.ZipFile(tmp_path / 'unlabelled.zip', 'w') as zf:
        zf.write(footage / 'wide.mp4', 'a.mp4')
        zf.write(footage / 'wide.mp4', 'b.mp4')
        zf.writestr('dataset.json', json.dumps(dict(labels=[['a.mp4', 1]])))
    with pytest.raises(IOError, match='no label for 1 video'):
        dataset_tool.convert_dataset(str(tmp_path / 'unlabelled.zip'), str(tmp_path / 'x.zip'), 16)

def test_demo_source_is_deterministic_by_seed(tmp_path):
    kwargs = dict(demo_videos=3, demo_frames=4)
    dataset_tool.convert_dataset('demo', str(tmp_path / 'a.zip'), 16, seed=7, **kwargs)
    dataset_tool.convert_dataset('demo', str(tmp_path / 'b'), 16, seed=7, workers=2, **kwargs)
    dataset_tool.convert_dataset('demo', str(tmp_path / 'c.zip'), 16, seed=8, **kwargs)
    (a, info), (b, _), (c, _) = (_read_dataset(tmp_path / name) for name in ('a.zip', 'b', 'c.zip'))
    assert info == dict(fps=25, labels=None)
    assert sorted(a) == ['video00000', 'video00001', 'video00002'] and a['video00000'].shape == (4, 16, 16, 3)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a['video00000'], c['video00000'])

#----------------------------------------------------------------------------

@pytest.mark.parametrize('case', ['missing source', 'bad resolution', 'all corrupt', 'dest not empty', 'not a source'])
def test_bad_input_is_one_line_without_traceback_and_leaves_nothing(footage, tmp_path, case):
    (tmp_path / 'bad').mkdir()
    (tmp_path / 'bad' / 'corrupt.mp4').write_bytes(b'\0' * 100)
    (tmp_path / 'full').mkdir()
    (tmp_path / 'full' / 'keep.txt').write_text('x')
    source, dest, resolution = {
        'missing source': (tmp_path / 'nothing', tmp_path / 'out.zip', 16),
        'bad resolution': (footage, tmp_path / 'out.zip', 30),
        'all corrupt':    (tmp_path / 'bad', tmp_path / 'out.zip', 16),
        'dest not empty': (footage, tmp_path / 'full', 16),
        'not a source':   (footage / 'notes.txt', tmp_path / 'out.zip', 16),
    }[case]
    res = CliRunner().invoke(dataset_tool.main, [f'--source={source}', f'--dest={dest}', f'--resolution={resolution}', '--workers=1'])
    assert res.exit_code != 0 and not isinstance(res.exception, (ValueError, OSError))
    assert len(res.stderr.strip().splitlines()) == 1 and res.stderr.startswith('Error:')
    assert not (tmp_path / 'out.zip').exists() and os.listdir(tmp_path / 'full') == ['keep.txt']
    assert _leftovers(tmp_path) == []

def test_a_decode_error_partway_through_a_frame_folder_skips_that_video_only(tmp_path):
    """The 3rd PNG of clipA is cut off: clipA's first frames decode, then it fails; the build goes on without it."""
    for name in ['clipA', 'clipB']:
        os.makedirs(tmp_path / 'frames' / name)
        for t in range(5):
            PIL.Image.fromarray(np.full([8, 8, 3], _level(t), dtype=np.uint8)).save(tmp_path / 'frames' / name / f'f{t:02d}.png')
    third = tmp_path / 'frames' / 'clipA' / 'f02.png'
    third.write_bytes(third.read_bytes()[:40]) # Header intact, image data missing.
    summary = dataset_tool.convert_dataset(str(tmp_path / 'frames'), str(tmp_path / 'out.zip'), 8)
    assert summary['videos'] == 1 and summary['frames'] == 5
    assert [(name, reason.split(' ')[0]) for name, reason in summary['skipped']] == [('clipA', 'undecodable')]
    assert '1 source skipped (1 undecodable)' in dataset_tool.format_summary(summary)
    videos, info = _read_dataset(tmp_path / 'out.zip')
    assert info['sources'] == {'video00001': 'clipB'} and videos['video00001'].shape == (5, 8, 8, 3)
    assert _leftovers(tmp_path) == [] and sorted(os.listdir(tmp_path)) == ['frames', 'out.zip']

def test_a_video_whose_decoder_fails_partway_is_skipped_and_reported(footage, tmp_path, monkeypatch):
    """wide.mp4's decoder fails at frame 3 as imageio-ffmpeg fails on a cut-off stream ('Could not read frame 3');
    the other videos are still written."""
    read_frames = dataset_tool.imageio_ffmpeg.read_frames
    def failing_partway(path, *args, **kwargs):
        reader = read_frames(path, *args, **kwargs)
        yield next(reader) # The stream's meta data.
        for index, frame in enumerate(reader):
            if index == 2 and path.endswith('wide.mp4'):
                raise RuntimeError('Could not read frame 3:\nEnd of file reached before full frame could be read.')
            yield frame
    monkeypatch.setattr(dataset_tool.imageio_ffmpeg, 'read_frames', failing_partway)
    summary = dataset_tool.convert_dataset(str(footage), str(tmp_path / 'out.zip'), 16, min_frames=4)
    assert ('wide.mp4', 'undecodable (Could not read frame 3:)') in summary['skipped']
    videos, info = _read_dataset(tmp_path / 'out.zip')
    assert sorted(info['sources'].values()) == ['large.mkv', 'more/tall.avi']
    assert _leftovers(tmp_path) == []

#----------------------------------------------------------------------------
