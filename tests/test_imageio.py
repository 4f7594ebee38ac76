"""gmgan.imageio: conversions checked against PIL's own conversions or exact arithmetic, and clear
errors for files that cannot be read."""
from __future__ import annotations

import struct
import warnings
import zlib
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from gmgan import imageio
from gmgan.imageio import (ImageConversionWarning, ImageReadError, as_rgb, image_to_tensor, list_images,
                           read_image, tensor_to_image, write_image)

# Conversions are meant to warn; tests that check the warnings record them explicitly.
pytestmark = pytest.mark.filterwarnings("ignore::gmgan.imageio.ImageConversionWarning")


@pytest.fixture(autouse=True)
def _fresh_warning_registry():
    imageio._reset_conversion_warnings()
    yield
    imageio._reset_conversion_warnings()


def _rng_image(shape, seed=0, high=256, dtype=np.uint8):
    return np.random.default_rng(seed).integers(0, high, size=shape).astype(dtype)


def _round_16_to_8(v: int) -> int:
    """round(v * 255 / 65535) with exact rationals (v / 257 is never exactly half-way)."""
    return round(Fraction(v * 255, 65535))


def _png_16bit(path: Path, arr: np.ndarray) -> None:
    """A minimal PNG encoder for 16-bit RGB (colour type 2) or RGBA (6), independent of PIL/OpenCV."""
    h, w, c = arr.shape
    colour_type = {3: 2, 4: 6}[c]

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))  # filter type 0
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, colour_type, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    path.write_bytes(png)


# --------------------------------------------------------------------------------------------
# conversions
# --------------------------------------------------------------------------------------------

def test_rgb_png_round_trip_is_exact(tmp_path):
    img = _rng_image((7, 9, 3))
    Image.fromarray(img).save(tmp_path / "rgb.png")
    out = read_image(tmp_path / "rgb.png")
    assert out.dtype == np.uint8 and out.shape == (7, 9, 3)
    np.testing.assert_array_equal(out, img)


@pytest.mark.parametrize("suffix", [".bmp", ".tif", ".webp", ".tiff"])
def test_lossless_formats_round_trip(tmp_path, suffix):
    img = _rng_image((6, 7, 3), seed=12)
    path = write_image(tmp_path / f"x{suffix}", img)
    np.testing.assert_array_equal(read_image(path), img)
    np.testing.assert_array_equal(np.asarray(Image.open(path).convert("RGB")), img)


def test_jpeg_reads_like_pil(tmp_path):
    path = write_image(tmp_path / "x.jpg", _rng_image((16, 16, 3), seed=13), quality=90)
    np.testing.assert_array_equal(read_image(path), np.asarray(Image.open(path)))


def test_grey_to_rgb_and_keep_grey(tmp_path):
    grey = _rng_image((6, 5))
    Image.fromarray(grey, mode="L").save(tmp_path / "g.png")
    rgb = read_image(tmp_path / "g.png")
    assert rgb.shape == (6, 5, 3)
    for ch in range(3):
        np.testing.assert_array_equal(rgb[:, :, ch], grey)
    # PIL's own L -> RGB conversion gives the same.
    np.testing.assert_array_equal(rgb, np.asarray(Image.open(tmp_path / "g.png").convert("RGB")))
    kept = read_image(tmp_path / "g.png", keep_grey=True)
    assert kept.shape == (6, 5)
    np.testing.assert_array_equal(kept, grey)


def test_rgba_drops_alpha_like_pil(tmp_path):
    rgba = _rng_image((5, 4, 4), seed=1)
    rgba[..., 3] = np.array([0, 64, 128, 255])[None, :]  # various alphas: must not change colours
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    np.testing.assert_array_equal(out, rgba[..., :3])
    np.testing.assert_array_equal(out, np.asarray(Image.open(tmp_path / "a.png").convert("RGB")))


def test_grey_alpha(tmp_path):
    la = _rng_image((4, 3, 2), seed=2)
    Image.fromarray(la, mode="LA").save(tmp_path / "la.png")
    out = read_image(tmp_path / "la.png")
    np.testing.assert_array_equal(out, np.repeat(la[..., :1], 3, axis=2))
    np.testing.assert_array_equal(read_image(tmp_path / "la.png", keep_grey=True), la[..., 0])


def test_palette_matches_pil(tmp_path):
    img = Image.fromarray(_rng_image((8, 8, 3), seed=3)).quantize(colors=7)
    assert img.mode == "P"
    img.save(tmp_path / "p.png")
    out = read_image(tmp_path / "p.png")
    np.testing.assert_array_equal(out, np.asarray(Image.open(tmp_path / "p.png").convert("RGB")))
    # With a transparent palette entry the colours are still the palette colours.
    img.save(tmp_path / "pt.png", transparency=0)
    np.testing.assert_array_equal(read_image(tmp_path / "pt.png"),
                                  np.asarray(Image.open(tmp_path / "pt.png").convert("RGB")))


def test_one_bit(tmp_path):
    bits = _rng_image((5, 8), seed=4, high=2).astype(bool)
    Image.fromarray(bits).save(tmp_path / "b.png")
    out = read_image(tmp_path / "b.png", keep_grey=True)
    np.testing.assert_array_equal(out, bits.astype(np.uint8) * 255)


def test_cmyk_matches_pil(tmp_path):
    cmyk = Image.frombytes("CMYK", (4, 3), _rng_image((3, 4, 4), seed=5).tobytes())
    cmyk.save(tmp_path / "c.tif")
    out = read_image(tmp_path / "c.tif")
    np.testing.assert_array_equal(out, np.asarray(Image.open(tmp_path / "c.tif").convert("RGB")))


def test_16bit_grey_rounds(tmp_path):
    values = np.array([0, 1, 128, 129, 385, 386, 1000, 32767, 32896, 65279, 65534, 65535,
                       257 * 17, 257 * 200 + 128, 257 * 200 + 129], dtype=np.uint16).reshape(3, 5)
    Image.fromarray(values).save(tmp_path / "g16.png")
    assert Image.open(tmp_path / "g16.png").mode.startswith("I;16")
    out = read_image(tmp_path / "g16.png", keep_grey=True)
    expected = np.vectorize(_round_16_to_8)(values.astype(np.int64)).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)
    # 257 * v8 maps back to v8 exactly.
    assert values[2, 2] == 257 * 17 and out[2, 2] == 17


def test_48bit_rgb_png_uses_all_16_bits(tmp_path):
    arr = np.array([[[1000, 2000, 65535], [128, 129, 0]],
                    [[257 * 5, 257 * 5 + 128, 257 * 5 + 129], [40000, 30000, 20000]]], dtype=np.uint16)
    _png_16bit(tmp_path / "rgb48.png", arr)
    out = read_image(tmp_path / "rgb48.png")
    expected = np.vectorize(_round_16_to_8)(arr.astype(np.int64)).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)
    # PIL alone keeps the high byte (1000 -> 3); the rounded value is 4.
    assert out[0, 0, 0] == 4 and (1000 >> 8) == 3


def test_64bit_rgba_png(tmp_path):
    arr = np.array([[[1000, 2000, 3000, 0], [65535, 0, 257, 65535]]], dtype=np.uint16)
    _png_16bit(tmp_path / "rgba64.png", arr)
    out = read_image(tmp_path / "rgba64.png")
    expected = np.vectorize(_round_16_to_8)(arr[..., :3].astype(np.int64)).astype(np.uint8)
    np.testing.assert_array_equal(out, expected)


def test_exif_orientation_applied(tmp_path):
    img = _rng_image((4, 6, 3), seed=6)
    exif = Image.Exif()
    exif[0x0112] = 6  # EXIF: "rotate 90 degrees clockwise to display"
    Image.fromarray(img).save(tmp_path / "o.png", exif=exif)
    with pytest.warns(ImageConversionWarning, match="EXIF orientation"):
        out = read_image(tmp_path / "o.png")
    np.testing.assert_array_equal(out, np.rot90(img, k=-1))


def test_conversion_warned_once_per_kind(tmp_path):
    for i in range(3):
        Image.fromarray(_rng_image((3, 3), seed=i), mode="L").save(tmp_path / f"g{i}.png")
    Image.fromarray(_rng_image((3, 3, 4)), mode="RGBA").save(tmp_path / "a.png")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(3):
            read_image(tmp_path / f"g{i}.png")
        read_image(tmp_path / "a.png")
        read_image(tmp_path / "a.png")
    messages = [str(w.message) for w in caught if issubclass(w.category, ImageConversionWarning)]
    assert len(messages) == 2, messages
    assert "grey" in messages[0] and "g0.png" in messages[0]
    assert "RGBA" in messages[1] and "alpha" in messages[1]
    # Plain RGB reads warn nothing.
    imageio._reset_conversion_warnings()
    Image.fromarray(_rng_image((3, 3, 3))).save(tmp_path / "rgb.png")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        read_image(tmp_path / "rgb.png")


def test_real_single_channel_set14_bridge(data_dir):
    path = data_dir / "benchmark" / "Set14" / "HR" / "bridge.png"
    grey = np.asarray(Image.open(path))
    assert grey.ndim == 2
    np.testing.assert_array_equal(read_image(path, keep_grey=True), grey)
    np.testing.assert_array_equal(read_image(path), np.stack([grey] * 3, axis=2))


# --------------------------------------------------------------------------------------------
# errors
# --------------------------------------------------------------------------------------------

def _assert_names_file(exc_info, path: Path):
    assert str(path) in str(exc_info.value)
    assert isinstance(exc_info.value, ValueError)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        read_image(tmp_path / "nope.png")


def test_empty_file(tmp_path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    with pytest.raises(ImageReadError, match="empty") as exc:
        read_image(path)
    _assert_names_file(exc, path)


def test_not_an_image(tmp_path):
    path = tmp_path / "notes.png"
    path.write_text("this is not a picture\n" * 20)
    with pytest.raises(ImageReadError, match="not a recognised image") as exc:
        read_image(path)
    _assert_names_file(exc, path)


def test_folder_is_not_an_image(tmp_path):
    with pytest.raises(ImageReadError, match="folder"):
        read_image(tmp_path)


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_file_is_an_error_even_if_pil_is_told_to_pad(tmp_path, suffix, monkeypatch):
    img = _rng_image((64, 64, 3), seed=7)
    full = tmp_path / f"full{suffix}"
    Image.fromarray(img).save(full)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)  # as some libraries do
    with pytest.raises(ImageReadError, match="truncated") as exc:
        read_image(cut)
    _assert_names_file(exc, cut)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # the global setting is restored


def test_corrupt_png_data(tmp_path):
    img = _rng_image((32, 32, 3), seed=8)
    good = tmp_path / "good.png"
    Image.fromarray(img).save(good)
    data = bytearray(good.read_bytes())
    idat = data.index(b"IDAT")
    for i in range(idat + 20, idat + 60):  # scribble over the compressed pixels
        data[i] ^= 0xFF
    bad = tmp_path / "bad.png"
    bad.write_bytes(bytes(data))
    with pytest.raises(ImageReadError) as exc:
        read_image(bad)
    _assert_names_file(exc, bad)


@pytest.mark.parametrize("channels", [0, 5, 6])
def test_as_rgb_rejects_channel_counts(channels):
    arr = np.zeros((4, 4, channels), np.uint8)
    with pytest.raises(ImageReadError, match=f"{channels} channels") as exc:
        as_rgb(arr, name="weird.tif")
    assert "weird.tif" in str(exc.value)


def test_as_rgb_other_errors():
    with pytest.raises(ValueError, match="shape"):
        as_rgb(np.zeros((2, 2, 3, 1), np.uint8), name="x")
    with pytest.raises(ValueError, match="float32"):
        as_rgb(np.zeros((2, 2, 3), np.float32), name="x")
    with pytest.raises(ValueError, match="no pixels"):
        as_rgb(np.zeros((0, 3, 3), np.uint8), name="x")


# --------------------------------------------------------------------------------------------
# writing and tensors
# --------------------------------------------------------------------------------------------

def test_write_image_uint8_and_float(tmp_path):
    img = _rng_image((5, 6, 3), seed=9)
    out = write_image(tmp_path / "a" / "b" / "x.png", img)  # creates parent folders
    np.testing.assert_array_equal(np.asarray(Image.open(out)), img)
    # float: v * 255 rounded half up, clipped to [0, 1] first.
    f = np.array([[0.0, 0.5 / 255, 1.49 / 255, 1.5 / 255, 0.5, 1.0, -0.2, 1.7]], dtype=np.float64)
    write_image(tmp_path / "f.png", f)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "f.png")),
                                  [[0, 1, 1, 2, 128, 255, 0, 255]])
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp files left


def test_write_image_errors(tmp_path):
    with pytest.raises(ValueError, match="suffix"):
        write_image(tmp_path / "x.gifx", np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ValueError, match="NaN"):
        write_image(tmp_path / "x.png", np.full((2, 2), np.nan))
    with pytest.raises(ValueError, match="shape"):
        write_image(tmp_path / "x.png", np.zeros((2, 2, 5), np.uint8))
    with pytest.raises(TypeError, match="tensor_to_image"):
        write_image(tmp_path / "x.png", torch.zeros(3, 2, 2))
    assert not (tmp_path / "x.png").exists()


def test_tensor_round_trip():
    img = _rng_image((4, 5, 3), seed=10)
    t = image_to_tensor(img)
    assert t.shape == (1, 3, 4, 5) and t.dtype == torch.float32
    assert float(t[0, 1, 2, 3]) == pytest.approx(img[2, 3, 1] / 255.0)
    np.testing.assert_array_equal(tensor_to_image(t), img)
    np.testing.assert_array_equal(tensor_to_image(t[0]), img)
    grey = _rng_image((4, 5), seed=11)
    assert image_to_tensor(grey).shape == (1, 1, 4, 5)


def test_tensor_to_image_rounds_and_clips():
    t = torch.tensor([[[-0.1, 0.5 / 255, 1.49 / 255, 0.5, 1.2]]])
    np.testing.assert_array_equal(tensor_to_image(t)[..., 0], [[0, 1, 1, 128, 255]])


def test_tensor_errors():
    with pytest.raises(ValueError, match="batch of one"):
        tensor_to_image(torch.zeros(2, 3, 4, 4))
    with pytest.raises(ValueError, match="uint8"):
        image_to_tensor(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        tensor_to_image(torch.full((3, 2, 2), float("nan")))


def test_list_images(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing"):
        list_images(tmp_path / "missing")
    (tmp_path / "d").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        list_images(tmp_path / "d")
    for name in ["b.PNG", "a.jpg", "c.bmp", "notes.txt", "._a.png"]:
        (tmp_path / "d" / name).write_bytes(b"x")
    (tmp_path / "d" / "sub").mkdir()
    (tmp_path / "d" / "sub" / "z.tif").write_bytes(b"x")
    assert [p.name for p in list_images(tmp_path / "d")] == ["a.jpg", "b.PNG", "c.bmp"]
    assert [p.name for p in list_images(tmp_path / "d", recursive=True)] == ["a.jpg", "b.PNG", "c.bmp", "z.tif"]


@pytest.mark.parametrize("shape", [(7, 5), (7, 5, 1), (7, 5, 3)])
def test_image_to_tensor_of_a_read_only_image_is_silent_and_owns_its_memory(shape):
    # cached benchmark images are read-only: torch warns on a read-only numpy view
    img = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    img.setflags(write=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = image_to_tensor(img)
    chw = img.reshape(7, 5, -1).transpose(2, 0, 1)
    # torch's own uint8 -> float32 / 255, the reference for the values
    expected = torch.tensor(chw.copy()).unsqueeze(0).to(torch.float32) / 255.0
    assert torch.equal(t, expected)
    t.add_(1.0)  # a copy: writing to the tensor leaves the image as it was
    assert img.max() <= 255 and torch.all(t >= 1.0)
