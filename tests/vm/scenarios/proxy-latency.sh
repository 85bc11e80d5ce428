# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# Latency through the vtpm-proxy front (issue 11 point 7), everything in one
# guest: tools/tpm-lat.c times TPM2_GetRandom(16) and TPM2_PCR_Extend (sha256
# bank, PCR 16, TPM_RS_PW) round trips, 20 warm-up commands then 500 each, on
# /dev/tpmrmN (the kernel's resource manager) and on /dev/tpmN, for
#   echo     tools/proxy-echo.c: canned responses of the real sizes for the
#            two timed commands (libtpms only for the kernel's registration
#            commands), one read() and one write() each: the kernel's own
#            cost, the floor of any vtpm-proxy daemon;
#   min      `proxy-echo --libtpms`: the same loop running every command
#            through libtpms in process (the min-daemon);
#   swtpm    Debian's swtpm 0.7.1, `swtpm chardev --vtpm-proxy --tpm2
#            --tpmstate dir=D`, staged into this image (VM_BINS);
#   ours     `vtpm-bridge chardev --vtpm-proxy --tpm2 --tpmstate dir=D`.
# Each command costs at least one 0.7-1 ms poll sleep in the kernel
# (shared/spec/vtpm-proxy.md section 6); through tpmrm these two commands
# add no context round trips (no transient objects, no saved sessions;
# section 7).  A daemon that answers within that sleep adds nothing.
#
# One vtpm-proxy TPM at a time: each subject is started, measured (tpmrm
# then tpm, GetRandom then PCR_Extend) and stopped (SIGTERM) before the
# next starts, so every subject gets the same device (normally tpm0, no
# other TPM in the guest), the same kernel path and nothing beside it (no
# idle TPM that the kernel's hwrng could pick).  Three rounds, interleaved
# (echo min swtpm ours; ours swtpm min echo; swtpm ours echo min), so that
# drift of the host hits every subject alike and neither daemon always
# runs right after the other.  Both daemons run in the
# vtpm-bridge job's guest; the swtpm job is one host-side SKIP.
#
# Guest checks CMD-NODE-SUBJECT (getrandom|pcrextend × tpmrm|tpm ×
# echo|min|swtpm|ours): PASS with tpm-lat's line of each round as the text,
# joined by " | " ("tpm-lat n=500 median_us=X p99_us=Y min_us=Z max_us=W"),
# or FAIL with the first failure; start-SUBJECT (each round: the device
# line, then both nodes within 30 s) and exit-SUBJECT (each round: exit 0
# on SIGTERM, both nodes gone).  The harness prints a PASS without its
# text: bench/run.py (the "proxy" rows) reads the job's
# proxy-latency.vtpm-bridge/vm/results.raw.  About 55 s (quiet host; 75-120 s loaded).

VM_DESC="vtpm-proxy round trips in a guest: ours vs Debian's swtpm (same guest, interleaved) vs a vtpm-proxy echo"
VM_DAEMON=guest
VM_BINS="/usr/bin/swtpm"
VM_LIBS="/usr/lib/x86_64-linux-gnu/libtpms.so.0"	# our daemon dlopen()s it
VM_MODULES="tpm_vtpm_proxy"
VM_TOOLS="tpm-lat proxy-echo:libtpms"
VM_TIMEOUT=300
VM_COST=60

PL_N=500
PL_ROUNDS=3
PL_SUBJECTS="echo min swtpm ours"

vm_host() {
	if [ "$VM_DAEMON_NAME" = swtpm ]; then
		vm_result SKIP latency "Debian's swtpm is measured in the vtpm-bridge job's guest, beside ours (checks *-swtpm there)"
		return 0
	fi
	vm_qemu_start vm
	vm_qemu_wait vm
	vm_guest_results vm
}

# pl_exec SUBJECT: become that subject's process (stdout: its device line)
pl_exec() {
	# shellcheck disable=SC2086  # the *SANDBOX options are several words
	case $1 in
	echo) exec proxy-echo ;;
	min) exec proxy-echo --libtpms ;;
	swtpm) exec /usr/bin/swtpm chardev --vtpm-proxy --tpm2 --tpmstate dir=/tmp/st-swtpm $VT_SWTPM_SANDBOX ;;
	ours) exec "$VT_DAEMON_BIN" chardev --vtpm-proxy --tpm2 --tpmstate dir=/tmp/st-ours $VT_SANDBOX ;;
	esac
}

# pl_start SUBJECT: start it in the background (PL_PID), wait for its
# "New TPM device" line (PL_TPM) and then for /dev/tpmN and /dev/tpmrmN (swtpm
# prints the line before the kernel has made them), 30 s in all.  Returns 1
# (the process killed) with the reason in /tmp/start-SUBJECT.fail.
pl_start() {
	pl_exec "$1" >"/tmp/$1.out" 2>>"/tmp/$1.err" &
	PL_PID=$! PL_TPM=""
	_t0=$(vt_now) _i=0
	while [ $_i -lt 600 ] && vt_alive $PL_PID; do
		[ -n "$PL_TPM" ] || PL_TPM=$(sed -n \
			's|^New TPM device: /dev/tpm\([0-9][0-9]*\) (major/minor = [0-9]*/[0-9]*)$|\1|p' \
			"/tmp/$1.out")
		[ -n "$PL_TPM" ] && [ -c "/dev/tpm$PL_TPM" ] && [ -c "/dev/tpmrm$PL_TPM" ] && break
		sleep 0.05; _i=$((_i + 1))
	done
	if [ -n "$PL_TPM" ] && [ -c "/dev/tpm$PL_TPM" ] && [ -c "/dev/tpmrm$PL_TPM" ]; then
		echo "tpm$PL_TPM $(awk -v a="$_t0" -v b="$(vt_now)" 'BEGIN { printf "%.2f", b - a }') s" \
			>>"/tmp/start-$1.ok"
		return 0
	fi
	if [ -z "$PL_TPM" ]; then _w="no 'New TPM device' line"
	else _w="line for tpm$PL_TPM, but no /dev/tpm$PL_TPM and /dev/tpmrm$PL_TPM"; fi
	vt_alive $PL_PID || _w="$_w, exited"
	echo "round $PL_R: $_w after 30 s: $(tail -n 2 "/tmp/$1.out" "/tmp/$1.err" 2>/dev/null |
		grep -v '^==>' | grep . | tr '\n' ' ' | cut -c1-250)" >>"/tmp/start-$1.fail"
	kill -9 $PL_PID 2>/dev/null
	wait $PL_PID 2>/dev/null
	return 1
}

# pl_stop SUBJECT PID N: SIGTERM; exit status 0 within 10 s and /dev/tpmN,
# /dev/tpmrmN gone within 5 s more, else a line in /tmp/exit-SUBJECT.fail
# (the process SIGKILLed if it still runs: the next subject needs the
# kernel to itself)
pl_stop() {
	kill -TERM "$2" 2>/dev/null
	_i=0
	while vt_alive "$2" && [ $_i -lt 100 ]; do sleep 0.1; _i=$((_i + 1)); done
	if vt_alive "$2"; then
		echo "round $PL_R: still running 10 s after SIGTERM" >>"/tmp/exit-$1.fail"
		kill -9 "$2" 2>/dev/null
	fi
	wait "$2"; _rc=$?
	_i=0
	while { [ -e "/dev/tpm$3" ] || [ -e "/dev/tpmrm$3" ]; } && [ $_i -lt 50 ]; do
		sleep 0.1; _i=$((_i + 1))
	done
	if [ $_rc -ne 0 ]; then
		echo "round $PL_R: exit status $_rc on SIGTERM: $(tail -n 2 "/tmp/$1.err" 2>/dev/null |
			tr '\n' ' ' | cut -c1-200)" >>"/tmp/exit-$1.fail"
	elif [ -e "/dev/tpm$3" ] || [ -e "/dev/tpmrm$3" ]; then
		echo "round $PL_R: exited 0, but /dev/tpm$3 or /dev/tpmrm$3 still there 5 s later" \
			>>"/tmp/exit-$1.fail"
	fi
}

# pl_lat CHECK DEVICE CMD: warm-up, then PL_N timed commands; the line
# goes to /tmp/CHECK.ok, a failure to /tmp/CHECK.fail
pl_lat() {
	if ! tpm-lat "$2" 20 "$3" >/tmp/lat.out 2>&1; then
		echo "round $PL_R warm-up: $(tail -n 1 /tmp/lat.out)" >>"/tmp/$1.fail"
		return
	fi
	if ! { tpm-lat "$2" "$PL_N" "$3" >/tmp/lat.out 2>&1 &&
	       grep -E "^tpm-lat n=$PL_N median_us=[0-9.]+ p99_us=[0-9.]+ min_us=[0-9.]+ max_us=[0-9.]+\$" \
		       /tmp/lat.out >>"/tmp/$1.ok"; }; then
		echo "round $PL_R: $(tail -n 1 /tmp/lat.out)" >>"/tmp/$1.fail"
	fi
}

# pl_result CHECK: FAIL with the first failure, else PASS with the lines
# (joined by " | ")
pl_result() {
	if [ -s "/tmp/$1.fail" ]; then vt_fail "$1" "$(head -n 1 "/tmp/$1.fail")"
	elif [ -s "/tmp/$1.ok" ]; then vt_pass "$1" "$(sed ':a;N;$!ba;s/\n/ | /g' "/tmp/$1.ok")"
	else vt_fail "$1" "nothing measured"; fi
}

vm_guest() {
	if [ ! -c /dev/vtpmx ]; then
		vt_fail vtpmx "no /dev/vtpmx after modprobe tpm_vtpm_proxy"
		return 0
	fi
	vt_user_dir /tmp/st-swtpm /tmp/st-ours
	base=$PL_SUBJECTS order=""
	PL_R=1
	while [ $PL_R -le $PL_ROUNDS ]; do
		# odd rounds: the list rotated by two more each time; even rounds:
		# the round before reversed (swtpm and ours swap places)
		if [ $((PL_R % 2)) = 1 ]; then
			order=$base
		else
			rev=""
			for s in $order; do rev="$s${rev:+ $rev}"; done
			order=$rev
		fi
		base="${base#* } ${base%% *}"
		vt_info "round $PL_R: $order"
		for s in $order; do
			if ! pl_start "$s"; then
				for c in getrandom pcrextend; do
					for n in tpmrm tpm; do
						echo "round $PL_R: $s did not start" >>"/tmp/$c-$n-$s.fail"
					done
				done
				continue
			fi
			pid=$PL_PID
			for n in tpmrm tpm; do
				for c in getrandom pcrextend; do
					pl_lat "$c-$n-$s" "/dev/$n$PL_TPM" $c
				done
			done
			pl_stop "$s" $pid "$PL_TPM"
		done
		PL_R=$((PL_R + 1))
	done
	for c in getrandom pcrextend; do
		for n in tpmrm tpm; do
			for s in $PL_SUBJECTS; do pl_result "$c-$n-$s"; done
		done
	done
	for s in $PL_SUBJECTS; do
		pl_result "start-$s"
		if [ -s "/tmp/exit-$s.fail" ]; then vt_fail "exit-$s" "$(head -n 1 "/tmp/exit-$s.fail")"
		elif [ -s "/tmp/start-$s.ok" ]; then
			vt_pass "exit-$s" "$(wc -l <"/tmp/start-$s.ok") runs: exit 0 on SIGTERM, nodes gone"
		else vt_fail "exit-$s" "never started"; fi
	done
	return 0
}
