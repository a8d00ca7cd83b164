"""Fréchet distance between feature Gaussians: the arithmetic behind MNIST-FID.

Pure numpy/scipy, no model: `classifier.py` uses it to measure the real-vs-real floor it ships,
`metrics.py` to score samples, and neither has to import the other for it.
"""

from __future__ import annotations

import numpy as np
import torch


def feature_stats(feats: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    """Mean (D,) and unbiased covariance (D, D), float64."""
    f = feats.double().numpy()
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = 1e-6) -> float:
    """d^2 = |mu1 - mu2|^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) (Dowson & Landau 1982; Heusel et al. 2017).

    pytorch-fid's numerics: scipy's sqrtm, with an eps*I offset when the product is singular.
    When few samples make a covariance rank-deficient, sqrtm can leave a large imaginary part;
    then Tr((S1 S2)^(1/2)) comes from the eigenvalues of S1 S2 instead (real and >= 0 in exact
    arithmetic, as S1 S2 is similar to S1^(1/2) S2 S1^(1/2)), as torchmetrics computes it.
    """
    from scipy import linalg

    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shape mismatch: mu {mu1.shape} vs {mu2.shape}, sigma {sigma1.shape} vs {sigma2.shape}")
    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.isfinite(covmean).all() and np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
        tr_covmean = float(np.trace(covmean).real)
    else:
        eig = np.linalg.eigvals(sigma1 @ sigma2).real
        tr_covmean = float(np.sqrt(np.clip(eig, 0, None)).sum())
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean
    return float(max(value, 0.0))  # round-off can push a zero distance slightly negative


def floor_at(stats: dict[str, np.ndarray], num: int) -> float:
    """The real-vs-real floor at `num` samples: linear in 1/N between the shipped sizes."""
    inv_n = 1.0 / np.asarray(stats["floor_n"], np.float64)
    fid = np.asarray(stats["floor_fid"], np.float64)
    order = np.argsort(inv_n)
    return float(np.interp(1.0 / num, inv_n[order], fid[order]))
