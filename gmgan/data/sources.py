"""What "a set name or a path" given by a user refers to: one rule for every caller.

``gmgan train --train-set``, ``TrainConfig.train_set``, ``gmgan data prepare NAME``,
:func:`gmgan.data.dataset_dir` and the sources of :func:`gmgan.degrade.make_set` all
accept a registered set name or a folder of images; :func:`resolve_image_source` decides
which, without using the network and without reading any image.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Union

from gmgan.data.registry import DATASETS, DatasetInfo, get_info
from gmgan.imageio import IMAGE_EXTENSIONS

__all__ = ["resolve_image_source"]

PathLike = Union[str, os.PathLike]


def _is_image_name(name: str) -> bool:
    return Path(name).suffix.lower() in IMAGE_EXTENSIONS and not name.startswith(".")


def _holds_an_image(folder: Path) -> bool:
    """Is there an image file in ``folder`` or a sub-folder? (Stops at the first one, so
    a folder of a million images costs one directory read, not a listing.)"""
    for _, dirs, files in os.walk(folder):
        dirs.sort()
        if any(_is_image_name(f) for f in files):
            return True
    return False


def _looks_like_a_name(text: str) -> bool:
    separators = {os.sep, os.altsep, "/"} - {None}
    return not any(sep in text for sep in separators)


def resolve_image_source(name_or_path: PathLike, *, allow_file: bool = False,
                         field: str | None = None) -> DatasetInfo | Path:
    """A registered set or a folder (or file) of images, decided by one rule.

    Precedence:

    1. a ``str`` without a path separator that is a registered set name
       (case-insensitive, see :data:`~gmgan.data.registry.DATASETS`) is that set, even
       when a folder of that name exists in the working directory (write ``./T91`` for
       the folder);
    2. otherwise the text (or ``os.PathLike``, which is never a set name) is a path,
       ``~`` expanded: an existing folder that holds at least one image file
       (sub-folders count, e.g. an ImageNet subset sorted by class);
    3. with ``allow_file``, an existing image file.

    Nothing is downloaded (a set may still be missing from the cache: fetch it with
    :func:`gmgan.data.download.require`) and no image is read.

    Args:
        name_or_path: a set name, a folder or (with ``allow_file``) an image file.
        allow_file: accept a single image file (:func:`gmgan.degrade.make_set` does).
        field: the setting the value came from (e.g. ``"train_set"``), named in error
            messages.

    Returns:
        The set's :class:`~gmgan.data.registry.DatasetInfo`, or the ``Path`` of the
        folder or file as given (``~`` expanded, not resolved).

    Raises:
        FileNotFoundError: neither a known set nor an existing folder (nor, with
            ``allow_file``, a file); the message lists the known sets.
        ValueError: the folder holds no image file, or the file is not an image.
    """
    text = os.fspath(name_or_path)
    if isinstance(name_or_path, str) and _looks_like_a_name(text):
        try:
            return get_info(text)
        except KeyError:
            pass  # maybe a folder in the working directory
    subject = f"{field} " if field else ""
    given = f" ({field}={text!r})" if field else ""
    extensions = ", ".join(IMAGE_EXTENSIONS)
    path = Path(text).expanduser()
    if path.is_dir():
        if not _holds_an_image(path):
            raise ValueError(f"no image files ({extensions}) in {path}, nor in its "
                             f"sub-folders{given}")
        return path
    if allow_file and path.is_file():
        if not _is_image_name(path.name):
            raise ValueError(f"{path} is not an image file ({extensions}){given}")
        return path
    what = "folder of images" + (" or image file" if allow_file else "")
    raise FileNotFoundError(f"{subject}{text!r} is neither a known data set "
                            f"({', '.join(DATASETS)}) nor an existing {what}")
