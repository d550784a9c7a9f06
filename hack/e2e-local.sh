#!/usr/bin/env bash
# Runs the e2e suite (test/e2e) on the source-built local cluster: starts a
# fresh cluster of its own (state in .cache/e2e-local, ports apart from
# 'make dev' so both can run), installs the dev overlay, runs the controller
# locally under its ServiceAccount's RBAC, runs the suite and stops exactly
# what it started, also on failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
source hack/local-cluster/lib.sh
source hack/local-cluster/controller.sh
export GOTOOLCHAIN=local

STATE="${E2E_LOCAL_STATE:-${ROOT}/.cache/e2e-local}"
METRICS_PORT=${E2E_METRICS_PORT:-18080}
PROBE_PORT=${E2E_PROBE_PORT:-18081}
WEBHOOK_PORT=${E2E_WEBHOOK_PORT:-19443}

hack/local-cluster/build.sh
eval "$(hack/local-cluster/env.sh)"
echo "=== building the controller"
go build -o bin/ ./cmd/agent-sandbox-controller ./hack/local-cluster

# A previous run that was killed may have left processes: stop them by the
# PIDs it recorded before starting afresh.
if [[ -d ${STATE} ]]; then
  bin/local-cluster down -dir "${STATE}" || true
  rm -rf "${STATE}"
fi
cleanup() {
  local rc=$?
  if [[ ${rc} -ne 0 && -d ${STATE}/logs ]]; then
    echo "=== e2e-local failed; the controller's last log lines:" >&2
    tail -n 40 "${STATE}/logs/agent-sandbox-controller.log" >&2 || true
  fi
  bin/local-cluster down -dir "${STATE}" || true
  exit "${rc}"
}
trap cleanup EXIT

echo "=== starting the local cluster"
bin/local-cluster up -dir "${STATE}" -nodes 3
echo "=== starting the controller as ${CONTROLLER_SA}"
start_local_controller "${STATE}" "${METRICS_PORT}" "${PROBE_PORT}" "${WEBHOOK_PORT}"

echo "=== e2e suite"
KUBECONFIG="${STATE}/kubeconfig" E2E_METRICS_URL="http://127.0.0.1:${METRICS_PORT}/metrics" \
  go test -tags e2e -count=1 -v -timeout 20m ./test/e2e/...
