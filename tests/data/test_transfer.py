"""gmgan.data.transfer against a real HTTP server on 127.0.0.1 that can misbehave (the
``server`` fixture of conftest.py), and safe extraction of crafted archives."""
from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

import pytest
from data_helpers import payload as _payload
from data_helpers import sha as _sha

from gmgan.data.transfer import (ChecksumError, DownloadError, UnsafeArchiveError, download,
                                 safe_extract)

pytestmark = pytest.mark.timeout(60)  # servers must never hang the suite


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
