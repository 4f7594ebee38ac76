"""Image sets for training and evaluation.

- :mod:`~gmgan.data.registry`: the known sets (URLs, checksums, counts, cache layout)
  and the data cache's ``MANIFEST.tsv``.
- :mod:`~gmgan.data.transfer`: resumable verified HTTP downloads, safe archive
  extraction.
- :mod:`~gmgan.data.layout`: where sets lie in the cache, their completion marker,
  :func:`locate`, :func:`list_datasets`.
- :mod:`~gmgan.data.mirror`: installing sets from a data mirror (``GMGAN_DATA_MIRROR``).
- :mod:`~gmgan.data.download`: :func:`fetch` / ``require``: a set found or installed.
- :mod:`~gmgan.data.sources`: :func:`resolve_image_source`, the rule for "a set name or
  a folder"; :func:`dataset_dir` applies it and fetches a named set.
- :mod:`~gmgan.data.prepare`: sub-images, LR images, 8x dihedral augmentation.
- :mod:`~gmgan.data.pairs`: the training Dataset / DataLoader of HR/LR patch pairs.
- :mod:`~gmgan.data.benchmark`: HR/LR pairs of the test sets.

The last three are imported on first use.
"""
from __future__ import annotations

import importlib

# ``download`` (the function) is not re-exported: it would hide the module
# gmgan.data.download.
from gmgan.data.download import dataset_dir, fetch
from gmgan.data.layout import list_datasets, locate
from gmgan.data.registry import DATASETS, DatasetInfo, get_info
from gmgan.data.sources import resolve_image_source
from gmgan.data.transfer import ChecksumError, UnsafeArchiveError, safe_extract

_LAZY = {
    "extract_subimages": "gmgan.data.prepare",
    "make_lr": "gmgan.data.prepare",
    "dihedral_augment": "gmgan.data.prepare",
    "prepare_training_set": "gmgan.data.prepare",
    "dihedral": "gmgan.data.prepare",
    "PreparedSet": "gmgan.data.prepare",
    "infinite_batches": "gmgan.data.pairs",
    "PatchPairs": "gmgan.data.pairs",
    "build_loader": "gmgan.data.pairs",
    "BenchmarkImage": "gmgan.data.benchmark",
    "load_benchmark": "gmgan.data.benchmark",
    "BENCHMARK_SETS": "gmgan.data.benchmark",
}

__all__ = ["DatasetInfo", "DATASETS", "get_info", "fetch", "dataset_dir", "list_datasets", "locate",
           "resolve_image_source", "safe_extract", "ChecksumError", "UnsafeArchiveError",
           *_LAZY]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value  # later look-ups skip this function
        return value
    raise AttributeError(f"module 'gmgan.data' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
