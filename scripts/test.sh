#!/usr/bin/env bash
# Sets up what the tests need, builds in Release and runs every test project.
# Prints "N passed, N failed" (summed over all test projects) as its last line.
set -uo pipefail
cd "$(dirname "$0")/.."

./scripts/install-deps.sh || exit 1

results=artifacts/test-results
rm -rf "$results"
mkdir -p "$results"
# -m:1: one test project at a time; the integration suites start many processes each and share 2 cores.
dotnet test Hybrid.sln -c Release -m:1 --logger "trx" --results-directory "$results" "$@"
status=$?

passed=0; failed=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  p=$(echo "$counters" | sed -n 's/.* passed="\([0-9]*\)".*/\1/p'); f=$(echo "$counters" | sed -n 's/.* failed="\([0-9]*\)".*/\1/p')
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0}))
done
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi  # a build or runner failure counts as a failure
echo "$passed passed, $failed failed"
exit "$status"
