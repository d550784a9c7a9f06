#!/usr/bin/env bash
# Prints the environment that names the built control-plane binaries, for
#   eval "$(hack/local-cluster/env.sh)"
# The integration test framework and the local-cluster command read it.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cat <<ENV
export ETCD_BIN=${ETCD_DIR}/etcd
export KUBE_APISERVER_BIN=${KUBE_DIR}/kube-apiserver
export KUBE_CONTROLLER_MANAGER_BIN=${KUBE_DIR}/kube-controller-manager
export KUBE_SCHEDULER_BIN=${KUBE_DIR}/kube-scheduler
export KUBECTL_BIN=${KUBE_DIR}/kubectl
export KWOK_BIN=${KWOK_DIR}/kwok
export KWOK_STAGES_DIR=${KWOK_DIR}/stages
ENV
