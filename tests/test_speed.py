"""gmgan.speed: native-bf16 detection, each speed mode's plan, bf16 and the critic."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
import torch

from gmgan import speed
from gmgan.config import TrainConfig
from gmgan.speed import SpeedPlan, native_bf16_cpu, plan_speed


def _cpu(monkeypatch, capability: str, flags: set[str]) -> None:
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: capability)
    monkeypatch.setattr(speed, "cpu_flags", lambda: frozenset(flags))


@pytest.mark.parametrize(
    ("capability", "flags", "native"),
    [
        ("AVX512", {"avx512f", "avx512_bf16"}, True),  # Cooper Lake, Zen 4
        ("AVX512", {"avx512f", "amx_bf16", "amx_tile"}, True),  # Sapphire Rapids
        ("AVX512", {"avx512f"}, False),  # Skylake: AVX-512 without bf16
        ("AVX2", {"avx2", "avx512_bf16"}, False),  # ATen limited to AVX2
        ("DEFAULT", {"avx512_bf16", "amx_bf16"}, False),  # ATEN_CPU_CAPABILITY=default
        ("AVX2", {"avx2", "fma"}, False),  # Zen 3 (this project's machine)
    ],
)
def test_native_bf16_needs_avx512_kernels_and_a_bf16_flag(
    monkeypatch, capability, flags, native
):
    _cpu(monkeypatch, capability, flags)
    assert native_bf16_cpu() is native


def test_cpu_flags_reads_the_flags_line(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: X\nflags\t\t: fpu avx2 amx_bf16\n\n")
    speed.cpu_flags.cache_clear()
    try:
        assert speed.cpu_flags(str(info)) == {"fpu", "avx2", "amx_bf16"}
        assert speed.cpu_flags(str(tmp_path / "missing")) == frozenset()
    finally:
        speed.cpu_flags.cache_clear()


def test_default_kernels_pick_fp32_in_a_fresh_process():
    """Under ATEN_CPU_CAPABILITY=default no CPU has native bf16: ``auto`` keeps fp32."""
    code = (
        "import torch; from gmgan.speed import native_bf16_cpu, plan_speed; "
        "from gmgan.config import TrainConfig; "
        "print(torch.backends.cpu.get_cpu_capability(), native_bf16_cpu(), "
        "plan_speed(TrainConfig(speed='auto'), 'cpu').amp)"
    )
    env = dict(os.environ, ATEN_CPU_CAPABILITY="default")
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout.split()
    assert out == ["DEFAULT", "False", "none"]


def test_plans_of_the_modes(monkeypatch):
    _cpu(monkeypatch, "AVX512", {"amx_bf16"})
    fast = plan_speed(TrainConfig(), "cpu")
    assert fast == SpeedPlan("fast", True, True, True, "none", critic_batch="pair")
    assert fast.describe() == (
        "speed fast: fp32, channels-last, one G forward per GAN update, "
        "D(HR) and D(SR) in one forward, foreach Adam"
    )
    # Batch norm would mix HR's and SR's statistics: two critic forwards then.
    assert plan_speed(TrainConfig(d_norm="batch"), "cpu").critic_batch == "none"
    assert plan_speed(TrainConfig(speed="reference"), "cpu") == SpeedPlan(
        "reference", False, False, False, "none"
    )
    assert plan_speed(
        TrainConfig(speed="reference", channels_last=True), "cpu"
    ).channels_last
    assert plan_speed(TrainConfig(speed="auto"), "cpu").amp == "bf16"
    assert (
        plan_speed(TrainConfig(speed="auto", amp="fp16"), "cpu").amp == "fp16"
    )  # as configured
    assert plan_speed(TrainConfig(speed="auto"), "cuda").amp == "none"
    assert not plan_speed(TrainConfig(), "cpu", distributed=True).channels_last
    assert not plan_speed(TrainConfig(), "cuda").channels_last
    _cpu(monkeypatch, "AVX2", {"avx2"})
    assert plan_speed(TrainConfig(speed="auto"), "cpu").amp == "none"


def test_speed_is_a_validated_config_field():
    with pytest.raises(ValueError, match="speed"):
        TrainConfig(speed="turbo")


def test_foreach_adam_takes_the_same_steps_as_torchs_default():
    """The fast modes' Adam is the same arithmetic: five steps give the same bits."""

    def run(plan: SpeedPlan) -> list[torch.Tensor]:
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3), torch.nn.LeakyReLU(0.2), torch.nn.Conv2d(8, 3, 3)
        )
        opt = plan.adam(net.parameters(), lr=1e-3, betas=(0.0, 0.9), eps=5e-11)
        x = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(1))
        for _ in range(5):
            opt.zero_grad()
            net(x).square().mean().backward()
            opt.step()
        return [p.detach() for p in net.parameters()]

    fast = run(SpeedPlan("fast", False, True, True, "none"))
    ref = run(SpeedPlan("reference", False, False, False, "none"))
    assert all(torch.equal(a, b) for a, b in zip(fast, ref))


def test_autos_bf16_keeps_the_critic_and_its_gradient_penalty_in_fp32(monkeypatch):
    """Where ``auto`` picks bf16, the critic's l_D, Wasserstein estimate, gradient
    penalty and gradient are the fp32 ones, bit for bit, given the bf16 SR. (Run in bf16 itself,
    this fresh
    critic's Wasserstein estimate, -3.8e-6 in fp32, rounds to 0: see gmgan.speed.)"""
    from gmgan.losses import GMGANLoss
    from gmgan.nets import Discriminator

    _cpu(monkeypatch, "AVX512", {"avx512_bf16"})
    plan = plan_speed(TrainConfig(speed="auto"), "cpu")
    assert plan.amp == "bf16" and plan.fp32_critic
    assert plan.describe().startswith(
        "speed auto: bf16 autocast (critic fp32), channels-last"
    )
    torch.manual_seed(0)
    D = Discriminator(3, num_feat=8, input_size=32)
    gen = torch.Generator().manual_seed(1)
    hr = torch.rand(4, 3, 32, 32, generator=gen)
    sr = (hr + 0.1 * torch.randn(4, 3, 32, 32, generator=gen)).clamp(0, 1)
    loss_fn = GMGANLoss(delta=5e-3, perceptual=False)

    def critic_step(critic, sr_in):  # as gmgan.train's update runs it in this mode
        D.zero_grad()
        total, terms = loss_fn.critic(
            critic, sr_in, hr, generator=torch.Generator().manual_seed(2)
        )
        total.backward()
        return (
            {k: float(v) for k, v in terms.items()},
            torch.cat([p.grad.flatten() for p in D.parameters()]),
        )

    sr16 = sr.to(torch.bfloat16)  # what a generator under bf16 autocast returns
    t16, g16 = critic_step(plan.critic(D), sr16)
    # The fp32 critic on the same (bf16-rounded) SR: the same values, bit for bit.
    t32, g32 = critic_step(D, sr16.float())
    assert t16 == t32 and torch.equal(g16, g32)
    assert t16["wasserstein"] != 0 and torch.isfinite(g16).all()
    # Only SR's rounding to bf16 separates it from the all-fp32 critic step.
    t_fp32, _ = critic_step(D, sr)
    assert abs(t16["gp"] - t_fp32["gp"]) <= 1e-3 * t_fp32["gp"]
