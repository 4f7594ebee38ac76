"""The Colab path end to end: a fresh Python environment with only what Colab ships, each notebook's
OWN install cell, an empty data cache, and the image sets served by a data mirror on 127.0.0.1.

What it does, as a Colab user would, for notebooks 01 and 03:

1. a base virtual environment stands for the Colab image: torch 2.14.1, torchvision 0.29.1 (from
   this machine's disk, through pip's configuration) and the notebook tools Colab has (ipykernel,
   papermill, matplotlib, ipywidgets, numpy, ...). Each notebook then gets a fresh runtime: a new,
   empty virtual environment that sees the base one's packages (a ``.pth`` file), as a Colab
   runtime sees its preinstalled packages, and installs into its own;
2. the repository's HEAD is cloned into a temporary folder (``git clone`` of the working
   repository: committed changes only, uncommitted edits are not part of the test) and each
   notebook's first code cell (tagged ``install``, written by ``book/stamp_notebooks.py`` from
   ``_config.yml``) is run unchanged except that the GitHub URL becomes ``git+file://`` of that
   clone at its HEAD commit;
3. ``GMGAN_DATA`` is an empty folder and ``GMGAN_DATA_MIRROR`` a local HTTP server that serves the
   read-only data cache of this test process (``GMGAN_DATA``) in the mirror layout
   (:mod:`gmgan.data.mirror`), so the notebooks' sets are downloaded on first use;
4. papermill executes the notebook in that environment; the test checks it finished, that gmgan
   was imported from the environment (not from this checkout) and that the sets came through the
   mirror.

It needs minutes (torch installs from wheels, pyiqa's dependencies come from the package index):
the durations of each stage are printed (``pytest -s``). It is skipped, saying why, where torch
2.14.1 cannot be installed from local files, where git or the data cache are missing.
"""
from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import nbformat
import pytest
import yaml

from gmgan.cache import data_dir

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = {  # notebook -> the data sets it reads (they must come through the mirror)
    "01_degradation": ("Set5", "Set14", "BSD100"),
    "03_gmsd_quality_loss": ("Set5", "Set14"),
}
TORCH = ("torch==2.14.1", "torchvision==0.29.1")
# What a Colab runtime has before any notebook cell runs (besides torch), and papermill to run it.
COLAB_PACKAGES = ("numpy", "scipy", "pillow", "matplotlib", "pandas", "requests", "tqdm", "pyyaml",
                  "ipykernel", "ipywidgets", "papermill", "nbformat")

pytestmark = [pytest.mark.colab, pytest.mark.timeout(3600)]


def _run(cmd: list[str], *, env: dict | None = None, cwd: Path | None = None, timeout: float = 1800) -> str:
    """Run a command; on failure, fail the test with the command's last output lines."""
    result = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).splitlines()[-40:])
        pytest.fail(f"{' '.join(map(str, cmd))} exited with {result.returncode}:\n{tail}")
    return result.stdout


def _torch_from_local_files(python: str) -> str | None:
    """None when pip (with this machine's configuration) would install torch 2.14.1 and
    torchvision 0.29.1 from local files; else the reason why not."""
    report = subprocess.run(
        [python, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-deps", "--quiet",
         "--report", "-", *TORCH], capture_output=True, text=True, timeout=300)
    if report.returncode != 0:
        return f"pip cannot resolve {' '.join(TORCH)}: {report.stderr.strip().splitlines()[-1:]}"
    try:
        urls = [item["download_info"]["url"] for item in json.loads(report.stdout)["install"]]
    except (ValueError, KeyError) as err:
        return f"unreadable pip report ({err})"
    remote = [u for u in urls if not u.startswith("file:")]
    return f"torch would be downloaded ({remote[0]}), not installed from local files" if remote else None


def _repository() -> tuple[str, str]:
    """(url, branch) that book/stamp_notebooks.py writes into the install cells (from _config.yml)."""
    repo = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]
    return str(repo["url"]).rstrip("/"), str(repo.get("branch", "main"))


class _MirrorHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.requests.append(self.path)
        super().do_GET()


@pytest.fixture(scope="module")
def mirror():
    """The test process's data cache served over HTTP on 127.0.0.1: (base URL, requested paths)."""
    cache = data_dir()
    if not (cache / "MANIFEST.tsv").is_file() or not (cache / "benchmark" / "BSD100" / "HR").is_dir():
        pytest.skip(f"GMGAN_DATA={cache} has no MANIFEST.tsv or lacks the benchmark sets to serve as a mirror")
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_MirrorHandler, directory=str(cache)))
    server.requests = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", server.requests
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def colab_base(tmp_path_factory):
    """The Colab image: a virtual environment with torch and Colab's notebook packages; and a clone
    of the repository's HEAD. Returns (base venv, clone, HEAD commit, timings dict)."""
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout of the repository (the notebooks install from a clone of HEAD)")
    why = _torch_from_local_files(sys.executable)
    if why is not None:
        pytest.skip(f"torch 2.14.1 cannot be installed offline here: {why}")
    tmp = tmp_path_factory.mktemp("colab")
    timings = {}
    start = time.perf_counter()
    clone = tmp / "clone"
    _run(["git", "clone", "--quiet", "--no-hardlinks", str(ROOT), str(clone)])
    commit = _run(["git", "rev-parse", "HEAD"], cwd=clone).strip()
    timings["clone"] = time.perf_counter() - start

    start = time.perf_counter()
    base = tmp / "colab-image"
    _run([sys.executable, "-m", "venv", str(base)])
    pip = [str(base / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-compile"]
    _run([*pip, "--upgrade", "pip"], env=_clean_env())  # venv's bundled pip is older than Colab's
    _run([*pip, *TORCH, *COLAB_PACKAGES], env=_clean_env(), timeout=3000)
    timings["colab image (torch + notebook tools)"] = time.perf_counter() - start
    return base, clone, commit, timings


def _clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without anything that would make the subprocess import this
    checkout's gmgan or reuse this process's virtual environment or data settings."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME", "GMGAN_OFFLINE", "GMGAN_DATA", "GMGAN_DERIVED",
                        "GMGAN_DATA_MIRROR", "JUPYTER_PATH", "MPLBACKEND")
           and not k.startswith(("PYTEST_", "COV_"))}
    env.update(extra)
    return env


def _site_packages(venv: Path) -> Path:
    (found,) = venv.glob("lib/python3*/site-packages")
    return found


def _notebook_with_local_install(name: str, clone: Path, commit: str, out: Path) -> Path:
    """A copy of the notebook whose install cell installs from the clone instead of GitHub, plus a
    last cell that reports which Python ran it and where gmgan was imported from."""
    nb = nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4)
    first = next((c for c in nb.cells if c.cell_type == "code"), None)
    assert first is not None and "install" in first.metadata.get("tags", []), \
        f"{name}: the first code cell is not the install cell (tag 'install')"
    url, branch = _repository()
    github = f"git+{url}@{branch}"
    assert github in first.source, f"{name}: the install cell does not install from {github}"
    first.source = first.source.replace(github, f"git+file://{clone}@{commit}")
    nb.cells.append(nbformat.v4.new_code_cell(
        "import sys, gmgan\nprint('COLAB-CHECK', sys.executable, gmgan.__file__)"))
    path = out / f"{name}.ipynb"
    nbformat.write(nb, path)
    return path


@pytest.mark.parametrize("name", list(NOTEBOOKS))
def test_notebook_runs_as_on_colab(name, colab_base, mirror, tmp_path):
    base, clone, commit, timings = colab_base
    mirror_url, requests = mirror
    # A fresh runtime: an empty environment that sees the Colab image's packages.
    runtime = tmp_path / "runtime"
    _run([str(base / "bin" / "python"), "-m", "venv", "--without-pip", str(runtime)])
    (_site_packages(runtime) / "colab_image.pth").write_text(str(_site_packages(base)) + "\n")
    python = str(runtime / "bin" / "python")
    data, derived = tmp_path / "data", tmp_path / "derived"
    data.mkdir()
    env = _clean_env(GMGAN_DATA=str(data), GMGAN_DERIVED=str(derived), GMGAN_DATA_MIRROR=mirror_url,
                     TORCH_HOME=str(tmp_path / "torch"), JUPYTER_DATA_DIR=str(tmp_path / "jupyter"),
                     JUPYTER_CONFIG_DIR=str(tmp_path / "jupyter-config"), MPLBACKEND="agg")
    # pip is the image's, run by the runtime's python: what the install cell adds goes into the runtime.
    nb = _notebook_with_local_install(name, clone, commit, tmp_path)
    requests.clear()
    start = time.perf_counter()
    _run([python, "-m", "papermill", str(nb), str(tmp_path / "out.ipynb"), "--kernel", "python3",
          "--cwd", str(tmp_path), "--no-progress-bar"], env=env, timeout=3000)
    seconds = time.perf_counter() - start

    executed = nbformat.read(tmp_path / "out.ipynb", as_version=4)
    check = [o.get("text", "") for o in executed.cells[-1].outputs if o.output_type == "stream"]
    _, executable, gmgan_file = "".join(check).split()[:3]
    assert Path(executable).parent.parent == runtime, f"the kernel ran {executable}, not the runtime's python"
    assert str(gmgan_file).startswith(str(runtime)) or str(gmgan_file).startswith(str(base)), \
        f"gmgan was imported from {gmgan_file}, not from the environment the install cell installed into"
    assert not str(gmgan_file).startswith(str(ROOT))
    for set_name in NOTEBOOKS[name]:  # every set came through the mirror into the empty cache
        assert any(r.startswith(f"/benchmark/{set_name}/HR/") for r in requests), f"{set_name} not fetched"
        assert (data / "benchmark" / set_name / "HR").is_dir()
    assert "/MANIFEST.tsv" in requests
    timings[f"{name}: install cell + papermill"] = seconds
    print("\nColab test timings: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()))
