#!/usr/bin/env bash
# Builds the control plane if needed and starts it on 127.0.0.1 in the
# background: etcd, kube-apiserver, kube-controller-manager, kube-scheduler
# and kwok with fake nodes. Prints the admin kubeconfig path on stdout.
#   NODES=3       number of fake nodes
#   CRDS=dir      also install these CRDs
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
source hack/local-cluster/lib.sh
export GOTOOLCHAIN=local

hack/local-cluster/build.sh
eval "$(hack/local-cluster/env.sh)"
go run ./hack/local-cluster up -dir "${LOCAL_CLUSTER_STATE}" -nodes "${NODES:-3}" ${CRDS:+-crds "${CRDS}"}
