"""One trainer per run folder, with real ``gmgan train`` processes.

A first ``python -m gmgan train`` trains with two DataLoader workers; a second ``gmgan train`` on
the same folder (run in this process through ``gmgan.cli.main``, the code the console script
runs) is refused before it touches anything, naming the first one's pid and host. Then the first
is killed with SIGKILL, and ``--resume`` right away (while the killed trainer's forked workers may
still be alive, for up to 5 s) takes the folder over and finishes the run.

Without the lock the second trainer would write config.yaml and checkpoints into the folder and
delete the first one's temporary checkpoint folders ("could not write checkpoint ... No such
file or directory"); with a lock that forked workers inherit (flock) the resume after kill -9
would be refused until the workers had noticed their parent's death.
"""
from __future__ import annotations

import socket

import pytest
from rel_helpers import gmgan_process, tiny_cli_args, wait_for

from gmgan.checkpoint import latest_checkpoint, load_checkpoint
from gmgan.cli import main

pytestmark = pytest.mark.timeout(300)


def test_second_trainer_is_refused_and_kill_9_does_not_block_resume(tmp_path, samples_ready, capsys):
    run = tmp_path / "run"
    ckpts = run / "pretrain" / "checkpoints"
    args = ["train", *tiny_cli_args(phase="pretrain", pretrain_iters=100_000, num_workers=2),
            "--out-dir", str(run)]
    first = gmgan_process(args, tmp_path / "first.txt")
    try:
        wait_for(lambda: latest_checkpoint(ckpts), 120, "the first trainer's first checkpoint", first)
        config = (run / "config.yaml").read_bytes()

        code = main([*args, "--resume"])
        err = capsys.readouterr().err
        assert code == 2, err
        assert f"pid {first.pid} on host {socket.gethostname()}" in err, err
        assert str(run) in err
        assert first.poll() is None, "the first trainer must be left alone"
        assert (run / "config.yaml").read_bytes() == config
    finally:
        first.kill()  # SIGKILL
        first.wait()
    log = (tmp_path / "first.txt").read_text()
    assert "Traceback" not in log and "could not write checkpoint" not in log, log[-2000:]

    step = load_checkpoint(latest_checkpoint(ckpts))["step"]
    more = ["train", *tiny_cli_args(phase="pretrain", pretrain_iters=step + 2, num_workers=2),
            "--out-dir", str(run), "--resume"]
    code = main(more)
    err = capsys.readouterr().err
    assert code == 0, err
    assert f"resuming from {ckpts}" in err, err
    assert (run / "pretrain" / "G.safetensors").is_file()
