#!/usr/bin/env bash
# One command for a newcomer (make dev): builds the control plane from source
# (about ten minutes the first time, seconds afterwards) and the controller,
# starts them with fake nodes, installs the dev overlay (CRDs, namespace,
# ServiceAccount and the release RBAC), runs the controller as a local
# process under that RBAC, applies a sample Sandbox, a template with a warm
# pool of three and a claim on kwok nodes (Pods Running, nothing runs),
# then starts the process node (a development kubelet that runs the sandbox
# runtime as local processes, no isolation) and the router with its shipped
# authorization, claims a sandbox from a warm pool on the process node, runs
# a command in it through the router, and prints a tour.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
source hack/local-cluster/lib.sh
source hack/local-cluster/controller.sh
source hack/local-cluster/dataplane.sh
export GOTOOLCHAIN=local

step() { printf '\n==> [%s/8] %s\n' "$1" "$2"; }

ROUTER_PORT=8090

step 1 "Building etcd, Kubernetes ${KUBE_VERSION} and kwok from source (cached after the first run)"
hack/local-cluster/build.sh
eval "$(hack/local-cluster/env.sh)"

step 2 "Building the controller, the router, the sandbox runtime, kubectl-sandbox and the process node"
go build -o bin/ ./cmd/agent-sandbox-controller ./cmd/sandbox-router ./cmd/sandbox-runtime ./cmd/kubectl-sandbox \
  ./hack/local-cluster ./hack/process-node

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

step 7 "Starting the process node (DEVELOPMENT ONLY: sandboxes run as local processes, no isolation) and the router"
start_process_node "${LOCAL_CLUSTER_STATE}"
# Pod IPs here are loopback addresses, which the router refuses to dial
# unless told otherwise; authorization stays the shipped one.
start_local_router "${LOCAL_CLUSTER_STATE}" "${ROUTER_PORT}" 8092 9092
"${kubectl[@]}" apply -f hack/dev/router-access.yaml >/dev/null
token_file="${LOCAL_CLUSTER_STATE}/dev-agent.token"
"${kubectl[@]}" create token dev-agent --audience "${ROUTER_AUDIENCE}" --duration 24h >"${token_file}"

step 8 "Claiming a sandbox from the process node's warm pool and running a command in it through the router"
"${kubectl[@]}" apply -f hack/dev/runtime-pool.yaml
"${kubectl[@]}" wait --for=jsonpath='{.status.readyReplicas}'=2 sandboxwarmpool/runtime-pool --timeout=90s
"${kubectl[@]}" apply -f hack/dev/runtime-claim.yaml
"${kubectl[@]}" wait --for=condition=Ready sandboxclaim/my-runtime --timeout=90s
sandbox=$("${kubectl[@]}" get sandboxclaim my-runtime -o jsonpath='{.status.sandbox.name}')
ok=""
for _ in $(seq 1 40); do
  # The router learns of the claimed sandbox from its informers a moment
  # after the claim is Ready.
  if out=$(curl -fsS -H "Authorization: Bearer $(cat "${token_file}")" -H "X-Sandbox-ID: ${sandbox}" \
    -H 'Content-Type: application/json' -d '{"command":"echo hello from the process node"}' \
    "http://127.0.0.1:${ROUTER_PORT}/execute" 2>/dev/null); then
    ok=1
    break
  fi
  sleep 0.5
done
if [[ -z ${ok} ]]; then
  echo "the router never reached sandbox ${sandbox}; logs: ${LOCAL_CLUSTER_STATE}/logs/{sandbox-router,process-node}.log" >&2
  exit 1
fi
echo "${out}"
echo
"${kubectl[@]}" get sandboxclaims,sandboxes,sandboxwarmpools,networkpolicies
"${kubectl[@]}" get pods -o wide

cat <<MSG

Everything is running: the control plane on 127.0.0.1, three fake nodes
(kwok: pods become Running, no containers run), the controller with the
release RBAC, the router on 127.0.0.1:${ROUTER_PORT} (authorization:
subjectaccessreview), and the process node process-node-0, which runs the
sandbox runtime of each of its Pods as a local process on a loopback IP.
The process node is for development only: commands in its sandboxes run as
you, with your files and network, isolated from nothing.
Stop it all with 'make cluster-down'.

  export KUBECONFIG=${kubeconfig}
  alias kubectl=${KUBE_DIR}/kubectl

Run code in a sandbox with the kubectl plugin (bin/kubectl-sandbox), through
the router, with a token of the ServiceAccount default/dev-agent (allowed
to get sandboxes/proxy, audience ${ROUTER_AUDIENCE}; mint another with
'kubectl create token dev-agent --audience ${ROUTER_AUDIENCE}'):
  export PATH=${ROOT}/bin:\$PATH
  export KUBECTL_SANDBOX_ROUTER_URL=http://127.0.0.1:${ROUTER_PORT}
  export KUBECTL_SANDBOX_ROUTER_TOKEN=\$(cat ${token_file})
  kubectl sandbox claim demo --pool runtime-pool --wait
  kubectl sandbox exec demo -- python3 -c 'print(6*7)'
  kubectl sandbox cp README.md demo:notes/readme.md
  kubectl sandbox files demo notes
  kubectl sandbox cp demo:notes/readme.md /tmp/readme-from-sandbox.md
  kubectl sandbox suspend demo --wait && kubectl sandbox resume demo --wait
  kubectl sandbox files demo notes                  # still there: /app is a PersistentVolumeClaim
  kubectl sandbox ls
  kubectl sandbox release demo
The router's raw API, as the SDKs use it:
  SB=\$(kubectl get sandboxclaim my-runtime -o jsonpath='{.status.sandbox.name}')
  curl -sS -H "Authorization: Bearer \$KUBECTL_SANDBOX_ROUTER_TOKEN" -H "X-Sandbox-ID: \$SB" \\
    -H 'Content-Type: application/json' -d '{"command":"python3 -c \\"print(6*7)\\""}' \$KUBECTL_SANDBOX_ROUTER_URL/execute

More of the tour:
  kubectl get sandboxclaim my-claim -o yaml        # status.sandbox.name: the warm member it took
  kubectl get sandboxes -L agents.x-k8s.io/launch-type
  kubectl scale sandboxwarmpool python-pool --replicas=5 && kubectl get swp -w
  kubectl patch sandbox my-sandbox --type merge -p '{"spec":{"operatingMode":"Suspended"}}'
  kubectl get sandbox my-sandbox -o jsonpath='{.status.conditions}'
  kubectl apply -f docs/examples/                  # more examples
  kubectl get sandboxes.v1alpha1.agents.x-k8s.io   # the deprecated API, through the webhook
  kubectl events --for sandboxclaim/my-claim
  curl -s 127.0.0.1:8080/metrics | grep ^agent_sandbox

Logs of every component, the controller, router and process node included:
${LOCAL_CLUSTER_STATE}/logs/; each sandbox runtime's output:
${LOCAL_CLUSTER_STATE}/process-node/pods/<pod UID>/runtime.log
MSG
