"""Tiny deterministic stand-ins for the Inception and VGG16 metric detectors (tests only, nothing downloads)."""

import pickle

import torch

#----------------------------------------------------------------------------

class TinyDetector(torch.nn.Module):
    """A fixed random convolution with the calling conventions of the published detectors.

    forward(x) takes uint8 (or 0..255 float) RGB images [N, 3, H, W] and returns
    - return_features=True: pooled features [N, 4 * num_channels] (Inception pool3 / VGG16 fc features),
    - return_lpips=True: channel-normalised activations [N, ...], so that the squared difference of two
      rows is an LPIPS-like distance,
    - otherwise class probabilities [N, num_classes] (softmax; no_output_bias=True drops the bias).
    """
    def __init__(self,
        num_channels    = 8,    # Convolution output channels.
        num_classes     = 10,   # Classifier outputs.
        resolution      = 16,   # Images are resized to this when resize_images=True.
        seed            = 0,    # Seed of the fixed weights.
    ):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.resolution = resolution
        self.register_buffer('conv_weight', torch.randn([num_channels, 3, 3, 3], generator=g) / 27 ** 0.5)
        self.register_buffer('conv_bias', torch.randn([num_channels], generator=g) * 0.1)
        self.register_buffer('fc_weight', torch.randn([num_classes, num_channels * 4], generator=g))
        self.register_buffer('fc_bias', torch.randn([num_classes], generator=g))

    def forward(self, x, return_features: bool = False, no_output_bias: bool = False, resize_images: bool = True, return_lpips: bool = False):
        x = x.to(torch.float32) / 127.5 - 1
        if resize_images:
            x = torch.nn.functional.interpolate(x, size=(self.resolution, self.resolution), mode='bilinear', align_corners=False)
        act = torch.relu(torch.nn.functional.conv2d(x, self.conv_weight, self.conv_bias, padding=1)) # [N, C, H, W]
        if return_lpips:
            act = act / (act.square().sum(dim=1, keepdim=True) + 1e-10).sqrt()
            return act.flatten(1) / (act.shape[2] * act.shape[3]) ** 0.5
        features = torch.nn.functional.adaptive_avg_pool2d(act, 2).flatten(1) # [N, C * 4]
        if return_features:
            return features
        logits = features @ self.fc_weight.t()
        if not no_output_bias:
            logits = logits + self.fc_bias
        return torch.softmax(logits * 10, dim=1)

#----------------------------------------------------------------------------

def save_detector(path, torchscript=False, **kwargs):
    """Write a TinyDetector as a pickle (the published format) or as a TorchScript archive; return the path."""
    detector = TinyDetector(**kwargs).eval()
    if torchscript:
        torch.jit.save(torch.jit.script(detector), str(path))
    else:
        with open(path, 'wb') as f:
            pickle.dump(detector, f)
    return str(path)

#----------------------------------------------------------------------------
