"""A bad ``gmgan train --config`` file gets a clear error naming the file (issue 22): a
list where a preset name belongs, and bad values also when ``--preset`` names the base.

Covered elsewhere (not repeated): unknown keys, bad values and unknown presets without
``--preset`` (tests/test_config.py: test_bad_values_name_the_field,
test_unknown_keys_and_presets_are_listed); a missing config file (tests/test_cli.py:
test_train_errors).
"""
from __future__ import annotations

import pytest

from gmgan.cli import main
from gmgan.config import TrainConfig


def _error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


def _print_config(config, *preset: str) -> int:
    """``gmgan train [--preset P] --config FILE --print-config``; the exit status."""
    return main(["train", *preset, "--config", str(config), "--print-config"])


def test_a_list_as_preset_names_the_file_and_the_presets(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("preset: [teach]\nbatch_size: 4\n")
    assert _print_config(config) == 2
    err = _error(capsys)
    assert (f"gmgan: error: {config}: unknown preset ['teach']; known presets: "
            f"paper") in err
    assert "unhashable" not in err
    with pytest.raises(ValueError, match=r"run.yaml: unknown preset \['teach'\]"):
        TrainConfig.from_yaml(config)


@pytest.mark.parametrize("text, needle", [
    ("batch_size: many\n", "TrainConfig.batch_size must be an integer; got 'many'"),
    ("no_such_field: 1\n", "unknown TrainConfig field(s) no_such_field"),
    ("- a\n- b\n", "expected a mapping of field: value"),
    ("batch_size: [\n", "not valid YAML"),
])
def test_preset_option_with_a_bad_config_file_names_the_file(tmp_path, capsys, text,
                                                             needle):
    config = tmp_path / "bad.yaml"
    config.write_text(text)
    assert _print_config(config, "--preset", "teach") == 2
    err = _error(capsys)
    assert f"gmgan: error: {config}: " in err and needle in err, err


def test_preset_option_overrides_the_files_preset(tmp_path, capsys):
    config = tmp_path / "ok.yaml"
    config.write_text("preset: paper\nbatch_size: 3\n")
    assert _print_config(config, "--preset", "teach") == 0
    cfg = TrainConfig.from_yaml(capsys.readouterr().out)
    teach, paper = (TrainConfig.from_yaml(f"preset: {p}\n") for p in ("teach", "paper"))
    assert cfg.batch_size == 3 and cfg.num_block == teach.num_block != paper.num_block
