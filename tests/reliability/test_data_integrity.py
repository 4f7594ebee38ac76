"""What gmgan scores and installs is what the manifests say (issue 22).

Here: a test set's LR files are checked against the cache's ``MANIFEST.tsv`` as its HR
files are (an LR file changed but still decodable is refused, by ``load_benchmark`` and
``gmgan eval``, naming the file), also when it changes after a first check in the same
process, while unchanged files are hashed once per process; a mirror install counts the
HR images and refuses files that are no images, and installs a smaller set as a subset;
``gmgan data manifest`` does not follow symbolic links out of the folder.

Covered elsewhere (not repeated): HR files against the manifest
(tests/data/test_download.py: test_fetch_checks_the_manifest_of_a_present_set); a
mirror's 404, short and corrupt files (tests/data/test_mirror.py:
test_bad_mirror_fails_naming_the_file_and_leaves_no_partial_set).
"""
from __future__ import annotations

import functools
import importlib
import os
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from gmgan.cli import main
from gmgan.data import load_benchmark
from gmgan.data.download import DownloadError, list_datasets, locate, require
from gmgan.data.mirror import MIRROR_ENV
from gmgan.data.registry import ManifestError, read_manifest, write_manifest
from gmgan.imageio import read_image, write_image
from gmgan.resize import imresize

registry = importlib.import_module("gmgan.data.registry")

pytestmark = pytest.mark.timeout(120)

SET5 = ("baby", "bird", "butterfly", "head", "woman")


def _fake_set5(root: Path, names=SET5) -> None:
    """Set5 as 16 x 16 random HR images and their MATLAB-bicubic x4 LR files."""
    rng = np.random.default_rng(0)
    for name in names:
        hr = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
        write_image(root / "benchmark/Set5/HR" / f"{name}.png", hr)
        lr = root / "benchmark/Set5/LR_bicubic/X4" / f"{name}x4.png"
        write_image(lr, imresize(hr, 1 / 4))


def _age(root: Path, seconds: float = 3600) -> None:
    """Date every file back, as the files of a cache made earlier are."""
    past = time.time() - seconds
    for path in root.rglob("*"):
        if path.is_file():
            os.utime(path, (past, past))


def _tamper(path: Path) -> None:
    """Other pixels, same shape: the file still decodes (and usually keeps its size)."""
    img = read_image(path)
    write_image(path, 255 - img)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    _fake_set5(root)
    write_manifest(root)
    _age(root)
    monkeypatch.setenv("GMGAN_DATA", str(root))
    monkeypatch.setenv("GMGAN_OFFLINE", "1")
    return root


def test_a_changed_lr_file_is_refused_before_scoring(cache, capsys):
    assert len(load_benchmark("Set5")) == 5
    lr = cache / "benchmark/Set5/LR_bicubic/X4/birdx4.png"
    _tamper(lr)
    with pytest.raises(ManifestError, match="benchmark/Set5/LR_bicubic/X4/birdx4.png"):
        load_benchmark("Set5")
    assert main(["eval", "--sets", "Set5", "--metrics", "psnr", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "do not match MANIFEST.tsv" in err and "birdx4.png" in err


def test_unchanged_files_are_hashed_once_per_process(cache, monkeypatch):
    hashed = []
    real = registry.sha256_file
    monkeypatch.setattr(registry, "sha256_file",
                        lambda path, *a: hashed.append(path) or real(path, *a))
    load_benchmark("Set5")
    assert len(hashed) == 10  # 5 HR + 5 LR
    hashed.clear()
    load_benchmark("Set5")
    assert hashed == []
    _tamper(cache / "benchmark/Set5/HR/head.png")  # a change is seen at the next use
    with pytest.raises(ManifestError, match="benchmark/Set5/HR/head.png"):
        load_benchmark("Set5")
    assert {Path(p).name for p in hashed} == {"head.png"}


def test_a_file_written_just_before_its_check_is_hashed_again(cache, monkeypatch):
    """A file modified within the last seconds is not remembered: a same-size change
    within one tick of the file system's clock would keep its modification time."""
    hr = cache / "benchmark/Set5/HR/baby.png"
    os.utime(hr)  # just now
    load_benchmark("Set5")
    data = bytearray(hr.read_bytes())
    stat = hr.stat()
    data[-20] ^= 0xFF  # one byte flipped: same size
    hr.write_bytes(bytes(data))
    os.utime(hr, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same mtime
    with pytest.raises(ManifestError, match="benchmark/Set5/HR/baby.png"):
        load_benchmark("Set5")


# ---------------------------------------------------------------------- mirror installs

class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve(tmp_path, monkeypatch):
    """serve(folder): write its manifest, serve it over HTTP and point
    GMGAN_DATA_MIRROR at it; GMGAN_DATA is an empty cache."""
    servers = []
    monkeypatch.setenv("GMGAN_DATA", str(tmp_path / "empty-cache"))
    monkeypatch.delenv("GMGAN_OFFLINE", raising=False)

    def start(folder: Path) -> None:
        write_manifest(folder)
        server = ThreadingHTTPServer(("127.0.0.1", 0),
                                     functools.partial(_Quiet, directory=str(folder)))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        monkeypatch.setenv(MIRROR_ENV, f"http://127.0.0.1:{server.server_address[1]}")

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_mirror_with_a_file_that_is_no_image_is_refused(tmp_path, serve):
    srv = tmp_path / "srv"
    _fake_set5(srv)
    (srv / "benchmark/Set5/HR/extra.png").write_text("<html>not found</html>\n")
    serve(srv)
    with pytest.raises(DownloadError, match=r"extra.png: not a readable image"):
        require("Set5", progress=False)
    assert locate("Set5") is None


def test_mirror_with_more_images_than_the_set_is_refused(tmp_path, serve):
    srv = tmp_path / "srv"
    _fake_set5(srv, (*SET5, "sixth"))
    serve(srv)
    with pytest.raises(DownloadError, match=r"lists 6 images of Set5 .* the set has 5"):
        require("Set5", progress=False)
    assert locate("Set5") is None


def test_mirror_with_fewer_images_installs_a_subset(tmp_path, serve):
    srv = tmp_path / "srv"
    _fake_set5(srv, SET5[:4])
    serve(srv)
    assert len(list(require("Set5", progress=False).glob("*.png"))) == 4
    row = next(r for r in list_datasets() if r["name"] == "Set5")
    assert (row["status"], row["present"]) == ("subset", 4)


def test_data_manifest_does_not_follow_links_out_of_the_folder(tmp_path, capsys):
    outside = tmp_path / "private"
    outside.mkdir()
    (outside / "secret.txt").write_text("not for the web\n")
    root = tmp_path / "srv"
    _fake_set5(root, SET5[:1])
    (root / "benchmark/Set5/HR/secret.png").symlink_to(outside / "secret.txt")
    (root / "benchmark/linked").symlink_to(outside, target_is_directory=True)
    hr = root / "benchmark/Set5/HR"
    (hr / "again.png").symlink_to(hr / "baby.png")  # inside: listed
    with pytest.warns(UserWarning,
                      match=r"leaves out 2 symbolic link\(s\).*secret.png"):
        assert main(["data", "manifest", str(root)]) == 0
    listed = sorted(read_manifest(root))
    assert listed == ["benchmark/Set5/HR/again.png", "benchmark/Set5/HR/baby.png",
                      "benchmark/Set5/LR_bicubic/X4/babyx4.png"]
    assert not any("secret" in p or "linked" in p for p in listed)
    assert (root / registry.MANIFEST_NAME).is_file()
