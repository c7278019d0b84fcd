#!/usr/bin/env bash
# Runs every Fuzz target of the module for a budget: a duration (60s) or a
# count of executions (50000x).
#
#   scripts/fuzz.sh 60s
#
# A duration budget can end with a spurious "context deadline exceeded"
# failure from Go's fuzz coordinator when the time runs out while a worker
# is busy (golang/go#75804, fixed in Go 1.27): a run that fails that way
# without writing a failing input is run once more. A count budget has no
# deadline to race; make test uses one.
set -euo pipefail
budget=${1:?usage: scripts/fuzz.sh DURATION|COUNTx}
go=${GO:-go}
log=$(mktemp)
trap 'rm -f "$log"' EXIT

run() {
	"$go" test -run='^$' -fuzz="^$2\$" -fuzztime="$budget" "$1" 2>&1 | tee "$log"
	return "${PIPESTATUS[0]}"
}

# count adds a target's outcome to make test's tally, when there is one
# (scripts/test.sh sets TESTSUM and TESTSUM_TALLY).
count() {
	if [ -n "${TESTSUM:-}" ]; then
		"$TESTSUM" -tally "$TESTSUM_TALLY" -add "$1"
	fi
}

failed=0
for pkg in $("$go" list ./...); do
	for f in $("$go" test -list '^Fuzz' "$pkg" | grep '^Fuzz' || true); do
		echo "== fuzz $pkg $f ($budget)"
		if run "$pkg" "$f" >/dev/null; then
			tail -n 2 "$log"
			count pass
			continue
		fi
		if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
			echo "== $f: the fuzz coordinator's deadline race (golang/go#75804), no failing input: running it again"
			if run "$pkg" "$f" >/dev/null; then
				tail -n 2 "$log"
				count pass
				continue
			fi
		fi
		cat "$log"
		count fail
		failed=1
	done
done
exit $failed
