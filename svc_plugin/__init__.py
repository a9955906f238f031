"""StyleSV: the video extension of the StyleGAN3-compatible core (Towards Smooth Video Composition, ICLR 2023).

Importing the package puts the upstream layer on sys.path, because its packages import each other as
top-level `dnnlib`, `torch_utils`, `training` and `metrics`, then applies `patches`, which adapt NVIDIA's
unedited release there to current PyTorch before anything imports it.
"""

import os
import sys

UPSTREAM_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'third_party', 'stylegan3')
if UPSTREAM_DIR not in sys.path:
    sys.path.insert(0, UPSTREAM_DIR)

import patches # pylint: disable=wrong-import-position # Needs the upstream layer on sys.path.
patches.apply()
