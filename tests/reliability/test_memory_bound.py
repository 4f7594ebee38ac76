"""``gmgan sr`` with tiles keeps its peak memory bounded: it grows with the image only by the
input and output buffers (and the PNG encoder's copy of the output), not by float copies of them.

Measured in a child process (its own peak resident set, VmHWM from /proc/self/status) with a
tiny x4 RRDBNet, since the bound concerns tiling, not the model: the same tile size for a small
and a larger image, so the model's working memory is the same, and the difference of the peaks
must stay within a small multiple of the difference of the image buffers. Without the bounded
path (the whole output held as float32 and clipped / rounded as a whole, as gmgan.infer did before)
the difference is about 14 times the output size and this test fails.
"""
from __future__ import annotations

import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from rel_helpers import child_env

from gmgan.imageio import read_image, write_image
from gmgan.nets import RRDBNet, save_generator

pytestmark = [pytest.mark.timeout(300),
              pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")]

CHILD = """
import sys
from gmgan.cli import main
code = main(sys.argv[1:])
status = open("/proc/self/status").read()
print("PEAK_KB", status.split("VmHWM:")[1].split()[0], file=sys.stderr)
sys.exit(code)
"""

TILE, OVERLAP = 200, 8  # windows of 216 LR pixels


def _gradient(width: int, height: int) -> np.ndarray:
    """A smooth RGB picture (compresses well, so file writing stays cheap)."""
    y, x = np.mgrid[0:height, 0:width]
    return np.stack([x * 255 // width, y * 255 // height, (x + y) % 256], -1).astype(np.uint8)


def _peak_mb(tmp_path, weights, width: int, height: int) -> float:
    image = write_image(tmp_path / f"in_{width}x{height}.png", _gradient(width, height))
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-c", CHILD, "sr", str(image), "-o", str(out),
                           "--weights", str(weights), "--tile", str(TILE), "--overlap", str(OVERLAP),
                           "--device", "cpu"], capture_output=True, text=True, env=child_env(),
                          timeout=280, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert read_image(out / f"in_{width}x{height}_x4.png").shape == (4 * height, 4 * width, 3)
    return int(re.search(r"PEAK_KB (\d+)", proc.stderr).group(1)) / 1024


def test_peak_memory_grows_only_by_the_image_buffers(tmp_path):
    torch.manual_seed(0)
    weights = save_generator(RRDBNet(num_feat=2, num_grow=1, num_block=1), tmp_path / "g.safetensors")
    sizes = [(200, 200), (800, 600)]
    peaks = {size: _peak_mb(tmp_path, weights, *size) for size in sizes}
    buffers = {(w, h): (w * h * 3 + 16 * w * h * 3) / 2**20 for w, h in sizes}  # uint8 in + out
    grow = peaks[sizes[1]] - peaks[sizes[0]]
    more = buffers[sizes[1]] - buffers[sizes[0]]
    print(f"peak RSS: {', '.join(f'{w}x{h}: {peaks[(w, h)]:.0f} MB' for w, h in sizes)}; "
          f"growth {grow:.0f} MB for {more:.0f} MB more image buffers")
    # Output + input, PIL's 4-byte-per-pixel copy of the output while it encodes the PNG, and
    # allocator slack: at most 3 x the buffers, plus 32 MB.
    assert grow <= 3 * more + 32, (peaks, more)
