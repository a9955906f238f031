"""The plugin's calls into the upstream layer, against the behaviour of NVIDIA's release where ours is more lenient."""

import numpy as np
import torch

from metrics import metric_utils
from torch_utils import misc
from training import networks_stylegan3
from svc_plugin import networks
from svc_plugin.metrics import frame_fid
from tests import detectors

#----------------------------------------------------------------------------

def release_copy_params_and_buffers(src_module, dst_module, require_all=False):
    """misc.copy_params_and_buffers as the release has it: an in-place copy, whatever the autograd mode."""
    src_tensors = dict(misc.named_params_and_buffers(src_module))
    for name, tensor in misc.named_params_and_buffers(dst_module):
        assert (name in src_tensors) or (not require_all)
        if name in src_tensors:
            tensor.copy_(src_tensors[name].detach()).requires_grad_(tensor.requires_grad)

def test_video_generator_from_image_generator_with_release_copy(monkeypatch):
    monkeypatch.setattr(misc, 'copy_params_and_buffers', release_copy_params_and_buffers)
    torch.manual_seed(0)
    G_image = networks_stylegan3.Generator(z_dim=8, c_dim=0, w_dim=8, img_resolution=16, img_channels=3,
        channel_base=128, channel_max=8, num_layers=4, num_critical=1, margin_size=2, num_fp16_res=0).requires_grad_(True)
    G = networks.VideoGenerator.from_image_generator(G_image, motion_kwargs=dict(v_dim=8, z_dim=8, motion_z_distance=4))
    assert torch.equal(G.mapping.fc0.weight, G_image.mapping.fc0.weight)

#----------------------------------------------------------------------------

def test_frame_fid_gives_release_metric_utils_the_local_inception(monkeypatch, tmp_path):
    """The release's metric_utils loads the detector_url it is given (no $STYLESV_INCEPTION), so FID must pass the local one."""
    local = detectors.save_detector(tmp_path / 'inception.pkl', seed=1)
    monkeypatch.setenv('STYLESV_INCEPTION', local)
    urls = []
    def release_feature_stats(opts, detector_url, detector_kwargs, **_kwargs):
        urls.append(detector_url)
        stats = metric_utils.FeatureStats(capture_mean_cov=True)
        stats.append(np.random.RandomState(len(urls)).randn(8, 4))
        return stats
    monkeypatch.setattr(metric_utils, 'compute_feature_stats_for_dataset', release_feature_stats)
    monkeypatch.setattr(metric_utils, 'compute_feature_stats_for_generator', release_feature_stats)
    opts = metric_utils.MetricOptions(dataset_kwargs=dict(class_name='training.dataset.ImageFolderDataset', path=str(tmp_path)),
        device=torch.device('cpu'))
    frame_fid.compute_frame_fid(opts, num_gen=8)
    assert urls == [local, local]

#----------------------------------------------------------------------------

class OpenAtConstruction(torch.utils.data.Dataset):
    """Holds an open handle from its constructor, as the release's ImageFolderDataset holds its zip."""
    def __init__(self):
        self.handle = 'opened by the parent'
    def close(self):
        self.handle = None
    def __len__(self):
        return 2
    def __getitem__(self, idx):
        return torch.tensor(self.handle is None)

def test_frame_fid_real_loader_gives_each_worker_its_own_files():
    """Workers must not read through the handle inherited from the parent (concurrent reads of one zip: 'Bad CRC-32')."""
    kwargs = frame_fid.real_loader_kwargs(metric_utils.MetricOptions(device=torch.device('cpu')))
    kwargs.update(num_workers=1)
    loader = torch.utils.data.DataLoader(OpenAtConstruction(), batch_size=2, **kwargs)
    assert next(iter(loader)).all()

#----------------------------------------------------------------------------
