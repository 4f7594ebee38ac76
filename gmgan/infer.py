"""Inference: run a generator on whole images (tiled, in bounded memory) and interpolate networks.

* :func:`upscale` - super-resolve one image of any common kind (numpy uint8 / uint16 / float, grey,
  RGB or RGBA; or a torch NCHW tensor), optionally tile by tile so that memory stays bounded for
  large images, optionally in half precision.
* :func:`receptive_field` - how far (in LR pixels) an output pixel "sees" into the input; a tile
  overlap at least this large makes tiled output equal to untiled output.
* :func:`interpolate` / :func:`interpolate_to_file` - ESRGAN's network interpolation between a
  PSNR-oriented model and a GAN model, which trades fidelity for perceptual quality at inference
  time, without retraining.

Memory. With tiles, numpy images are converted to float one window at a time and each tile's
output is converted back to the input's dtype and written straight into the result, so the peak
memory of :func:`upscale` is a fixed part (the model and the activations of one batch of windows,
independent of the image) plus the input and the output arrays; no float copy of the whole image
is made. ``gmgan sr`` adds the PNG encoder's copy of the output (PIL holds RGB as 4 bytes per
pixel). Measured peak resident memory of ``gmgan sr --tile 256 --device cpu`` with a 1-block,
16-feature x4 RRDBNet (its own process, VmHWM; 16-core x86 machine, PyTorch 2.11): 911 MB for a
1000 x 750 input (34 MB uint8 output), 1016 MB for 2000 x 1500 (137 MB), 1841 MB for 4000 x 3000
(549 MB output, 16000 x 12000). The growth, 930 MB from the smallest to the largest, is about
1.7 x the growth of the image buffers (input + output, 547 MB); tests/reliability/
test_memory_bound.py checks it stays within 3 x that plus 32 MB. Before this bounded path (the
whole output held as float32, then clipped and rounded as a whole) the growth was about 14 x.
A bigger model raises only the fixed part (its activations for one window).

Tiling. A convolutional generator computes each output pixel from a bounded window of input
pixels. If every tile is run with at least that much context around it (the ``overlap``) and only
the tile's centre is kept, the result is the untiled result up to float rounding. With the model's
zero padding this also holds at the image borders, because a tile that touches the border is
padded exactly like the full image there. ESRGAN's 23-block RRDBNet sees 349 LR pixels in every
direction (:func:`receptive_field`), far more than a practical overlap, so its tiled output differs
from the untiled one. How much depends on the weights. Measured with this module on CPU, float32,
a 128 x 128 LR input of uniform noise and tiles of 32 LR pixels:

* full-size RRDBNet x4 with its initial random weights (``torch.manual_seed(0)``; BasicSR's
  x0.1-scaled He init, raw outputs -0.87 .. 1.73): max |tiled - untiled| = 1.7e-6 with overlap 16
  and 1.2e-6 with overlap 32 (means 2.5e-7 and 7.6e-8), i.e. float rounding, far below one
  uint8 level (1/255 = 3.9e-3): at initialisation the trunk is close to the identity, so distant
  pixels hardly matter;
* a 2-block RRDBNet (receptive field 34) with plain He init, whose distant pixels do matter
  (tests/test_infer.py: 24 x 64 input, tiles of 16, outputs about 0 .. 0.8): 9.1e-3 with
  overlap 4, 1.7e-4 with overlap 8, 3.6e-7 (rounding) with overlap 16.

A trained model has its own numbers (not measured here: no trained full-size weights are
available offline); the differences concentrate along tile seams. ``tile=None`` avoids them
altogether, and a larger overlap shrinks them. The tests assert exactness for a model whose
receptive field fits in the overlap, and the measured bounds for the 2-block model.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gmgan.nets import RRDBNet, convert_state_dict, load_generator, save_generator
from gmgan.resize import imresize

__all__ = ["interpolate", "interpolate_to_file", "receptive_field", "tile_windows", "upscale"]

Image = np.ndarray | torch.Tensor
ModelLike = nn.Module | str | os.PathLike


# ---------------------------------------------------------------------------------------------
# Tiling geometry
# ---------------------------------------------------------------------------------------------

def _axis_windows(size: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """Split one axis of ``size`` LR pixels into tiles.

    Returns ``(w0, w1, t0, t1)`` per tile: the model runs on input ``[w0, w1)`` and the output of
    ``[t0, t1)`` (the tile proper) is kept. Windows are ``tile + 2 * overlap`` long; at the image
    borders the window is shifted inwards instead of shrunk, so every window has the same length
    (tiles can be batched) and a tile always has at least ``overlap`` pixels of context on each
    side that is not an image border. If the axis is shorter than a window, the window is the axis.
    """
    window = min(size, tile + 2 * overlap)
    out = []
    for t0 in range(0, size, tile):
        t1 = min(t0 + tile, size)
        w0 = min(max(t0 - overlap, 0), size - window)
        out.append((w0, w0 + window, t0, t1))
    return out


def tile_windows(height: int, width: int, tile: int,
                 overlap: int) -> list[tuple[slice, slice, slice, slice]]:
    """The tiles of an ``height x width`` LR image, as ``(win_y, win_x, keep_y, keep_x)`` slices.

    ``win_*`` index the LR input window the model runs on (at most ``tile + 2*overlap`` pixels per
    side, all windows the same size); ``keep_*`` index the LR pixels whose output is kept. The
    ``keep`` regions partition the image. All in LR pixels.
    """
    if height < 1 or width < 1:
        raise ValueError(f"tile_windows: image size must be positive, got {height}x{width}")
    _check_tiling(tile, overlap)
    return [(slice(wy0, wy1), slice(wx0, wx1), slice(ty0, ty1), slice(tx0, tx1))
            for wy0, wy1, ty0, ty1 in _axis_windows(height, tile, overlap)
            for wx0, wx1, tx0, tx1 in _axis_windows(width, tile, overlap)]


def _check_tiling(tile: int | None, overlap: int) -> None:
    if tile is not None and (isinstance(tile, bool) or not isinstance(tile, int) or tile < 1):
        raise ValueError(f"tile must be a positive number of LR pixels or None, got {tile!r}")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
        raise ValueError(f"overlap must be a non-negative number of LR pixels, got {overlap!r}")


# ---------------------------------------------------------------------------------------------
# Model handling
# ---------------------------------------------------------------------------------------------

def _as_model(model: ModelLike, device: str | torch.device | None) -> nn.Module:
    """A module, or one loaded from a checkpoint path with :func:`gmgan.nets.load_generator`."""
    if isinstance(model, (str, os.PathLike)):
        return load_generator(model, device=device or "cpu")
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected a generator (nn.Module) or a checkpoint path, "
                        f"got {type(model).__name__}")
    if device is not None:
        model.to(device)
    return model


def _model_device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def _model_scale(model: nn.Module) -> int:
    scale = getattr(model, "scale", None)
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ValueError(f"the model must have an integer attribute `scale` (the upscaling "
                         f"factor), "
                         f"got {scale!r} on {type(model).__name__}")
    return scale


def _autocast(device: torch.device, half: bool | str):
    """The autocast context for ``half``: fp16 on CUDA, bf16 on CPU; a no-op when ``half`` is False.

    Autocast keeps the weights in float32 and runs convolutions in the low precision, so the
    caller's model is never converted. ``half`` may also name the dtype: ``"fp16"`` or ``"bf16"``.
    """
    if half is False or half is None:
        return contextlib.nullcontext()
    names = {"fp16": torch.float16, "float16": torch.float16, "bf16": torch.bfloat16,
             "bfloat16": torch.bfloat16}
    if half is True:
        dtype = torch.float16 if device.type in ("cuda", "mps") else torch.bfloat16
    elif isinstance(half, str) and half.lower() in names:
        dtype = names[half.lower()]
    else:
        raise ValueError(f"half must be True, False, 'fp16' or 'bf16', got {half!r}")
    if device.type == "cpu" and dtype == torch.float16:
        raise ValueError("half='fp16' is not supported on CPU (slow or missing fp16 convolutions); "
                         "use half=True or half='bf16' for bfloat16 on CPU, or run on CUDA")
    return torch.autocast(device_type=device.type, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# The core: a float NCHW tensor through the model, tiled or not
# ---------------------------------------------------------------------------------------------

def _finite(y: torch.Tensor, half: bool | str) -> torch.Tensor:
    """``y`` (the model's float output) when every value is finite; else a ValueError,
    since clipping would turn NaN into black pixels and +-inf into white ones without a
    word."""
    if not bool(torch.isfinite(y).all()):
        hint = (" (half precision may overflow: try without --half / half=False)"
                if half else " (are the weights from a run that diverged?)")
        raise ValueError(f"upscale: the generator's output holds NaN or inf "
                         f"values{hint}")
    return y


def _forward_windows(model: nn.Module, n: int, h: int, w: int,
                     fetch: Callable[[int, slice, slice], torch.Tensor],
                     emit: Callable[[int, slice, slice, torch.Tensor], None], *, scale: int,
                     tile: int | None, overlap: int, half: bool | str, device: torch.device,
                     batch_tiles: int, progress: Callable[[int, int], None] | None) -> None:
    """Run the model window by window and hand each tile's output to ``emit``.

    ``fetch(i, win_y, win_x)`` returns image ``i``'s LR window as float32 (1, C, hh, ww);
    ``emit(i, keep_y, keep_x, y)`` receives the float32 (C', s*hh', s*ww') output of the kept LR
    region ``keep_y x keep_x`` (unclamped, on the model's device). With ``tile=None`` (or a tile
    that covers the image) the single window is the whole image. Only one batch of windows and
    its output exist at a time, so what this function itself allocates does not grow with the
    image: the caller decides where the tiles go (a float tensor, or an integer array).
    """
    if tile is None or (tile >= h and tile >= w):
        everything = slice(0, h), slice(0, w)
        windows = [everything + everything]
    else:
        windows = tile_windows(h, w, tile, overlap)
    done = 0
    # All windows have the same size (see _axis_windows), so up to `batch_tiles` of them can be
    # stacked into one forward pass: faster on GPUs, memory still bounded by the batch of tiles.
    for start in range(0, len(windows), batch_tiles):
        group = windows[start:start + batch_tiles]
        for i in range(n):  # one image of the batch at a time keeps the bound per image
            batch = torch.cat([fetch(i, wy, wx) for wy, wx, _, _ in group]).to(device)
            with _autocast(device, half):
                y = _finite(model(batch).float(), half)
            for j, (wy, wx, ky, kx) in enumerate(group):
                # Position of the kept LR region inside its window, times the scale.
                oy, ox = (ky.start - wy.start) * scale, (kx.start - wx.start) * scale
                hh, ww = (ky.stop - ky.start) * scale, (kx.stop - kx.start) * scale
                emit(i, ky, kx, y[j, :, oy:oy + hh, ox:ox + ww])
            del batch, y
        done += len(group)
        if progress:
            progress(done, len(windows))


def _run_tensor(model: nn.Module, x: torch.Tensor, *, scale: int, tile: int | None, overlap: int,
                half: bool | str, device: torch.device, batch_tiles: int,
                progress: Callable[[int, int], None] | None) -> torch.Tensor:
    """float32 (N, C, H, W) on any device -> float32 (N, C', s*H, s*W) on x's device, unclamped."""
    n, _, h, w = x.shape
    if tile is None or (tile >= h and tile >= w):
        with _autocast(device, half):
            y = _finite(model(x.to(device)).float(), half)
        if progress:
            progress(1, 1)
        return y.to(x.device)

    out: list[torch.Tensor] = []  # allocated once the model's output channels are known

    def emit(i: int, ky: slice, kx: slice, y: torch.Tensor) -> None:
        if not out:
            out.append(torch.empty((n, y.shape[0], h * scale, w * scale), dtype=torch.float32,
                                   device=x.device))
        out[0][i, :, ky.start * scale:ky.stop * scale, kx.start * scale:kx.stop * scale] = y

    _forward_windows(model, n, h, w, lambda i, wy, wx: x[i:i + 1, :, wy, wx], emit, scale=scale,
                     tile=tile, overlap=overlap, half=half, device=device,
                     batch_tiles=batch_tiles, progress=progress)
    return out[0]


# ---------------------------------------------------------------------------------------------
# Image kinds in and out
# ---------------------------------------------------------------------------------------------

def _numpy_to_float(img: np.ndarray) -> tuple[np.ndarray, Any]:
    """Pixels as float32 in [0, 1] plus how to convert back (the input's dtype)."""
    if img.dtype == np.uint8:
        return img.astype(np.float32) / 255.0, np.uint8
    if img.dtype == np.uint16:
        return img.astype(np.float32) / 65535.0, np.uint16
    if np.issubdtype(img.dtype, np.floating):
        return img.astype(np.float32), img.dtype
    raise TypeError(f"upscale: numpy images must be uint8, uint16 or float (in [0, 1]); "
                    f"got dtype {img.dtype}")


def _float_to_numpy(img: np.ndarray, dtype: Any, clip: bool = True) -> np.ndarray:
    """float [0, 1] -> the original dtype; integers are clipped and rounded half up."""
    if clip or dtype in (np.uint8, np.uint16):
        img = np.clip(img, 0.0, 1.0)
    if dtype == np.uint8:
        return np.floor(img * 255.0 + 0.5).astype(np.uint8)
    if dtype == np.uint16:
        return np.floor(img * 65535.0 + 0.5).astype(np.uint16)
    return img.astype(dtype)


def _resize_alpha(alpha: np.ndarray, scale: int) -> np.ndarray:
    """An HxW float [0, 1] alpha channel, MATLAB bicubic x scale, clipped to [0, 1]."""
    resized = np.asarray(imresize(alpha.astype(np.float64), scale), dtype=np.float32)
    return np.clip(resized, 0.0, 1.0)


def upscale(model: ModelLike, image: Image, *, tile: int | None = None, overlap: int = 16,
            half: bool | str = False, device: str | torch.device | None = None,
            batch_tiles: int = 1,
            progress: Callable[[int, int], None] | None = None, clamp: bool = True,
            seed: int | None = 0) -> Image:
    """Super-resolve an image with a generator, optionally tile by tile; same kind of image out.

    Args:
        model: a generator with an integer attribute ``scale`` (e.g. :class:`gmgan.nets.RRDBNet`)
            taking float (N, 3, H, W) RGB in [0, 1] to (N, 3, scale*H, scale*W); or a checkpoint
            path, loaded with :func:`gmgan.nets.load_generator`. Run in eval mode under
            ``torch.no_grad()``; its training flag is restored afterwards.
        image: one of
            * numpy ``uint8`` (0..255), ``uint16`` (0..65535) or float (taken to be in [0, 1]),
              shaped H x W (grey), H x W x 1 (grey), H x W x 3 (RGB) or H x W x 4 (RGBA);
            * a float torch tensor (N, C, H, W) in [0, 1] with C = 1, 3 or 4 (any device).
        tile: tile side in LR pixels, or None to run the whole image at once. With tiles the model
            only ever sees windows of at most ``(tile + 2*overlap)`` LR pixels per side, and only
            each tile's centre is written into a preallocated output, so memory is bounded by one
            window (times ``batch_tiles``) plus the input and output images: for numpy input the
            output is filled tile by tile in the input's dtype (a uint8 RGB output of s*H x s*W
            takes 3*s*H*s*W bytes), with no float copy of the whole image; a tensor output is
            float, 4 bytes per value. See the module docstring for measured figures. RGBA adds
            the alpha channel's bicubic resize, done on the whole image in float.
        overlap: LR pixels of context on each side of a tile. Tiled equals untiled (up to float
            rounding) when ``overlap >= receptive_field(model)``; see the module docstring for
            the measured differences when it is smaller (RRDBNet's is 349 LR pixels).
        half: run in reduced precision through autocast: True -> fp16 on CUDA/MPS, bf16 on CPU;
            or ``"fp16"`` / ``"bf16"``. fp16 on CPU is refused. Weights stay float32.
        device: where the model runs. None: the model's device. If given, the model is moved there
            (``model.to(device)``, in place). Input and output stay where they are.
        batch_tiles: tiles per forward pass (all windows have the same size, so they stack).
        progress: called as ``progress(done, total)`` after each batch of tiles.
        clamp: clip tensor and float outputs to [0, 1] (the model's raw output is unbounded);
            integer outputs are always clipped.
        seed: torch's random generator is seeded with it for this call and restored afterwards,
            so that a generator with noise inputs (:class:`gmgan.nets.RRDBNet` with
            ``noise_inject`` or ``noise_head``) gives the same output for the same input,
            whatever ran before (the scores of :func:`gmgan.evaluate.evaluate` depend on it).
            None draws from torch's global generator and advances it, as the model does when
            called directly. Models without noise are unaffected.

    Returns:
        numpy input: an array of the input's dtype, (s*H) x (s*W) [x C] with the input's channel
        layout; integers are rounded, floats clipped to [0, 1]. Tensor input: a float tensor
        (N, C, s*H, s*W) clamped to [0, 1], of the input's dtype, on the input's device.
        Grey input is replicated to 3 channels for the model and the output converted back to grey
        as the mean of the three output channels (for a grey input they differ only slightly).
        RGBA: the RGB part goes through the model; the alpha channel is upscaled separately with
        MATLAB-style bicubic (:func:`gmgan.resize.imresize`), clipped, and re-attached.

    Raises:
        ValueError / TypeError: for shapes, dtypes or arguments outside the above,
            naming the value; ValueError when the model's output holds NaN or inf
            (non-finite weights, or an fp16 overflow with ``half``).
    """
    _check_tiling(tile, overlap)
    if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
        raise TypeError(f"upscale: seed must be an int or None, got {seed!r}")
    if isinstance(batch_tiles, bool) or not isinstance(batch_tiles, int) or batch_tiles < 1:
        raise ValueError(f"batch_tiles must be a positive int, got {batch_tiles!r}")
    model = _as_model(model, device)
    scale = _model_scale(model)
    run_device = torch.device(device) if device is not None else _model_device(model)
    run = {"scale": scale, "tile": tile, "overlap": overlap, "half": half, "device": run_device,
           "batch_tiles": batch_tiles, "progress": progress}
    clip = bool(clamp)

    was_training = model.training
    model.eval()
    # fork_rng restores the caller's random state: seeding here must not change what the
    # caller's next random draw is.
    rng_devices = [run_device] if run_device.type == "cuda" else []
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=rng_devices,
                                                    enabled=seed is not None):
            if seed is not None:
                torch.manual_seed(seed)
            if isinstance(image, torch.Tensor):
                return _upscale_tensor(model, image, run, clip)
            if isinstance(image, np.ndarray):
                return _upscale_numpy(model, image, run, clip)
            raise TypeError(f"upscale: expected a numpy array or a torch tensor, "
                            f"got {type(image).__name__}")
    finally:
        model.train(was_training)


def _rgb_through_model(model: nn.Module, x: torch.Tensor, run: dict) -> torch.Tensor:
    """float32 (N, 1|3, H, W) -> float32 (N, 1|3, sH, sW) unclamped; grey goes through as RGB."""
    grey = x.shape[1] == 1
    if grey:
        x = x.expand(-1, 3, -1, -1)
    y = _run_tensor(model, x, **run)
    return y.mean(dim=1, keepdim=True) if grey else y


def _upscale_tensor(model: nn.Module, image: torch.Tensor, run: dict, clip: bool) -> torch.Tensor:
    if image.ndim != 4 or image.shape[1] not in (1, 3, 4):
        raise ValueError(f"upscale: tensors must be (N, C, H, W) with C = 1, 3 or 4, got shape "
                         f"{tuple(image.shape)}")
    if not image.is_floating_point():
        raise TypeError(f"upscale: tensors must be float in [0, 1], got dtype {image.dtype}")
    x = image.float()
    y = _rgb_through_model(model, x[:, :3] if x.shape[1] == 4 else x, run)
    if x.shape[1] == 4:
        alpha = [_resize_alpha(a.cpu().numpy(), run["scale"]) for a in x[:, 3]]
        y = torch.cat([y, torch.from_numpy(np.stack(alpha))[:, None].to(y.device)], dim=1)
    return (y.clamp_(0.0, 1.0) if clip else y).to(image.dtype)


def _upscale_numpy(model: nn.Module, image: np.ndarray, run: dict, clip: bool) -> np.ndarray:
    """numpy in, numpy out, in bounded memory: each LR window is converted to float on its own and
    each tile's output is converted back to the input's dtype and written straight into the
    result array, so no float copy of the whole input or output is ever made."""
    if image.ndim == 2:
        hwc = image[:, :, None]
    elif image.ndim == 3 and image.shape[2] in (1, 3, 4):
        hwc = image
    else:
        raise ValueError(f"upscale: numpy images must be H x W or H x W x C with C = 1, 3 or 4, "
                         f"got "
                         f"shape {image.shape}")
    if min(image.shape[:2]) < 1:
        raise ValueError(f"upscale: empty image of shape {image.shape}")
    _, dtype = _numpy_to_float(image[:1, :1])  # checks the dtype before any work
    h, w, channels = hwc.shape
    scale = run["scale"]
    grey = channels == 1

    def fetch(_: int, wy: slice, wx: slice) -> torch.Tensor:
        window, _ = _numpy_to_float(np.ascontiguousarray(hwc[wy, wx, :3].transpose(2, 0, 1)))
        x = torch.from_numpy(window)[None]
        return x.expand(-1, 3, -1, -1) if grey else x  # grey goes through the model as R = G = B

    out: list[np.ndarray] = []  # allocated once the model's output channels are known

    def emit(_: int, ky: slice, kx: slice, y: torch.Tensor) -> None:
        if grey:
            y = y.mean(dim=0, keepdim=True)
        piece = _float_to_numpy(y.cpu().numpy(), dtype, clip).transpose(1, 2, 0)
        if not out:
            extra = 1 if channels == 4 else 0
            out.append(np.empty((h * scale, w * scale, piece.shape[2] + extra), dtype=dtype))
        out[0][ky.start * scale:ky.stop * scale, kx.start * scale:kx.stop * scale,
               :piece.shape[2]] = piece

    _forward_windows(model, 1, h, w, fetch, emit, **run)
    result = out[0]
    if channels == 4:  # the alpha channel does not go through the model: bicubic, as a whole
        alpha, _ = _numpy_to_float(np.ascontiguousarray(hwc[:, :, 3]))
        result[:, :, -1] = _float_to_numpy(_resize_alpha(alpha, scale), dtype, clip)
    return result[:, :, 0] if image.ndim == 2 else result


# ---------------------------------------------------------------------------------------------
# Receptive field
# ---------------------------------------------------------------------------------------------

def _rrdb_radius(model: nn.Module) -> int:
    """Analytic receptive radius of :class:`gmgan.nets.RRDBNet`, LR pixels: ``15 * num_block + 4``.

    Counting 3x3 convs (radius 1 each): conv_first 1; each RRDB is three dense blocks whose longest
    path is five convs, so 15 per RRDB; conv_body 1. After the first nearest x2 upsampling,
    conv_up1 adds 1 pixel at 2x; after the second, conv_up2, conv_hr and conv_last add 3 at 4x.
    For an output pixel at 4x position 4p + j (j = 0..3) those 3 pixels reach 2x positions
    2p - 2 .. 2p + 1 (j = 0) to 2p .. 2p + 3 (j = 3); conv_up1 widens this to 2p - 3 .. 2p + 4,
    which is LR p - 2 .. p + 2. So the reach is 2 + 15 * num_block + 2 LR pixels. The x2 model gives
    the same (conv_up1, conv_hr, conv_last at 2x reach 2x positions 2p - 3 .. 2p + 4).
    """
    return 15 * int(model.num_block) + 4


def _empirical_radius(model: nn.Module, size: int | None, max_size: int) -> int:
    """Reach of an output pixel's gradient into the input, found with autograd on random input."""
    scale = _model_scale(model)
    device = _model_device(model)
    channels = int(getattr(model, "in_channels", 3))
    size = size or 33
    was_training = model.training
    model.eval()
    try:
        while True:
            c = size // 2
            x = torch.rand(1, channels, size, size, device=device, requires_grad=True)
            y = model(x)
            # All s x s output pixels that belong to LR pixel (c, c): the union of their reaches.
            y[:, :, c * scale:(c + 1) * scale, c * scale:(c + 1) * scale].sum().backward()
            reach = (x.grad.abs().sum(dim=(0, 1)) > 0).nonzero()
            radius = int((reach - c).abs().max()) if len(reach) else 0
            if radius < c:  # the reach did not hit the border: it is the true one
                return radius
            if size >= max_size:
                raise RuntimeError(f"receptive_field: the reach exceeds an input of {size} pixels; "
                                   f"pass a larger max_size")
            size = min(2 * size + 1, max_size)
    finally:
        model.train(was_training)


def receptive_field(model: nn.Module, *, method: str = "auto", size: int | None = None,
                    max_size: int = 257) -> int:
    """The receptive radius r of a generator in LR pixels.

    An output pixel that belongs to LR pixel (y, x) depends only on input pixels within
    ``[y - r, y + r] x [x - r, x + r]``; so :func:`upscale` with ``overlap >= r`` gives the untiled
    result exactly (up to float rounding).

    Args:
        model: a generator with an integer attribute ``scale``.
        method: ``"analytic"`` (RRDBNet only: ``15 * num_block + 4``, so 349 for ESRGAN's 23
            blocks), ``"empirical"`` (autograd: the non-zero support of the gradient of the s x s
            output pixels of the centre LR pixel with respect to a random input, growing the input
            until the support stays inside it), or ``"auto"`` (analytic for RRDBNet, else
            empirical).
        size: first input side for the empirical method (default 33).
        max_size: largest input side the empirical method tries.

    Returns:
        r in LR pixels (int).

    The empirical method uses the model's current weights; a layer whose weights are all zero
    hides what lies behind it. For the 23-block RRDBNet it would need a 700 x 700 input, so the
    analytic value is used there.
    """
    if method not in ("auto", "analytic", "empirical"):
        raise ValueError(f"receptive_field: method must be 'auto', 'analytic' or 'empirical', "
                         f"got {method!r}")
    if method == "analytic" or (method == "auto" and isinstance(model, RRDBNet)):
        if not isinstance(model, RRDBNet):
            raise TypeError(f"receptive_field(method='analytic') knows RRDBNet only, "
                            f"got {type(model).__name__}")
        return _rrdb_radius(model)
    return _empirical_radius(model, size, max_size)


# ---------------------------------------------------------------------------------------------
# Network interpolation
# ---------------------------------------------------------------------------------------------

def _state_dict_of(source: Any, label: str) -> dict[str, torch.Tensor]:
    """BasicSR-keyed CPU tensors from a checkpoint path, a state dict or a module."""
    if isinstance(source, nn.Module):
        sd = source.state_dict()
    elif isinstance(source, Mapping):
        sd = convert_state_dict(source)
    elif isinstance(source, (str, os.PathLike)):
        sd = load_generator(source).state_dict()
    else:
        raise TypeError(f"interpolate: model {label} must be a path, a state dict or a module, got "
                        f"{type(source).__name__}")
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise TypeError(f"interpolate: model {label} has entries that are not tensors: {bad[:5]}")
    return {k: v.detach().cpu() for k, v in sd.items()}


def interpolate(a: Any, b: Any, alpha: float) -> dict[str, torch.Tensor]:
    """ESRGAN's network interpolation: each parameter is ``(1 - alpha) theta_A + alpha theta_B``.

    A is the PSNR-oriented model (smooth, high PSNR), B the GAN model (sharp textures, sometimes
    artefacts); alpha moves continuously from one to the other. Because B was fine-tuned from A,
    the two sets of weights lie close enough for their average to be a working network.

    Args:
        a, b: checkpoint paths (anything :func:`gmgan.nets.load_generator` reads), state dicts
            (any key layout :func:`gmgan.nets.convert_state_dict` knows) or modules. They must have
            the same keys and shapes, except the noise strengths of noise inputs
            (``noise_strength_up1`` / ``_up2``): where one model has none, they count as zero.
        alpha: weight of B, a float in [0, 1]: 0 gives A, 1 gives B.

    Returns:
        a new state dict (BasicSR keys, CPU tensors of A's dtypes). Floating tensors are mixed in
        float64 and cast back, so alpha = 0 and alpha = 1 reproduce A and B exactly; non-float
        tensors must be equal in A and B and are copied.

    Raises:
        ValueError: alpha outside [0, 1], different keys (the first differences are listed),
            different shapes, or unequal non-float tensors.
    """
    number = isinstance(alpha, (int, float)) and not isinstance(alpha, bool)
    if not number or not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"interpolate: alpha must be a number in [0, 1] (0 = model A, "
                         f"1 = model B), "
                         f"got {alpha!r}")
    alpha = float(alpha)
    sd_a, sd_b = dict(_state_dict_of(a, "A")), dict(_state_dict_of(b, "B"))
    # A generator without noise inputs is the same network with noise strengths of zero (phase
    # 2 switches them on at zero), so a PSNR model interpolates with a GAN model that has them:
    # the mixed network adds alpha times the GAN's noise.
    for one, other in ((sd_a, sd_b), (sd_b, sd_a)):
        for key in set(other) - set(one):
            if key.startswith("noise_strength_"):
                one[key] = torch.zeros_like(other[key])
    only_a, only_b = sorted(set(sd_a) - set(sd_b)), sorted(set(sd_b) - set(sd_a))
    if only_a or only_b:
        raise ValueError(f"interpolate: the two models have different parameters "
                         f"(only in A: {only_a[:5]}{' ...' if len(only_a) > 5 else ''}; "
                         f"only in B: {only_b[:5]}{' ...' if len(only_b) > 5 else ''}); "
                         f"network interpolation needs the same architecture")
    out = {}
    for key, ta in sd_a.items():
        tb = sd_b[key]
        if ta.shape != tb.shape:
            raise ValueError(f"interpolate: parameter {key} has shape {tuple(ta.shape)} in A but "
                             f"{tuple(tb.shape)} in B; network interpolation needs the same "
                             f"architecture")
        if ta.is_floating_point():
            mixed = (1.0 - alpha) * ta.double() + alpha * tb.double()
            out[key] = mixed.to(ta.dtype)
        elif torch.equal(ta, tb):
            out[key] = ta.clone()
        else:
            raise ValueError(f"interpolate: non-float tensor {key} differs between A and B")
    return out


def interpolate_to_file(a: Any, b: Any, alpha: float, out: str | os.PathLike) -> Path:
    """:func:`interpolate` A and B and write the result with :func:`gmgan.nets.save_generator`.

    ``out`` must end in ``.safetensors``; the architecture is read off the tensors.
    Returns the path.
    """
    out = Path(out)
    if out.suffix.lower() != ".safetensors":
        raise ValueError(f"interpolate_to_file writes safetensors; give a path ending in "
                         f".safetensors, got {out}")
    model = load_generator(interpolate(a, b, alpha))
    out.parent.mkdir(parents=True, exist_ok=True)
    return save_generator(model, out)
