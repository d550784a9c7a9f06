#!/usr/bin/env bash
# Regenerates everything derived from the API types:
#   pkg/apis/**/zz_generated.{deepcopy,register}.go   (deepcopy-gen, register-gen)
#   generated/{clientset,listers,informers}           (client-gen, lister-gen, informer-gen)
#   manifests/crd/*.yaml                              (controller-gen, build-time tool only)
#   docs/api-reference.md                             (hack/apiref, from the types and the CRDs)
#   manifests/helm/agent-sandbox/{crds,files}         (copies of those and of the alert rules)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
export GOTOOLCHAIN=local

MODULE="$(go list -m)"
BOILERPLATE="${ROOT}/hack/boilerplate.go.txt"
LINT_RULES="known-tags-only,require-explicit-disablement"

CODEGEN_PKG="$(go list -m -f '{{.Dir}}' k8s.io/code-generator)"
# shellcheck source=/dev/null
source "${CODEGEN_PKG}/kube_codegen.sh"

kube::codegen::gen_helpers --boilerplate "${BOILERPLATE}" --lint-rules "${LINT_RULES}" "${ROOT}/pkg/apis"
kube::codegen::gen_register --boilerplate "${BOILERPLATE}" --lint-rules "${LINT_RULES}" "${ROOT}/pkg/apis"
kube::codegen::gen_client \
  --with-watch \
  --lint-rules "${LINT_RULES}" \
  --output-dir "${ROOT}/generated" \
  --output-pkg "${MODULE}/generated" \
  --boilerplate "${BOILERPLATE}" \
  "${ROOT}/pkg/apis"

# The controller's own informers take the narrow client interfaces of
# pkg/clients instead of the full generated clientsets: those import
# client-go's discovery, which imports k8s.io/client-go/kubernetes/scheme
# and with it every built-in API group (~14 MB of binary, ~9 MiB of
# resident memory in the controller). So the informers are generated
# again against pkg/clients/agentsclient, and the kube kinds the controller
# uses get a clientset and informers of their own (generated/kube), built
# from k8s.io/api with client-go's listers. hack/verify.sh keeps the
# controller binary free of client-go's scheme.
rm -rf "${ROOT}/generated/informers" "${ROOT}/generated/kube"
"${GOBIN}/informer-gen" \
  --go-header-file "${BOILERPLATE}" \
  --output-dir "${ROOT}/generated/informers" \
  --output-pkg "${MODULE}/generated/informers" \
  --versioned-clientset-package "${MODULE}/pkg/clients/agentsclient" \
  --listers-package "${MODULE}/generated/listers" \
  "${MODULE}/pkg/apis/agents/v1alpha1" "${MODULE}/pkg/apis/agents/v1beta1" \
  "${MODULE}/pkg/apis/extensions/v1alpha1" "${MODULE}/pkg/apis/extensions/v1beta1"
# apiextensions too: its own typed client has Apply, whose apply
# configurations import client-go's discovery.
KUBE_PKGS=(k8s.io/api/core/v1 k8s.io/api/networking/v1 k8s.io/api/coordination/v1 k8s.io/api/events/v1
  k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1)
kube_inputs=()
for pkg in "${KUBE_PKGS[@]}"; do
  kube_inputs+=(--input "${pkg}")
done
"${GOBIN}/client-gen" \
  --go-header-file "${BOILERPLATE}" \
  --output-dir "${ROOT}/generated/kube/clientset" \
  --output-pkg "${MODULE}/generated/kube/clientset" \
  --clientset-name kubernetes \
  --input-base "" \
  --prefers-protobuf \
  "${kube_inputs[@]}"
"${GOBIN}/informer-gen" \
  --go-header-file "${BOILERPLATE}" \
  --output-dir "${ROOT}/generated/kube/informers" \
  --output-pkg "${MODULE}/generated/kube/informers" \
  --versioned-clientset-package "${MODULE}/pkg/clients/kubeclient" \
  --listers-package k8s.io/client-go/listers \
  k8s.io/api/core/v1 k8s.io/api/networking/v1

"${ROOT}/hack/update-crds.sh"
"${ROOT}/hack/update-api-reference.sh"
"${ROOT}/hack/update-helm-chart.sh"
