# Shared settings for the local control plane scripts. Sourced, not run.
# Versions are the cache keys: changing one builds that component afresh.

LOCAL_CLUSTER_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"

ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KUBE_VERSION="${KUBE_VERSION:-v1.36.3}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"

# Built binaries: git-ignored, shared between clones when the caller points
# LOCAL_CLUSTER_CACHE elsewhere (CI keeps it in the machine's home cache).
LOCAL_CLUSTER_CACHE="${LOCAL_CLUSTER_CACHE:-${LOCAL_CLUSTER_ROOT}/.cache/local-cluster}"
ETCD_DIR="${LOCAL_CLUSTER_CACHE}/etcd-${ETCD_VERSION}"
KUBE_DIR="${LOCAL_CLUSTER_CACHE}/kubernetes-${KUBE_VERSION}"
KWOK_DIR="${LOCAL_CLUSTER_CACHE}/kwok-${KWOK_VERSION}"

# Runtime state of a running cluster: certs, data, logs, pid files, kubeconfig.
LOCAL_CLUSTER_STATE="${LOCAL_CLUSTER_STATE:-${LOCAL_CLUSTER_ROOT}/.cache/cluster}"

# up_with_dev_overlay STATE NODES: starts a fresh local cluster in STATE
# (bin/local-cluster must be built) with NODES fake nodes, the CRDs of the
# dev overlay (webhook at a URL) and then the rest of the overlay
# (namespace, ServiceAccount, RBAC), and waits for the CRDs. The CRDs go in
# before kube-controller-manager starts: its garbage collector and
# namespace controller discover resources at start and only every 30s
# afterwards. 'local-cluster up -crds' reads one document per file and
# skips the other kinds. Needs KUBECTL_BIN (env.sh).
up_with_dev_overlay() {
  local state=$1 nodes=$2 crd_dir="$1-crds" overlay="${LOCAL_CLUSTER_ROOT}/manifests/overlays/dev"
  # LOCAL_CLUSTER_V1ALPHA1=unserved adds manifests/components/v1beta1-only
  # (an experiment of make bench: no v1alpha1 watch cache in the API
  # server, so no conversion of every write through the webhook).
  if [[ ${LOCAL_CLUSTER_V1ALPHA1:-served} == unserved ]]; then
    local manifests
    overlay="${state}-overlay"
    rm -rf "${overlay}" && mkdir -p "${overlay}"
    manifests=$(realpath --relative-to="${overlay}" "${LOCAL_CLUSTER_ROOT}/manifests")
    printf 'apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n- %s/overlays/dev\ncomponents:\n- %s/components/v1beta1-only\n' \
      "${manifests}" "${manifests}" >"${overlay}/kustomization.yaml"
  fi
  rm -rf "${crd_dir}" && mkdir -p "${crd_dir}"
  "${KUBECTL_BIN}" kustomize "${overlay}" |
    awk -v dir="${crd_dir}" 'BEGIN { f = dir "/000.yaml" } /^---$/ { n++; f = sprintf("%s/%03d.yaml", dir, n); next } { print > f }'
  # LOCAL_CLUSTER_APISERVER_FEATURE_GATES: the API server's --feature-gates.
  # LOCAL_CLUSTER_APISERVER_PROFILING=true: serve its /debug/pprof.
  "${LOCAL_CLUSTER_ROOT}/bin/local-cluster" up -dir "${state}" -nodes "${nodes}" -crds "${crd_dir}" \
    -apiserver-feature-gates "${LOCAL_CLUSTER_APISERVER_FEATURE_GATES:-}" \
    -apiserver-profiling="${LOCAL_CLUSTER_APISERVER_PROFILING:-false}" >/dev/null
  local kc=("${KUBECTL_BIN}" --kubeconfig "${state}/kubeconfig")
  "${KUBECTL_BIN}" kustomize "${overlay}" |
    "${kc[@]}" apply --server-side --force-conflicts -f - >/dev/null
  "${kc[@]}" wait --for=condition=Established --timeout=60s \
    crd/sandboxes.agents.x-k8s.io crd/sandboxclaims.extensions.agents.x-k8s.io \
    crd/sandboxtemplates.extensions.agents.x-k8s.io crd/sandboxwarmpools.extensions.agents.x-k8s.io >/dev/null
}
