# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# Latency through the CUSE front (issue 10 point 8), everything in one guest:
# tools/tpm-lat.c times TPM2_GetRandom(16) and TPM2_PCR_Extend (sha256 bank,
# PCR 16, TPM_RS_PW) round trips, 20 warm-up commands then 500 each, on
#   echo     /dev/vtpm-echo, tools/cuse-echo.c: a single-threaded libfuse3
#            CUSE device answering canned responses of the real sizes, the
#            floor of the kernel's FUSE round trip;
#   min      /dev/vtpm-min, `cuse-echo --libtpms`: the same device answering
#            through libtpms in process, the floor of any CUSE daemon
#            running libtpms (the min-daemon);
#   ours     /dev/vtpm-lat, `vtpm-bridge cuse` (started with not-need-init,
#            startup-clear: no swtpm_ioctl or tpm2-tools in the image);
# and bench/tpmfloor.c, built for the guest here, gives the libtpms floor
# (TPMLIB_Process in process) in the same guest.  Three rounds of all of
# them, interleaved, so that drift of the host hits every subject alike.
#
# Guest checks CMD-SUBJECT (getrandom|pcrextend × echo|min|ours|libtpms): PASS
# with the tool's line of each round as the text, joined by " | " ("tpm-lat
# n=500 median_us=X p99_us=Y min_us=Z max_us=W"; tpmfloor's JSON line for
# libtpms), or FAIL with the first failure.  The harness prints a PASS
# without its text: bench/run.py (the "cuse" rows) reads the job's
# NAME.DAEMON/vm/results.raw.  Debian's swtpm has no CUSE: its row is one
# host-side SKIP.  In the default set: about 10 s.

VM_DESC="CUSE round trips in a guest: ours vs a CUSE echo device and in-process libtpms"
VM_DAEMON=guest
VM_MODULES="fuse cuse"
VM_LIBS="/usr/lib/x86_64-linux-gnu/libtpms.so.0"	# the daemon dlopen()s it
VM_TOOLS="tpm-lat cuse-echo:fuse3,libtpms"
VM_TIMEOUT=120
VM_COST=15

CL_N=500
CL_ROUNDS=3

vm_host() { vm_cuse_host; }

# vm_stage STAGE (host): bench/tpmfloor as /usr/bin/tpmfloor, built as
# bench/bench.mk builds it (its libraries: libtpms, libcrypto)
vm_stage() {
	# shellcheck disable=SC2046  # pkg-config: several flags
	if ! cc -O2 -std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE $(pkg-config --cflags libtpms) \
			-o "$1/usr/bin/tpmfloor" "$VM_HERE/../../bench/tpmfloor.c" \
			"$VM_HERE/../../bench/common.c" "$VM_HERE/../../bench/tpmmem.c" \
			$(pkg-config --libs libtpms) >"$1.tpmfloor.log" 2>&1; then
		VM_ERR="cc bench/tpmfloor.c failed: $(head -n 3 "$1.tpmfloor.log" | tr '\n' ' ')"
		return 1
	fi
	rm -f "$1.tpmfloor.log"
	vm_stage_deps "$1" "$1/usr/bin/tpmfloor"
}

# cl_wait_dev NAME PID: PASS|FAIL device-NAME once /dev/NAME exists
cl_wait_dev() {
	_i=0
	while [ ! -c "/dev/$1" ] && [ $_i -lt 100 ] && kill -0 "$2" 2>/dev/null; do
		sleep 0.1; _i=$((_i + 1))
	done
	if [ -c "/dev/$1" ]; then vt_pass "device-$1" "after $((_i * 100)) ms"; return 0; fi
	vt_fail "device-$1" "no /dev/$1: $(tail -n 3 "/tmp/$1.out" 2>/dev/null | tr '\n' ' ' | cut -c1-300)"
	return 1
}

# cl_lat CHECK DEVICE CMD: warm-up, then CL_N timed commands; the line
# goes to /tmp/CHECK.ok, a failure to /tmp/CHECK.fail
cl_lat() {
	if ! tpm-lat "$2" 20 "$3" >/tmp/lat.out 2>&1; then
		echo "warm-up: $(tail -n 1 /tmp/lat.out)" >>"/tmp/$1.fail"
		return
	fi
	if ! { tpm-lat "$2" $CL_N "$3" >/tmp/lat.out 2>&1 &&
	       grep -E "^tpm-lat n=$CL_N median_us=[0-9.]+ p99_us=[0-9.]+ min_us=[0-9.]+ max_us=[0-9.]+\$" \
		       /tmp/lat.out >>"/tmp/$1.ok"; }; then
		tail -n 1 /tmp/lat.out >>"/tmp/$1.fail"
	fi
}

# cl_floor: one round of tpmfloor, its n=CL_N line of each command to
# /tmp/CMD-libtpms.ok.  The untimed first command of a phase is no warm-up
# after the start: a 20-command phase of each comes first.
cl_floor() {
	if ! tpmfloor getrandom:20 pcrextend:20 getrandom:$CL_N pcrextend:$CL_N >/tmp/floor.out 2>&1; then
		for _c in getrandom pcrextend; do
			echo "tpmfloor: $(tail -n 1 /tmp/floor.out)" >>"/tmp/$_c-libtpms.fail"
		done
		return
	fi
	for _c in getrandom pcrextend; do
		grep "^{\"name\":\"$_c\",\"unit\":\"us\",\"n\":$CL_N," /tmp/floor.out >>"/tmp/$_c-libtpms.ok" ||
			echo "no $_c line of n=$CL_N: $(tail -n 1 /tmp/floor.out)" >>"/tmp/$_c-libtpms.fail"
	done
}

vm_guest() {
	cuse-echo vtpm-echo >/tmp/vtpm-echo.out 2>&1 &
	epid=$!
	cuse-echo --libtpms vtpm-min >/tmp/vtpm-min.out 2>&1 &
	mpid=$!
	vt_user_dir /tmp/st
	# shellcheck disable=SC2086  # VT_SANDBOX is several words
	"$VT_DAEMON_BIN" cuse -n vtpm-lat --tpm2 --tpmstate dir=/tmp/st --flags not-need-init,startup-clear \
		--log file=/tmp/daemon.log -f $VT_SANDBOX >/tmp/vtpm-lat.out 2>&1 &
	dpid=$!
	cl_wait_dev vtpm-echo $epid && cl_wait_dev vtpm-min $mpid && cl_wait_dev vtpm-lat $dpid ||
		return 0

	r=0
	while [ $r -lt $CL_ROUNDS ]; do
		for c in getrandom pcrextend; do
			cl_lat "$c-echo" /dev/vtpm-echo $c
			cl_lat "$c-min" /dev/vtpm-min $c
			cl_lat "$c-ours" /dev/vtpm-lat $c
		done
		cl_floor
		r=$((r + 1))
	done
	for c in getrandom pcrextend; do
		for s in echo min ours libtpms; do
			if [ -s "/tmp/$c-$s.fail" ]; then vt_fail "$c-$s" "$(head -n 1 "/tmp/$c-$s.fail")"
			else vt_pass "$c-$s" "$(sed ':a;N;$!ba;s/\n/ | /g' "/tmp/$c-$s.ok")"; fi
		done
	done

	kill $epid $mpid
	kill -TERM $dpid
	if wait $dpid; then vt_pass daemon-exit
	else vt_fail daemon-exit "status $?: $(tail -n 3 /tmp/daemon.log /tmp/vtpm-lat.out 2>/dev/null | tr '\n' ' ' | cut -c1-300)"; fi
	return 0
}
