#!/bin/sh
# Static and dynamic analysis of our code, as result lines:
#   cppcheck over bridge/ emulator/ tests/unit tests/fuzz tests/fault, and over the bench
#   and guest tools; clang and gcc -Werror builds of all of them;
#   valgrind (memcheck) over every unit test;
#   valgrind over the daemon serving a short session of real peers.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
out=$(mktemp -d "${TMPDIR:-/tmp}/vtpm-static.XXXXXX")
trap 'rm -rf "$out"' EXIT

cppcheck="cppcheck --quiet --enable=warning,style,performance,portability --inline-suppr
	--error-exitcode=1 -D_GNU_SOURCE"
if $cppcheck -Ibridge -Iemulator -Ikmod-headers \
	bridge emulator tests/unit tests/fuzz tests/fault > "$out/cppcheck" 2>&1; then
	echo "PASS static/cppcheck"
else
	echo "FAIL static/cppcheck: $(head -n 3 "$out/cppcheck" | tr '\n' ' ')"
fi

# bench/out holds the bench's scratch copies, not our sources
if $cppcheck -Ibench -i bench/out bench tests/vm/tools > "$out/cppcheck-tools" 2>&1; then
	echo "PASS static/cppcheck-tools"
else
	echo "FAIL static/cppcheck-tools: $(head -n 3 "$out/cppcheck-tools" | tr '\n' ' ')"
fi

# The code is clean with clang's warnings as well as gcc's (-Werror).
if make --no-print-directory CC=clang BUILD="$BUILD/clang" all unit > "$out/clang" 2>&1; then
	echo "PASS static/clang-build"
else
	echo "FAIL static/clang-build: $(grep -m 3 -E 'error|warning' "$out/clang" | tr '\n' ' ')"
fi
tools_ok=1
make --no-print-directory -f bench/bench.mk BUILD="$BUILD" tools-cc > "$out/tools" 2>&1 || tools_ok=0
for c in gcc clang; do
	for t in tests/vm/tools/*.c; do
		# a scenario's VM_TOOLS names a tool's libraries as NAME:PKG[,PKG]
		n=$(basename "$t" .c)
		pkgs=$(grep -ho "[\" ]$n:[a-z0-9,]*" tests/vm/scenarios/*.sh | head -n 1 | cut -d: -f2 | tr , ' ')
		# shellcheck disable=SC2046  # pkg-config's flags are words
		$c -std=c11 -D_GNU_SOURCE -O2 -Wall -Wextra -Werror -o "$out/guest-tool" "$t" \
			$([ -z "$pkgs" ] || pkg-config --cflags --libs $pkgs) >> "$out/tools" 2>&1 || tools_ok=0
	done
done
if [ $tools_ok -eq 1 ]; then
	echo "PASS static/tools-build (bench and guest tools, gcc and clang, -Werror)"
else
	echo "FAIL static/tools-build: $(grep -m 3 -E 'error|warning' "$out/tools" | tr '\n' ' ')"
fi

vg="valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect"
for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	name=${t##*/}
	if $vg "$t" > "$out/$name" 2>&1; then
		echo "PASS static/valgrind-$name"
	else
		echo "FAIL static/valgrind-$name: $(grep -m 3 '==' "$out/$name" | tr '\n' ' ')"
	fi
done

# The daemon under valgrind: INIT, commands from tpm2-tools, key generation on
# the worker thread, save/load of blobs, STOP, SHUTDOWN.  Without the seccomp
# filter: valgrind has no seccomp() (it answers ENOSYS, so no filter can be made).
d="$out/daemon"
mkdir -p "$d/state"
$vg --log-file="$d/vg.log" "$BUILD/vtpm-bridge" socket --tpm2 --tpmstate "dir=$d/state" \
	--ctrl "type=unixio,path=$d/sock.ctrl" --server "type=unixio,path=$d/sock" --seccomp action=none &
pid=$!
i=0
while [ ! -S "$d/sock.ctrl" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
tcti="swtpm:path=$d/sock"
ok=1
{
	swtpm_ioctl --unix "$d/sock.ctrl" -i &&
	tpm2_startup -c -T "$tcti" &&
	tpm2_getrandom -T "$tcti" 16 --hex &&
	tpm2_createprimary -T "$tcti" -C o -G ecc256 -c "$d/p.ctx" &&
	swtpm_ioctl --unix "$d/sock.ctrl" --save volatile "$d/vol" &&
	swtpm_ioctl --unix "$d/sock.ctrl" --save permanent "$d/perm" &&
	swtpm_ioctl --unix "$d/sock.ctrl" --stop &&
	swtpm_ioctl --unix "$d/sock.ctrl" --load permanent "$d/perm" &&
	swtpm_ioctl --unix "$d/sock.ctrl" --load volatile "$d/vol" &&
	swtpm_ioctl --unix "$d/sock.ctrl" -i &&
	tpm2_getrandom -T "$tcti" 8 --hex &&
	swtpm_ioctl --unix "$d/sock.ctrl" -s
} > "$d/session" 2>&1 || ok=0
wait $pid
rc=$?
if [ $ok -eq 1 ] && [ $rc -eq 0 ] && [ ! -s "$d/vg.log" ]; then
	echo "PASS static/valgrind-daemon"
else
	echo "FAIL static/valgrind-daemon: session ok=$ok exit=$rc; $(head -c 600 "$d/vg.log" "$d/session" | tr '\n' ' ')"
fi
