"""gmgan.data.download: sets fetched from a real HTTP server on 127.0.0.1 (the ``server``
fixture of conftest.py), concurrent fetches from two processes, offline use of a present
cache, the ``samples`` set and :func:`dataset_dir`."""
from __future__ import annotations

import io
import multiprocessing as mp
import tarfile
import urllib.request
import zipfile

import numpy as np
import pytest
from data_helpers import sha as _sha
from PIL import Image

from gmgan.data.download import DownloadError, dataset_dir, fetch
from gmgan.data.layout import MARKER_NAME
from gmgan.data.registry import MANIFEST_NAME, DatasetInfo, ManifestError, Mirror, read_manifest
from gmgan.imageio import read_image

pytestmark = pytest.mark.timeout(60)  # servers and child processes must never hang the suite


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
