#!/usr/bin/env bash
# Runs the e2e suite (test/e2e) on the source-built local cluster: starts a
# fresh cluster of its own (state in .cache/e2e-local, ports apart from
# 'make dev' so both can run), installs the dev overlay, runs the controller
# locally under its ServiceAccount's RBAC, the process node (sandboxes'
# runtimes as local processes; development only, no isolation) and the
# router as the release manifest configures it, under its ServiceAccount's
# release RBAC, runs the suite and stops exactly what it started, also on
# failure.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
source hack/local-cluster/lib.sh
source hack/local-cluster/controller.sh
source hack/local-cluster/dataplane.sh
export GOTOOLCHAIN=local

STATE="${E2E_LOCAL_STATE:-${ROOT}/.cache/e2e-local}"
METRICS_PORT=${E2E_METRICS_PORT:-18080}
PROBE_PORT=${E2E_PROBE_PORT:-18081}
WEBHOOK_PORT=${E2E_WEBHOOK_PORT:-19443}
ROUTER_PORT=${E2E_ROUTER_PORT:-18090}
ROUTER_PROBE_PORT=${E2E_ROUTER_PROBE_PORT:-18092}
ROUTER_METRICS_PORT=${E2E_ROUTER_METRICS_PORT:-19092}

hack/local-cluster/build.sh
eval "$(hack/local-cluster/env.sh)"
echo "=== building the controller, the router, the sandbox runtime and the process node"
go build -o bin/ ./cmd/agent-sandbox-controller ./cmd/sandbox-router ./cmd/sandbox-runtime \
  ./hack/local-cluster ./hack/process-node

# A previous run that was killed may have left processes: stop them by the
# PIDs it recorded before starting afresh.
if [[ -d ${STATE} ]]; then
  bin/local-cluster down -dir "${STATE}" || true
  rm -rf "${STATE}"
fi
cleanup() {
  local rc=$?
  if [[ ${rc} -ne 0 && -d ${STATE}/logs ]]; then
    local name
    for name in agent-sandbox-controller sandbox-router process-node; do
      echo "=== e2e-local failed; the last log lines of ${name}:" >&2
      tail -n 40 "${STATE}/logs/${name}.log" >&2 || true
    done
  fi
  bin/local-cluster down -dir "${STATE}" || true
  exit "${rc}"
}
trap cleanup EXIT

echo "=== starting the local cluster"
bin/local-cluster up -dir "${STATE}" -nodes 3
echo "=== starting the controller as ${CONTROLLER_SA}"
start_local_controller "${STATE}" "${METRICS_PORT}" "${PROBE_PORT}" "${WEBHOOK_PORT}"

# The process node binds its runtimes to loopback Pod IPs of a pod CIDR
# slot. make dev's is slot 0; integration tests each hold a lock on theirs
# (localcluster.ClaimPodCIDRSlot). Take a free slot the same way, so no
# other cluster on this machine hands out our addresses. The lock is held
# by this shell's descriptor, which the processes started after it
# inherit; it is released once all of them are gone. (Slots 1 to 15:
# localcluster.PodCIDRSlots is 16.)
slots="${TMPDIR:-/tmp}/agent-sandbox-podcidr-slots"
mkdir -p "${slots}"
POD_CIDR_SLOT=""
for slot in $(seq 1 15); do
  exec {slot_fd}>"${slots}/slot-${slot}.lock"
  if flock -n "${slot_fd}"; then
    POD_CIDR_SLOT=${slot}
    break
  fi
  exec {slot_fd}>&-
done
if [[ -z ${POD_CIDR_SLOT} ]]; then
  echo "e2e-local: every pod CIDR slot is taken by other local clusters" >&2
  exit 1
fi

echo "=== starting the process node (pod CIDR slot ${POD_CIDR_SLOT}) and the router as ${ROUTER_SA}"
# Runtimes die with the process node, however it ends.
start_process_node "${STATE}" --pod-cidr-slot "${POD_CIDR_SLOT}" --kill-runtimes-on-exit
start_local_router "${STATE}" "${ROUTER_PORT}" "${ROUTER_PROBE_PORT}" "${ROUTER_METRICS_PORT}"

echo "=== e2e suite"
KUBECONFIG="${STATE}/kubeconfig" E2E_METRICS_URL="http://127.0.0.1:${METRICS_PORT}/metrics" \
  E2E_ROUTER_URL="http://127.0.0.1:${ROUTER_PORT}" E2E_PROCESS_NODE=true \
  go test -tags e2e -count=1 -v -timeout 20m ./test/e2e/...
