"""Fixtures of the reliability suite."""
from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def samples_ready() -> None:
    """Make the HR/LR pairs of the ``samples`` set (scikit-image pictures, no network) now, in
    this process, so that training subprocesses find them cached."""
    from gmgan.data import prepare_training_set

    prepare_training_set("samples", scale=4, progress=False)
