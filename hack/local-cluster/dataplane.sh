# shellcheck shell=bash
# Sourced by dev.sh and e2e-local.sh: the data plane of the local cluster,
# as local processes recorded in the cluster's state directory (so
# local-cluster down stops them by PID):
#   start_process_node STATE [FLAG...]
#                              the development kubelet (hack/process-node):
#                              Pods that select it run bin/sandbox-runtime
#                              as local processes on loopback Pod IPs.
#                              DEVELOPMENT ONLY, no isolation. FLAGs go to
#                              process-node after the defaults.
#   start_local_router STATE HTTP_PORT PROBE_PORT METRICS_PORT
#                              bin/sandbox-router configured as the release
#                              manifest's Deployment configures it (its
#                              args, so the shipped authorization:
#                              subjectaccessreview, tokens for the audience
#                              agent-sandbox-router), running as its
#                              ServiceAccount with the release's RBAC.
# Needs KUBECTL_BIN (env.sh), and bin/local-cluster, bin/process-node,
# bin/sandbox-runtime and bin/sandbox-router built.

ROUTER_SA=system:serviceaccount:agent-sandbox-system:sandbox-router
# shellcheck disable=SC2034 # dev.sh mints tokens for it
ROUTER_AUDIENCE=agent-sandbox-router

# wait_http URL NAME LOG: polls URL until it answers 2xx (60s).
wait_http() {
  local url=$1 name=$2 log=$3
  for _ in $(seq 1 120); do
    if curl -fsS "${url}" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  echo "${name} did not become ready; its log: ${log}" >&2
  tail -n 30 "${log}" >&2 || true
  return 1
}

start_process_node() {
  local state=$1
  shift
  bin/local-cluster run -dir "${state}" -name process-node -- \
    "${PWD}/bin/process-node" --kubeconfig "${state}/kubeconfig" \
    --state-dir "${state}/process-node" --runtime-binary "${PWD}/bin/sandbox-runtime" "$@"
  for _ in $(seq 1 120); do
    if "${KUBECTL_BIN}" --kubeconfig "${state}/kubeconfig" get node process-node-0 \
      -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null | grep -q True; then
      return 0
    fi
    sleep 0.5
  done
  echo "the process node did not become Ready; its log: ${state}/logs/process-node.log" >&2
  tail -n 30 "${state}/logs/process-node.log" >&2 || true
  return 1
}

start_local_router() {
  local state=$1 http=$2 probe=$3 metrics=$4
  local admin="${state}/kubeconfig" as_sa="${state}/router.kubeconfig"
  local release="${state}/sandbox-router.yaml"
  # The release's router manifest (make release-manifests renders the same
  # base, only pinning the image and adding a version label).
  "${KUBECTL_BIN}" kustomize manifests/router >"${release}"
  # Its ServiceAccount and RBAC as released (informers on Pods and
  # Sandboxes, TokenReview, SubjectAccessReview); the Deployment, Service,
  # PodDisruptionBudget and NetworkPolicy are left out: the router runs
  # here as a process.
  bin/local-cluster objects -f "${release}" -kinds ServiceAccount,ClusterRole,ClusterRoleBinding |
    "${KUBECTL_BIN}" --kubeconfig "${admin}" apply -f - >/dev/null
  local args
  args=$(bin/local-cluster container-args -f "${release}" -deployment sandbox-router -container router)
  local -a release_args
  mapfile -t release_args <<<"${args}"
  bin/local-cluster kubeconfig -dir "${state}" -as "${ROUTER_SA}" -out "${as_sa}"
  # The Deployment's flags, then what only a local process needs (Go's flag
  # package keeps the last value of a flag given twice): loopback listeners
  # instead of the Pod's ports, the ServiceAccount through impersonation
  # instead of its mounted token, and Pod IPs that are loopback addresses
  # here, which the router refuses to dial unless told otherwise.
  bin/local-cluster run -dir "${state}" -name sandbox-router -- \
    "${PWD}/bin/sandbox-router" "${release_args[@]}" --kubeconfig "${as_sa}" \
    --http-bind-address "127.0.0.1:${http}" --health-probe-bind-address "127.0.0.1:${probe}" \
    --metrics-bind-address "127.0.0.1:${metrics}" --allow-loopback-pod-ip
  wait_http "http://127.0.0.1:${probe}/readyz" "the router" "${state}/logs/sandbox-router.log"
}
