"""Validation scores of the trainer: :func:`validate_model` (a generator on the
benchmark sets) and :func:`bicubic_scores` (the baseline).

Both score through :func:`gmgan.evaluate.score_sets`, the one scoring path that
``gmgan eval`` and the widgets use.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from torch import nn

from gmgan.evaluate import score_sets
from gmgan.imageio import image_to_tensor, tensor_to_image
from gmgan.resize import imresize

__all__ = ["bicubic_scores", "super_resolve", "validate_model"]


@torch.no_grad()
def super_resolve(model: nn.Module, lr: np.ndarray, device: torch.device) -> np.ndarray:
    """Run ``model`` on one LR image: numpy uint8 H x W x 3 (or H x W grey, fed as R = G = B) ->
    uint8 sH x sW x 3, in float32, whole image at once."""
    x = image_to_tensor(lr).to(device)
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    sr = model(x).float().nan_to_num_(0.0)
    return tensor_to_image(sr)


def validate_model(model: nn.Module, sets: Mapping[str, list], device: torch.device, *,
                   scale: int, niqe: bool = False) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """Mean PSNR (dB), SSIM and GMSD of ``model`` on each benchmark set (and NIQE if asked and
    its parameter file is available).

    PSNR/SSIM on the Y channel with a ``scale``-pixel border removed (:mod:`gmgan.metrics`);
    grey images (Set14 ``bridge``) go through the model as R = G = B and are scored as R = G = B
    (:data:`gmgan.metrics.GREY_DEFAULT`, as ``gmgan eval`` does), the GMGAN paper's convention
    (bicubic Set14: 26.09 dB).

    Returns ``({set: {"psnr", "ssim", "gmsd"[, "niqe"]}}, notes)``, notes saying why a metric
    was skipped. ``model`` is put in eval mode and back.
    """
    was_training = model.training
    model.eval()
    try:
        return _score_sets(sets, lambda lr: super_resolve(model, lr, device), scale=scale, niqe=niqe)
    finally:
        model.train(was_training)


def bicubic_scores(sets: Mapping[str, list], *, scale: int, niqe: bool = False) -> dict[str, dict[str, float]]:
    """The same scores for MATLAB-style bicubic upsampling (:func:`gmgan.imresize`): the baseline."""
    def upsample(lr: np.ndarray) -> np.ndarray:
        return imresize(np.repeat(lr[:, :, None], 3, axis=2) if lr.ndim == 2 else lr, scale)

    return _score_sets(sets, upsample, scale=scale, niqe=niqe)[0]


def _score_sets(sets: Mapping[str, list], upsample: Callable[[np.ndarray], np.ndarray], *,
                scale: int, niqe: bool) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """The scores of :func:`validate_model` for any ``upsample(lr) -> sr`` (uint8 RGB
    images), through :func:`gmgan.evaluate.score_sets`. NIQE of an image where it fails
    (the flat output of an untrained model) is NaN, with a note; without its parameter
    file or pyiqa NIQE is skipped, with a note."""
    metrics = ("psnr", "ssim", "gmsd") + (("niqe",) if niqe else ())
    scores = score_sets(upsample, sets, metrics, border=scale, nan_on_failure={"niqe"})
    return scores.means(), scores.notes
