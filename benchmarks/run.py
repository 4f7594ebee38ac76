"""The CPU benchmark suite: gmgan against the libraries users would otherwise pick.

    python -m benchmarks.run                  # full suite, 2 threads: benchmarks/results/cpu.{json,md,png}
    python -m benchmarks.run --smoke --out D  # tiny sizes, checks the correctness columns (CI, ~1 min)
    python -m benchmarks.run --only gmsd imresize

Rows (each a ratio against a reference measured in the same process on the same inputs, with a
correctness check beside it; our function and the reference run interleaved):
  1. gmsd:       GMSD / quality loss, forward + backward, 16x3x128x128, against pyiqa and piq
  2. imresize:   x1/4 of a 2040x1356 image (DIV2K size), uint8 and float, against pyiqa's imresize
  3. rrdb:       RRDBNet-23 inference fp32, 128^2 and tiled 512^2, against spandrel's ESRGAN with
                 the same weights
  4. train-step: where a phase-2 iteration's time goes, teach and paper presets, against the real
                 trainer's measured step (table + bar chart)
  5. loader:     128^2 HR patches/s from full images and from sub-images, 0/2/4 workers, decoded-image
                 cache on and off, against full images with 0 workers and no cache
  6. cpu-train:  the real trainer's phase-1 and phase-2 updates of the teach preset in its default
                 mode (speed=fast) against eager fp32 (speed=reference), interleaved, at the
                 benchmark's threads and at 1 thread (the shipped models' recipe); each row checks
                 one update's losses and weights against eager fp32

The exit status is 1 when any correctness check fails. Goals (in the table) are reported, not enforced.
Image sets come from GMGAN_DATA; derived files (LR images, sub-images, trainer runs) go to
GMGAN_DERIVED. Without the image sets, synthetic photo-like images stand in (said in the row).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from benchmarks.common import Row, load_average, machine_info, measure, write_results

RESULTS = Path(__file__).resolve().parent / "results"


def _log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def _test_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A photo of the requested size, uint8 HxWx3: scikit-image's astronaut, mirrored to size,
    plus +-3 levels of noise (so no two tiles are identical)."""
    from skimage import data as skdata

    base = skdata.astronaut()
    reps = (-(-h // base.shape[0]), -(-w // base.shape[1]))
    rows = [np.concatenate([base if (i + j) % 2 == 0 else base[:, ::-1] for j in range(reps[1])], axis=1)
            for i in range(reps[0])]
    img = np.concatenate(rows, axis=0)[:h, :w]
    noise = np.random.default_rng(seed).integers(-3, 4, size=img.shape)
    return np.clip(img.astype(np.int16) + noise, 0, 255).astype(np.uint8)


def _leaf(x: torch.Tensor) -> Callable[[], torch.Tensor]:
    return lambda: x.clone().requires_grad_(True)


def _fwd_bwd(fn: Callable, y: torch.Tensor) -> Callable[[torch.Tensor], None]:
    def run(x: torch.Tensor) -> None:
        fn(x, y).sum().backward()
    return run


# --------------------------------------------------------------------------------------------- 1
def bench_gmsd(smoke: bool, **_) -> list[Row]:
    """GMSD forward + backward against pyiqa (public metric, as a loss) and piq."""
    import piq
    import pyiqa
    from pyiqa.archs.gmsd_arch import gmsd as pyiqa_gmsd

    from gmgan import losses

    n, size = (2, 32) if smoke else (16, 128)
    g = torch.Generator().manual_seed(0)
    hr = torch.rand(n, 3, size, size, generator=g)
    sr = (hr + 0.05 * torch.randn(n, 3, size, size, generator=g)).clamp(0, 1)
    pyiqa_loss = pyiqa.create_metric("gmsd", as_loss=True, device="cpu")
    quality = losses.QualityLoss()
    fns = {
        "ours_rounded": _fwd_bwd(lambda a, b: losses.gmsd(a, b, round_luminance=True), hr),
        "ours": _fwd_bwd(lambda a, b: losses.gmsd(a, b), hr),
        "quality": _fwd_bwd(quality, hr),
        "pyiqa": _fwd_bwd(pyiqa_loss, hr),
        "piq": _fwd_bwd(lambda a, b: piq.gmsd(a, b, reduction="mean"), hr),
    }
    t = measure(fns, setup={k: _leaf(sr) for k in fns}, repeat=3 if smoke else 31, warmup=3)

    with torch.no_grad():
        # pyiqa: rounded luminance, std with N-1: must equal ours with round_luminance=True.
        d_pyiqa = (losses.gmsd(sr, hr, reduction="none", round_luminance=True) - pyiqa_gmsd(sr, hr)).abs().max().item()
        d_metric = abs(losses.gmsd(sr, hr, round_luminance=True).item() - pyiqa_loss(sr, hr).item())
        # piq: std with N instead of N-1 (GMSD.m uses std2, i.e. N-1): rescale ours by sqrt((N-1)/N).
        m = math.ceil(size / 2) ** 2
        d_piq = (losses.gmsd(sr, hr, reduction="none") * math.sqrt((m - 1) / m)
                 - piq.gmsd(sr, hr, reduction="none")).abs().max().item()
        # The quality loss is GMSD of R, G and B as grey images, summed: pyiqa's grey GMSD per channel.
        ref_q = sum(pyiqa_gmsd(sr[:, c:c + 1], hr[:, c:c + 1], channels=1, test_y_channel=False)
                    for c in range(3)).mean()
        d_q = abs(quality(sr, hr).item() - ref_q.item())
    shape = f"{n}x3x{size}²"
    tol = 1e-6
    r_pyiqa = t["pyiqa"].median_ms / t["ours_rounded"].median_ms
    return [
        Row("gmsd", f"gmsd(round_luminance=True) fwd+bwd {shape}", t["ours_rounded"].median_ms,
            "pyiqa GMSD (create_metric, as_loss)", t["pyiqa"].median_ms,
            f"max|Δ| per image vs pyiqa = {d_pyiqa:.1e}, of the mean {d_metric:.1e} (tol {tol:g})",
            max(d_pyiqa, d_metric) <= tol, ">= 2x faster than pyiqa, equal values",
            None if smoke else r_pyiqa >= 2 and max(d_pyiqa, d_metric) <= tol),
        Row("gmsd", f"gmsd fwd+bwd {shape}", t["ours"].median_ms, "piq.gmsd", t["piq"].median_ms,
            f"max|Δ| vs piq (std N vs N-1 rescaled) = {d_piq:.1e} (tol {tol:g})", d_piq <= tol),
        Row("gmsd", f"QualityLoss (R, G, B) fwd+bwd {shape}", t["quality"].median_ms,
            "pyiqa GMSD (1 channel, Y)", t["pyiqa"].median_ms,
            f"|Δ| vs sum of pyiqa grey GMSD per channel = {d_q:.1e} (tol {tol:g})", d_q <= tol,
            "no slower than pyiqa's 1-channel GMSD",
            None if smoke else t["quality"].median_ms <= t["pyiqa"].median_ms),
    ]


# --------------------------------------------------------------------------------------------- 2
def _matlab_uint8_via_pyiqa(img: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """MATLAB's uint8 imresize built from pyiqa's 1-D resizes: height first, each pass rounded half
    up and clipped to uint8 (the semantics of the data README), computed by pyiqa's code."""
    from pyiqa.matlab_utils import imresize as pyiqa_imresize

    x = torch.from_numpy(img).permute(2, 0, 1)[None].double()
    x = torch.floor(pyiqa_imresize(x, sizes=(out_hw[0], img.shape[1])) + 0.5).clamp(0, 255)
    x = torch.floor(pyiqa_imresize(x, sizes=out_hw) + 0.5).clamp(0, 255)
    return x[0].permute(1, 2, 0).numpy().astype(np.uint8)


def _matlab_files_check() -> str | None:
    """'k/19 bit-exact' for imresize(modcrop(HR), 1/4) against the MATLAB-made Set5 + Set14 LR files."""
    from PIL import Image

    from gmgan.cache import data_dir
    from gmgan.resize import imresize, modcrop

    exact = total = 0
    for name in ("Set5", "Set14"):
        root = data_dir() / "benchmark" / name
        for hr_path in sorted((root / "HR").glob("*.png")):
            lr_path = root / "LR_bicubic" / "X4" / f"{hr_path.stem}x4.png"
            if not lr_path.is_file():
                continue
            with Image.open(hr_path) as a, Image.open(lr_path) as b:
                hr, lr = np.asarray(a), np.asarray(b)
            total += 1
            exact += int(np.array_equal(imresize(modcrop(hr, 4), 1 / 4), lr))
    return f"{exact}/{total}" if total else None


def bench_imresize(smoke: bool, **_) -> list[Row]:
    """imresize x1/4: numpy uint8, tensor uint8 and float32 tensor, against pyiqa's imresize."""
    from pyiqa.matlab_utils import imresize as pyiqa_imresize

    from gmgan.resize import imresize

    h, w = (96, 136) if smoke else (1356, 2040)
    img = _test_image(h, w)
    x8 = torch.from_numpy(img).permute(2, 0, 1)[None].contiguous()
    xf = x8.float() / 255.0
    t = measure({
        "numpy_uint8": lambda: imresize(img, 1 / 4),
        "tensor_uint8": lambda: imresize(x8, 1 / 4),
        "tensor_float": lambda: imresize(xf, 1 / 4),
        "pyiqa_uint8": lambda: pyiqa_imresize(x8, scale=1 / 4),
        "pyiqa_float": lambda: pyiqa_imresize(xf, scale=1 / 4),
    }, repeat=3 if smoke else 7, warmup=1)

    out_hw = (math.ceil(h / 4), math.ceil(w / 4))
    matlab = _matlab_uint8_via_pyiqa(img, out_hw)
    ours_np = imresize(img, 1 / 4)
    ours_t8 = imresize(x8, 1 / 4)[0].permute(1, 2, 0).numpy()
    differ_np, differ_t8 = int((ours_np != matlab).sum()), int((ours_t8 != matlab).sum())
    pyiqa_u8 = pyiqa_imresize(x8, scale=1 / 4)[0].permute(1, 2, 0).numpy()
    pyiqa_levels = int(np.abs(pyiqa_u8.astype(np.int16) - matlab).max())
    d_f = (imresize(xf, 1 / 4) - pyiqa_imresize(xf, scale=1 / 4)).abs().max().item()
    files = _matlab_files_check()
    files_ok = files is None or files.split("/")[0] == files.split("/")[1]
    files_txt = f"; MATLAB LR files (Set5+Set14) bit-exact: {files}" if files else ""
    tol_f = 1e-6

    def goal_met(key: str, ref: str, exact: bool) -> bool | None:
        return None if smoke else exact and t[ref].median_ms / t[key].median_ms >= 3

    size = f"{w}x{h}"
    return [
        Row("imresize", f"imresize x1/4 numpy uint8 {size}", t["numpy_uint8"].median_ms,
            "pyiqa imresize (uint8 tensor)", t["pyiqa_uint8"].median_ms,
            f"{differ_np} px differ from MATLAB semantics (per-axis pyiqa, uint8 per pass){files_txt}; "
            f"pyiqa's own uint8 result is off by up to {pyiqa_levels} levels",
            differ_np == 0 and files_ok, ">= 3x faster, bit-exact",
            goal_met("numpy_uint8", "pyiqa_uint8", differ_np == 0 and files_ok)),
        Row("imresize", f"imresize x1/4 tensor uint8 {size}", t["tensor_uint8"].median_ms,
            "pyiqa imresize (uint8 tensor)", t["pyiqa_uint8"].median_ms,
            f"{differ_t8} px differ from MATLAB semantics", differ_t8 == 0, ">= 3x faster, bit-exact",
            goal_met("tensor_uint8", "pyiqa_uint8", differ_t8 == 0)),
        Row("imresize", f"imresize x1/4 tensor float32 {size}", t["tensor_float"].median_ms,
            "pyiqa imresize (float32 tensor)", t["pyiqa_float"].median_ms,
            f"max|Δ| vs pyiqa = {d_f:.1e} (float32 rounding; tol {tol_f:g})", d_f <= tol_f,
            ">= 3x faster", goal_met("tensor_float", "pyiqa_float", d_f <= tol_f)),
    ]


# --------------------------------------------------------------------------------------------- 3
class _Scaled(torch.nn.Module):
    """Gives spandrel's bare module the integer ``scale`` attribute that gmgan.upscale reads."""

    def __init__(self, module: torch.nn.Module, scale: int) -> None:
        super().__init__()
        self.module, self.scale = module, scale

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.module(x)


def bench_rrdb(smoke: bool, rrdb_blocks: int = 23, tiled_size: int = 512, **_) -> list[Row]:
    """RRDBNet inference against spandrel's ESRGAN module loaded from the same state dict."""
    from spandrel import ModelLoader

    from gmgan.infer import upscale
    from gmgan.nets import RRDBNet

    blocks = 2 if smoke else rrdb_blocks
    torch.manual_seed(0)
    ours = RRDBNet(num_block=blocks).eval()
    descriptor = ModelLoader().load_from_state_dict(ours.state_dict())
    # The descriptor's __call__ clamps to [0, 1]; the bare module is the network itself.
    ref = _Scaled(descriptor.model.eval(), descriptor.scale)
    label = f"RRDBNet-{blocks} ({sum(p.numel() for p in ours.parameters()) / 1e6:.1f} M params) fp32"
    rows = []

    size = 16 if smoke else 128
    x = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        # Five interleaved rounds: with two, one disturbed sample decided the median (a 0.71x
        # ratio once, where six rounds of the same pair gave 3.71 s against 3.74 s).
        t = measure({"ours": lambda: ours(x), "spandrel": lambda: ref(x)},
                    repeat=5 if not smoke else 1, warmup=1)
        d = (ours(x) - ref(x)).abs().max().item()
    rows.append(Row("rrdb", f"{label} {size}²→{4 * size}²", t["ours"].median_ms,
                    f"spandrel {descriptor.architecture.name}", t["spandrel"].median_ms,
                    f"max|Δ| = {d:.1e} (tol 1e-5)", d <= 1e-5, "equal outputs (1e-5); time ratio"))

    big, tile, overlap = (32, 16, 4) if smoke else (tiled_size, 128, 16)
    xb = torch.rand(1, 3, big, big, generator=torch.Generator().manual_seed(2))
    both = _Alternating(ours, ref)
    _log(f"rrdb: tiled {big}² (tile {tile}, overlap {overlap}), ours and spandrel window by window")
    t0 = time.perf_counter()
    upscale(both, xb, tile=tile, overlap=overlap)
    wall_ms = (time.perf_counter() - t0) * 1e3
    shared_ms = wall_ms - sum(both.ms)  # the tiling loop itself: cutting windows, pasting centres
    rows.append(Row("rrdb", f"{label} tiled {big}²→{4 * big}² (tile {tile}, overlap {overlap}, "
                    f"{both.calls} windows)", both.ms[0] + shared_ms,
                    f"spandrel {descriptor.architecture.name}, same tiling", both.ms[1] + shared_ms,
                    f"max|Δ| over all windows = {both.max_diff:.1e} (tol 1e-5); tiling loop itself "
                    f"{shared_ms:.0f} ms", both.max_diff <= 1e-5, "equal outputs (1e-5); time ratio"))
    return rows


class _Alternating(torch.nn.Module):
    """Runs two equal networks on every window gmgan.upscale gives it, taking turns at going first,
    and returns the first one's output. Each network's time is summed separately and the largest
    output difference kept: the tiled comparison is interleaved window by window, so a change in
    the machine's load hits both alike."""

    def __init__(self, a: torch.nn.Module, b: torch.nn.Module) -> None:
        super().__init__()
        self.a, self.b, self.scale = a, b, a.scale
        self.ms, self.calls, self.max_diff = [0.0, 0.0], 0, 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: list[torch.Tensor | None] = [None, None]
        for i in ((0, 1) if self.calls % 2 == 0 else (1, 0)):
            t0 = time.perf_counter()
            out[i] = (self.a, self.b)[i](x)
            self.ms[i] += (time.perf_counter() - t0) * 1e3
        self.calls += 1
        self.max_diff = max(self.max_diff, (out[0] - out[1]).abs().max().item())
        return out[0]


# --------------------------------------------------------------------------------------------- 4
def _image_source(name: str, smoke: bool) -> tuple[Path, str]:
    """A folder of HR training images: the named set from GMGAN_DATA, else synthetic images."""
    from benchmarks.loader import synthetic_image_folder
    from gmgan.cache import derived_dir
    from gmgan.data.download import dataset_dir

    if not smoke:
        try:
            return Path(dataset_dir(name)), name
        except Exception as err:  # noqa: BLE001 - not in the data cache, no internet: say so, carry on
            _log(f"{name} unavailable ({type(err).__name__}: {err}); using synthetic images")
    return synthetic_image_folder(derived_dir("bench", "synthetic")), "synthetic"


def _data_batch_ms(cfg, smoke: bool) -> tuple[float, str]:
    """Median ms for one batch of the preset's patches from the real loader, 0 workers."""
    from benchmarks.loader import _dataset
    from gmgan.data import build_loader, prepare_training_set
    from gmgan.data.pairs import infinite_batches

    src, label = _image_source(cfg.train_set, smoke)
    prepared = prepare_training_set(src, scale=cfg.scale, progress=False)
    ds = _dataset(prepared.hr_dir, prepared.lr_dir, patch=cfg.patch_size, scale=cfg.scale,
                  length=cfg.batch_size * 64, cache=True)
    it = infinite_batches(build_loader(ds, batch_size=cfg.batch_size, num_workers=0, seed=0, pin_memory=False))
    t = measure({"data": lambda: next(it)}, repeat=3 if smoke else 10, warmup=1)
    return t["data"].median_ms, label


def bench_train_step(smoke: bool, **_) -> tuple[list[Row], dict]:
    """Where a phase-2 iteration's time goes, per preset, against the real trainer's step."""
    from benchmarks.trainstep import GanStep, bench_config, trainer_step_seconds
    from gmgan.cache import derived_dir

    rows: list[Row] = []
    detail: dict = {}
    for preset in ("teach", "paper"):
        shrink = {"batch_size": 2, "patch_size": 32, "num_block": 1} if smoke else {}
        probe = bench_config(preset, **shrink)
        src, src_label = _image_source(probe.train_set, smoke)
        cfg = bench_config(preset, device="cpu", num_workers=0, train_set=str(src), **shrink)
        _log(f"train-step {preset}: batch {cfg.batch_size}, patch {cfg.patch_size}, RRDB-{cfg.num_block}, "
             f"VGG {cfg.perceptual_layer}")
        step = GanStep(cfg)
        terms = step.step()  # warm-up, and Adam's state exists from here on
        fns, setup = step.parts()
        parts = {k: v.median_ms for k, v in measure(fns, setup=setup, repeat=3 if smoke else
                                                      (5 if preset == "teach" else 2), warmup=1).items()}
        parts["data: one batch, 0 workers"], _ = _data_batch_ms(cfg, smoke)
        decomposition = step.check_decomposition()
        finite = all(math.isfinite(v) for v in terms.values())
        del step
        _log(f"train-step {preset}: the real trainer")
        iters = 2 if smoke else (4 if preset == "teach" else 3)
        real = trainer_step_seconds(cfg, iters, workdir=derived_dir("bench", "trainer-runs"))
        real_ms = float(np.median(real)) * 1e3
        total = sum(parts.values())
        detail[preset] = {"batch": cfg.batch_size, "patch": cfg.patch_size, "num_block": cfg.num_block,
                          "num_feat": cfg.num_feat, "perceptual_layer": cfg.perceptual_layer,
                          "train_set": src_label, "parts_ms": parts, "sum_of_parts_ms": total,
                          "trainer_step_ms": [s * 1e3 for s in real], "decomposition_rel_err": decomposition}
        tol = 1e-4
        rows.append(Row("train-step", f"{preset}: sum of the parts (batch {cfg.batch_size}, "
                        f"{cfg.patch_size}² patches, RRDB-{cfg.num_block})", total,
                        "real trainer step (gmgan.train, median)", real_ms,
                        f"parts = the trainer's update: G grad rel. err {decomposition:.1e} (tol {tol:g}); "
                        f"losses finite: {finite}", decomposition <= tol and finite))
        for name, ms in sorted(parts.items(), key=lambda kv: -kv[1]):
            rows.append(Row("train-step", f"{preset}: {name}", ms, "—", None,
                            f"{100 * ms / total:.1f}% of the parts", True))
    return rows, detail


def plot_breakdown(detail: dict, path: Path) -> Path:
    """One horizontal stacked bar per preset: each part's share of a phase-2 iteration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    presets = list(detail)
    names = list(dict.fromkeys(n for p in presets for n in detail[p]["parts_ms"]))
    colours = plt.get_cmap("tab10").colors
    fig, ax = plt.subplots(figsize=(10, 1.2 + 0.8 * len(presets)))
    for y, preset in enumerate(presets):
        parts = detail[preset]["parts_ms"]
        total = sum(parts.values())
        left = 0.0
        for i, name in enumerate(names):
            share = 100 * parts.get(name, 0.0) / total
            ax.barh(y, share, left=left, color=colours[i % len(colours)], label=name if y == 0 else None)
            if share >= 5:
                ax.text(left + share / 2, y, f"{share:.0f}%", ha="center", va="center", fontsize=8)
            left += share
    ax.set_yticks(range(len(presets)))
    ax.set_yticklabels([f"{p}\nbatch {detail[p]['batch']}, {detail[p]['patch']}², RRDB-{detail[p]['num_block']}\n"
                        f"{detail[p]['sum_of_parts_ms'] / 1e3:.2f} s / iteration" for p in presets], fontsize=8)
    ax.invert_yaxis()
    ax.set_xlim(0, 100)
    ax.set_xlabel("% of one phase-2 iteration on the CPU (sum of the separately timed parts)")
    fig.legend(loc="lower center", bbox_to_anchor=(0.5, -0.02), ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.22, 1, 1))
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------------------------- 6
#: Goals of issue 20: the default (fast) update against eager fp32 on the teaching preset.
CPU_TRAIN_GOALS = {"pretrain": 1.3, "gan": 1.5}


def bench_cpu_train(smoke: bool, threads: int = 2, **_) -> tuple[list[Row], dict]:
    """The real trainer's phase-1 and phase-2 updates of the teaching preset in its default mode
    (``speed="fast"``) against eager fp32 (``speed="reference"``), interleaved in this process:
    at the benchmark's thread count, and at 1 thread, the recipe of the shipped teaching models
    (``gmgan.experiments.ensure_run`` trains them on one thread)."""
    from benchmarks.cputrain import two_modes
    from benchmarks.trainstep import _quiet
    from gmgan.cache import derived_dir
    from gmgan.config import get_preset
    from gmgan.threads import torch_threads

    shrink = {"batch_size": 2, "patch_size": 32, "num_block": 1, "num_feat": 8, "num_grow": 8,
              "d_num_feat": 8} if smoke else {}
    probe = get_preset("teach")
    src, src_label = _image_source(probe.train_set, smoke)
    cfg = get_preset("teach", device="cpu", num_workers=0, train_set=str(src), **shrink)
    shipped = ("teach, 1 thread (the shipped models' recipe)", 1)
    recipes = [shipped] if threads == 1 else [(f"teach, {threads} threads", threads), shipped]
    rows: list[Row] = []
    detail: dict = {"config": {k: getattr(cfg, k) for k in ("batch_size", "patch_size", "num_feat",
                                                           "num_block", "num_grow", "d_num_feat",
                                                           "perceptual_layer", "perceptual_weights")},
                    "train_set": src_label, "results": {}}
    for label, n in recipes:
        for phase in ("pretrain", "gan"):
            repeat = 2 if smoke else (25 if phase == "pretrain" else 15)
            with torch_threads(n), _quiet(), two_modes(cfg, phase, derived_dir("bench", "cpu-train")) as modes:
                check = modes.check()
                ms = modes.time(repeat=repeat, warmup=2)
                plan = modes.plan.describe()
            name = "phase-1" if phase == "pretrain" else "phase-2"
            goal = CPU_TRAIN_GOALS[phase]
            ratio = ms["reference"] / ms["fast"]
            _log(f"cpu-train {label} {name}: fast {ms['fast']:.1f} ms, eager fp32 {ms['reference']:.1f} ms "
                 f"({ratio:.2f}x); {check.text()}")
            detail["results"][f"{label}: {name}"] = {"threads": n, "plan": plan, "ms": ms, "repeat": repeat,
                                                    **dataclasses.asdict(check)}
            rows.append(Row("cpu-train", f"{label}: {name} update (batch {cfg.batch_size}, "
                            f"{cfg.patch_size}² patches, RRDB-{cfg.num_block}; {plan})", ms["fast"],
                            "eager fp32 (speed=reference), same process", ms["reference"], check.text(),
                            check.ok, f">= {goal:g}x faster than eager fp32",
                            None if smoke else ratio >= goal))
    return rows, detail


# --------------------------------------------------------------------------------------------- 5
def bench_loader(smoke: bool, loader_set: str = "Urban100", **_) -> tuple[list[Row], dict]:
    """Patches/s of the training loader: full images vs sub-images, workers, cache on/off."""
    from benchmarks.loader import alignment_error, loader_rate
    from gmgan.data import extract_subimages, make_lr

    name = loader_set
    if not smoke and "/" not in name and name in ("Set5", "Set14", "BSD100", "Urban100"):
        from gmgan.cache import data_dir

        src, label = data_dir() / "benchmark" / name / "HR", f"{name} HR"
        if not src.is_dir():
            src, label = _image_source(name, smoke)
    else:
        src, label = _image_source(name, smoke)
    patch, crop, step, batches = (32, 96, 48, 2) if smoke else (128, 480, 240, 20)
    workers = (0, 2) if smoke else (0, 2, 4)
    caches = (False,) if smoke else (False, True)
    _log(f"loader: preparing {label} (full images and {crop}px sub-images, step {step})")
    sources = {
        f"full images ({label})": make_lr(src, progress=False),
        f"sub-images {crop}px step {step}": make_lr(extract_subimages(src, crop_size=crop, step=step,
                                                                       progress=False), progress=False),
    }
    rows: list[Row] = []
    rates: dict = {}
    baseline_ms = None
    for source, ps in sources.items():
        align = alignment_error(ps.hr_dir, ps.lr_dir, patch=patch)
        first_batch = None
        for cache in caches:
            for w in workers:
                res = loader_rate(ps.hr_dir, ps.lr_dir, workers=w, cache=cache, patch=patch, batches=batches)
                if first_batch is None:
                    first_batch = res.first_batch
                same = all(torch.equal(a, b) for a, b in zip(first_batch, res.first_batch))
                ms = 16e3 / res.patches_per_s
                baseline_ms = baseline_ms or ms
                key = f"{source}, cache {'on' if cache else 'off'}, {w} workers"
                rates[key] = {"patches_per_s": res.patches_per_s, "images": res.images}
                rows.append(Row("loader", f"{key}: ms per batch of 16", ms,
                                "full images, cache off, 0 workers", baseline_ms,
                                f"{res.patches_per_s:.0f} patches/s ({res.images} images); LR = bicubic(HR) "
                                f"patch: max Δ {align} levels; batch same as 0 workers: {same}",
                                align == 0 and same))
                _log(f"loader: {key}: {res.patches_per_s:.0f} patches/s")
    return rows, rates


SUITES = {
    "gmsd": bench_gmsd,
    "imresize": bench_imresize,
    "rrdb": bench_rrdb,
    "train-step": bench_train_step,
    "loader": bench_loader,
    "cpu-train": bench_cpu_train,
}


def _breakdown_table(detail: dict) -> str:
    presets = list(detail)
    names = list(dict.fromkeys(n for p in presets for n in detail[p]["parts_ms"]))
    lines = ["## Phase-2 iteration on the CPU, part by part", "",
             "| part | " + " | ".join(f"{p} (ms)" for p in presets) + " | "
             + " | ".join(f"{p} (%)" for p in presets) + " |",
             "|---|" + "---:|" * (2 * len(presets))]
    for n in names:
        ms = [detail[p]["parts_ms"].get(n) for p in presets]
        pct = [100 * m / detail[p]["sum_of_parts_ms"] if m is not None else None for m, p in zip(ms, presets)]
        lines.append(f"| {n} | " + " | ".join("—" if m is None else f"{m:.1f}" for m in ms) + " | "
                     + " | ".join("—" if q is None else f"{q:.1f}" for q in pct) + " |")
    lines.append("| **sum of the parts** | " + " | ".join(f"{detail[p]['sum_of_parts_ms']:.1f}" for p in presets)
                 + " | " + " | ".join("100" for _ in presets) + " |")
    lines.append("| real trainer step (median) | " + " | ".join(
        f"{np.median(detail[p]['trainer_step_ms']):.1f}" for p in presets) + " | " + " | ".join("" for _ in presets) + " |")
    lines += ["", "Configs: " + "; ".join(
        f"{p}: batch {d['batch']}, {d['patch']}² HR patches, RRDB-{d['num_block']} ({d['num_feat']} features), "
        f"VGG19 up to {d['perceptual_layer']}, data from {d['train_set']}" for p, d in detail.items())]
    return "\n".join(lines)


def _loader_table(rates: dict) -> str:
    lines = ["## Loader throughput (HR patches per second)", "", "| source, cache, workers | patches/s |",
             "|---|---:|"]
    lines += [f"| {k} | {v['patches_per_s']:.0f} |" for k, v in rates.items()]
    return "\n".join(lines)


def run(smoke: bool = False, only: list[str] | None = None, threads: int = 2, out_dir: Path = RESULTS,
        command: str = "python -m benchmarks.run", **options) -> list[Row]:
    """Run the suites and write ``cpu.json`` / ``cpu.md`` / ``cpu-train-step.png`` into ``out_dir``
    (``cpu-smoke.*`` in smoke mode). torch's thread count is ``threads`` meanwhile, then restored."""
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*random VGG19 weights.*")
            return _run(smoke, only, out_dir, command, {**options, "threads": threads})
    finally:
        torch.set_num_threads(old_threads)


def _earlier_results(json_path: Path, rerun: set[str]) -> tuple[list[Row], dict, str | None]:
    """The rows and details of the suites NOT in ``rerun`` from an earlier ``json_path``, and
    a line saying when and under which load they were measured (``--only`` keeps them)."""
    import json

    if not json_path.is_file():
        return [], {}, None
    old = json.loads(json_path.read_text())
    fields = {f.name for f in dataclasses.fields(Row)}
    rows = [Row(**{k: v for k, v in r.items() if k in fields}) for r in old.get("rows", [])
            if r["suite"] not in rerun]
    kept = list(dict.fromkeys(r.suite for r in rows))
    details = {name: old[name] for name in kept if name in old}
    details["seconds"] = {k: v for k, v in old.get("seconds", {}).items() if k in kept}
    m = old.get("machine", {})
    load = m.get("load_average")
    line = (f"Suites {', '.join(kept)}: kept from the run of {m.get('date_utc')} UTC"
            + (f" (commit {m['git_commit']}" if m.get("git_commit") else " (")
            + (f", load average {load[0]:.2f} at its start)" if load else ")")
            + f"; `{old.get('command', 'python -m benchmarks.run')}`." if kept else None)
    return rows, details, line


def _run(smoke: bool, only: list[str] | None, out_dir: Path, command: str, options: dict) -> list[Row]:
    machine = machine_info()
    stem = "cpu-smoke" if smoke else "cpu"
    rows: list[Row] = []
    extra: dict = {"command": command, "smoke": smoke,
                   "options": options, "seconds": {}}
    # --only re-measures some suites: the other suites' rows stay in the files, said as such.
    kept_rows, kept, kept_line = _earlier_results(out_dir / f"{stem}.json", set(only)) if only else ([], {}, None)
    extra["seconds"].update(kept.pop("seconds", {}))
    details: dict = dict(kept)
    for name, fn in SUITES.items():
        if only and name not in only:
            rows.extend(r for r in kept_rows if r.suite == name)
            continue
        _log(f"{name} ...")
        t0 = time.perf_counter()
        out = fn(smoke, **options)
        extra["seconds"][name] = round(time.perf_counter() - t0, 1)
        if isinstance(out, tuple):
            out, details[name] = out
            if name == "train-step":
                out_dir.mkdir(parents=True, exist_ok=True)
                plot_breakdown(details[name], out_dir / f"{stem}-train-step.png")
        rows.extend(out)
    notes: list[str] = [kept_line] if kept_line else []
    for name, detail in details.items():
        extra[name] = detail
        if name == "train-step":
            notes.append(_breakdown_table(detail) + f"\n\n![train-step breakdown]({stem}-train-step.png)")
        if name == "loader":
            notes.append(_loader_table(detail))
        if name == "cpu-train":
            notes.append(_cpu_train_table(detail))
    machine["load_average_end"] = load_average()
    json_path, md_path = write_results(rows, out_dir, stem, machine, extra=extra, notes=notes,
                                       title="gmgan CPU benchmarks" + (" (smoke: tiny sizes, checks only)" if smoke else ""))
    print(md_path.read_text())
    _log(f"wrote {json_path} and {md_path}")
    return rows


def _cpu_train_table(detail: dict) -> str:
    c = detail["config"]
    intro = (f"The real trainer's update rule (`gmgan.train.pretrain_session` / "
             f"`gan_session`) of the teach preset (batch {c['batch_size']}, "
             f"{c['patch_size']}² HR patches, RRDB-{c['num_block']} with {c['num_feat']} "
             f"features, critic {c['d_num_feat']}, l_P on {c['perceptual_layer']} of a "
             f"{c['perceptual_weights']} VGG19; data: {detail['train_set']}), set up twice "
             f"in one process and timed interleaved; medians.")
    lines = ["## Training updates on the CPU: default mode against eager fp32", "", intro, "",
             "| recipe: phase | default (ms) | eager fp32 (ms) | ratio | updates timed | mode |",
             "|---|---:|---:|---:|---:|---|"]
    for key, r in detail["results"].items():
        ms = r["ms"]
        lines.append(f"| {key} | {ms['fast']:.1f} | {ms['reference']:.1f} | "
                     f"{ms['reference'] / ms['fast']:.2f}x | {r['repeat']} | {r['plan']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes; checks correctness only (CI)")
    ap.add_argument("--only", nargs="+", choices=sorted(SUITES), help="run only these suites")
    ap.add_argument("--threads", type=int, default=None,
                    help="torch CPU threads, fixed for repeatable ratios (default 2; 1 with --smoke, where "
                         "only the checks count and a second thread only waits on a busy machine)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="folder for the JSON, markdown and PNG results")
    ap.add_argument("--rrdb-blocks", type=int, default=23, help="RRDB blocks of the inference benchmark")
    ap.add_argument("--tiled-size", type=int, default=512,
                    help="LR side of the tiled inference benchmark (512: 16 windows of tile 128)")
    ap.add_argument("--loader-set", default="Urban100",
                    help="images for the loader benchmark: a benchmark set's HR folder or a training set")
    args = ap.parse_args(argv)
    threads = args.threads or (1 if args.smoke else 2)
    command = " ".join(["python -m benchmarks.run", *(sys.argv[1:] if argv is None else argv)])
    rows = run(args.smoke, args.only, threads, args.out, command, rrdb_blocks=args.rrdb_blocks,
               tiled_size=args.tiled_size, loader_set=args.loader_set)
    failed = [r for r in rows if not r.ok]
    for r in failed:
        print(f"correctness check failed: {r.suite} / {r.name}: {r.check}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
