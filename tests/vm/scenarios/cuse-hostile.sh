# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# Hostile ioctls and I/O on the CUSE device (issue 10, point 7):
# tools/cuse-hostile.c sends wrong-size and unknown ioctls, absurd blob
# offsets and lengths, garbage state blobs, reads without a command, writes
# of 0 bytes, 8 KiB and 1 MiB, a second write before the read, SIGKILLs an
# opener in the middle of a key generation, and runs 200 open/close cycles
# while watching the daemon's /proc/PID/fd count and VmRSS.  After each:
# an error result (not a hang), the device still answers, and at the end
# the NV index written first still reads back.  One result per check.
#
# A hang is named: the tool prints "INFO start CHECK" before each check; if
# it has not finished after 150 s, that check FAILs as a hang and the
# daemon is SIGKILLed (which aborts the blocked request in the kernel).
# Debian's swtpm has no CUSE front: its row is one SKIP.
#
# Variant asan runs the same against the ASan+UBSan daemon that make check
# builds: any sanitizer report, leaks at exit included, is a FAIL named
# "sanitizer" (lib: vm_stage_asan, vt_asan_daemon, vt_asan_report).

VM_DESC="hostile ioctls and I/O on the CUSE device: errors, no hang, NV intact, no fd or RSS growth"
VM_DAEMON=guest
VM_LIBS="/usr/lib/x86_64-linux-gnu/libtpms.so.0"
VM_MODULES="fuse cuse"
VM_TOOLS="cuse-hostile"
VM_VARIANTS="plain asan"
VM_TIMEOUT=240
VM_COST=40

vm_stage() { vm_stage_asan "$1"; }

vm_host() { vm_cuse_host; }

vm_guest() {
	dev=/dev/vtpm-hostile
	vt_user_dir /tmp/st
	vt_asan_daemon
	# shellcheck disable=SC2086  # VT_SANDBOX is several words
	"$VT_DAEMON_BIN" cuse -n vtpm-hostile --tpm2 --tpmstate dir=/tmp/st --log file=/tmp/daemon.log -f $VT_SANDBOX \
		>/tmp/daemon.out 2>&1 &
	dpid=$!
	i=0
	while [ ! -c $dev ] && [ $i -lt 100 ] && kill -0 $dpid 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
	if [ -c $dev ]; then vt_pass cuse-device "$(ls -l $dev | tr -s ' ' | cut -d' ' -f1,5,6,10) after ${i}00 ms"
	else
		vt_fail cuse-device "no $dev: $(tail -n 3 /tmp/daemon.out /tmp/daemon.log 2>/dev/null | tr '\n' ' ' | cut -c1-300)"
		return 0
	fi
	t0=$(vt_now)
	cuse-hostile $dev $dpid >/tmp/hostile.out 2>&1 &
	tpid=$!
	i=0
	while kill -0 $tpid 2>/dev/null && [ $i -lt 1500 ]; do sleep 0.1; i=$((i + 1)); done
	hung=""
	if kill -0 $tpid 2>/dev/null; then
		hung=$(sed -n 's/^INFO start //p' /tmp/hostile.out | tail -n 1)
		kill -9 $dpid 2>/dev/null	# aborts the connection: the blocked client returns
		sleep 1
		kill -9 $tpid 2>/dev/null
	fi
	wait $tpid; rc=$?
	sed 's/^/    | /' /tmp/hostile.out
	vt_info "cuse-hostile exit status $rc after $(awk -v a="$t0" -v b="$(vt_now)" 'BEGIN { printf "%.1f", b - a }') s"
	vt_tool_results /tmp/hostile.out; got=$?
	if [ -n "$hung" ]; then
		vt_fail "$hung" "no answer within 150 s (hang); the daemon was SIGKILLed to free the client"
		return 0
	fi
	[ $got -eq 0 ] || vt_fail cuse-hostile "no result from the tool (rc=$rc): $(tail -n 2 /tmp/hostile.out | tr '\n' ' ')"
	if kill -0 $dpid 2>/dev/null; then
		vt_pass daemon-alive "the daemon still runs after all of it"
		kill $dpid
		i=0
		while kill -0 $dpid 2>/dev/null && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
		if kill -0 $dpid 2>/dev/null; then vt_fail daemon-exit "still running 5 s after SIGTERM"; kill -9 $dpid
		else wait $dpid; rc=$?
			if [ $rc -eq 0 ] && [ ! -e $dev ]; then vt_pass daemon-exit "exit 0 on SIGTERM, $dev removed"
			else vt_fail daemon-exit "exit status $rc on SIGTERM; node: $(ls $dev 2>&1)"; fi
		fi
		vt_asan_report
	else
		wait $dpid; rc=$?
		vt_fail daemon-alive "the daemon died (status $rc): $(tail -n 3 /tmp/daemon.out /tmp/daemon.log 2>/dev/null | tr '\n' ' ' | cut -c1-300)"
	fi
	return 0
}
