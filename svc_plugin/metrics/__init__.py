"""Video metrics: the I3D detector (i3d.py) and the FVD protocols of StyleGAN-V (fvd.py)."""
