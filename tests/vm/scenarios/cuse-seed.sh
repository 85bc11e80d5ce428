# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# The seed's client: tools/cuse-seed.c drives `vtpm-bridge cuse` in the
# guest in the sequence of QEMU's 2015 "cuse-tpm" backend proposal (probe,
# INIT, locality changes mid-stream, write()/read() commands, a cancel
# during an RSA key generation, state blobs of every type out and back in,
# one of them an exact multiple of the chunk, SHUTDOWN at close).  One
# result per line the tool prints, then the daemon must exit 0 and its node
# must go.  Debian's swtpm has no CUSE front: its row is one SKIP.

VM_DESC="QEMU cuse-tpm (2015) client sequence against the CUSE device"
VM_DAEMON=guest
VM_MODULES="fuse cuse"
VM_LIBS="/usr/lib/x86_64-linux-gnu/libtpms.so.0"
VM_TOOLS="cuse-seed"
VM_TIMEOUT=240
VM_COST=30

vm_host() { vm_cuse_host; }

# cuse_start NAME [ARGS...]: the daemon in the foreground, in the
# background of this shell; sets CUSE_PID; PASS/FAIL device-NAME
cuse_start() {
	_nm=$1; shift
	rm -rf "/tmp/st-$_nm"; vt_user_dir "/tmp/st-$_nm"
	# shellcheck disable=SC2086  # VT_SANDBOX is several words
	"$VT_DAEMON_BIN" cuse -n "$_nm" --tpm2 --tpmstate "dir=/tmp/st-$_nm" \
		--log "file=/tmp/daemon-$_nm.log" -f $VT_SANDBOX "$@" >"/tmp/daemon-$_nm.out" 2>&1 &
	CUSE_PID=$!
	_i=0
	while [ ! -c "/dev/$_nm" ] && [ $_i -lt 100 ] && kill -0 $CUSE_PID 2>/dev/null; do
		sleep 0.1; _i=$((_i + 1))
	done
	if [ -c "/dev/$_nm" ]; then
		vt_pass "device-$_nm" "$(ls -l "/dev/$_nm" | tr -s ' ' | cut -d' ' -f1,5,6,10) after ${_i}00 ms"
		return 0
	fi
	vt_fail "device-$_nm" "no /dev/$_nm after ${_i}00 ms$(kill -0 $CUSE_PID 2>/dev/null || echo ' (daemon exited)'): $(tail -n 3 "/tmp/daemon-$_nm.out" "/tmp/daemon-$_nm.log" 2>/dev/null | tr '\n' ' ' | cut -c1-300)"
	kill -9 $CUSE_PID 2>/dev/null
	return 1
}

# cuse_wait_exit NAME CHECK: after PTM_SHUTDOWN the daemon exits 0 and the
# node goes (within 5 s)
cuse_wait_exit() {
	_i=0
	while { kill -0 $CUSE_PID 2>/dev/null || [ -e "/dev/$1" ]; } && [ $_i -lt 50 ]; do
		sleep 0.1; _i=$((_i + 1))
	done
	if kill -0 $CUSE_PID 2>/dev/null; then
		vt_fail "$2" "the daemon still runs 5 s after PTM_SHUTDOWN"
		kill -9 $CUSE_PID 2>/dev/null
		return 1
	fi
	wait $CUSE_PID; _rc=$?
	if [ $_rc -ne 0 ]; then vt_fail "$2" "the daemon exited with status $_rc: $(tail -n 2 "/tmp/daemon-$1.out" | tr '\n' ' ')"
	elif [ -e "/dev/$1" ]; then vt_fail "$2" "the daemon exited but /dev/$1 is still there"
	else vt_pass "$2" "exit 0, /dev/$1 removed, ${_i}00 ms after PTM_SHUTDOWN"; fi
}

vm_guest() {
	cuse_start vtpm-seed || return 0
	t0=$(vt_now)
	timeout 180 cuse-seed /dev/vtpm-seed >/tmp/seed.out 2>&1
	rc=$?
	sed 's/^/    | /' /tmp/seed.out
	vt_info "cuse-seed exit status $rc after $(awk -v a="$t0" -v b="$(vt_now)" 'BEGIN { print b - a }') s"
	if ! vt_tool_results /tmp/seed.out; then
		vt_fail cuse-seed "no result from the tool (rc=$rc): $(tail -n 2 /tmp/seed.out | tr '\n' ' ')"
	elif [ $rc -ge 124 ]; then
		vt_fail cuse-seed "the tool did not finish (rc=$rc, timeout 180 s): last line $(tail -n 1 /tmp/seed.out)"
	fi
	cuse_wait_exit vtpm-seed daemon-exit
	vt_info "daemon log: $(tail -n 5 /tmp/daemon-vtpm-seed.log 2>/dev/null | tr '\n' '|' | cut -c1-400)"
	return 0
}
