"""The metric table: every image-quality metric gmgan reports, how it is called, shown.

One :class:`Metric` per name, in the spirit of pyiqa's metric registry: the function of
:mod:`gmgan.metrics` that computes it, the arguments it gets (Y channel, border crop),
whether lower is better, and the name and precision that tables and readouts print.
Everything that scores a super-resolved image goes through this table:
:func:`gmgan.evaluate.score_sets` (and so ``gmgan eval``,
:func:`gmgan.evaluate.evaluate` and the trainer's validation) and the readouts of
:func:`gmgan.viz.compare`.

======  ======================================  =======  =========  ======  ========
name    computed on                             border   reference  better  printed
======  ======================================  =======  =========  ======  ========
psnr    Y of BT.601 YCbCr, dB (peak 255)        cropped  needed     higher  x.xx dB
ssim    Y of BT.601 YCbCr (MATLAB ssim_index)   cropped  needed     higher  x.xxxx
gmsd    luminance, the whole image              kept     needed     lower   x.xxxx
niqe    Y (pyiqa, PIRM's settings)              cropped  none       lower   x.xx
pi      Y (pyiqa): ((10 - Ma) + NIQE) / 2       cropped  none       lower   x.xx
hf      luminance power above Nyquist/4 vs HR   kept     needed     (1)     x.xx
======  ======================================  =======  =========  ======  ========

"border" is the ``border`` argument of :meth:`Metric.score`: the scale factor (4) by the
SR custom (PIRM's for NIQE and PI); GMSD always sees the whole image, as in the paper.
``hf`` (:func:`gmgan.metrics.hf_energy_ratio`) is not the paper's: the share of HR's
high-frequency energy that SR has (1 = as much), the measure of drawn texture; its
Hann window already fades the border out.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gmgan import metrics
from gmgan.metrics import GREY_DEFAULT, Grey, MissingModelFile

__all__ = ["METRIC_TABLE", "UNAVAILABLE_ERRORS", "Metric", "get_metric"]

#: Errors a metric raises when it cannot run here at all (a model file that is missing,
#: pyiqa not installed): callers report the metric as unavailable instead of stopping.
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (MissingModelFile, ImportError)


@dataclass(frozen=True)
class Metric:
    """One row of :data:`METRIC_TABLE`.

    Attributes:
        name: the key, lower case (``"psnr"``), as ``gmgan eval --metrics`` and
            :func:`gmgan.evaluate.evaluate` take it.
        function: the :mod:`gmgan.metrics` function that computes it.
        label: the name tables and readouts print (``"PSNR"``).
        lower_better: True when a lower value means a better image (GMSD, NIQE, PI).
        full_reference: compares the SR image with the HR image (False: SR alone).
        on_y: takes ``y_channel`` and ``grey`` (PSNR, SSIM: Y of BT.601 YCbCr).
        crops_border: takes ``crop_border``; False: scores the whole image it gets.
        digits: decimals printed (the paper's: 2 for dB and the no-reference scores,
            4 for SSIM and GMSD).
        unit: the unit printed after a readout (``"dB"``), ``""`` when unitless.
    """

    name: str
    function: Callable[..., float]
    label: str
    lower_better: bool
    full_reference: bool
    on_y: bool
    crops_border: bool
    digits: int
    unit: str = ""

    def score(self, sr: np.ndarray, hr: np.ndarray | None = None, *, border: int,
              grey: Grey = GREY_DEFAULT, y_channel: bool = True) -> float:
        """The metric of one SR image (against ``hr`` when :attr:`full_reference`).

        Args:
            sr, hr: numpy uint8 images H x W x 3 or H x W (grey), of one height and
                width. A grey image paired with an RGB one enters as R = G = B (PSNR and
                SSIM through ``grey="as_rgb"``; GMSD gets it repeated to 3 channels).
            border: pixels removed from each side where :attr:`crops_border` (the
                scale factor by custom); ignored by GMSD, which scores the whole image.
            grey, y_channel: passed to PSNR and SSIM (:attr:`on_y`), ignored by the
                others.

        Returns:
            the value as a Python float, in :attr:`unit`.
        """
        options: dict[str, object] = {}
        if self.crops_border:
            options["crop_border"] = border
        if self.on_y:
            options.update(y_channel=y_channel, grey=grey)
        if not self.full_reference:
            return float(self.function(sr, **options))
        if hr is None:
            raise ValueError(f"{self.label} compares with a reference image: give hr")
        if not self.on_y:
            sr, hr = _same_channels(sr, hr)
        return float(self.function(sr, hr, **options))

    def format(self, value: float | None) -> str:
        """``value`` with :attr:`digits` decimals (no unit); ``"-"`` for None or NaN."""
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return "-"
        return f"{value:.{self.digits}f}"

    @property
    def axis_label(self) -> str:
        """The label of a plot axis or a table column: the name, then the unit and, for
        the metrics where less is more, that reminder: ``"PSNR (dB)"``, ``"SSIM"``,
        ``"GMSD (lower is better)"``."""
        notes = [n for n in (self.unit, "lower is better" * self.lower_better) if n]
        return f"{self.label} ({', '.join(notes)})" if notes else self.label


def _same_channels(sr: np.ndarray, hr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A grey H x W image beside an RGB one repeated to H x W x 3 (R = G = B), for
    metrics that need equal shapes (GMSD); anything else as given."""
    if isinstance(sr, np.ndarray) and isinstance(hr, np.ndarray) and sr.ndim != hr.ndim:
        sr, hr = (np.repeat(x[:, :, None], 3, axis=2) if x.ndim == 2 else x
                  for x in (sr, hr))
    return sr, hr


#: Every metric gmgan reports, by name, in the order tables list them.
METRIC_TABLE: dict[str, Metric] = {
    m.name: m for m in (
        Metric("psnr", metrics.psnr, "PSNR", lower_better=False, full_reference=True,
               on_y=True, crops_border=True, digits=2, unit="dB"),
        Metric("ssim", metrics.ssim, "SSIM", lower_better=False, full_reference=True,
               on_y=True, crops_border=True, digits=4),
        Metric("gmsd", metrics.gmsd, "GMSD", lower_better=True, full_reference=True,
               on_y=False, crops_border=False, digits=4),
        Metric("niqe", metrics.niqe, "NIQE", lower_better=True, full_reference=False,
               on_y=False, crops_border=True, digits=2),
        Metric("pi", metrics.pi, "PI", lower_better=True, full_reference=False,
               on_y=False, crops_border=True, digits=2),
        # Not one of the paper's: how much fine detail SR draws, relative to HR's (1 = as
        # much; a blurred image scores below 1, added noise above). "Higher" is better only
        # up to 1; tables print it for the texture a GAN adds, not to rank models.
        Metric("hf", metrics.hf_energy_ratio, "HF ratio", lower_better=False,
               full_reference=True, on_y=False, crops_border=False, digits=2),
    )
}


def get_metric(name: str) -> Metric:
    """The table's row for ``name`` (lower case, e.g. ``"psnr"``).

    Raises:
        ValueError: ``name`` is not in :data:`METRIC_TABLE` (the message names it and
            lists the known ones).
    """
    try:
        return METRIC_TABLE[name]
    except (KeyError, TypeError):
        known = ", ".join(METRIC_TABLE)
        raise ValueError(f"unknown metric {name!r}; known: {known}") from None
