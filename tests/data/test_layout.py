"""gmgan.data.layout: where a set lies, how it is counted, the completion marker, the
read-only cache rule, and ``gmgan data list``'s rows."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest

from gmgan.data.layout import (MARKER_NAME, count_images, install_root, list_datasets,
                               locate, place_folder, search_roots, set_folder,
                               set_status, write_marker)
from gmgan.data.registry import DatasetInfo, get_info, read_manifest, write_manifest
from gmgan.imageio import write_image


def _info(count: int | None = 3, subdir: str = "train/tiny/HR") -> DatasetInfo:
    return DatasetInfo("tiny", "test images", "train", subdir, count)


def _images(folder, n: int) -> None:
    for i in range(n):
        write_image(folder / f"im{i}.png", np.full((4, 4, 3), i, np.uint8))


def test_count_images_skips_hidden_files_other_files_and_sub_folders(tmp_path):
    assert count_images(tmp_path / "missing") == 0
    _images(tmp_path, 2)
    (tmp_path / "._im0.png").write_bytes(b"resource fork")
    (tmp_path / "notes.txt").write_text("x")
    _images(tmp_path / "deeper", 1)
    assert count_images(tmp_path) == 2


def test_set_folder_holds_hr_and_the_lr_folders():
    assert set_folder(get_info("Set5")) == "benchmark/Set5"
    assert set_folder(get_info("T91")) == get_info("T91").subdir
    assert set_folder(_info(subdir="HR")) == "HR"  # at the root: no parent to take


def test_status_by_count_marker_and_manifest(tmp_path):
    info = _info(count=3)
    folder = tmp_path / info.subdir
    assert set_status(info, tmp_path) == ("missing", 0)
    _images(folder, 2)
    assert set_status(info, tmp_path) == ("incomplete", 2)
    write_marker(folder, info, 2, "test", None)  # a mirror that holds 2 of the 3
    assert set_status(info, tmp_path) == ("subset", 2)
    record = json.loads((folder / MARKER_NAME).read_text())
    assert (record["name"], record["count"], record["source"]) == ("tiny", 2, "test")
    _images(folder, 3)  # a third image that the marker does not vouch for: by count now
    assert set_status(info, tmp_path) == ("complete", 3)
    (folder / "im2.png").unlink()
    (folder / MARKER_NAME).write_text("{not json")
    assert set_status(info, tmp_path) == ("incomplete", 2)
    (folder / MARKER_NAME).unlink()
    write_manifest(tmp_path)  # a cache whose manifest lists exactly these two: a subset
    assert set_status(info, tmp_path) == ("subset", 2)
    assert set_status(_info(count=None), tmp_path) == ("complete", 2)


def test_locate_and_search_roots(tmp_path):
    info = _info(count=2)
    assert search_roots(tmp_path) == [tmp_path]
    assert locate(info, tmp_path) is None
    _images(tmp_path / info.subdir, 2)
    assert locate(info, tmp_path) == tmp_path / info.subdir


def test_place_folder_replaces_an_incomplete_one(tmp_path):
    final = tmp_path / "cache" / "set"
    _images(final, 1)
    staged = tmp_path / "staged"
    _images(staged, 3)
    place_folder(staged, final)
    assert not staged.exists() and count_images(final) == 3


@pytest.mark.skipif(os.name == "nt", reason="POSIX permission bits")
def test_a_folder_without_write_bits_sends_installs_to_derived(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("GMGAN_DATA", str(cache))
    monkeypatch.setenv("GMGAN_DERIVED", str(tmp_path / "derived"))
    assert install_root(None) == cache.resolve()
    assert install_root(tmp_path / "mine") == tmp_path / "mine"
    cache.chmod(0o555)
    try:
        assert install_root(None) == (tmp_path / "derived" / "sets").resolve()
    finally:
        cache.chmod(0o755)


def test_list_datasets_rows(data_dir):
    rows = {row["name"]: row for row in list_datasets()}
    assert set(rows) >= {"DIV2K", "Set5", "Urban100", "samples"}
    set5 = rows["Set5"]
    assert (set5["status"], set5["present"], set5["expected"]) == ("complete", 5, 5)
    assert set5["location"] == str(data_dir / "benchmark" / "Set5" / "HR")
    assert set5["bytes"] > 0
    assert rows["DIV2K"]["download_bytes"] == 3530603713
    if ((data_dir / "benchmark" / "Urban100" / "HR").is_dir()
            and read_manifest(data_dir) is not None):
        urban = rows["Urban100"]
        assert (urban["status"], urban["present"]) == ("subset", 61)
