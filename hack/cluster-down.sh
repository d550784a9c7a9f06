#!/usr/bin/env bash
# Stops the processes 'make cluster-up' started, by the PIDs it recorded.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
source hack/local-cluster/lib.sh
export GOTOOLCHAIN=local
go run ./hack/local-cluster down -dir "${LOCAL_CLUSTER_STATE}"
