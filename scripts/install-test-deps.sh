#!/usr/bin/env bash
# install-test-deps.sh installs, from Debian's packages, the programs that
# the tests run and that nobody here wrote. It is idempotent: a dependency
# already there is left alone, and apt-get update runs at most once, only
# when something is missing. Run it as root (or with sudo).
#
#   scripts/install-test-deps.sh            install every dependency
#   scripts/install-test-deps.sh chromium   install only the ones named
#
# Add a dependency as a function named dep_NAME and list NAME in ALL.
set -euo pipefail

ALL=(chromium python)

# has_pkg reports whether a Debian package is installed.
has_pkg() {
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

apt_updated=0
# apt_install installs the Debian packages given that are not installed yet.
apt_install() {
	local missing=()
	local p
	for p in "$@"; do
		has_pkg "$p" || missing+=("$p")
	done
	if ((${#missing[@]} == 0)); then
		return 0
	fi
	if ((apt_updated == 0)); then
		apt-get update
		apt_updated=1
	fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

# dep_chromium: Debian's chromium at /usr/bin/chromium, which the browser
# test (browser/, github.com/chromedp/chromedp) runs headless. Fonts come
# with it as recommendations no longer installed here, so one is named.
dep_chromium() {
	apt_install chromium fonts-dejavu-core
	/usr/bin/chromium --version
}

# dep_python: Debian's python3 and its websockets library, for the interop
# test's interop/testdata/py_client.py. The tests run /usr/bin/python3, the
# interpreter that sees Debian's python3-* packages (a pyenv or venv python3
# earlier on PATH does not).
dep_python() {
	apt_install python3 python3-websockets
	/usr/bin/python3 -c 'import websockets; print("python3-websockets", websockets.__version__)'
}

main() {
	local deps=("$@")
	if ((${#deps[@]} == 0)); then
		deps=("${ALL[@]}")
	fi
	local d
	for d in "${deps[@]}"; do
		if ! declare -F "dep_$d" >/dev/null; then
			echo "install-test-deps.sh: unknown dependency '$d' (known: ${ALL[*]})" >&2
			exit 2
		fi
		"dep_$d"
	done
}

main "$@"
