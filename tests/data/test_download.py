"""gmgan.data.download against a real HTTP server on 127.0.0.1 that can misbehave: cut the
connection, ignore Range, serve wrong bytes, answer slowly. Plus safe extraction of crafted
archives, concurrent fetches from two processes, and offline use of a present cache."""
from __future__ import annotations

import hashlib
import importlib
import io
import multiprocessing as mp
import tarfile
import threading
import urllib.request
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from gmgan.data.download import (MARKER_NAME, ChecksumError, DownloadError, UnsafeArchiveError, dataset_dir,
                                 download, fetch, list_datasets, safe_extract)
from gmgan.data.registry import MANIFEST_NAME, DatasetInfo, ManifestError, Mirror, read_manifest
from gmgan.imageio import read_image

# gmgan.data re-exports the function download(), which hides the module of the same name.
dl = importlib.import_module("gmgan.data.download")

pytestmark = pytest.mark.timeout(60)  # servers and child processes must never hang the suite


# --------------------------------------------------------------------------------------------
# a small misbehaving HTTP server
# --------------------------------------------------------------------------------------------

class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.files``; ``server.behaviour[path]`` can ask for truncation after N bytes
    (``truncate``: N, applied to the first ``truncate_times`` requests), ignoring Range
    (``ignore_range``), corrupted bytes (``corrupt``) and a delay (``delay`` seconds)."""

    def log_message(self, *args):  # keep test output quiet
        pass

    def do_GET(self):
        srv = self.server
        path = self.path
        with srv.lock:
            srv.log.append((path, self.headers.get("Range")))
            behaviour = dict(srv.behaviour.get(path, {}))
            n_before = sum(1 for p, _ in srv.log if p == path) - 1
        if behaviour.get("delay"):
            threading.Event().wait(behaviour["delay"])
        if path not in srv.files:
            self.send_error(404, "no such file")
            return
        body = srv.files[path]
        if behaviour.get("corrupt"):
            body = bytes(b ^ 0x55 for b in body)
        start = 0
        rng = self.headers.get("Range")
        if rng and not behaviour.get("ignore_range"):
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(body):
                self.send_response(416)
                self.send_header("Content-Range", f"bytes */{len(body)}")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Content-Type", "application/octet-stream")
        self.end_headers()
        cut = behaviour.get("truncate")
        if cut is not None and n_before < behaviour.get("truncate_times", 10**9):
            payload = payload[: max(0, cut - start)]  # then close: fewer bytes than announced
        self.wfile.write(payload)
        self.wfile.flush()
        self.close_connection = True


class Server:
    def __init__(self):
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self.httpd.daemon_threads = True
        self.httpd.files, self.httpd.behaviour, self.httpd.log = {}, {}, []
        self.httpd.lock = threading.Lock()
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def add(self, path: str, data: bytes, **behaviour) -> str:
        self.httpd.files[path] = data
        self.httpd.behaviour[path] = behaviour
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def behave(self, path: str, **behaviour) -> None:
        self.httpd.behaviour[path] = behaviour

    def requests(self, path: str) -> list[str | None]:
        """The Range header of every request for ``path`` (None when none was sent)."""
        with self.httpd.lock:
            return [rng for p, rng in self.httpd.log if p == path]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(dl, "RETRY_BACKOFF_S", 0.0)
    srv = Server()
    yield srv
    srv.close()


def _payload(n: int = 300_000, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------------------------
# download()
# --------------------------------------------------------------------------------------------

def test_good_download(server, tmp_path):
    data = _payload()
    url = server.add("/good.bin", data)
    out = download(url, tmp_path / "sub" / "good.bin", sha256=_sha(data), expected_size=len(data), progress=False)
    assert out.read_bytes() == data
    assert not (tmp_path / "sub" / "good.bin.part").exists()
    assert server.requests("/good.bin") == [None]
    # Already there and verified: no second request.
    download(url, out, sha256=_sha(data), progress=False)
    assert len(server.requests("/good.bin")) == 1


def test_truncated_transfer_is_resumed_with_range(server, tmp_path):
    data = _payload()
    url = server.add("/cut.bin", data, truncate=100_000, truncate_times=1)
    out = download(url, tmp_path / "cut.bin", sha256=_sha(data), progress=False, retries=2)
    assert out.read_bytes() == data
    assert server.requests("/cut.bin") == [None, "bytes=100000-"]


def test_checksum_mismatch_is_refused_and_removed(server, tmp_path):
    data = _payload()
    url = server.add("/bad.bin", data, corrupt=True)
    with pytest.raises(ChecksumError) as exc:
        download(url, tmp_path / "bad.bin", sha256=_sha(data), progress=False)
    message = str(exc.value)
    assert url in message and _sha(data) in message
    assert _sha(bytes(b ^ 0x55 for b in data)) in message  # the actual digest
    assert not (tmp_path / "bad.bin").exists() and not (tmp_path / "bad.bin.part").exists()


def test_interrupted_download_leaves_part_that_next_call_resumes(server, tmp_path):
    data = _payload()
    url = server.add("/int.bin", data, truncate=120_000)
    dest = tmp_path / "int.bin"
    with pytest.raises(DownloadError, match="connection closed after 120000 of 300000 bytes") as exc:
        download(url, dest, sha256=_sha(data), progress=False, retries=1)
    assert url in str(exc.value)
    assert not dest.exists()
    part = tmp_path / "int.bin.part"
    assert part.stat().st_size == 120_000 and part.read_bytes() == data[:120_000]
    assert server.requests("/int.bin") == [None, "bytes=120000-"]  # the retry resumed too

    server.behave("/int.bin")  # the network is fine again
    download(url, dest, sha256=_sha(data), progress=False)
    assert dest.read_bytes() == data and not part.exists()
    assert server.requests("/int.bin")[-1] == "bytes=120000-"


def test_server_ignoring_range_restarts_from_zero(server, tmp_path):
    data = _payload()
    url = server.add("/norange.bin", data, ignore_range=True)
    (tmp_path / "nr.bin.part").write_bytes(b"garbage that must not stay in front" * 10)
    out = download(url, tmp_path / "nr.bin", sha256=_sha(data), progress=False)
    assert out.read_bytes() == data
    assert server.requests("/norange.bin") == ["bytes=350-"]


def test_complete_part_file_answered_416(server, tmp_path):
    data = _payload(5000)
    url = server.add("/whole.bin", data)
    (tmp_path / "w.bin.part").write_bytes(data)
    assert download(url, tmp_path / "w.bin", sha256=_sha(data), progress=False).read_bytes() == data


def test_http_404_is_not_retried(server, tmp_path):
    url = server.add("/exists.bin", b"x").replace("/exists.bin", "/missing.bin")
    with pytest.raises(DownloadError, match="404"):
        download(url, tmp_path / "m.bin", progress=False, retries=3)
    assert len(server.requests("/missing.bin")) == 1


def test_wrong_expected_size(server, tmp_path):
    url = server.add("/size.bin", _payload(1000))
    with pytest.raises(DownloadError, match="1000 bytes, expected 999"):
        download(url, tmp_path / "s.bin", expected_size=999, progress=False)


# --------------------------------------------------------------------------------------------
# safe_extract()
# --------------------------------------------------------------------------------------------

def _tar(path: Path, members: list[tuple[tarfile.TarInfo, bytes | None]]) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for info, data in members:
            if data is not None:
                info.size = len(data)
                tf.addfile(info, io.BytesIO(data))
            else:
                tf.addfile(info)
    return path


def _file(name: str) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), b"payload"


def _link(name: str, target: str, kind=tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, None


def _device(name: str) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
    return info, None


@pytest.mark.parametrize("bad, reason", [
    (_file("../evil.txt"), "'..'"),
    (_file("ok/../../evil.txt"), "'..'"),
    (_file("/tmp/gmgan_abs_evil.txt"), "absolute"),
    (_link("etc_link", "/etc"), "absolute"),
    (_link("sub/up", "../../etc/passwd"), "outside"),
    (_link("hard", "../evil.txt", tarfile.LNKTYPE), "outside"),
    (_device("null"), "device"),
])
def test_safe_extract_refuses_crafted_tar(tmp_path, bad, reason):
    archive = _tar(tmp_path / "bad.tgz", [_file("good/a.txt"), bad])
    dest = tmp_path / "out" / "dest"
    with pytest.raises(UnsafeArchiveError, match=reason) as exc:
        safe_extract(archive, dest)
    assert bad[0].name in str(exc.value)
    # Nothing was written at all (members are checked before any is extracted).
    assert list(dest.rglob("*")) == []
    assert not (tmp_path / "out" / "evil.txt").exists() and not (tmp_path / "evil.txt").exists()
    assert not Path("/tmp/gmgan_abs_evil.txt").exists()


@pytest.mark.parametrize("name, reason", [("../evil.txt", "'..'"), ("/abs_evil.txt", "absolute"),
                                          ("a/../../evil.txt", "'..'")])
def test_safe_extract_refuses_crafted_zip(tmp_path, name, reason):
    archive = tmp_path / "bad.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("good/a.txt", "fine")
        zf.writestr(zipfile.ZipInfo(name), "evil")  # ZipInfo keeps the name as given
    dest = tmp_path / "out" / "dest"
    with pytest.raises(UnsafeArchiveError, match=reason) as exc:
        safe_extract(archive, dest)
    assert name in str(exc.value)
    assert list(dest.rglob("*")) == []
    assert not (tmp_path / "out" / "evil.txt").exists()


def test_safe_extract_refuses_zip_symlink(tmp_path):
    archive = tmp_path / "link.zip"
    info = zipfile.ZipInfo("link")
    info.external_attr = (0o120777 << 16)  # S_IFLNK
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(info, "/etc/passwd")
    with pytest.raises(UnsafeArchiveError, match="symbolic link"):
        safe_extract(archive, tmp_path / "dest")


def test_safe_extract_good_archives_and_prefix(tmp_path):
    archive = _tar(tmp_path / "ok.tar.gz", [_file("set/HR/a.png"), _file("set/LR/a.png"),
                                            _link("set/HR/alias.png", "a.png")])
    written = safe_extract(archive, tmp_path / "d1", prefixes=["set/HR/"])
    assert [p.relative_to(tmp_path / "d1").as_posix() for p in written] == ["set/HR/a.png"]
    assert not (tmp_path / "d1" / "set" / "LR").exists()
    zpath = tmp_path / "ok.zip"
    with zipfile.ZipFile(zpath, "w") as zf:
        zf.writestr("x/y.txt", "1")
        zf.writestr("z.txt", "2")
    written = safe_extract(zpath, tmp_path / "d2")
    assert sorted(p.relative_to(tmp_path / "d2").as_posix() for p in written) == ["x/y.txt", "z.txt"]
    (tmp_path / "plain.txt").write_text("not an archive")
    with pytest.raises(ValueError, match="not a zip or tar"):
        safe_extract(tmp_path / "plain.txt", tmp_path / "d3")


# --------------------------------------------------------------------------------------------
# fetch()
# --------------------------------------------------------------------------------------------

def _png_bytes(seed: int, shape=(8, 10, 3)) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)).save(buf, format="PNG")
    return buf.getvalue()


def _zip_set(n: int = 3) -> tuple[bytes, dict[str, bytes]]:
    images = {f"img{i}.png": _png_bytes(i) for i in range(n)}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("pack/README.txt", "not an image")
        for name, data in images.items():
            zf.writestr(f"pack/HR/{name}", data)
            zf.writestr(f"pack/LR/X4/{name}", data[:50] + b"")  # something else, must not go to HR
    return buf.getvalue(), images


def _tiny_info(url: str, data: bytes, **kw) -> DatasetInfo:
    mirror = Mirror(url, sha256=_sha(data), size=len(data), prefix="pack/HR/")
    return DatasetInfo("tiny", "three test images", "train", "train/tiny/HR", 3, (mirror,), **kw)


def _fetch_in_child(info, root, queue):
    try:
        queue.put(("ok", str(fetch(info, root=root, progress=False))))
    except BaseException as exc:  # report, do not hang the parent
        queue.put(("error", repr(exc)))


def test_two_processes_fetch_the_same_set_once(server, tmp_path):
    data, images = _zip_set()
    url = server.add("/tiny.zip", data, delay=0.5)  # slow enough that both overlap
    info = _tiny_info(url, data)
    ctx = mp.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_fetch_in_child, args=(info, tmp_path, queue)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=45) for _ in procs]
    for p in procs:
        p.join(timeout=10)
        assert p.exitcode == 0
    folder = tmp_path / "train" / "tiny" / "HR"
    assert results == [("ok", str(folder))] * 2
    assert len(server.requests("/tiny.zip")) == 1  # one download for both
    assert sorted(p.name for p in folder.iterdir()) == sorted([MARKER_NAME, *images])
    for name, blob in images.items():
        assert (folder / name).read_bytes() == blob
    assert not (tmp_path / "downloads" / "tiny.zip").exists()  # not shared with another set: removed
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".extract")] == []
    # A third call finds it without the network.
    assert fetch(info, root=tmp_path, progress=False) == folder
    assert len(server.requests("/tiny.zip")) == 1


def test_fetch_tar_with_nested_folders_extras_and_mirror_fallback(server, tmp_path):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tf:
        for member, blob in [("OST/animal/a1.png", _png_bytes(1)), ("OST/sky/s1.png", _png_bytes(2)),
                             ("OST/sky/s2.png", _png_bytes(3)), ("lr/x4/a1.png", _png_bytes(4))]:
            info = tarfile.TarInfo(member)
            info.size = len(blob)
            tf.addfile(info, io.BytesIO(blob))
    data = buf.getvalue()
    good = server.add("/ost.tgz", data)
    dead = good.replace("/ost.tgz", "/gone.tgz")
    info = DatasetInfo("nested", "nested test set", "train", "train/nested", 3, (
        Mirror(dead, prefix="OST/"),
        Mirror(good, sha256=_sha(data), prefix="OST/", extra=(("lr/x4/", "train/nested_lr/X4"),)),
    ))
    folder = fetch(info, root=tmp_path, progress=False)
    assert sorted(p.name for p in folder.glob("*.png")) == ["animal_a1.png", "sky_s1.png", "sky_s2.png"]
    assert (tmp_path / "train" / "nested_lr" / "X4" / "a1.png").read_bytes() == _png_bytes(4)
    np.testing.assert_array_equal(read_image(folder / "sky_s2.png"),
                                  np.asarray(Image.open(io.BytesIO(_png_bytes(3)))))


def test_fetch_reports_every_failed_mirror(server, tmp_path):
    data, _ = _zip_set()
    url = server.add("/tiny.zip", data, corrupt=True)
    missing = url.replace("/tiny.zip", "/nothing.zip")
    info = DatasetInfo("broken", "x", "train", "train/broken", 3,
                       (Mirror(missing), Mirror(url, sha256=_sha(data), prefix="pack/HR/")))
    with pytest.raises(DownloadError) as exc:
        fetch(info, root=tmp_path, progress=False)
    message = str(exc.value)
    assert missing in message and "404" in message
    assert url in message and "sha256 mismatch" in message
    assert str(tmp_path / "train" / "broken") in message  # where to put the files by hand
    assert not (tmp_path / "train" / "broken").exists()


def test_read_only_data_cache_sends_downloads_to_derived(server, tmp_path, monkeypatch):
    data, images = _zip_set()
    info = _tiny_info(server.add("/tiny.zip", data), data)
    readonly = tmp_path / "shared"
    readonly.mkdir()
    readonly.chmod(0o555)  # no write bits: read-only even for root
    monkeypatch.setenv("GMGAN_DATA", str(readonly))
    monkeypatch.setenv("GMGAN_DERIVED", str(tmp_path / "derived"))
    try:
        folder = fetch(info, progress=False)
        assert folder == tmp_path / "derived" / "sets" / "train" / "tiny" / "HR"
        assert sorted(p.name for p in folder.glob("*.png")) == sorted(images)
        assert list(readonly.iterdir()) == []
    finally:
        readonly.chmod(0o755)


def test_fetch_refuses_wrong_image_count(server, tmp_path):
    data, _ = _zip_set(2)
    url = server.add("/two.zip", data)
    info = DatasetInfo("three", "x", "train", "train/three", 3, (Mirror(url, prefix="pack/HR/"),))
    with pytest.raises(DownloadError, match="gave 2 images"):
        fetch(info, root=tmp_path, progress=False)


@pytest.fixture
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("the network must not be used")
    monkeypatch.setattr(urllib.request, "urlopen", refuse)


def test_fetch_of_cached_sets_uses_no_network(data_dir, no_network):
    assert fetch("Set5") == data_dir / "benchmark" / "Set5" / "HR"
    assert fetch("set14", progress=False) == data_dir / "benchmark" / "Set14" / "HR"
    urban = data_dir / "benchmark" / "Urban100" / "HR"
    if urban.is_dir() and read_manifest(data_dir) is not None:
        # The shared cache holds 61 of the 100 images; its manifest lists exactly those.
        assert fetch("Urban100") == urban
    assert dataset_dir("Set5") == data_dir / "benchmark" / "Set5" / "HR"


def test_fetch_present_in_custom_root_uses_no_network(tmp_path, no_network):
    info = _tiny_info("http://127.0.0.1:9/never.zip", b"x")
    folder = tmp_path / info.subdir
    folder.mkdir(parents=True)
    for i in range(3):
        (folder / f"{i}.png").write_bytes(_png_bytes(i))
    assert fetch(info, root=tmp_path) == folder


def test_fetch_checks_the_manifest_of_a_present_set(data_dir, tmp_path, no_network):
    manifest = read_manifest(data_dir)
    if manifest is None:
        pytest.skip("this data cache has no MANIFEST.tsv")
    rows = [e for p, e in manifest.items() if p.startswith("benchmark/Set5/HR/")]
    (tmp_path / "benchmark/Set5/HR").mkdir(parents=True)
    for e in rows:
        (tmp_path / e.path).write_bytes((data_dir / e.path).read_bytes())
    (tmp_path / MANIFEST_NAME).write_text(
        "path\tsha256\tbytes\n" + "".join(f"{e.path}\t{e.sha256}\t{e.bytes}\n" for e in rows))
    baby = tmp_path / "benchmark/Set5/HR/baby.png"
    blob = bytearray(baby.read_bytes())
    blob[-100] ^= 0xFF
    baby.write_bytes(bytes(blob))
    with pytest.raises(ManifestError, match="benchmark/Set5/HR/baby.png"):
        fetch("Set5", root=tmp_path)


def test_samples_are_materialised_from_scikit_image(tmp_path, monkeypatch, no_network):
    import skimage.data

    monkeypatch.setenv("GMGAN_DERIVED", str(tmp_path / "derived"))
    monkeypatch.setenv("GMGAN_DATA", str(tmp_path / "empty_data"))
    folder = fetch("samples")
    assert folder == tmp_path / "derived" / "sets" / "samples"
    np.testing.assert_array_equal(read_image(folder / "chelsea.png"), skimage.data.chelsea())
    brick = read_image(folder / "brick.png")
    np.testing.assert_array_equal(brick, np.repeat(skimage.data.brick()[:, :, None], 3, axis=2))
    assert len(list(folder.glob("*.png"))) == 9
    assert fetch("samples") == folder and dataset_dir("samples") == folder


def test_dataset_dir_accepts_folders_and_explains_failures(tmp_path):
    (tmp_path / "mine" / "class_a").mkdir(parents=True)
    (tmp_path / "mine" / "class_a" / "x.png").write_bytes(_png_bytes(0))
    assert dataset_dir(tmp_path / "mine") == tmp_path / "mine"
    assert dataset_dir(str(tmp_path / "mine")) == tmp_path / "mine"
    with pytest.raises(FileNotFoundError, match="neither a known data set") as exc:
        dataset_dir(tmp_path / "nowhere")
    assert "Set5" in str(exc.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no image files"):
        dataset_dir(tmp_path / "empty")


def test_list_datasets_rows(data_dir):
    rows = {row["name"]: row for row in list_datasets()}
    assert set(rows) >= {"DIV2K", "Set5", "Urban100", "samples"}
    set5 = rows["Set5"]
    assert (set5["status"], set5["present"], set5["expected"]) == ("complete", 5, 5)
    assert set5["location"] == str(data_dir / "benchmark" / "Set5" / "HR") and set5["bytes"] > 0
    assert rows["DIV2K"]["download_bytes"] == 3530603713
    if (data_dir / "benchmark" / "Urban100" / "HR").is_dir() and read_manifest(data_dir) is not None:
        assert (rows["Urban100"]["status"], rows["Urban100"]["present"]) == ("subset", 61)
