"""gmgan.data.registry: the entries are well formed, their counts agree with the shared cache, and
the MANIFEST.tsv check finds modified files."""
from __future__ import annotations

import shutil
from pathlib import PurePosixPath

import pytest

from gmgan.data.registry import (DATASETS, KINDS, MANIFEST_NAME, DatasetInfo, ManifestError, Mirror, get_info,
                                 read_manifest, sha256_file, verify_manifest)
from gmgan.imageio import list_images


def test_every_entry_is_complete():
    assert len({name.lower() for name in DATASETS}) == len(DATASETS)
    for name, info in DATASETS.items():
        assert info.name == name
        assert info.kind in KINDS
        assert info.subdir and not info.subdir.startswith("/") and ".." not in PurePosixPath(info.subdir).parts
        assert info.description and info.source and info.licence and info.citation, name
        if name == "samples":
            assert info.urls == ()  # made offline from scikit-image
            continue
        if info.parts:  # a composite set: made from registered sets that have URLs
            assert info.urls == () and all(get_info(part).urls or get_info(part).parts for part in info.parts)
            continue
        assert info.urls, f"{name} has no download URL"
        for mirror in info.mirrors:
            assert mirror.url.startswith(("https://", "http://"))
            assert mirror.archive_name.endswith((".zip", ".tar", ".tgz", ".tar.gz")), mirror.archive_name
            assert mirror.sha256 is None or len(mirror.sha256) == 64


def test_expected_counts_of_well_known_sets():
    expected = {"DIV2K": 800, "DIV2K-valid": 100, "Flickr2K": 2650, "BSDS200": 200, "BSDS300-test": 100,
                "T91": 91, "Set5": 5, "Set14": 14, "BSD100": 100, "Urban100": 100,
                "DF2K": 3450, "OST-1342": 1342, "DF2K-OST": 3450 + 1342}  # PAPER.md, section 4.2
    assert {name: DATASETS[name].count for name in expected} == expected


def test_no_two_sets_share_a_folder():
    subdirs = [info.subdir for info in DATASETS.values()]
    assert len(subdirs) == len(set(subdirs))


def test_get_info_is_case_insensitive_and_lists_names_on_error():
    assert get_info("set5") is DATASETS["Set5"]
    assert get_info("URBAN100") is DATASETS["Urban100"]
    assert get_info("B100") is DATASETS["BSD100"]
    with pytest.raises(KeyError) as exc:
        get_info("Set6")
    assert "Set6" in str(exc.value) and "Set14" in str(exc.value) and "DIV2K" in str(exc.value)


def test_mirror_and_info_validation():
    with pytest.raises(ValueError, match="end in '/'"):
        Mirror("https://example.org/a.zip", prefix="images")
    with pytest.raises(ValueError, match="sha256"):
        Mirror("https://example.org/a.zip", sha256="abc")
    with pytest.raises(ValueError, match="http"):
        Mirror("ftp://example.org/a.zip")
    with pytest.raises(ValueError, match="relative"):
        DatasetInfo("x", "x", "train", "../outside", 3)
    with pytest.raises(ValueError, match="kind"):
        DatasetInfo("x", "x", "test", "train/x", 3)


@pytest.mark.parametrize("name", ["Set5", "Set14", "BSD100", "T91", "BSDS200", "OST300-samples"])
def test_counts_match_the_shared_cache(data_dir, name):
    info = DATASETS[name]
    folder = data_dir / info.subdir
    if not folder.is_dir():
        pytest.skip(f"{folder} is not in this data cache")
    assert len(list_images(folder)) == info.count


def test_shared_cache_matches_its_manifest_for_set5_and_set14(data_dir):
    if read_manifest(data_dir) is None:
        pytest.skip("this data cache has no MANIFEST.tsv")
    assert verify_manifest(data_dir, "benchmark/Set5/HR") == 5
    assert verify_manifest(data_dir, "benchmark/Set14/HR") == 14


def _copy_with_manifest(data_dir, tmp_path, subdir):
    """Copy a cache folder and its manifest rows into tmp_path."""
    manifest = read_manifest(data_dir)
    if manifest is None:
        pytest.skip("this data cache has no MANIFEST.tsv")
    rows = [e for p, e in manifest.items() if p.startswith(subdir + "/")]
    (tmp_path / subdir).mkdir(parents=True)
    lines = ["path\tsha256\tbytes\twidth"]
    for e in rows:
        shutil.copyfile(data_dir / e.path, tmp_path / e.path)
        lines.append(f"{e.path}\t{e.sha256}\t{e.bytes}\t0")
    (tmp_path / MANIFEST_NAME).write_text("\n".join(lines) + "\n")
    return rows


def test_manifest_detects_modified_missing_and_resized_files(data_dir, tmp_path):
    rows = _copy_with_manifest(data_dir, tmp_path, "benchmark/Set5/HR")
    assert verify_manifest(tmp_path, "benchmark/Set5/HR") == len(rows) == 5

    bird = tmp_path / "benchmark/Set5/HR/bird.png"
    data = bytearray(bird.read_bytes())
    data[len(data) // 2] ^= 0x01  # one bit, same size
    bird.write_bytes(bytes(data))
    with pytest.raises(ManifestError) as exc:
        verify_manifest(tmp_path, "benchmark/Set5/HR")
    message = str(exc.value)
    assert "benchmark/Set5/HR/bird.png" in message and "SHA256" in message
    assert sha256_file(bird) in message
    assert "baby.png" not in message  # only the changed file is named
    # Size-only checking does not see a same-size change ...
    assert verify_manifest(tmp_path, "benchmark/Set5/HR", check_sha256=False) == 5

    # ... but sees a resized or missing one.
    (tmp_path / "benchmark/Set5/HR/head.png").write_bytes(b"short")
    (tmp_path / "benchmark/Set5/HR/woman.png").unlink()
    with pytest.raises(ManifestError) as exc:
        verify_manifest(tmp_path, "benchmark/Set5/HR", check_sha256=False)
    problems = exc.value.problems
    assert any("SIZE" in p and "head.png" in p for p in problems)
    assert any("MISSING" in p and "woman.png" in p for p in problems)
    assert len(problems) == 2


def test_manifest_absent_or_malformed(tmp_path):
    assert read_manifest(tmp_path) is None
    assert verify_manifest(tmp_path) == 0
    (tmp_path / MANIFEST_NAME).write_text("path\tbytes\na.png\t3\n")
    with pytest.raises(ValueError, match="sha256"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST_NAME).write_text("path\tsha256\tbytes\na.png\tabc\tnot-a-number\n")
    with pytest.raises(ValueError, match="line 2"):
        read_manifest(tmp_path)
