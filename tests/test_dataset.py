"""Tests for training.dataset: folder and zip datasets, labels, mirroring, subsets, pickling and input errors."""

import json
import os
import pickle
import zipfile

import numpy as np
import PIL.Image
import pytest

from training.dataset import ImageFolderDataset

#----------------------------------------------------------------------------

def _image(i, size=8, channels=3):
    rnd = np.random.RandomState(i)
    shape = [size, size, channels] if channels > 1 else [size, size]
    return rnd.randint(0, 256, size=shape, dtype=np.uint8)

def _make_folder(root, num=6, labels=None, size=8, channels=3):
    """Images in two sub-folders; returns their relative paths in sorted order."""
    fnames = [f'{i // 3:02d}/img{i:04d}.png' for i in range(num)]
    for i, fname in enumerate(fnames):
        os.makedirs(os.path.join(root, os.path.dirname(fname)), exist_ok=True)
        PIL.Image.fromarray(_image(i, size, channels)).save(os.path.join(root, fname))
    if labels is not None:
        with open(os.path.join(root, 'dataset.json'), 'w') as f:
            json.dump({'labels': [[fname, label] for fname, label in zip(fnames, labels)]}, f)
    return fnames

def _zip_folder(root, zip_path):
    with zipfile.ZipFile(zip_path, 'w', compression=zipfile.ZIP_STORED) as zf:
        for dirpath, _dirs, files in os.walk(root):
            for fname in files:
                path = os.path.join(dirpath, fname)
                zf.write(path, os.path.relpath(path, root).replace(os.sep, '/'))

#----------------------------------------------------------------------------

def test_folder_dataset_reads_images_in_sorted_order_with_shape_and_name(tmp_path):
    _make_folder(tmp_path / 'faces')
    ds = ImageFolderDataset(str(tmp_path / 'faces'))
    assert ds.name == 'faces'
    assert len(ds) == 6
    assert ds.image_shape == [3, 8, 8] and ds.num_channels == 3 and ds.resolution == 8
    for i in range(len(ds)):
        image, label = ds[i]
        assert image.dtype == np.uint8 and image.shape == (3, 8, 8)
        np.testing.assert_array_equal(image, _image(i).transpose(2, 0, 1))
        assert label.shape == (0,) and label.dtype == np.float32
    assert not ds.has_labels

def test_zip_dataset_matches_folder_dataset(tmp_path):
    _make_folder(tmp_path / 'data', labels=[0, 2, 1, 0, 2, 1])
    _zip_folder(tmp_path / 'data', tmp_path / 'data.zip')
    folder = ImageFolderDataset(str(tmp_path / 'data'), use_labels=True)
    archive = ImageFolderDataset(str(tmp_path / 'data.zip'), use_labels=True)
    assert archive.name == 'data' and len(archive) == len(folder)
    for i in range(len(folder)):
        np.testing.assert_array_equal(archive[i][0], folder[i][0])
        np.testing.assert_array_equal(archive[i][1], folder[i][1])
    archive.close()

def test_grayscale_images_have_one_channel(tmp_path):
    _make_folder(tmp_path / 'gray', num=2, channels=1)
    ds = ImageFolderDataset(str(tmp_path / 'gray'))
    assert ds.image_shape == [1, 8, 8]
    np.testing.assert_array_equal(ds[1][0][0], _image(1, channels=1))

def test_integer_labels_become_one_hot(tmp_path):
    _make_folder(tmp_path / 'data', labels=[0, 2, 1, 0, 2, 1])
    ds = ImageFolderDataset(str(tmp_path / 'data'), use_labels=True)
    assert ds.has_labels and ds.has_onehot_labels
    assert ds.label_shape == [3] and ds.label_dim == 3
    np.testing.assert_array_equal(ds[1][1], [0, 0, 1])
    np.testing.assert_array_equal(ds.get_label(2), [0, 1, 0])
    assert ds.get_details(1).raw_label == 2

def test_float_labels_are_returned_as_vectors(tmp_path):
    labels = [[i * 0.5, -i] for i in range(6)]
    _make_folder(tmp_path / 'data', labels=labels)
    ds = ImageFolderDataset(str(tmp_path / 'data'), use_labels=True)
    assert not ds.has_onehot_labels and ds.label_dim == 2
    np.testing.assert_allclose(ds[3][1], [1.5, -3])
    assert ds[3][1].dtype == np.float32

def test_labels_are_ignored_unless_requested(tmp_path):
    _make_folder(tmp_path / 'data', labels=[0, 1, 0, 1, 0, 1])
    ds = ImageFolderDataset(str(tmp_path / 'data'))
    assert ds.label_shape == [0] and not ds.has_labels

def test_xflip_appends_mirrored_copies(tmp_path):
    _make_folder(tmp_path / 'data', num=3)
    ds = ImageFolderDataset(str(tmp_path / 'data'), xflip=True)
    assert len(ds) == 6
    for i in range(3):
        np.testing.assert_array_equal(ds[i + 3][0], ds[i][0][:, :, ::-1])
        assert not ds.get_details(i).xflip and ds.get_details(i + 3).xflip
        assert ds.get_details(i + 3).raw_idx == i

def test_max_size_picks_a_sorted_subset_determined_by_the_seed(tmp_path):
    _make_folder(tmp_path / 'data', num=10)
    def raw_indices(**kwargs):
        ds = ImageFolderDataset(str(tmp_path / 'data'), max_size=4, **kwargs)
        return [ds.get_details(i).raw_idx for i in range(len(ds))]
    a = raw_indices(random_seed=1)
    assert len(a) == 4 and a == sorted(a) and len(set(a)) == 4
    assert raw_indices(random_seed=1) == a
    assert any(raw_indices(random_seed=s) != a for s in range(2, 6))
    assert len(ImageFolderDataset(str(tmp_path / 'data'), max_size=20)) == 10

def test_pickling_drops_zip_handle_and_cached_labels(tmp_path):
    _make_folder(tmp_path / 'data', labels=[0, 1, 0, 1, 0, 1])
    _zip_folder(tmp_path / 'data', tmp_path / 'data.zip')
    ds = ImageFolderDataset(str(tmp_path / 'data.zip'), use_labels=True)
    expected = ds[4]
    state = ds.__getstate__()
    assert state['_zipfile'] is None and state['_raw_labels'] is None
    clone = pickle.loads(pickle.dumps(ds))
    np.testing.assert_array_equal(clone[4][0], expected[0])
    np.testing.assert_array_equal(clone[4][1], expected[1])

def test_resolution_mismatch_raises_ioerror(tmp_path):
    _make_folder(tmp_path / 'data', num=2)
    assert ImageFolderDataset(str(tmp_path / 'data'), resolution=8).resolution == 8
    with pytest.raises(IOError, match='resolution 16'):
        ImageFolderDataset(str(tmp_path / 'data'), resolution=16)

def test_bad_paths_raise_one_line_ioerrors(tmp_path):
    with pytest.raises(IOError, match='does not exist'):
        ImageFolderDataset(str(tmp_path / 'missing'))
    (tmp_path / 'notes.txt').write_text('hello')
    with pytest.raises(IOError, match='directory or a .zip'):
        ImageFolderDataset(str(tmp_path / 'notes.txt'))
    (tmp_path / 'broken.zip').write_text('not a zip')
    with pytest.raises(IOError, match='not a valid zip'):
        ImageFolderDataset(str(tmp_path / 'broken.zip'))
    (tmp_path / 'empty').mkdir()
    (tmp_path / 'empty' / 'readme.txt').write_text('no images')
    with pytest.raises(IOError, match='No image files'):
        ImageFolderDataset(str(tmp_path / 'empty'))

def test_images_of_different_shapes_raise_ioerror(tmp_path):
    _make_folder(tmp_path / 'data', num=2)
    PIL.Image.fromarray(_image(9, size=16)).save(tmp_path / 'data' / '00' / 'odd.png')
    ds = ImageFolderDataset(str(tmp_path / 'data'))
    with pytest.raises(IOError, match='same shape'):
        [ds[i] for i in range(len(ds))]

def test_missing_label_raises_ioerror(tmp_path):
    _make_folder(tmp_path / 'data', num=3)
    with open(tmp_path / 'data' / 'dataset.json', 'w') as f:
        json.dump({'labels': [['00/img0000.png', 1]]}, f)
    ds = ImageFolderDataset(str(tmp_path / 'data'), use_labels=True)
    with pytest.raises(IOError, match='no label'):
        ds.label_shape

#----------------------------------------------------------------------------
