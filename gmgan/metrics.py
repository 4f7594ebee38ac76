"""Image quality metrics as the super-resolution literature reports them.

* ``psnr`` and ``ssim``: full-reference, on the Y channel of BT.601 YCbCr (MATLAB constants, Y on the
  16..235 scale, kept in float), ``crop_border`` pixels removed from each side, SSIM as Wang et al.'s
  MATLAB ``ssim_index`` (11x11 Gaussian window, sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, valid region,
  no downsampling). Computed in float64.
* ``gmsd``: Gradient Magnitude Similarity Deviation, through :func:`gmgan.losses.gmsd`.
* ``hf_energy_ratio``: the luminance power above a radial frequency cutoff (1/4 of
  Nyquist by default) of SR over that of HR; ``radial_power_spectrum`` for plots.
* ``niqe`` and ``pi``: no-reference, through pyiqa, with their model files taken from the local data
  cache or pyiqa's cache, else downloaded by pyiqa where the network allows (:func:`pi_available`
  tells without downloading).

Inputs follow the package convention: numpy uint8 H x W x 3 or H x W (as read from files; numpy float
arrays are taken to be in [0, 1]) give a Python float; torch float tensors (N, C, H, W) in [0, 1]
(C = 3 RGB or 1 grey; a (C, H, W) tensor counts as N = 1) give a float64 tensor of shape (N,) with one
value per image.

Grey images (Set14 ``bridge`` is a single-channel PNG) have no single convention; ``grey`` chooses:

* ``"as_rgb"`` (default, :data:`GREY_DEFAULT`): grey is RGB with R = G = B = v, so
  Y = 16 + 219 v / 255, as when the image is read as RGB. Bicubic x4 Set14 computes to
  26.09 dB / 0.7048, the GMGAN paper's 26.10 (its Table 1 is what this package reproduces).
* ``"as_y"``: the grey values are the luminance: Y = v (0..255) is compared directly. This widens the
  range by 255/219 and lowers PSNR by 20 log10(255/219) = 1.32 dB on bridge: Set14 bicubic becomes
  25.99 dB / 0.7029, the ESRGAN / EDSR figure (26.00 / 0.7027).

:data:`GREY_DEFAULT` is the one default of the whole package: :func:`gmgan.evaluate.evaluate`,
``gmgan eval`` and the trainer's validation use it too, and evaluation tables name it.

How the package calls these functions when it scores SR images (border, channel, which
way is better, how values are printed) is one table,
:data:`gmgan.metric_table.METRIC_TABLE`.

Other published settings: the bicubic baselines quoted in most SR papers (Set5 28.42 / 0.8104) come
from MATLAB scripts that round Y to uint8 and resize the Y channel alone; ``round_y=True`` gives
the rounding. With float Y (the default), bicubic x4 of the MATLAB LR files computes to Set5
28.43 / 0.8111 and BSD100 25.96 / 0.6681, the GMGAN paper's bicubic SSIMs.

Both images of a pair must have the same number of channels, except that with ``grey="as_rgb"`` a
grey image is paired with an RGB one by repeating its channel.
"""
from __future__ import annotations

import functools
import importlib
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from scipy.ndimage import correlate1d

from gmgan.cache import data_dir
from gmgan.color import YCBCR_MATRIX, YCBCR_OFFSET
from gmgan.losses import gmsd as _gmsd  # the one GMSD implementation
from gmgan.online import network_available

__all__ = [
    "GREY_DEFAULT",
    "NIQE_MODEL_FILE",
    "NRQM_MODEL_FILE",
    "MissingModelFile",
    "channel_offsets",
    "gmsd",
    "hf_energy_ratio",
    "match_channel_means",
    "niqe",
    "pi",
    "pi_available",
    "psnr",
    "radial_power_spectrum",
    "ssim",
]

Image = np.ndarray | torch.Tensor
Grey = Literal["as_y", "as_rgb"]

#: How a single-channel image enters PSNR / SSIM unless told otherwise, everywhere in gmgan (these
#: functions, gmgan.evaluate, ``gmgan eval``, training validation): as R = G = B (module docstring).
GREY_DEFAULT: Grey = "as_rgb"

NIQE_MODEL_FILE = "niqe_modelparameters.mat"
NRQM_MODEL_FILE = "NRQM_model.mat"

# MATLAB ssim_index constants.
_SSIM_WINDOW, _SSIM_SIGMA, _SSIM_K1, _SSIM_K2, _PEAK = 11, 1.5, 0.01, 0.03, 255.0


# ---------------------------------------------------------------------------------------------
# Input handling: everything becomes a float64 numpy array (N, C, H, W) on the 0..255 scale.
# PSNR and SSIM are evaluation numbers, not losses: they run on the CPU in float64 (SSIM's variances
# are differences of large squares, which float32 would blur), and tensors are detached.

def _as_batch(img: Image, name: str) -> tuple[np.ndarray, torch.device | None]:
    """(N, C, H, W) float64 on 0..255, and the tensor's device (None for numpy input: return a float)."""
    if isinstance(img, torch.Tensor):
        if not img.is_floating_point():
            raise TypeError(f"{name}: expected a float tensor in [0, 1], got dtype {img.dtype}")
        x = img.detach().to("cpu", torch.float64).numpy()
        if x.ndim == 3:
            x = x[None]
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise ValueError(f"{name}: expected a tensor (N, 3, H, W) or (N, 1, H, W), got {tuple(img.shape)}")
        return x * _PEAK, img.device
    if not isinstance(img, np.ndarray):
        raise TypeError(f"{name}: expected a numpy array or a torch tensor, got {type(img).__name__}")
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 3):
        raise ValueError(f"{name}: expected a numpy image H x W x 3 or H x W, got shape {img.shape}")
    if img.dtype == np.uint8:
        x = img.astype(np.float64)
    elif np.issubdtype(img.dtype, np.floating):
        x = img.astype(np.float64) * _PEAK
    else:
        raise TypeError(f"{name}: numpy images must be uint8 (0..255) or float ([0, 1]), got {img.dtype}")
    return x.transpose(2, 0, 1)[None], None


def _prepare_pair(sr: Image, hr: Image, crop_border: int, y_channel: bool, grey: Grey,
                  round_y: bool) -> tuple[np.ndarray, np.ndarray, torch.device | None]:
    """Both images as (N, C, H', W') float64 arrays, 0..255, Y (or RGB) and cropped."""
    if grey not in ("as_y", "as_rgb"):
        raise ValueError(f"grey must be 'as_y' or 'as_rgb', got {grey!r}")
    if isinstance(crop_border, bool) or not isinstance(crop_border, (int, np.integer)) or crop_border < 0:
        raise ValueError(f"crop_border must be a non-negative integer, got {crop_border!r}")
    x, device = _as_batch(sr, "sr")
    y, _ = _as_batch(hr, "hr")
    if x.shape[1] != y.shape[1]:
        if grey != "as_rgb":
            raise ValueError(
                f"sr has {x.shape[1]} channel(s) and hr {y.shape[1]}: with grey='as_y' a grey image can "
                "only be compared with a grey one; use grey='as_rgb' to treat grey as R = G = B")
        x, y = np.broadcast_to(x, x.shape[:1] + (3,) + x.shape[2:]), np.broadcast_to(y, y.shape[:1] + (3,) + y.shape[2:])
    if x.shape != y.shape:
        raise ValueError(f"sr and hr must have the same shape, got {tuple(sr.shape)} and {tuple(hr.shape)}")
    x, y = _luma(x, y_channel, grey, round_y), _luma(y, y_channel, grey, round_y)
    if crop_border:
        h, w = x.shape[-2:]
        if 2 * crop_border >= min(h, w):
            raise ValueError(f"crop_border={crop_border} leaves nothing of a {h}x{w} image")
        x = x[..., crop_border:-crop_border, crop_border:-crop_border]
        y = y[..., crop_border:-crop_border, crop_border:-crop_border]
    return x, y, device


def _luma(x: np.ndarray, y_channel: bool, grey: Grey, round_y: bool) -> np.ndarray:
    """Y of BT.601 YCbCr on the 16..235 scale (N, 1, H, W); or x itself when not y_channel."""
    if not y_channel:
        return x
    if x.shape[1] == 1:
        # as_y: the grey level is Y. as_rgb: R = G = B = v, and the Y weights sum to 219.
        out = x if grey == "as_y" else YCBCR_OFFSET[0] + YCBCR_MATRIX[0].sum() / _PEAK * x
    else:
        out = np.einsum("c,nchw->nhw", YCBCR_MATRIX[0] / _PEAK, x)[:, None] + YCBCR_OFFSET[0]
    # MATLAB's rgb2ycbcr on uint8 images returns uint8 Y; some evaluation scripts keep that rounding.
    return np.floor(out + 0.5) if round_y else out


def _result(values: np.ndarray, device: torch.device | None) -> float | torch.Tensor:
    return float(values[0]) if device is None else torch.from_numpy(values).to(device)


# ---------------------------------------------------------------------------------------------
# PSNR and SSIM

def psnr(sr: Image, hr: Image, crop_border: int = 4, y_channel: bool = True, *,
         grey: Grey = GREY_DEFAULT, round_y: bool = False) -> float | torch.Tensor:
    """Peak signal-to-noise ratio in dB, peak 255, as SR papers report it.

    Args:
        sr, hr: the super-resolved and the reference image, same shape: numpy uint8 H x W x 3 / H x W
            (float arrays in [0, 1]), or float tensors (N, 3|1, H, W) in [0, 1].
        crop_border: pixels removed from each side before measuring (the scale factor, 4, by custom).
        y_channel: measure the Y of BT.601 YCbCr (16..235, float); False: all channels on 0..255.
        grey: how a single-channel image enters the Y channel: "as_rgb" (R = G = B, the default,
            :data:`GREY_DEFAULT`) or "as_y" (module docstring).
        round_y: round Y to integers first, as MATLAB's uint8 ``rgb2ycbcr`` does.

    Returns:
        A float for numpy input; a float64 tensor (N,) on the input's device for tensors.
        ``inf`` for identical images.
    """
    x, y, device = _prepare_pair(sr, hr, crop_border, y_channel, grey, round_y)
    mse = np.square(x - y).mean(axis=(1, 2, 3))
    with np.errstate(divide="ignore"):
        return _result(10.0 * np.log10(_PEAK ** 2 / mse), device)


@functools.lru_cache(maxsize=8)
def _gaussian_1d(size: int, sigma: float) -> np.ndarray:
    # fspecial('gaussian', 11, 1.5) is the outer product of this normalised 1-D window.
    t = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-t * t / (2 * sigma * sigma))
    return g / g.sum()


def _filter_valid(x: np.ndarray, g: np.ndarray) -> np.ndarray:
    """MATLAB filter2(g' * g, x, 'valid') over the last two axes: two 1-D passes, border dropped."""
    r = len(g) // 2
    out = correlate1d(correlate1d(x, g, axis=-2), g, axis=-1)
    return out[..., r:-r, r:-r]


def _ssim_per_channel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Mean SSIM map per image and channel, (N, C), following ssim_index.m."""
    if min(x.shape[-2:]) < _SSIM_WINDOW:
        raise ValueError(f"ssim needs images of at least {_SSIM_WINDOW}x{_SSIM_WINDOW} after cropping, "
                         f"got {tuple(x.shape[-2:])}")
    g = _gaussian_1d(_SSIM_WINDOW, _SSIM_SIGMA)
    c1, c2 = (_SSIM_K1 * _PEAK) ** 2, (_SSIM_K2 * _PEAK) ** 2
    # All five local statistics in one filtering call.
    mu_x, mu_y, xx, yy, xy = _filter_valid(np.stack([x, y, x * x, y * y, x * y]), g)
    var_x, var_y, cov = xx - mu_x ** 2, yy - mu_y ** 2, xy - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x ** 2 + mu_y ** 2 + c1) * (var_x + var_y + c2))
    return ssim_map.mean(axis=(2, 3))


def ssim(sr: Image, hr: Image, crop_border: int = 4, y_channel: bool = True, *,
         grey: Grey = GREY_DEFAULT, round_y: bool = False) -> float | torch.Tensor:
    """Structural similarity as MATLAB's ``ssim_index`` (Wang et al. 2004), unitless, at most 1.

    11x11 Gaussian window with sigma 1.5, K1 = 0.01, K2 = 0.03, L = 255, the mean over the 'valid'
    region (no padding), no downsampling. With ``y_channel=False`` the channels are scored
    separately and averaged (as BasicSR does).

    Args: as :func:`psnr`.

    Returns:
        A float for numpy input; a float64 tensor (N,) on the input's device for tensors.
    """
    x, y, device = _prepare_pair(sr, hr, crop_border, y_channel, grey, round_y)
    return _result(_ssim_per_channel(x, y).mean(axis=1), device)


# ---------------------------------------------------------------------------------------------
# GMSD

def _as_unit_tensor(img: Image, name: str) -> tuple[torch.Tensor, bool]:
    """(N, C, H, W) float in [0, 1]: numpy uint8 / 255, numpy float as is, tensors as given."""
    if isinstance(img, torch.Tensor):
        return (img[None] if img.ndim == 3 else img), False
    x, _ = _as_batch(img, name)
    return torch.from_numpy(x / _PEAK), True


def gmsd(sr: Image, hr: Image, *, round_luminance: bool = False) -> float | torch.Tensor:
    """Gradient Magnitude Similarity Deviation (Xue et al. 2014) of ``sr`` against ``hr``; lower is better.

    Computed by :func:`gmgan.losses.gmsd` on the luminance 0.299 R + 0.587 G + 0.114 B (grey images
    as they are). ``round_luminance`` rounds it to 8-bit levels first, as pyiqa does.

    Args:
        sr, hr: numpy uint8 H x W x 3 / H x W (float arrays in [0, 1]), or float tensors
            (N, 3|1, H, W) in [0, 1], same shape.

    Returns:
        A float for numpy input (unitless, 0 for identical images); a tensor (N,) for tensors.
    """
    x, numpy_in = _as_unit_tensor(sr, "sr")
    y, _ = _as_unit_tensor(hr, "hr")
    with torch.no_grad():
        values = _gmsd(x, y, reduction="none", round_luminance=round_luminance)
    return float(values[0]) if numpy_in else values


# ---------------------------------------------------------------------------------------------
# NIQE and PI through pyiqa

class MissingModelFile(FileNotFoundError):
    """A model file that pyiqa would download is not available locally."""


def _pyiqa_url(arch_module: str) -> str:
    """The URL pyiqa downloads a model file from (for error messages)."""
    try:
        return importlib.import_module(f"pyiqa.archs.{arch_module}").default_model_urls["url"]
    except (ImportError, AttributeError, KeyError):  # pragma: no cover - only for the message
        return "(see pyiqa's default_model_urls)"


def _find_model_file(file_name: str, explicit: str | Path | None) -> Path | None:
    """An explicit path, else <data_dir>/iqa/<file_name>, else pyiqa's own download cache."""
    if explicit is not None:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise MissingModelFile(f"model file not found: {path}")
        return path
    candidates = [data_dir() / "iqa" / file_name]
    try:
        from pyiqa.utils.download_util import DEFAULT_CACHE_DIR
        candidates.append(Path(DEFAULT_CACHE_DIR) / file_name)
    except ImportError:  # pragma: no cover - pyiqa missing is reported when it is needed
        pass
    return next((p for p in candidates if p.is_file()), None)


def _download_model(file_name: str, arch_module: str) -> Path | None:
    """pyiqa's own download of a model file into its cache, where the network allows (else None)."""
    url = _pyiqa_url(arch_module)
    if not url.startswith("http") or not network_available(url):
        return None
    from pyiqa.utils.download_util import load_file_from_url

    return Path(load_file_from_url(url, file_name=file_name))


def pi_available() -> bool:
    """Whether :func:`pi` can be computed here: pyiqa is installed and both model files (NIQE's
    parameters and Ma et al.'s NRQM model) are on disk or downloadable now
    (:func:`gmgan.online.network_available`; ``GMGAN_OFFLINE=1`` answers without the network).
    Downloads nothing itself."""
    try:
        import pyiqa  # noqa: F401
    except ImportError:
        return False
    for file_name, arch in ((NIQE_MODEL_FILE, "niqe_arch"), (NRQM_MODEL_FILE, "nrqm_arch")):
        if _find_model_file(file_name, None) is None and not network_available(_pyiqa_url(arch)):
            return False
    return True


def _niqe_model(explicit: str | Path | None) -> Path:
    path = _find_model_file(NIQE_MODEL_FILE, explicit)
    if path is None and explicit is None:
        path = _download_model(NIQE_MODEL_FILE, "niqe_arch")
    if path is None:
        raise MissingModelFile(
            f"NIQE needs its model parameters, {NIQE_MODEL_FILE}, which was not found at "
            f"{data_dir() / 'iqa' / NIQE_MODEL_FILE} (GMGAN_DATA) nor in pyiqa's cache. pyiqa would "
            f"download it from {_pyiqa_url('niqe_arch')}. Copy it to <GMGAN_DATA>/iqa/{NIQE_MODEL_FILE} "
            "(the LIVE release's modelparameters.mat is the same file) or pass model_path=...")
    return path


def _nrqm_model(explicit: str | Path | None) -> Path:
    path = _find_model_file(NRQM_MODEL_FILE, explicit)
    if path is None and explicit is None:
        path = _download_model(NRQM_MODEL_FILE, "nrqm_arch")
    if path is None:
        raise MissingModelFile(
            f"PI needs Ma et al.'s NRQM model, {NRQM_MODEL_FILE}, which is not available offline and was "
            f"not found at {data_dir() / 'iqa' / NRQM_MODEL_FILE} (GMGAN_DATA) nor in pyiqa's cache. "
            f"pyiqa downloads it from {_pyiqa_url('nrqm_arch')} (the same model as model.mat of "
            f"chaoma99/sr-metric). Put it at <GMGAN_DATA>/iqa/{NRQM_MODEL_FILE} or pass nrqm_model_path=...")
    return path


@functools.lru_cache(maxsize=16)
def _pyiqa_metric(name: str, device: str, **options):
    """A cached pyiqa metric object (creating one parses .mat files and builds modules)."""
    try:
        import pyiqa
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError(f"gmgan.metrics.{name} needs pyiqa: pip install 'gmgan[eval]'") from err
    return pyiqa.create_metric(name, device=torch.device(device), **options)


def _no_reference_input(img: Image) -> tuple[torch.Tensor, bool]:
    x, numpy_in = _as_unit_tensor(img, "img")
    if not x.is_floating_point() or x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"img: expected a float tensor (N, 3|1, H, W) in [0, 1], got {tuple(x.shape)} {x.dtype}")
    return x.to(torch.float32) if x.dtype != torch.float64 else x, numpy_in


def niqe(img: Image, *, crop_border: int = 0, color_space: str = "ycbcr",
         model_path: str | Path | None = None) -> float | torch.Tensor:
    """NIQE (Mittal et al. 2013), pyiqa's implementation; lower is better, about 3..10 for photos.

    The image is reduced to the Y of BT.601 YCbCr (``color_space="ycbcr"``, as MATLAB's PIRM code and
    BasicSR; pyiqa's own default is "yiq"), rounded to integers, then scored. ``crop_border=0`` is what
    BasicSR used for its MATLAB-checked baboon value (5.7296); PIRM's PI crops 4 px (see :func:`pi`).
    The model parameters are read from ``model_path``, else ``<GMGAN_DATA>/iqa/niqe_modelparameters.mat``,
    else pyiqa's download cache, else pyiqa downloads them where the network allows.

    Args:
        img: numpy uint8 H x W x 3 / H x W, or a float tensor (N, 3|1, H, W) in [0, 1]. At least
            96x96 after cropping (NIQE scores 96x96 blocks).

    Returns:
        A float for numpy input; a tensor (N,) for tensors.

    Raises:
        MissingModelFile: the parameter file is not available locally.
    """
    x, numpy_in = _no_reference_input(img)
    metric = _pyiqa_metric("niqe", str(x.device), crop_border=crop_border, color_space=color_space,
                           pretrained_model_path=str(_niqe_model(model_path)))
    values = metric(x).reshape(-1).to(torch.float64)
    return float(values[0]) if numpy_in else values


def pi(img: Image, *, crop_border: int = 4, niqe_model_path: str | Path | None = None,
       nrqm_model_path: str | Path | None = None) -> float | torch.Tensor:
    """Perceptual Index of PIRM 2018: ((10 - Ma) + NIQE) / 2, lower is better.

    Ma et al.'s NRQM and NIQE both through pyiqa, on the Y of BT.601 YCbCr, with ``crop_border`` pixels
    (PIRM's default 4, the scale factor) removed from each side, as pyiqa's ``PI`` does. NRQM needs
    ``NRQM_model.mat``: it is read from ``nrqm_model_path``, else ``<GMGAN_DATA>/iqa/NRQM_model.mat``,
    else pyiqa's cache, else pyiqa downloads it where the network allows (offline it is missing;
    :func:`pi_available` says whether PI can be computed without trying).

    Args:
        img: numpy uint8 H x W x 3 / H x W, or a float tensor (N, 3|1, H, W) in [0, 1].

    Returns:
        A float for numpy input; a tensor (N,) for tensors.

    Raises:
        MissingModelFile: a model file (most likely NRQM_model.mat) is neither local nor downloadable.
    """
    nrqm_path = _nrqm_model(nrqm_model_path)  # checked first: it is the one usually missing
    x, numpy_in = _no_reference_input(img)
    device = str(x.device)
    nrqm = _pyiqa_metric("nrqm", device, crop_border=crop_border, color_space="ycbcr",
                         pretrained_model_path=str(nrqm_path))
    niqe_metric = _pyiqa_metric("niqe", device, crop_border=crop_border, color_space="ycbcr",
                                pretrained_model_path=str(_niqe_model(niqe_model_path)))
    values = 0.5 * ((10.0 - nrqm(x).reshape(-1)) + niqe_metric(x).reshape(-1))
    values = values.to(torch.float64)
    return float(values[0]) if numpy_in else values


# ---------------------------------------------------------------------------------------------
# Colour offsets
# ---------------------------------------------------------------------------------------------

def _rgb_pair(sr: np.ndarray, hr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 SR and HR of one size as float64 H x W x 3 (a grey image repeated)."""
    sr, hr = (np.repeat(x[:, :, None], 3, axis=2) if x.ndim == 2 else x for x in (sr, hr))
    if sr.shape != hr.shape or sr.shape[2] != 3:
        raise ValueError(f"expected two RGB (or grey) images of one size, got shapes {sr.shape} and {hr.shape}")
    return sr.astype(np.float64), hr.astype(np.float64)


def channel_offsets(sr: np.ndarray, hr: np.ndarray) -> np.ndarray:
    """The colour drift of an SR image: mean of SR - HR per channel, in grey levels (0..255).

    sr, hr: numpy uint8 H x W x 3 of one size (or H x W grey, as R = G = B). Returns float64
    ``[R, G, B]``; a negative value means SR is darker than HR in that channel."""
    sr_f, hr_f = _rgb_pair(sr, hr)
    return (sr_f - hr_f).reshape(-1, 3).mean(axis=0)


def match_channel_means(sr: np.ndarray, hr: np.ndarray) -> np.ndarray:
    """SR shifted per channel so that its mean equals HR's (rounded half up, clipped to 0..255):
    the image a "brightness-corrected" score is computed on. It removes a uniform colour drift and
    keeps everything else (edges, textures, noise), so that colour and texture effects on PSNR,
    SSIM or NIQE can be told apart. Same inputs as :func:`channel_offsets`; returns uint8 H x W x 3."""
    sr_f, hr_f = _rgb_pair(sr, hr)
    shifted = sr_f - (sr_f - hr_f).reshape(-1, 3).mean(axis=0)
    return np.clip(np.floor(shifted + 0.5), 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------------------
# Spectra: high-frequency energy
# --------------------------------------------------------------------------------------
# How the spectrum is taken (both functions below):
# * the luminance is the Y of BT.601 YCbCr (as psnr; grey images follow ``grey``), in
#   grey levels;
# * a separable 2-D Hann window (numpy.hanning, zero at the borders) multiplies the
#   image, because a finite image is not periodic: without a window its left/right and
#   top/bottom seams are edges that put energy on the frequency axes, the same in SR and
#   HR, which would pull every ratio towards 1. ``window="none"`` gives the plain
#   periodogram (exact for periodic images);
# * the window-weighted mean is removed first, so the DC bin of the windowed image is
#   exactly 0;
# * power per bin is |FFT|^2 / sum(window^2): a power spectral density whose mean over
#   all bins is the (windowed) variance, so white noise of variance s^2 gives s^2 in
#   every bin on average;
# * frequencies are radial, |f| = sqrt(fx^2 + fy^2) in cycles per pixel (Nyquist is
#   0.5), so the cutoff is a circle; the corners beyond 0.5 (diagonal frequencies up to
#   0.707) count as above it.

Window = Literal["hann", "none"]
#: Nyquist frequency in cycles per pixel.
NYQUIST = 0.5


def _luminance_planes(x: np.ndarray, grey: Grey) -> np.ndarray:
    """(N, C, H, W) float64 on 0..255 -> (N, H, W) Y of BT.601 YCbCr (16..235)."""
    return _luma(x, True, grey, False)[:, 0]


def _check_window(window: str) -> None:
    if window not in ("hann", "none"):
        raise ValueError(f"window must be 'hann' or 'none', got {window!r}")


def _power_spectra(y: np.ndarray, window: Window) -> np.ndarray:
    """(N, H, W) luminance -> (N, H, W) power per FFT bin (numpy.fft order); see the
    notes above."""
    h, w = y.shape[-2:]
    if window == "hann":
        win = np.outer(np.hanning(h), np.hanning(w))
    else:
        win = np.ones((h, w))
    mean = (y * win).sum(axis=(1, 2), keepdims=True) / win.sum()
    spectrum = np.fft.fft2((y - mean) * win)
    return np.abs(spectrum) ** 2 / np.square(win).sum()


def _radial_frequency(h: int, w: int) -> np.ndarray:
    """(H, W) |f| in cycles per pixel for numpy.fft's bin order."""
    fy, fx = np.fft.fftfreq(h), np.fft.fftfreq(w)
    return np.hypot(fy[:, None], fx[None, :])


def hf_energy_ratio(
    sr: Image,
    hr: Image,
    cutoff: float = 0.25,
    *,
    window: Window = "hann",
    crop_border: int = 0,
    grey: Grey = GREY_DEFAULT,
) -> float | torch.Tensor:
    """High-frequency energy of SR relative to HR: luminance power above ``cutoff`` x
    Nyquist.

    ratio = sum of P_sr(f) over |f| > cutoff * 0.5  /  the same sum of P_hr, where P is
    the power spectrum of the Y channel (BT.601, as :func:`psnr`), Hann-windowed with
    its weighted mean removed (``window="none"``: plain periodogram, mean removed), and
    |f| the radial frequency in cycles per pixel (a circle, not a square; see the notes
    above this function). 1 means SR has as much fine detail (or noise) as HR, 0 none;
    a blurred SR scores below 1, added noise above. With the default cutoff 0.25 the
    band starts at 0.125 cycles per pixel, the Nyquist frequency of the x4 LR image:
    what lies above it is what SR has to restore or invent.

    Args:
        sr, hr: numpy uint8 H x W x 3 / H x W (float arrays in [0, 1]), or float tensors
            (N, 3|1, H, W) in [0, 1], same shape.
        cutoff: the band's lower edge as a fraction of Nyquist, in (0, 1].
        window: "hann" (default) or "none".
        crop_border: pixels removed from each side first (0: the window already fades
            them out).
        grey: how a single-channel image becomes Y (as :func:`psnr`).

    Returns:
        A float for numpy input; a float64 tensor (N,) on the input's device for
        tensors.

    Raises:
        ValueError: hr has no energy above the cutoff (mean power below 1e-12 grey
            levels^2 per bin, e.g. a flat image), so the ratio is undefined.
    """
    if not 0.0 < cutoff <= 1.0:
        raise ValueError(f"cutoff is a fraction of Nyquist in (0, 1], got {cutoff!r}")
    _check_window(window)
    x, y, device = _prepare_pair(sr, hr, crop_border, False, grey, False)
    x, y = _luminance_planes(x, grey), _luminance_planes(y, grey)
    high = _radial_frequency(*x.shape[-2:]) > cutoff * NYQUIST
    energy_sr = _power_spectra(x, window)[:, high].sum(axis=1)
    energy_hr = _power_spectra(y, window)[:, high].sum(axis=1)
    # Rounding leaves ~1e-26 of "energy" in a flat image: anything below 1e-12 grey
    # levels^2 per bin on average is no signal.
    flat = np.flatnonzero(energy_hr <= 1e-12 * high.sum())
    if flat.size:
        raise ValueError(
            f"hf_energy_ratio: hr image {int(flat[0])} of the batch has no energy "
            f"above {cutoff} x Nyquist (a flat image?); the ratio is undefined"
        )
    return _result(energy_sr / energy_hr, device)


def radial_power_spectrum(
    img: Image,
    bins: int | None = None,
    *,
    window: Window = "hann",
    crop_border: int = 0,
    grey: Grey = GREY_DEFAULT,
) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged power spectrum of the luminance, for plots (the spectrum of
    :func:`hf_energy_ratio`).

    Args:
        img: numpy uint8 H x W x 3 / H x W (float arrays in [0, 1]), or a float tensor
            (N, 3|1, H, W) in [0, 1].
        bins: number of rings of equal width between 0 and Nyquist (0.5 cycles per
            pixel); default min(H, W) // 2, one FFT bin wide. The corners beyond
            Nyquist are left out.
        window, crop_border, grey: as :func:`hf_energy_ratio`.

    Returns:
        ``(frequency, power)``, numpy float64: the rings' centres in cycles per pixel,
        shape (B,), and the mean power of the bins in each ring (grey levels^2 of Y per
        unit frequency area; the mean over all FFT bins is the variance), shape (B,)
        for a numpy image or (N, B) for a tensor. A ring without an FFT bin (possible
        when ``bins`` is large) gives NaN.
    """
    _check_window(window)
    if not isinstance(crop_border, (int, np.integer)) or crop_border < 0:
        raise ValueError(
            f"crop_border must be a non-negative integer, got {crop_border!r}"
        )
    x, device = _as_batch(img, "img")
    y = _luminance_planes(x, grey)
    if crop_border:
        if 2 * crop_border >= min(y.shape[-2:]):
            raise ValueError(
                f"crop_border={crop_border} leaves nothing of a {y.shape[-2:]} image"
            )
        y = y[:, crop_border:-crop_border, crop_border:-crop_border]
    h, w = y.shape[-2:]
    bins = min(h, w) // 2 if bins is None else bins
    if not isinstance(bins, (int, np.integer)) or bins < 1:
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    edges = np.linspace(0.0, NYQUIST, bins + 1)
    radius = _radial_frequency(h, w)
    ring = np.digitize(radius, edges) - 1  # ring index; == bins beyond Nyquist
    ring[radius == NYQUIST] = bins - 1  # the edge itself belongs to the last ring
    power = _power_spectra(y, window).reshape(len(y), -1)
    ring = ring.ravel()
    inside = ring < bins
    counts = np.bincount(ring[inside], minlength=bins)
    sums = np.stack(
        [np.bincount(ring[inside], weights=p[inside], minlength=bins) for p in power]
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = sums / counts
    return 0.5 * (edges[:-1] + edges[1:]), (mean[0] if device is None else mean)
