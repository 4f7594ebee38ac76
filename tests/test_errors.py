"""gmgan.errors: one CheckpointError for every checkpoint or weights file gmgan cannot use,
the same class under its old names, caught as the ValueError and the RuntimeError that the
two former classes were, and each message naming the file."""
from __future__ import annotations

import re

import pytest

import gmgan.checkpoint
import gmgan.nets
from gmgan.checkpoint import load_checkpoint, save_checkpoint
from gmgan.errors import CheckpointError
from gmgan.losses import PerceptualLoss
from gmgan.nets import RRDBNet, load_generator


def test_one_class_under_every_name():
    assert gmgan.nets.CheckpointError is CheckpointError
    assert gmgan.checkpoint.CheckpointError is CheckpointError
    assert issubclass(CheckpointError, ValueError) and issubclass(CheckpointError, RuntimeError)


def test_every_bad_file_raises_it_naming_the_file(tmp_path):
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"neither a pickle nor a zip")
    named = re.escape(str(junk))
    for read in (load_generator, lambda p: PerceptualLoss("conv1_2", weights=p)):
        with pytest.raises(CheckpointError, match=named):
            read(junk)
    # a training checkpoint with a corrupt weights file
    tiny = RRDBNet(num_feat=8, num_block=1, num_grow=4)
    folder = save_checkpoint(tmp_path / "run", 1, models={"G": tiny})
    weights = folder / "weights.safetensors"
    weights.write_bytes(weights.read_bytes()[:-8] + b"corrupt!")
    with pytest.raises(CheckpointError, match=re.escape(str(weights))):
        load_checkpoint(folder)
    # and callers that catch either of the two former classes still catch it
    for former in (ValueError, RuntimeError):
        with pytest.raises(former):
            load_generator(junk)
        with pytest.raises(former):
            load_checkpoint(folder)
