#!/usr/bin/env bash
# One command for a newcomer (make dev): builds the control plane from source
# (about ten minutes the first time, seconds afterwards) and the controller,
# starts them with fake nodes, installs the dev overlay (CRDs, namespace,
# ServiceAccount and the release RBAC), runs the controller as a local
# process under that RBAC, applies a sample Sandbox, a template with a warm
# pool of three and a claim, waits until they are Ready and prints a tour.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
source hack/local-cluster/lib.sh
source hack/local-cluster/controller.sh
export GOTOOLCHAIN=local

step() { printf '\n==> [%s/6] %s\n' "$1" "$2"; }

step 1 "Building etcd, Kubernetes ${KUBE_VERSION} and kwok from source (cached after the first run)"
hack/local-cluster/build.sh
eval "$(hack/local-cluster/env.sh)"

step 2 "Building the controller"
go build -o bin/ ./cmd/agent-sandbox-controller ./hack/local-cluster

step 3 "Starting the local control plane (etcd, kube-apiserver, controller manager, scheduler, 3 kwok nodes)"
if [[ -f ${LOCAL_CLUSTER_STATE}/kubeconfig ]]; then
  echo "A cluster from an earlier 'make dev' may be running: stopping it first."
  bin/local-cluster down -dir "${LOCAL_CLUSTER_STATE}" || true
fi
kubeconfig=$(hack/cluster-up.sh)
kubectl=("${KUBECTL_BIN}" --kubeconfig "${kubeconfig}")

step 4 "Installing the dev overlay and starting the controller as ${CONTROLLER_SA}"
start_local_controller "${LOCAL_CLUSTER_STATE}" 8080 8081 9443

step 5 "Applying a Sandbox, a SandboxTemplate with a warm pool of 3, and waiting for them"
"${kubectl[@]}" apply -f hack/dev/local-volume.yaml -f docs/examples/sandbox.yaml -f hack/dev/warm-pool.yaml
"${kubectl[@]}" wait --for=condition=Ready sandbox/my-sandbox --timeout=90s
"${kubectl[@]}" wait --for=jsonpath='{.status.readyReplicas}'=3 sandboxwarmpool/python-pool --timeout=90s

step 6 "Claiming a warm sandbox"
"${kubectl[@]}" apply -f hack/dev/claim.yaml
"${kubectl[@]}" wait --for=condition=Ready sandboxclaim/my-claim --timeout=90s
"${kubectl[@]}" wait --for=jsonpath='{.status.readyReplicas}'=3 sandboxwarmpool/python-pool --timeout=90s
echo
"${kubectl[@]}" get sandboxclaims,sandboxes,sandboxwarmpools,networkpolicies

cat <<MSG

Everything is running: the control plane on 127.0.0.1, three fake nodes
(kwok: pods become Running, no containers run), and the controller with the
release RBAC. Stop it all with 'make cluster-down'.

  export KUBECONFIG=${kubeconfig}
  alias kubectl=${KUBE_DIR}/kubectl

A short tour:
  kubectl get sandboxclaim my-claim -o yaml        # status.sandbox.name: the warm member it took
  kubectl get sandboxes -L agents.x-k8s.io/launch-type
  kubectl scale sandboxwarmpool python-pool --replicas=5 && kubectl get swp -w
  kubectl patch sandbox my-sandbox --type merge -p '{"spec":{"operatingMode":"Suspended"}}'
  kubectl get sandbox my-sandbox -o jsonpath='{.status.conditions}'
  kubectl apply -f docs/examples/                  # more examples
  kubectl get sandboxes.v1alpha1.agents.x-k8s.io   # the deprecated API, through the webhook
  kubectl events --for sandboxclaim/my-claim
  curl -s 127.0.0.1:8080/metrics | grep ^agent_sandbox

Logs of every component, the controller's included: ${LOCAL_CLUSTER_STATE}/logs/
MSG
