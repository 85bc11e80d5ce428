# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# Migration of a running guest with its TPM (qemu-libvirt.md A.5), as
# between two hosts: each QEMU has its own daemon instance and state dir.
#   1. source: daemon + QEMU boot; the guest extends PCR16, writes an NV
#      index, saves a session and a key context, then waits (busy with TPM
#      commands in the background: tools/tpm-loop.c)
#   2. QMP stop, migrate to "exec:cat > FILE" (QEMU 7.2 has no file: URI); quit
#   3. destination: a fresh daemon + QEMU -incoming "exec:cat FILE"; the
#      harness follows the guest's result channel there and tells it to go on
#   4. the guest finds its PCRs, NV index, session and key as they were and
#      keeps using the TPM
# Host checks: the source daemon was asked for blobs 1, 2, 3 (no STOP), the
# destination got the very same bytes, then INIT(DELETE_VOLATILE); both
# daemons leave cleanly.
#
# Variants: crb, tis (the job's daemon on both sides); from-swtpm (Debian's
# swtpm on the source, the job's daemon on the destination) and to-swtpm
# (the other way round), both with tpm-crb: a drop-in must take over a
# swtpm VM's state and hand it back.  With the job's daemon = swtpm these
# two are the control runs.

VM_DESC="QMP migrate of a running guest to a second QEMU with its own daemon"
VM_VARIANTS="crb tis from-swtpm to-swtpm"
VM_DAEMON=host
VM_BINS="/usr/bin/tpm2 /usr/bin/tpm2_*"
VM_LIBS="/usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0"
VM_TOOLS="tpm-loop"
VM_TIMEOUT=150
VM_COST=40

# vm_poll_qmp NAME COMMAND ERE SECONDS: repeat COMMAND until its answer
# matches ERE; the last answer is in NAME/qmp.last
vm_poll_qmp() {
	_end=$((SECONDS + $4))
	while [ $SECONDS -lt $_end ]; do
		vm_qmp "$1" "$2" >"$VM_JOB/$1/qmp.last" 2>&1
		grep -qE "$3" "$VM_JOB/$1/qmp.last" && return 0
		grep -qE '"status": "(failed|cancelled)"' "$VM_JOB/$1/qmp.last" && return 1
		sleep 0.3
	done
	return 1
}

vm_host() {
	stream=$VM_JOB/src/migration.stream
	model=crb src_bin=$VM_DAEMON_BIN dst_bin=$VM_DAEMON_BIN
	case $VM_VARIANT in
	crb|tis) model=$VM_VARIANT ;;
	from-swtpm) src_bin=$(command -v swtpm) ;;
	to-swtpm) dst_bin=$(command -v swtpm) ;;
	esac
	vm_daemon_start src "$src_bin" || return 0
	vm_qemu_start src --tpm src "$model"
	if ! vm_wait_line src '^VMTEST: WAIT migrate'; then
		vm_result FAIL migrate-out "the guest never asked to be migrated"
		vm_qemu_wait src
		vm_guest_results src
		return 0
	fi
	vm_qmp src migrate-set-parameters '{"max-bandwidth": 4294967296}' >/dev/null
	# The vCPU stops first: TCG's live RAM pre-copy left the destination
	# guest corrupt now and then (kernel oops or soft lockup after the move,
	# swtpm as often as ours).  The TPM part is unchanged: QEMU takes the
	# TPM's state in the final stopped phase of every migration, with the
	# guest's TPM command still in flight.
	vm_qmp src stop >/dev/null
	t0=$SECONDS
	if vm_qmp src migrate "{\"uri\": \"exec:cat > $stream\"}" >/dev/null &&
	   vm_poll_qmp src query-migrate '"status": "completed"' 120; then
		vm_result PASS migrate-out
		echo "migration out: $((SECONDS - t0)) s, $(stat -c %s "$stream") bytes" >&2
	else
		vm_result FAIL migrate-out "query-migrate: $(cat "$VM_JOB/src/qmp.last"; tail -n 1 "$VM_JOB/src/qmp.log")"
		vm_qmp src quit >/dev/null
		vm_qemu_wait src
		vm_guest_results src
		return 0
	fi
	vm_qmp src quit >/dev/null
	vm_qemu_wait src
	vm_ctrl_check src migrate-src --blobs-out "$VM_JOB/blobs.json" --prefix src-
	vm_ctrl_check src shutdown --prefix src-
	vm_daemon_wait src src-daemon-exit

	vm_daemon_start dst "$dst_bin" || return 0
	vm_qemu_start dst --tpm dst "$model" --incoming "exec:cat $stream"
	# a source stopped before the move arrives paused
	if vm_poll_qmp dst query-status '"status": "(paused|running)"' 120 &&
	   vm_qmp dst cont >/dev/null &&
	   vm_poll_qmp dst query-status '"status": "running"' 10; then
		vm_result PASS migrate-in
		vm_send dst go
	else
		vm_result FAIL migrate-in "query-status: $(cat "$VM_JOB/dst/qmp.last"); $(grep . "$VM_JOB/dst/qemu.out" | tail -n 1)"
		vm_qmp dst quit >/dev/null
	fi
	vm_qemu_wait dst
	vm_guest_results src dst
	vm_ctrl_check dst migrate-dst --model "$model" --blobs "$VM_JOB/blobs.json" --prefix dst-
	vm_ctrl_check dst shutdown --prefix dst-
	vm_daemon_wait dst dst-daemon-exit
}

vm_guest() {
	export TPM2TOOLS_TCTI=device:/dev/tpmrm0
	if ! vt_wait_path /dev/tpmrm0 10; then
		vt_fail tpm-nodes "no /dev/tpmrm0: $(dmesg | grep -i tpm | tail -n 2 | tr '\n' ' ')"
		return 0
	fi
	# state that must survive the move
	d=00000000000000000000000000000000000000000000000000000000000000b6
	vt_run pre-pcr-extend tpm2_pcrextend "16:sha256=$d"
	printf 'migrated NV index, 32 bytes ....' >/tmp/nv.in
	vt_run pre-nv-write sh -c 'tpm2_nvdefine 0x1500017 -C o -s 32 -a "ownerread|ownerwrite" &&
		tpm2_nvwrite 0x1500017 -C o -i /tmp/nv.in'
	# a saved key context (needs the TPM's permanent secrets to load again)
	# and a saved session on /dev/tpm0 (lives in the volatile state)
	vt_run pre-primary-key tpm2_createprimary -C o -G ecc256 -c /tmp/prim.ctx
	vt_run pre-session sh -c 'TPM2TOOLS_TCTI=device:/dev/tpm0 tpm2_startauthsession -S /tmp/sess.ctx'
	pcrs_before=$(tpm2_pcrread sha256:0,1,2,3,4,5,6,7,16 2>&1)
	nv_before=$(tpm2_nvread 0x1500017 -C o -s 32 2>&1 | sha256sum)

	# keep the TPM busy while the host migrates us: one process sending
	# TPM2_GetRandom back to back (not a loop of tpm2_getrandom: see
	# tools/tpm-loop.c), so a command is likely in flight at the switch.
	# On tpm-tis RSA key generations instead: one is nearly always running
	# on the daemon's worker when QEMU asks for the state blobs
	driver=$(basename "$(readlink /sys/class/tpm/tpm0/device/driver)")
	loop_mode=
	[ "$driver" = tpm_tis ] && loop_mode=-k
	# shellcheck disable=SC2086  # no argument or one
	tpm-loop $loop_mode /dev/tpmrm0 /tmp/busy.stop /tmp/busy.count &
	busy=$!
	sleep 1
	answer=$(vt_host_wait migrate 600)
	vt_same resumed go "$answer" "the host's answer"
	read -r n_at_resume _ </tmp/busy.count

	pcrs_after=$(tpm2_pcrread sha256:0,1,2,3,4,5,6,7,16 2>&1)
	if [ "$pcrs_after" = "$pcrs_before" ] && echo "$pcrs_after" | grep -q '16 *: *0x'; then
		vt_pass pcrs-kept
	else
		vt_fail pcrs-kept "before: $(echo "$pcrs_before" | tr -s ' \n' ' ') after: $(echo "$pcrs_after" | tr -s ' \n' ' ')"
	fi
	vt_same nv-kept "$nv_before" "$(tpm2_nvread 0x1500017 -C o -s 32 2>&1 | sha256sum)" "NV content hash"
	vt_run key-context-kept tpm2_readpublic -c /tmp/prim.ctx
	vt_run session-kept sh -c 'TPM2TOOLS_TCTI=device:/dev/tpm0 tpm2_flushcontext /tmp/sess.ctx'

	# the TPM goes on working
	sleep 1
	touch /tmp/busy.stop
	wait $busy
	rc=$?
	read -r n bad lastrc echoed </tmp/busy.count
	# QEMU 7.2 defect, not the daemon's: the backend's pre_save lets the
	# command in flight finish after the RAM (which holds tpm-crb's buffer)
	# was sent, so the destination's guest reads its own command back.  One
	# such read is allowed on tpm-crb; tpm-tis keeps its buffer in the
	# device state and must lose nothing, even with a key generation in
	# flight at the switch (shown with tools/tpm-loop -k on both interfaces:
	# tpm-crb lost it in 6 of 8 migrations, with either daemon; tpm-tis in
	# none of 4).
	allowed=0
	[ "$driver" = tpm_crb ] && allowed=1
	[ "${echoed:-0}" -gt 0 ] &&
		vt_info "busy-across-migration: $echoed response(s) lost by QEMU at the switch ($driver; QEMU 7.2's tpm-emulator pre_save runs after RAM was sent)"
	if [ $rc = 0 ] && [ "$bad" = 0 ] && [ "${echoed:-0}" -le $allowed ] &&
	   [ "$n" -gt "${n_at_resume:-0}" ]; then
		vt_pass busy-across-migration "$n commands, $n_at_resume before resuming checks"
	else
		vt_fail busy-across-migration "tpm-loop status $rc: $bad of $((n + bad + echoed)) commands failed (last rc 0x$lastrc), $echoed echoed back ($allowed allowed on $driver); $n_at_resume ok before the checks after the move, $n in all"
	fi
	old=$(vt_pcr sha256:16)
	want=$(printf '%s%s' "$old" "$d" | xxd -r -p | sha256sum | cut -d' ' -f1)
	tpm2_pcrextend "16:sha256=$d" 2>/tmp/err || vt_info "pcrextend: $(tail -n 1 /tmp/err)"
	vt_same post-pcr-extend "$want" "$(vt_pcr sha256:16)" "PCR16 after another extend"
	printf 'written after the migration ....' >/tmp/nv2.in
	if tpm2_nvwrite 0x1500017 -C o -i /tmp/nv2.in >/tmp/nv.out 2>&1 &&
	   tpm2_nvread 0x1500017 -C o -s 32 -o /tmp/nv2.back >>/tmp/nv.out 2>&1; then
		vt_same post-nv-write "$(sha256sum </tmp/nv2.in)" "$(sha256sum </tmp/nv2.back)" "NV content hash"
	else
		vt_fail post-nv-write "$(tail -n 1 /tmp/nv.out)"
	fi
	vt_run post-nv-undefine tpm2_nvundefine 0x1500017 -C o
	return 0
}
