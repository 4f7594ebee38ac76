#!/usr/bin/env bash
# Build the book from the executed notebooks, from the repository root:
#   1. `npm ci` in book/ (only when node_modules is missing or older than the lockfile): MathJax 3,
#      pinned by book/package-lock.json (one package, no dependencies);
#   2. copy what the pages load into book/_static/vendor (git-ignored);
#   3. warn about notebooks whose install cell is out of date (book/stamp_notebooks.py --check;
#      tests/test_book.py fails on them);
#   4. `jupyter-book build . -W -n --keep-going`: warnings are errors, notebooks are not executed.
# Needs only what book/requirements.txt lists (no torch, no gmgan): the build renders stored outputs.
# Environment: PYTHON (default: python on PATH), JUPYTER_BOOK (default: jupyter-book on PATH),
# BOOK_BUILD_ARGS (extra arguments for jupyter-book build, e.g. --all).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
PYTHON="${PYTHON:-python}"
JUPYTER_BOOK="${JUPYTER_BOOK:-jupyter-book}"

cd "$here"
stamp=node_modules/.package-lock.json
if [[ ! -f "$stamp" || package-lock.json -nt "$stamp" ]]; then
    echo "book/build.sh: npm ci (book/package-lock.json)"
    npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
fi

vendor="$here/_static/vendor"
rm -rf "$vendor"
mkdir -p "$vendor/mathjax"
# MathJax 3: the combined TeX/MathML -> CHTML file plus the pieces it loads on demand.
mj=node_modules/mathjax/es5
cp "$mj/tex-mml-chtml.js" "$vendor/mathjax/"
for part in input output ui a11y adaptors sre; do
    cp -r "$mj/$part" "$vendor/mathjax/"
done

cd "$root"
"$PYTHON" book/stamp_notebooks.py --check || echo "book/build.sh: warning: install cells out of date (see above)"
# shellcheck disable=SC2086
"$JUPYTER_BOOK" build . -W -n --keep-going ${BOOK_BUILD_ARGS:-}
