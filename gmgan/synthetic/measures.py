"""Scores of the synthetic task on held-out images, and paired statistics.

* the texture: :func:`gmgan.metrics.hf_energy_ratio` (luminance power above 1/4 of
  Nyquist, relative to HR's) and :func:`spectral_w2` (a perception distance on the scale
  of the distortion-perception bound);
* the structure: :func:`edge_gms` (GMSD's similarity pooled over the shapes' edges);
* :func:`score` computes them all for one model (the pilot's and the notebook's table);
* :func:`t_interval` (over seeds) and :func:`bootstrap_interval` (over images) give 95 %
  intervals of paired differences; they live in :mod:`gmgan.stats` (the natural-image
  comparisons use them too) and are re-exported here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from gmgan.losses import gms_map, gmsd, gradient_magnitude
from gmgan.metrics import hf_energy_ratio
from gmgan.resize import imresize
from gmgan.stats import bootstrap_interval, t_interval
from gmgan.synthetic.degradation import SCALE
from gmgan.synthetic.task import TaskBatch
from gmgan.synthetic.texture import TextureSpectrum

__all__ = [
    "EDGE_THRESHOLD",
    "Scores",
    "bootstrap_interval",
    "edge_gms",
    "score",
    "spectral_w2",
    "t_interval",
]

# --------------------------------------------------------------------------------------
# Evaluation on the structure
# --------------------------------------------------------------------------------------

#: Gradient magnitude (GMSD's, on the half-resolution luminance, [0, 1] per pixel) above
#: which a pixel of the structure counts as an edge: the weakest edge between two
#: colours in [0.25, 0.75] that differ by 0.1 in luminance gives about 0.1 beside it.
EDGE_THRESHOLD = 0.05


def edge_gms(
    sr: torch.Tensor,
    hr: torch.Tensor,
    structure: torch.Tensor,
    threshold: float = EDGE_THRESHOLD,
) -> dict[str, torch.Tensor]:
    """GMSD's gradient-magnitude similarity (GMS) of SR and HR, pooled over the
    structure's edges.

    The GMS map is :func:`gmgan.losses.gms_map` (luminance, half resolution); the edge
    band is where the structure's own gradient magnitude exceeds ``threshold``: there
    the shapes' edges dominate the texture's gradients, so the pooled values tell how
    well SR reproduces the edges.

    Args:
        sr, hr, structure: float (N, 3, n, n) in [0, 1] (HR and structure of a
            :class:`TaskBatch`).

    Returns:
        {"gmsd": std of GMS over the band (GMSD's pooling), "gmsm": its mean (1 is
        perfect), "pixels": band size}, each a float tensor (N,).
    """
    with torch.no_grad():
        gms = gms_map(sr.float(), hr.float()).flatten(1)
        band = (gradient_magnitude(structure.float()) > threshold).flatten(1)
        out = {"gmsd": [], "gmsm": [], "pixels": []}
        for values, mask in zip(gms, band):
            chosen = values[mask]
            out["gmsd"].append(
                chosen.std() if chosen.numel() > 1 else values.new_tensor(0.0)
            )
            out["gmsm"].append(
                chosen.mean() if chosen.numel() else values.new_tensor(1.0)
            )
            out["pixels"].append(values.new_tensor(float(mask.sum())))
    return {k: torch.stack(v) for k, v in out.items()}


def spectral_w2(
    textures: np.ndarray | torch.Tensor, spectrum: TextureSpectrum
) -> float:
    """W2 per pixel between stationary Gaussian fields with the textures' mean
    periodogram and with ``spectrum``: sqrt(mean_k (sqrt S(k) - sqrt S_est(k))^2). A
    perception proxy for the distortion-perception plane, on the same scale as
    :attr:`TextureBounds.w2` and the P of :func:`distortion_perception_bound`.

    It sees only the power per frequency, not phases or the correlation between aliased
    frequencies, so it is never above the exact W2 for the Wiener estimate (its value
    there, from S_hat, is smaller than ``bounds.w2``); it is 0 for any field with the
    right spectrum.

    Args:
        textures: (N, n, n) texture estimates, e.g. SR minus the known structure
            averaged over R, G, B ([0, 1] units, any mean: the mean is removed per
            image).
        spectrum: the true texture's spectrum.
    """
    x = (
        textures.detach().cpu().double().numpy()
        if isinstance(textures, torch.Tensor)
        else textures
    )
    x = np.asarray(x, np.float64)
    if x.ndim != 3 or x.shape[-1] != x.shape[-2]:
        raise ValueError(
            f"spectral_w2: expected (N, n, n) textures, got shape {x.shape}"
        )
    n = x.shape[-1]
    x = x - x.mean(axis=(1, 2), keepdims=True)
    estimate = (np.abs(np.fft.fft2(x)) ** 2).mean(axis=0) / n**2
    return float(
        np.sqrt(np.mean((np.sqrt(spectrum.on_grid(n)) - np.sqrt(estimate)) ** 2))
    )


#: The seed of the noise a stochastic generator draws when it is scored: every model
#: sees the same draws, and a score is the same at every call.
NOISE_SEED = 12345


@dataclass(frozen=True)
class Scores:
    """One model's scores on held-out images of the task (N images).

    Attributes:
        mse: (N,) MSE per pixel and channel against HR ([0, 1]^2 units).
        hf: (N,) high-frequency energy ratio of SR to HR (task images).
        edge_gmsd, edge_gmsm: (N,) :func:`edge_gms` on the structure's edges.
        gmsd: (N,) GMSD of the whole image (SR clamped to [0, 1]).
        spectral_w2: :func:`spectral_w2` of the texture part, SR minus the structure
            averaged over R, G, B (one value for the N images).
        hf_texture_only: (M,) HF ratio on texture-only images, or None.
    """

    mse: np.ndarray
    hf: np.ndarray
    edge_gmsd: np.ndarray
    edge_gmsm: np.ndarray
    gmsd: np.ndarray
    spectral_w2: float
    hf_texture_only: np.ndarray | None = None

    def summary(self) -> dict[str, float]:
        """Means over the images (medians for the HF ratios), as plain floats."""
        out = {
            "mse": float(self.mse.mean()),
            "hf_median": float(np.median(self.hf)),
            "edge_gmsd": float(self.edge_gmsd.mean()),
            "edge_gmsm": float(self.edge_gmsm.mean()),
            "gmsd": float(self.gmsd.mean()),
            "spectral_w2": self.spectral_w2,
        }
        if self.hf_texture_only is not None:
            out["hf_texture_only_median"] = float(np.median(self.hf_texture_only))
        return out


def _super_resolve(model, lr: torch.Tensor) -> torch.Tensor:
    if model is None:
        return imresize(lr, SCALE)
    with torch.no_grad():
        return model(lr)


def score(
    model: nn.Module | torch.Tensor | None,
    test: TaskBatch,
    spectrum: TextureSpectrum,
    flat: TaskBatch | None = None,
) -> Scores:
    """Score a generator on held-out images ``test`` of a task with ``spectrum``.

    Args:
        model: a generator (float (N, 3, h, w) -> (N, 3, 4h, 4w)), None for bicubic
            interpolation, or its outputs themselves, a float tensor like ``test.hr``.
            A stochastic generator draws its noise from torch's global generator seeded
            with :data:`NOISE_SEED` (the global state is changed).
        test: the images (:meth:`SyntheticSRTask.batch`).
        spectrum: the task's texture spectrum (for :func:`spectral_w2`).
        flat: texture-only images (a task with no shapes) for ``hf_texture_only``.
    """
    if isinstance(model, torch.Tensor):
        if model.shape != test.hr.shape:
            raise ValueError(f"score: SR of shape {tuple(model.shape)} for HR of "
                             f"shape {tuple(test.hr.shape)}")
        sr, sr_flat = model.float(), None
    else:
        torch.manual_seed(NOISE_SEED)
        sr = _super_resolve(model, test.lr)
        sr_flat = _super_resolve(model, flat.lr) if flat is not None else None
    edges = edge_gms(sr.clamp(0, 1), test.hr, test.structure)
    as_np = lambda t: t.detach().double().cpu().numpy()
    return Scores(
        mse=as_np(((sr - test.hr) ** 2).flatten(1).mean(dim=1)),
        hf=as_np(hf_energy_ratio(sr, test.hr)),
        edge_gmsd=as_np(edges["gmsd"]),
        edge_gmsm=as_np(edges["gmsm"]),
        gmsd=as_np(gmsd(sr.clamp(0, 1), test.hr.clamp(0, 1), reduction="none")),
        spectral_w2=spectral_w2((sr - test.structure).mean(dim=1), spectrum),
        hf_texture_only=(as_np(hf_energy_ratio(sr_flat, flat.hr))
                         if sr_flat is not None else None),
    )
