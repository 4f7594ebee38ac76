"""Shared fixtures. The data cache comes from GMGAN_DATA (the CI points it at the shared image sets);
derived files go to a temporary GMGAN_DERIVED unless one is set."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from gmgan.cache import data_dir as _data_dir

# Tests never download on their own (gmgan.online): the same results with and without internet,
# and no waiting for a network that is not there. Tests of downloads serve files on 127.0.0.1 and
# clear this themselves. Notebook kernels started by nbval inherit it.
os.environ.setdefault("GMGAN_OFFLINE", "1")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Root of the data cache; tests that need the standard sets skip when it is absent."""
    root = _data_dir()
    if not (root / "benchmark" / "Set5" / "HR").is_dir():
        pytest.skip(f"image sets not found under GMGAN_DATA={root}; point GMGAN_DATA at a data cache")
    return root


@pytest.fixture(autouse=True, scope="session")
def _derived_dir(tmp_path_factory):
    """Keep tests from writing into the user's cache: a session-wide temporary GMGAN_DERIVED."""
    if "GMGAN_DERIVED" not in os.environ:
        os.environ["GMGAN_DERIVED"] = str(tmp_path_factory.mktemp("derived"))
    yield
