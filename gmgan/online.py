"""Is the network reachable? The one question gmgan asks before it downloads anything on its own.

gmgan fetches some things on first use: image sets missing from the data cache
(:func:`gmgan.data.download.require`), torchvision's ImageNet VGG19 for the perceptual loss
(:mod:`gmgan.pretrained`) and the model files of NIQE and PI (:mod:`gmgan.metrics`, through pyiqa).
Each of them first asks :func:`network_available`, so that an offline machine gets a clear error
(or a documented fallback) at once instead of retries and timeouts.

The check opens a TCP connection to the host of the URL that would be downloaded (through the proxy
when one is configured for it), with a short timeout; the answer is remembered for a minute per host.
``GMGAN_OFFLINE=1`` (also ``true``, ``yes``, ``on``) says "offline" without touching the network:
tests and air-gapped machines use it. An explicit ``gmgan data fetch`` does not ask: it just tries.
"""
from __future__ import annotations

import os
import socket
import threading
import time
import urllib.request
from urllib.parse import urlparse

__all__ = ["DEFAULT_PROBE_URL", "OFFLINE_ENV", "forced_offline", "network_available"]

#: Environment variable that declares the machine offline.
OFFLINE_ENV = "GMGAN_OFFLINE"
#: Probed when no URL is given: where torchvision's weights come from.
DEFAULT_PROBE_URL = "https://download.pytorch.org"
#: Seconds an answer is remembered (per host and port).
CACHE_SECONDS = 60.0

_TRUE = {"1", "true", "yes", "on"}
_cache: dict[tuple[str, int], tuple[float, bool]] = {}
_lock = threading.Lock()


def forced_offline() -> bool:
    """True when ``GMGAN_OFFLINE`` is set to 1 / true / yes / on."""
    return os.environ.get(OFFLINE_ENV, "").strip().lower() in _TRUE


def _endpoint(url: str) -> tuple[str, int] | None:
    """(host, port) a request for ``url`` connects to: its proxy's, if one is configured."""
    parts = urlparse(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    proxy = urllib.request.getproxies().get(parts.scheme)
    if proxy and not urllib.request.proxy_bypass(parts.hostname):
        proxy_parts = urlparse(proxy if "://" in proxy else f"http://{proxy}")
        if proxy_parts.hostname:
            return proxy_parts.hostname, proxy_parts.port or (443 if proxy_parts.scheme == "https" else 80)
    return parts.hostname, parts.port or (443 if parts.scheme == "https" else 80)


def network_available(url: str | None = None, *, timeout: float = 3.0) -> bool:
    """Whether ``url``'s server (default :data:`DEFAULT_PROBE_URL`) can be reached now.

    Args:
        url: the http(s) URL that would be downloaded; only its host and port are used.
        timeout: seconds to wait for the TCP connection (DNS included).

    Returns:
        False at once when ``GMGAN_OFFLINE`` is set (see :func:`forced_offline`) or the URL is not
        http(s); otherwise whether a TCP connection to the host (or its proxy) opened within
        ``timeout``. Answers are cached for :data:`CACHE_SECONDS` per host and port.
    """
    if forced_offline():
        return False
    endpoint = _endpoint(url or DEFAULT_PROBE_URL)
    if endpoint is None:
        return False
    now = time.monotonic()
    with _lock:
        hit = _cache.get(endpoint)
        if hit is not None and now - hit[0] < CACHE_SECONDS:
            return hit[1]
    try:
        with socket.create_connection(endpoint, timeout=timeout):
            ok = True
    except OSError:  # DNS failure, refused, unreachable, timed out
        ok = False
    with _lock:
        _cache[endpoint] = (time.monotonic(), ok)
    return ok


def clear_cache() -> None:
    """Forget the remembered answers (tests that start and stop servers call it)."""
    with _lock:
        _cache.clear()
