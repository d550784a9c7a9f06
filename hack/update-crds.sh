#!/usr/bin/env bash
# Generates the CRDs in manifests/crd from the kubebuilder markers on the API
# types, then adds what markers cannot express: the conversion stanza of the
# spec (api.md §1.4) and v1beta1 listed before v1alpha1.
#
# controller-gen is built as a standalone tool at a pinned version, so
# controller-runtime never enters this module's dependencies.
# It lands in TOOLS_CACHE (default: the git-ignored _output/tools).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
export GOTOOLCHAIN=local

CONTROLLER_GEN_VERSION=v0.23.0
TOOLS_BIN="${TOOLS_CACHE:-${ROOT}/_output/tools}/controller-gen-${CONTROLLER_GEN_VERSION}"
if [ ! -x "${TOOLS_BIN}/controller-gen" ]; then
  echo "Building controller-gen ${CONTROLLER_GEN_VERSION}" >&2
  GOBIN="${TOOLS_BIN}" GOFLAGS=-mod=mod go install "sigs.k8s.io/controller-tools/cmd/controller-gen@${CONTROLLER_GEN_VERSION}"
fi

out="${ROOT}/manifests/crd"
# Only the generated files: kustomization.yaml is hand-written.
rm -f "${out}"/*_*.yaml
"${TOOLS_BIN}/controller-gen" crd:maxDescLen=0 paths=./pkg/apis/... output:crd:dir="${out}"

go run ./hack/crdpostprocess "${out}"/*_*.yaml
