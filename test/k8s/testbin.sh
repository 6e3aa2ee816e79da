#!/usr/bin/env bash
# Builds the binaries of the Kubernetes test control plane from Go modules: no Debian suite or npm
# package ships kube-apiserver, and there is no container engine to run kind. The output is cached
# outside the repository under a key made of every version, so a run with everything cached is a
# no-op and a version bump builds into a fresh directory.
#
#   bash test/k8s/testbin.sh                  build what is missing, print per-binary timings
#   bash test/k8s/testbin.sh --print-dir      print the cache directory for these versions, build nothing
#
# Layout of the cache directory:   bin/<binary>   kwok-stages/*.yaml   logs/<binary>.log   src/<wrapper>/
# Every binary is built into a temporary name, checked with --version (or --help), then renamed into
# bin/, so an interrupted build never leaves a half binary that a later run would take as cached.
set -euo pipefail

K8S_VERSION=1.36.1
ETCD_VERSION=3.6.10
KWOK_VERSION=0.8.0
CSI_TEST_VERSION=5.4.0
HELM_VERSION=3.22.0

KEY="k8s-${K8S_VERSION}_etcd-${ETCD_VERSION}_kwok-${KWOK_VERSION}_csi-test-${CSI_TEST_VERSION}_helm-${HELM_VERSION}"
CACHE_ROOT="${THREEFS_TESTBIN_CACHE:-$HOME/.cache/threefs-testbin}"
DIR="$CACHE_ROOT/$KEY"
BIN="$DIR/bin"
# The binaries the harness and the CSI/chart tests need; the TS helper checks the same list.
BINARIES=(etcd kube-apiserver kwok kube-controller-manager kube-scheduler csi-sanity helm)

if [ "${1:-}" = "--print-dir" ]; then
  echo "$DIR"
  exit 0
fi
if [ $# -gt 0 ]; then
  echo "testbin.sh: unknown argument '$1' (use no argument, or --print-dir)" >&2
  exit 2
fi

fail() {
  echo "testbin.sh: $*" >&2
  exit 1
}

all_cached() {
  local name
  for name in "${BINARIES[@]}"; do [ -x "$BIN/$name" ] || return 1; done
  [ -f "$DIR/kwok-stages/.complete" ]
}

if all_cached; then
  echo "testbin: all binaries cached in $BIN"
  exit 0
fi

command -v go >/dev/null 2>&1 || PATH="/usr/local/go/bin:$PATH"
command -v go >/dev/null 2>&1 || fail "Go is not installed (expected on PATH or in /usr/local/go/bin); it builds the control plane"
go_version=$(go env GOVERSION)
case "$go_version" in
  go1.2[6-9]* | go1.[3-9]*) ;;
  *) fail "Go $go_version is too old: Kubernetes $K8S_VERSION needs Go 1.26 or newer" ;;
esac

mkdir -p "$BIN" "$DIR/logs" "$DIR/src"
# One build at a time per cache directory: two test runs starting together must not race.
exec 9>"$DIR/.lock"
flock 9

# Never let go fetch a different toolchain, never use cgo (static binaries, no C toolchain needed),
# and keep the module and build caches go already uses so later runs and other builds reuse them.
# The wrapper modules' builds pass -mod=mod themselves (go get and go mod edit do not take it).
export GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-buildvcs=false
export GOPROXY="${GOPROXY:-$(go env GOPROXY)}"

started_all=$(date +%s)

# build <name> <check-arg> <expected-text> <command...>: runs the command, which must write
# "$OUT/<name>", logging to logs/<name>.log; checks the result runs; then moves it into bin/ in one
# rename.
build() {
  local name=$1 check=$2 expect=$3
  shift 3
  if [ -x "$BIN/$name" ]; then
    echo "testbin: $name cached"
    return 0
  fi
  local tmp log started
  tmp=$(mktemp -d "$DIR/tmp.$name.XXXXXX")
  log="$DIR/logs/$name.log"
  started=$(date +%s)
  echo "testbin: building $name ..."
  # A subshell outside any if/&&, so errexit stops the build step at its first failing command.
  local rc=0
  set +e
  (
    set -e
    cd "$DIR/src"
    export OUT="$tmp"
    "$@"
  ) >"$log" 2>&1
  rc=$?
  set -e
  if [ "$rc" -ne 0 ]; then
    rm -rf "$tmp"
    tail -n 30 "$log" >&2
    fail "building $name failed after $(($(date +%s) - started))s; full log: $log"
  fi
  # The check runs the binary and looks for the expected text, since some print usage with exit 2.
  if ! { "$tmp/$name" "$check" 2>&1 || true; } | tee -a "$log" | grep -i -- "$expect" >/dev/null; then
    rm -rf "$tmp"
    tail -n 30 "$log" >&2
    fail "$name was built but '$name $check' does not print '$expect'; full log: $log"
  fi
  mv -f "$tmp/$name" "$BIN/$name"
  rm -rf "$tmp"
  echo "testbin: built $name in $(($(date +%s) - started))s"
}

# etcd's go.mod carries replace lines, so `go install` refuses it: build it from a wrapper module.
build_etcd() {
  mkdir -p etcd && cd etcd
  [ -f go.mod ] || go mod init local/threefs-testbin-etcd
  go get "go.etcd.io/etcd/server/v3@v${ETCD_VERSION}"
  go build -mod=mod -trimpath -ldflags "-s -w" -o "$OUT/etcd" go.etcd.io/etcd/server/v3
}

# Kubernetes' go.mod replaces its k8s.io/* staging modules with local paths. The wrapper module
# replaces each of them with the published v0.<minor>.<patch> module instead, derived from the real
# go.mod so the list follows the release.
prepare_kubernetes_wrapper() {
  mkdir -p kubernetes && cd kubernetes
  [ -f .prepared ] && return 0
  rm -f go.mod go.sum
  go mod init local/threefs-testbin-kubernetes
  local upstream staging_version
  upstream=$(go mod download -json "k8s.io/kubernetes@v${K8S_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)",*/\1/p')
  [ -f "$upstream" ] || fail "cannot find the go.mod of k8s.io/kubernetes@v${K8S_VERSION} (got '$upstream')"
  go mod edit -go="$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$upstream")"
  sed -n 's/^godebug \(.*\)$/\1/p' "$upstream" | while read -r setting; do go mod edit -godebug="$setting"; done
  staging_version="v0.${K8S_VERSION#1.}"
  local count=0 module
  for module in $(sed -n 's#^[[:space:]]*\(k8s.io/[a-z0-9-]*\) => ./staging/src/.*#\1#p' "$upstream"); do
    go mod edit -replace="$module=$module@$staging_version"
    count=$((count + 1))
  done
  [ "$count" -ge 20 ] || fail "found only $count staging replace lines in $upstream; its format changed"
  go mod edit -require="k8s.io/kubernetes@v${K8S_VERSION}"
  touch .prepared
}

build_kubernetes_binary() {
  local name=$1
  prepare_kubernetes_wrapper
  local pkg=k8s.io/component-base/version client=k8s.io/client-go/pkg/version
  local minor=${K8S_VERSION#1.}
  minor=${minor%%.*}
  local stamp="-X $pkg.gitVersion=v$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor -X $pkg.gitTreeState=clean"
  stamp+=" -X $client.gitVersion=v$K8S_VERSION -X $client.gitMajor=1 -X $client.gitMinor=$minor -X $client.gitTreeState=clean"
  go build -mod=mod -trimpath -ldflags "-s -w $stamp" -o "$OUT/$name" "k8s.io/kubernetes/cmd/$name"
}

# go_install <name> <module@version> [extra ldflags]
go_install() {
  local name=$1 module=$2 ldflags="-s -w ${3:-}"
  GOBIN="$OUT" go install -trimpath -ldflags "$ldflags" "$module"
  [ -x "$OUT/$name" ] || fail "go install $module did not produce $name"
}

# kwok needs Stage documents to make fake Nodes Ready and Pods Running; they ship in its module.
copy_kwok_stages() {
  [ -f "$DIR/kwok-stages/.complete" ] && return 0
  local module_dir stage
  module_dir=$(cd "$DIR/src" && go mod download -json "sigs.k8s.io/kwok@v${KWOK_VERSION}" | sed -n 's/.*"Dir": "\(.*\)",*/\1/p')
  [ -d "$module_dir/kustomize/stage" ] || fail "kwok module directory has no kustomize/stage: '$module_dir'"
  rm -rf "$DIR/kwok-stages.tmp" && mkdir -p "$DIR/kwok-stages.tmp"
  for stage in node/fast/node-initialize.yaml node/heartbeat-with-lease/node-heartbeat-with-lease.yaml \
    pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    [ -f "$module_dir/kustomize/stage/$stage" ] || fail "kwok stage file missing: $module_dir/kustomize/stage/$stage"
    cp "$module_dir/kustomize/stage/$stage" "$DIR/kwok-stages.tmp/"
  done
  touch "$DIR/kwok-stages.tmp/.complete"
  rm -rf "$DIR/kwok-stages" && mv "$DIR/kwok-stages.tmp" "$DIR/kwok-stages"
  echo "testbin: copied kwok stage files"
}

# Ordered so the two-process tier (etcd + kube-apiserver) is usable first.
build etcd --version "etcd Version: ${ETCD_VERSION}" build_etcd
build kube-apiserver --version "v${K8S_VERSION}" build_kubernetes_binary kube-apiserver
build kwok --version "kwok" go_install kwok "sigs.k8s.io/kwok/cmd/kwok@v${KWOK_VERSION}"
copy_kwok_stages
build kube-controller-manager --version "v${K8S_VERSION}" build_kubernetes_binary kube-controller-manager
build kube-scheduler --version "v${K8S_VERSION}" build_kubernetes_binary kube-scheduler
build csi-sanity --help "csi.endpoint" go_install csi-sanity "github.com/kubernetes-csi/csi-test/v5/cmd/csi-sanity@v${CSI_TEST_VERSION}"
# helm's source carries only "v3.<minor>"; stamp the full version as its release build does.
build helm version "v${HELM_VERSION}" go_install helm "helm.sh/helm/v3/cmd/helm@v${HELM_VERSION}" \
  "-X helm.sh/helm/v3/internal/version.version=v${HELM_VERSION} -X helm.sh/helm/v3/internal/version.gitTreeState=clean"

all_cached || fail "internal: a binary is still missing from $BIN after the build"
echo "testbin: all binaries ready in $BIN ($(($(date +%s) - started_all))s)"
