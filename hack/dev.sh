#!/usr/bin/env bash
# One command for a newcomer: builds the control plane from source (about
# ten minutes the first time, seconds afterwards) and the controller,
# starts them with fake nodes, installs the CRDs, applies a sample Sandbox,
# a warm pool of three and a claim, and waits until they are Ready.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
source hack/local-cluster/lib.sh
export GOTOOLCHAIN=local

echo "Building the controller"
go build -o bin/ ./cmd/agent-sandbox-controller ./hack/local-cluster

kubeconfig=$(CRDS=manifests/crd hack/cluster-up.sh)
kubectl=("${KUBE_DIR}/kubectl" --kubeconfig "${kubeconfig}")

bin/local-cluster run -dir "${LOCAL_CLUSTER_STATE}" -name agent-sandbox-controller -- \
  "${ROOT}/bin/agent-sandbox-controller" --kubeconfig "${kubeconfig}" \
  --leader-election-namespace default \
  --metrics-bind-address 127.0.0.1:8080 --health-probe-bind-address 127.0.0.1:8081 \
  --webhook-namespace default --webhook-url https://127.0.0.1:9443/convert \
  --extensions

"${kubectl[@]}" apply -f hack/dev/local-volume.yaml -f docs/examples/sandbox.yaml -f hack/dev/warm-pool.yaml
echo "Waiting for the sample Sandbox and the warm pool to become Ready"
"${kubectl[@]}" wait --for=condition=Ready sandbox/my-sandbox --timeout=90s
"${kubectl[@]}" wait --for=jsonpath='{.status.readyReplicas}'=3 sandboxwarmpool/python-pool --timeout=90s
echo "Claiming a warm sandbox"
"${kubectl[@]}" apply -f hack/dev/claim.yaml
"${kubectl[@]}" wait --for=condition=Ready sandboxclaim/my-claim --timeout=90s
"${kubectl[@]}" wait --for=jsonpath='{.status.readyReplicas}'=3 sandboxwarmpool/python-pool --timeout=90s
"${kubectl[@]}" get sandboxclaims,sandboxes,sandboxwarmpools,networkpolicies

cat <<MSG

The local cluster and the controller are running (stop both with 'make cluster-down').

  export KUBECONFIG=${kubeconfig}
  alias kubectl=${KUBE_DIR}/kubectl

  kubectl get sandboxes,pods,services,pvc
  kubectl scale sandboxwarmpool python-pool --replicas=5
  kubectl patch sandbox my-sandbox --type merge -p '{"spec":{"operatingMode":"Suspended"}}'
  curl -s 127.0.0.1:8080/metrics | grep agent_sandbox

Logs of every component, the controller's included, are in ${LOCAL_CLUSTER_STATE}/logs.
MSG
