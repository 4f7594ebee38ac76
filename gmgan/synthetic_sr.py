"""Moved to :mod:`gmgan.synthetic` (a package: degradation, texture, task, models,
training, measures); this module re-exports its names for one release."""

from gmgan.synthetic import *
from gmgan.synthetic import __all__  # noqa: F401
from gmgan.synthetic.degradation import _padded_imresize  # noqa: F401
from gmgan.synthetic.measures import EDGE_THRESHOLD  # noqa: F401
from gmgan.synthetic.models import imresize  # noqa: F401
