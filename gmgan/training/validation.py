"""Validation scores of the trainer: :func:`validate_model` (a generator on the
benchmark sets) and :func:`bicubic_scores` (the baseline).

The functions here are moved unchanged from ``gmgan.train_utils``; one scoring path
(``gmgan.evaluate``) is to replace them.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch
from torch import nn

__all__ = ["bicubic_scores", "super_resolve", "validate_model"]


@torch.no_grad()
def super_resolve(model: nn.Module, lr: np.ndarray, device: torch.device) -> np.ndarray:
    """Run ``model`` on one LR image: numpy uint8 H x W x 3 (or H x W grey, fed as R = G = B) ->
    uint8 sH x sW x 3, in float32, whole image at once."""
    from gmgan.imageio import image_to_tensor, tensor_to_image

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
    from gmgan.resize import imresize

    def upsample(lr: np.ndarray) -> np.ndarray:
        return imresize(np.repeat(lr[:, :, None], 3, axis=2) if lr.ndim == 2 else lr, scale)

    return _score_sets(sets, upsample, scale=scale, niqe=niqe)[0]


def _score_sets(sets: Mapping[str, list], upsample: Callable[[np.ndarray], np.ndarray], *, scale: int,
                niqe: bool) -> tuple[dict[str, dict[str, float]], dict[str, str]]:
    """The scores of :func:`validate_model` for any ``upsample(lr) -> sr`` (uint8 RGB images)."""
    from gmgan import metrics

    notes: dict[str, str] = {}
    out = {}
    for name, images in sets.items():
        scores: dict[str, list[float]] = {"psnr": [], "ssim": [], "gmsd": []}
        for im in images:
            sr = upsample(im.lr)
            hr = im.hr
            scores["psnr"].append(metrics.psnr(sr, hr, crop_border=scale, grey=metrics.GREY_DEFAULT))
            scores["ssim"].append(metrics.ssim(sr, hr, crop_border=scale, grey=metrics.GREY_DEFAULT))
            hr3 = np.repeat(hr[:, :, None], 3, axis=2) if hr.ndim == 2 else hr
            scores["gmsd"].append(metrics.gmsd(sr, hr3))
            if niqe and "niqe" not in notes:
                scores.setdefault("niqe", []).append(_niqe_or_nan(sr, scale, name, im.name, notes))
        if "niqe" in notes:
            scores.pop("niqe", None)
        out[name] = {k: float(np.mean(v)) for k, v in scores.items() if v}
    return out, notes


def _niqe_or_nan(img: np.ndarray, scale: int, set_name: str, image_name: str, notes: dict[str, str]) -> float:
    """NIQE of one image; NaN (with a note) when it fails on this image (e.g. a flat output of an
    untrained model); a missing parameter file or pyiqa sets ``notes["niqe"]`` to skip NIQE."""
    from gmgan import metrics

    try:
        return float(metrics.niqe(img, crop_border=scale))
    except (FileNotFoundError, ImportError) as err:
        notes["niqe"] = f"NIQE skipped: {err}"
    except Exception as err:  # noqa: BLE001 - pyiqa raises linear-algebra errors on flat images
        notes[f"niqe_{set_name}_{image_name}"] = f"NIQE failed on {set_name}/{image_name}: {err}"
    return float("nan")
