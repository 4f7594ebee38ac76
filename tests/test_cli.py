"""Tests of the command line (gmgan.cli), mostly in-process through main([...]); one real
`python -m gmgan --help` subprocess and one torchrun (2 gloo processes) training run."""
from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import typing
from typing import Any

import numpy as np
import pytest
import torch
import yaml

from gmgan.cli import build_parser, main
from gmgan.config import CHOICES, PRESETS, TrainConfig, get_preset
from gmgan.imageio import read_image, write_image
from gmgan.infer import interpolate, upscale
from gmgan.nets import RRDBNet, load_generator, save_generator

# Small enough for a few steps per second on one CPU core (as in test_train.py).
TINY = ["--train-set", "samples", "--num-feat", "8", "--num-block", "1", "--num-grow", "8",
        "--d-num-feat", "8", "--patch-size", "32", "--batch-size", "4", "--num-workers", "0",
        "--pretrain-iters", "2", "--gan-iters", "2", "--log-every", "1", "--val-every", "0",
        "--ckpt-every", "1", "--val-sets", "--perceptual-weights", "none", "--no-progress",
        "--no-tensorboard", "--ema-decay", "0.9"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """Two tiny x4 generators saved as safetensors."""
    folder = tmp_path_factory.mktemp("weights")
    paths = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        model = RRDBNet(num_feat=4, num_grow=2, num_block=1)
        torch.nn.init.constant_(model.conv_last.bias, 0.5)
        paths.append(save_generator(model, folder / f"g{seed}.safetensors"))
    return paths


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert "Traceback" not in err
    assert lines and lines[-1].startswith("gmgan: error: "), err
    return lines[-1]


# ---------------------------------------------------------------------------------------------
# help, version, errors
# ---------------------------------------------------------------------------------------------

def test_python_m_gmgan_help_subprocess():
    proc = subprocess.run([sys.executable, "-m", "gmgan", "--help"], capture_output=True,
                          text=True, check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for command in ("sr", "eval", "interpolate", "train", "data", "presets", "examples:"):
        assert command in proc.stdout


def test_help_and_presets_load_no_torch():
    """The commands' modules are imported when a command runs, so that the parser, --help
    and `gmgan presets` answer without loading torch (seconds)."""
    code = ("import sys; from gmgan.cli import main; main(['presets']); "
            "main(['train', '--preset', 'teach', '--print-config']); "
            "print('torch' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "False"


@pytest.mark.parametrize("argv", [["sr"], ["eval"], ["interpolate"], ["train"], ["data"],
                                  ["data", "list"], ["data", "fetch"], ["data", "prepare"],
                                  ["presets"]])
def test_every_command_has_help_with_examples(argv, capsys):
    assert main(argv + ["--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: gmgan") and "examples:" in out


def test_version(capsys):
    from gmgan import __version__

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"gmgan {__version__}"


def test_usage_error_exit_2(capsys):
    assert main([]) == 2
    assert main(["frobnicate"]) == 2
    assert "invalid choice" in capsys.readouterr().err


def test_gmgan_error_one_line_and_debug(tmp_path, capsys, monkeypatch):
    argv = ["sr", str(tmp_path), "-o", str(tmp_path / "out"),
            "--weights", str(tmp_path / "none.safetensors")]
    assert main(argv) == 2
    assert "none.safetensors" in one_error_line(capsys.readouterr().err)
    with pytest.raises(FileNotFoundError):
        main(argv + ["--debug"])
    monkeypatch.setenv("GMGAN_DEBUG", "1")
    with pytest.raises(FileNotFoundError):
        main(argv)


# ---------------------------------------------------------------------------------------------
# sr, interpolate, eval
# ---------------------------------------------------------------------------------------------

def test_sr_two_pngs_and_failures(tmp_path, weights, capsys):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (12, 10, 3)).astype(np.uint8)
    b = rng.integers(0, 256, (9, 11)).astype(np.uint8)  # grey stays grey
    write_image(tmp_path / "in" / "a.png", a)
    write_image(tmp_path / "in" / "b.png", b)
    out = tmp_path / "out"
    assert main(["sr", str(tmp_path / "in"), "-o", str(out), "--weights", str(weights[0]),
                 "--tile", "4", "--overlap", "8"]) == 0
    model = load_generator(weights[0])
    sr_a, sr_b = read_image(out / "a_x4.png"), read_image(out / "b_x4.png", keep_grey=True)
    assert sr_a.shape == (48, 40, 3) and sr_b.shape == (36, 44)
    np.testing.assert_array_equal(sr_a, upscale(model, a, tile=4, overlap=8))
    np.testing.assert_array_equal(sr_b, upscale(model, b, tile=4, overlap=8))

    # RGBA keeps its alpha; a corrupt file and a missing one are skipped and reported: exit 1.
    rgba = rng.integers(0, 256, (8, 8, 4)).astype(np.uint8)
    write_image(tmp_path / "in2" / "c.png", rgba)
    (tmp_path / "in2" / "bad.png").write_bytes(b"not a png")
    capsys.readouterr()
    code = main(["sr", str(tmp_path / "in2"), str(tmp_path / "missing.png"), "-o", str(out),
                 "--weights", str(weights[0])])
    err = capsys.readouterr().err
    assert code == 1
    assert "2 input(s) failed" in err and "bad.png" in err and "missing.png" in err
    from PIL import Image

    with Image.open(out / "c_x4.png") as im:
        assert im.mode == "RGBA" and im.size == (32, 32)


def test_interpolate_command(tmp_path, weights, capsys):
    out = tmp_path / "mix.safetensors"
    pair = [str(weights[0]), str(weights[1])]
    assert main(["interpolate", *pair, "--alpha", "0.8", "-o", str(out)]) == 0
    ref = interpolate(weights[0], weights[1], 0.8)
    got = load_generator(out).state_dict()
    assert all(torch.equal(got[k], ref[k]) for k in ref)
    assert main(["interpolate", *pair, "--alpha", "1.5", "-o", str(out)]) == 2
    assert "alpha" in one_error_line(capsys.readouterr().err)


def test_eval_command_set5(data_dir, tmp_path, weights, capsys):
    csv_path, json_path = tmp_path / "r.csv", tmp_path / "r.json"
    code = main(["eval", "--weights", str(weights[0]), f"second={weights[1]}", "--sets", "Set5",
                 "--metrics", "psnr", "ssim", "--limit", "2", "--csv", str(csv_path),
                 "--json", str(json_path), "--no-progress", "--device", "cpu"])
    out = capsys.readouterr().out
    assert code == 0
    rows = {line.split("|")[0].strip(): line for line in out.splitlines() if "|" in line}
    assert {"Bicubic", "g1", "second"} <= set(rows)
    assert "SSIM / PSNR" in out
    data = json.loads(json_path.read_text())
    assert {r["method"] for r in data["rows"]} == {"Bicubic", "g1", "second"}
    assert len(data["per_image"]) == 3 * 2 * 2
    assert csv_path.read_text().startswith("method,set,metric,mean,n,note")
    bicubic_psnr = next(r["mean"] for r in data["rows"]
                        if r["method"] == "Bicubic" and r["metric"] == "psnr")
    assert f"{bicubic_psnr:.2f}" in rows["Bicubic"]


def test_eval_takes_the_high_frequency_ratio_beside_the_papers_metrics(data_dir, tmp_path,
                                                                      capsys):
    json_path = tmp_path / "hf.json"
    code = main(["eval", "--sets", "Set5", "--metrics", "psnr", "hf", "--limit", "1",
                 "--layout", "long", "--json", str(json_path), "--no-progress"])
    assert code == 0
    hf = [r["mean"] for r in json.loads(json_path.read_text())["rows"] if r["metric"] == "hf"]
    assert len(hf) == 1 and 0 < hf[0] < 0.3  # bicubic: little fine detail
    assert main(["eval", "--metrics", "lpips"]) == 2
    assert "invalid choice: 'lpips'" in capsys.readouterr().err


def test_eval_scores_grey_set14_as_rgb_by_default_and_says_so(data_dir, capsys):
    """One convention for the grey Set14 image (bridge) everywhere: R = G = B, which gives the
    data README's bicubic Set14 26.09 dB (GMGAN's Table 1: 26.10); the table header names it.
    ``--grey as_y`` gives the ESRGAN / EDSR figure, 25.99 dB, and says that instead."""
    base = ["eval", "--sets", "Set14", "--metrics", "psnr", "ssim", "--no-progress"]
    assert main(base) == 0
    out = capsys.readouterr().out
    bicubic = next(line for line in out.splitlines() if line.startswith("Bicubic"))
    assert bicubic.split("|")[1].strip() == "0.7048 / 26.09"
    caption = out.splitlines()[0]
    assert "grey images as R = G = B" in caption, caption
    assert main([*base, "--grey", "as_y"]) == 0
    out = capsys.readouterr().out
    bicubic = next(line for line in out.splitlines() if line.startswith("Bicubic"))
    assert bicubic.split("|")[1].strip() == "0.7029 / 25.99"
    assert "grey images as Y" in out.splitlines()[0]


def test_eval_errors(tmp_path, capsys):
    assert main(["eval", "--no-bicubic"]) == 2
    assert "nothing to evaluate" in one_error_line(capsys.readouterr().err)
    assert main(["eval", "--weights", str(tmp_path / "x.safetensors")]) == 2
    assert "x.safetensors" in one_error_line(capsys.readouterr().err)


# ---------------------------------------------------------------------------------------------
# train
# ---------------------------------------------------------------------------------------------

def _other_value(name: str, tp: Any, default: Any) -> tuple[list[str], Any]:
    """Command-line tokens that set field ``name`` to a valid value other than ``default``,
    and the value the YAML should then hold."""
    special = {"scale": (["2"], 2), "device": (["cpu"], "cpu"), "name": (["cli-test"], "cli-test")}
    if name in special:
        return special[name]
    args = [a for a in typing.get_args(tp) if a is not type(None)]
    inner = args[0] if type(None) in typing.get_args(tp) else tp
    if name in CHOICES:
        choice = next(c for c in CHOICES[name] if c != default)
        return [choice], choice
    if inner is bool:
        value = not default if default is not None else True
        return ([] if value else ["NO"]), value
    if typing.get_origin(inner) is tuple:
        if typing.get_args(inner)[1:] == (Ellipsis,):
            return ["Set5", "BSD100"], ["Set5", "BSD100"]
        return ["0.5", "0.75"], [0.5, 0.75]
    if inner is int:
        value = 3 if default is None else default + 16
        return [str(value)], value
    if inner is float:
        value = 0.25 if default is None else default / 2
        return [repr(value)], value
    if inner is str:
        value = "somewhere" if default is None else default + "x"
        return [value], value
    raise AssertionError(f"no test value for {name}: {tp}")


def test_every_trainconfig_field_is_an_option(capsys):
    """Each field, generated from dataclasses.fields(TrainConfig), set on the command line ends up
    in --print-config's YAML."""
    hints = typing.get_type_hints(TrainConfig)
    base = PRESETS["paper"]
    argv, expected = ["train", "--preset", "paper", "--print-config"], {}
    for f in dataclasses.fields(TrainConfig):
        tokens, value = _other_value(f.name, hints[f.name], getattr(base, f.name))
        option = f"--{f.name.replace('_', '-')}"
        if tokens == ["NO"]:
            argv.append(f"--no-{f.name.replace('_', '-')}")
        else:
            argv += [option] + tokens
        expected[f.name] = value
    assert main(argv) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert set(printed) == set(expected)
    for name, value in expected.items():
        assert printed[name] == value, name
        default = getattr(base, name)
        assert printed[name] != (list(default) if isinstance(default, tuple) else default), name


def test_train_option_spellings_and_config_file(tmp_path, capsys):
    cfg_file = tmp_path / "my.yaml"
    cfg_file.write_text("preset: teach\nnum_block: 2\nbatch_size: 8\n")
    assert main(["train", "--config", str(cfg_file), "--num_block", "5", "--val-sets",
                 "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    teach = get_preset("teach")
    # preset from the file, file over preset, command line over file; underscores accepted
    assert printed["num_block"] == 5 and printed["batch_size"] == 8 and printed["val_sets"] == []
    assert printed["train_set"] == teach.train_set and printed["num_feat"] == teach.num_feat
    assert main(["train", "--preset", "paper", "--config", str(cfg_file), "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    # --preset replaces the file's own preset
    assert printed["num_feat"] == 64 and printed["num_block"] == 2
    assert main(["train", "--print-config"]) == 0  # default: the paper preset
    assert yaml.safe_load(capsys.readouterr().out)["num_block"] == 23


@pytest.mark.parametrize("argv, needle", [
    (["--preset", "nope"], "invalid choice"),
    (["--preset", "teach", "--pretrain-iters", "-5"], "pretrain_iters"),
    (["--preset", "teach", "--batch-size", "many"], "batch_size"),
    (["--preset", "teach", "--train-set", "/no/such/folder"],
     "train_set '/no/such/folder' is neither a known data set"),
    (["--config", "/no/such.yaml"], "config file not found"),
])
def test_train_errors(argv, needle, capsys):
    assert main(["train"] + argv) == 2
    assert needle in capsys.readouterr().err


def test_train_teach_tiny_and_sigint(tmp_path, capsys, monkeypatch):
    """A real (tiny) run through the CLI; then Ctrl-C in phase 1 stops cleanly with exit 0, and
    --resume finishes the run."""
    run = tmp_path / "run"
    assert main(["train", "--preset", "teach", *TINY, "--out-dir", str(run)]) == 0
    err = capsys.readouterr().err
    assert "done:" in err
    for phase in ("pretrain", "gan"):
        assert (run / phase / "G_ema.safetensors").is_file()
    assert load_generator(run / "gan" / "G_ema.safetensors").num_block == 1

    import gmgan.training as tu

    real = tu.PhaseRun.finish_step

    def finish_step(self, step, terms):
        if (self.phase, step) == ("pretrain", 1):
            os.kill(os.getpid(), signal.SIGINT)  # train() finishes the step, checkpoints, returns
        return real(self, step, terms)

    monkeypatch.setattr(tu.PhaseRun, "finish_step", finish_step)
    stopped = ["train", "--preset", "teach", *TINY, "--phase", "pretrain",
               "--out-dir", str(tmp_path / "stopped")]
    assert main(stopped) == 0
    assert "--resume" in capsys.readouterr().err
    assert not (tmp_path / "stopped" / "pretrain" / "G.safetensors").exists()
    monkeypatch.setattr(tu.PhaseRun, "finish_step", real)
    assert main(stopped + ["--resume"]) == 0
    assert (tmp_path / "stopped" / "pretrain" / "G.safetensors").is_file()


def test_torchrun_two_gloo_processes(tmp_path):
    """`torchrun --nproc_per_node 2 -m gmgan train ...` on CPU (gloo): both ranks train, rank 0
    alone writes the run and prints the summary."""
    run = tmp_path / "ddp"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "gmgan", "train", "--preset", "teach", *TINY, "--phase", "pretrain",
         "--out-dir", str(run)],
        env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert proc.stderr.count("done:") == 1 and "x 2 processes" in proc.stderr
    assert (run / "pretrain" / "G.safetensors").is_file()
    log = [json.loads(x) for x in (run / "pretrain" / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [1, 2]


# ---------------------------------------------------------------------------------------------
# data, presets
# ---------------------------------------------------------------------------------------------

def test_data_list(data_dir, capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    set5 = next(line for line in out.splitlines() if line.startswith("Set5 "))
    assert "complete" in set5 and "5/5" in set5 and str(data_dir) in set5
    assert str(data_dir) in out.splitlines()[-1]


def test_data_fetch_cached_and_unknown(data_dir, capsys):
    assert main(["data", "fetch", "Set5", "-q"]) == 0  # cached: no network
    assert str(data_dir / "benchmark" / "Set5" / "HR") in capsys.readouterr().out
    assert main(["data", "fetch", "NoSuchSet", "-q"]) == 1
    assert "NoSuchSet" in capsys.readouterr().err


def test_data_prepare_folder(tmp_path, capsys):
    rng = np.random.default_rng(1)
    for i in range(2):
        img = rng.integers(0, 256, (34, 41, 3)).astype(np.uint8)
        write_image(tmp_path / "hr" / f"im{i}.png", img)
    assert main(["data", "prepare", str(tmp_path / "hr"), "-q"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("2 HR/LR pairs")
    lr_dir = out.split("LR: ")[1].strip()
    assert sorted(os.listdir(lr_dir)) == ["im0.png", "im1.png"]
    # HR cropped to 32 x 40 (multiples of 4), LR 8 x 10
    assert read_image(os.path.join(lr_dir, "im0.png")).shape == (8, 10, 3)


def test_presets_command(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out
    assert "paper" in out and "teach" in out
    assert main(["presets", "teach"]) == 0
    assert yaml.safe_load(capsys.readouterr().out) == get_preset("teach").to_dict()
    assert main(["presets", "nope"]) == 2
    assert "unknown preset" in one_error_line(capsys.readouterr().err)


def test_parser_is_buildable_without_side_effects():
    parser = build_parser()
    assert parser.prog == "gmgan"
