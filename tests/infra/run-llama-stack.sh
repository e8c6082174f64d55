#!/usr/bin/env bash
# Runs a pinned Llama Stack for development, with the same config the tests use.
# Inference goes to OPENAI_BASE_URL (any OpenAI-compatible server: vLLM, Ollama's /v1, ...) with
# OPENAI_API_KEY, or to api.openai.com when only OPENAI_API_KEY is set.
# Usage: tests/infra/run-llama-stack.sh VERSION [PORT]   (VERSION: 0.2.24, 0.3.5, 0.7.3, ogx-1.5.0)
set -euo pipefail
VERSION="${1:-0.7.3}"
PORT="${2:-8321}"
HERE="$(cd "$(dirname "$0")" && pwd)"
VENV="$("$HERE/llama-stack-venv.sh" "$VERSION")"
if [ -z "${OPENAI_BASE_URL:-}" ]; then
  if [ -z "${OPENAI_API_KEY:-}" ]; then
    echo "Set OPENAI_API_KEY (OpenAI) or OPENAI_BASE_URL (+ OPENAI_API_KEY if needed) for any OpenAI-compatible server" >&2
    exit 2
  fi
  export OPENAI_BASE_URL=https://api.openai.com/v1
fi
export STATE_DIR="${STATE_DIR:-$PWD/.llama-stack-state/$VERSION}"
export TIKTOKEN_CACHE_DIR="$VENV/tiktoken-cache"
mkdir -p "$STATE_DIR"
echo "Llama Stack $VERSION on http://127.0.0.1:$PORT, inference at $OPENAI_BASE_URL, state in $STATE_DIR" >&2
case "$VERSION" in
  # OGX (Llama Stack's renamed successor) serves plain HTTP only with --insecure.
  ogx-*) exec "$VENV/bin/ogx" run "$HERE/llama-stack/run-$VERSION.yaml" --port "$PORT" --insecure ;;
  *) exec "$VENV/bin/llama" stack run "$HERE/llama-stack/run-$VERSION.yaml" --port "$PORT" ;;
esac
