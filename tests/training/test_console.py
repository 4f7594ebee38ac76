"""The trainer's messages through logging (gmgan.training.console): printed on stderr
as before, once per call, silenced or sent elsewhere with standard logging calls."""
from __future__ import annotations

import logging

import pytest

from gmgan.config import TrainConfig
from gmgan.train import train
from gmgan.training import messages_to

TINY = {"train_set": "samples", "num_feat": 8, "num_block": 1, "num_grow": 8,
        "d_num_feat": 8, "patch_size": 32, "batch_size": 4, "num_workers": 0,
        "pretrain_iters": 1, "gan_iters": 1, "log_every": 1, "val_every": 0,
        "ckpt_every": 0, "val_sets": (), "ema_decay": 0.9,
        "perceptual_weights": "random", "perceptual_layer": "conv1_2", "progress": False,
        "tensorboard": False}
BALANCE_LINE = "[gan] l_P uses a random VGG19: beta = 1 x l_Q / l_P = 1 x "


def tiny(tmp_path, name, **kw) -> TrainConfig:
    return TrainConfig(name=name, out_dir=str(tmp_path / name), **{**TINY, **kw})


@pytest.fixture
def setup_level():
    """Restore the level of gmgan.train.setup that a test changes."""
    logger = logging.getLogger("gmgan.train.setup")
    level = logger.level
    yield logger
    logger.setLevel(level)


def test_start_up_line_once_a_call_and_silenced_in_one_line(tmp_path, capsys,
                                                            setup_level):
    root_handlers = list(logging.getLogger().handlers)
    for name in ("a", "b"):  # a second call must not print the line twice
        train(tiny(tmp_path, name, phase="pretrain"))
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if line.startswith("training ")]
        assert len(lines) == 1, err
        want = f"training pretrain in {tmp_path / name} on cpu (speed fast: "
        assert lines[0].startswith(want) and lines[0].endswith(")")
    assert logging.getLogger().handlers == root_handlers  # the root logger untouched

    setup_level.setLevel(logging.WARNING)  # what a notebook writes
    train(tiny(tmp_path, "c", phase="pretrain"))
    assert "training " not in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore:PerceptualLoss\\(weights=None\\)")
def test_phase_lines_go_where_messages_to_says(tmp_path, capsys, setup_level):
    """The [gan] line of a random VGG19 is an INFO message of gmgan.train: on stderr by
    default, to the given function inside messages_to (and then not on stderr)."""
    setup_level.setLevel(logging.WARNING)
    train(tiny(tmp_path, "default"))
    err = capsys.readouterr().err
    assert err.count(BALANCE_LINE) == 1, err

    lines: list[str] = []
    with messages_to(lines.append):
        train(tiny(tmp_path, "captured"))
    assert capsys.readouterr().err == ""
    assert len(lines) == 1 and lines[0].startswith(BALANCE_LINE)
    assert lines[0].endswith("(balance_random_vgg)")

    train(tiny(tmp_path, "after"))  # stderr again after the block
    assert BALANCE_LINE in capsys.readouterr().err


def test_every_logged_step_at_debug_level(tmp_path, setup_level):
    trainer = logging.getLogger("gmgan.train")
    level = trainer.level
    lines: list[str] = []
    try:
        trainer.setLevel(logging.DEBUG)
        with messages_to(lines.append):
            train(tiny(tmp_path, "debug", phase="pretrain", pretrain_iters=2))
    finally:
        trainer.setLevel(level)
    row = '[pretrain] {"phase": "pretrain", "step": '
    assert len([line for line in lines if line.startswith(row)]) == 2
    assert any(line.startswith("training pretrain in ") for line in lines)


def test_messages_to_wraps_to_the_width_it_is_given():
    trainer = logging.getLogger("gmgan.train")
    words = " ".join(f"word{i}" for i in range(40))  # about 280 characters
    lines: list[str] = []
    with messages_to(lines.append, width=60):
        trainer.warning(words + "\nsecond line")
    with messages_to(lines.append):
        trainer.warning(words)
    wrapped, unwrapped = lines
    rows = wrapped.splitlines()
    assert max(map(len, rows)) <= 60 and len(rows) >= 5
    assert all(row.startswith("      ") for row in rows[1:-1])
    assert rows[-1] == "second line"  # a line of its own stays one
    assert " ".join(r.strip() for r in rows[:-1]) == words and unwrapped == words
