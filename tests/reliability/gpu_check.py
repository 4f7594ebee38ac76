"""Device check (not a test): run on a machine with a CUDA GPU, from the repository root:

    python tests/reliability/gpu_check.py OUT_DIR

1. ``gmgan sr`` peak memory on the CPU for 1000x750, 2000x1500 and 4000x3000 inputs (tile 256,
   a 1-block 16-feature x4 RRDBNet), each in its own process (VmHWM);
2. a real out-of-memory error: ``gmgan train --preset paper`` on 256 px patches with a batch far
   beyond the GPU's memory; the trainer must stop with the batch that fits.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CHILD = """
import sys
from gmgan.cli import main
code = main(sys.argv[1:])
status = open("/proc/self/status").read()
print("PEAK_KB", status.split("VmHWM:")[1].split()[0], file=sys.stderr)
sys.exit(code)
"""


def rss(out: Path) -> list[dict]:
    import torch

    from gmgan.imageio import write_image
    from gmgan.nets import RRDBNet, save_generator

    torch.manual_seed(0)
    weights = save_generator(RRDBNet(num_feat=16, num_grow=16, num_block=1), out / "g.safetensors")
    rows = []
    for w, h in [(1000, 750), (2000, 1500), (4000, 3000)]:
        y, x = np.mgrid[0:h, 0:w]
        img = np.stack([x * 255 // w, y * 255 // h, (x + y) % 256], -1).astype(np.uint8)
        src = write_image(out / f"in_{w}x{h}.png", img)
        t = time.time()
        proc = subprocess.run([sys.executable, "-c", CHILD, "sr", str(src), "-o", str(out / "sr"),
                               "--weights", str(weights), "--tile", "256", "--device", "cpu"],
                              capture_output=True, text=True, check=False,
                              env=dict(os.environ, CUDA_VISIBLE_DEVICES=""))
        peak = int(proc.stderr.split("PEAK_KB")[1].split()[0]) / 1024 if "PEAK_KB" in proc.stderr else None
        rows.append({"size": f"{w}x{h}", "rc": proc.returncode, "peak_mb": peak,
                     "out_mb": 16 * w * h * 3 / 2**20, "in_mb": w * h * 3 / 2**20,
                     "seconds": round(time.time() - t, 1), "err": proc.stderr[-500:]})
        print(rows[-1], flush=True)
        (out / "sr" / f"in_{w}x{h}_x4.png").unlink(missing_ok=True)
    return rows


def oom(out: Path) -> dict:
    run = out / "oomrun"
    t = time.time()
    proc = subprocess.run([sys.executable, "-m", "gmgan", "train", "--preset", "paper",
                           "--train-set", "samples", "--patch-size", "256", "--batch-size", "256",
                           "--phase", "pretrain", "--pretrain-iters", "2", "--val-sets",
                           "--no-tensorboard", "--no-progress", "--num-workers", "4",
                           "--out-dir", str(run)], capture_output=True, text=True, check=False)
    row = {"rc": proc.returncode, "seconds": round(time.time() - t, 1), "stderr": proc.stderr[-3000:]}
    print(row, flush=True)
    return row


if __name__ == "__main__":
    out = Path(sys.argv[1])
    out.mkdir(parents=True, exist_ok=True)
    (out / "sr").mkdir(exist_ok=True)
    result = {"oom": oom(out)}
    result["rss"] = rss(out)
    (out / "gpu_check.json").write_text(json.dumps(result, indent=1))
