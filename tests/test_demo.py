"""Tests of the built-in demo data: rendering, and writing it through the dataset tool's demo source."""

import io
import json
import os
import subprocess
import sys
import zipfile

import numpy as np
import PIL.Image

from svc_plugin import dataset_tool
from svc_plugin import demo

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#----------------------------------------------------------------------------

def test_demo_zip_holds_one_folder_of_sorted_frames_per_video(tmp_path):
    dest = str(tmp_path / 'demo.zip')
    summary = dataset_tool.write_demo_dataset(dest, num_videos=3, num_frames=5, resolution=16)
    assert summary['videos'] == 3 and summary['frames'] == 15
    with zipfile.ZipFile(dest) as zf:
        names = sorted(n for n in zf.namelist() if n.endswith('.png'))
        assert names[0] == 'video00000/000000.png' and names[-1] == 'video00002/000004.png'
        assert len(names) == 15
        assert json.loads(zf.read('dataset.json')) == dict(labels=None, fps=25)
        img = np.asarray(PIL.Image.open(io.BytesIO(zf.read(names[0]))))
    assert img.shape == (16, 16, 3) and img.dtype == np.uint8

def test_demo_frames_move_smoothly_and_depend_on_seed():
    scene = demo.random_scenes(1, seed=0)[0]
    frames = np.stack([demo.render_frame(scene, t, 32).astype(np.float64) for t in range(4)])
    steps = np.abs(np.diff(frames, axis=0)).mean(axis=(1, 2, 3))
    assert np.all(steps > 0.05) and np.all(steps < 20)          # moving, but no cuts
    other = demo.render_frame(demo.random_scenes(1, seed=1)[0], 0, 32)
    assert not np.array_equal(other, frames[0].astype(np.uint8))

def test_demo_cli_rejects_bad_resolution_with_one_line(tmp_path):
    res = subprocess.run([sys.executable, '-m', 'svc_plugin.dataset_tool', '--source=demo', f'--dest={tmp_path / "x.zip"}', '--resolution=30'],
                         capture_output=True, text=True, cwd=ROOT)
    assert res.returncode != 0 and 'Traceback' not in res.stderr and 'power of two' in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert os.listdir(tmp_path) == []
