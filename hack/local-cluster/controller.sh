# Sourced by dev.sh and e2e-local.sh: installs the dev overlay (CRDs,
# namespace, ServiceAccount, release RBAC) on a running local cluster and
# starts the controller as a local process that impersonates its
# ServiceAccount, so it runs with exactly the permissions a release grants.
#
#   start_local_controller STATE_DIR METRICS_PORT PROBE_PORT WEBHOOK_PORT
#
# Needs KUBECTL_BIN (hack/local-cluster/env.sh) and bin/agent-sandbox-controller
# and bin/local-cluster built. The controller is stopped with the cluster
# (local-cluster down), by the PID recorded in STATE_DIR.

CONTROLLER_SA=system:serviceaccount:agent-sandbox-system:agent-sandbox-controller

start_local_controller() {
  local state=$1 metrics=$2 probe=$3 webhook=$4
  local admin="${state}/kubeconfig" as_sa="${state}/controller.kubeconfig"
  "${KUBECTL_BIN}" kustomize manifests/overlays/dev |
    "${KUBECTL_BIN}" --kubeconfig "${admin}" apply --server-side --force-conflicts -f - >/dev/null
  "${KUBECTL_BIN}" --kubeconfig "${admin}" wait --for=condition=Established --timeout=60s \
    crd/sandboxes.agents.x-k8s.io crd/sandboxclaims.extensions.agents.x-k8s.io \
    crd/sandboxtemplates.extensions.agents.x-k8s.io crd/sandboxwarmpools.extensions.agents.x-k8s.io >/dev/null
  bin/local-cluster kubeconfig -dir "${state}" -as "${CONTROLLER_SA}" -out "${as_sa}"
  bin/local-cluster run -dir "${state}" -name agent-sandbox-controller -- \
    "${PWD}/bin/agent-sandbox-controller" --kubeconfig "${as_sa}" \
    --leader-election-namespace agent-sandbox-system \
    --metrics-bind-address "127.0.0.1:${metrics}" --health-probe-bind-address "127.0.0.1:${probe}" \
    --webhook-port "${webhook}" --webhook-url "https://127.0.0.1:${webhook}/convert" \
    --extensions
  local i
  for i in $(seq 1 120); do
    if curl -fsS "http://127.0.0.1:${probe}/readyz" >/dev/null 2>&1; then
      return 0
    fi
    sleep 0.5
  done
  echo "the controller did not become ready; its log: ${state}/logs/agent-sandbox-controller.log" >&2
  tail -n 30 "${state}/logs/agent-sandbox-controller.log" >&2 || true
  return 1
}
