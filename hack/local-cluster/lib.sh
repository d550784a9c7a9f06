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
