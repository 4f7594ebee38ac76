"""Data on first use through a data mirror (GMGAN_DATA_MIRROR) served by a real HTTP server on
127.0.0.1: a good mirror installs a set with its LR folders (also when GMGAN_DATA is read-only), a
bad one (404, short file, wrong checksum, no manifest) fails naming the file and leaves no partial
set, offline use keeps the clear error, and composite sets are built from their parts."""
from __future__ import annotations

import functools
import hashlib
import importlib
import socket
import stat
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from gmgan import online
from gmgan.data import load_benchmark, transfer
from gmgan.data.download import fetch, require
from gmgan.data.layout import locate, set_folder
from gmgan.data.mirror import MIRROR_ENV, file_url, mirror_url
from gmgan.data.registry import (DATASETS, MANIFEST_NAME, DatasetInfo, get_info, parse_manifest,
                                 write_manifest)
from gmgan.data.transfer import DownloadError
from gmgan.imageio import write_image
from gmgan.resize import imresize

registry = importlib.import_module("gmgan.data.registry")

pytestmark = pytest.mark.timeout(60)

SET5 = ("baby", "bird", "butterfly", "head", "woman")


class _LoggingHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        super().do_GET()


@pytest.fixture
def mirror(tmp_path):
    """A fake data cache with Set5 (16x16 HR, MATLAB LR), served over HTTP below /data-cache (a
    mirror need not be at a server's root). Yields (cache folder, base URL, requested paths)."""
    root = tmp_path / "srv" / "data-cache"
    rng = np.random.default_rng(0)
    for name in SET5:
        hr = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        write_image(root / "benchmark/Set5/HR" / f"{name}.png", hr)
        write_image(root / "benchmark/Set5/LR_bicubic/X4" / f"{name}x4.png", imresize(hr, 1 / 4))
    write_manifest(root)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_LoggingHandler, directory=str(root.parent)))
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    online.clear_cache()
    yield root, f"http://127.0.0.1:{server.server_address[1]}/data-cache", server.requests
    server.shutdown()
    server.server_close()


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    cache.mkdir()
    monkeypatch.setenv("GMGAN_DATA", str(cache))
    monkeypatch.setenv("GMGAN_DERIVED", str(tmp_path / "derived"))
    monkeypatch.delenv("GMGAN_OFFLINE", raising=False)
    monkeypatch.setattr(transfer, "RETRY_BACKOFF_S", 0.0)
    registry._MATCHED.clear()
    return cache


def _set_files(cache: Path) -> list[str]:
    """Files of sets in the cache (not the download area, not lock files)."""
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*")
                  if p.is_file() and p.relative_to(cache).parts[0] != "downloads" and p.suffix != ".lock")


def _leftovers(cache: Path) -> list[str]:
    """Partial files and build folders anywhere in the cache."""
    return sorted(str(p.relative_to(cache)) for p in cache.rglob("*")
                  if p.name.endswith(".part") or p.name.startswith((".mirror-", ".extract-", ".compose-")))


def test_a_missing_set_comes_from_the_mirror_with_its_lr_folder(mirror, empty_cache, monkeypatch, capsys):
    root, base, requests = mirror
    monkeypatch.setenv(MIRROR_ENV, base + "/")
    assert mirror_url() == base
    images = load_benchmark("Set5")
    assert [im.name for im in images] == sorted(SET5)
    assert (empty_cache / "benchmark/Set5/HR/baby.png").read_bytes() == (root / "benchmark/Set5/HR/baby.png").read_bytes()
    assert (empty_cache / "benchmark/Set5/LR_bicubic/X4/babyx4.png").is_file()
    # One line says what happened; every file of the set, and nothing else, was requested.
    err = capsys.readouterr().err
    assert "Set5 is not in the data cache: downloading it from 127.0.0.1" in err
    assert sorted(requests) == sorted(["/data-cache/" + MANIFEST_NAME]
                                      + [f"/data-cache/benchmark/Set5/HR/{n}.png" for n in SET5]
                                      + [f"/data-cache/benchmark/Set5/LR_bicubic/X4/{n}x4.png" for n in SET5])
    assert _leftovers(empty_cache) == [] and not any((empty_cache / "downloads/mirror").rglob("*.png"))
    # Present now: the next call uses no network.
    requests.clear()
    assert load_benchmark("Set5", limit=1)[0].name == "baby" and requests == []


def test_read_only_data_cache_downloads_into_gmgan_derived(mirror, empty_cache, tmp_path, monkeypatch):
    root, base, _ = mirror
    monkeypatch.setenv(MIRROR_ENV, base)
    empty_cache.chmod(stat.S_IRUSR | stat.S_IXUSR)  # no write bits: read-only, even for root
    try:
        hr = require("Set5", progress=False)
    finally:
        empty_cache.chmod(0o755)
    assert hr == tmp_path / "derived" / "sets" / "benchmark/Set5/HR"
    assert not (empty_cache / "benchmark").exists()
    assert locate("Set5") == hr and len(load_benchmark("Set5")) == 5


def test_offline_keeps_the_clear_error_and_touches_nothing(mirror, empty_cache, monkeypatch):
    root, base, requests = mirror
    monkeypatch.setenv(MIRROR_ENV, base)
    monkeypatch.setenv("GMGAN_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match=r"GMGAN_DATA=.*GMGAN_OFFLINE is set.*gmgan data fetch Set5"):
        load_benchmark("Set5")
    assert requests == [] and list(empty_cache.iterdir()) == []


def test_unreachable_mirror_is_named(empty_cache, monkeypatch):
    with socket.socket() as s:  # a port that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{port}/cache")
    online.clear_cache()
    with pytest.raises(FileNotFoundError, match=rf"mirror GMGAN_DATA_MIRROR=http://127.0.0.1:{port}/cache cannot be reached"):
        require("Set14")


@pytest.mark.parametrize("fault", ["missing", "truncated", "corrupt"])
def test_bad_mirror_fails_naming_the_file_and_leaves_no_partial_set(mirror, empty_cache, monkeypatch, fault):
    root, base, requests = mirror
    monkeypatch.setenv(MIRROR_ENV, base)
    bad = root / "benchmark/Set5/HR/head.png"
    data = bad.read_bytes()
    if fault == "missing":
        bad.unlink()
        expected, error = "HTTP 404", DownloadError
    elif fault == "truncated":
        bad.write_bytes(data[: len(data) // 2])
        expected, error = f"reports {len(data) // 2} bytes, expected {len(data)}", DownloadError
    else:
        bad.write_bytes(bytes(b ^ 0x55 for b in data))  # same size, other bytes
        expected, error = "sha256 mismatch", DownloadError
    with pytest.raises(error) as exc:
        require("Set5", progress=False)
    message = str(exc.value)
    assert file_url(base, "benchmark/Set5/HR/head.png") in message and expected in message
    assert _set_files(empty_cache) == []  # no set folder, not even a partial one
    assert not (empty_cache / "benchmark/Set5/HR").exists()
    assert _leftovers(empty_cache) == [] and locate("Set5") is None
    # Resumable: repaired, the mirror is asked only for the file that failed.
    bad.write_bytes(data)
    requests.clear()
    require("Set5", progress=False)
    assert sorted(requests) == ["/data-cache/" + MANIFEST_NAME, "/data-cache/benchmark/Set5/HR/head.png"]
    assert len(load_benchmark("Set5")) == 5


def test_mirror_without_manifest_or_without_the_set(mirror, empty_cache, monkeypatch):
    root, base, _ = mirror
    monkeypatch.setenv(MIRROR_ENV, base)
    with pytest.raises(DownloadError, match=r"has no files of Set14: its MANIFEST.tsv lists nothing under benchmark/Set14/HR"):
        require("Set14", progress=False)
    (root / MANIFEST_NAME).unlink()
    with pytest.raises(DownloadError, match=rf"cannot get {base}/MANIFEST.tsv: HTTP 404"):
        require("Set5", progress=False)
    assert _set_files(empty_cache) == []


def test_mirror_url_must_be_http(monkeypatch):
    monkeypatch.setenv(MIRROR_ENV, "/srv/data")
    with pytest.raises(ValueError, match="GMGAN_DATA_MIRROR must be an http"):
        mirror_url()


def test_manifest_round_trip_and_untrusted_paths(tmp_path):
    write_image(tmp_path / "train/X/a.png", np.zeros((4, 4, 3), np.uint8))
    (tmp_path / "train/X/.hidden").write_text("x")
    assert write_manifest(tmp_path) == 1
    (entry,) = parse_manifest((tmp_path / MANIFEST_NAME).read_text()).values()
    assert entry.path == "train/X/a.png" and entry.bytes == (tmp_path / "train/X/a.png").stat().st_size
    with pytest.raises(ValueError, match="line 2"):
        parse_manifest(f"path\tsha256\tbytes\n../escape.png\t{'0' * 64}\t3\n", "evil")
    assert set_folder(get_info("Set5")) == "benchmark/Set5" and set_folder(get_info("T91")) == "train/T91"


def test_composite_sets_link_their_parts_and_take_a_fixed_subset(tmp_path, monkeypatch, empty_cache):
    rng = np.random.default_rng(1)
    for part, n in (("PartA", 4), ("PartB", 3)):
        monkeypatch.setitem(DATASETS, part, DatasetInfo(part, part, "train", f"train/{part}", n,
                                                        source="x", licence="x", citation="x"))
        for i in range(n):
            write_image(empty_cache / "train" / part / f"{i}.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
    both = DatasetInfo("AB", "AB", "train", "train/AB", 7, parts=("PartA", "PartB"))
    some = DatasetInfo("A2", "A2", "train", "train/A2", 2, parts=("PartA",), take=2)
    folder = fetch(both)
    assert folder == tmp_path / "derived" / "sets" / "train/AB"
    names = sorted(p.name for p in folder.glob("*.png"))
    assert names == [f"PartA_{i}.png" for i in range(4)] + [f"PartB_{i}.png" for i in range(3)]
    assert (folder / "PartB_2.png").read_bytes() == (empty_cache / "train/PartB/2.png").read_bytes()
    first = sorted(p.name for p in fetch(some).glob("*.png"))
    assert len(first) == 2 and set(first) <= {f"{i}.png" for i in range(4)}
    # the same two every time: chosen by the sha256 of "PartA/<name>", not by a random draw
    by_hash = sorted((f"{i}.png" for i in range(4)), key=lambda n: hashlib.sha256(f"PartA/{n}".encode()).hexdigest())
    assert first == sorted(by_hash[:2])
    too_many = DatasetInfo("A9", "A9", "train", "train/A9", 9, parts=("PartA",), take=9)
    with pytest.raises(DownloadError, match="takes 9 images of PartA, which hold only 4"):
        fetch(too_many)
    assert not (tmp_path / "derived" / "sets" / "train/A9").exists()


def test_network_available(monkeypatch):
    monkeypatch.delenv("GMGAN_OFFLINE", raising=False)
    online.clear_cache()
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert online.network_available(f"http://127.0.0.1:{port}/x", timeout=2)
        monkeypatch.setenv("GMGAN_OFFLINE", "1")
        assert not online.network_available(f"http://127.0.0.1:{port}/x")  # without asking
        monkeypatch.setenv("GMGAN_OFFLINE", "0")
    online.clear_cache()
    assert not online.network_available(f"http://127.0.0.1:{port}/x", timeout=2)  # closed now
    assert not online.network_available("file:///tmp/x")


def test_cli_data_manifest_makes_a_mirror(tmp_path, capsys):
    from gmgan.cli import main

    write_image(tmp_path / "benchmark/Set5/HR/baby.png", np.zeros((8, 8, 3), np.uint8))
    assert main(["data", "manifest", str(tmp_path)]) == 0
    assert "MANIFEST.tsv: 1 files" in capsys.readouterr().out
    assert list(parse_manifest((tmp_path / MANIFEST_NAME).read_text())) == ["benchmark/Set5/HR/baby.png"]
    assert main(["data", "manifest", str(tmp_path / "nope")]) == 2
