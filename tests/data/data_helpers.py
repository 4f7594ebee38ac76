"""Helpers of the data tests: a small HTTP server on 127.0.0.1 that can misbehave (cut the
connection, ignore Range, serve wrong bytes, answer slowly), and test payloads."""
from __future__ import annotations

import hashlib
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np

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


def payload(n: int = 300_000, seed: int = 0) -> bytes:
    return np.random.default_rng(seed).integers(0, 256, n, dtype=np.uint8).tobytes()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
