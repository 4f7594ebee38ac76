"""A download whose process is killed (SIGKILL) half-way: no file appears under the final name,
the ``.part`` file holds exactly the bytes received, the lock dies with the process, and the next
call resumes with an HTTP Range request and verifies the sha256.

Covered elsewhere (tests/data/test_download.py, against a misbehaving local server): a connection
cut mid-transfer and resumed (test_truncated_transfer_is_resumed_with_range,
test_interrupted_download_leaves_part_that_next_call_resumes), a server that ignores Range
(test_server_ignoring_range_restarts_from_zero), a checksum mismatch refused and the file removed
(test_checksum_mismatch_is_refused_and_removed), two processes fetching one set at once
(test_two_processes_fetch_the_same_set_once), crafted archives (test_safe_extract_refuses_*).
"""
from __future__ import annotations

import hashlib
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest
from rel_helpers import child_env, wait_for

from gmgan.data.download import download

pytestmark = pytest.mark.timeout(120)

PAYLOAD = np.random.default_rng(3).integers(0, 256, 2 << 20, dtype=np.uint8).tobytes()
CHUNK = 32 << 10


class _Slow(BaseHTTPRequestHandler):
    """Serves PAYLOAD in 32 KiB pieces, 20 ms apart (about 1.3 s for all), honouring Range."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        start = 0
        rng = self.headers.get("Range")
        self.server.ranges.append(rng)
        if rng:
            start = int(rng.split("=")[1].split("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(PAYLOAD) - 1}/{len(PAYLOAD)}")
        else:
            self.send_response(200)
        self.send_header("Content-Length", str(len(PAYLOAD) - start))
        self.end_headers()
        try:
            for at in range(start, len(PAYLOAD), CHUNK):
                self.wfile.write(PAYLOAD[at:at + CHUNK])
                self.wfile.flush()
                time.sleep(0.02)
        except (BrokenPipeError, ConnectionResetError):  # the client was killed
            pass


@pytest.fixture
def url(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    server.daemon_threads = True
    server.ranges = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server, f"http://127.0.0.1:{server.server_address[1]}/set.zip"
    server.shutdown()
    server.server_close()


def test_killed_download_resumes_and_verifies(tmp_path, url):
    server, address = url
    dest = tmp_path / "downloads" / "set.zip"
    part = dest.with_name("set.zip.part")
    digest = hashlib.sha256(PAYLOAD).hexdigest()
    child = subprocess.Popen(
        [sys.executable, "-c", ("import sys; from gmgan.data.download import download; "
                                "download(sys.argv[1], sys.argv[2], sha256=sys.argv[3], "
                                "progress=False)"),
         address, str(dest), digest], env=child_env())
    try:
        wait_for(lambda: part.is_file() and part.stat().st_size >= 256 << 10, 60,
                 "a quarter MiB of the download", child)
        child.kill()
    finally:
        child.kill()
        child.wait()
    got = part.stat().st_size
    print(f"killed after {got} of {len(PAYLOAD)} bytes")
    assert not dest.exists()
    assert 0 < got < len(PAYLOAD) and part.read_bytes() == PAYLOAD[:got]

    # The lock of the dead process is free (this would wait forever otherwise: see the timeout).
    assert download(address, dest, sha256=digest, progress=False).read_bytes() == PAYLOAD
    assert server.ranges == [None, f"bytes={got}-"]
    assert not part.exists()
