#!/usr/bin/env bash
# make e2e: creates (or reuses) a kind cluster, builds the images and loads
# them into it, deploys manifests/overlays/kind (the controller, and the
# router from its release base with its shipped authorization), waits for
# both and runs the e2e suite against them; the data-plane tests' sandboxes
# run the sandbox-runtime image built here, and the kubectl-sandbox plugin
# reaches the router through its own port-forward. For machines with
# Docker and kind.
#   KIND_CLUSTER=agent-sandbox-e2e  KEEP_CLUSTER=1 keeps it afterwards
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
export GOTOOLCHAIN=local

KIND=${KIND:-kind}
KUBECTL=${KUBECTL:-kubectl}
export KIND_CLUSTER=${KIND_CLUSTER:-agent-sandbox-e2e}
# The kind overlay names the images with this tag and never pulls them.
export IMAGE_TAG=e2e IMAGE_PREFIX=ghcr.io/agentsandbox/
for tool in "${KIND}" "${KUBECTL}" docker; do
  command -v "${tool}" >/dev/null || { echo "e2e: '${tool}' is not installed (make e2e needs Docker, kind and kubectl; make e2e-local needs none of them)" >&2; exit 1; }
done

if ! "${KIND}" get clusters | grep -qx "${KIND_CLUSTER}"; then
  "${KIND}" create cluster --name "${KIND_CLUSTER}" --config test/e2e/kind-config.yaml --wait 2m
fi
mkdir -p _output
kubeconfig="${ROOT}/_output/kind-${KIND_CLUSTER}.kubeconfig"
"${KIND}" get kubeconfig --name "${KIND_CLUSTER}" >"${kubeconfig}"
if [[ -z ${KEEP_CLUSTER:-} ]]; then
  trap '"${KIND}" delete cluster --name "${KIND_CLUSTER}"' EXIT
fi

hack/images.sh build
hack/images.sh kind-load

kubectl=("${KUBECTL}" --kubeconfig "${kubeconfig}")
"${kubectl[@]}" kustomize manifests/overlays/kind | "${kubectl[@]}" apply --server-side --force-conflicts -f -
for deployment in agent-sandbox-controller sandbox-router; do
  "${kubectl[@]}" -n agent-sandbox-system rollout status "deployment/${deployment}" --timeout=3m
done

# No E2E_ROUTER_URL: the tests reach the router through a port-forward to
# its Service, the path users of the plugin take.
KUBECONFIG="${kubeconfig}" E2E_RUNTIME_IMAGE="${IMAGE_PREFIX}sandbox-runtime:${IMAGE_TAG}" \
  go test -tags e2e -count=1 -v -timeout 30m ./test/e2e/...
