# Sourced by dev.sh: the data plane of the local cluster, as local
# processes recorded in the cluster's state directory (so local-cluster
# down stops them by PID):
#   start_process_node STATE   the development kubelet (hack/process-node):
#                              Pods that select it run bin/sandbox-runtime
#                              as local processes on loopback Pod IPs.
#                              DEVELOPMENT ONLY, no isolation.
#   start_local_router STATE HTTP_PORT PROBE_PORT METRICS_PORT
#                              bin/sandbox-router with its shipped
#                              authorization (subjectaccessreview, tokens
#                              for the audience agent-sandbox-router),
#                              running as its ServiceAccount's RBAC.
# Needs KUBECTL_BIN (env.sh), and bin/local-cluster, bin/process-node,
# bin/sandbox-runtime and bin/sandbox-router built.

ROUTER_SA=system:serviceaccount:agent-sandbox-system:sandbox-router
ROUTER_AUDIENCE=agent-sandbox-router

# wait_http URL NAME LOG: polls URL until it answers 2xx (60s).
wait_http() {
  local url=$1 name=$2 log=$3 i
  for i in $(seq 1 120); do
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
  bin/local-cluster run -dir "${state}" -name process-node -- \
    "${PWD}/bin/process-node" --kubeconfig "${state}/kubeconfig" \
    --state-dir "${state}/process-node" --runtime-binary "${PWD}/bin/sandbox-runtime"
  local i
  for i in $(seq 1 120); do
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
  local kc=("${KUBECTL_BIN}" --kubeconfig "${admin}")
  # The router's ServiceAccount and RBAC exactly as released (informers on
  # Pods and Sandboxes, TokenReview, SubjectAccessReview); the Deployment
  # and Service are left out: the router runs here as a process.
  "${kc[@]}" apply -n agent-sandbox-system -f manifests/router/serviceaccount.yaml -f manifests/router/rbac.yaml >/dev/null
  bin/local-cluster kubeconfig -dir "${state}" -as "${ROUTER_SA}" -out "${as_sa}"
  bin/local-cluster run -dir "${state}" -name sandbox-router -- \
    "${PWD}/bin/sandbox-router" --kubeconfig "${as_sa}" \
    --http-bind-address "127.0.0.1:${http}" --health-probe-bind-address "127.0.0.1:${probe}" \
    --metrics-bind-address "127.0.0.1:${metrics}" \
    --authz-mode subjectaccessreview --authz-tokenreview-audiences "${ROUTER_AUDIENCE}" \
    --allow-loopback-pod-ip
  wait_http "http://127.0.0.1:${probe}/readyz" "the router" "${state}/logs/sandbox-router.log"
}
