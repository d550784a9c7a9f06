#!/usr/bin/env bash
# make bench: measures the controller as issues #9 and #19 ask. Starts a fresh
# source-built local cluster of its own (state in .cache/bench, 10 kwok
# nodes), installs the CRDs and the dev overlay, runs the controller of this
# checkout as a local process, runs 'sandbox-bench all' and writes the report
# to _output/bench/<UTC timestamp>/. Everything it started is stopped by
# recorded PID on exit, also on failure or Ctrl-C.
#
# Knobs (environment):
#   BENCH_SCALE=small   a few-minute smoke run instead of the issues' sizes
#   BENCH_NODES=10      fake nodes
#   BENCH_OUT=DIR       report directory (default _output/bench/<timestamp>)
#   BENCH_CONTROLLER_ARGS="..."  extra flags for the controller (e.g. -v=4)
#   BENCH_ARGS="..."    extra flags for 'sandbox-bench all' (they win over the
#                       defaults below, e.g. BENCH_ARGS="--steady-runs 10:30s")
#   BENCH_STATE=DIR     cluster state directory (default .cache/bench)
#   BENCH_METRICS_PORT, BENCH_PROBE_PORT, BENCH_WEBHOOK_PORT  controller ports
# Experiments (issue 19; defaults are what users run):
#   BENCH_V1ALPHA1=unserved            the CRDs stop serving v1alpha1
#                                      (manifests/components/v1beta1-only)
#   BENCH_APISERVER_FEATURE_GATES=...  the API server's --feature-gates, e.g.
#                                      CBORServingAndStorage=true
#   BENCH_APISERVER_PROFILING=true     the API server serves /debug/pprof (take a
#                                      profile with kubectl --kubeconfig
#                                      .cache/bench/kubeconfig get --raw ...)
#   BENCH_CONTROLLER_ENV="K=V ..."     the controller's extra environment, e.g.
#                                      KUBE_FEATURE_ClientsAllowCBOR=true
#                                      KUBE_FEATURE_ClientsPreferCBOR=true
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
source hack/local-cluster/lib.sh
export GOTOOLCHAIN=local

STATE="${BENCH_STATE:-${ROOT}/.cache/bench}"
NODES="${BENCH_NODES:-10}"
# Ports apart from 'make dev' (8080) and 'make e2e-local' (18080), so the
# three can run side by side.
METRICS_PORT=${BENCH_METRICS_PORT:-28080}
PROBE_PORT=${BENCH_PROBE_PORT:-28081}
WEBHOOK_PORT=${BENCH_WEBHOOK_PORT:-29443}
OUT="${BENCH_OUT:-${ROOT}/_output/bench/$(date -u +%Y%m%dT%H%M%SZ)}"

case "${BENCH_SCALE:-full}" in
  full)
    # The sizes of issue #9 (steady pools hold five seconds of claims) and
    # of issue #19: 25/s for 60 s against a pool of 100, a pool of 3000
    # for the RSS, and the ramp against one pool of 100; issue #17's idle
    # tracking at 1,000 active sandboxes over three windows.
    SIZES=(--rtt-n 200 --rs-size 300 --pool-size 300 --fill-rounds 3 --claims-pool 150 --claims 200
      --steady-runs 10:30s:50,25:60s:100,45:20s:225 --rss-pool 3000
      --ramp-rates 10,15,20,25,30,40,50 --ramp-step 30s --ramp-pool 100 --router-rounds 5
      --idle-sandboxes 1000 --idle-windows 3)
    ;;
  small)
    # Every scenario once, briefly: 10/s so issue 19's rows at that rate
    # render, and a two-step ramp.
    SIZES=(--rtt-n 50 --rs-size 50 --pool-size 50 --claims-pool 30 --claims 40 --steady-runs 10:10s:30
      --ramp-rates 5,10 --ramp-step 5s --ramp-pool 20 --router-rounds 2 --router-duration 3s)
    ;;
  *)
    echo "BENCH_SCALE must be full or small, not ${BENCH_SCALE}" >&2
    exit 2
    ;;
esac

log() { printf '=== [bench %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

hack/local-cluster/build.sh
eval "$(hack/local-cluster/env.sh)"
log "building the controller, the router, sandbox-bench and local-cluster"
go build -o bin/ ./cmd/sandbox-bench ./hack/local-cluster
# The controller and the router are built as their images build them
# (static, no cgo, stripped): the RSS and CPU measured are those of what
# ships.
CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o bin/ ./cmd/agent-sandbox-controller ./cmd/sandbox-router

# A previous run that was killed may have left processes: stop them by the
# PIDs it recorded before starting afresh.
if [[ -d ${STATE} ]]; then
  bin/local-cluster down -dir "${STATE}" || true
  rm -rf "${STATE}"
fi
cleanup() {
  local rc=$?
  if [[ ${rc} -ne 0 && -f ${STATE}/logs/agent-sandbox-controller.log ]]; then
    echo "=== bench failed; the controller's last log lines:" >&2
    tail -n 20 "${STATE}/logs/agent-sandbox-controller.log" >&2 || true
  fi
  log "stopping the cluster and the controller"
  bin/local-cluster down -dir "${STATE}" || true
  exit "${rc}"
}
trap cleanup EXIT

log "starting the local cluster with ${NODES} fake nodes and the dev overlay (CRDs, namespace, ServiceAccount, RBAC)"
LOCAL_CLUSTER_V1ALPHA1=${BENCH_V1ALPHA1:-served} \
  LOCAL_CLUSTER_APISERVER_FEATURE_GATES=${BENCH_APISERVER_FEATURE_GATES:-} \
  LOCAL_CLUSTER_APISERVER_PROFILING=${BENCH_APISERVER_PROFILING:-false} \
  up_with_dev_overlay "${STATE}" "${NODES}"
experiments=""
[[ ${BENCH_V1ALPHA1:-served} == served ]] || experiments+=" v1alpha1 ${BENCH_V1ALPHA1}."
[[ -z ${BENCH_APISERVER_FEATURE_GATES:-} ]] || experiments+=" API server --feature-gates=${BENCH_APISERVER_FEATURE_GATES}."
[[ ${BENCH_APISERVER_PROFILING:-false} == false ]] || experiments+=" API server /debug/pprof served."
[[ -z ${BENCH_CONTROLLER_ENV:-} ]] || experiments+=" Controller environment: ${BENCH_CONTROLLER_ENV}."
[[ -z ${BENCH_CONTROLLER_ARGS:-} ]] || experiments+=" Controller flags: ${BENCH_CONTROLLER_ARGS}."
KUBECONFIG_FILE="${STATE}/kubeconfig"

# The controller runs with the admin kubeconfig: its leader election Lease
# lives in 'default', where the release RBAC of its ServiceAccount grants
# nothing. The Lease renewals are part of its measured writes, as in a
# real deployment.
# --enable-pprof-debug serves the heap and goroutine profiles; block and
# mutex sampling stay off (a traceback per sampled event: 2 % of the
# controller's CPU samples at 10/s), which a deployed controller, pprof off
# by default, does not pay either. BENCH_CONTROLLER_ARGS can turn them on.
log "starting the controller (metrics on 127.0.0.1:${METRICS_PORT})"
# The environment goes to local-cluster, whose child inherits it: the
# recorded binary must be the controller itself, because the stop signals
# a PID only while /proc/PID/exe is the recorded binary (an 'env' wrapper
# execs away from it, and the controller was never stopped: it exited on
# its own once the API server was gone and its lease ran out).
# GOMAXPROCS as the Deployment sets it (its CPU request, 100m, rounded up:
# manifests/controller/deployment.yaml); BENCH_CONTROLLER_ENV comes after
# it and wins.
# shellcheck disable=SC2086 # BENCH_CONTROLLER_ENV is a list of K=V on purpose
env GOMAXPROCS=1 ${BENCH_CONTROLLER_ENV:-} bin/local-cluster run -dir "${STATE}" -name agent-sandbox-controller -- \
  "${ROOT}/bin/agent-sandbox-controller" --kubeconfig "${KUBECONFIG_FILE}" \
  --extensions --enable-pprof-debug --pprof-block-profile-rate=0 --pprof-mutex-profile-fraction=0 \
  --leader-election-namespace=default \
  --metrics-bind-address "127.0.0.1:${METRICS_PORT}" --health-probe-bind-address "127.0.0.1:${PROBE_PORT}" \
  --webhook-port "${WEBHOOK_PORT}" --webhook-url "https://127.0.0.1:${WEBHOOK_PORT}/convert" \
  ${BENCH_CONTROLLER_ARGS:-}
ready=""
for _ in $(seq 1 120); do
  if curl -fsS "http://127.0.0.1:${PROBE_PORT}/readyz" >/dev/null 2>&1; then
    ready=1
    break
  fi
  sleep 0.5
done
if [[ -z ${ready} ]]; then
  echo "the controller did not become ready; its log: ${STATE}/logs/agent-sandbox-controller.log" >&2
  exit 1
fi

# GOGC and GOMAXPROCS as the controller process has them (from the caller's
# environment or BENCH_CONTROLLER_ENV), read from the process itself so the
# report's header cannot disagree with what ran.
CONTROLLER_PID=$(head -n 1 "${STATE}/pids/agent-sandbox-controller.pid")
controller_env() { tr '\0' '\n' <"/proc/${CONTROLLER_PID}/environ" | sed -n "s/^$1=//p" | tail -n 1; }
controller_gogc=$(controller_env GOGC)
controller_gomaxprocs=$(controller_env GOMAXPROCS)

log "running sandbox-bench all (${BENCH_SCALE:-full}); report in ${OUT}"
mkdir -p "${OUT}"
# shellcheck disable=SC2086 # BENCH_ARGS is a list of flags on purpose
bin/sandbox-bench all --kubeconfig "${KUBECONFIG_FILE}" \
  --controller-metrics-url "http://127.0.0.1:${METRICS_PORT}/metrics" --controller-gogc-env "${controller_gogc:-unset}" \
  --controller-pid "${CONTROLLER_PID}" --process-pid-dir "${STATE}/pids" \
  --note "Setup: make bench (BENCH_SCALE=${BENCH_SCALE:-full}), ${NODES} kwok nodes, $(nproc) CPUs shared with the control plane and the bench. kube-controller-manager and kube-scheduler run with client QPS 200 / burst 400 (test/localcluster), the ReplicaSet controller with its defaults (burst 500 creates per sync, 5 workers). The controller of commit $(git rev-parse --short HEAD)$(git diff --quiet -- cmd pkg || echo ' plus uncommitted changes'), built as its image builds it (CGO_ENABLED=0, -trimpath, -s -w), runs locally with GOMAXPROCS ${controller_gomaxprocs:-unset (one per CPU)} and the admin kubeconfig: --extensions --enable-pprof-debug (block and mutex sampling off) --leader-election-namespace=default, default workers and no client-side rate limit; the bench reads its /metrics at the edges of each window and samples its RSS from /proc every 100 ms.${experiments:+ Experiment:${experiments}}" \
  --out "${OUT}" "${SIZES[@]}" ${BENCH_ARGS:-} 2> >(tee "${OUT}/progress.log" >&2)
log "report: ${OUT}/report.md"
echo "${OUT}/report.md"
