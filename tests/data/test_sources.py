"""gmgan.data.sources: the one rule for "a set name or a path", checked against what
each caller used to accept (train_set, dataset_dir, make_set's sources)."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from gmgan.data.registry import DATASETS, get_info
from gmgan.data.sources import resolve_image_source
from gmgan.imageio import write_image


def _image(path: Path) -> Path:
    return write_image(path, np.zeros((4, 4, 3), np.uint8))


def test_a_registered_name_is_the_set_case_insensitively():
    assert resolve_image_source("T91") is get_info("T91")
    assert resolve_image_source("set5") is get_info("Set5")


def test_a_name_wins_over_a_folder_of_that_name_and_a_path_reaches_the_folder(
        tmp_path, monkeypatch):
    _image(tmp_path / "T91" / "mine.png")
    monkeypatch.chdir(tmp_path)
    assert resolve_image_source("T91") is get_info("T91")
    assert resolve_image_source("./T91") == Path("T91")
    assert resolve_image_source(Path("T91")) == Path("T91")  # a Path is never a name
    assert resolve_image_source(f"{tmp_path}{os.sep}T91") == tmp_path / "T91"


def test_folders_count_images_in_sub_folders_and_expand_the_home(tmp_path, monkeypatch):
    _image(tmp_path / "photos" / "class_a" / "x.JPG")
    assert resolve_image_source(tmp_path / "photos") == tmp_path / "photos"
    monkeypatch.setenv("HOME", str(tmp_path))
    assert resolve_image_source("~/photos") == tmp_path / "photos"
    monkeypatch.chdir(tmp_path)
    assert resolve_image_source("photos") == Path("photos")  # not a set name: a folder


def test_a_folder_without_images_is_refused(tmp_path):
    (tmp_path / "empty" / "sub").mkdir(parents=True)
    (tmp_path / "empty" / "sub" / "notes.txt").write_text("x")
    (tmp_path / "empty" / "._x.png").write_bytes(b"a macOS resource fork, not an image")
    with pytest.raises(ValueError, match="no image files .* in .*empty, nor in its"):
        resolve_image_source(tmp_path / "empty")
    with pytest.raises(ValueError, match=r"\(train_set='.*empty'\)"):
        resolve_image_source(str(tmp_path / "empty"), field="train_set")


def test_unknown_names_and_missing_paths_name_the_value_and_the_known_sets(tmp_path):
    with pytest.raises(FileNotFoundError) as info:
        resolve_image_source("NoSuchSet", field="train_set")
    message = str(info.value)
    assert message.startswith("train_set 'NoSuchSet' is neither a known data set (")
    assert all(name in message for name in DATASETS)
    assert message.endswith("nor an existing folder of images")
    with pytest.raises(FileNotFoundError, match=r"^'/no/such/folder' is neither"):
        resolve_image_source("/no/such/folder")


def test_files_only_where_allowed(tmp_path):
    image = _image(tmp_path / "one.png")
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(FileNotFoundError, match="nor an existing folder of images$"):
        resolve_image_source(image)
    assert resolve_image_source(image, allow_file=True) == image
    with pytest.raises(ValueError, match="notes.txt is not an image file"):
        resolve_image_source(tmp_path / "notes.txt", allow_file=True)
    with pytest.raises(FileNotFoundError, match="folder of images or image file$"):
        resolve_image_source(tmp_path / "gone.png", allow_file=True)
