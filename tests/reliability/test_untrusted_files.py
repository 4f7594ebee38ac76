"""Loading weights never runs code, and the package writes only formats that cannot.

A crafted pickle whose unpickling would create a file is refused by every door that reads
weights: ``load_generator``, ``checkpoint.load_checkpoint`` (even with a manifest that matches the
crafted file), ``gmgan sr / eval / interpolate --weights`` and ``gmgan train --resume``; the file
never appears. A teach run writes its weights as safetensors and its only pickle, ``state.pt``,
loads with ``torch.load(weights_only=True)``.

Covered elsewhere: the unit-level refusal in load_generator for torch.save and raw pickle files
(tests/test_nets.py: test_malicious_pickle_refused, test_payload_is_live), the state file of
save_checkpoint (tests/test_checkpoint.py: test_state_file_loads_with_weights_only), and archive
members that would escape the cache (tests/data/test_download.py:
test_safe_extract_refuses_crafted_tar, test_safe_extract_refuses_crafted_zip,
test_safe_extract_refuses_zip_symlink).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from rel_helpers import tiny_cli_args, tiny_config

from gmgan.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from gmgan.cli import main
from gmgan.imageio import write_image
from gmgan.nets import CheckpointError as WeightsError
from gmgan.nets import RRDBNet, load_generator, save_generator
from gmgan.train import train


class Payload:
    """Unpickling this runs ``open(target, 'w').write('pwned')``."""

    def __init__(self, target: Path) -> None:
        self.target = str(target)

    def __reduce__(self):
        return (exec, (f"open({self.target!r}, 'w').write('pwned')",))


def evil_weights(path: Path, target: Path) -> Path:
    """A generator state dict with the payload tucked in, written by torch.save."""
    state = RRDBNet(num_feat=4, num_grow=2, num_block=1).state_dict()
    state["extra"] = Payload(target)
    torch.save(state, path)
    return path


def test_the_payload_is_live(tmp_path):
    """Control: a plain torch.load(weights_only=False) of the crafted file does create the file,
    so the refusals below are real."""
    target = tmp_path / "pwned"
    torch.load(evil_weights(tmp_path / "evil.pth", target), weights_only=False)
    assert target.read_text() == "pwned"


def test_load_generator_refuses(tmp_path):
    target = tmp_path / "pwned"
    with pytest.raises(WeightsError, match="refusing to load"):
        load_generator(evil_weights(tmp_path / "evil.pth", target))
    assert not target.exists()


def _one_error_line(err: str) -> str:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.strip()][-1]


@pytest.mark.parametrize("command", ["sr", "eval", "interpolate"])
def test_cli_refuses(tmp_path, capsys, command):
    target = tmp_path / "pwned"
    evil = evil_weights(tmp_path / "evil.pth", target)
    good = save_generator(RRDBNet(num_feat=4, num_grow=2, num_block=1), tmp_path / "good.safetensors")
    image = write_image(tmp_path / "in.png", np.zeros((8, 8, 3), np.uint8))
    argv = {"sr": ["sr", str(image), "-o", str(tmp_path / "out"), "--weights", str(evil)],
            "eval": ["eval", "--weights", str(evil), "--sets", "Set5", "--limit", "1",
                     "--no-progress", "--device", "cpu"],
            "interpolate": ["interpolate", str(good), str(evil), "--alpha", "0.5",
                            "-o", str(tmp_path / "mix.safetensors")]}[command]
    assert main(argv) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith("gmgan: error: ") and "refusing to load" in line and str(evil) in line
    assert not target.exists()
    assert not (tmp_path / "mix.safetensors").exists()


def _plant_evil_state(folder: Path, target: Path) -> None:
    """Replace a checkpoint's state.pt by a crafted one and update the manifest to match, as an
    attacker who can write the folder would."""
    state = torch.load(folder / "state.pt", weights_only=True)
    state["extra"]["note"] = Payload(target)
    torch.save(state, folder / "state.pt")
    data = (folder / "state.pt").read_bytes()
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["files"]["state.pt"] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_load_checkpoint_refuses_a_crafted_state_file(tmp_path):
    target = tmp_path / "pwned"
    folder = save_checkpoint(tmp_path / "ckpts", 1, models={"G": torch.nn.Linear(2, 2)},
                             extra={"phase": "pretrain"})
    _plant_evil_state(folder, target)
    with pytest.raises(CheckpointError, match="cannot read the checkpoint files") as info:
        load_checkpoint(folder)
    assert str(folder) in str(info.value)
    assert not target.exists()


def test_train_resume_refuses_a_crafted_state_file(tmp_path, capsys):
    """A run folder whose newest checkpoint was tampered with: ``gmgan train --resume`` stops
    with one line naming it, before anything is unpickled beyond plain data."""
    target = tmp_path / "pwned"
    run = tmp_path / "run"
    cfg = tiny_config(run, phase="pretrain")
    model = RRDBNet(num_feat=cfg.num_feat, num_grow=cfg.num_grow, num_block=cfg.num_block)
    folder = save_checkpoint(run / "pretrain" / "checkpoints", 2, models={"G": model, "G_ema": model},
                             extra={"phase": "pretrain"})
    _plant_evil_state(folder, target)
    assert main(["train", *tiny_cli_args(phase="pretrain"), "--out-dir", str(run), "--resume"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert line.startswith("gmgan: error: ") and "step_00000002" in line
    assert "cannot read the checkpoint files" in line
    assert not target.exists()


def test_a_teach_run_writes_safetensors_and_plain_state(tmp_path, samples_ready):
    """Every file a (tiny) two-phase teach run writes: weights are safetensors, the only pickles
    are the checkpoints' state.pt and they load with weights_only=True."""
    result = train(tiny_config(tmp_path / "run", pretrain_iters=2, gan_iters=2, ckpt_every=1))
    from safetensors import safe_open

    files = sorted(p for p in (tmp_path / "run").rglob("*") if p.is_file())
    kinds = {}
    for path in files:
        head = path.read_bytes()[:16]
        if path.suffix == ".safetensors":
            # The format: an 8-byte little-endian header length, a JSON header, raw tensor bytes.
            n = int.from_bytes(head[:8], "little")
            header = json.loads(path.read_bytes()[8:8 + n])
            assert all("dtype" in v and "data_offsets" in v for k, v in header.items() if k != "__metadata__")
            with safe_open(str(path), framework="pt") as f:
                assert len(list(f.keys())) > 0
            kinds.setdefault("safetensors", []).append(path)
        elif path.name == "state.pt":
            state = torch.load(path, weights_only=True)  # raises for anything but plain data
            assert state["format"] == "gmgan.checkpoint/1"
            kinds.setdefault("state", []).append(path)
        else:
            assert path.suffix in (".json", ".jsonl", ".yaml", ".lock"), path  # .lock: JSON or empty
            assert not head.startswith(b"\x80") and not head.startswith(b"PK"), path  # no pickle / zip
            kinds.setdefault("text", []).append(path)
    weights = {p.name for p in kinds["safetensors"]}
    assert {"G.safetensors", "G_ema.safetensors", "D.safetensors", "weights.safetensors"} <= weights
    assert len(kinds["state"]) == sum(1 for p in kinds["safetensors"] if p.name == "weights.safetensors")
    assert result.generator.suffix == ".safetensors"
