"""SIGTERM (``kill``, ``docker stop``, Slurm preemption) stops training as Ctrl-C does
(issue 22): the step is finished, a checkpoint written, the resume hint printed, exit
status 0; the same for every rank under torchrun, which passes the signal on. A repeated
SIGTERM changes nothing; the previous signal handlers are back after training.

Covered elsewhere (not repeated): Ctrl-C of a real process and kill -9 at any moment
(test_crash_recovery.py: test_kill_9_anywhere_and_ctrl_c_then_resume); exact resume
(tests/test_train.py: test_resume_repeats_the_uninterrupted_run_exactly).
"""
from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from rel_helpers import child_env, gmgan_process, tiny_cli_args, wait_for

from gmgan.checkpoint import latest_checkpoint, list_checkpoints
from gmgan.training import GracefulStop

pytestmark = pytest.mark.timeout(600)

ENDLESS = 100_000  # never reached: the signal ends the run
# No periodic checkpoint: the one on disk after the signal is the one the signal made.
TRAIN = tiny_cli_args(phase="pretrain", pretrain_iters=ENDLESS, ckpt_every=1000)
STOPPING = "SIGTERM: finishing this step and writing a checkpoint"


def _newest_complete(ckpts: Path) -> int:
    done = [p for p in list_checkpoints(ckpts) if (p / "manifest.json").is_file()]
    return max((int(p.name.split("_")[1]) for p in done), default=0)


def _two_steps_logged(run: Path):
    log = run / "pretrain" / "log.jsonl"
    return lambda: log.is_file() and log.read_text().count("\n") >= 2


def _exit_status(proc: subprocess.Popen, timeout: float, *, run: Path | None = None,
                 send: Callable[[subprocess.Popen], None] | None = None) -> int:
    """The exit status of ``proc``, waiting at most ``timeout`` s. With ``send``, first
    wait until ``run`` has logged two steps, then call ``send(proc)`` (the signal). Whatever
    happens, the process is killed and reaped: no trainer outlives its test."""
    try:
        if send is not None:
            wait_for(_two_steps_logged(run), 300, "two logged steps", proc)
            send(proc)
        return proc.wait(timeout=timeout)
    finally:
        proc.kill()
        proc.wait()


def _sigterm(proc: subprocess.Popen) -> None:
    proc.send_signal(signal.SIGTERM)


def test_graceful_stop_catches_sigterm_and_restores_the_handlers():
    seen = []

    def previous(signum, frame):
        seen.append(signum)

    old = signal.signal(signal.SIGTERM, previous)
    # Ctrl-C's handler before: Python's default, or SIG_IGN in a job started in the background
    sigint_before = signal.getsignal(signal.SIGINT)
    try:
        with GracefulStop() as stop:
            os.kill(os.getpid(), signal.SIGTERM)
            assert stop.requested and seen == []
            os.kill(os.getpid(), signal.SIGTERM)  # repeated: still just a request
            with pytest.raises(KeyboardInterrupt):  # Ctrl-C after it aborts at once
                os.kill(os.getpid(), signal.SIGINT)
        assert signal.getsignal(signal.SIGTERM) is previous
        assert signal.getsignal(signal.SIGINT) is sigint_before
    finally:
        signal.signal(signal.SIGTERM, old)


def test_sigterm_checkpoints_and_exits_0_then_resumes(tmp_path, samples_ready):
    run = tmp_path / "run"
    ckpts = run / "pretrain" / "checkpoints"
    log = tmp_path / "out.txt"
    proc = gmgan_process(["train", *TRAIN, "--out-dir", str(run)], log)
    code = _exit_status(proc, 180, run=run, send=_sigterm)
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert STOPPING in text
    assert "Traceback" not in text and "--resume" in text
    stopped = int(re.search(r"stopped at step (\d+) of", text).group(1))
    assert stopped >= 2 and _newest_complete(ckpts) == stopped  # nothing lost

    log2 = tmp_path / "out2.txt"
    proc = gmgan_process(["train", *TRAIN, "--out-dir", str(run), "--resume",
                          f"--pretrain-iters={stopped + 1}"], log2)
    code = _exit_status(proc, 300)
    assert code == 0, log2.read_text()[-3000:]
    assert (run / "pretrain" / "G_ema.safetensors").is_file()


def test_sigterm_to_the_process_group_spares_the_loader_workers(tmp_path,
                                                               samples_ready):
    """Slurm (and ``kill -- -PGID``) signal every process of the job, DataLoader workers
    included: they leave SIGTERM to the trainer, which still writes its checkpoint."""
    run = tmp_path / "run"
    log = tmp_path / "out.txt"
    args = [sys.executable, "-m", "gmgan", "train", *TRAIN, "--num-workers", "2",
            "--out-dir", str(run)]
    with open(log, "ab") as handle:
        proc = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT,
                                env=child_env(), start_new_session=True)
    code = _exit_status(proc, 180, run=run,
                        send=lambda proc: os.killpg(proc.pid, signal.SIGTERM))
    text = log.read_text()
    assert code == 0, text[-3000:]
    assert "killed by signal" not in text and "--resume" in text
    stopped = int(re.search(r"stopped at step (\d+) of", text).group(1))
    assert _newest_complete(run / "pretrain" / "checkpoints") == stopped


def test_sigterm_to_torchrun_stops_every_rank_at_one_checkpoint(tmp_path,
                                                               samples_ready):
    """torchrun forwards SIGTERM to both ranks: each finishes the step, they agree on
    it, rank 0 writes its checkpoint and prints the hint, and both exit before
    torchrun's SIGKILL."""
    run = tmp_path / "run"
    ckpts = run / "pretrain" / "checkpoints"
    log = tmp_path / "out.txt"
    args = [sys.executable, "-m", "torch.distributed.run", "--standalone",
            "--nproc_per_node", "2", "-m", "gmgan", "train", *TRAIN,
            "--out-dir", str(run)]
    with open(log, "ab") as handle:
        proc = subprocess.Popen(args, stdout=handle, stderr=subprocess.STDOUT,
                                env=child_env())
    # torchrun reports the signal with an exit status of its own: not checked
    _exit_status(proc, 120, run=run, send=_sigterm)
    text = log.read_text()
    assert text.count(STOPPING) == 2, text[-4000:]  # one per rank
    stopped = int(re.search(r"stopped at step (\d+) of", text).group(1))
    assert stopped >= 2 and _newest_complete(ckpts) == stopped, text[-4000:]
    assert latest_checkpoint(ckpts).name.endswith(str(stopped))
    assert "--resume" in text
