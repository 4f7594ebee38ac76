#!/usr/bin/env bash
# Build the book offline, from the repository root:
#   1. `npm ci` in book/ (only when node_modules is missing or older than the lockfile): the
#      ipywidgets embed manager, RequireJS and MathJax, pinned by book/package-lock.json;
#   2. copy what the pages load into book/_static/vendor (git-ignored);
#   3. check that every notebook's install cell matches _config.yml (book/stamp_notebooks.py);
#   4. `jupyter-book build . -W -n --keep-going`: warnings are errors, notebooks are not executed.
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
mkdir -p "$vendor/html-manager" "$vendor/mathjax"
cp node_modules/requirejs/require.js "$vendor/require.js"
# embed-amd.js bundles the base, controls and output widgets; its Font Awesome files sit beside it.
hm=node_modules/@jupyter-widgets/html-manager/dist
cp "$hm/embed-amd.js" "$vendor/html-manager/"
find "$hm" -maxdepth 1 -type f \( -name '*.woff2' -o -name '*.woff' -o -name '*.ttf' -o -name '*.eot' -o -name '*.svg' \) \
    -exec cp {} "$vendor/html-manager/" \;
# MathJax 3: the combined TeX/MathML -> CHTML file plus the pieces it loads on demand.
mj=node_modules/mathjax/es5
cp "$mj/tex-mml-chtml.js" "$vendor/mathjax/"
for part in input output ui a11y adaptors sre; do
    cp -r "$mj/$part" "$vendor/mathjax/"
done

cd "$root"
"$PYTHON" book/stamp_notebooks.py --check
# shellcheck disable=SC2086
"$JUPYTER_BOOK" build . -W -n --keep-going ${BOOK_BUILD_ARGS:-}
