"""gmgan.config_options: TrainConfig's fields as ``gmgan train`` options (the command
itself: tests/test_cli.py)."""
from __future__ import annotations

import argparse
import dataclasses

from gmgan.config import TrainConfig, get_preset
from gmgan.config_options import (
    add_field_options,
    config_from_args,
    field_overrides,
    normalise_options,
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser()
    parser.add_argument("--preset", default=None)
    parser.add_argument("--config", default=None)
    add_field_options(parser)
    return parser


def test_normalise_options_changes_only_option_names_before_a_bare_dashdash():
    argv = ["--num_block", "1", "--train_set=my_set", "-o", "a_b", "--", "--keep_me"]
    assert normalise_options(argv) == ["--num-block", "1", "--train-set=my_set", "-o",
                                       "a_b", "--", "--keep_me"]


def test_only_the_given_fields_override_preset_and_file(tmp_path):
    parser = _parser()
    args = parser.parse_args(normalise_options(
        ["--preset", "teach", "--num_block", "2", "--val-sets", "--no-augment8"]))
    assert field_overrides(args) == {"num_block": "2", "val_sets": [],
                                     "augment8": False}
    cfg = config_from_args(args)
    teach = get_preset("teach")
    assert (cfg.num_block, cfg.val_sets, cfg.augment8) == (2, (), False)
    assert cfg.num_feat == teach.num_feat
    config = tmp_path / "c.yaml"
    config.write_text("preset: teach\nnum_feat: 16\n")
    args = parser.parse_args(["--config", str(config), "--num-feat", "8"])
    cfg = config_from_args(args)
    assert (cfg.num_feat, cfg.num_block) == (8, teach.num_block)


def test_every_field_has_one_option():
    dests = {a.dest for a in _parser()._actions}
    assert {f"field__{f.name}" for f in dataclasses.fields(TrainConfig)} <= dests
