"""Tests of svc_plugin/tfevents.py: TensorBoard events as NVIDIA's training loop writes them, read back by TensorBoard."""

import sys

import numpy as np
import pytest

import dnnlib
from svc_plugin import tfevents
from tests.test_training_loop_ext import read_events

#----------------------------------------------------------------------------

def test_scalars_and_images_are_stepped_by_whole_kimg_and_empty_statistics_left_out(tmp_path):
    writer = tfevents.EventsWriter(str(tmp_path))
    writer.add_stats({'Loss/G/loss': dnnlib.EasyDict(num=4, mean=0.5, std=0.1), 'Progress/kimg': dnnlib.EasyDict(num=1, mean=1.999, std=0)}, 1999)
    writer.add_stats({'Loss/G/loss': dnnlib.EasyDict(num=4, mean=0.25, std=0.1), 'Progress/kimg': dnnlib.EasyDict(num=0, mean=float('nan'), std=float('nan'))}, 2000)
    writer.add_metrics({'fvd16': {'fvd16': 123.5}, 'jerk_kf': {'jerk_kf': 0.03}}, 2000)
    image = np.zeros([16, 48, 1], dtype=np.uint8)
    image[:, 16:32] = 255
    writer.add_image('Previews/fakes', image, 2999)
    writer.close()
    scalars, images = read_events(str(tmp_path))
    assert scalars == {'Loss/G/loss': [(1, 0.5), (2, 0.25)], 'Progress/kimg': [(1, pytest.approx(1.999))], 'Metrics/fvd16': [(2, 123.5)],
        'Metrics/jerk_kf': [(2, pytest.approx(0.03))]}
    assert images == {'Previews/fakes': [(2, 48, 16)]} # Grayscale written as RGB.

def test_a_resumed_run_hides_the_interrupted_run_s_events_after_its_snapshot(tmp_path):
    writer = tfevents.EventsWriter(str(tmp_path))
    for kimg in range(5):
        writer.add_scalar('Loss/D/loss', kimg, kimg * 1000)
    writer.close()
    writer = tfevents.EventsWriter(str(tmp_path), purge_nimg=2000) # Restored from the snapshot at kimg 2.
    writer.add_scalar('Loss/D/loss', 30, 3000)
    writer.close()
    scalars, _images = read_events(str(tmp_path))
    assert scalars == {'Loss/D/loss': [(0, 0), (1, 1), (2, 2), (3, 30)]}

def test_without_tensorboard_the_writer_says_so_once_and_writes_nothing(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, 'torch.utils.tensorboard', None) # `import` of it now raises ImportError.
    writer = tfevents.EventsWriter(str(tmp_path))
    writer.add_stats({'Loss/G/loss': dnnlib.EasyDict(num=1, mean=0.5, std=0)}, 1000)
    writer.add_image('Previews/fakes', np.zeros([4, 4, 3], dtype=np.uint8), 1000)
    writer.close()
    assert capsys.readouterr().out.count('pip install tensorboard') == 1
    assert list(tmp_path.iterdir()) == []

#----------------------------------------------------------------------------
