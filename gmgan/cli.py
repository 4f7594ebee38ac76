"""The ``gmgan`` command line: ``gmgan sr | eval | interpolate | train | data | ...``.

Entry points: the ``gmgan`` console script and ``python -m gmgan`` both call
:func:`main`. Every sub-command has ``--help`` with examples. Errors that gmgan reports
(a missing file, a bad value, an unknown preset...) print one line ``gmgan: error: ...``
on stderr and exit with status 2; add ``--debug`` (or set ``GMGAN_DEBUG=1``) for the
full traceback. Warnings print as one line ``gmgan: warning: ...``. ``gmgan sr`` and
``gmgan data fetch`` skip inputs that fail, report them at the end and exit with status
1.

This module parses the arguments and prints the tables; the work is done by
:mod:`gmgan.infer`, :mod:`gmgan.evaluate`, :mod:`gmgan.train` and :mod:`gmgan.data`
(``gmgan train``'s options come from :mod:`gmgan.config_options`). Those modules load
torch (seconds), so each command imports them when it runs: ``gmgan --help``, ``gmgan
presets`` and usage errors answer without loading torch.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gmgan import __version__
from gmgan.cache import data_dir
from gmgan.config import PRESETS, get_preset
from gmgan.config_options import add_field_options, config_from_args, normalise_options

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
    from gmgan.sr_plan import collect_inputs, plan_outputs, read_for_sr

    device = _auto_device(args.device)
    model = load_generator(args.weights, device=device)  # bad weights: a gmgan error, exit 2
    out_dir = Path(args.out_dir).expanduser()
    failures: list[tuple[str, str]] = []
    files = collect_inputs(args.inputs, failures)
    plan = plan_outputs(files, out_dir, model.scale, args.overwrite, failures)
    if plan:
        out_dir.mkdir(parents=True, exist_ok=True)
    written = 0
    for path, target in tqdm(plan, desc="sr", unit="img", disable=None):
        try:
            img = read_for_sr(path)
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

def cmd_train(args: argparse.Namespace) -> int:
    """``gmgan train``: build the config (preset <- file <- options) and train; 0 after
    Ctrl-C or SIGTERM (checkpoint written)."""
    cfg = config_from_args(args)
    if args.print_config:
        if _is_main_process():
            print(cfg.to_yaml(), end="")
        return 0
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
        updates = sum(cfg.iters(phase) for phase in cfg.phases())
        rows.append([run.name, cfg.phase, str(cfg.seed), str(updates), f"{run.minutes:.0f}",
                     run.parent.name if run.parent else "-"])
    print(_format_table(["model", "phase", "seed", "updates", "minutes", "starts from"], rows))
    print(f"\n{len(rows)} models in {folder}; `{PROG} teaching-models train` trains them again")
    return 0


def cmd_models_score(args: argparse.Namespace) -> int:
    """``gmgan teaching-models score``: per-image scores of the shipped models (an hour+)."""
    from gmgan.teaching_scores import score_teaching_models, scores_path

    out = args.out or scores_path(args.preset)
    result = score_teaching_models(args.preset, sets=args.sets, metrics=args.metrics,
                                   runs=args.runs, limit=args.limit, out=out,
                                   update=args.update, progress=not args.no_progress)
    print(result.to_table(layout="long"))
    print(f"wrote {len(result.per_image)} per-image scores to {out}", file=sys.stderr)
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

def _debug_parent() -> argparse.ArgumentParser:
    """The ``--debug`` option that every parser and sub-parser shares."""
    debug = argparse.ArgumentParser(add_help=False)
    debug.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show the full traceback on errors (also: GMGAN_DEBUG=1)")
    return debug


def _add_command(sub, debug: argparse.ArgumentParser, name: str, help_text: str,
                 epilog: str, func) -> argparse.ArgumentParser:
    """A sub-command parser: its help line as description, the examples, ``--debug``."""
    p = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                       formatter_class=_Formatter, parents=[debug])
    if func is not None:
        p.set_defaults(func=func)
    return p


def _add_sr_parser(sub, debug: argparse.ArgumentParser) -> None:
    examples = _examples(
        f"{PROG} sr photo.png -o out/ --weights RRDB_ESRGAN_x4.pth",
        f"{PROG} sr photos/ scan.png -o out/ --weights G.safetensors --tile 256 --half",
        "writes out/<stem>_x4.png for each input; inputs that fail are listed at the",
        "end (exit status 1); existing files are kept unless",
        "--overwrite, and an input is never overwritten")
    p = _add_command(sub, debug, "sr",
                     "super-resolve image files or folders with a trained generator",
                     examples, cmd_sr)
    p.add_argument("inputs", nargs="+", metavar="INPUT",
                   help="image files and/or folders of images")
    p.add_argument("-o", "--out-dir", required=True, help="output folder (created)")
    p.add_argument("-w", "--weights", required=True,
                   help="generator weights: .safetensors or .pth (BasicSR / ESRGAN "
                        "layouts)")
    p.add_argument("--tile", type=_count(1), default=None,
                   help="tile side in LR pixels (bounds memory for large images); "
                        "default: whole image")
    p.add_argument("--overlap", type=_count(0), default=16,
                   help="LR pixels of context around each tile")
    p.add_argument("--batch-tiles", type=_count(1), default=1,
                   help="tiles per forward pass")
    p.add_argument("--half", action="store_true",
                   help="reduced precision: fp16 on CUDA, bf16 on CPU")
    p.add_argument("--device", default=None,
                   help="cpu, cuda, cuda:1, mps (default: cuda if available)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace existing output files (an input is never replaced)")


def _add_eval_parser(sub, debug: argparse.ArgumentParser) -> None:
    examples = _examples(
        f"{PROG} eval --sets Set5 Set14 BSD100                 # bicubic only",
        f"{PROG} eval --weights psnr.safetensors gan.safetensors --limit 2",
        f"{PROG} eval --weights GMGAN=runs/teach/gan/G_ema.safetensors --published "
        f"--csv table.csv --json table.json",
        "PI needs NRQM_model.mat (not available offline): the table then shows NIQE")
    p = _add_command(sub, debug, "eval",
                     "evaluate generators and bicubic on benchmark sets (the paper's "
                     "Table 1)", examples, cmd_eval)
    p.add_argument("-w", "--weights", nargs="*", default=[], metavar="W",
                   help="generator weight files, optionally NAME=PATH; one table row "
                        "each")
    p.add_argument("--sets", nargs="+", default=["Set5", "Set14", "BSD100"],
                   help="benchmark sets: Set5 Set14 BSD100 Urban100")
    metrics = ["psnr", "ssim", "gmsd", "niqe", "pi"]  # the paper's
    p.add_argument("--metrics", nargs="+", default=metrics, choices=[*metrics, "hf"],
                   metavar="METRIC", help="any of psnr ssim gmsd niqe pi (the paper's) and "
                   "hf (high-frequency energy relative to HR)")
    p.add_argument("--limit", type=_count(1), default=None,
                   help="first N images of each set only")
    p.add_argument("--no-bicubic", action="store_true",
                   help="leave out the bicubic baseline row")
    p.add_argument("--published", action="store_true",
                   help="add the paper's Table 1 rows")
    p.add_argument("--layout", choices=["paper", "long"], default="paper",
                   help="table layout")
    p.add_argument("--csv", default=None, help="write the set means as CSV")
    p.add_argument("--json", default=None,
                   help="write means and per-image scores as JSON")
    p.add_argument("--tile", type=_count(1), default=None,
                   help="tile side in LR pixels (default: whole image)")
    p.add_argument("--device", default=None,
                   help="where models run (default: cuda if available)")
    # default None: gmgan.metrics.GREY_DEFAULT, resolved in cmd_eval (building the
    # parser imports no torch)
    p.add_argument("--grey", choices=["as_rgb", "as_y"], default=None,
                   help="single-channel images (Set14 bridge) in PSNR/SSIM: as_rgb = "
                        "as R = G = B (the default, as in training validation; GMGAN's "
                        "Table 1) or as_y = as Y (ESRGAN); the table's caption names "
                        "it")
    p.add_argument("--lr", choices=["dataset", "matlab"], default="dataset",
                   help="LR inputs: the sets' own files, or MATLAB-exact bicubic for "
                        "every set")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                   help="progress bar on stderr")


def _add_interpolate_parser(sub, debug: argparse.ArgumentParser) -> None:
    examples = _examples(
        f"{PROG} interpolate psnr.safetensors gan.safetensors --alpha 0.8 "
        f"-o interp_08.safetensors",
        "A is the PSNR-oriented model, B the GAN model; alpha 0 gives A, 1 gives B")
    p = _add_command(sub, debug, "interpolate",
                     "network interpolation: (1 - alpha) x A + alpha x B (ESRGAN)",
                     examples, cmd_interpolate)
    p.add_argument("a", metavar="A", help="PSNR-oriented generator weights")
    p.add_argument("b", metavar="B", help="GAN generator weights (same architecture)")
    p.add_argument("--alpha", type=float, required=True, help="weight of B, in [0, 1]")
    p.add_argument("-o", "--out", required=True, help="output .safetensors file")


def _add_train_parser(sub, debug: argparse.ArgumentParser) -> None:
    examples = _examples(
        f"{PROG} train --preset teach",
        f"{PROG} train --preset teach --num-block 1 --pretrain-iters 20 "
        f"--phase pretrain",
        f"{PROG} train --preset paper --train-set /data/DIV2K/HR --augment8",
        f"{PROG} train --config my.yaml --resume",
        f"{PROG} train --preset teach --print-config > my.yaml",
        "torchrun --nproc_per_node 2 -m gmgan train --preset paper --train-set DIV2K",
        "Ctrl-C or SIGTERM (kill, docker stop, Slurm) stops after the",
        "current step and writes a checkpoint;",
        "--resume continues")
    p = _add_command(sub, debug, "train",
                     "train GMGAN (phase 1: MSE pre-training, phase 2: GAN)", examples,
                     cmd_train)
    p.add_argument("--preset", choices=list(PRESETS), default=None,
                   help="starting configuration (default: paper, or the config file's "
                        "own)")
    p.add_argument("--config", default=None,
                   help="YAML file of fields (may hold `preset: NAME`)")
    p.add_argument("--print-config", action="store_true",
                   help="print the final config as YAML and exit")
    add_field_options(p)


def _add_data_parser(sub, debug: argparse.ArgumentParser) -> None:
    examples = _examples(f"{PROG} data list", f"{PROG} data fetch Set5 Set14",
                         f"{PROG} data prepare T91 --augment8")
    p = _add_command(sub, debug, "data", "list, fetch and prepare image sets", examples,
                     None)
    dsub = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    examples = _examples(f"{PROG} data list", f"GMGAN_DATA=/mnt/sets {PROG} data list")
    _add_command(dsub, debug, "list",
                 "the known sets: cached or not, image counts, location", examples,
                 cmd_data_list)

    examples = _examples(f"{PROG} data fetch Set5 Set14 BSD100 Urban100",
                         f"{PROG} data fetch DIV2K")
    q = _add_command(dsub, debug, "fetch",
                     "download sets into the data cache (verified, resumable)",
                     examples, cmd_data_fetch)
    q.add_argument("names", nargs="+", metavar="NAME",
                   help="set names (see `gmgan data list`)")
    q.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    examples = _examples(f"{PROG} data manifest /srv/gmgan-data",
                         "python -m http.server 8000 -d /srv/gmgan-data",
                         f"GMGAN_DATA_MIRROR=http://host:8000 {PROG} data fetch Set5")
    q = _add_command(dsub, debug, "manifest",
                     "write DIR/MANIFEST.tsv (path, sha256, bytes of every file), "
                     "which makes a copy of the data cache usable as a data mirror "
                     "(GMGAN_DATA_MIRROR)", examples, cmd_data_manifest)
    q.add_argument("folder", metavar="DIR",
                   help="a data cache (layout benchmark/Set5/HR, train/T91, ...)")

    examples = _examples(f"{PROG} data prepare T91",
                         f"{PROG} data prepare DIV2K --subimages --augment8",
                         f"{PROG} data prepare ~/photos/hr")
    q = _add_command(dsub, debug, "prepare",
                     "make the HR/LR training pairs of a set (sub-images, 8x "
                     "augmentation, LR)", examples, cmd_data_prepare)
    q.add_argument("name", metavar="NAME", help="set name or folder of HR images")
    q.add_argument("--augment8", action="store_true",
                   help="8x dihedral augmentation (the paper's)")
    q.add_argument("--subimages", action=argparse.BooleanOptionalAction, default=None,
                   help="cut into 480 px sub-images (default: only for DIV2K-sized "
                        "images)")
    q.add_argument("--scale", type=int, default=4, help="upscaling factor")
    q.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def _add_teaching_models_parser(sub, debug: argparse.ArgumentParser) -> None:
    examples = _examples(
        f"{PROG} teaching-models list",
        f"{PROG} teaching-models train --jobs 2                      # into "
        f"GMGAN_DERIVED",
        f"{PROG} teaching-models train --jobs 2 --export gmgan/teaching_models",
        "the notebooks use the shipped models; papermill -p retrain true trains theirs")
    p = _add_command(sub, debug, "teaching-models",
                     "the book's trained teaching models: list the shipped ones, or "
                     "train them again", examples, None)
    msub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    # no description or examples of their own: their help is the line in the list
    q = msub.add_parser("list", help="the shipped models", formatter_class=_Formatter,
                        parents=[debug])
    q.set_defaults(func=cmd_models_list)
    q.add_argument("--preset", default="teach", help="preset folder (teach)")
    q = msub.add_parser("score", help="score the shipped models image by image on "
                        "BSD100 + Urban100 (an hour or more on a CPU)",
                        formatter_class=_Formatter, parents=[debug])
    q.set_defaults(func=cmd_models_score)
    q.add_argument("--preset", default="teach", help="preset folder (teach)")
    q.add_argument("--sets", nargs="+", default=["BSD100", "Urban100"],
                   help="benchmark sets")
    q.add_argument("--metrics", nargs="+", default=["psnr", "ssim", "gmsd", "niqe", "hf"],
                   choices=["psnr", "ssim", "gmsd", "niqe", "pi", "hf"], metavar="METRIC",
                   help="any of psnr ssim gmsd niqe pi hf")
    q.add_argument("--runs", nargs="+", default=None,
                   help="run names (default: every shipped run)")
    q.add_argument("--limit", type=_count(1), default=None,
                   help="only the first N images of each set")
    q.add_argument("--out", default=None,
                   help="CSV to write (default: gmgan/teaching_models/scores/PRESET.csv)")
    q.add_argument("--update", action="store_true",
                   help="keep the file's other scores; replace only those of --runs")
    q.add_argument("--no-progress", action="store_true", help="no progress bar")
    q = msub.add_parser("train", help="train every model the notebooks compare (3 "
                        "seeds each; hours on a CPU)", formatter_class=_Formatter,
                        parents=[debug])
    q.set_defaults(func=cmd_models_train)
    q.add_argument("--preset", default="teach", help="preset to train (teach)")
    q.add_argument("--jobs", type=_count(1), default=1,
                   help="models trained at once, one CPU thread each")
    q.add_argument("--seeds", type=int, nargs="+", default=None,
                   help="seeds (default: 0 1 2)")
    q.add_argument("--export", default=None,
                   help="copy each finished run here (weights, config, logs), e.g. "
                        "gmgan/teaching_models")


def _add_presets_parser(sub, debug: argparse.ArgumentParser) -> None:
    examples = _examples(f"{PROG} presets", f"{PROG} presets teach > teach.yaml")
    p = _add_command(sub, debug, "presets",
                     "list the training presets, or print one as YAML", examples,
                     cmd_presets)
    p.add_argument("name", nargs="?", default=None, metavar="NAME",
                   help="preset to print")


def build_parser() -> argparse.ArgumentParser:
    """The argparse parser of ``gmgan`` with all sub-commands."""
    debug = _debug_parent()
    parser = argparse.ArgumentParser(
        prog=PROG, formatter_class=_Formatter, parents=[debug],
        description="GMGAN: 4x perceptual super-resolution (Zhu et al. 2020) in "
                    "PyTorch.",
        epilog=_examples(f"{PROG} sr photo.png -o out/ --weights G.safetensors",
                         f"{PROG} eval --weights G.safetensors --sets Set5 Set14",
                         f"{PROG} train --preset teach",
                         f"{PROG} data list",
                         f"{PROG} <command> --help"))
    parser.add_argument("--version", action="version", version=f"{PROG} {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for add_parser in (_add_sr_parser, _add_eval_parser, _add_interpolate_parser,
                       _add_train_parser, _add_data_parser, _add_teaching_models_parser,
                       _add_presets_parser):
        add_parser(sub, debug)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``gmgan`` command line on ``argv`` (default ``sys.argv[1:]``); returns the exit code.

    0: success (also after Ctrl-C or SIGTERM stopped training cleanly); 1: some inputs
    failed (``sr``, ``data fetch``); 2: a usage error or a gmgan error (one line on
    stderr, no traceback unless ``--debug`` / ``GMGAN_DEBUG=1``); 130: interrupted.
    """
    parser = build_parser()
    argv = normalise_options(sys.argv[1:] if argv is None else list(argv))
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
