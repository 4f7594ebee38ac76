"""The training Dataset: random aligned HR/LR patch pairs, and the DataLoader around it.

Randomness is a pure function of ``(seed, epoch, index)``: each ``__getitem__`` makes its own
numpy generator from those three numbers, so a batch is the same whichever worker made it and
however many workers there are. The epoch lives in a shared-memory tensor, so ``set_epoch`` in
the main process reaches persistent workers too.

Bad data is found before training starts: the constructor reads every header (and decodes every
file when the set is small), skips what is unreadable or too small, and says so once. A file that
still fails to decode later is replaced by the next good image, never a crashed worker.

Decoded images are kept in a memory cache with a byte budget (:class:`ImageCache`, least recently
used out first), shared out among the DataLoader's workers: a set of any size runs in bounded
memory, and a small set is decoded once.
"""
from __future__ import annotations

import os
import warnings
from collections import Counter, OrderedDict
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from gmgan.data.prepare import dihedral, image_size
from gmgan.imageio import image_to_tensor, list_images, read_image

__all__ = ["DEFAULT_CACHE_FRACTION", "ImageCache", "PatchPairs", "build_loader", "default_cache_bytes",
           "infinite_batches", "memory_limit_bytes"]

# Decode every image at construction (a real check for truncated files) only when the whole set
# holds fewer HR pixels than this: T91 + BSDS200 is ~45 Mpx; DIV2K (~800 x 2.8 Mpx) is not checked.
_DECODE_BUDGET_PX = 200_000_000

#: The share of this machine's memory (or of the container's limit, if lower) that the decoded
#: images of one :class:`PatchPairs` may fill by default, over all its DataLoader workers together.
DEFAULT_CACHE_FRACTION = 0.25


def memory_limit_bytes() -> int:
    """The memory this process can use, in bytes: the machine's physical memory, or the limit of
    its container (cgroup v2 ``memory.max`` / v1 ``memory.limit_in_bytes``) where that is lower."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):  # not POSIX (Windows)
        total = 8 << 30  # a modest guess: the budget then errs on the small side
    for limit_file in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(limit_file).read_text().strip()
        except OSError:
            continue
        if text.isdigit():  # "max" (v2) means no limit; v1 says so with a huge number
            total = min(total, int(text))
    return int(total)


def default_cache_bytes() -> int:
    """The default byte budget of a :class:`PatchPairs` cache: :data:`DEFAULT_CACHE_FRACTION` of
    :func:`memory_limit_bytes`, split between the processes of a ``torchrun`` job on this machine
    (``LOCAL_WORLD_SIZE``), each of which has its own dataset and workers."""
    processes = max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1")))
    return int(memory_limit_bytes() * DEFAULT_CACHE_FRACTION) // processes


class ImageCache:
    """Decoded (HR, LR) image pairs by index, within a byte budget; least recently used out first.

    ``budget`` (bytes) may change at any time; it is enforced when a pair is added. A pair larger
    than the whole budget is not kept. The arrays are stored read-only, so a hit returns exactly
    the pixels a fresh decode would: what a batch holds never depends on the cache.
    """

    def __init__(self, budget: int) -> None:
        self.budget = int(budget)
        self.nbytes = 0  # bytes of the arrays held
        self._pairs: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._pairs)

    def __contains__(self, key: int) -> bool:
        return key in self._pairs

    def get(self, key: int) -> tuple[np.ndarray, np.ndarray] | None:
        pair = self._pairs.get(key)
        if pair is not None:
            self._pairs.move_to_end(key)
        return pair

    def put(self, key: int, hr: np.ndarray, lr: np.ndarray) -> None:
        size = hr.nbytes + lr.nbytes
        if key in self._pairs or size > self.budget:
            return
        while self._pairs and self.nbytes + size > self.budget:
            _, (old_hr, old_lr) = self._pairs.popitem(last=False)
            self.nbytes -= old_hr.nbytes + old_lr.nbytes
        hr.setflags(write=False)
        lr.setflags(write=False)
        self._pairs[key] = (hr, lr)
        self.nbytes += size


Pair = tuple[torch.Tensor, torch.Tensor]


def _stack_pairs(batch: list[Pair]) -> Pair:
    """Collate ``(lr, hr)`` samples into ``(B x 3 x h x w, B x 3 x H x W)`` with numpy.

    Used in the main process (``num_workers=0``): ``torch.stack`` there runs on torch's thread
    pool, which on a busy CPU took 250 ms per batch of 16 (4 ms with one thread)."""
    lr = np.stack([item[0].numpy() for item in batch])
    hr = np.stack([item[1].numpy() for item in batch])
    return torch.from_numpy(lr), torch.from_numpy(hr)


class PatchPairs(Dataset):
    """Random aligned patch pairs from a folder of HR images and a folder of their LR images.

    ``hr_dir/<stem>.*`` pairs with ``lr_dir/<stem>.*`` (or ``<stem>x<scale>.*``, the benchmark
    naming); each LR image must be exactly ``floor(HR size / scale)``, as :func:`make_lr` writes.

    ``dataset[i]`` returns ``(lr, hr)``: float32 tensors in [0, 1], RGB, shapes
    ``3 x patch_size/scale x patch_size/scale`` and ``3 x patch_size x patch_size``. The LR patch
    starts at a random (y, x) of image ``i % n`` and the HR patch at ``(scale*y, scale*x)``, so
    they show the same region; with ``augment`` both get the same random dihedral transform (one
    of 8 rotations/flips, :func:`gmgan.data.prepare.dihedral`). Draws come from a generator seeded
    by ``(seed, epoch, i)``: deterministic for a seed whatever the number of workers, different
    after :meth:`set_epoch`. ``length`` (default: the number of images) sets ``len(dataset)``; a
    larger value makes an epoch of many patches, cycling through the images.

    Construction scans all files: unreadable, truncated (when the set is small enough to decode,
    < 200 Mpx), unpaired and too-small images are skipped and listed in ``self.skipped`` as
    ``(path, reason)``, with one warning; ``on_bad="error"`` raises ``ValueError`` naming the first
    bad file instead. Grey, RGBA and 16-bit files are converted to RGB uint8 by
    :func:`gmgan.imageio.read_image`.

    Memory: with ``cache_images``, decoded pairs are kept in an :class:`ImageCache` of at most
    ``cache_bytes`` bytes (default :func:`default_cache_bytes`: a quarter of the machine's
    memory) for all DataLoader workers together: each worker keeps ``cache_bytes / num_workers``
    of its own, the least recently used pair out first (:meth:`cache_budget`). A set that fits
    whole is kept by the scan in the main process and shared with forked workers, which then
    decode nothing; of a larger one (DIV2K's ~32,000 sub-images are ~24 GB decoded) as much is
    served from memory as the budget holds, the rest decoded when read. Why an LRU cache and not
    memory-mapped decoded files: those would need a second, decoded copy of the training set on
    disk (8x for the dihedral set) and a full pass to write it, while decoding keeps pace: a
    480 x 480 PNG sub-image took 16 ms on a busy 2-core machine, so 4 workers decode ~250 a
    second, where a paper-preset step on one H200 uses 16 in 0.15 s. Cache hits and misses give
    the same pixels, so batches never depend on the budget.
    """

    def __init__(self, hr_dir: str | os.PathLike, lr_dir: str | os.PathLike, *,
                 patch_size: int = 128, scale: int = 4, seed: int = 0, length: int | None = None,
                 augment: bool = True, cache_images: bool = True, cache_bytes: int | None = None,
                 on_bad: str = "skip"):
        if scale < 1 or patch_size < scale or patch_size % scale:
            raise ValueError(f"patch_size must be a positive multiple of scale; got patch_size="
                             f"{patch_size}, scale={scale}")
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        if length is not None and length < 1:
            raise ValueError(f"length must be >= 1 or None, got {length}")
        if on_bad not in ("skip", "error"):
            raise ValueError(f"on_bad must be 'skip' or 'error', got {on_bad!r}")
        if cache_bytes is not None and cache_bytes < 0:
            raise ValueError(f"cache_bytes must be >= 0 (bytes) or None, got {cache_bytes}")
        self.hr_dir, self.lr_dir = Path(hr_dir), Path(lr_dir)
        self.patch_size, self.scale, self.seed = int(patch_size), int(scale), int(seed)
        self.augment, self.cache_images, self.on_bad = augment, cache_images, on_bad
        self.skipped: list[tuple[Path, str]] = []
        self.load_failures = 0  # files that failed to decode after the scan, in this process
        self._kinds: list[str] = []  # category of each skipped entry, for the summary warning
        if not cache_images:
            cache_bytes = 0
        self.cache_bytes = default_cache_bytes() if cache_bytes is None else int(cache_bytes)
        self._cache = ImageCache(self.cache_bytes)
        self._failed: set[int] = set()
        # One int shared by all worker processes, so that set_epoch reaches persistent workers.
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

        self.pairs = self._scan(self._pair_files())
        if not self.pairs:
            reasons = ", ".join(f"{n} {k}" for k, n in Counter(self._kinds).items()) or "no files"
            raise ValueError(f"no usable image pairs in {self.hr_dir} (LR: {self.lr_dir}); "
                             f"skipped: {reasons}")
        self._warn_skipped()
        self.length = int(length) if length is not None else len(self.pairs)

    # ------------------------------------------------------------------ construction

    def _skip(self, path: Path, kind: str, reason: str) -> None:
        if self.on_bad == "error":
            raise ValueError(f"{path}: {reason}")
        self.skipped.append((path, reason))
        self._kinds.append(kind)

    def _pair_files(self) -> list[tuple[Path, Path]]:
        for folder in (self.hr_dir, self.lr_dir):
            if not folder.is_dir():
                raise FileNotFoundError(f"image folder not found: {folder}")
        lr_by_stem = {p.stem: p for p in sorted(list_images(self.lr_dir))}
        pairs = []
        for hr in sorted(list_images(self.hr_dir)):
            lr = lr_by_stem.get(hr.stem) or lr_by_stem.get(f"{hr.stem}x{self.scale}")
            if lr is None:
                self._skip(hr, "unpaired", f"no LR image named {hr.stem}.* in {self.lr_dir}")
            else:
                pairs.append((hr, lr))
        return pairs

    def _scan(self, pairs: list[tuple[Path, Path]]) -> list[tuple[Path, Path]]:
        """Header check of every pair, then a full decode when the set is small enough."""
        lr_patch = self.patch_size // self.scale
        checked = []
        total_px = 0
        for hr, lr in pairs:
            try:
                hr_hw, lr_hw = image_size(hr), image_size(lr)
            except Exception as err:  # any failure to read a header means a bad file
                self._skip(hr, "unreadable", f"unreadable: {err}")
                continue
            want = (hr_hw[0] // self.scale, hr_hw[1] // self.scale)
            if lr_hw != want:
                self._skip(lr, "size mismatch", f"LR size {lr_hw} is not HR size {hr_hw} / "
                                                f"{self.scale} = {want}")
            elif min(lr_hw) < lr_patch:
                self._skip(hr, "smaller than the patch", f"HR {hr_hw[0]}x{hr_hw[1]} is smaller "
                                                         f"than the {self.patch_size} px patch")
            else:
                checked.append((hr, lr, lr_hw))
                total_px += hr_hw[0] * hr_hw[1]
        if total_px > _DECODE_BUDGET_PX:
            return [(hr, lr) for hr, lr, _ in checked]

        # Keep the scan's decoded images only if the whole set fits the budget: then forked workers
        # share them and decode nothing; otherwise they would be a second, unshared cache.
        keep = self.cache_bytes >= 3 * total_px * (1 + 1 / self.scale ** 2)  # uint8 RGB, HR + LR
        usable = []
        for hr, lr, lr_hw in checked:
            try:
                hr_img, lr_img = read_image(hr), read_image(lr)
            except Exception as err:  # ImageReadError, or anything else a broken file raises
                self._skip(hr, "unreadable", f"unreadable: {err}")
                continue
            want = (hr_img.shape[0] // self.scale, hr_img.shape[1] // self.scale)
            if lr_img.shape[:2] != lr_hw or lr_img.shape[:2] != want:  # header and pixels disagree
                self._skip(lr, "unreadable",
                           f"decoded LR size {lr_img.shape[:2]} is not header {lr_hw} "
                           f"or HR size {hr_img.shape[:2]} / {self.scale}")
                continue
            if keep:
                self._cache.put(len(usable), hr_img, lr_img)
            usable.append((hr, lr))
        return usable

    def _warn_skipped(self) -> None:
        if not self.skipped:
            return
        counts = ", ".join(f"{n} {k}" for k, n in Counter(self._kinds).items())
        first = "; ".join(f"{p.name}: {why}" for p, why in self.skipped[:3])
        warnings.warn(f"PatchPairs skipped {len(self.skipped)} files in {self.hr_dir} ({counts}); "
                      f"first: {first}" + (" ..." if len(self.skipped) > 3 else ""), stacklevel=3)

    # ------------------------------------------------------------------ sampling

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        """Change the random draws (crops and transforms) of every index; seen by all workers."""
        self._epoch.fill_(int(epoch))

    def __len__(self) -> int:
        return self.length

    def __getstate__(self) -> dict:
        # A pickled copy (a DataLoader worker started by spawn or forkserver) starts with an empty
        # cache: the scan's decoded images would otherwise be copied into every worker.
        state = self.__dict__.copy()
        state["_cache"] = ImageCache(self._cache.budget)
        return state

    def cache_budget(self) -> int:
        """The bytes of decoded images this process may keep: ``cache_bytes``, divided by the
        number of workers when called in a DataLoader worker."""
        info = torch.utils.data.get_worker_info()
        return self.cache_bytes // (info.num_workers if info is not None else 1)

    @property
    def cached_bytes(self) -> int:
        """Bytes of decoded images held by this process's cache now."""
        return self._cache.nbytes

    def _load(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        cached = self._cache.get(j)
        if cached is not None:
            return cached
        hr_path, lr_path = self.pairs[j]
        hr, lr = read_image(hr_path), read_image(lr_path)
        want = (hr.shape[0] // self.scale, hr.shape[1] // self.scale)
        if lr.shape[:2] != want or min(want) < self.patch_size // self.scale:
            raise ValueError(f"{lr_path}: size {lr.shape[:2]} no longer fits HR {hr.shape[:2]}")
        self._cache.budget = self.cache_budget()
        self._cache.put(j, hr, lr)
        return hr, lr

    def _load_good(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        """Image pair ``j``, or the next one that decodes: a file failing here is a property of
        the file, so every worker falls back to the same image."""
        n = len(self.pairs)
        for step in range(n):
            k = (j + step) % n
            if k in self._failed:
                continue
            try:
                return self._load(k)
            except Exception as err:  # never crash a worker hours into training
                self._failed.add(k)
                self.load_failures += 1
                warnings.warn(f"PatchPairs: {self.pairs[k][0]} failed to load ({err}); "
                              "using the next image instead", stacklevel=3)
        raise RuntimeError(f"none of the {n} image pairs in {self.hr_dir} could be loaded")

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        index = int(index)
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range for {self.length} patches")
        rng = np.random.default_rng([self.seed, self.epoch, index])
        hr, lr = self._load_good(index % len(self.pairs))
        p = self.patch_size // self.scale
        y = int(rng.integers(0, lr.shape[0] - p + 1))
        x = int(rng.integers(0, lr.shape[1] - p + 1))
        k = int(rng.integers(0, 8))  # drawn even without augment, so crops do not depend on it
        s = self.scale
        lr_patch = lr[y:y + p, x:x + p]
        hr_patch = hr[s * y:s * (y + p), s * x:s * (x + p)]
        if self.augment:
            lr_patch, hr_patch = dihedral(lr_patch, k), dihedral(hr_patch, k)
        return image_to_tensor(lr_patch)[0], image_to_tensor(hr_patch)[0]

    def __repr__(self) -> str:
        return (f"PatchPairs({len(self.pairs)} images from {self.hr_dir}, length={self.length}, "
                f"patch={self.patch_size}, scale={self.scale}, skipped={len(self.skipped)})")


def build_loader(dataset: Dataset, *, batch_size: int, num_workers: int = 0, seed: int = 0,
                 shuffle: bool = True, drop_last: bool = True, pin_memory: bool | None = None,
                 prefetch_factor: int | None = None, persistent_workers: bool | None = None,
                 distributed: bool = False) -> DataLoader:
    """A DataLoader of ``(lr, hr)`` batches: float32 ``B x 3 x h x w`` and ``B x 3 x H x W``.

    The order is a permutation seeded by ``seed + epoch`` (a ``DistributedSampler``, with one
    replica unless ``distributed``); call ``loader.sampler.set_epoch`` and ``dataset.set_epoch``
    each epoch, or use :func:`infinite_batches`, which does both. With ``distributed`` each rank
    of the initialised ``torch.distributed`` group gets its share. ``pin_memory`` defaults to CUDA
    being available; with workers, ``prefetch_factor`` defaults to 4 and workers persist.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if distributed:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise RuntimeError("build_loader(distributed=True) needs torch.distributed to be "
                               "initialised (init_process_group) first")
        replicas, rank = dist.get_world_size(), dist.get_rank()
    else:
        replicas, rank = 1, 0
    sampler = DistributedSampler(dataset, num_replicas=replicas, rank=rank, shuffle=shuffle,
                                 seed=seed)
    if drop_last and len(sampler) < batch_size:
        raise ValueError(f"{len(sampler)} samples per process make no full batch of {batch_size}; "
                         "give the dataset a larger length or use a smaller batch")
    workers = int(num_workers)
    kwargs = {}
    if workers > 0:
        kwargs["prefetch_factor"] = 4 if prefetch_factor is None else prefetch_factor
        kwargs["persistent_workers"] = True if persistent_workers is None else persistent_workers
    elif isinstance(dataset, PatchPairs):
        kwargs["collate_fn"] = _stack_pairs  # workers collate with one thread already
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers,
                      drop_last=drop_last,
                      pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
                      generator=torch.Generator().manual_seed(seed), **kwargs)


def infinite_batches(loader: DataLoader, start_epoch: int = 0) -> Iterator:
    """Yield batches forever, epoch after epoch, calling ``set_epoch`` on the loader's sampler and
    dataset before each epoch (so shuffling and random crops change, reproducibly)."""
    epoch = start_epoch
    while True:
        for obj in (loader.sampler, loader.dataset):
            if hasattr(obj, "set_epoch"):
                obj.set_epoch(epoch)
        yielded = False
        for batch in loader:
            yielded = True
            yield batch
        if not yielded:
            raise RuntimeError("the loader yielded no batch in a whole epoch")
        epoch += 1
