#!/usr/bin/env bash
# Runs golangci-lint (.golangci.yml) over the module. The linter is built
# from source through the Go module proxy at a pinned version into
# TOOLS_CACHE (default: the git-ignored _output/tools), like controller-gen
# in update-crds.sh: never a downloaded binary. The first build takes
# several CPU minutes; CI points TOOLS_CACHE into the home directory so a
# machine that keeps it builds once.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
export GOTOOLCHAIN=local

GOLANGCI_LINT_VERSION=v2.15.0
TOOLS_BIN="${TOOLS_CACHE:-${ROOT}/_output/tools}/golangci-lint-${GOLANGCI_LINT_VERSION}"
if [ ! -x "${TOOLS_BIN}/golangci-lint" ]; then
  echo "Building golangci-lint ${GOLANGCI_LINT_VERSION}" >&2
  GOBIN="${TOOLS_BIN}" GOFLAGS=-mod=mod go install "github.com/golangci/golangci-lint/v2/cmd/golangci-lint@${GOLANGCI_LINT_VERSION}"
fi

# --allow-serial-runners: another golangci-lint on the machine (a second
# checkout's make verify) makes this one wait for its lock instead of
# failing with "parallel golangci-lint is running".
"${TOOLS_BIN}/golangci-lint" run --allow-serial-runners "$@" ./...
