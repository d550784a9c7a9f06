#!/usr/bin/env bash
# One command for a newcomer: builds the control plane from source (about
# ten minutes the first time, seconds afterwards), starts it with fake
# nodes, installs the CRDs, and says how to use it.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
source hack/local-cluster/lib.sh

kubeconfig=$(CRDS=manifests/crd hack/cluster-up.sh)
kubectl="${KUBE_DIR}/kubectl"

cat <<MSG

The local cluster is running (stop it with 'make cluster-down').

  export KUBECONFIG=${kubeconfig}
  alias kubectl=${kubectl}

  kubectl get nodes
  kubectl api-resources --api-group=agents.x-k8s.io
  kubectl apply -f docs/examples/sandbox.yaml
  kubectl get sandboxes

Logs of every component are in ${LOCAL_CLUSTER_STATE}/logs.
MSG
