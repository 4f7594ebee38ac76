"""The image sets gmgan knows: where to download them, how to check them, where they live.

Each set is a :class:`DatasetInfo`: a name, the folder of its HR images inside the data cache
(``subdir``, e.g. ``benchmark/Set5/HR``), the expected number of images, and one or more
:class:`Mirror` archives to download it from. A mirror says which folder inside the archive holds
the HR images (``prefix``) and, optionally, which other archive folders to keep (``extra``, e.g.
the x4 LR images of a benchmark set).

The data cache layout (``gmgan.cache.data_dir()``, see ARCHITECTURE.md)::

    benchmark/Set5/HR/*.png             benchmark/Set5/LR_bicubic/X4/*x4.png
    benchmark/Set14/HR, benchmark/BSD100/HR, benchmark/Urban100/HR, benchmark/DIV2K_valid/HR
    train/DIV2K/HR, train/Flickr2K/HR, train/OST, train/BSDS200, train/T91, train/OST300_samples
    MANIFEST.tsv                         optional: path, sha256, bytes, ... per file

A cache may carry a ``MANIFEST.tsv`` (tab-separated, header line, columns ``path``, ``sha256``,
``bytes`` and any others). :func:`verify_manifest` checks files against it; the downloader uses
it to accept a set that a shared cache holds only in part (e.g. 61 of the 100 Urban100 images).

Checksums are only given where a public source states them; see each entry's comment. Where
none is known (GitHub's on-demand zips, Flickr2K, OST), a download is checked by its structure
instead: the archive must hold the set's folder with the expected number of images.

Composite sets (``parts``): DF2K is DIV2K + Flickr2K, and ``take`` keeps a fixed subset of its
parts (OST-1342). They are built from their parts, fetched first, as a flat folder of links under
``derived_dir("sets")``.

A data mirror (``GMGAN_DATA_MIRROR``, see :mod:`gmgan.data.mirror`) is a copy of a data cache served
over HTTP in this same layout, with a ``MANIFEST.tsv`` at its root::

    <GMGAN_DATA_MIRROR>/MANIFEST.tsv
    <GMGAN_DATA_MIRROR>/benchmark/Set5/HR/baby.png   (every path that MANIFEST.tsv lists)

When it is set, it replaces the archives below: every file of a set is downloaded from it and
checked against the mirror's manifest (size and sha256). ``gmgan data manifest DIR`` writes the
manifest of a folder, so ``python -m http.server`` in a cache makes a mirror.
"""
from __future__ import annotations

import hashlib
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Union
from urllib.parse import urlparse

__all__ = [
    "DATASETS",
    "DatasetInfo",
    "KINDS",
    "MANIFEST_NAME",
    "ManifestEntry",
    "ManifestError",
    "Mirror",
    "SAMPLE_IMAGES",
    "get_info",
    "parse_manifest",
    "read_manifest",
    "sha256_file",
    "verify_manifest",
    "write_manifest",
]

PathLike = Union[str, os.PathLike]

#: The kinds of set: training data, evaluation data, or the offline scikit-image samples.
KINDS = ("train", "benchmark", "samples")

#: File name of the per-file manifest at the root of a data cache.
MANIFEST_NAME = "MANIFEST.tsv"

_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class Mirror:
    """One downloadable archive (zip or tar) that contains a set.

    Attributes:
        url: where to download it (http/https).
        sha256: lower-case hex digest of the archive, or None when no public source gives one.
        size: archive size in bytes, or None when unknown.
        prefix: archive folder (POSIX, ending in ``/``; ``""`` for the whole archive) whose image
            files, at any depth, are the set's HR images. Files in sub-folders are renamed to
            their relative path with ``/`` replaced by ``_`` (``animal/0001.png`` becomes
            ``animal_0001.png``), so the set folder is flat.
        extra: more ``(archive prefix, cache folder)`` pairs to keep, e.g. the LR images.
        filename: name for the downloaded archive in the cache (default: last part of the URL).
    """

    url: str
    sha256: str | None = None
    size: int | None = None
    prefix: str = ""
    extra: tuple[tuple[str, str], ...] = ()
    filename: str | None = None

    def __post_init__(self) -> None:
        if urlparse(self.url).scheme not in ("http", "https"):
            raise ValueError(f"mirror URL must be http(s): {self.url!r}")
        if self.sha256 is not None and not _SHA256_RE.match(self.sha256):
            raise ValueError(f"sha256 of {self.url} must be 64 lower-case hex digits, got {self.sha256!r}")
        for prefix in (self.prefix, *(p for p, _ in self.extra)):
            if prefix and (not prefix.endswith("/") or prefix.startswith("/") or ".." in prefix.split("/")):
                raise ValueError(f"archive prefix {prefix!r} of {self.url} must be relative and end in '/'")
        for _, folder in self.extra:
            _check_relative(folder, f"extra folder of {self.url}")

    @property
    def archive_name(self) -> str:
        """File name of the downloaded archive."""
        return self.filename or PurePosixPath(urlparse(self.url).path).name


@dataclass(frozen=True)
class DatasetInfo:
    """Everything gmgan knows about one image set.

    Attributes:
        name: registry name (looked up case-insensitively by :func:`get_info`).
        description: one line for people.
        kind: ``"train"``, ``"benchmark"`` or ``"samples"``.
        subdir: folder of the HR images, relative to the data cache root (POSIX separators).
        count: expected number of HR images in the complete set, or None when not known exactly.
        mirrors: archives to try, in order. Empty for ``samples`` (made from scikit-image).
        source: home page of the set.
        licence: terms of use, as the source states them (not legal advice).
        citation: the paper to cite.
        parts: names of registered sets whose images make this one (a composite set, e.g. DF2K =
            DIV2K + Flickr2K); it has no mirrors of its own.
        take: keep only this many images of the parts: those whose ``<part>/<file name>`` has the
            smallest sha256 (a fixed, reproducible choice spread over the whole set).
    """

    name: str
    description: str
    kind: str
    subdir: str
    count: int | None
    mirrors: tuple[Mirror, ...] = ()
    source: str = ""
    licence: str = ""
    citation: str = ""
    parts: tuple[str, ...] = ()
    take: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"data set {self.name}: kind must be one of {KINDS}, got {self.kind!r}")
        _check_relative(self.subdir, f"subdir of data set {self.name}")
        if self.count is not None and self.count <= 0:
            raise ValueError(f"data set {self.name}: count must be positive, got {self.count}")
        if self.parts and self.mirrors:
            raise ValueError(f"data set {self.name}: a composite set (parts) has no mirrors of its own")
        if self.take is not None and (not self.parts or self.take <= 0):
            raise ValueError(f"data set {self.name}: take needs parts and must be positive, got {self.take}")

    @property
    def urls(self) -> tuple[str, ...]:
        """The mirror URLs, in the order they are tried."""
        return tuple(m.url for m in self.mirrors)

    @property
    def sha256(self) -> str | None:
        """sha256 of the first mirror's archive (None when unknown)."""
        return self.mirrors[0].sha256 if self.mirrors else None

    @property
    def archive_prefix(self) -> str | None:
        """Archive folder of the HR images in the first mirror."""
        return self.mirrors[0].prefix if self.mirrors else None


def _check_relative(path: str, what: str) -> None:
    parts = PurePosixPath(path).parts
    if not path or path.startswith("/") or "\\" in path or ".." in parts:
        raise ValueError(f"{what} must be a relative POSIX path inside the data cache, got {path!r}")


# ---------------------------------------------------------------------------------------------
# The sets
# ---------------------------------------------------------------------------------------------

# Commit-pinned GitHub archives whose files are byte-identical to the shared data cache
# (see that cache's README / MANIFEST.tsv). GitHub builds these zips on demand and does not
# promise stable bytes, so no archive checksum is pinned; the per-file MANIFEST is the check.
_SWINIR = "6545850fbf8df298df73d81f3e8cba638787c8bd"
_PAN = "4d045d18592c5771cd3990da88f292812774e538"
_DCSCN = "d382bc30d41c94ac72f8cb148d61cc4864b3b380"


def _github_zip(repo: str, commit: str) -> tuple[str, str, str]:
    """(url, archive top folder, file name) of GitHub's zip of ``repo`` at ``commit``."""
    name = repo.split("/")[1]
    return (f"https://github.com/{repo}/archive/{commit}.zip", f"{name}-{commit}/",
            f"{name}-{commit[:12]}.zip")


_SWINIR_URL, _SWINIR_TOP, _SWINIR_FILE = _github_zip("JingyunLiang/SwinIR", _SWINIR)
_PAN_URL, _PAN_TOP, _PAN_FILE = _github_zip("zhaohengyuan1/PAN", _PAN)
_DCSCN_URL, _DCSCN_TOP, _DCSCN_FILE = _github_zip("jiny2001/dcscn-super-resolution", _DCSCN)

# EDSR's benchmark archive (Set5, Set14, B100, Urban100 with HR and LR_bicubic/X2..X4),
# linked from the EDSR-PyTorch README. Layout benchmark/<Set>/{HR,LR_bicubic/X4}. ~250 MB.
_EDSR_BENCHMARK = "https://cv.snu.ac.kr/research/EDSR/benchmark.tar"

# BSDS300 images (BSDS300/images/{train,test}/*.jpg). sha256 as recorded by a public download
# script in the search index (one project; not confirmed by Berkeley, which publishes none).
_BSDS300_URLS = (
    "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/bsds/BSDS300-images.tgz",
    "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/grouping/segbench/BSDS300-images.tgz",
)
_BSDS300_SHA256 = "a5f7d0e49fe135c75518a3543ced24470156fd69305ae77845dff2a5138652b4"

# DIV2K: sha256 and sizes from tensorflow/datasets, tensorflow_datasets/url_checksums/div2k.txt.
_DIV2K_TRAIN_SHA256 = "9d0b9c463f6e35b6c62cc6a930ee2224f670b34c1df841a57670f9acf0f6c335"
_DIV2K_TRAIN_SIZE = 3530603713
_DIV2K_VALID_SHA256 = "20dd31fd84d777bc1cf5d6b7654a3f569c0aec74458ae094122ad1d0489900fc"
_DIV2K_VALID_SIZE = 448993893

_SFTGAN_CITE = ("X. Wang, K. Yu, C. Dong and C. C. Loy, Recovering Realistic Texture in Image "
                "Super-resolution by Deep Spatial Feature Transform, CVPR 2018")
_DIV2K_CITE = ("E. Agustsson and R. Timofte, NTIRE 2017 Challenge on Single Image Super-Resolution: "
               "Dataset and Study, CVPR Workshops 2017")
_DIV2K_LICENCE = "academic research use (see the DIV2K web site)"
_BSDS_CITE = ("D. Martin, C. Fowlkes, D. Tal and J. Malik, A Database of Human Segmented Natural "
              "Images and its Application to Evaluating Segmentation Algorithms and Measuring "
              "Ecological Statistics, ICCV 2001")
_BSDS_SOURCE = "https://www2.eecs.berkeley.edu/Research/Projects/CS/vision/bsds/"
_BSDS_LICENCE = "non-commercial research and educational use (Berkeley BSDS page)"
_RESEARCH_ONLY = "no explicit licence; distributed for research use"

#: scikit-image sample images (bundled with scikit-image, no download) that make the ``samples``
#: set; all are public domain or CC0 according to their scikit-image docstrings. The grey
#: textures (brick, grass, gravel, camera) are stored as RGB with R = G = B.
SAMPLE_IMAGES: tuple[str, ...] = ("astronaut", "chelsea", "coffee", "rocket", "hubble_deep_field",
                                  "brick", "grass", "gravel", "camera")

_ENTRIES = [
    DatasetInfo(
        name="DIV2K",
        description="DIV2K training split: 800 2K-resolution HR images (PNG)",
        kind="train", subdir="train/DIV2K/HR", count=800,
        mirrors=tuple(
            Mirror(url, _DIV2K_TRAIN_SHA256, _DIV2K_TRAIN_SIZE, prefix="DIV2K_train_HR/")
            for url in ("https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip",
                        "http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_train_HR.zip",
                        "https://huggingface.co/datasets/goodfellowliu/DIV2K/resolve/main/DIV2K_train_HR.zip")),
        source="https://data.vision.ee.ethz.ch/cvl/DIV2K/", licence=_DIV2K_LICENCE, citation=_DIV2K_CITE),
    DatasetInfo(
        name="DIV2K-valid",
        description="DIV2K validation split: 100 2K-resolution HR images (PNG)",
        kind="benchmark", subdir="benchmark/DIV2K_valid/HR", count=100,
        mirrors=tuple(
            Mirror(url, _DIV2K_VALID_SHA256, _DIV2K_VALID_SIZE, prefix="DIV2K_valid_HR/")
            for url in ("https://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip",
                        "http://data.vision.ee.ethz.ch/cvl/DIV2K/DIV2K_valid_HR.zip",
                        "https://huggingface.co/datasets/goodfellowliu/DIV2K/resolve/main/DIV2K_valid_HR.zip")),
        source="https://data.vision.ee.ethz.ch/cvl/DIV2K/", licence=_DIV2K_LICENCE, citation=_DIV2K_CITE),
    DatasetInfo(
        name="Flickr2K",
        description="Flickr2K: 2650 2K-resolution HR images collected by the EDSR authors (PNG)",
        kind="train", subdir="train/Flickr2K/HR", count=2650,
        mirrors=(
            Mirror("https://cv.snu.ac.kr/research/EDSR/Flickr2K.tar", prefix="Flickr2K/Flickr2K_HR/"),
            # HR-only repack (layout Flickr2K/000001.png, as documented by deepinv).
            Mirror("https://huggingface.co/datasets/goodfellowliu/Flickr2K/resolve/main/Flickr2K.zip",
                   prefix="Flickr2K/"),
        ),
        source="https://github.com/LimBee/NTIRE2017",
        licence="images from Flickr; research use (no explicit licence)",
        citation=("B. Lim, S. Son, H. Kim, S. Nah and K. M. Lee, Enhanced Deep Residual Networks for "
                  "Single Image Super-Resolution, CVPR Workshops 2017")),
    DatasetInfo(
        name="OST",
        description=("OutdoorSceneTraining: texture-rich outdoor images in 7 categories (animal, building, "
                     "grass, mountain, plant, sky, water); KAIR's README counts 10,324 images. "
                     "Files are renamed <category>_<name>"),
        kind="train", subdir="train/OST", count=None,
        # The link Real-ESRGAN's Training.md and mmagic's docs give; the archive layout is not
        # documented, so every image in it is taken.
        mirrors=(Mirror("https://openmmlab.oss-cn-hangzhou.aliyuncs.com/datasets/OST_dataset.zip", prefix=""),),
        source="https://github.com/xinntao/SFTGAN",
        licence=_RESEARCH_ONLY,
        citation=_SFTGAN_CITE),
    # Table 3's training sets (PAPER.md, section 4.2), built from the sets above on first use.
    DatasetInfo(
        name="DF2K",
        description="DF2K = DIV2K (800) + Flickr2K (2650): 3450 2K-resolution HR images, files "
                    "renamed <part>_<name>",
        kind="train", subdir="train/DF2K", count=3450, parts=("DIV2K", "Flickr2K"),
        source="https://github.com/xinntao/BasicSR/blob/master/docs/DatasetPreparation.md",
        licence="those of DIV2K and Flickr2K", citation=_DIV2K_CITE),
    DatasetInfo(
        name="OST-1342",
        description=("1342 images of OST, the size of the subset GMGAN's paper adds to DF2K. The paper "
                     "does not say which images; gmgan takes the 1342 whose OST/<file name> has the "
                     "smallest sha256 (fixed, spread over the 7 categories)"),
        kind="train", subdir="train/OST-1342", count=1342, parts=("OST",), take=1342,
        source="https://github.com/xinntao/SFTGAN", licence=_RESEARCH_ONLY,
        citation=_SFTGAN_CITE),
    DatasetInfo(
        name="DF2K-OST",
        description="DF2K + OST-1342: 4792 HR images, Table 3's 'DF2K + OST' row",
        kind="train", subdir="train/DF2K-OST", count=4792, parts=("DIV2K", "Flickr2K", "OST-1342"),
        source="https://github.com/xinntao/SFTGAN", licence="those of its parts", citation=_DIV2K_CITE),
    DatasetInfo(
        name="BSDS200",
        description="BSDS300 training split: 200 images of 481x321 (the 'BSD200' of the 291-image set)",
        kind="train", subdir="train/BSDS200", count=200,
        mirrors=(
            *(Mirror(url, _BSDS300_SHA256, prefix="BSDS300/images/train/") for url in _BSDS300_URLS),
            # PNG copies, byte-identical to the shared data cache.
            Mirror(_DCSCN_URL, prefix=f"{_DCSCN_TOP}data/bsd200/", filename=_DCSCN_FILE),
        ),
        source=_BSDS_SOURCE, licence=_BSDS_LICENCE, citation=_BSDS_CITE),
    DatasetInfo(
        name="BSDS300-test",
        description="BSDS300 test split: the 100 original 481x321 JPEGs behind BSD100",
        kind="benchmark", subdir="benchmark/BSDS300_test/HR", count=100,
        mirrors=tuple(Mirror(url, _BSDS300_SHA256, prefix="BSDS300/images/test/") for url in _BSDS300_URLS),
        source=_BSDS_SOURCE, licence=_BSDS_LICENCE, citation=_BSDS_CITE),
    DatasetInfo(
        name="T91",
        description="Yang et al.'s 91 training images (BMP)",
        kind="train", subdir="train/T91", count=91,
        # The original ScSR.rar cannot be unpacked with the standard library; dcscn's copy can.
        mirrors=(Mirror(_DCSCN_URL, prefix=f"{_DCSCN_TOP}data/yang91/", filename=_DCSCN_FILE),),
        source="http://www.ifp.illinois.edu/~jyang29/ScSR.htm", licence=_RESEARCH_ONLY,
        citation=("J. Yang, J. Wright, T. S. Huang and Y. Ma, Image Super-Resolution via Sparse "
                  "Representation, IEEE TIP 2010")),
    DatasetInfo(
        name="OST300-samples",
        description="Two OST300 test images (OST_013, OST_215) shipped with SFTGAN",
        kind="samples", subdir="train/OST300_samples", count=2,
        mirrors=(Mirror("https://github.com/xinntao/SFTGAN/archive/d98889e9f94e44a788cc0ffeaaca77ca76556638.zip",
                        prefix="SFTGAN-d98889e9f94e44a788cc0ffeaaca77ca76556638/data/samples/",
                        filename="SFTGAN-d98889e9f94e.zip"),),
        source="https://github.com/xinntao/SFTGAN", licence=_RESEARCH_ONLY,
        citation=_SFTGAN_CITE),
    DatasetInfo(
        name="Set5",
        description="Set5: 5 test images (baby, bird, butterfly, head, woman) with MATLAB x4 LR",
        kind="benchmark", subdir="benchmark/Set5/HR", count=5,
        mirrors=(
            Mirror(_SWINIR_URL, prefix=f"{_SWINIR_TOP}testsets/Set5/HR/", filename=_SWINIR_FILE,
                   extra=((f"{_SWINIR_TOP}testsets/Set5/LR_bicubic/X4/", "benchmark/Set5/LR_bicubic/X4"),)),
            Mirror(_EDSR_BENCHMARK, prefix="benchmark/Set5/HR/",
                   extra=(("benchmark/Set5/LR_bicubic/X4/", "benchmark/Set5/LR_bicubic/X4"),)),
        ),
        source="http://people.rennes.inria.fr/Aline.Roumy/results/SR_BMVC12.html", licence=_RESEARCH_ONLY,
        citation=("M. Bevilacqua, A. Roumy, C. Guillemot and M.-L. Alberi-Morel, Low-Complexity "
                  "Single-Image Super-Resolution based on Nonnegative Neighbor Embedding, BMVC 2012")),
    DatasetInfo(
        name="Set14",
        description="Set14: 14 test images (bridge is single-channel) with MATLAB x4 LR",
        kind="benchmark", subdir="benchmark/Set14/HR", count=14,
        mirrors=(
            Mirror(_PAN_URL, prefix=f"{_PAN_TOP}datasets/Set14/HR/", filename=_PAN_FILE,
                   extra=((f"{_PAN_TOP}datasets/Set14/LR_bicubic/X4/", "benchmark/Set14/LR_bicubic/X4"),)),
            Mirror(_EDSR_BENCHMARK, prefix="benchmark/Set14/HR/",
                   extra=(("benchmark/Set14/LR_bicubic/X4/", "benchmark/Set14/LR_bicubic/X4"),)),
        ),
        source="https://sites.google.com/site/romanzeyde/research-interests", licence=_RESEARCH_ONLY,
        citation=("R. Zeyde, M. Elad and M. Protter, On Single Image Scale-Up Using "
                  "Sparse-Representations, Curves and Surfaces 2010")),
    DatasetInfo(
        name="BSD100",
        description="BSD100 (B100): the 100 BSDS300 test images used for SR evaluation, with x4 LR",
        kind="benchmark", subdir="benchmark/BSD100/HR", count=100,
        mirrors=(Mirror(_EDSR_BENCHMARK, prefix="benchmark/B100/HR/",
                        extra=(("benchmark/B100/LR_bicubic/X4/", "benchmark/BSD100/LR_bicubic/X4"),)),),
        source=_BSDS_SOURCE, licence=_BSDS_LICENCE, citation=_BSDS_CITE),
    DatasetInfo(
        name="Urban100",
        description="Urban100: 100 urban scenes with regular structure, with x4 LR",
        kind="benchmark", subdir="benchmark/Urban100/HR", count=100,
        mirrors=(Mirror(_EDSR_BENCHMARK, prefix="benchmark/Urban100/HR/",
                        extra=(("benchmark/Urban100/LR_bicubic/X4/", "benchmark/Urban100/LR_bicubic/X4"),)),),
        source="https://github.com/jbhuang0604/SelfExSR", licence=_RESEARCH_ONLY,
        citation=("J.-B. Huang, A. Singh and N. Ahuja, Single Image Super-Resolution from Transformed "
                  "Self-Exemplars, CVPR 2015")),
    DatasetInfo(
        name="samples",
        description=("scikit-image's bundled photos and textures (" + ", ".join(SAMPLE_IMAGES) +
                     "): always available offline; the default training set"),
        kind="samples", subdir="samples", count=len(SAMPLE_IMAGES),
        source="https://scikit-image.org/docs/stable/api/skimage.data.html",
        licence="public domain / CC0 (per scikit-image's docstrings)",
        citation="S. van der Walt et al., scikit-image: image processing in Python, PeerJ 2014"),
]

#: All known sets, by registry name.
DATASETS: dict[str, DatasetInfo] = {info.name: info for info in _ENTRIES}

# Other spellings people use for the same sets.
_ALIASES = {"div2k-train": "DIV2K", "div2k_train": "DIV2K", "div2k-val": "DIV2K-valid",
            "div2k_valid": "DIV2K-valid", "b100": "BSD100", "bsds100": "BSD100", "bsd200": "BSDS200",
            "bsds300-train": "BSDS200", "91-image": "T91", "urban": "Urban100",
            "outdoorscenetraining": "OST", "df2k+ost": "DF2K-OST", "df2k_ost": "DF2K-OST",
            "ost1342": "OST-1342"}


def get_info(name: str | DatasetInfo) -> DatasetInfo:
    """The :class:`DatasetInfo` of a set, by name (case-insensitive; a few aliases such as
    ``B100`` are accepted). A :class:`DatasetInfo` is returned as is, so functions that take a
    name also take an unregistered set.

    Raises:
        KeyError: unknown name; the message lists the known names.
    """
    if isinstance(name, DatasetInfo):
        return name
    key = str(name).strip().lower()
    for known, info in DATASETS.items():
        if known.lower() == key:
            return info
    if key in _ALIASES and _ALIASES[key] in DATASETS:
        return DATASETS[_ALIASES[key]]
    raise KeyError(f"unknown data set {name!r}; known sets: {', '.join(DATASETS)}")


# ---------------------------------------------------------------------------------------------
# Manifest of a data cache
# ---------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ManifestEntry:
    """One row of ``MANIFEST.tsv``: a file (POSIX path relative to the cache root), its sha256
    and its size in bytes; other columns are kept in ``extra``."""

    path: str
    sha256: str
    bytes: int
    extra: dict = field(default_factory=dict, compare=False, hash=False)


class ManifestError(ValueError):
    """Files that do not match the cache's ``MANIFEST.tsv``; ``.problems`` lists one line per file."""

    def __init__(self, root: PathLike, problems: list[str]):
        self.root = str(root)
        self.problems = problems
        shown = "\n  ".join(problems[:20]) + ("\n  ..." if len(problems) > 20 else "")
        super().__init__(f"{len(problems)} file(s) under {root} do not match {MANIFEST_NAME}:\n  {shown}")


def sha256_file(path: PathLike, chunk: int = 1 << 20) -> str:
    """Lower-case hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


_PARSED: dict[str, tuple[tuple[int, int], dict[str, ManifestEntry]]] = {}


def read_manifest(root: PathLike) -> dict[str, ManifestEntry] | None:
    """Read ``<root>/MANIFEST.tsv``.

    Returns:
        ``{relative POSIX path: ManifestEntry}``, or None when the root has no manifest.

    Raises:
        ValueError: the manifest lacks the ``path``/``sha256``/``bytes`` columns or has a bad row
        (the message gives the line number).
    """
    manifest = Path(root) / MANIFEST_NAME
    try:
        st = manifest.stat()
    except FileNotFoundError:
        return None
    if not manifest.is_file():
        return None
    # Parsed once per process while the file keeps its size and modification time (sets
    # are checked against it each time they are located); see _MATCHED for _RECENT_NS.
    key, seen = os.path.abspath(manifest), (st.st_size, st.st_mtime_ns)
    cached = _PARSED.get(key)
    if cached is None or cached[0] != seen:
        before = time.time_ns()
        text = manifest.read_text(encoding="utf-8")
        cached = seen, parse_manifest(text, str(manifest))
        if before - st.st_mtime_ns > _RECENT_NS:
            _PARSED[key] = cached
    return dict(cached[1])


def parse_manifest(text: str, source: str = MANIFEST_NAME) -> dict[str, ManifestEntry]:
    """Parse the text of a ``MANIFEST.tsv`` (``source`` names it in errors), see :func:`read_manifest`.

    Paths must be relative POSIX paths without ``..`` (a mirror's manifest is not trusted).
    """
    lines = text.split("\n")
    header = lines[0].rstrip("\r").split("\t")
    missing = {"path", "sha256", "bytes"} - set(header)
    if missing:
        raise ValueError(f"{source}: header lacks column(s) {', '.join(sorted(missing))}")
    col = {name: i for i, name in enumerate(header)}
    entries: dict[str, ManifestEntry] = {}
    for lineno, line in enumerate(lines[1:], start=2):
        line = line.rstrip("\r")
        if not line:
            continue
        fields = line.split("\t")
        try:
            row = {name: fields[i] for name, i in col.items()}
            entry = ManifestEntry(row.pop("path"), row.pop("sha256").lower(), int(row.pop("bytes")), row)
            _check_relative(entry.path, "path")
            if not _SHA256_RE.match(entry.sha256) or entry.bytes < 0:
                raise ValueError(f"bad sha256 or size for {entry.path}")
        except (IndexError, ValueError) as exc:
            raise ValueError(f"{source}, line {lineno}: malformed row ({exc})") from exc
        entries[entry.path] = entry
    return entries


def write_manifest(root: PathLike) -> int:
    """Write ``<root>/MANIFEST.tsv`` (columns path, sha256, bytes) listing every file under ``root``
    except hidden files and folders, ``downloads/`` and lock files, so that the folder can be served
    as a data mirror (``GMGAN_DATA_MIRROR``). Returns the number of files listed.

    Symbolic links are not followed out of ``root``: a linked file is listed only when
    it resolves to a file inside ``root``, and linked folders are not entered (a web
    server would serve what they point to). What is left out is named in a warning."""
    root = Path(root)
    real_root = root.resolve()
    rows, skipped = [], []
    for folder, dirs, names in os.walk(root):  # not followlinks: linked folders skipped
        dirs[:] = [d for d in dirs if not d.startswith(".")
                   and not (d == "downloads" and Path(folder) == root)]
        skipped += [Path(folder, d) for d in dirs if Path(folder, d).is_symlink()]
        for path in map(Path(folder).joinpath, names):
            rel = path.relative_to(root)
            if (not path.is_file() or any(part.startswith(".") for part in rel.parts)
                    or rel.parts[0] == "downloads" or rel.name == MANIFEST_NAME
                    or path.suffix in (".lock", ".part")):
                continue
            if path.is_symlink() and not path.resolve().is_relative_to(real_root):
                skipped.append(path)
                continue
            rows.append((rel.as_posix(), path))
    rows = [f"{rel}\t{sha256_file(path)}\t{path.stat().st_size}"
            for rel, path in sorted(rows)]
    if skipped:
        shown = ", ".join(str(p.relative_to(root)) for p in sorted(skipped)[:5])
        warnings.warn(f"{MANIFEST_NAME} of {root} leaves out {len(skipped)} symbolic "
                      f"link(s) that lead out of it or to folders: {shown}",
                      stacklevel=2)
    tmp = root / f".{MANIFEST_NAME}.tmp"
    tmp.write_text("path\tsha256\tbytes\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    os.replace(tmp, root / MANIFEST_NAME)
    return len(rows)


def manifest_files(manifest: dict[str, ManifestEntry], subdir: str, *,
                   recursive: bool = False) -> list[ManifestEntry]:
    """The entries directly inside ``subdir`` (with ``recursive``: at any depth below
    it), sorted by path."""
    prefix = subdir.rstrip("/") + "/"
    return sorted((e for p, e in manifest.items() if p.startswith(prefix)
                   and (recursive or "/" not in p[len(prefix):])), key=lambda e: e.path)


# Files whose sha256 matched the manifest in this process: absolute path -> (bytes,
# mtime in ns, sha256). Such a file is not hashed again until its size or modification
# time changes. A file modified less than _RECENT_NS before it was hashed is not
# remembered: a change within the same tick of the file system's clock would leave its
# mtime as it was (git's "racy clean" case).
_MATCHED: dict[str, tuple[int, int, str]] = {}
_RECENT_NS = 2_000_000_000


def _sha256_matches(path: Path, st: os.stat_result, sha256: str) -> bool:
    key, seen = os.path.abspath(path), (st.st_size, st.st_mtime_ns, sha256)
    if _MATCHED.get(key) == seen:
        return True
    before = time.time_ns()
    if sha256_file(path) != sha256:
        _MATCHED.pop(key, None)
        return False
    if before - st.st_mtime_ns > _RECENT_NS:
        _MATCHED[key] = seen
    return True


def verify_manifest(root: PathLike, subdir: str | None = None, *,
                    check_sha256: bool = True, recursive: bool = False) -> int:
    """Check files of a data cache against its ``MANIFEST.tsv``.

    Args:
        root: data cache root holding ``MANIFEST.tsv``.
        subdir: only check the files directly inside this folder (relative POSIX path, e.g.
            ``benchmark/Set5/HR``); None checks every listed file.
        check_sha256: also hash each file (otherwise only existence and size are
            checked). A file that matched before in this process and has kept its size
            and modification time is not hashed again.
        recursive: with ``subdir``, check the files at any depth below it (e.g.
            ``benchmark/Set5``: HR and every LR folder).

    Returns:
        The number of files checked (0 when the root has no manifest).

    Raises:
        ManifestError: some files are missing, have another size or another sha256; the message
        names each of them.
    """
    manifest = read_manifest(root)
    if manifest is None:
        return 0
    entries = (list(manifest.values()) if subdir is None
               else manifest_files(manifest, subdir, recursive=recursive))
    problems = []
    for entry in entries:
        path = Path(root, *entry.path.split("/"))
        if not path.is_file():
            problems.append(f"MISSING {entry.path}")
            continue
        st = path.stat()
        if st.st_size != entry.bytes:
            problems.append(f"SIZE    {entry.path}: {st.st_size} bytes, manifest says "
                            f"{entry.bytes}")
        elif check_sha256 and not _sha256_matches(path, st, entry.sha256):
            problems.append(f"SHA256  {entry.path}: {sha256_file(path)}, manifest says "
                            f"{entry.sha256}")
    if problems:
        raise ManifestError(root, problems)
    return len(entries)
