"""The trainer: end-to-end runs, exact resume, the NaN guard, EMA, the data order, DDP (gloo)."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import types

import numpy as np
import pytest
import torch

import gmgan.train as train_mod
import gmgan.training as tu
import gmgan.training.phase_run as phase_run_mod
from gmgan.checkpoint import CheckpointError, latest_checkpoint, list_checkpoints, load_checkpoint
from gmgan.config import TrainConfig, apply_overrides
from gmgan.nets import load_generator
from gmgan.train import TrainingDiverged, train

# A generator and critic small enough for a few steps per second on one CPU core.
TINY = {"train_set": "samples", "num_feat": 8, "num_block": 1, "num_grow": 8, "d_num_feat": 8,
        "patch_size": 32, "batch_size": 4, "num_workers": 0, "pretrain_iters": 4, "gan_iters": 4,
        "log_every": 1, "val_every": 0, "ckpt_every": 2, "keep_last": 5, "val_sets": (),
        "perceptual_weights": "none", "progress": False, "tensorboard": False, "ema_decay": 0.9}


def tiny(tmp_path, name="run", **kw) -> TrainConfig:
    return apply_overrides(TrainConfig(name=name, out_dir=str(tmp_path / name), **TINY), kw)


def _losses(history):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in history]


def _weights(path):
    from safetensors.torch import load_file
    return load_file(str(path))


# ---------------------------------------------------------------------- whole runs


def test_tiny_run_writes_loadable_weights(tmp_path):
    cfg = tiny(tmp_path, pretrain_iters=3, gan_iters=2, tensorboard=True)
    result = train(cfg)
    run = tmp_path / "run"
    assert result.run_dir == run and not result.interrupted
    assert set(result.weights) == {"pretrain", "gan"}
    assert set(result.weights["gan"]) == {"G", "G_ema", "D"}
    for phase in ("pretrain", "gan"):
        for name in ("G", "G_ema"):
            model = load_generator(result.weights[phase][name])
            assert model.config == {"in_channels": 3, "out_channels": 3, "num_feat": 8, "num_block": 1,
                                    "num_grow": 8, "scale": 4}
    assert result.generator == run / "gan" / "G_ema.safetensors"
    assert [r["step"] for r in result.history] == [1, 2, 3, 1, 2]
    gan_row = result.history[-1]
    assert {"mse", "quality", "adversarial", "l_G", "wasserstein", "gp", "l_D", "lr_G", "lr_D",
            "grad_norm_G", "grad_norm_D"} <= set(gan_row)
    assert "perceptual" not in gan_row  # perceptual_weights="none": the term is off
    assert gan_row["l_G"] == pytest.approx(1e-2 * gan_row["mse"] + gan_row["quality"]
                                           + 5e-3 * gan_row["adversarial"], rel=1e-5)
    logged = [json.loads(x) for x in (run / "gan" / "log.jsonl").read_text().splitlines()]
    assert _losses(logged) == _losses(result.history[3:])
    assert TrainConfig.from_yaml(run / "config.yaml") == cfg
    assert list((run / "gan" / "tb").glob("events.out.tfevents.*"))
    assert set(result.seconds) == {"pretrain", "gan"}


@pytest.mark.parametrize("amp", ["bf16", "fp16"])
def test_mixed_precision_and_channels_last_run(tmp_path, amp):
    result = train(tiny(tmp_path, amp=amp, channels_last=True, pretrain_iters=2, gan_iters=1))
    assert [r["bad_in_a_row"] for r in result.history] == [0, 0, 0]
    for row in result.history:
        assert np.isfinite([v for k, v in row.items() if k not in ("phase", "grad_norm_G", "grad_norm_D")]).all()
    weights = _weights(result.weights["gan"]["G"])
    assert all(t.dtype == torch.float32 and torch.isfinite(t).all() for t in weights.values())


def test_fp16_gradient_penalty_gets_the_critics_grad_scaler(tmp_path, monkeypatch):
    """Under fp16 the critic's GradScaler reaches the gradient penalty (PyTorch's AMP recipe,
    tests/test_losses.py), and the first steps are not lost to an fp16 overflow of it."""
    import gmgan.losses as losses_mod

    seen = []
    real_penalty = losses_mod.gradient_penalty

    def spy(*args, scaler=None, **kwargs):
        seen.append(scaler)
        return real_penalty(*args, scaler=scaler, **kwargs)

    monkeypatch.setattr(losses_mod, "gradient_penalty", spy)
    result = train(tiny(tmp_path, amp="fp16", pretrain_iters=1, gan_iters=2))
    assert len(seen) == 2 and all(s is not None and s.is_enabled() for s in seen)
    assert [r["bad_in_a_row"] for r in result.history if r["phase"] == "gan"] == [0, 0]
    assert all(np.isfinite(r["gp"]) for r in result.history if r["phase"] == "gan")


def test_phase_2_averages_with_its_own_decay(tmp_path, monkeypatch):
    """gan_ema_decay sets phase 2's moving average; phase 1 keeps ema_decay."""
    seen = {}
    real_init = tu.EMA.__init__

    def init(self, model, decay):
        seen.setdefault(decay, 0)
        seen[decay] += 1
        real_init(self, model, decay)

    monkeypatch.setattr(tu.EMA, "__init__", init)
    train(tiny(tmp_path, pretrain_iters=1, gan_iters=1, ema_decay=0.9, gan_ema_decay=0.5))
    assert seen == {0.9: 1, 0.5: 1}


def test_gan_starts_from_the_pretrained_ema_generator(tmp_path):
    result = train(tiny(tmp_path, pretrain_iters=2, gan_iters=0))
    start, ema = _weights(result.weights["gan"]["G"]), _weights(result.weights["pretrain"]["G_ema"])
    assert all(torch.equal(start[k], ema[k]) for k in ema)
    raw = _weights(result.weights["pretrain"]["G"])
    assert not all(torch.equal(raw[k], ema[k]) for k in ema)


def test_gan_without_pretrained_generator_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="Run phase 'pretrain'"):
        train(tiny(tmp_path, phase="gan"))
    other = tiny(tmp_path, name="small", pretrain_iters=1, phase="pretrain")
    train(other)
    with pytest.raises(ValueError, match="num_block=1 \\(config: 2\\)"):
        train(tiny(tmp_path, name="big", phase="gan", num_block=2,
                   pretrained_g=str(tmp_path / "small" / "pretrain" / "G.safetensors")))


def test_unknown_training_set_fails_before_anything_is_written(tmp_path):
    cfg = tiny(tmp_path, train_set="NoSuchSet")
    with pytest.raises(FileNotFoundError, match="'NoSuchSet' is neither a known data set .*T91"):
        train(cfg)
    assert not any(tmp_path.rglob("config.yaml"))


def test_existing_run_needs_resume(tmp_path):
    train(tiny(tmp_path, phase="pretrain", pretrain_iters=2))
    with pytest.raises(FileExistsError, match="resume=True"):
        train(tiny(tmp_path, phase="pretrain", pretrain_iters=2))


@pytest.mark.parametrize("speed", ["fast", "reference"])
def test_resume_repeats_the_uninterrupted_run_exactly(tmp_path, monkeypatch, capsys, speed):
    """Ctrl-C in phase 1, then a crash in phase 2 after its last checkpoint: resuming twice gives
    the same logged losses, bit for bit, and the same final weights as one uninterrupted run
    (in each speed mode: a mode is deterministic, and a resume stays in the run's mode)."""
    monkeypatch.setitem(TINY, "speed", speed)
    straight = train(tiny(tmp_path, name="straight"))

    real_finish_step = tu.PhaseRun.finish_step
    events = {("pretrain", 3): "sigint", ("gan", 3): "crash"}

    def finish_step(self, step, terms):
        event = events.pop((self.phase, step), None)
        if event == "sigint":
            os.kill(os.getpid(), signal.SIGINT)  # handled by train(): finish the step, save, return
        elif event == "crash":
            raise RuntimeError("simulated crash")  # last checkpoint: gan step 2
        return real_finish_step(self, step, terms)

    monkeypatch.setattr(tu.PhaseRun, "finish_step", finish_step)
    first = train(tiny(tmp_path, name="resumed"))
    assert first.interrupted and "pretrain" not in first.weights
    assert "--resume" in capsys.readouterr().err
    assert [p.name for p in list_checkpoints(tmp_path / "resumed" / "pretrain" / "checkpoints")] == [
        "step_00000002", "step_00000003"]
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tiny(tmp_path, name="resumed", resume=True))
    last = train(tiny(tmp_path, name="resumed", resume=True))

    assert not last.interrupted
    assert _losses(last.history) == _losses(straight.history)
    assert len(last.history) == 8
    for phase in ("pretrain", "gan"):
        for name in ("G", "G_ema") + (("D",) if phase == "gan" else ()):
            a, b = _weights(straight.weights[phase][name]), _weights(last.weights[phase][name])
            assert all(torch.equal(a[k], b[k]) for k in a), (phase, name)
    again = train(tiny(tmp_path, name="resumed", resume=True))  # everything done: nothing to train
    assert _losses(again.history) == _losses(straight.history)


def _one_update(tmp_path, phase, speed, **kw):
    """A tiny run's first update of ``phase`` in ``speed`` mode, on the phase's first batch:
    (logged terms as floats, {name: weights after the update}, {name: weights before})."""
    torch.manual_seed(0)
    g_path = tmp_path / "G0.safetensors"
    if not g_path.exists():
        from gmgan.nets import save_generator

        save_generator(train_mod.build_generator(tiny(tmp_path)), g_path)
    cfg = tiny(tmp_path, name=f"{phase}-{speed}", phase=phase, speed=speed, pretrained_g=str(g_path), **kw)
    env = tu.setup(cfg)
    try:
        build = train_mod.pretrain_session if phase == "pretrain" else train_mod.gan_session
        session = build(cfg, env, tu.GracefulStop())
        seed = tu.phase_seed(cfg.seed, phase)
        lr, hr = tu.first_batch(train_mod.training_patches(cfg, env, seed), cfg.batch_size, seed)
        fmt = torch.channels_last if session.run.cfg.channels_last else torch.contiguous_format
        nets = session.run.raw
        before = {k: [p.detach().clone() for p in m.parameters()] for k, m in nets.items()}
        torch.manual_seed(7)
        terms = session.update(lr.contiguous(memory_format=fmt), hr.contiguous(memory_format=fmt))
        after = {k: [p.detach().clone() for p in m.parameters()] for k, m in nets.items()}
        return ({k: float(v.detach()) if isinstance(v, torch.Tensor) else float(v) for k, v in terms.items()},
                after, before, session.plan)
    finally:
        env.close()


@pytest.mark.parametrize("phase", ["pretrain", "gan"])
def test_the_fast_default_update_matches_eager_fp32(tmp_path, phase):
    """One update of the default mode (fast: channels-last, one G forward, HR and SR in one
    critic forward, foreach Adam) against eager fp32 (reference), from the same weights and
    batch: the loss terms agree to 1e-5 relative (floor 1e-6; l_GA 1e-3), and the weights'
    change to 1e-3 relative L2 in phase 1, 2e-2 in phase 2.
    Adam's first step is about lr * sign(gradient): a weight whose gradient is at rounding level
    may move the other way, and in phase 2 G's gradient passes through the critic just updated
    (measured on this tiny run: 7.4e-3 for G; the teach preset's benchmark row shows its own)."""
    kw = {"perceptual_weights": "random"} if phase == "gan" else {}
    fast, w_fast, w0_fast, plan = _one_update(tmp_path, phase, "fast", **kw)
    ref, w_ref, w0_ref, ref_plan = _one_update(tmp_path, phase, "reference", **kw)
    assert plan.channels_last and plan.one_generator_forward and plan.foreach_adam and plan.amp == "none"
    assert not (ref_plan.channels_last or ref_plan.one_generator_forward or ref_plan.foreach_adam)
    assert set(fast) == set(ref) and fast["mse"] > 0
    for k in ref:
        # l_GA is scored by the critic just updated, whose first Adam step (about
        # lr * sign(g) per weight) amplifies rounding-level gradient differences (the
        # fast critic scores HR and SR as one batch): measured 2.4e-4 relative here.
        rtol = 1e-3 if k == "adversarial" else 1e-5
        assert abs(fast[k] - ref[k]) <= rtol * abs(ref[k]) + 1e-6, (k, fast[k], ref[k])
    for name in w_ref:
        assert all(torch.equal(a, b) for a, b in zip(w0_fast[name], w0_ref[name]))  # same start
        d_fast = torch.cat([(a - b).flatten() for a, b in zip(w_fast[name], w0_fast[name])])
        d_ref = torch.cat([(a - b).flatten() for a, b in zip(w_ref[name], w0_ref[name])])
        assert d_ref.norm() > 0
        assert float((d_fast - d_ref).norm() / d_ref.norm()) < (1e-3 if phase == "pretrain" else 2e-2), name


def test_one_generator_forward_is_exact(tmp_path, monkeypatch):
    """Reusing G(LR) for the critic and the generator loss changes nothing: with the memory
    format and Adam of the reference mode, phase 2's update is bit-equal to two forwards."""
    from gmgan.speed import SpeedPlan

    real_plan = train_mod.speed_plan

    def plan(cfg, env):  # the fast plan without channels-last and foreach
        p = real_plan(cfg, env)
        return SpeedPlan(p.mode, False, p.one_generator_forward, False, p.amp) if cfg.speed == "fast" else p

    monkeypatch.setattr(train_mod, "speed_plan", plan)
    fast, w_fast, _, used = _one_update(tmp_path, "gan", "fast", perceptual_weights="random")
    ref, w_ref, _, _ = _one_update(tmp_path, "gan", "reference", perceptual_weights="random")
    assert used.one_generator_forward
    assert fast == ref
    assert all(torch.equal(a, b) for k in w_ref for a, b in zip(w_fast[k], w_ref[k]))


def test_the_start_up_line_names_the_speed_mode(tmp_path, capsys):
    train(tiny(tmp_path, name="fast", phase="pretrain", pretrain_iters=1))
    train(tiny(tmp_path, name="ref", phase="pretrain", pretrain_iters=1, speed="reference"))
    err = capsys.readouterr().err
    threads = f"{torch.get_num_threads()} thread"
    assert (f"on cpu (speed fast: fp32, channels-last, one G forward per GAN update, "
            f"D(HR) and D(SR) in one forward, foreach Adam, {threads}") in err
    assert f"on cpu (speed reference: fp32, {threads}" in err


def test_a_resumed_phase_counts_the_seconds_before_the_interruption(tmp_path, monkeypatch):
    """The seconds of a phase (log rows, TrainResult.seconds) go on from the checkpoint after a
    resume instead of starting again from zero. A fake clock ticks one second per reading."""
    clock = {"t": 0.0}

    def perf_counter():
        clock["t"] += 1.0
        return clock["t"]

    fake_time = types.SimpleNamespace(perf_counter=perf_counter)
    monkeypatch.setattr(phase_run_mod, "time", fake_time)
    real_finish_step = tu.PhaseRun.finish_step

    def finish_step(self, step, terms):
        if step == 3 and not hasattr(finish_step, "done"):
            finish_step.done = True
            os.kill(os.getpid(), signal.SIGINT)
        return real_finish_step(self, step, terms)

    monkeypatch.setattr(tu.PhaseRun, "finish_step", finish_step)
    cfg = tiny(tmp_path, phase="pretrain", pretrain_iters=6, ckpt_every=1)
    first = train(cfg)
    assert first.interrupted
    before = first.history[-1]["seconds"]
    clock["t"] += 1e6          # a long pause before the resume, which must not count
    last = train(dataclasses.replace(cfg, resume=True))
    resumed = [r["seconds"] for r in last.history if r["step"] > 3]
    assert resumed and before < resumed[0] < before + 100, (before, resumed)
    assert before < last.seconds["pretrain"] < before + 1000


def _nan_on(calls: set[int] | range):
    """An mse_loss that returns NaN on the given (1-based) calls."""
    real_mse, count = train_mod.mse_loss, {"n": 0}

    def mse(sr, hr):
        count["n"] += 1
        loss = real_mse(sr, hr)
        return loss * float("nan") if count["n"] in calls else loss
    return mse


def test_non_finite_loss_skips_the_step_then_stops(tmp_path, monkeypatch):
    monkeypatch.setattr(train_mod, "mse_loss", _nan_on({2}))
    cfg = tiny(tmp_path, phase="pretrain", pretrain_iters=3, ckpt_every=1, max_bad_steps=2)
    with pytest.warns(RuntimeWarning, match="non-finite G loss or gradient.*update skipped"):
        result = train(cfg)
    assert [r["bad_in_a_row"] for r in result.history] == [0, 1, 0]
    assert np.isnan(result.history[1]["mse"]) and np.isnan(result.history[1]["grad_norm_G"])
    ckpts = {p.name: load_checkpoint(p) for p in list_checkpoints(tmp_path / "run" / "pretrain" / "checkpoints")}
    w1, w2, w3 = (ckpts[f"step_0000000{i}"]["models"]["G"] for i in (1, 2, 3))
    assert all(torch.equal(w1[k], w2[k]) for k in w1)  # step 2 changed nothing
    assert not all(torch.equal(w2[k], w3[k]) for k in w2)  # step 3 trained again

    monkeypatch.setattr(train_mod, "mse_loss", _nan_on(range(2, 100)))
    with pytest.warns(RuntimeWarning), pytest.raises(TrainingDiverged, match="2 consecutive steps"):
        train(tiny(tmp_path, name="diverge", phase="pretrain", pretrain_iters=5, ckpt_every=1, max_bad_steps=2))
    good = latest_checkpoint(tmp_path / "diverge" / "pretrain" / "checkpoints")
    assert good is not None
    assert all(torch.isfinite(t).all() for t in load_checkpoint(good)["models"]["G"].values())


def test_checkpoint_write_failure_stops_or_continues(tmp_path, monkeypatch):
    def failing(*args, **kwargs):
        raise CheckpointError("could not write checkpoint: No space left on device")

    monkeypatch.setattr(phase_run_mod, "save_checkpoint", failing)
    with pytest.raises(CheckpointError, match="No space left"):
        train(tiny(tmp_path, name="stop", phase="pretrain", pretrain_iters=2))
    with pytest.warns(RuntimeWarning, match="continues without this checkpoint"):
        result = train(tiny(tmp_path, name="go", phase="pretrain", pretrain_iters=2, on_save_error="continue"))
    assert result.weights["pretrain"]["G"].is_file()


def test_bicubic_baseline_matches_the_published_set5_values(data_dir):
    """The validation code scores bicubic Set5 as the data README's independent computation
    (Y channel, 4 px border): 28.43 dB / 0.8111; ESRGAN publishes 28.42 dB."""
    from gmgan.data import load_benchmark

    scores = tu.bicubic_scores({"Set5": load_benchmark("Set5")}, scale=4)["Set5"]
    assert scores["psnr"] == pytest.approx(28.43, abs=0.01)
    assert scores["ssim"] == pytest.approx(0.8111, abs=1e-4)


def test_run_on_t91_with_validation(tmp_path, data_dir):
    """A shared training set, periodic and final validation, a (random-weight) VGG loss."""
    cfg = tiny(tmp_path, train_set="T91", pretrain_iters=2, gan_iters=1, val_every=1, val_sets=("Set5",),
               val_limit=1, perceptual_weights="random", perceptual_layer="conv1_2", tensorboard=True)
    with pytest.warns(UserWarning, match="random VGG19 weights"):
        result = train(cfg)
    assert set(result.bicubic) == {"Set5"} and result.bicubic["Set5"]["psnr"] > 20
    final = [r for r in result.validation if r["phase"] == "gan" and r["step"] == 1]
    assert {r["model"] for r in final} == {"G", "G_ema"}
    for row in final:
        assert row["set"] == "Set5" and np.isfinite([row["psnr"], row["ssim"], row["gmsd"]]).all()
        assert "niqe" in row  # the NIQE parameter file is in the data cache
    assert [r["step"] for r in result.validation if r["phase"] == "pretrain" and r["model"] == "G_ema"] == [1, 2]
    assert "perceptual" in result.history[-1]
    val_lines = (tmp_path / "run" / "gan" / "val.jsonl").read_text().splitlines()
    assert len(val_lines) == len([r for r in result.validation if r["phase"] == "gan"])
    assert load_generator(result.generator).num_block == 1


HOLD_SCRIPT = textwrap.dedent("""
    import sys, time
    from gmgan.training import RunFolderLock

    lock = RunFolderLock(sys.argv[1]).acquire()
    print("held", flush=True)
    time.sleep(600)
""")


def test_one_trainer_per_run_folder(tmp_path):
    """A trainer on a run folder that another process holds is refused before it writes
    anything, and the error names that process (pid, host); in one process a second lock is
    refused too. After kill -9 of the holder, its lock file does not block the folder."""
    import socket

    cfg = tiny(tmp_path, name="held", phase="pretrain", pretrain_iters=1)
    run = cfg.run_dir()
    holder = subprocess.Popen([sys.executable, "-c", HOLD_SCRIPT, str(run)], stdout=subprocess.PIPE,
                              text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(tu.RunFolderBusy) as refused:
            train(cfg)
        message = str(refused.value)
        assert f"pid {holder.pid} on host {socket.gethostname()}" in message, message
        assert str(run) in message and "--resume" in message
        assert not (run / "config.yaml").exists() and not (run / "pretrain").exists()
    finally:
        holder.kill()  # SIGKILL: no clean-up in the holder
        holder.wait()
    assert (run / tu.RunFolderLock.FILE_NAME).read_text()  # the dead holder's note is still there
    result = train(cfg)
    assert result.weights["pretrain"]["G"].is_file()
    # the same process, e.g. a notebook that trains in a thread
    with tu.RunFolderLock(run), pytest.raises(tu.RunFolderBusy, match="this process"):
        train(dataclasses.replace(cfg, resume=True))
    train(dataclasses.replace(cfg, resume=True))  # released on leaving the block


# ---------------------------------------------------------------------- several processes

DDP_SCRIPT = textwrap.dedent("""
    import sys, torch
    import gmgan.training as tu
    from gmgan.config import TrainConfig
    from gmgan.train import train

    dump = sys.argv[2]
    real_finish = tu.PhaseRun.finish

    def finish(self):  # keep every process's final weights to compare them
        state = {k: v.detach().clone() for k, v in self.raw["G"].state_dict().items()}
        torch.save(state, f"{dump}/{self.phase}_rank{self.env.rank}.pt")
        return real_finish(self)

    tu.PhaseRun.finish = finish
    train(TrainConfig.from_yaml(sys.argv[1]))
""")


def test_ddp_on_two_processes_matches_one_process(tmp_path):
    """torchrun with 2 gloo processes and a global batch of 4: both processes end with identical
    weights, and phase 1 ends where a single process with batch 4 ends (within 1e-5: the two
    gradient averages round differently)."""
    cfg = tiny(tmp_path, name="ddp", pretrain_iters=3, gan_iters=2)
    cfg_path = tmp_path / "ddp.yaml"
    cfg.to_yaml(cfg_path)
    (tmp_path / "script.py").write_text(DDP_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                           "2", str(tmp_path / "script.py"), str(cfg_path), str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    for phase in ("pretrain", "gan"):
        r0 = torch.load(tmp_path / f"{phase}_rank0.pt", weights_only=True)
        r1 = torch.load(tmp_path / f"{phase}_rank1.pt", weights_only=True)
        assert all(torch.equal(r0[k], r1[k]) for k in r0), phase
    # Only rank 0 writes: one log, one set of checkpoints.
    log = [json.loads(x) for x in (tmp_path / "ddp" / "pretrain" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2, 3]

    single = train(tiny(tmp_path, name="single", pretrain_iters=3, phase="pretrain"))
    ref = _weights(single.weights["pretrain"]["G"])
    r0 = torch.load(tmp_path / "pretrain_rank0.pt", weights_only=True)
    for k in ref:
        torch.testing.assert_close(r0[k], ref[k], rtol=0, atol=1e-5)
    ddp_mse = [r["mse"] for r in log]
    assert ddp_mse == pytest.approx([r["mse"] for r in single.history], rel=1e-5)


# ---------------------------------------------------------------------- the critic's optimiser


def _critic_trajectory(weight: float, eps: float | None, steps: int = 12) -> list[torch.Tensor]:
    """Train a small critic for ``steps`` WGAN-GP updates on fixed batches with the loss
    multiplied by ``weight``; Adam's eps is ``eps`` (None: ``train.critic_optimizer``)."""
    from gmgan.losses import GMGANLoss
    from gmgan.nets import Discriminator

    torch.manual_seed(0)
    D = Discriminator(3, num_feat=8, input_size=32)
    cfg = apply_overrides(TrainConfig(name="c", **TINY), {"delta": weight, "gan_lr": 1e-4})
    opt = (train_mod.critic_optimizer(D, cfg) if eps is None else
           torch.optim.Adam(D.parameters(), lr=cfg.gan_lr, betas=cfg.gan_betas, eps=eps))
    loss_fn = GMGANLoss(delta=weight, perceptual=False)
    data = torch.Generator().manual_seed(1)
    for step in range(steps):
        hr = torch.rand(4, 3, 32, 32, generator=data)
        sr = (hr + 0.1 * torch.randn(4, 3, 32, 32, generator=data)).clamp(0, 1)
        loss, _ = loss_fn.critic(D, sr, hr, generator=torch.Generator().manual_seed(step))
        opt.zero_grad()
        loss.backward()
        opt.step()
    return [p.detach().clone() for p in D.parameters()]


def test_critic_optimizer_makes_the_delta_weighted_critic_learn_like_the_unweighted_one():
    """l_D = delta * l_DA with Adam eps * delta follows the trajectory of l_DA with the default
    eps (Adam is invariant to a constant loss factor except through eps); the default eps on the
    delta-weighted loss does not: most critic gradients are then below eps."""
    delta = 5e-3
    start = _critic_trajectory(1.0, train_mod.ADAM_EPS, steps=0)
    reference = _critic_trajectory(1.0, train_mod.ADAM_EPS)
    ours = _critic_trajectory(delta, None)
    naive = _critic_trajectory(delta, train_mod.ADAM_EPS)

    def distance(xs, ys):
        return sum(float((x - y).abs().sum()) for x, y in zip(xs, ys))

    moved = distance(reference, start)
    # Rounding differs between delta * l_DA and l_DA, and Adam's step m / sqrt(v) magnifies it
    # for weights whose gradient is near zero, so compare paths as a whole, not weight by weight:
    # ours ends about 2e-6 of the distance travelled away from the reference, naive about 0.4.
    assert distance(ours, reference) < 1e-4 * moved
    assert distance(naive, reference) > 0.1 * moved
    assert distance(naive, start) < 0.9 * moved  # the unscaled eps damps the critic's steps


# ---------------------------------------------------------------------- a random VGG19 standing in for l_P


def test_random_vgg_is_seeded_by_the_config(tmp_path):
    """Two runs with one seed and a random VGG19 give the same losses whatever ran before them."""
    runs = []
    for i in range(2):
        torch.manual_seed(100 + i)
        runs.append(train(tiny(tmp_path, name=f"r{i}", perceptual_weights="random", perceptual_layer="conv1_2")))
    assert _losses(runs[0].history) == _losses(runs[1].history)
    assert [r for r in runs[0].history if r["phase"] == "gan"][-1]["perceptual"] > 0


def test_random_vgg_weight_is_balanced_against_lq_on_the_first_batch(tmp_path):
    """beta * l_P = l_Q on the first phase-2 batch (balance_random_vgg); switched off, beta stays."""
    res = train(tiny(tmp_path, perceptual_weights="random", perceptual_layer="conv1_2"))
    first = [r for r in res.history if r["phase"] == "gan"][0]
    assert first["beta"] * first["perceptual"] == pytest.approx(first["quality"], rel=1e-4)
    assert first["beta"] > 1  # a random VGG's raw l_P is the smaller of the two
    assert {r["beta"] for r in res.history if r["phase"] == "gan"} == {first["beta"]}
    off = train(tiny(tmp_path, name="off", perceptual_weights="random", perceptual_layer="conv1_2",
                     balance_random_vgg=False))
    assert {r["beta"] for r in off.history if r["phase"] == "gan"} == {1.0}
    # the same weight after a resume: it is measured through the initial generator, not the current one
    cfg = tiny(tmp_path, name="resumed", perceptual_weights="random", perceptual_layer="conv1_2", phase="gan",
               pretrained_g=str(res.weights["pretrain"]["G_ema"]), gan_iters=2, ckpt_every=1)
    train(apply_overrides(cfg, {"gan_iters": 1}))
    resumed = train(apply_overrides(cfg, {"resume": True}))
    assert {r["beta"] for r in resumed.history} == {first["beta"]}


@pytest.mark.parametrize("augment", [True, False])
def test_on_the_fly_augmentation_is_a_config_field(tmp_path, monkeypatch, augment):
    """TrainConfig.augment reaches the training patches (issue 11: without it the offline 8x set
    could never differ from the plain one, as every patch got a random flip anyway)."""
    made = []
    original = train_mod.PatchPairs

    def spy(*args, **kwargs):
        made.append(kwargs["augment"])
        return original(*args, **kwargs)

    monkeypatch.setattr(train_mod, "PatchPairs", spy)
    train(tiny(tmp_path, phase="pretrain", augment=augment))
    assert made and set(made) == {augment}
    from gmgan.config import get_preset

    assert get_preset("paper").augment is False  # the paper's x8 set is its augmentation


@pytest.mark.parametrize("noise", [{"noise_inject": True}, {"noise_head": 4}])
def test_gan_with_noise_starts_from_a_plain_phase1_model_and_resumes_exactly(
        tmp_path, noise, monkeypatch):
    """Phase 2 with a noise input (issue 19) from a phase-1 generator without one: the
    noise weights are added, trained (they move) and saved; a run stopped after its
    checkpoint and resumed ends with the same weights as one uninterrupted run (the
    noise is drawn from the per-step seed)."""
    # Phase 1 trains the plain generator even when the noise options are set.
    parent = train(tiny(tmp_path, name="parent", phase="pretrain", pretrain_iters=2, **noise))
    plain = parent.weights["pretrain"]["G_ema"]
    assert "noise" not in " ".join(load_generator(plain).config)
    straight = train(tiny(tmp_path, name="straight", phase="gan",
                          pretrained_g=str(plain), perceptual_weights="none", **noise))
    model = load_generator(straight.weights["gan"]["G"])
    assert model.config == {**load_generator(plain).config, **noise}
    final = _weights(straight.weights["gan"]["G"])
    if "noise_inject" in noise:
        assert final["noise_strength_up2"].abs().max() > 0  # learnt from zero
    else:
        assert "noise_head.0.weight" in final
    cfg = tiny(tmp_path, name="resumed", phase="gan", pretrained_g=str(plain),
               perceptual_weights="none", **noise)
    real_finish_step = tu.PhaseRun.finish_step

    def finish_step(self, step, terms):
        if step == 3:
            os.kill(os.getpid(), signal.SIGINT)  # train(): finish the step, save, stop
        return real_finish_step(self, step, terms)

    monkeypatch.setattr(tu.PhaseRun, "finish_step", finish_step)
    assert train(cfg).interrupted
    monkeypatch.setattr(tu.PhaseRun, "finish_step", real_finish_step)
    resumed = train(apply_overrides(cfg, {"resume": True}))
    again = _weights(resumed.weights["gan"]["G"])
    assert all(torch.equal(again[k], final[k]) for k in final)
