"""`torch.utils.data.Sampler.__init__(data_source)` for the release's `InfiniteSampler`.

NVIDIA's `torch_utils.misc.InfiniteSampler` calls `super().__init__(dataset)`. PyTorch first deprecated that
argument, then dropped `Sampler.__init__` altogether, so the call now reaches `object.__init__` and raises
TypeError: no data loader, no training. Where the upstream sampler fails that way, `Sampler` gets back an
`__init__` that accepts the argument and ignores it, as PyTorch's did.
"""

import torch

#----------------------------------------------------------------------------

def _ignore_data_source(self, data_source=None): # pylint: disable=unused-argument
    pass

def accept_data_source(sampler_class):
    """Let `sampler_class` be built over a one-item dataset, if only Sampler.__init__ stops it."""
    try:
        sampler_class([0])
    except TypeError:
        torch.utils.data.Sampler.__init__ = _ignore_data_source

def apply():
    from torch_utils import misc # pylint: disable=import-outside-toplevel
    accept_data_source(misc.InfiniteSampler)

#----------------------------------------------------------------------------
