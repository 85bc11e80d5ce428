#!/bin/sh
# Runs every test suite and prints the summary line "N passed, N failed, N skipped".
#
# The contract with each suite (tests/README.md): one line per check on
# stdout, starting with PASS, FAIL, SKIP, XFAIL or XPASS, then the check's name.
#   XFAIL  a check that Debian's swtpm is known to fail and the test proved it
#          fails there (counted as passed: the test itself is proven);
#   XPASS  swtpm passed a check it was expected to fail: the test is wrong (failed).
# A suite that exits non-zero counts as one more failure.
#
# SUITES picks suites (default: all); BUILD names the build directory.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
SUITES=${SUITES:-"unit unit-asan abi static fuzz integration integration-asan vm libvirt"}
export BUILD

log=$(mktemp -d "${TMPDIR:-/tmp}/vtpm-check.XXXXXX")
trap 'rm -rf "$log"' EXIT

run_suite() {	# name, command...
	name=$1; shift
	echo "=== suite $name"
	"$@" > "$log/$name.out" 2>"$log/$name.err"
	rc=$?
	cat "$log/$name.out"
	if [ $rc -ne 0 ]; then
		echo "FAIL suite/$name: exited $rc; its stderr ends with:"
		tail -n 20 "$log/$name.err" | sed 's/^/    /'
	fi
}

run_units() {	# dir
	rc=0
	for t in "$1"/test_*; do
		[ -x "$t" ] || continue
		"$t" || rc=1
	done
	return $rc
}

# The integration checks that feed the daemon hostile input, against the
# ASan+UBSan build: any sanitizer report fails the suite, naming its file.
# (Fault-injection checks are left out: the shim's malloc is not ASan's.)
run_integration_asan() {
	reports=$(mktemp -d "${TMPDIR:-/tmp}/vtpm-asan.XXXXXX")
	ASAN_OPTIONS="log_path=$reports/asan:detect_leaks=0:abort_on_error=0" \
	UBSAN_OPTIONS="log_path=$reports/ubsan:print_stacktrace=1" \
		python3 tests/integration/run.py --build "$BUILD/asan" \
		-k 'hostile/*(vtpm-bridge)' -k 'cmdline/*(vtpm-bridge)' -k 'ctrl/*(vtpm-bridge)' \
		-k 'core/short-create*(vtpm-bridge)' -k 'core/locality*(vtpm-bridge)' \
		-k 'core/failed-start*(vtpm-bridge)' -k 'core/set-datafd*(vtpm-bridge)' \
		-k 'core/lock-storage-waits*(vtpm-bridge)' -k 'core/accept-burst*(vtpm-bridge)' \
		-k 'mssim/*(vtpm-bridge)' -k 'filestate/refuses*(vtpm-bridge)' \
		-k 'filestate/print-states*(vtpm-bridge)' -k 'filestate/zero*(vtpm-bridge)' \
		-k 'tamper/*(vtpm-bridge)' -k 'core/malformed-state*(vtpm-bridge)'
	rc=$?
	for r in "$reports"/*; do
		[ -e "$r" ] || continue
		echo "FAIL integration-asan/sanitizer-report: $r: $(grep -m1 -E 'ERROR|runtime error' "$r")"
		sed 's/^/    /' "$r" | head -n 40 >&2
		rc=1
	done
	rm -rf "$reports"
	return $rc
}

for s in $SUITES; do
	case $s in
	unit)		run_suite unit run_units "$BUILD/tests" ;;
	unit-asan)	run_suite unit-asan run_units "$BUILD/asan/tests" ;;
	abi)		run_suite abi "$BUILD/abi/abi_check" "${PTM_ABI_TSV:-kmod-headers/ptm-abi.tsv}" ;;
	static)		run_suite static tests/static.sh ;;
	fuzz)		run_suite fuzz make --no-print-directory BUILD="$BUILD" FUZZ_SECONDS="${FUZZ_SECONDS:-10}" fuzz ;;
	integration)	run_suite integration python3 tests/integration/run.py --build "$BUILD" ;;
	integration-asan) run_suite integration-asan run_integration_asan ;;
	vm)		run_suite vm tests/vm/run.sh --build "$BUILD" ;;
	libvirt)	run_suite libvirt tests/libvirt/run.sh --build "$BUILD" ;;
	*)		echo "FAIL suite/$s: unknown suite" ;;
	esac
done | tee "$log/all"

passed=$(grep -cE '^(PASS|XFAIL) ' "$log/all")
failed=$(grep -cE '^(FAIL|XPASS) ' "$log/all")
skipped=$(grep -cE '^SKIP ' "$log/all")
echo
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
