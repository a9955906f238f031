"""Runtime adapters that let NVIDIA's unedited StyleGAN3 release, installed as third_party/stylegan3, run on
current PyTorch and setuptools without editing its files.

Each adapter names the upstream behaviour it adapts and the change behind it, acts only where it finds that
behaviour (so it is a no-op on the project's own upstream layer) and may be applied any number of times.
`import svc_plugin` applies them after putting the upstream layer on sys.path, before anything else imports it.
"""

from patches import custom_ops
from patches import infinite_sampler
from patches import parse_version

#----------------------------------------------------------------------------

def apply():
    parse_version.apply() # First: the op modules the other adapters import need it.
    infinite_sampler.apply()
    custom_ops.apply()

#----------------------------------------------------------------------------
