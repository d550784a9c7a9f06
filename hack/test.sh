#!/usr/bin/env bash
# Runs the tests. With no argument: unit tests, then integration tests on a
# real kube-apiserver + etcd built from source (built first if missing).
# Integration tests never skip here: a missing binary fails the run.
#   hack/test.sh [unit|integration]
# The output is also kept in _output/test/<phase>.log; on failure the last
# lines printed name every failed test and package, so a log that is only
# read from its tail (CI) still says what broke.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "${ROOT}"
export GOTOOLCHAIN=local
what=${1:-all}
logdir="${ROOT}/_output/test"
mkdir -p "${logdir}"

# summarize LOG: each failed test with the messages its test files logged
# (under -v they come before the '--- FAIL' line, so they are collected per
# running test), panics, build errors and the failed packages.
summarize() {
  local log=$1
  echo "=== FAILED ($(basename "${log}"); full output in ${log})"
  awk '
    /^=== (RUN|CONT|NAME) / { cur = $3; after = 0; next }
    /^[ \t]*--- FAIL: / {
      print; if ($3 in msgs) printf "%s", msgs[$3]; after = 15; next
    }
    after > 0 && /^[ \t]+/ { print; after--; next }
    { after = 0 }
    /_test\.go:[0-9]+: / && cur != "" && length(msgs[cur]) < 6000 { msgs[cur] = msgs[cur] $0 "\n" }
    /^panic: |^FAIL|\[build failed\]|^# |\.go:[0-9]+:[0-9]+: / { print }
  ' "${log}" | tail -150
}

# run PHASE CMD...: runs CMD with its output teed to the phase log.
run() {
  local phase=$1 log="${logdir}/$1.log"
  shift
  if ! "$@" 2>&1 | tee "${log}"; then
    summarize "${log}"
    return 1
  fi
}

# Every package except the integration and e2e suites.
unit_pkgs=$(go list ./... | grep -v -e /test/integration/ -e /test/e2e)

if [[ ${what} == all || ${what} == unit ]]; then
  echo "=== unit tests"
  # shellcheck disable=SC2086
  run unit go test -race -count=1 ${unit_pkgs}
fi

if [[ ${what} == all || ${what} == integration ]]; then
  echo "=== integration tests (real kube-apiserver, etcd, kwok)"
  hack/local-cluster/build.sh
  eval "$(hack/local-cluster/env.sh)"
  export AGENT_SANDBOX_INTEGRATION=required
  # -v so the log shows each test running, not skipped.
  run integration go test -race -count=1 -timeout=30m -v ./test/integration/...
fi
