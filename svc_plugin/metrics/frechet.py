"""Frechet distance between two Gaussians fitted to detector features (FID: Heusel et al. 2017; FVD: Unterthiner et al. 2018)."""

import warnings

import numpy as np
import scipy.linalg

#----------------------------------------------------------------------------

def frechet_distance(mu1, sigma1, mu2, sigma2):
    """|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 sqrtm(sigma1 sigma2)), in float64.

    sqrtm is scipy's (as in the FVD code of StyleGAN-V); round-off can give it a tiny imaginary
    part, and only the real part counts.
    """
    mu1, mu2 = np.asarray(mu1, dtype=np.float64), np.asarray(mu2, dtype=np.float64)
    sigma1, sigma2 = np.asarray(sigma1, dtype=np.float64), np.asarray(sigma2, dtype=np.float64)
    with warnings.catch_warnings(): # Covariances of fewer samples than features are singular by construction.
        warnings.simplefilter('ignore', scipy.linalg.LinAlgWarning)
        covmean = scipy.linalg.sqrtm(sigma1 @ sigma2)
    return float(np.real(np.square(mu1 - mu2).sum() + np.trace(sigma1 + sigma2 - 2 * covmean)))

#----------------------------------------------------------------------------
