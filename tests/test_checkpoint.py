"""Weights-only checkpoints: same frames as the pickle, load with weights_only=True, bad files fail in one line."""

import copy
import os
import pickle
import subprocess
import sys

import pytest
import torch

import svc_plugin  # noqa: F401  (puts the upstream layer on sys.path)
from svc_plugin import checkpoint
from svc_plugin import runs
from svc_plugin.networks import VideoGenerator
from training import networks_stylegan2, networks_stylegan3

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

#----------------------------------------------------------------------------

@pytest.fixture(scope='module')
def snapshot_pkl(tmp_path_factory):
    torch.manual_seed(0)
    G = networks_stylegan3.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
        channel_base=256, channel_max=8, mapping_kwargs=dict(num_layers=2)).eval().requires_grad_(False)
    D = networks_stylegan2.Discriminator(c_dim=0, img_resolution=16, img_channels=3, channel_base=256, channel_max=8)
    snapshot = dict(G=G, D=D, G_ema=copy.deepcopy(G), augment_pipe=None, training_set_kwargs=dict(path='data.zip'))
    path = str(tmp_path_factory.mktemp('ckpt') / 'network-snapshot-000000.pkl')
    with open(path, 'wb') as f:
        pickle.dump(snapshot, f)
    return path

class RefusingUnpickler(pickle.Unpickler):
    """pickle's Unpickler, unable to import anything: torch.load(weights_only=False) cannot read a file through it."""
    def find_class(self, module, name):
        raise pickle.UnpicklingError(f'this test refuses to import {module}.{name}')

def test_weights_only_round_trip_gives_identical_images(snapshot_pkl, tmp_path, monkeypatch):
    dest = str(tmp_path / 'net.pt')
    checkpoint.save_weights(dest, checkpoint.load_network(snapshot_pkl))
    original = checkpoint.load_network(snapshot_pkl)['G_ema']
    monkeypatch.setattr(pickle, 'Unpickler', RefusingUnpickler) # The project's loader reads it without pickle's class imports.
    rebuilt = checkpoint.load_network(dest)
    monkeypatch.undo()
    z = torch.randn([3, 8])
    assert torch.equal(rebuilt['G_ema'](z, None), original(z, None))
    assert rebuilt['training_set_kwargs'] == dict(path='data.zip')
    assert set(rebuilt) >= {'G', 'D', 'G_ema', 'augment_pipe'}

def _checkpoint_naming_class(snapshot_pkl, dest, class_name):
    """The snapshot as a weights-only checkpoint whose config names class_name instead of the generator's class."""
    checkpoint.save_weights(dest, checkpoint.load_network(snapshot_pkl))
    data = torch.load(dest, weights_only=True)
    data['config'] = data['config'].replace('training.networks_stylegan3.Generator', class_name)
    torch.save(data, dest)
    return dest

def test_foreign_class_is_refused(snapshot_pkl, tmp_path):
    dest = _checkpoint_naming_class(snapshot_pkl, str(tmp_path / 'net.pt'), 'os.system')
    with pytest.raises(checkpoint.NetworkLoadError, match='not a project network class'):
        checkpoint.load_network(dest)

DICT_PICKLE = pickle.dumps(dict(G='x' * 300), protocol=4) # PROTO, FRAME <8-byte length>, ..., BINUNICODE <4-byte length> 'xxx...', ..., STOP

@pytest.mark.parametrize('content, reason', [
    (b'',                                               'the file is empty'),
    (b'not a pickle at all',                            'not a network pickle or weights-only checkpoint'),
    (b'\x80\x04\xff not an opcode',                        'not a network pickle or weights-only checkpoint'), # A pickle's first byte only.
    (DICT_PICKLE[:3],                                   'the file is truncated (an interrupted copy or download?); copy it again'), # In a length.
    (DICT_PICKLE[:40],                                  'the file is truncated (an interrupted copy or download?); copy it again'), # In a string.
    (DICT_PICKLE[:-1],                                  'the file is truncated (an interrupted copy or download?); copy it again'), # Before STOP.
    (DICT_PICKLE,                                       'a complete pickle, but not a network snapshot: it holds no generator (G, D and G_ema)'),
    (b'\x80\x02cstylesv_missing_module\nThing\nq\x00.', "the pickle needs code that is not installed (ModuleNotFoundError: No module named 'stylesv_missing_module')"),
])
def test_unusable_files_raise_one_line_saying_why(tmp_path, content, reason):
    path = str(tmp_path / 'bad.pkl')
    with open(path, 'wb') as f:
        f.write(content)
    with pytest.raises(checkpoint.NetworkLoadError) as info:
        checkpoint.load_network(path)
    assert str(info.value) == f'cannot load {path}: {reason}'

def test_a_truncated_snapshot_is_reported_as_truncated(snapshot_pkl, tmp_path):
    path = str(tmp_path / 'bad.pkl')
    with open(path, 'wb') as f:
        f.write(open(snapshot_pkl, 'rb').read()[:500])
    with pytest.raises(checkpoint.NetworkLoadError, match='the file is truncated'):
        checkpoint.load_network(path)

def test_image_generator_is_not_a_video_generator(snapshot_pkl):
    with pytest.raises(checkpoint.NetworkLoadError) as info:
        checkpoint.load_generator(snapshot_pkl)
    assert str(info.value).startswith(f'{snapshot_pkl} holds an image-only generator, not a video generator (video generation needs one); ')
    with pytest.raises(checkpoint.NetworkLoadError, match='image-only generator'):
        checkpoint.generator_of(checkpoint.load_network(snapshot_pkl), snapshot_pkl) # Video by default, too.
    G = checkpoint.load_generator(snapshot_pkl, video=False)
    assert isinstance(G, networks_stylegan3.Generator) and not checkpoint.is_video_generator(G)

def test_a_video_generator_loads_in_eval_mode_without_gradients(snapshot_pkl, tmp_path):
    snapshot = checkpoint.load_network(snapshot_pkl)
    image_G = snapshot['G_ema']
    video_G = VideoGenerator.from_image_generator(image_G, motion_kwargs=dict(z_dim=8, v_dim=8, motion_z_distance=4)).train().requires_grad_(True)
    path = str(tmp_path / 'video.pkl')
    with open(path, 'wb') as f:
        pickle.dump(dict(snapshot, G=video_G, G_ema=video_G), f)
    G = checkpoint.load_generator(path)
    assert checkpoint.is_video_generator(G) and not checkpoint.is_video_generator(image_G) and not checkpoint.is_video_generator(None)
    assert not G.training and not any(param.requires_grad for param in G.parameters())

def test_a_snapshot_without_g_ema_holds_no_generator():
    with pytest.raises(checkpoint.NetworkLoadError) as info:
        checkpoint.generator_of(dict(G_ema=None), 'x.pkl')
    assert str(info.value) == 'x.pkl holds no generator (no G_ema)'

def test_converter_cli(snapshot_pkl, tmp_path):
    dest = str(tmp_path / 'net.pt')
    run = lambda *args: subprocess.run([sys.executable, '-m', 'svc_plugin.checkpoint', *args], cwd=ROOT, capture_output=True, text=True)
    ok = run(f'--source={snapshot_pkl}', f'--dest={dest}')
    assert ok.returncode == 0 and os.path.isfile(dest)
    bad = run(f'--source={tmp_path / "missing.pkl"}', f'--dest={tmp_path / "x.pt"}')
    assert bad.returncode != 0 and 'Traceback' not in bad.stderr and 'not found' in bad.stderr
    assert not os.path.exists(tmp_path / 'x.pt')

#----------------------------------------------------------------------------
# --network=latest.

def test_newest_snapshot_is_the_highest_kimg_of_the_highest_run_that_has_one(tmp_path):
    for run, kimg in [('00000-a', 5), ('00002-b', 1), ('00002-b', 3), ('00010-c', None)]: # 00010 died before its first snapshot.
        os.makedirs(tmp_path / run, exist_ok=True)
        if kimg is not None:
            (tmp_path / run / f'network-snapshot-{kimg:06d}.pkl').write_bytes(b'')
    (tmp_path / 'notes').mkdir()
    assert runs.newest_snapshot(str(tmp_path)) == str(tmp_path / '00002-b' / 'network-snapshot-000003.pkl')
    assert runs.newest_snapshot(str(tmp_path), usable=lambda path: '00000-a' in path) == str(tmp_path / '00000-a' / 'network-snapshot-000005.pkl')
    assert runs.newest_snapshot(str(tmp_path / 'missing')) is None

def test_latest_resolves_to_the_newest_snapshot_and_a_path_stays_as_it_is(tmp_path):
    (tmp_path / '00000-a').mkdir()
    (tmp_path / '00000-a' / 'network-snapshot-000002.pkl').write_bytes(b'')
    assert checkpoint.resolve_network('latest', runs_dir=str(tmp_path)) == str(tmp_path / '00000-a' / 'network-snapshot-000002.pkl')
    assert checkpoint.resolve_network('other.pkl', runs_dir=str(tmp_path)) == 'other.pkl'
    with pytest.raises(checkpoint.NetworkLoadError) as info:
        checkpoint.resolve_network('latest', runs_dir=str(tmp_path / 'empty'))
    assert str(info.value) == (f'--network=latest: no network-snapshot-*.pkl in the runs under {tmp_path / "empty"}/; train first '
        '(python train_video.py ...) or give --network=PATH')

#----------------------------------------------------------------------------
# Safe loading: a checkpoint that would run code when unpickled, and one naming a class from outside the project.

class WritesAFile:
    """Unpickling this calls open(marker, 'w'): a real payload, which a safe loader never lets run."""
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, 'w'))

def test_a_checkpoint_carrying_code_is_refused_and_the_code_never_runs(snapshot_pkl, tmp_path):
    dest, marker = str(tmp_path / 'net.pt'), tmp_path / 'payload-ran'
    checkpoint.save_weights(dest, checkpoint.load_network(snapshot_pkl))
    data = torch.load(dest, weights_only=True)
    torch.save(dict(data, extra=WritesAFile(str(marker))), dest) # Otherwise a valid checkpoint.
    with pytest.raises(checkpoint.NetworkLoadError, match='damaged weights-only checkpoint'):
        checkpoint.load_network(dest)
    assert not marker.exists()

def test_a_class_from_outside_the_project_is_refused_even_with_a_project_class_s_name(snapshot_pkl, tmp_path, monkeypatch):
    """'payload_module.Generator' shares its short name with training.networks_stylegan3.Generator; importing its
    module would run the module's code (here: write a file)."""
    marker = tmp_path / 'payload-ran'
    (tmp_path / 'stylesv_test_payload.py').write_text(f'open({str(marker)!r}, "w").close()\nGenerator = dict\n')
    monkeypatch.syspath_prepend(str(tmp_path))
    dest = _checkpoint_naming_class(snapshot_pkl, str(tmp_path / 'net.pt'), 'stylesv_test_payload.Generator')
    with pytest.raises(checkpoint.NetworkLoadError, match="'stylesv_test_payload.Generator', which is not a project network class"):
        checkpoint.load_network(dest)
    assert not marker.exists()

#----------------------------------------------------------------------------
