#!/usr/bin/env bash
# Runs the tests. With no argument: unit tests, then integration tests on a
# real kube-apiserver + etcd built from source (built first if missing).
# Integration tests never skip here: a missing binary fails the run.
#   hack/test.sh [unit|integration]
# The output is also kept in _output/test/<phase>.log; on failure the last
# lines printed name every failed test and package, so a log that is only
# read from its tail (CI) still says what broke. Failed tests run once more
# on their own: passing then marks them FLAKY (listed, not failing the run:
# a 2-core CI machine under -race shakes out timing that a second run does
# not repeat); failing twice fails the run.
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
    # A build failure prints "# PKG" and then its errors, which are not
    # always file:line ones (the linker, a full disk): keep a few lines.
    /^# / { print; build = 8; next }
    build > 0 && !/^(FAIL|ok  |=== )/ { print; build--; next }
    { build = 0 }
    /^panic: |^FAIL|\[build failed\]|\.go:[0-9]+:[0-9]+: / { print }
  ' "${log}" | tail -150
}

# failed_tests LOG: one line per failed package, "PKG<TAB>REGEX", REGEX
# matching its failed top-level tests ("." when none is named: a panic, a
# timeout or a build failure fails the whole package). go test prints each
# package's output in one piece, ended by its "ok"/"FAIL" line.
failed_tests() {
  awk -F'\t' '
    /^--- FAIL: / { split($0, f, " "); names = names (names == "" ? "" : "|") f[3] }
    /^(ok  |FAIL)\t/ {
      # "FAIL\tPKG [build failed]": the package is the first word.
      split($2, p, " ")
      if ($1 == "FAIL") print p[1] "\t" (names == "" ? "." : "^(" names ")$")
      names = ""
    }
  ' "$1"
}

# run PHASE CMD...: runs CMD with its output teed to the phase log. When it
# fails, the failed tests run once more, alone (package by package, only
# the tests that failed). A test that passes the second time is reported
# as FLAKY at the end of the log and does not fail the run; one that fails
# again does. CI reads only the tail of the log, so both lists come last.
run() {
  local phase=$1 log="${logdir}/$1.log"
  shift
  if "$@" 2>&1 | tee "${log}"; then
    return 0
  fi
  summarize "${log}"
  local failed flaky=() broken=() pkg regex
  failed=$(failed_tests "${log}")
  if [[ -z ${failed} ]]; then
    echo "=== ${phase}: the run failed but no failed package was found in its output"
    return 1
  fi
  : >"${logdir}/${phase}-rerun.log"
  while IFS=$'\t' read -r pkg regex; do
    echo "=== ${phase}: running again: ${pkg} -run '${regex}'"
    if go test -race -count=1 -timeout=30m -v -run "${regex}" "${pkg}" 2>&1 | tee -a "${logdir}/${phase}-rerun.log"; then
      flaky+=("${pkg} ${regex}")
    else
      broken+=("${pkg} ${regex}")
    fi
  done <<<"${failed}"
  if ((${#flaky[@]})); then
    echo "=== FLAKY (${phase}): failed, then passed when run again; each is a bug to fix:"
    printf '    %s\n' "${flaky[@]}"
  fi
  if ((${#broken[@]})); then
    summarize "${logdir}/${phase}-rerun.log"
    echo "=== FAILED TWICE (${phase}):"
    printf '    %s\n' "${broken[@]}"
    return 1
  fi
}

# Every package except the integration and e2e suites and the Helm chart's
# tests, which need built binaries (helm, kubectl) and run with the
# integration tests (and in make verify).
unit_pkgs=$(go list ./... | grep -v -e /test/integration/ -e /test/e2e -e /test/helm)

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
  # client-go's cache mutation detector: a test fails (panics) when code
  # writes into an object of an informer's cache. Cached objects share
  # maps, lists and strings (controller.CacheTransform), so such a write
  # would change other objects too; every write must start from a copy.
  export KUBE_CACHE_MUTATION_DETECTOR=true
  HELM_BIN=$(hack/helm.sh --path)
  export HELM_BIN
  # -v so the log shows each test running, not skipped.
  run integration go test -race -count=1 -timeout=30m -v ./test/integration/... ./test/helm/...
fi
