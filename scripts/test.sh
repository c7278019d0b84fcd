#!/usr/bin/env bash
# test.sh is make test: it installs what the tests need when it is missing
# (Debian's chromium and python3-websockets, as root), then runs gofmt, go
# vet, every module's tests under -race, the conformance suite and a smoke
# run of every fuzz target. A step that fails does not stop the others. The
# last line counts everything that ran: "N passed, M failed, K skipped".
set -uo pipefail
cd "$(dirname "$0")/.."
go=${GO:-go}
smoke=${SMOKETIME:-100000x}
state=.test
# The modules of their own besides the runtime's (the Makefile's SUBMODULES).
modules="interop browser bench cmd/wsechod cmd/wschat broker/nats"
rm -rf "$state"
mkdir -p "$state"
tally=$state/tally
"$go" build -o "$state/testsum" ./internal/tool/testsum || exit 1
ts() { "$state/testsum" -tally "$tally" "$@"; }

# The real clients the tests run: installed here on a fresh machine.
need_deps() {
	[ -x /usr/bin/chromium ] || return 0
	/usr/bin/python3 -c 'import websockets' 2>/dev/null || return 0
	return 1
}
if need_deps; then
	if [ "$(id -u)" = 0 ]; then
		echo "== installing the test dependencies (scripts/install-test-deps.sh)"
		bash scripts/install-test-deps.sh || echo "== the install failed: the browser and Python tests will say what is missing"
	else
		echo "== chromium or python3-websockets is missing and this is not root: run 'sudo scripts/install-test-deps.sh'"
	fi
fi

# check runs one check that is not a go test and counts it.
check() {
	local name=$1
	shift
	echo "== $name"
	if "$@"; then
		ts -add pass
	else
		ts -add fail
	fi
}

gofmt_clean() {
	local out
	out=$(gofmt -l . | grep -v '^bench/results/' || true)
	[ -z "$out" ] && return 0
	echo "gofmt would change:"
	echo "$out"
	return 1
}

vet_all() {
	local rc=0 m
	"$go" vet ./... || rc=1
	for m in $modules; do
		(cd "$m" && "$go" vet ./...) || rc=1
	done
	return $rc
}

# gotest DIR ARGS... runs go test -race in DIR and counts its tests.
gotest() {
	local dir=$1
	shift
	echo "== go test -race ($dir)"
	(cd "$dir" && "$go" test -race -count=1 -json "$@" 2>&1) | ts
}

check gofmt gofmt_clean
check "go vet" vet_all
gotest . $("$go" list ./... | grep -v /conformance$)
gotest conformance .
for m in $modules; do
	gotest "$m" ./...
done
echo "== fuzz smoke ($smoke per target)"
TESTSUM=$state/testsum TESTSUM_TALLY=$tally GO=$go scripts/fuzz.sh "$smoke"

"$state/testsum" -total "$tally"
