# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# The kernel's own TPM 2.0 selftests (tools/testing/selftests/tpm2 of
# Debian's linux-source-6.1: tpm2.py, tpm2_tests.py) against our CUSE
# device named tpm0, in a guest with no other TPM: the proof that it
# behaves like a kernel TPM device (seal/unseal with auth and policy, short
# commands, partial reads, a second write before the read, O_NONBLOCK +
# poll).  SmokeTest and AsyncTest open /dev/tpm0 and give one result per
# test method.  SpaceTest needs /dev/tpmrm0 (the kernel's resource
# manager), which a CUSE device does not have: it is a SKIP with that
# reason, not run.  Recipe: shared/lab/vm/payloads/tpm2-selftests.
#
# The tests are not in the repository.  The host stages them from
# $VTPM_VM_CACHE/kselftest-tpm2/<version>/tpm2: the first run downloads
# linux-source-6.1 (about 140 MB, apt-get download) and keeps only that
# directory; delete it to fetch the current one.  Python: Debian's python3
# and only the stdlib files the tests import (found on the host by
# importing them), with their __pycache__.
#
# The daemon: `vtpm-bridge cuse -n tpm0 --tpm2 --flags
# not-need-init,startup-clear` (the kernel's driver would have sent
# TPM2_Startup; the tests do not).  Debian's swtpm has no CUSE front: its
# row is one SKIP.

VM_DESC="kernel tpm2 selftests (SmokeTest, AsyncTest) on the CUSE device /dev/tpm0"
VM_DAEMON=guest
VM_BINS="/usr/bin/python3"
VM_LIBS="/usr/lib/x86_64-linux-gnu/libtpms.so.0"
VM_MODULES="fuse cuse"
VM_MEM=768
VM_TIMEOUT=300
VM_COST=45

KST_CLASSES="SmokeTest AsyncTest"

vm_host() { vm_cuse_host; }

# kst_fetch: print the cached selftests directory; on the first run
# download linux-source-6.1 and keep only tools/testing/selftests/tpm2
kst_fetch() {
	local cache=$VM_CACHE/kselftest-tpm2 have tmp deb ver lockfd
	mkdir -p "$cache" || { VM_ERR="cannot create $cache"; return 1; }
	exec {lockfd}>"$cache/.lock"
	flock -w 900 "$lockfd" || { VM_ERR="$cache/.lock stays locked"; return 1; }
	have=$(ls -1d "$cache"/*/tpm2 2>/dev/null | sort -V | tail -n 1)
	if [ -z "$have" ]; then
		rm -rf "$cache"/.fetch.*
		tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
		echo "cuse-selftests: apt-get download linux-source-6.1 (about 140 MB, first run only)" >&2
		if ! (cd "$tmp" && apt-get download -q linux-source-6.1) >"$tmp/apt.log" 2>&1; then
			apt-get update -q >>"$tmp/apt.log" 2>&1
			(cd "$tmp" && apt-get download -q linux-source-6.1) >>"$tmp/apt.log" 2>&1
		fi
		deb=$(ls "$tmp"/linux-source-6.1_*.deb 2>/dev/null | head -n 1)
		if [ -z "$deb" ]; then
			VM_ERR="apt-get download linux-source-6.1 failed: $(grep -E '^E:' "$tmp/apt.log" | head -n 1)"
			rm -rf "$tmp"; exec {lockfd}>&-; return 1
		fi
		ver=$(dpkg-deb -f "$deb" Version)
		dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/src/linux-source-6.1.tar.xz | xz -dc -T0 |
			tar -C "$tmp" -x --wildcards '*/tools/testing/selftests/tpm2/*'
		if [ ! -f "$tmp/linux-source-6.1/tools/testing/selftests/tpm2/tpm2_tests.py" ]; then
			VM_ERR="no tools/testing/selftests/tpm2/tpm2_tests.py in linux-source-6.1 $ver"
			rm -rf "$tmp"; exec {lockfd}>&-; return 1
		fi
		echo "linux-source-6.1 $ver (Debian), tools/testing/selftests/tpm2" \
			>"$tmp/linux-source-6.1/tools/testing/selftests/tpm2/SOURCE"
		mkdir -p "$cache/$ver"
		mv -T "$tmp/linux-source-6.1/tools/testing/selftests/tpm2" "$cache/$ver/tpm2"
		rm -rf "$tmp"
		have=$cache/$ver/tpm2
	fi
	exec {lockfd}>&-
	echo "$have"
}

# vm_stage STAGE (host, initramfs build): the selftests in /vm/kst, and the
# stdlib files they import
vm_stage() {
	local s=$1 kst f pyc list
	kst=$(kst_fetch) || return 1
	mkdir -p "$s/vm/kst"
	cp -a "$kst/." "$s/vm/kst/"
	# Debian's python3 by its path (not a pyenv or venv one earlier on PATH)
	list=$(cd "$kst" && /usr/bin/python3 -B -c '
import io, os, sys, runpy
import locale, gettext, difflib, pprint, traceback, linecache, tokenize, signal, fnmatch
# a real run (it fails here, without /dev/tpm0) loads what the guest run loads
sys.argv = ["python3 -m unittest", "-v", "tpm2_tests.SmokeTest", "tpm2_tests.AsyncTest"]
out, err = sys.stdout, sys.stderr
sys.stdout = sys.stderr = io.StringIO()
try:
    runpy.run_module("unittest", run_name="__main__", alter_sys=True)
except BaseException:
    pass
sys.stdout, sys.stderr = out, err
for m in list(sys.modules.values()):
    f = getattr(m, "__file__", None)
    if f and f.startswith("/usr/lib/python3"):
        print(f)') || { VM_ERR="importing tpm2_tests on the host failed"; return 1; }
	# python3 -m unittest runs unittest/__main__.py (gone from sys.modules
	# after runpy); lib-dynload must exist
	list="$list /usr/lib/python3.11/unittest/__main__.py"
	mkdir -p "$s/usr/lib/python3.11/lib-dynload"
	for f in $list; do
		case $f in
		*.so) vm_stage_lib "$s" "$f" && vm_stage_deps "$s" "$f" || return 1 ;;
		*) install -D -m 0644 "$f" "$s$f" || return 1
		   pyc=$(dirname "$f")/__pycache__/$(basename "$f" .py).cpython-311.pyc
		   if [ -f "$pyc" ]; then install -D -m 0644 "$pyc" "$s$pyc" || return 1; fi ;;
		esac
	done
	return 0
}

vm_guest() {
	vt_info "selftests: $(cat /vm/kst/SOURCE)"
	if [ -e /dev/tpm0 ] || [ -e /dev/tpmrm0 ]; then
		vt_fail no-other-tpm "a TPM exists before the daemon starts: $(ls /dev/tpm* | tr '\n' ' ')"
		return 0
	fi
	vt_pass no-other-tpm "no /dev/tpm0 or /dev/tpmrm0 before the daemon starts"
	mkdir -p /tmp/st
	t0=$(vt_now)
	"$VT_DAEMON_BIN" cuse -n tpm0 --tpm2 --tpmstate dir=/tmp/st --flags not-need-init,startup-clear \
		--log file=/tmp/daemon.log -f >/tmp/daemon.out 2>&1 &
	dpid=$!
	i=0
	while [ ! -c /dev/tpm0 ] && [ $i -lt 100 ] && kill -0 $dpid 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
	if [ -c /dev/tpm0 ]; then vt_pass cuse-tpm0 "$(ls -l /dev/tpm0 | tr -s ' ' | cut -d' ' -f1,5,6,10) after ${i}00 ms"
	else
		vt_fail cuse-tpm0 "no /dev/tpm0: $(tail -n 3 /tmp/daemon.out /tmp/daemon.log 2>/dev/null | tr '\n' ' ' | cut -c1-300)"
		return 0
	fi
	vt_run python3 python3 -c 'import sys, hashlib, socket, fcntl, select; print(sys.version)'

	# the tests write their logs (SmokeTest.log, ...) into the current directory
	cp -a /vm/kst /tmp/kst && cd /tmp/kst || return 0
	# every test method of the classes, "CLASS.METHOD rm" when it (or its
	# class's setUp) opens a space (FLAG_SPACE: /dev/tpmrm0), else "... dev"
	python3 -c '
import inspect, sys, unittest, tpm2_tests
for cname in sys.argv[1:]:
    cls = getattr(tpm2_tests, cname)
    setup = inspect.getsource(cls.setUp) if "setUp" in cls.__dict__ else ""
    for m in unittest.TestLoader().getTestCaseNames(cls):
        src = setup + inspect.getsource(getattr(cls, m))
        print("%s.%s %s" % (cname, m, "rm" if "FLAG_SPACE" in src else "dev"))
' $KST_CLASSES SpaceTest >/tmp/kst-methods 2>/tmp/kst-methods.err ||
		vt_fail kst-methods "listing the test methods failed: $(tail -n 1 /tmp/kst-methods.err)"
	for cls in $KST_CLASSES; do
		run=$(sed -n "s/^\($cls\.[A-Za-z0-9_]*\) dev\$/tpm2_tests.\1/p" /tmp/kst-methods | tr '\n' ' ')
		[ -n "$run" ] || { vt_fail "$cls" "no test method found"; continue; }
		t1=$(vt_now)
		# shellcheck disable=SC2086 # one argument per method
		python3 -m unittest -v $run >"/tmp/kst-$cls.out" 2>&1
		rc=$?
		sed 's/^/    | /' "/tmp/kst-$cls.out"
		n=0
		# "test_x (tpm2_tests.SmokeTest.test_x) ... ok" (3.11)
		sed -n 's/^\(test_[A-Za-z0-9_]*\) (tpm2_tests\.\([A-Za-z0-9_]*\)[.A-Za-z0-9_]*) \.\.\. \(.*\)$/\2.\1 \3/p' \
			"/tmp/kst-$cls.out" >"/tmp/kst-$cls.res"
		while read -r m res; do
			n=$((n + 1))
			case $res in
			ok) vt_pass "$m" ;;
			skipped*) vt_skip "$m" "$res" ;;
			*) vt_fail "$m" "$res: $(grep -A 12 "^[A-Z]*: ${m#*.} " "/tmp/kst-$cls.out" | grep -E 'Error|assert|Exception' | tail -n 1)" ;;
			esac
		done <"/tmp/kst-$cls.res"
		summary=$(grep -E '^Ran |^OK|^FAILED' "/tmp/kst-$cls.out" | tr '\n' ' ')
		vt_info "$cls: $summary(exit $rc, $(awk -v a="$t1" -v b="$(vt_now)" 'BEGIN { printf "%.1f", b - a }') s)"
		if [ $n -eq 0 ]; then
			vt_fail "$cls" "no test method ran (exit $rc): $(grep . "/tmp/kst-$cls.out" | tail -n 1)"
		fi
	done
	for m in $(sed -n 's/^\([A-Za-z0-9_.]*\) rm$/\1/p' /tmp/kst-methods); do
		vt_skip "$m" "opens /dev/tpmrm0 (the kernel's TPM resource manager, FLAG_SPACE); a CUSE device has no tpmrm node"
	done
	# (the logs' "DEBUG:" prefix would read as a kernel BUG: to the console check)
	for f in *.log; do [ -s "$f" ] && vt_info "$f: $(tail -n 3 "$f" | sed 's/^DEBUG://' | tr '\n' '|' | cut -c1-300)"; done

	kill $dpid
	i=0
	while { kill -0 $dpid 2>/dev/null || [ -e /dev/tpm0 ]; } && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	if kill -0 $dpid 2>/dev/null; then vt_fail daemon-exit "still running 5 s after SIGTERM"; kill -9 $dpid
	elif [ -e /dev/tpm0 ]; then vt_fail daemon-exit "the daemon exited but /dev/tpm0 is still there"
	else wait $dpid; rc=$?
		if [ $rc -eq 0 ]; then vt_pass daemon-exit "exit 0 on SIGTERM, /dev/tpm0 removed"
		else vt_fail daemon-exit "exit status $rc on SIGTERM: $(tail -n 1 /tmp/daemon.out)"; fi
	fi
	return 0
}
