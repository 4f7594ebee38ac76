"""Fixtures of the data tests."""
from __future__ import annotations

import pytest
from data_helpers import Server

from gmgan.data import transfer


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setattr(transfer, "RETRY_BACKOFF_S", 0.0)
    srv = Server()
    yield srv
    srv.close()
