"""gmgan.synthetic_sr: the old module re-exports gmgan.synthetic (the tests of the
package are in tests/synthetic/)."""

from __future__ import annotations

import gmgan.synthetic as package
from gmgan import synthetic_sr


def test_the_old_module_re_exports_every_public_name():
    for name in package.__all__:
        assert getattr(synthetic_sr, name) is getattr(package, name), name
    # Names the pilot and the old tests used beside __all__.
    assert synthetic_sr.EDGE_THRESHOLD == package.EDGE_THRESHOLD
    assert callable(synthetic_sr.imresize) and callable(synthetic_sr._padded_imresize)
