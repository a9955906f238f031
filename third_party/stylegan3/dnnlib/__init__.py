"""Miscellaneous utilities shared by the StyleGAN3 code base (dnnlib)."""

from .util import EasyDict, make_cache_dir_path
