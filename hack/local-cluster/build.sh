#!/usr/bin/env bash
# Builds the local control plane from the Go module proxy into a cache keyed by
# version: etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl
# and kwok. Nothing is downloaded as a binary; everything is compiled here.
#
# Cache layout: $LOCAL_CLUSTER_CACHE/<component>-<version>/<binary>
# A component is rebuilt only when its directory lacks a complete build.
set -euo pipefail

source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

export GOTOOLCHAIN=local
export GOFLAGS="${GOFLAGS:-} -mod=mod"

log() { printf '[build %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# run_step prints a heartbeat while a long step runs, so a 5-minute compile
# on 2 cores does not look like a hang.
run_step() {
  local what=$1; shift
  local start=$SECONDS
  log "${what}: started"
  ( while sleep 30; do log "${what}: still building ($((SECONDS - start))s)"; done ) &
  local ticker=$!
  local rc=0
  "$@" || rc=$?
  kill "${ticker}" 2>/dev/null; wait "${ticker}" 2>/dev/null || true
  if [ "${rc}" -ne 0 ]; then
    log "${what}: FAILED after $((SECONDS - start))s"
    return "${rc}"
  fi
  log "${what}: done in $((SECONDS - start))s"
}

build_etcd() {
  local dir=${ETCD_DIR}
  [ -x "${dir}/etcd" ] && { log "etcd ${ETCD_VERSION}: cached"; return; }
  local work; work=$(mktemp -d)
  # etcd's server module has replace directives, so `go install mod@v` is
  # refused; a scratch module that requires it builds its main package.
  (
    cd "${work}"
    go mod init local/etcd-build >/dev/null 2>&1
    go get "go.etcd.io/etcd/server/v3@${ETCD_VERSION}" >/dev/null
    mkdir -p "${dir}.tmp"
    go build -trimpath -o "${dir}.tmp/etcd" go.etcd.io/etcd/server/v3
  )
  rm -rf "${work}" "${dir}"; mv "${dir}.tmp" "${dir}"
}

build_kube() {
  local dir=${KUBE_DIR}
  if [ -x "${dir}/kube-apiserver" ] && [ -x "${dir}/kube-controller-manager" ] \
     && [ -x "${dir}/kube-scheduler" ] && [ -x "${dir}/kubectl" ]; then
    log "kubernetes ${KUBE_VERSION}: cached"; return
  fi
  local work; work=$(mktemp -d)
  local staging="v0${KUBE_VERSION#v1}" # v1.36.3 -> v0.36.3
  (
    cd "${work}"
    go mod init local/kube-build >/dev/null 2>&1
    # k8s.io/kubernetes replaces each staging module with a local path; mirror
    # its replace block with the published staging versions instead.
    local gomod
    gomod=$(go mod download -json "k8s.io/kubernetes@${KUBE_VERSION}" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    sed -n '/^replace (/,/^)/p' "${gomod}" | grep -oE 'k8s.io/[a-z0-9-]+ => ./staging' | awk '{print $1}' | sort -u >staging.txt
    {
      echo "require k8s.io/kubernetes ${KUBE_VERSION}"
      echo "replace ("
      while read -r m; do echo "  ${m} => ${m} ${staging}"; done <staging.txt
      echo ")"
    } >>go.mod
    log "kubernetes: $(wc -l <staging.txt) staging modules pinned to ${staging}"
    go get "k8s.io/kubernetes/cmd/kube-apiserver@${KUBE_VERSION}" \
           "k8s.io/kubernetes/cmd/kube-controller-manager@${KUBE_VERSION}" \
           "k8s.io/kubernetes/cmd/kube-scheduler@${KUBE_VERSION}" \
           "k8s.io/kubernetes/cmd/kubectl@${KUBE_VERSION}" >/dev/null
    local minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
    local ld=""
    for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      ld+=" -X ${p}.gitVersion=${KUBE_VERSION} -X ${p}.gitMajor=1 -X ${p}.gitMinor=${minor}"
      ld+=" -X ${p}.gitTreeState=clean -X ${p}.gitCommit=source-build"
      ld+=" -X ${p}.buildDate=1970-01-01T00:00:00Z"
    done
    mkdir -p "${dir}.tmp"
    go build -trimpath -ldflags "-s -w ${ld}" -o "${dir}.tmp/" \
      k8s.io/kubernetes/cmd/kube-apiserver \
      k8s.io/kubernetes/cmd/kube-controller-manager \
      k8s.io/kubernetes/cmd/kube-scheduler \
      k8s.io/kubernetes/cmd/kubectl
  )
  rm -rf "${work}" "${dir}"; mv "${dir}.tmp" "${dir}"
}

build_kwok() {
  local dir=${KWOK_DIR}
  if [ -x "${dir}/kwok" ] && [ -d "${dir}/stages" ]; then
    log "kwok ${KWOK_VERSION}: cached"; return
  fi
  mkdir -p "${dir}.tmp/stages"
  GOBIN="${dir}.tmp" go install -trimpath "sigs.k8s.io/kwok/cmd/kwok@${KWOK_VERSION}"
  # Standalone kwok does nothing without stages. Take the ones kwok itself
  # ships (node initialize + lease heartbeat, the "fast" pod lifecycle) from
  # the same module version, so they always match the binary.
  local src
  src=$(go mod download -json "sigs.k8s.io/kwok@${KWOK_VERSION}" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
  cp "${src}/kustomize/stage/node/fast/node-initialize.yaml" \
     "${src}/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
     "${src}/kustomize/stage/pod/fast/pod-ready.yaml" \
     "${src}/kustomize/stage/pod/fast/pod-complete.yaml" \
     "${src}/kustomize/stage/pod/fast/pod-delete.yaml" \
     "${dir}.tmp/stages/"
  chmod 0644 "${dir}.tmp/stages/"*
  rm -rf "${dir}"; mv "${dir}.tmp" "${dir}"
}

mkdir -p "${LOCAL_CLUSTER_CACHE}"
log "cache: ${LOCAL_CLUSTER_CACHE} (empty cache: about 10 minutes on 2 cores)"
run_step "etcd ${ETCD_VERSION}" build_etcd
run_step "kwok ${KWOK_VERSION}" build_kwok
run_step "kubernetes ${KUBE_VERSION}" build_kube
log "all binaries ready"
