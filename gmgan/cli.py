"""The ``gmgan`` command line: ``gmgan sr | eval | interpolate | train | data | presets``.

Entry points: the ``gmgan`` console script and ``python -m gmgan`` both call :func:`main`. Every
sub-command has ``--help`` with examples. Errors that gmgan reports (a missing file, a bad value,
an unknown preset...) print one line ``gmgan: error: ...`` on stderr and exit with status 2; add
``--debug`` (or set ``GMGAN_DEBUG=1``) for the full traceback. Warnings print as one
line ``gmgan: warning: ...``. ``gmgan sr`` and ``gmgan data fetch`` skip inputs that
fail, report them at the end and exit with status 1.

This module is the only one that parses arguments and prints tables; the work is done by
:mod:`gmgan.infer`, :mod:`gmgan.evaluate`, :mod:`gmgan.train` and :mod:`gmgan.data`.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import types
import typing
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_parser", "main"]

PROG = "gmgan"


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keep the epilog's example lines as written; show defaults that say something."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if ("%(default)" not in text and action.default not in (None, False, argparse.SUPPRESS)
                and action.option_strings and action.nargs != 0):
            text += " (default: %(default)s)"
        return text


def _examples(*lines: str) -> str:
    return "examples:\n" + "\n".join(f"  {line}" for line in lines)


def _debug_requested(args: argparse.Namespace | None) -> bool:
    return bool(getattr(args, "debug", False)) or os.environ.get("GMGAN_DEBUG", "") not in ("", "0")


def _is_main_process() -> bool:
    """Rank 0 of a torchrun job, or a plain process: the one that prints summaries."""
    return os.environ.get("RANK", "0") == "0"


def _err(message: str) -> None:
    print(f"{PROG}: error: {message}", file=sys.stderr)


# Errors whose message is meant for users as it is; others get their type name in front.
_PLAIN_ERRORS = (ValueError, TypeError, OSError, KeyError, RuntimeError, ImportError)


def _format_warning(message, category, filename, lineno, line=None) -> str:
    """A warning as ``gmgan: warning: ...`` (no source file, line number or code line:
    those point into gmgan, not at anything the user gave); ``--debug`` keeps the usual
    form."""
    return f"{PROG}: warning: {message}\n"


def _one_line(err: BaseException) -> str:
    """An exception as one line of text (KeyError's message without its quotes)."""
    message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
    message = " ".join(str(message).split()) or type(err).__name__
    return message if isinstance(err, _PLAIN_ERRORS) else f"{type(err).__name__}: {message}"


def _count(minimum: int):
    """An argparse type: an integer >= ``minimum`` (a bad value is a usage error, exit 2)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value

    parse.__name__ = "int"  # argparse names the type in its messages
    return parse


def _auto_device(device: str | None) -> str:
    if device:
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


# ---------------------------------------------------------------------------------------------
# gmgan sr
# ---------------------------------------------------------------------------------------------

def _collect_inputs(inputs: Sequence[str], failures: list[tuple[str, str]]) -> list[Path]:
    """Files as given and the images of folders, in order, without duplicates."""
    from gmgan.imageio import list_images

    files: list[Path] = []
    for item in inputs:
        path = Path(item).expanduser()
        try:
            if path.is_dir():
                files.extend(list_images(path))
            elif path.exists():
                files.append(path)
            else:
                failures.append((item, "no such file or folder"))
        except (OSError, ValueError) as err:
            failures.append((item, str(err)))
    seen: set[Path] = set()
    return [f for f in files if not (f.resolve() in seen or seen.add(f.resolve()))]


def _read_for_sr(path: Path):
    """uint8 H x W, H x W x 3, or H x W x 4 when the file has an alpha channel (kept)."""
    import numpy as np
    from PIL import Image, ImageOps

    from gmgan.imageio import ImageConversionWarning, alpha_channel, read_image

    try:
        with Image.open(path) as im:
            alpha = alpha_channel(ImageOps.exif_transpose(im))
    except (OSError, ValueError, SyntaxError, EOFError):  # read_image will say what is wrong
        alpha = None
    if alpha is None:
        return read_image(path, keep_grey=True)
    with warnings.catch_warnings():  # read_image announces that it drops the alpha: we keep it
        warnings.filterwarnings("ignore", ".*alpha dropped", ImageConversionWarning)
        img = read_image(path, keep_grey=True)
    if alpha.dtype != np.uint8 or alpha.shape != img.shape[:2]:
        return img
    rgb = np.repeat(img[:, :, None], 3, axis=2) if img.ndim == 2 else img
    return np.concatenate([rgb, alpha[:, :, None]], axis=2)


def _plan_outputs(files: Sequence[Path], out_dir: Path, scale: int, overwrite: bool,
                  failures: list[tuple[str, str]]) -> list[tuple[Path, Path]]:
    """(input, output) pairs for ``gmgan sr``, decided before anything is written.

    An output that is one of the inputs is never written (reading the input later would
    give the other result); an existing file is replaced only with ``overwrite``; of two
    inputs with the same stem the first is kept. Refused inputs go to ``failures`` with
    the reason.
    """
    inputs = {f.resolve() for f in files}
    planned: dict[Path, Path] = {}
    for path in files:
        target = out_dir / f"{path.stem}_x{scale}.png"
        why = None
        if target.resolve() in inputs:
            why = (f"output {target} is one of the inputs; not overwritten (choose "
                   f"another --out-dir)")
        elif target.resolve() in planned:
            why = (f"output {target.name} would overwrite the result of "
                   f"{planned[target.resolve()]}")
        elif (target.exists() or target.is_symlink()) and not overwrite:
            why = (f"output {target} exists; not overwritten (give --overwrite to "
                   f"replace it)")
        if why:
            failures.append((str(path), why))
        else:
            planned[target.resolve()] = path
    return [(path, target) for target, path in planned.items()]


def cmd_sr(args: argparse.Namespace) -> int:
    """``gmgan sr``: upscale files / folders to ``<out>/<stem>_x<scale>.png``; 1 if any
    failed.

    Every input is listed and every output name decided before the first image is
    written: an output never replaces an input, nor (without ``--overwrite``) any
    existing file.
    """
    from tqdm.auto import tqdm

    from gmgan.imageio import write_image
    from gmgan.infer import upscale
    from gmgan.nets import load_generator

    device = _auto_device(args.device)
    model = load_generator(args.weights, device=device)  # bad weights: a gmgan error, exit 2
    out_dir = Path(args.out_dir).expanduser()
    failures: list[tuple[str, str]] = []
    files = _collect_inputs(args.inputs, failures)
    plan = _plan_outputs(files, out_dir, model.scale, args.overwrite, failures)
    if plan:
        out_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    for path, target in tqdm(plan, desc="sr", unit="img", disable=None):
        try:
            img = _read_for_sr(path)
            sr = upscale(model, img, tile=args.tile, overlap=args.overlap, half=args.half,
                         batch_tiles=args.batch_tiles)
            if not args.overwrite and (target.exists() or target.is_symlink()):
                raise FileExistsError(f"output {target} appeared meanwhile; not "
                                      f"overwritten")
            write_image(target, sr)
            written += 1
        except Exception as err:  # one bad image must not stop a folder
            if _debug_requested(args):
                raise
            failures.append((str(path), _one_line(err)))
    print(f"wrote {written} image(s) to {out_dir}", file=sys.stderr)
    if failures:
        print(f"{len(failures)} input(s) failed:", file=sys.stderr)
        for name, why in failures:
            print(f"  {name}: {why}", file=sys.stderr)
        return 1
    return 0


# ---------------------------------------------------------------------------------------------
# gmgan eval
# ---------------------------------------------------------------------------------------------

def _named_weights(items: Sequence[str]) -> dict[str, str]:
    """``NAME=PATH`` or ``PATH`` (named by its stem, or parent/stem when stems repeat)."""
    named: dict[str, str] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep or os.sep in name or "/" in name:
            name, path = "", item
        p = Path(path)
        if not name:
            name = p.stem
            if name in named or name in ("G", "G_ema"):
                name = f"{p.parent.name}/{p.stem}"
        base, k = name, 2
        while name in named:
            name, k = f"{base}#{k}", k + 1
        named[name] = path
    return named


def cmd_eval(args: argparse.Namespace) -> int:
    """``gmgan eval``: print the Table-1 style table; optionally write CSV / JSON."""
    from gmgan.evaluate import BICUBIC, evaluate
    from gmgan.metrics import GREY_DEFAULT

    models: dict[str, Any] = {} if args.no_bicubic else {BICUBIC: None}
    for name, path in _named_weights(args.weights or []).items():
        if not Path(path).is_file():
            raise FileNotFoundError(f"weights file not found: {path}")
        models[name] = path
    if not models:
        raise ValueError("nothing to evaluate: give --weights, or drop --no-bicubic")
    result = evaluate(models, sets=args.sets, metrics=args.metrics, limit=args.limit,
                      device=args.device, tile=args.tile, grey=args.grey or GREY_DEFAULT, lr=args.lr,
                      progress=args.progress)
    print(result.to_table(layout=args.layout, published="table1" if args.published else None))
    if args.csv:
        print(f"wrote {result.to_csv(args.csv)}", file=sys.stderr)
    if args.json:
        print(f"wrote {result.to_json(args.json)}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------
# gmgan interpolate
# ---------------------------------------------------------------------------------------------

def cmd_interpolate(args: argparse.Namespace) -> int:
    """``gmgan interpolate``: write (1 - alpha) A + alpha B as safetensors."""
    from gmgan.infer import interpolate_to_file

    out = interpolate_to_file(args.a, args.b, args.alpha, args.out)
    print(f"wrote {out}: {1 - args.alpha:g} x {args.a} + {args.alpha:g} x {args.b}",
          file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------
# gmgan train: one option per TrainConfig field
# ---------------------------------------------------------------------------------------------

_FIELD_DEST = "field__"


def _normalise_options(argv: Sequence[str]) -> list[str]:
    """``--num_block 1`` -> ``--num-block 1``: field names may be written with underscores.

    Only the option name is changed (not a value after ``=``), and nothing after a bare ``--``.
    """
    out: list[str] = []
    for i, token in enumerate(argv):
        if token == "--":
            return out + list(argv[i:])
        if token.startswith("--") and len(token) > 2:
            name, eq, value = token.partition("=")
            token = name.replace("_", "-") + eq + value
        out.append(token)
    return out


def _add_field_options(parser: argparse.ArgumentParser) -> None:
    """``--<field>`` for every field of TrainConfig; the value is converted by apply_overrides.

    Options are dashed (``--num-block``; ``--num_block`` works too, see :func:`_normalise_options`).
    bools (also ``bool | None``) are ``--x`` / ``--no-x``; tuples take several values
    (``--val-sets Set5 Set14``, ``--gan-betas 0 0.9``; ``--val-sets`` alone is the empty tuple);
    optional fields accept ``none``.
    """
    from gmgan.presets import CHOICES, TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    group = parser.add_argument_group("TrainConfig fields (each overrides the preset and the "
                                      "config file)")
    for f in dataclasses.fields(TrainConfig):
        tp = hints[f.name]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = (typing.get_origin(tp) in (typing.Union, types.UnionType)
                    and type(None) in typing.get_args(tp))
        inner = args[0] if optional else tp
        help_text = f.metadata.get("help", "")
        kwargs: dict[str, Any] = {"dest": _FIELD_DEST + f.name, "default": argparse.SUPPRESS}
        if inner is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        elif typing.get_origin(inner) is tuple:
            inner_args = typing.get_args(inner)
            if len(inner_args) == 2 and inner_args[1] is Ellipsis:
                kwargs.update(nargs="*", metavar=inner_args[0].__name__.upper())
            else:
                kwargs.update(nargs=len(inner_args),
                              metavar=tuple(a.__name__.upper() for a in inner_args))
        else:
            kwargs["metavar"] = inner.__name__.upper() if isinstance(inner, type) else "VALUE"
            if f.name in CHOICES:
                options = CHOICES[f.name]
                kwargs["choices"] = options
                if len(options) <= 4:
                    kwargs["metavar"] = "{" + ",".join(options) + "}"
                else:
                    help_text += f"; one of {', '.join(options)}"
        if optional and inner is not bool:
            help_text += " ('none' for None)"
        # "%" in help texts would be read as a format by argparse
        group.add_argument("--" + f.name.replace("_", "-"),
                           help=(help_text + _preset_defaults(f.name)).replace("%", "%%"), **kwargs)


def _preset_defaults(name: str) -> str:
    """`` (paper: 23, teach: 3)`` when the presets differ, else `` (default: X)``."""
    from gmgan.presets import PRESETS

    values = {preset: getattr(cfg, name) for preset, cfg in PRESETS.items()}

    def show(v: Any) -> str:
        return " ".join(map(str, v)) if isinstance(v, tuple) else str(v)

    if len({repr(v) for v in values.values()}) == 1:
        return f" (default: {show(next(iter(values.values())))})"
    return " (" + ", ".join(f"{p}: {show(v)}" for p, v in values.items()) + ")"


def _field_overrides(args: argparse.Namespace) -> dict[str, Any]:
    return {k[len(_FIELD_DEST):]: v for k, v in vars(args).items() if k.startswith(_FIELD_DEST)}


def _build_config(args: argparse.Namespace):
    """preset (default ``paper``) <- config file <- command-line fields."""
    from gmgan.presets import TrainConfig, apply_overrides, get_preset

    if args.config:
        # --preset names the base; the file's own `preset:` key is then ignored
        cfg = TrainConfig.from_yaml(Path(args.config).expanduser(), preset=args.preset)
    else:
        cfg = get_preset(args.preset or "paper")
    return apply_overrides(cfg, _field_overrides(args))


def _check_train_set(cfg) -> None:
    """A train_set written as a path must be an existing folder (names are the registry's)."""
    text = cfg.train_set
    if os.sep in text or "/" in text or text.startswith((".", "~")):
        path = Path(text).expanduser()
        if not path.is_dir():
            raise FileNotFoundError(f"training data folder not found: {path} (train_set={text!r}); "
                                    f"give a folder of HR images or a set name (gmgan data list)")


def cmd_train(args: argparse.Namespace) -> int:
    """``gmgan train``: build the config (preset <- file <- options) and train; 0 after
    Ctrl-C or SIGTERM (checkpoint written)."""
    cfg = _build_config(args)
    if args.print_config:
        if _is_main_process():
            print(cfg.to_yaml(), end="")
        return 0
    _check_train_set(cfg)
    from gmgan.train import train

    result = train(cfg)
    if _is_main_process():
        if result.interrupted:
            print(f"stopped by Ctrl-C or SIGTERM; checkpoint written in "
                  f"{result.run_dir}. Continue with the same command plus --resume.",
                  file=sys.stderr)
        else:
            print(f"done: {result.run_dir}", file=sys.stderr)
            if result.generator is not None:
                print(f"generator: {result.generator}", file=sys.stderr)
    return 0


# ---------------------------------------------------------------------------------------------
# gmgan data / presets
# ---------------------------------------------------------------------------------------------

def _size(n: int | None) -> str:
    if n is None:
        return "-"
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return str(n)


def _format_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()
             for r in [header, *rows]]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def cmd_data_list(args: argparse.Namespace) -> int:
    """``gmgan data list``: a table of the known sets, cached or not."""
    from gmgan.cache import data_dir
    from gmgan.data import list_datasets

    rows = []
    for d in list_datasets():
        expected = "?" if d["expected"] is None else str(d["expected"])
        rows.append([d["name"], d["kind"], d["status"], f"{d['present']}/{expected}",
                     _size(d["bytes"]), d["location"]])
    print(_format_table(["set", "kind", "status", "images", "size", "location"], rows))
    print(f"\ndata cache (GMGAN_DATA): {data_dir()}")
    return 0


def cmd_data_fetch(args: argparse.Namespace) -> int:
    """``gmgan data fetch``: fetch each named set; 1 if any failed."""
    from gmgan.data import fetch

    failures = []
    for name in args.names:
        try:
            print(f"{name}: {fetch(name, progress=not args.quiet)}")
        except Exception as err:
            if _debug_requested(args):
                raise
            failures.append((name, _one_line(err)))
    for name, why in failures:
        _err(f"{name}: {why}")
    return 1 if failures else 0


def cmd_data_manifest(args: argparse.Namespace) -> int:
    """``gmgan data manifest DIR``: write DIR/MANIFEST.tsv so that DIR can serve as a data mirror."""
    from gmgan.data.registry import MANIFEST_NAME, write_manifest

    folder = Path(args.folder).expanduser()
    if not folder.is_dir():
        raise FileNotFoundError(f"not a folder: {folder}")
    n = write_manifest(folder)
    print(f"{folder / MANIFEST_NAME}: {n} files. Serve the folder (e.g. `python -m http.server -d {folder}`) "
          f"and set GMGAN_DATA_MIRROR to its URL.")
    return 0


def cmd_data_prepare(args: argparse.Namespace) -> int:
    """``gmgan data prepare``: make the HR/LR training pairs of a set or folder."""
    from gmgan.data import prepare_training_set

    prepared = prepare_training_set(args.name, scale=args.scale, subimages=args.subimages,
                                    augment8=args.augment8, progress=not args.quiet)
    print(f"{prepared.count} HR/LR pairs\nHR: {prepared.hr_dir}\nLR: {prepared.lr_dir}")
    return 0


def cmd_presets(args: argparse.Namespace) -> int:
    """``gmgan presets [NAME]``: list the presets, or print one as YAML."""
    from gmgan.presets import PRESETS, get_preset

    if args.name:
        print(get_preset(args.name).to_yaml(), end="")
        return 0
    rows = [[name, cfg.train_set, f"{cfg.num_block}x{cfg.num_feat}", str(cfg.patch_size),
             str(cfg.batch_size), str(cfg.pretrain_iters), str(cfg.gan_iters)]
            for name, cfg in PRESETS.items()]
    print(_format_table(["preset", "train_set", "blocks x feat", "patch", "batch", "pretrain_iters",
                         "gan_iters"], rows))
    print(f"\n`{PROG} presets NAME` prints one as YAML (a starting point for --config).")
    return 0


def cmd_models_list(args: argparse.Namespace) -> int:
    """``gmgan teaching-models list``: the shipped teaching models and how they were trained."""
    from gmgan.experiments import SHIPPED_DIR, load_run

    folder = SHIPPED_DIR / args.preset
    runs = sorted(p for p in folder.iterdir() if (p / "run.json").is_file()) if folder.is_dir() else []
    if not runs:
        print(f"no shipped {args.preset} models in {folder}")
        return 0
    rows = []
    for path in runs:
        run = load_run(path, shipped=True)
        cfg = run.config
        updates = cfg.pretrain_iters if cfg.phase == "pretrain" else cfg.gan_iters
        rows.append([run.name, cfg.phase, str(cfg.seed), str(updates), f"{run.minutes:.0f}",
                     run.parent.name if run.parent else "-"])
    print(_format_table(["model", "phase", "seed", "updates", "minutes", "starts from"], rows))
    print(f"\n{len(rows)} models in {folder}; `{PROG} teaching-models train` trains them again")
    return 0


def cmd_models_train(args: argparse.Namespace) -> int:
    """``gmgan teaching-models train``: train every teaching model (hours on a CPU)."""
    from gmgan.experiments import SEEDS, train_teaching_models

    seeds = tuple(args.seeds) if args.seeds else SEEDS
    train_teaching_models(args.preset, jobs=args.jobs, seeds=seeds, export=args.export)
    return 0


# ---------------------------------------------------------------------------------------------
# The parser
# ---------------------------------------------------------------------------------------------

def _version() -> str:
    from gmgan import __version__

    return __version__


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``gmgan`` with all sub-commands."""
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback on errors (also: GMGAN_DEBUG=1)")

    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=_Formatter, parents=[debug],
        description="GMGAN: 4x perceptual super-resolution (Zhu et al. 2020) in PyTorch.",
        epilog=_examples(f"{PROG} sr photo.png -o out/ --weights G.safetensors",
                         f"{PROG} eval --weights G.safetensors --sets Set5 Set14",
                         f"{PROG} train --preset teach",
                         f"{PROG} data list",
                         f"{PROG} <command> --help"))
    parser.add_argument("--version", action="version", version=f"{PROG} {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add(name: str, help_text: str, epilog: str, func) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                           formatter_class=_Formatter, parents=[debug])
        if func is not None:
            p.set_defaults(func=func)
        return p

    # -- sr
    p = add("sr", "super-resolve image files or folders with a trained generator",
            _examples(f"{PROG} sr photo.png -o out/ --weights RRDB_ESRGAN_x4.pth",
                      f"{PROG} sr photos/ scan.png -o out/ --weights G.safetensors --tile 256 "
                      f"--half",
                      "writes out/<stem>_x4.png for each input; inputs that fail are listed at the",
                      "end (exit status 1); existing files are kept unless",
                      "--overwrite, and an input is never overwritten"), cmd_sr)
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files and/or folders of images")
    p.add_argument("-o", "--out-dir", required=True, help="output folder (created)")
    p.add_argument("-w", "--weights", required=True,
                   help="generator weights: .safetensors or .pth (BasicSR / ESRGAN layouts)")
    p.add_argument("--tile", type=_count(1), default=None,
                   help="tile side in LR pixels (bounds memory for large images); "
                        "default: whole image")
    p.add_argument("--overlap", type=_count(0), default=16,
                   help="LR pixels of context around each tile")
    p.add_argument("--batch-tiles", type=_count(1), default=1, help="tiles per forward pass")
    p.add_argument("--half", action="store_true",
                   help="reduced precision: fp16 on CUDA, bf16 on CPU")
    p.add_argument("--device", default=None,
                   help="cpu, cuda, cuda:1, mps (default: cuda if available)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing output files (an input is never replaced)")

    # -- eval
    p = add("eval", "evaluate generators and bicubic on benchmark sets (the paper's Table 1)",
            _examples(f"{PROG} eval --sets Set5 Set14 BSD100                 # bicubic only",
                      f"{PROG} eval --weights psnr.safetensors gan.safetensors --limit 2",
                      f"{PROG} eval --weights GMGAN=runs/teach/gan/G_ema.safetensors --published "
                      f"--csv table.csv --json table.json",
                      "PI needs NRQM_model.mat (not available offline): the table then shows NIQE"),
            cmd_eval)
    p.add_argument("-w", "--weights", nargs="*", default=[], metavar="W",
                   help="generator weight files, optionally NAME=PATH; one table row each")
    p.add_argument("--sets", nargs="+", default=["Set5", "Set14", "BSD100"],
                   help="benchmark sets: Set5 Set14 BSD100 Urban100")
    p.add_argument("--metrics", nargs="+", default=["psnr", "ssim", "gmsd", "niqe", "pi"],
                   choices=["psnr", "ssim", "gmsd", "niqe", "pi"], metavar="METRIC",
                   help="any of psnr ssim gmsd niqe pi")
    p.add_argument("--limit", type=_count(1), default=None, help="first N images of each set only")
    p.add_argument("--no-bicubic", action="store_true", help="leave out the bicubic baseline row")
    p.add_argument("--published", action="store_true", help="add the paper's Table 1 rows")
    p.add_argument("--layout", choices=["paper", "long"], default="paper", help="table layout")
    p.add_argument("--csv", default=None, help="write the set means as CSV")
    p.add_argument("--json", default=None, help="write means and per-image scores as JSON")
    p.add_argument("--tile", type=_count(1), default=None,
                   help="tile side in LR pixels (default: whole image)")
    p.add_argument("--device", default=None, help="where models run (default: cuda if available)")
    # default None: gmgan.metrics.GREY_DEFAULT, resolved in cmd_eval (building the parser
    # imports no torch)
    p.add_argument("--grey", choices=["as_rgb", "as_y"], default=None,
                   help="single-channel images (Set14 bridge) in PSNR/SSIM: as_rgb = as R = G = B "
                        "(the default, as in training validation; GMGAN's Table 1) or as_y = as Y "
                        "(ESRGAN); the table's caption names it")
    p.add_argument("--lr", choices=["dataset", "matlab"], default="dataset",
                   help="LR inputs: the sets' own files, or MATLAB-exact bicubic for every set")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="progress bar on stderr")

    # -- interpolate
    p = add("interpolate", "network interpolation: (1 - alpha) x A + alpha x B (ESRGAN)",
            _examples(f"{PROG} interpolate psnr.safetensors gan.safetensors --alpha 0.8 "
                      f"-o interp_08.safetensors",
                      "A is the PSNR-oriented model, B the GAN model; alpha 0 gives A, 1 gives B"),
            cmd_interpolate)
    p.add_argument("a", metavar="A", help="PSNR-oriented generator weights")
    p.add_argument("b", metavar="B", help="GAN generator weights (same architecture)")
    p.add_argument("--alpha", type=float, required=True, help="weight of B, in [0, 1]")
    p.add_argument("-o", "--out", required=True, help="output .safetensors file")

    # -- train
    p = add("train", "train GMGAN (phase 1: MSE pre-training, phase 2: GAN)",
            _examples(f"{PROG} train --preset teach",
                      f"{PROG} train --preset teach --num-block 1 --pretrain-iters 20 "
                      f"--phase pretrain",
                      f"{PROG} train --preset paper --train-set /data/DIV2K/HR --augment8",
                      f"{PROG} train --config my.yaml --resume",
                      f"{PROG} train --preset teach --print-config > my.yaml",
                      "torchrun --nproc_per_node 2 -m gmgan train --preset paper --train-set DIV2K",
                      "Ctrl-C or SIGTERM (kill, docker stop, Slurm) stops after the",
                      "current step and writes a checkpoint;",
                      "--resume continues"),
            cmd_train)
    from gmgan.presets import PRESETS

    p.add_argument("--preset", choices=list(PRESETS), default=None,
                   help="starting configuration (default: paper, or the config file's own)")
    p.add_argument("--config", default=None, help="YAML file of fields (may hold `preset: NAME`)")
    p.add_argument("--print-config", action="store_true",
                   help="print the final config as YAML and exit")
    _add_field_options(p)

    # -- data
    p = add("data", "list, fetch and prepare image sets",
            _examples(f"{PROG} data list", f"{PROG} data fetch Set5 Set14",
                      f"{PROG} data prepare T91 --augment8"),
            None)
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    def add_data(name: str, help_text: str, epilog: str, func) -> argparse.ArgumentParser:
        q = dsub.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                            formatter_class=_Formatter, parents=[debug])
        q.set_defaults(func=func)
        return q

    add_data("list", "the known sets: cached or not, image counts, location",
             _examples(f"{PROG} data list", f"GMGAN_DATA=/mnt/sets {PROG} data list"),
             cmd_data_list)
    q = add_data("fetch", "download sets into the data cache (verified, resumable)",
                 _examples(f"{PROG} data fetch Set5 Set14 BSD100 Urban100",
                           f"{PROG} data fetch DIV2K"),
                 cmd_data_fetch)
    q.add_argument("names", nargs="+", metavar="NAME", help="set names (see `gmgan data list`)")
    q.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    q = add_data("manifest", "write DIR/MANIFEST.tsv (path, sha256, bytes of every file), which makes "
                 "a copy of the data cache usable as a data mirror (GMGAN_DATA_MIRROR)",
                 _examples(f"{PROG} data manifest /srv/gmgan-data",
                           "python -m http.server 8000 -d /srv/gmgan-data",
                           f"GMGAN_DATA_MIRROR=http://host:8000 {PROG} data fetch Set5"), cmd_data_manifest)
    q.add_argument("folder", metavar="DIR", help="a data cache (layout benchmark/Set5/HR, train/T91, ...)")
    q = add_data("prepare", "make the HR/LR training pairs of a set (sub-images, 8x "
                 "augmentation, LR)",
                 _examples(f"{PROG} data prepare T91",
                           f"{PROG} data prepare DIV2K --subimages --augment8",
                           f"{PROG} data prepare ~/photos/hr"), cmd_data_prepare)
    q.add_argument("name", metavar="NAME", help="set name or folder of HR images")
    q.add_argument("--augment8", action="store_true", help="8x dihedral augmentation (the paper's)")
    q.add_argument("--subimages", action=argparse.BooleanOptionalAction, default=None,
                   help="cut into 480 px sub-images (default: only for DIV2K-sized images)")
    q.add_argument("--scale", type=int, default=4, help="upscaling factor")
    q.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    # -- teaching-models
    p = add("teaching-models", "the book's trained teaching models: list the shipped ones, or train them again",
            _examples(f"{PROG} teaching-models list",
                      f"{PROG} teaching-models train --jobs 2                      # into GMGAN_DERIVED",
                      f"{PROG} teaching-models train --jobs 2 --export gmgan/teaching_models",
                      "the notebooks use the shipped models; papermill -p retrain true trains theirs"),
            None)
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    q = msub.add_parser("list", help="the shipped models", formatter_class=_Formatter, parents=[debug])
    q.set_defaults(func=cmd_models_list)
    q.add_argument("--preset", default="teach", help="preset folder (teach)")
    q = msub.add_parser("train", help="train every model the notebooks compare (3 seeds each; hours on a CPU)",
                        formatter_class=_Formatter, parents=[debug])
    q.set_defaults(func=cmd_models_train)
    q.add_argument("--preset", default="teach", help="preset to train (teach)")
    q.add_argument("--jobs", type=_count(1), default=1, help="models trained at once, one CPU thread each")
    q.add_argument("--seeds", type=int, nargs="+", default=None, help="seeds (default: 0 1 2)")
    q.add_argument("--export", default=None,
                   help="copy each finished run here (weights, config, logs), e.g. gmgan/teaching_models")

    # -- presets
    p = add("presets", "list the training presets, or print one as YAML",
            _examples(f"{PROG} presets", f"{PROG} presets teach > teach.yaml"), cmd_presets)
    p.add_argument("name", nargs="?", default=None, metavar="NAME", help="preset to print")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gmgan`` command line on ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    0: success (also after Ctrl-C or SIGTERM stopped training cleanly); 1: some inputs
    failed (``sr``, ``data fetch``); 2: a usage error or a gmgan error (one line on
    stderr, no traceback unless ``--debug`` / ``GMGAN_DEBUG=1``); 130: interrupted.
    """
    parser = build_parser()
    argv = _normalise_options(sys.argv[1:] if argv is None else list(argv))
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, usage errors: argparse has printed them
        return exit_.code if isinstance(exit_.code, int) else (0 if exit_.code is None else 2)
    try:
        previous_format = warnings.formatwarning
        if not _debug_requested(args):
            warnings.formatwarning = _format_warning
        try:
            return int(args.func(args))
        finally:  # main() may run in a notebook or a test: leave warnings as they were
            warnings.formatwarning = previous_format
    except KeyboardInterrupt:
        if _debug_requested(args):
            raise
        _err("interrupted")
        return 130
    except Exception as err:
        if _debug_requested(args):
            raise
        _err(_one_line(err))
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
