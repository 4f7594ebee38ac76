"""gmgan.sr_plan: which inputs ``gmgan sr`` reads and which outputs it may write,
decided before the first write (the whole command is tested in
tests/reliability/test_sr_files.py)."""
from __future__ import annotations

import numpy as np
from PIL import Image

from gmgan.imageio import write_image
from gmgan.sr_plan import collect_inputs, plan_outputs, read_for_sr


def _png(path, value=0):
    return write_image(path, np.full((4, 6, 3), value, np.uint8))


def test_collect_inputs_keeps_order_drops_duplicates_and_reports_missing(tmp_path):
    b = _png(tmp_path / "photos" / "b.png")
    a = _png(tmp_path / "photos" / "a.png")
    _png(tmp_path / "photos" / "deeper" / "c.png")  # folders are read one level deep
    single = _png(tmp_path / "single.png")
    failures: list[tuple[str, str]] = []
    files = collect_inputs([str(single), str(tmp_path / "photos"), str(a),
                            str(tmp_path / "gone.png")], failures)
    assert files == [single, a, b]
    assert failures == [(str(tmp_path / "gone.png"), "no such file or folder")]


def test_plan_outputs_never_replaces_an_input_nor_an_existing_file(tmp_path):
    out = tmp_path / "out"
    first = _png(tmp_path / "in" / "x.png")
    second = _png(tmp_path / "other" / "x.png")  # the same stem: the first one wins
    kept = _png(tmp_path / "in" / "kept.png")
    existing = _png(out / "kept_x4.png")
    y = _png(tmp_path / "in" / "y.png")
    y_output_as_input = _png(out / "y_x4.png")
    files = [first, second, kept, y, y_output_as_input]
    failures: list[tuple[str, str]] = []
    plan = plan_outputs(files, out, 4, False, failures)
    assert plan == [(first, out / "x_x4.png"),
                    (y_output_as_input, out / "y_x4_x4.png")]
    reasons = dict(failures)
    assert "would overwrite the result of" in reasons[str(second)]
    assert "exists; not overwritten" in reasons[str(kept)]
    assert "is one of the inputs" in reasons[str(y)]
    failures.clear()
    plan = plan_outputs(files, out, 4, True, failures)  # --overwrite: kept is replaced
    assert (kept, existing) in plan and str(y) in dict(failures)


def test_read_for_sr_keeps_the_alpha_channel(tmp_path):
    rgba = np.dstack([np.full((4, 6, 3), 9, np.uint8), np.arange(24, dtype=np.uint8)
                      .reshape(4, 6)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    np.testing.assert_array_equal(read_for_sr(tmp_path / "a.png"), rgba)
    grey = np.arange(24, dtype=np.uint8).reshape(4, 6)
    Image.fromarray(grey, "L").save(tmp_path / "g.png")
    np.testing.assert_array_equal(read_for_sr(tmp_path / "g.png"), grey)
