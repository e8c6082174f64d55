#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager and kube-scheduler v1.20.2 from Debian's
# `kubernetes` source package and caches them outside the repo, keyed by version.
# Why from source: no registry we can reach ships these binaries, and Debian's source package does.
# Idempotent: a second run with the binaries in place returns at once.
set -euo pipefail

KUBE_VERSION="${KUBE_VERSION:-1.20.2}"
CACHE="${ARGOCD_ASSISTANT_CACHE:-$HOME/.cache/argocd-assistant}"
OUT="$CACHE/kubernetes-$KUBE_VERSION/bin"
BINARIES=(kube-apiserver kube-controller-manager kube-scheduler)

have_all() { for b in "${BINARIES[@]}"; do [ -x "$OUT/$b" ] || return 1; done; }
if have_all; then echo "kube binaries cached in $OUT"; exit 0; fi

SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
need_pkgs=()
for p in golang-go etcd-server rsync dpkg-dev golang-github-modern-go-reflect2-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || need_pkgs+=("$p")
done
if [ ${#need_pkgs[@]} -gt 0 ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_pkgs[@]}"
fi

# deb-src entries derived from the machine's own Debian sources.
SRC_LIST=/etc/apt/sources.list.d/argocd-assistant-src.sources
if [ ! -f "$SRC_LIST" ]; then
  sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources | $SUDO tee "$SRC_LIST" >/dev/null
  $SUDO apt-get update -qq
fi

WORK="$CACHE/kubernetes-$KUBE_VERSION/src"
mkdir -p "$WORK"
cd "$WORK"
srcdir=$(find . -maxdepth 1 -type d -name "kubernetes-*" | head -n1)
if [ -z "$srcdir" ]; then
  apt-get source -qq --download-only "kubernetes=$(apt-cache showsrc kubernetes | awk '/^Version:/{print $2; exit}')" \
    || apt-get source -qq --download-only kubernetes
  dpkg-source -x --no-check ./kubernetes_*.dsc >/dev/null
  srcdir=$(find . -maxdepth 1 -type d -name "kubernetes-*" | head -n1)
fi
cd "$srcdir"

# v1.20.2 vendors reflect2 v1.0.1, which crashes under Go 1.19 on the first custom-resource
# write (json-iterator "fatal error: fault"). Swap in Debian's 1.0.2 sources.
R2=vendor/github.com/modern-go/reflect2
if ! grep -q "reflect2 v1.0.2" vendor/modules.txt; then
  find "$R2" -maxdepth 1 -type f \( -name '*.go' -o -name '*.s' \) -delete
  cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.go "$R2/"
  cp /usr/share/gocode/src/github.com/modern-go/reflect2/*.s "$R2/" 2>/dev/null || true
  sed -i 's#github.com/modern-go/reflect2 v1.0.1#github.com/modern-go/reflect2 v1.0.2#' go.mod vendor/modules.txt
  sed -i '/github.com\/modern-go\/reflect2 v1.0.1/d' go.sum
fi

GOPROXY=off GOFLAGS=-mod=vendor make WHAT="cmd/kube-apiserver cmd/kube-controller-manager cmd/kube-scheduler"
mkdir -p "$OUT"
for b in "${BINARIES[@]}"; do cp "_output/local/bin/linux/$(go env GOARCH)/$b" "$OUT/$b"; done
# The source tree is 2+ GB; keep only the binaries.
cd "$CACHE/kubernetes-$KUBE_VERSION" && rm -rf src
echo "kube binaries built into $OUT"
