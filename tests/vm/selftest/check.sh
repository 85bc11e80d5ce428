#!/bin/sh
# Proves the harness can fail: runs the selftest scenarios (a hang, a panic,
# failing checks, an early exit, a silent guest, a missing daemon) and checks
# that each outcome is reported as expected.txt says.  Not part of make check.
set -u
here=$(cd "$(dirname "$0")" && pwd)
out=$(mktemp /tmp/vtpm-vm-selftest.XXXXXX)
"$here/../run.sh" --scenarios "$here/scenarios" --build /nonexistent "$@" >"$out"
rc=$?
bad=0
if [ $rc -eq 0 ]; then echo "FAIL vm-selftest/exit-status: run.sh exited 0"; bad=1
else echo "PASS vm-selftest/exit-status"; fi
n=0
grep -v '^#' "$here/expected.txt" | while IFS= read -r re; do
	n=$((n + 1))
	if grep -qE "$re" "$out"; then echo "PASS vm-selftest/expect-$n"
	else echo "FAIL vm-selftest/expect-$n: no line matches /$re/"; fi
done
grep -v '^#' "$here/expected.txt" | while IFS= read -r re; do
	grep -qE "$re" "$out" || exit 1
done || bad=1
echo "(run.sh output: $out)"
exit $bad
