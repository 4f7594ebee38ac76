"""Training survives the faults users meet, each one really injected:

* ``kill -9`` of a ``gmgan train`` process at a random moment and in the middle of a checkpoint
  write, then ``--resume``; Ctrl-C (a real SIGINT to the process) exits 0 with a resume hint;
* a disk that fills up while a checkpoint is written (a 2 MiB tmpfs; without permission to mount
  one, a per-file size limit, RLIMIT_FSIZE), with ``on_save_error`` ``stop`` and ``continue``;
* non-finite losses: after ``max_bad_steps`` the error names the last good checkpoint, which is
  intact, and training resumes from it.

Covered elsewhere (not repeated here): simulated write failures and interrupts inside
``save_checkpoint`` (tests/test_checkpoint.py: test_failed_write_keeps_previous_and_removes_temp,
test_interrupt_during_write_leaves_no_partial_checkpoint, test_corrupt_checkpoint_is_refused_and_skipped),
skip-and-warn of one bad step and the stop after N (tests/test_train.py:
test_non_finite_loss_skips_the_step_then_stops), exact resume and an in-process Ctrl-C
(tests/test_train.py: test_resume_repeats_the_uninterrupted_run_exactly; tests/test_cli.py:
test_train_teach_tiny_and_sigint).
"""
from __future__ import annotations

import json
import os
import random
import re
import resource
import shutil
import signal
import subprocess
import time
import warnings
from pathlib import Path

import pytest
import torch
from rel_helpers import gmgan_process, tiny_cli_args, tiny_config, wait_for

import gmgan.checkpoint as ckpt_mod
import gmgan.train as train_mod
import gmgan.training as tu
from gmgan.checkpoint import (
    CheckpointError,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    save_checkpoint,
    verify_checkpoint,
)
from gmgan.cli import main
from gmgan.nets import load_generator
from gmgan.train import TrainingDiverged, train

pytestmark = pytest.mark.timeout(600)


# ---------------------------------------------------------------------- helpers

def _complete(ckpts: Path) -> list[Path]:
    return [p for p in list_checkpoints(ckpts) if (p / "manifest.json").is_file()]


def _all_checkpoints_sound(ckpts: Path) -> list[int]:
    """Every ``step_*`` folder verifies against its manifest and loads; returns their steps."""
    steps = []
    for path in list_checkpoints(ckpts):
        verify_checkpoint(path)  # raises CheckpointError for a half-written or corrupt one
        steps.append(load_checkpoint(path)["step"])
    return steps


def _temps(ckpts: Path) -> list[str]:
    return sorted(p.name for p in ckpts.glob(".tmp-*")) if ckpts.is_dir() else []


def _logged_steps(run: Path) -> list[int]:
    path = run / "pretrain" / "log.jsonl"
    steps = []
    for line in path.read_text().splitlines() if path.is_file() else []:
        try:
            steps.append(json.loads(line)["step"])
        except ValueError:  # a line torn by the kill
            pass
    return steps


def _resumed_from(output: str) -> int | None:
    found = re.findall(r"resuming from \S+step_(\d+) \(step (\d+) of", output)
    return int(found[-1][1]) if found else None


def _write_started(ckpts: Path, ignore: set[str]) -> str | None:
    """The name of a checkpoint being written right now: a new hidden temporary folder, or a
    ``step_*`` folder without its manifest (what a non-atomic writer would leave), that already
    holds a file: the kill then lands among half-written files."""
    try:
        entries = list(os.scandir(ckpts))
    except FileNotFoundError:
        return None
    for entry in entries:
        new_temp = entry.name.startswith(".tmp-step_") and "-old-" not in entry.name
        if entry.name in ignore or not (new_temp or entry.name.startswith("step_")):
            continue
        try:
            names = os.listdir(entry.path)
        except FileNotFoundError:  # renamed into place meanwhile
            continue
        if names and "manifest.json" not in names:
            return entry.name
    return None


# ---------------------------------------------------------------------- kill -9 and Ctrl-C

def test_kill_9_anywhere_and_ctrl_c_then_resume(tmp_path, samples_ready):
    """A real ``python -m gmgan train`` process is killed with SIGKILL twice (once at a random
    moment, once as soon as a checkpoint write has begun), then stopped with SIGINT; after each
    fault every checkpoint folder left verifies and loads, ``--resume`` restarts from the newest
    one, and a last ``--resume`` finishes the run with each step logged exactly once."""
    run = tmp_path / "run"
    ckpts = run / "pretrain" / "checkpoints"
    endless = 100_000  # never reached: the faults end the runs, the last one shortens the phase
    args = ["train", *tiny_cli_args(phase="pretrain", pretrain_iters=endless, keep_last=2),
            "--out-dir", str(run)]
    seed = int(os.environ.get("GMGAN_TEST_SEED", time.time_ns() % 10_000))
    rng = random.Random(seed)
    notes = [f"seed {seed}"]
    outputs = []

    def start(i: int, resume: bool, **extra) -> subprocess.Popen:
        log = tmp_path / f"out{i}.txt"
        outputs.append(log)
        more = [f"--{k.replace('_', '-')}={v}" for k, v in extra.items()]
        return gmgan_process(args + (["--resume"] if resume else []) + more, log)

    def check_after_fault(what: str) -> int:
        steps = _all_checkpoints_sound(ckpts)
        assert steps, f"no checkpoint left after {what}"
        return max(steps)

    # 1. SIGKILL at a random moment once training and checkpointing are under way.
    proc = start(0, resume=False)
    try:
        wait_for(lambda: _complete(ckpts), 300, "the first checkpoint", proc)
        delay = rng.uniform(0.0, 1.5)
        time.sleep(delay)
        proc.kill()
    finally:
        proc.kill()
        proc.wait()
    last = check_after_fault("the random kill")
    logged = _logged_steps(run)
    notes.append(f"random kill after {delay:.2f} s: last logged step {max(logged)}, newest "
                 f"checkpoint {last}, temporary folders {_temps(ckpts)}")

    # 2. SIGKILL as soon as a checkpoint write has begun; repeated until one lands inside it.
    landed_inside = None
    for attempt in range(1, 7):
        stale = set(_temps(ckpts))
        proc = start(attempt, resume=True)
        try:
            name = wait_for(lambda stale=stale: _write_started(ckpts, stale), 300,
                            "a checkpoint write", proc, poll=0.0005)
            proc.kill()
        finally:
            proc.kill()
            proc.wait()
        assert _resumed_from(outputs[-1].read_text()) == last, outputs[-1].read_text()[-2000:]
        last = check_after_fault(f"kill #{attempt} during a write")
        leftover = ckpts / name
        if leftover.exists():
            files = {p.name: p.stat().st_size for p in leftover.iterdir()}
            landed_inside = f"attempt {attempt}: killed inside the write of {name}, which held {files}"
            break
    assert landed_inside is not None, "no kill landed inside a checkpoint write in 6 attempts"
    notes.append(landed_inside + f"; newest complete checkpoint {last}")
    assert latest_checkpoint(ckpts) == ckpts / ckpt_mod.checkpoint_name(last)

    # 3. Ctrl-C: the step is finished, a checkpoint written, exit status 0 and a resume hint.
    proc = start(10, resume=True)
    try:
        wait_for(lambda: max((int(p.name[5:]) for p in _complete(ckpts)), default=0) > last, 300,
                 "a new checkpoint after the resume", proc)
        proc.send_signal(signal.SIGINT)
        code = proc.wait(timeout=180)
    finally:
        proc.kill()
        proc.wait()
    text = outputs[-1].read_text()
    assert _resumed_from(text) == last
    assert code == 0, text[-3000:]
    assert "--resume" in text and "Traceback" not in text
    stopped = int(re.search(r"stopped at step (\d+) of", text).group(1))
    assert check_after_fault("Ctrl-C") == stopped
    notes.append(f"Ctrl-C: exit 0, stopped at step {stopped}")

    # 4. Resume to the end (the phase shortened to two more steps).
    proc = start(11, resume=True, pretrain_iters=stopped + 2)
    try:
        code = proc.wait(timeout=300)
    finally:
        proc.kill()
        proc.wait()
    text = outputs[-1].read_text()
    assert code == 0, text[-3000:]
    assert _resumed_from(text) == stopped
    assert _logged_steps(run) == list(range(1, stopped + 3))  # each step once, none lost
    assert _temps(ckpts) == []  # leftovers of the kills were cleaned by the next save
    assert load_generator(run / "pretrain" / "G_ema.safetensors").num_block == 1
    print("\n".join(notes))


def test_interrupted_pruning_leaves_no_half_deleted_checkpoint(tmp_path, monkeypatch):
    """keep_last deletes old checkpoints; a kill in the middle of that deletion (simulated: the
    removal stops after one file) must not leave a ``step_*`` folder with files missing."""
    model = torch.nn.Linear(2, 2)
    for step in (1, 2):
        save_checkpoint(tmp_path, step, models={"G": model}, keep_last=2)
    real_rmtree = shutil.rmtree

    def killed_rmtree(path, *args, **kwargs):
        files = sorted(Path(path).iterdir())
        files[0].unlink()  # one file gone, then the process dies
        raise KeyboardInterrupt

    monkeypatch.setattr(shutil, "rmtree", killed_rmtree)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(tmp_path, 3, models={"G": model}, keep_last=2)
    monkeypatch.setattr(shutil, "rmtree", real_rmtree)
    assert _all_checkpoints_sound(tmp_path) == [2, 3]
    save_checkpoint(tmp_path, 4, models={"G": model}, keep_last=2)  # cleans what was left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_00000003", "step_00000004"]


# ---------------------------------------------------------------------- a full disk

class SmallDisk:
    """A folder on a 2 MiB tmpfs (``fill`` leaves ``free`` bytes by writing a ballast file), or,
    where mounting is not permitted, an ordinary folder with a per-file size limit
    (RLIMIT_FSIZE = ``free``, SIGXFSZ ignored, so that writes fail with EFBIG)."""

    SIZE = 2 << 20

    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir()
        self.kind = "rlimit"
        if not os.environ.get("GMGAN_TEST_NO_TMPFS"):  # set it to try the fallback where root
            mount = ["mount", "-t", "tmpfs", "-o", f"size={self.SIZE}", "tmpfs", str(path)]
            try:
                proc = subprocess.run(mount, capture_output=True, text=True, check=False)
            except OSError:  # no mount command
                proc = None
            if proc is not None and proc.returncode == 0:
                self.kind = "tmpfs"
        self._limits = None
        self._sigxfsz = None

    @property
    def error(self) -> str:
        """The OS message a write into the full disk gets."""
        return "No space left on device" if self.kind == "tmpfs" else "File too large"

    def fill(self, free: int) -> None:
        if self.kind == "tmpfs":
            st = os.statvfs(self.path)
            ballast = st.f_bavail * st.f_frsize - free
            with open(self.path / "ballast", "wb") as f:
                f.write(b"\0" * max(0, ballast))
        else:
            self._limits = resource.getrlimit(resource.RLIMIT_FSIZE)
            self._sigxfsz = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (free, self._limits[1]))

    def make_room(self) -> None:
        if self.kind == "tmpfs":
            (self.path / "ballast").unlink(missing_ok=True)
        elif self._limits is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, self._limits)
            signal.signal(signal.SIGXFSZ, self._sigxfsz)
            self._limits = None

    def close(self) -> None:
        self.make_room()
        if self.kind == "tmpfs":
            subprocess.run(["umount", str(self.path)], check=False)


@pytest.fixture
def small_disk(tmp_path):
    disk = SmallDisk(tmp_path / "disk")
    try:
        yield disk
    finally:
        disk.close()


def _at_step(monkeypatch, actions: dict[int, callable]) -> None:
    """Run ``actions[step]()`` just before the trainer's book-keeping of that step (which logs,
    then writes the checkpoint)."""
    real = tu.PhaseRun.finish_step

    def finish_step(self, step, terms):
        if step in actions:
            actions[step]()
        return real(self, step, terms)

    monkeypatch.setattr(tu.PhaseRun, "finish_step", finish_step)


@pytest.mark.parametrize("victim", ["checkpoint", "log"])
def test_disk_full_on_save_error_stop(small_disk, monkeypatch, capsys, victim):
    """The disk fills up before the checkpoint of step 3 (room is left for log lines), or
    completely before the first log line: ``gmgan train`` stops with one clear line naming the
    file and the OS error (exit 2); the checkpoints written before are intact, no temporary
    folder is left."""
    run = small_disk.path / "run"
    step, free = (3, 32 << 10) if victim == "checkpoint" else (1, 0)
    _at_step(monkeypatch, {step: lambda: small_disk.fill(free=free)})
    code = main(["train", *tiny_cli_args(phase="pretrain", pretrain_iters=5, keep_last=5,
                                         on_save_error="stop"), "--out-dir", str(run)])
    err = capsys.readouterr().err
    line = err.strip().splitlines()[-1]
    print(f"[{small_disk.kind}] {line}")
    assert code == 2 and "Traceback" not in err
    assert small_disk.error in line
    ckpts = run / "pretrain" / "checkpoints"
    if victim == "checkpoint":
        assert line.startswith("gmgan: error: could not write checkpoint")
        assert "step_00000003" in line and "unchanged" in line
        small_disk.make_room()
        assert _all_checkpoints_sound(ckpts) == [1, 2]
    else:
        assert line.startswith(f"gmgan: error: could not write the training log {run / 'pretrain' / 'log.jsonl'}")
        small_disk.make_room()
        assert _all_checkpoints_sound(ckpts) == []
    assert _temps(ckpts) == []
    assert not (run / "pretrain" / "G.safetensors").exists()


@pytest.mark.parametrize("victim", ["checkpoint", "log"])
def test_disk_full_on_save_error_continue(small_disk, monkeypatch, victim):
    """``on_save_error="continue"``: the checkpoints written while the disk is full fail with a
    warning each (and, when not even a log line fits, the log with one warning), training goes on;
    once there is room again (before step 4) the next checkpoints and the final weights are
    written."""
    run = small_disk.path / "run"
    step, free = (2, 32 << 10) if victim == "checkpoint" else (1, 0)
    _at_step(monkeypatch, {step: lambda: small_disk.fill(free=free), 4: small_disk.make_room})
    cfg = tiny_config(run, phase="pretrain", pretrain_iters=5, keep_last=5, on_save_error="continue")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = train(cfg)
    failed = [str(w.message) for w in caught if "continues without" in str(w.message)]
    logs = [str(w.message) for w in caught if "training log" in str(w.message)]
    print(f"[{small_disk.kind}] " + " | ".join(logs + failed))
    assert [m.split("checkpoints/")[1][:13] for m in failed] == \
        [f"step_{s:08d}" for s in range(step, 4)]
    assert all(small_disk.error in m for m in failed + logs)
    assert [r["step"] for r in result.history] == [1, 2, 3, 4, 5]  # training went on
    ckpts = run / "pretrain" / "checkpoints"
    assert _all_checkpoints_sound(ckpts) == list(range(1, step)) + [4, 5]
    assert _temps(ckpts) == []
    assert load_generator(result.weights["pretrain"]["G"]).num_feat == 8
    if victim == "log":
        assert len(logs) == 1 and "kept in memory" in logs[0]
        assert _logged_steps(run) == [4, 5]  # the rows of the full disk exist in memory only


def test_disk_full_to_the_end_then_resume(small_disk, monkeypatch):
    """``on_save_error="continue"`` with a disk that stays full: the phase cannot write its final
    weights, says so naming the folder and the newest checkpoint, and leaves no partial file;
    after making room, ``resume`` redoes the steps after that checkpoint and writes them."""
    run = small_disk.path / "run"
    _at_step(monkeypatch, {3: lambda: small_disk.fill(free=32 << 10)})
    cfg = tiny_config(run, phase="pretrain", pretrain_iters=4, keep_last=2, on_save_error="continue")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the two failed checkpoints
        with pytest.raises(CheckpointError) as info:
            train(cfg)
    message = str(info.value)
    print(f"[{small_disk.kind}] {message}")
    assert f"could not write the final weights in {run / 'pretrain'}" in message
    assert small_disk.error in message and "step_00000002" in message and "--resume" in message
    assert not list((run / "pretrain").glob("*.safetensors*"))  # no partial weight file left
    small_disk.make_room()
    monkeypatch.undo()
    result = train(tiny_config(run, phase="pretrain", pretrain_iters=4, keep_last=2, resume=True))
    assert [r["step"] for r in result.history] == [1, 2, 3, 4]
    assert load_generator(result.weights["pretrain"]["G_ema"]).num_block == 1


# ---------------------------------------------------------------------- non-finite losses

def test_divergence_keeps_and_names_the_last_good_checkpoint(tmp_path, monkeypatch):
    """NaN losses from step 3 on: steps 3 and 4 are skipped, then training stops; the error names
    step 2's checkpoint, whose files are byte for byte those written before the NaNs, and a
    resume (with the fault gone) continues from it to the end."""
    real_mse = train_mod.mse_loss
    calls = {"n": 0}

    def mse(sr, hr):
        calls["n"] += 1
        loss = real_mse(sr, hr)
        return loss * float("nan") if calls["n"] >= 3 else loss

    monkeypatch.setattr(train_mod, "mse_loss", mse)
    cfg = tiny_config(tmp_path / "run", phase="pretrain", pretrain_iters=6, ckpt_every=2,
                      max_bad_steps=2)
    ckpts = tmp_path / "run" / "pretrain" / "checkpoints"
    snapshot = {}

    def remember():  # step 3 begins: checkpoint 2 is on disk
        snapshot.update({p.name: p.read_bytes() for p in (ckpts / "step_00000002").iterdir()})

    _at_step(monkeypatch, {3: remember})
    with pytest.warns(RuntimeWarning, match="non-finite"), pytest.raises(TrainingDiverged) as info:
        train(cfg)
    message = str(info.value)
    assert "2 consecutive steps (up to step 4)" in message
    assert str(ckpts / "step_00000002") in message
    assert [p.name for p in list_checkpoints(ckpts)] == ["step_00000002"]
    assert {p.name: p.read_bytes() for p in (ckpts / "step_00000002").iterdir()} == snapshot
    weights = load_checkpoint(ckpts / "step_00000002")["models"]["G"]
    assert all(torch.isfinite(t).all() for t in weights.values())

    monkeypatch.setattr(train_mod, "mse_loss", real_mse)
    result = train(tiny_config(tmp_path / "run", phase="pretrain", pretrain_iters=6, ckpt_every=2,
                               max_bad_steps=2, resume=True))
    assert [r["step"] for r in result.history] == [1, 2, 3, 4, 5, 6]
    assert all(r["bad_in_a_row"] == 0 for r in result.history[2:])
