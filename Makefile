# argocd-assistant: the two commands a new machine needs are `make run` and `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export ARGOCD_ASSISTANT_CACHE ?= $(HOME)/.cache/argocd-assistant
SUDO   := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Development defaults for `make run`: a local Llama Stack and a dev-only shared secret, the same one
# the test Argo CD proxy (`make proxy`) sends.
LLAMA_STACK_URL ?= http://localhost:8321
DEV_SECRET      ?= Bearer dev-only-secret
PORT            ?= 8080

.PHONY: help
help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# ---- Python environment -------------------------------------------------------------------------
$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev]'
	touch $@

.PHONY: dev
dev: $(VENV)/.installed ## create .venv with the backend and the test tools

# ---- Run ----------------------------------------------------------------------------------------
.PHONY: run
run: dev ## serve the backend on localhost:8080 (your kubeconfig, Llama Stack at LLAMA_STACK_URL)
	ASSISTANT_LLAMA_STACK__URL="$${ASSISTANT_LLAMA_STACK__URL:-$(LLAMA_STACK_URL)}" \
	ASSISTANT_AUTH__SECRET="$${ASSISTANT_AUTH__SECRET:-$(DEV_SECRET)}" \
	ASSISTANT_SERVER__PORT="$${ASSISTANT_SERVER__PORT:-$(PORT)}" \
	$(BIN)/python -m assistant_backend $(if $(CONFIG),--config $(CONFIG))

.PHONY: proxy
proxy: dev ## run the test Argo CD proxy on :8090 in front of `make run` (user alice, app argocd:guestbook)
	$(BIN)/python -m tests.support.argocd_proxy --listen 127.0.0.1:8090 \
	  --backend http://127.0.0.1:$(PORT) --secret "$(DEV_SECRET)"

.PHONY: llama-stack
LLAMA_STACK_VERSION ?= 0.7.3
llama-stack: ## run a pinned Llama Stack (LLAMA_STACK_VERSION=0.7.3|0.3.5|0.2.24|ogx-1.5.0) on :8321; inference to OPENAI_API_KEY or OPENAI_BASE_URL
	tests/infra/run-llama-stack.sh $(LLAMA_STACK_VERSION) 8321

# ---- Quality ------------------------------------------------------------------------------------
.PHONY: lint
lint: dev ## ruff + mypy
	$(BIN)/ruff check assistant_backend tests
	$(BIN)/ruff format --check assistant_backend
	$(BIN)/mypy

.PHONY: fmt
fmt: dev
	$(BIN)/ruff format assistant_backend
	$(BIN)/ruff check --fix assistant_backend tests

# ---- Test prerequisites (cached under $(ARGOCD_ASSISTANT_CACHE), keyed by version) --------------
# Every server version the tests start, each in its own venv (tests/infra/llama-stack/).
LLAMA_STACK_VERSIONS := 0.3.5 0.7.3 0.2.24 ogx-1.5.0
LLAMA_STACK_VENV_TARGETS := $(addprefix llama-stack-venv-,$(LLAMA_STACK_VERSIONS))
.PHONY: llama-stack-venvs $(LLAMA_STACK_VENV_TARGETS)
llama-stack-venvs: $(LLAMA_STACK_VENV_TARGETS) ## build (once) the pinned Llama Stack / OGX venvs (0.3.5, 0.7.3, 0.2.24, ogx-1.5.0)
$(LLAMA_STACK_VENV_TARGETS): llama-stack-venv-%:
	tests/infra/llama-stack-venv.sh $* >/dev/null

.PHONY: kube-bin
kube-bin: ## build (once) kube-apiserver v1.20.2 from Debian's source package; installs etcd
	tests/infra/build-kube-apiserver.sh

# ---- UI extension (extension-ui/; version in extension-ui/package.json) ---------------------------
extension-ui/node_modules/.installed: extension-ui/package-lock.json
	cd extension-ui && npm ci --no-audit --no-fund
	touch $@

tests/browser/host/node_modules/.installed: tests/browser/host/package-lock.json
	cd tests/browser/host && npm ci --no-audit --no-fund
	touch $@

.PHONY: ui
ui: extension-ui/node_modules/.installed tests/browser/host/node_modules/.installed ## build dist/extension-assistant-<version>.tar (+ .sha256) and the test host page
	cd extension-ui && npm run --silent package
	cd tests/browser/host && node build.mjs

.PHONY: wire-types
wire-types: dev extension-ui/node_modules/.installed ## regenerate extension-ui/src/wire.ts (the panel's API types) from the backend's OpenAPI document
	@mkdir -p build
	$(BIN)/python -m assistant_backend --print-openapi > build/openapi.json
	cd extension-ui && npm run --silent wire-types -- ../build/openapi.json -o src/wire.ts

.PHONY: ui-test
ui-test: ui ## UI unit tests (node's test runner) and type check
	cd extension-ui && npm run --silent typecheck && npm test --silent

.PHONY: ui-dev
ui-dev: ui dev ## serve the Argo CD-like host page on :8091 against `make run` (sample app argocd:guestbook)
	$(BIN)/python -m tests.support.devserver --listen 127.0.0.1:8091 \
	  --backend http://127.0.0.1:$(PORT) --secret "$(DEV_SECRET)"

.PHONY: browser-deps
browser-deps: ## install Debian's chromium for the browser tests (once)
	@test -x /usr/bin/chromium || { $(SUDO) apt-get update -q && \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver; }

# The cold builds run side by side: kube-apiserver (CPU-bound Go) with the venvs (mostly unpacking
# wheels) and the UI, so a cold CI run pays roughly the longest of them, not their sum.
.PHONY: test-deps
test-deps: dev browser-deps kubectl-check
	$(MAKE) --no-print-directory -j8 --output-sync=target kube-bin llama-stack-venvs ui

# ---- Container image and Kubernetes manifests ----------------------------------------------------
VERSION          := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
IMAGE            ?= argocd-assistant:$(VERSION)
CONTAINER_ENGINE ?= $(shell command -v podman 2>/dev/null || command -v docker 2>/dev/null)

.PHONY: image
image: ## build the backend image from Containerfile with podman or docker (IMAGE=argocd-assistant:<version>)
	@if [ -z "$(CONTAINER_ENGINE)" ]; then \
	  echo "make image: neither podman nor docker is installed here; install one, or set CONTAINER_ENGINE" >&2; \
	  exit 1; fi
	@$(CONTAINER_ENGINE) info >/dev/null 2>&1 || { \
	  echo "make image: $(CONTAINER_ENGINE) is installed but cannot build here (no daemon or no rootless setup)" >&2; \
	  exit 1; }
	$(CONTAINER_ENGINE) build -f Containerfile -t $(IMAGE) .

.PHONY: kubectl-check
kubectl-check: # kubectl with its built-in kustomize renders and dry-runs the manifests
	@command -v kubectl >/dev/null || { echo "kubectl >= 1.27 (built-in kustomize v5) is required: the machine \
	image ships it (apt package kubectl); Debian's kubernetes-client is too old for kustomize Components" >&2; exit 1; }

.PHONY: manifests
manifests: kubectl-check ## render every kustomization under manifests/ into build/manifests/<path>.yaml
	@rm -rf build/manifests && mkdir -p build/manifests
	@for k in $$(find manifests -name kustomization.yaml | sort); do \
	  grep -q '^kind: Component' $$k && continue; \
	  d=$$(dirname $$k); out=build/manifests/$$(echo $${d#manifests/} | tr / -).yaml; \
	  kubectl kustomize $$d > $$out || exit 1; echo "  $$out"; \
	done

# ---- Tests --------------------------------------------------------------------------------------
.PHONY: eval
eval: dev kube-bin ## context-engine failure scenarios on a real apiserver: table + test-artifacts/evals.json
	$(BIN)/python -m evals

.PHONY: bench
bench: dev llama-stack-venvs kube-bin ## benchmarks (overhead, concurrency, context, tokens): tables + bench/results/*.json; BENCH_ARGS="--only overhead"
	$(BIN)/python -m bench $(BENCH_ARGS)

.PHONY: test
test: test-deps lint ## everything CI runs: lint, unit, real Llama Stack, real apiserver, real browser
	cd extension-ui && npm run --silent typecheck && npm test --silent
	$(BIN)/pytest -p no:cacheprovider

# One tier at a time (tests/README.md), each with only the prerequisites its real parts need;
# PYTEST_ARGS passes on, e.g. `make test-llamastack PYTEST_ARGS="-k abuse"`.
PYTEST_TIER = $(BIN)/pytest -p no:cacheprovider $(PYTEST_ARGS)
.PHONY: test-fast test-llamastack test-kube test-browser test-manifests
test-fast: dev ## the in-process tier (tests/unit, tests/api): no real parts, well under a minute
	$(PYTEST_TIER) -q tests/unit tests/api
test-llamastack: dev llama-stack-venvs ## tests/llamastack: real Llama Stack servers and the real backend
	$(PYTEST_TIER) tests/llamastack
test-kube: dev kube-bin llama-stack-venvs ## tests/kube: a real kube-apiserver (some tests also a real Llama Stack)
	$(PYTEST_TIER) tests/kube
test-browser: dev browser-deps kube-bin llama-stack-venvs ui ## tests/browser and tests/ui: real Chromium, the built UI
	$(PYTEST_TIER) tests/ui tests/browser
test-manifests: dev kubectl-check kube-bin llama-stack-venvs ## tests/manifests: manifests/ rendered, dry-run, served
	$(PYTEST_TIER) tests/manifests
