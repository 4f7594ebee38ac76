"""``gmgan sr`` neither destroys nor silently degrades what a user gives it (issue 22).

Here: an output never replaces an input or an existing file the run did not write
(refused, or replaced with ``--overwrite``); non-finite weights are refused on load and
a non-finite output is an error, not a black image; a palette PNG with transparency
keeps its alpha as RGBA, LA and PA files do; an animated GIF is read with a warning that
says only its first frame is used; CLI warnings are one clean ``gmgan: warning: ...``
line.

Covered elsewhere (not repeated): bad image files in a folder, each named
(test_bad_inputs.py: test_sr_names_every_bad_file_and_writes_the_good_ones); two inputs
with one stem (tests/test_cli.py); RGBA, LA and PA inputs keeping their alpha
(tests/test_cli.py).
"""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image
from rel_helpers import child_env

from gmgan.cli import main
from gmgan.imageio import (
    ImageConversionWarning,
    _reset_conversion_warnings,
    read_image,
    write_image,
)
from gmgan.infer import upscale
from gmgan.nets import RRDBNet, load_generator, save_generator


@pytest.fixture
def weights(tmp_path):
    torch.manual_seed(0)
    model = RRDBNet(num_feat=4, num_grow=2, num_block=1)
    return save_generator(model, tmp_path / "g.safetensors")


def _sr(*args) -> int:
    """``gmgan sr ARGS``; the exit status."""
    return main(["sr", *map(str, args)])


def _picture(seed: int, shape=(10, 12, 3)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape).astype(np.uint8)


# ---------------------------------------------------------------- outputs never replace

def test_an_output_never_replaces_an_input(tmp_path, weights, capsys):
    """``a.png`` and ``a_x4.png`` in one folder, written to that folder: a.png's output
    would be a_x4.png, an input, so a.png is refused (named, exit 1) and a_x4.png stays
    as it was and is upscaled from its own pixels."""
    folder = tmp_path / "photos"
    write_image(folder / "a.png", _picture(0))
    write_image(folder / "a_x4.png", _picture(1))
    before = (folder / "a_x4.png").read_bytes()
    assert _sr(folder, "-o", folder, "-w", weights) == 1
    err = capsys.readouterr().err
    assert (folder / "a_x4.png").read_bytes() == before  # the input is intact
    assert f"{folder / 'a.png'}: output {folder / 'a_x4.png'} is one of the inputs" \
        in err
    expected = upscale(load_generator(weights), _picture(1))
    assert np.array_equal(read_image(folder / "a_x4_x4.png"), expected)
    assert sorted(p.name for p in folder.iterdir()) == ["a.png", "a_x4.png",
                                                        "a_x4_x4.png"]
    # Not even --overwrite replaces an input.
    assert _sr(folder / "a.png", folder / "a_x4.png", "-o", folder, "-w", weights,
               "--overwrite") == 1
    assert (folder / "a_x4.png").read_bytes() == before


def test_an_existing_file_is_kept_unless_overwrite(tmp_path, weights, capsys):
    src, out = tmp_path / "in", tmp_path / "out"
    write_image(src / "b.png", _picture(2))
    write_image(src / "c.png", _picture(3))
    (out).mkdir()
    (out / "b_x4.png").write_bytes(b"a file the user keeps")
    assert _sr(src, "-o", out, "-w", weights) == 1
    err = capsys.readouterr().err
    assert (out / "b_x4.png").read_bytes() == b"a file the user keeps"
    assert f"output {out / 'b_x4.png'} exists; not overwritten (give --overwrite" in err
    assert read_image(out / "c_x4.png").shape == (40, 48, 3)  # the other input is done
    assert _sr(src, "-o", out, "-w", weights, "--overwrite") == 0
    assert read_image(out / "b_x4.png").shape == (40, 48, 3)


# ---------------------------------------------------------------- non-finite weights

def test_nan_weights_are_refused_on_load(tmp_path, weights, capsys):
    model = load_generator(weights)
    with torch.no_grad():
        model.conv_last.weight[0, 0, 0, 0] = float("nan")
    bad = save_generator(model, tmp_path / "nan.safetensors")
    write_image(tmp_path / "in.png", _picture(4))
    assert _sr(tmp_path / "in.png", "-o", tmp_path / "out", "-w", bad) == 2
    err = capsys.readouterr().err
    assert (f"{bad}: 1 weight tensor(s) hold NaN or inf values (first: "
            f"conv_last.weight)") in err
    assert not (tmp_path / "out" / "in_x4.png").exists()


def test_a_non_finite_output_is_an_error_not_a_black_image(weights):
    model = load_generator(weights)
    with torch.no_grad():
        model.conv_last.bias.fill_(float("inf"))  # finite input, infinite output
    for tile in (None, 4):
        with pytest.raises(ValueError, match="output holds NaN or inf"):
            upscale(model, _picture(5), tile=tile, overlap=2)
    with pytest.raises(ValueError, match="output holds NaN or inf"):
        upscale(model, torch.rand(1, 3, 8, 8))


# ---------------------------------------------------------------- transparency, frames

def test_palette_png_with_transparency_keeps_its_alpha(tmp_path, weights):
    """A palette PNG whose colour 0 is transparent (tRNS) comes out RGBA, transparent
    where the input is, as an RGBA input does."""
    index = np.zeros((8, 8), np.uint8)
    index[2:6, 2:6] = 1  # an opaque square on a transparent background
    im = Image.fromarray(index, mode="P")
    im.putpalette([0, 0, 0, 200, 30, 30] + [0] * 762)
    im.save(tmp_path / "p.png", transparency=0)
    assert _sr(tmp_path / "p.png", "-o", tmp_path / "out", "-w", weights) == 0
    with Image.open(tmp_path / "out" / "p_x4.png") as out:
        assert out.mode == "RGBA"
        alpha = np.asarray(out.getchannel("A"))
    assert alpha.shape == (32, 32)
    assert alpha[0, 0] == 0 and alpha[16, 16] == 255  # background clear, square opaque


def test_animated_gif_warns_that_only_its_first_frame_is_read(tmp_path, weights):
    """read_image warns; ``gmgan sr`` (a real process: pytest records warnings
    in-process) prints the warning as one clean ``gmgan: warning: ...`` line, without
    gmgan's source file, line number or code line."""
    gif = tmp_path / "anim.gif"
    frames = [Image.fromarray(_picture(i, (8, 8, 3))).convert("P") for i in range(3)]
    frames[0].save(gif, save_all=True, append_images=frames[1:], duration=50)
    _reset_conversion_warnings()
    with pytest.warns(ImageConversionWarning,
                      match=r"only its first frame.*anim.gif, 3 frames"):
        read_image(gif)
    proc = subprocess.run([sys.executable, "-m", "gmgan", "sr", str(gif),
                           "-o", str(tmp_path / "out"), "-w", str(weights)],
                          capture_output=True, text=True, env=child_env(), timeout=300,
                          check=False)
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if "warning" in line.lower()]
    assert all(line.startswith("gmgan: warning: ") for line in lines), proc.stderr
    assert (f"gmgan: warning: animated / multi-frame image: only its first frame is "
            f"read (first seen in {gif}, 3 frames; later images of this kind are "
            f"converted silently)") in lines, proc.stderr
    assert ".py:" not in proc.stderr
