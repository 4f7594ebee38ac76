"""The training Dataset: aligned random patches, determinism, bad files, the loader."""
from __future__ import annotations

import itertools
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from gmgan.data.pairs import PatchPairs, build_loader, infinite_batches

P = 32  # HR patch used by most tests (LR patch 8 at scale 4): small and fast


def _rand(h: int, w: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _save(path: Path, img, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (img if isinstance(img, Image.Image) else Image.fromarray(img)).save(path, **kw)
    return path


def _make_set(root: Path, sizes, seed: int = 0) -> tuple[Path, Path, list, list]:
    """HR and LR folders of random images. LR is independent noise of the right size: a patch of
    noise occurs at one place only, which makes the alignment checks unambiguous."""
    hrs, lrs = [], []
    for i, (h, w) in enumerate(sizes):
        hr, lr = _rand(h, w, seed + 2 * i), _rand(h // 4, w // 4, seed + 2 * i + 1)
        _save(root / "HR" / f"im{i}.png", hr)
        _save(root / "LR" / f"im{i}.png", lr)
        hrs.append(hr)
        lrs.append(lr)
    return root / "HR", root / "LR", hrs, lrs


def _img(t: torch.Tensor) -> np.ndarray:
    """3xHxW float in [0, 1] -> HxWx3 uint8 (exact for values k/255)."""
    return (t.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)


def _find(patch: np.ndarray, full: np.ndarray) -> list[tuple[int, int]]:
    p = patch.shape[0]
    return [(y, x) for y in range(full.shape[0] - p + 1) for x in range(full.shape[1] - p + 1)
            if np.array_equal(full[y:y + p, x:x + p], patch)]


def _dihedral_np(a: np.ndarray, k: int) -> np.ndarray:
    out = np.rot90(a, k % 4)
    return out[:, ::-1] if k >= 4 else out


@pytest.fixture
def small(tmp_path):
    return _make_set(tmp_path, [(48, 64), (56, 40), (64, 64)])


# ------------------------------------------------------------------------------ patches


def test_default_shapes(tmp_path):
    hr_dir, lr_dir, _, _ = _make_set(tmp_path, [(160, 192)])
    lr, hr = PatchPairs(hr_dir, lr_dir)[0]
    assert lr.shape == (3, 32, 32) and hr.shape == (3, 128, 128)
    assert lr.dtype == hr.dtype == torch.float32
    assert 0 <= float(hr.min()) and float(hr.max()) <= 1


def test_lr_and_hr_patches_align_without_augment(small):
    hr_dir, lr_dir, hrs, lrs = small
    ds = PatchPairs(hr_dir, lr_dir, patch_size=P, augment=False, length=9)
    for i in range(9):
        lr, hr = (_img(t) for t in ds[i])
        j = i % 3  # index i -> image i % n
        (y, x), = _find(lr, lrs[j])
        np.testing.assert_array_equal(hr, hrs[j][4 * y:4 * y + P, 4 * x:4 * x + P])


def test_augmented_patches_share_one_transform(small):
    hr_dir, lr_dir, hrs, lrs = small
    ds = PatchPairs(hr_dir, lr_dir, patch_size=P, length=24)
    used = set()
    for i in range(24):
        lr, hr = (_img(t) for t in ds[i])
        j = i % 3
        hits = [(m, pos) for m in range(8) for pos in _find(_dihedral_np(lr, m), lrs[j])]
        assert len(hits) == 1, i  # the undoing transform m and the position are unique
        m, (y, x) = hits[0]
        np.testing.assert_array_equal(_dihedral_np(hr, m), hrs[j][4 * y:4 * y + P, 4 * x:4 * x + P])
        used.add(m)
    assert len(used) >= 4  # the transform is random, not a constant


def test_deterministic_per_seed_and_epoch(small):
    hr_dir, lr_dir, _, _ = small
    a = PatchPairs(hr_dir, lr_dir, patch_size=P, seed=5)
    b = PatchPairs(hr_dir, lr_dir, patch_size=P, seed=5)
    c = PatchPairs(hr_dir, lr_dir, patch_size=P, seed=6)
    for i in range(3):
        assert all(torch.equal(u, v) for u, v in zip(a[i], b[i]))
    assert not all(torch.equal(a[i][1], c[i][1]) for i in range(3))
    before = [a[i][1] for i in range(3)]
    a.set_epoch(1)
    assert a.epoch == 1
    assert not all(torch.equal(u, a[i][1]) for i, u in enumerate(before))
    a.set_epoch(0)
    assert all(torch.equal(u, a[i][1]) for i, u in enumerate(before))


def _two_epochs(hr_dir, lr_dir, workers: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    ds = PatchPairs(hr_dir, lr_dir, patch_size=P, seed=3, length=12)
    loader = build_loader(ds, batch_size=4, num_workers=workers, seed=7)
    return list(itertools.islice(infinite_batches(loader), 6))  # 3 batches per epoch


def test_loader_same_batches_with_0_and_2_workers(small):
    hr_dir, lr_dir, _, _ = small
    single = _two_epochs(hr_dir, lr_dir, 0)
    multi = _two_epochs(hr_dir, lr_dir, 2)  # persistent workers: set_epoch must reach them
    for (lr0, hr0), (lr2, hr2) in zip(single, multi):
        assert lr2.shape == (4, 3, P // 4, P // 4) and hr2.shape == (4, 3, P, P)
        assert torch.equal(lr0, lr2) and torch.equal(hr0, hr2)
    epoch0 = torch.cat([hr for _, hr in single[:3]])
    epoch1 = torch.cat([hr for _, hr in single[3:]])
    assert not torch.equal(epoch0, epoch1)


# ------------------------------------------------------------------------------ the image cache

def _all_patches(ds: PatchPairs, rounds: int = 2) -> list[torch.Tensor]:
    return [t for _ in range(rounds) for i in range(len(ds)) for t in ds[i]]


def test_cache_keeps_to_its_budget_and_batches_do_not_depend_on_it(tmp_path):
    """The cache holds at most its byte budget (least recently used pairs leave first), and
    the patches are the same with no cache, a small one and an unbounded one."""
    hr_dir, lr_dir, _, _ = _make_set(tmp_path, [(64, 64)] * 6)
    pair_bytes = 64 * 64 * 3 + 16 * 16 * 3
    kwargs = {"patch_size": P, "seed": 4, "length": 18}
    none = PatchPairs(hr_dir, lr_dir, cache_images=False, **kwargs)
    small = PatchPairs(hr_dir, lr_dir, cache_bytes=2 * pair_bytes + 1, **kwargs)
    big = PatchPairs(hr_dir, lr_dir, cache_bytes=10**9, **kwargs)
    assert none.cache_bytes == 0 and none.cached_bytes == 0
    assert small.cached_bytes == 0  # the set does not fit: the scan keeps nothing
    assert big.cached_bytes == 6 * pair_bytes  # it fits: the scan's decodes are kept
    reference = _all_patches(none)
    for ds in (small, big):
        patches = _all_patches(ds)
        assert all(torch.equal(a, b) for a, b in zip(reference, patches))
    assert small.cached_bytes == 2 * pair_bytes and len(small._cache) == 2
    assert none.cached_bytes == 0
    # least recently used out first: the last two images read are the ones kept
    assert set(small._cache._pairs) == {(len(small) - 2) % 6, (len(small) - 1) % 6}
    # A pickled copy (a spawned DataLoader worker) gets no copy of the cached images.
    copy = pickle.loads(pickle.dumps(big))
    assert copy.cached_bytes == 0 and copy.cache_bytes == big.cache_bytes
    assert all(torch.equal(a, b) for a, b in zip(reference, _all_patches(copy)))


def test_loader_batches_with_a_small_cache_and_workers(small):
    hr_dir, lr_dir, _, _ = small

    def batches(workers: int, cache_bytes: int) -> list[torch.Tensor]:
        ds = PatchPairs(hr_dir, lr_dir, patch_size=P, seed=3, length=12, cache_bytes=cache_bytes)
        loader = build_loader(ds, batch_size=4, num_workers=workers, seed=7)
        return [t for batch in itertools.islice(infinite_batches(loader), 6) for t in batch]

    reference = batches(0, 10**9)
    # pairs are 7-13 kB: 20 kB holds one or two, so pairs are evicted and decoded again
    for workers, budget in ((0, 0), (0, 20_000), (2, 40_000)):
        assert all(torch.equal(a, b) for a, b in zip(reference, batches(workers, budget)))


class _Budgets(torch.utils.data.Dataset):
    """Reports the cache budget that a PatchPairs sees in the process that reads an item."""

    def __init__(self, inner: PatchPairs):
        self.inner = inner

    def __len__(self) -> int:
        return 4

    def __getitem__(self, index: int) -> int:
        return self.inner.cache_budget()


def test_default_budget_is_a_share_of_memory_split_over_workers(small, monkeypatch):
    from gmgan.data import pairs

    hr_dir, lr_dir, _, _ = small
    limit = pairs.memory_limit_bytes()
    assert 0 < limit <= os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    ds = PatchPairs(hr_dir, lr_dir, patch_size=P)
    assert ds.cache_bytes == int(limit * pairs.DEFAULT_CACHE_FRACTION) == pairs.default_cache_bytes()
    assert ds.cache_budget() == ds.cache_bytes  # the main process
    loader = torch.utils.data.DataLoader(_Budgets(ds), batch_size=1, num_workers=2)
    assert {int(b) for b in loader} == {ds.cache_bytes // 2}  # each of 2 workers: half
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "4")  # 4 torchrun processes on this machine
    assert pairs.default_cache_bytes() == int(limit * pairs.DEFAULT_CACHE_FRACTION) // 4
    with pytest.raises(ValueError, match="cache_bytes"):
        PatchPairs(hr_dir, lr_dir, patch_size=P, cache_bytes=-1)


def test_loader_needs_a_full_batch(small):
    hr_dir, lr_dir, _, _ = small
    with pytest.raises(ValueError, match="no full batch"):
        build_loader(PatchPairs(hr_dir, lr_dir, patch_size=P), batch_size=16)


# ------------------------------------------------------------------------------ bad files


def _write_bad(folder: Path, kind: str) -> Path:
    """One bad HR file of the given kind (its LR partner is fine)."""
    folder.mkdir(parents=True, exist_ok=True)
    good = _rand(48, 48, 99)
    if kind == "corrupt.png":  # a valid header and a garbled pixel stream
        path = _save(folder / kind, good)
        data = bytearray(path.read_bytes())
        at = data.index(b"IDAT") + 40
        data[at:at + 400] = np.random.default_rng(1).integers(0, 256, 400, np.uint8).tobytes()
        path.write_bytes(bytes(data))
    elif kind == "truncated.jpg":
        path = _save(folder / kind, good, quality=90)
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    elif kind == "empty.png":
        path = folder / kind
        path.write_bytes(b"")
    elif kind == "tiny.png":  # 24x24 HR, 6x6 LR: smaller than the 32 / 8 px patch
        path = _save(folder / kind, _rand(24, 24, 98))
    elif kind == "text.png":
        path = folder / kind
        path.write_text("this is not a PNG\n")
    else:
        raise ValueError(kind)
    return path


BAD = ["corrupt.png", "truncated.jpg", "empty.png", "tiny.png", "text.png"]


def _with_bad(root: Path, kinds) -> tuple[Path, Path]:
    hr_dir, lr_dir, _, _ = _make_set(root, [(48, 48), (52, 60)])
    for kind in kinds:
        _write_bad(hr_dir, kind)
        stem = Path(kind).stem
        _save(lr_dir / f"{stem}.png", _rand(6, 6, 1) if stem == "tiny" else _rand(12, 12, 2))
    return hr_dir, lr_dir


@pytest.mark.parametrize("kind", BAD)
def test_each_bad_file_is_skipped_or_named(tmp_path, kind):
    hr_dir, lr_dir = _with_bad(tmp_path, [kind])
    with pytest.warns(UserWarning, match=f"skipped 1 files.*{kind}"):
        ds = PatchPairs(hr_dir, lr_dir, patch_size=P)
    assert [p.name for p, _ in ds.skipped] == [kind]
    assert len(ds.pairs) == 2 and ds[0][1].shape == (3, P, P)
    with pytest.raises(ValueError, match=kind.replace(".", r"\.")):
        PatchPairs(hr_dir, lr_dir, patch_size=P, on_bad="error")


def test_all_bad_files_counted_in_one_warning(tmp_path):
    hr_dir, lr_dir = _with_bad(tmp_path, BAD)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = PatchPairs(hr_dir, lr_dir, patch_size=P)
    mine = [w for w in caught if "PatchPairs" in str(w.message)]
    assert len(mine) == 1
    assert "skipped 5 files" in str(mine[0].message)
    message = str(mine[0].message)
    assert "4 unreadable" in message and "1 smaller than the patch" in message
    assert sorted(p.name for p, _ in ds.skipped) == sorted(BAD)
    assert len(ds) == 2


def test_no_usable_image_names_the_folder(tmp_path):
    hr_dir, lr_dir = tmp_path / "HR", tmp_path / "LR"
    _write_bad(hr_dir, "text.png")
    _save(lr_dir / "text.png", _rand(12, 12, 0))
    with pytest.raises(ValueError, match=f"no usable image pairs in {hr_dir}"):
        PatchPairs(hr_dir, lr_dir, patch_size=P)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        PatchPairs(tmp_path / "nowhere", lr_dir)


def test_unpaired_and_mismatched_lr_skipped(tmp_path):
    hr_dir, lr_dir, _, _ = _make_set(tmp_path, [(48, 48), (52, 60)])
    _save(hr_dir / "alone.png", _rand(48, 48, 5))
    _save(hr_dir / "wrong.png", _rand(48, 48, 6))
    _save(lr_dir / "wrong.png", _rand(13, 12, 7))
    with pytest.warns(UserWarning, match="skipped 2"):
        ds = PatchPairs(hr_dir, lr_dir, patch_size=P)
    reasons = dict((p.name, why) for p, why in ds.skipped)
    assert "no LR image" in reasons["alone.png"] and "(13, 12)" in reasons["wrong.png"]


def test_file_broken_after_scan_falls_back_deterministically(small):
    hr_dir, lr_dir, hrs, lrs = small
    ds = PatchPairs(hr_dir, lr_dir, patch_size=P, augment=False, cache_images=False)
    (hr_dir / "im0.png").write_bytes(b"gone bad")
    with pytest.warns(UserWarning, match="im0.png failed to load"):
        lr, hr = (_img(t) for t in ds[0])
    (y, x), = _find(lr, lrs[1])  # the next image stands in
    np.testing.assert_array_equal(hr, hrs[1][4 * y:4 * y + P, 4 * x:4 * x + P])
    assert ds.load_failures == 1
    again = _img(ds[0][0])
    np.testing.assert_array_equal(again, lr)  # same fallback, no second failure
    assert ds.load_failures == 1


@pytest.mark.filterwarnings("ignore::gmgan.imageio.ImageConversionWarning")
def test_grey_rgba_and_16bit_converted(tmp_path):
    hr_dir, lr_dir = tmp_path / "HR", tmp_path / "LR"
    rng = np.random.default_rng(0)
    grey_hr = rng.integers(0, 256, (48, 48), np.uint8)
    grey_lr = rng.integers(0, 256, (12, 12), np.uint8)
    _save(hr_dir / "grey.png", grey_hr)
    _save(lr_dir / "grey.png", grey_lr)
    rgba_hr, rgba_lr = _rand(48, 48, 1), _rand(12, 12, 2)
    opaque = lambda a: np.dstack([a, np.full(a.shape[:2], 255, np.uint8)])  # noqa: E731
    _save(hr_dir / "rgba.png", opaque(rgba_hr))
    _save(lr_dir / "rgba.png", opaque(rgba_lr))
    # 16-bit grey with the values 0 and 65535 only: 0 and 255 under any 16 -> 8 bit rule
    bits_hr, bits_lr = rng.integers(0, 2, (48, 48)), rng.integers(0, 2, (12, 12))
    for folder, bits in ((hr_dir, bits_hr), (lr_dir, bits_lr)):
        _save(folder / "deep.png", Image.fromarray((bits * 65535).astype(np.uint16)))
    ds = PatchPairs(hr_dir, lr_dir, patch_size=P, augment=False, length=3)
    assert not ds.skipped
    names = [hr.name for hr, _ in ds.pairs]  # deep, grey, rgba
    for i, name in enumerate(names):
        lr, hr = (_img(t) for t in ds[i])
        assert lr.shape == (8, 8, 3) and hr.shape == (P, P, 3)
        if name == "rgba.png":
            (y, x), = _find(lr, rgba_lr)
            np.testing.assert_array_equal(hr, rgba_hr[4 * y:4 * y + P, 4 * x:4 * x + P])
        else:
            full = grey_lr if name == "grey.png" else (bits_lr * 255).astype(np.uint8)
            assert np.array_equal(lr[..., 0], lr[..., 1]) and np.array_equal(lr[..., 0], lr[..., 2])
            assert _find(lr[..., 0], full)


@pytest.mark.filterwarnings("ignore::gmgan.imageio.ImageConversionWarning")
def test_exif_rotated_jpeg_is_sized_upright(tmp_path):
    """A camera JPEG stored 64 wide x 48 high with EXIF orientation 6 reads as 48 wide x 64 high."""
    exif = Image.Exif()
    exif[0x0112] = 6
    _save(tmp_path / "HR" / "cam.jpg", _rand(48, 64, 0), exif=exif, quality=95)
    _save(tmp_path / "LR" / "cam.png", _rand(16, 12, 1))
    ds = PatchPairs(tmp_path / "HR", tmp_path / "LR", patch_size=P)
    assert not ds.skipped and ds[0][1].shape == (3, P, P)
