"""Bad input gets a clear error that names the file or the value.

Here: every kind of broken image file through ``gmgan sr`` (each named with its reason, the good
ones still written), a real 5-channel TIFF, arrays with 0 or 5 channels, a training folder whose
images are all smaller than the patch, weights of another architecture on the command line, bad
``gmgan sr`` / ``eval`` option values, and a ``--resume`` with a configuration whose network does
not match the checkpoint.

Covered elsewhere (not repeated): read_image on empty, truncated, corrupt and non-image files
(tests/test_imageio.py: test_empty_file, test_truncated_file_is_an_error_even_if_pil_is_told_to_pad,
test_corrupt_png_data, test_not_an_image, test_as_rgb_rejects_channel_counts[0/5/6]); bad files
and too-small images in a training set, one by one (tests/data/test_pairs.py:
test_each_bad_file_is_skipped_or_named, test_all_bad_files_counted_in_one_warning); a checkpoint
of another scale (tests/test_nets.py: test_wrong_scale; tests/test_evaluate.py:
test_model_scale_must_match; tests/test_train.py:
test_gan_without_pretrained_generator_says_what_to_do); another architecture's keys
(tests/test_nets.py: test_other_architecture_lists_keys, test_missing_key_strict_and_not_strict);
negative iterations, an unknown preset, a missing data folder, a missing config file
(tests/test_cli.py: test_train_errors; tests/test_config.py: test_bad_values_name_the_field,
test_unknown_keys_and_presets_are_listed).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from rel_helpers import tiny_cli_args, tiny_config

from gmgan.cli import main
from gmgan.imageio import ImageReadError, read_image, write_image
from gmgan.infer import upscale
from gmgan.nets import Discriminator, RRDBNet, save_generator
from gmgan.train import train


def _error_lines(err: str) -> list[str]:
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.strip()]


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    return save_generator(RRDBNet(num_feat=4, num_grow=2, num_block=1), tmp_path / "g.safetensors")


def _tiff_with_channels(path, channels: int):
    """A valid little-endian TIFF whose pixels have ``channels`` samples (written with tifffile;
    0 channels: the SamplesPerPixel field patched afterwards, as a broken writer would leave)."""
    tifffile = pytest.importorskip("tifffile")
    tifffile.imwrite(path, np.zeros((8, 8, max(channels, 3)), np.uint8), photometric="minisblack",
                     planarconfig="contig")
    if channels == 0:
        data = bytearray(path.read_bytes())
        ifd = int.from_bytes(data[4:8], "little")
        for i in range(int.from_bytes(data[ifd:ifd + 2], "little")):
            at = ifd + 2 + 12 * i
            if int.from_bytes(data[at:at + 2], "little") == 277:  # SamplesPerPixel
                data[at + 8:at + 10] = (0).to_bytes(2, "little")
        path.write_bytes(bytes(data))
    return path


def test_sr_names_every_bad_file_and_writes_the_good_ones(tmp_path, weights, capsys):
    src = tmp_path / "in"
    good = np.random.default_rng(0).integers(0, 256, (12, 10, 3)).astype(np.uint8)
    write_image(src / "good.png", good)
    (src / "empty.png").write_bytes(b"")
    (src / "notes.jpg").write_text("not a picture\n" * 10)
    whole = write_image(tmp_path / "whole.png", good).read_bytes()
    (src / "truncated.png").write_bytes(whole[: len(whole) // 2])
    Image.fromarray(good).save(tmp_path / "whole.jpg", quality=90)
    (src / "truncated.jpg").write_bytes((tmp_path / "whole.jpg").read_bytes()[:300])
    scribbled = bytearray(whole)
    at = scribbled.index(b"IDAT") + 8
    scribbled[at:at + 40] = bytes(b ^ 0xFF for b in scribbled[at:at + 40])
    (src / "corrupt.png").write_bytes(bytes(scribbled))
    _tiff_with_channels(src / "five.tif", 5)
    _tiff_with_channels(src / "zero.tif", 0)
    out = tmp_path / "out"
    assert main(["sr", str(src), str(tmp_path / "missing.png"), "-o", str(out),
                 "--weights", str(weights)]) == 1
    lines = _error_lines(capsys.readouterr().err)
    reasons = {name: next(line for line in lines if line.strip().startswith(str(src / name)))
               for name in ("empty.png", "notes.jpg", "truncated.png", "truncated.jpg",
                            "corrupt.png", "five.tif", "zero.tif")}
    print("\n".join(reasons.values()))
    assert "8 input(s) failed" in "\n".join(lines)
    assert "empty file" in reasons["empty.png"]
    assert "not a recognised image format" in reasons["notes.jpg"]
    assert "truncated" in reasons["truncated.png"] and "truncated" in reasons["truncated.jpg"]
    assert "corrupt" in reasons["corrupt.png"]
    assert "5 channels" in reasons["five.tif"] and "0 channels" in reasons["zero.tif"]
    assert any("missing.png: no such file" in line for line in lines)
    assert sorted(p.name for p in out.iterdir()) == ["good_x4.png"]
    assert read_image(out / "good_x4.png").shape == (48, 40, 3)


@pytest.mark.parametrize("channels", [0, 5])
def test_arrays_with_0_or_5_channels(channels):
    image = np.zeros((8, 8, channels), np.uint8)
    with pytest.raises(ValueError, match=rf"C = 1, 3 or 4, got shape \(8, 8, {channels}\)"):
        upscale(RRDBNet(num_feat=4, num_grow=2, num_block=1), image)


def test_five_channel_tiff_read_directly(tmp_path):
    path = _tiff_with_channels(tmp_path / "bands.tif", 5)
    with pytest.raises(ImageReadError, match="a TIFF with 5 channels") as info:
        read_image(path)
    assert str(path) in str(info.value)


def test_training_images_smaller_than_the_patch(tmp_path, capsys):
    """A training folder whose images are all smaller than the 32 px patch: one line naming the
    folder and why nothing is usable (exit 2)."""
    folder = tmp_path / "small_hr"
    for i in range(3):
        write_image(folder / f"im{i}.png", np.full((20, 24, 3), 40 * i, np.uint8))
    code = main(["train", *tiny_cli_args(phase="pretrain", train_set=str(folder)),
                 "--out-dir", str(tmp_path / "run")])
    line = _error_lines(capsys.readouterr().err)[-1]
    print(line)
    assert code == 2 and line.startswith("gmgan: error: no usable image pairs in ")
    assert "3 smaller than the patch" in line


def test_sr_with_weights_of_another_architecture(tmp_path, capsys):
    from safetensors.torch import save_file

    path = tmp_path / "critic.safetensors"
    save_file(Discriminator(num_feat=8, input_size=32).state_dict(), str(path))
    image = write_image(tmp_path / "in.png", np.zeros((8, 8, 3), np.uint8))
    assert main(["sr", str(image), "-o", str(tmp_path / "out"), "--weights", str(path)]) == 2
    line = _error_lines(capsys.readouterr().err)[-1]
    assert line.startswith(f"gmgan: error: {path} does not match RRDBNet")
    assert "missing keys: conv_first.weight" in line and "unexpected keys: classifier.0.bias" in line


@pytest.mark.parametrize("argv, needle", [
    (["sr", "x.png", "-o", "out", "-w", "g.safetensors", "--tile", "0"], "argument --tile: must be >= 1, got 0"),
    (["sr", "x.png", "-o", "out", "-w", "g.safetensors", "--tile", "-8"], "argument --tile: must be >= 1"),
    (["sr", "x.png", "-o", "out", "-w", "g.safetensors", "--overlap", "-1"], "argument --overlap: must be >= 0"),
    (["sr", "x.png", "-o", "out", "-w", "g.safetensors", "--batch-tiles", "0"], "argument --batch-tiles"),
    (["sr", "x.png", "-o", "out", "-w", "g.safetensors", "--tile", "big"], "expected an integer, got 'big'"),
    (["eval", "--limit", "-1"], "argument --limit: must be >= 1"),
    (["eval", "--tile", "0"], "argument --tile: must be >= 1"),
])
def test_bad_option_values_are_usage_errors(argv, needle, capsys):
    """Refused before any model is loaded or image read: exit 2, the option named."""
    assert main(argv) == 2
    assert needle in capsys.readouterr().err


def test_resume_with_another_network_says_what_differs(tmp_path, samples_ready, capsys):
    """A run checkpointed with num_feat=8 resumed with num_feat=16: one line naming the checkpoint
    and the differing field, instead of torch's list of size mismatches."""
    run = tmp_path / "run"
    train(tiny_config(run, phase="pretrain", pretrain_iters=1))
    code = main(["train", *tiny_cli_args(phase="pretrain", pretrain_iters=3, num_feat=16),
                 "--out-dir", str(run), "--resume"])
    line = _error_lines(capsys.readouterr().err)[-1]
    print(line)
    assert code == 2 and "step_00000001" in line
    assert "num_feat=8" in line and "16" in line
    assert "size mismatch" not in line
