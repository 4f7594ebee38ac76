"""TrainConfig as the options of ``gmgan train``: one ``--<field>`` per field.

The options are generated from the dataclass (type hints, ``help`` metadata, the
presets' values), so a new field needs no CLI code. :func:`config_from_args` builds the
final configuration in the order preset (default ``paper``) <- config file <- options.
:mod:`gmgan.cli` adds the options to its ``train`` parser and calls these functions.
"""
from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from gmgan.config import CHOICES, PRESETS, TrainConfig, apply_overrides, get_preset

__all__ = ["add_field_options", "config_from_args", "field_overrides",
           "normalise_options"]

# argparse ``dest`` prefix of the field options, kept apart from the other options
_FIELD_DEST = "field__"


def normalise_options(argv: Sequence[str]) -> list[str]:
    """``--num_block 1`` -> ``--num-block 1``: field names may have underscores.

    Only the option name is changed (not a value after ``=``), and nothing after a bare
    ``--``.
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


def add_field_options(parser: argparse.ArgumentParser) -> None:
    """``--<field>`` for every field of TrainConfig; the value is converted by
    apply_overrides.

    Options are dashed (``--num-block``; ``--num_block`` works too, see
    :func:`normalise_options`). bools (also ``bool | None``) are ``--x`` / ``--no-x``;
    tuples take several values (``--val-sets Set5 Set14``, ``--gan-betas 0 0.9``;
    ``--val-sets`` alone is the empty tuple); optional fields accept ``none``.
    """
    hints = typing.get_type_hints(TrainConfig)
    group = parser.add_argument_group(
        "TrainConfig fields (each overrides the preset and the config file)")
    for f in dataclasses.fields(TrainConfig):
        tp = hints[f.name]
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        optional = (typing.get_origin(tp) in (typing.Union, types.UnionType)
                    and type(None) in typing.get_args(tp))
        inner = args[0] if optional else tp
        help_text = f.metadata.get("help", "")
        kwargs: dict[str, Any] = {"dest": _FIELD_DEST + f.name,
                                  "default": argparse.SUPPRESS}
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
            kwargs["metavar"] = (inner.__name__.upper() if isinstance(inner, type)
                                 else "VALUE")
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
        help_text = (help_text + _preset_defaults(f.name)).replace("%", "%%")
        group.add_argument("--" + f.name.replace("_", "-"), help=help_text, **kwargs)


def _preset_defaults(name: str) -> str:
    """`` (paper: 23, teach: 3)`` when the presets differ, else `` (default: X)``."""
    values = {preset: getattr(cfg, name) for preset, cfg in PRESETS.items()}

    def show(v: Any) -> str:
        return " ".join(map(str, v)) if isinstance(v, tuple) else str(v)

    if len({repr(v) for v in values.values()}) == 1:
        return f" (default: {show(next(iter(values.values())))})"
    return " (" + ", ".join(f"{p}: {show(v)}" for p, v in values.items()) + ")"


def field_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The fields given on the command line, ``{field name: value as parsed}``."""
    return {k[len(_FIELD_DEST):]: v for k, v in vars(args).items()
            if k.startswith(_FIELD_DEST)}


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """preset (default ``paper``) <- config file (``args.config``) <- command line.

    Raises:
        FileNotFoundError / ValueError: a missing or bad config file, a bad field value
        (the message names the file or the field).
    """
    if args.config:
        # --preset names the base; the file's own `preset:` key is then ignored
        cfg = TrainConfig.from_yaml(Path(args.config).expanduser(), preset=args.preset)
    else:
        cfg = get_preset(args.preset or "paper")
    return apply_overrides(cfg, field_overrides(args))
