#!/usr/bin/env bash
# make chaos / make soak (issue 14 items 6-8). Starts a fresh source-built
# local cluster of its own (state in .cache/chaos or .cache/soak), installs
# the CRDs and the dev overlay, and runs 'sandbox-bench chaos' or
# 'sandbox-bench soak', which run the controller of this checkout as local
# processes beside the cluster (recorded in its state directory). The report
# goes to _output/<mode>/<UTC timestamp>/. Everything started is stopped by
# recorded PID on exit, also on failure or Ctrl-C. Exit status is the
# bench's: non-zero on any violation, leak or (soak) growth.
#
# Usage: hack/chaos.sh [chaos|soak]   (hack/soak.sh is 'hack/chaos.sh soak')
#
# Knobs (environment):
#   CHAOS_SCALE=full|ci|small   chaos size: 10,000 claims with every fault
#                        (~20 min), the CI run (500 claims, a controller kill
#                        every 5s; ~2 min), or 1,000
#                        claims with every fault kind (~3 min)
#   SOAK_CLAIMS=100000 SOAK_RATE=10   soak size and rate
#   CHAOS_ARGS / SOAK_ARGS="..."  extra flags for sandbox-bench (they win)
#   CHAOS_NODES=5       fake nodes
#   CHAOS_OUT=DIR       report directory
#   CHAOS_STATE=DIR     cluster state directory
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
source hack/local-cluster/lib.sh
export GOTOOLCHAIN=local

MODE="${1:-chaos}"
case "${MODE}" in
  chaos)
    case "${CHAOS_SCALE:-full}" in
      full) ARGS=(--claims 10000) ;;
      # One API server restart among the controller kills.
      ci) ARGS=(--claims 500 --phases single:1h --kill-every 5s --apiserver-restart-every 25s --etcd-restart-every 0 --leader-kill-every 0) ;;
      small) ARGS=(--claims 1000 --phases single:30s,leader:45s --apiserver-restart-every 40s --etcd-restart-every 55s) ;;
      *)
        echo "CHAOS_SCALE must be full, ci or small, not ${CHAOS_SCALE}" >&2
        exit 2
        ;;
    esac
    # shellcheck disable=SC2206 # a list of flags on purpose
    ARGS+=(${CHAOS_ARGS:-})
    ;;
  soak)
    # Ports apart from chaos's, so the two can run side by side.
    ARGS=(--claims "${SOAK_CLAIMS:-100000}" --rate "${SOAK_RATE:-10}" --controller-port 31180 --webhook-port 31543)
    # shellcheck disable=SC2206
    ARGS+=(${SOAK_ARGS:-})
    ;;
  *)
    echo "usage: hack/chaos.sh [chaos|soak]" >&2
    exit 2
    ;;
esac
STATE="${CHAOS_STATE:-${ROOT}/.cache/${MODE}}"
NODES="${CHAOS_NODES:-5}"
OUT="${CHAOS_OUT:-${ROOT}/_output/${MODE}/$(date -u +%Y%m%dT%H%M%SZ)}"

log() { printf '=== [%s %(%H:%M:%S)T] %s\n' "${MODE}" -1 "$*" >&2; }

# With autogroup scheduling every session gets an equal share of the CPU
# and nice only ranks processes within one session, so builds in another
# terminal take half the machine however niced (docs/reliability.md).
if [[ $(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null || echo 0) == 1 ]]; then
  log "note: kernel autogroup scheduling is on: 'nice' on other work will not give this run the CPU (echo 0 > /proc/sys/kernel/sched_autogroup_enabled turns it off)"
fi

hack/local-cluster/build.sh
eval "$(hack/local-cluster/env.sh)"
log "building the controller, sandbox-bench and local-cluster"
go build -o bin/ ./cmd/agent-sandbox-controller ./cmd/sandbox-bench ./hack/local-cluster

# A previous run that was killed may have left processes: stop them by the
# PIDs it recorded before starting afresh.
if [[ -d ${STATE} ]]; then
  bin/local-cluster down -dir "${STATE}" || true
  rm -rf "${STATE}"
fi
cleanup() {
  local rc=$?
  log "stopping the cluster and the controllers"
  bin/local-cluster down -dir "${STATE}" || true
  exit "${rc}"
}
trap cleanup EXIT

log "starting the local cluster with ${NODES} fake nodes and the dev overlay"
up_with_dev_overlay "${STATE}" "${NODES}"

log "running sandbox-bench ${MODE} ${ARGS[*]}; report in ${OUT}"
mkdir -p "${OUT}"
rc=0
bin/sandbox-bench "${MODE}" --cluster-dir "${STATE}" --out "${OUT}" \
  --note "Setup: make ${MODE}, ${NODES} kwok nodes, $(nproc) CPUs shared by the control plane, the controller and the bench. The controller of commit $(git rev-parse --short HEAD)$(git diff --quiet -- cmd pkg || echo ' plus uncommitted changes') runs locally with the admin kubeconfig." \
  "${ARGS[@]}" 2> >(tee "${OUT}/progress.log" >&2) || rc=$?
cp -r "${STATE}/logs" "${OUT}/logs" 2>/dev/null || true
log "report: ${OUT}/report.md (exit ${rc})"
exit "${rc}"
