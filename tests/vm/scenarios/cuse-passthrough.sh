# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# Today's QEMU on our CUSE device: `vtpm-bridge cuse -n vtpm-pt` in the
# guest backs a nested QEMU (TCG inside the TCG guest) with
#   -tpmdev passthrough,path=/dev/vtpm-pt,cancel-path=/dev/null -device tpm-tis
# (recipe: shared/lab/vm/payloads/cuse-passthrough).  QEMU's passthrough
# sends no PTM ioctls, so `swtpm_ioctl -i` starts the TPM first; SeaBIOS
# sends TPM2_Startup and extends PCR 0-7 with its separator.  Afterwards
# PCR 0 is read over the same device with tpm2-tools and must be
# SHA256(0^32 || SHA256(ff ff ff ff)); `swtpm_ioctl -s` ends the daemon.
#
# Variants:
#   alone       nobody else opens the device while SeaBIOS runs;
#   concurrent  two more openers read PCRs the whole time: tpm2_pcrread in
#               a loop (tpm2-tools, as the issue has it) and tools/cuse-pcrloop
#               (one open file, PCR_Read back to back, 1 ms apart, every
#               response checked to be its own).  swtpm's CUSE front shares
#               one response buffer and broke QEMU's responses that way;
#               every open file must have its own response.  Reads before
#               SeaBIOS's Startup get TPM_RC_INITIALIZE (0x100), which is a
#               correct answer.
# Progress comes from SeaBIOS's debug port (0x402): "Booting from" or "No
# bootable" is printed after the separators.  Debian's swtpm has no CUSE
# front: its rows are one SKIP each.

VM_DESC="nested QEMU -tpmdev passthrough on the CUSE device: SeaBIOS's PCR0, with and without a concurrent opener"
VM_VARIANTS="alone concurrent"
VM_DAEMON=guest
VM_BINS="/usr/bin/qemu-system-x86_64 /usr/bin/tpm2 /usr/bin/tpm2_pcrread /usr/bin/swtpm_ioctl
/usr/share/seabios/bios-256k.bin /usr/share/qemu/kvmvapic.bin"
VM_LIBS="/usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0 /usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so
/usr/lib/x86_64-linux-gnu/libtpms.so.0"
VM_MODULES="fuse cuse"
VM_TOOLS="cuse-pcrloop"
VM_MEM=1024
VM_TIMEOUT=240
VM_COST=40

PT_NAME=vtpm-pt
PT_MAX=90	# seconds for SeaBIOS to reach its boot stage under nested TCG

vm_host() { vm_cuse_host; }

# pt_reader STOPFILE: tpm2_pcrread on the device until STOPFILE exists;
# counts in /tmp/reader.{ok,uninit,bad}, the first bad output in
# /tmp/reader.badout
pt_reader() {
	_ok=0 _un=0 _bad=0
	while [ ! -e "$1" ]; do
		if tpm2_pcrread -T device:/dev/$PT_NAME sha256:0,1,2,3,4,5,6,7,16 >/tmp/reader.out 2>&1; then
			if grep -qE '^ +0 *: *0x[0-9A-F]{64}$' /tmp/reader.out; then _ok=$((_ok + 1))
			else _bad=$((_bad + 1)); [ -e /tmp/reader.badout ] || cp /tmp/reader.out /tmp/reader.badout; fi
		elif grep -qiE '0x(00000)?100\b|TPM_RC_INITIALIZE' /tmp/reader.out; then
			_un=$((_un + 1))
		else
			_bad=$((_bad + 1)); [ -e /tmp/reader.badout ] || cp /tmp/reader.out /tmp/reader.badout
		fi
		echo "$_ok" >/tmp/reader.ok; echo "$_un" >/tmp/reader.uninit; echo "$_bad" >/tmp/reader.bad
	done
}

# pt_pcr0 DEV: PCR 0 (sha256) in hex, empty if the read failed (stderr in /tmp/pcr.err)
pt_pcr0() {
	tpm2_pcrread -T device:$1 sha256:0 2>/tmp/pcr.err | sed -n 's/^ *0 *: *0x\([0-9A-Fa-f]*\).*/\1/p'
}

vm_guest() {
	dev=/dev/$PT_NAME
	Z=0000000000000000000000000000000000000000000000000000000000000000
	PCR0_SEABIOS=$(vt_seabios_pcr0)
	vt_info "$(qemu-system-x86_64 --version | head -n 1)"

	vt_user_dir /tmp/st
	t0=$(vt_now)
	# shellcheck disable=SC2086  # VT_SANDBOX is several words
	"$VT_DAEMON_BIN" cuse -n $PT_NAME --tpm2 --tpmstate dir=/tmp/st --log file=/tmp/daemon.log -f $VT_SANDBOX \
		>/tmp/daemon.out 2>&1 &
	dpid=$!
	i=0
	while [ ! -c $dev ] && [ $i -lt 100 ] && kill -0 $dpid 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
	if [ -c $dev ]; then vt_pass cuse-device "$(ls -l $dev | tr -s ' ' | cut -d' ' -f1,5,6,10) after $(vt_dt "$t0" "$(vt_now)") s"
	else
		vt_fail cuse-device "no $dev: $(tail -n 3 /tmp/daemon.out /tmp/daemon.log 2>/dev/null | tr '\n' ' ' | cut -c1-300)"
		return 0
	fi
	vt_sandboxed sandboxed "$dpid"
	vt_run ioctl-init swtpm_ioctl -i --tpm-device $dev
	# before SeaBIOS: INIT done, no TPM2_Startup yet
	if tpm2_pcrread -T device:$dev sha256:0 >/tmp/pre.out 2>&1; then
		vt_fail not-started "tpm2_pcrread succeeded before TPM2_Startup: $(tr '\n' ' ' </tmp/pre.out | cut -c1-200)"
	elif grep -qiE '0x(00000)?100\b|TPM_RC_INITIALIZE' /tmp/pre.out; then
		vt_pass not-started "TPM_RC_INITIALIZE before SeaBIOS's TPM2_Startup"
	else
		vt_fail not-started "expected TPM_RC_INITIALIZE (0x100): $(tr '\n' ' ' </tmp/pre.out | cut -c1-200)"
	fi

	rm -f /tmp/reader.* /tmp/reader.stop
	if [ "$VM_VARIANT" = concurrent ]; then
		pt_reader /tmp/reader.stop &
		rpid=$!
		cuse-pcrloop $dev /tmp/reader.stop >/tmp/pcrloop.out 2>&1 &
		lpid=$!
		sleep 0.3
	fi
	vt_nested_boot $dev $PT_MAX
	if [ "$VM_VARIANT" = concurrent ]; then
		touch /tmp/reader.stop
		wait $rpid
		wait $lpid; lrc=$?
		if [ $lrc -eq 0 ]; then vt_pass concurrent-pcrloop "$(cat /tmp/pcrloop.out)"
		else vt_fail concurrent-pcrloop "exit $lrc: $(tail -n 1 /tmp/pcrloop.out)"; fi
		ok=$(cat /tmp/reader.ok 2>/dev/null || echo 0)
		un=$(cat /tmp/reader.uninit 2>/dev/null || echo 0)
		bad=$(cat /tmp/reader.bad 2>/dev/null || echo 0)
		if [ "$bad" = 0 ] && [ "$ok" -gt 0 ]; then
			vt_pass concurrent-reader "$ok reads ok, $un before Startup (TPM_RC_INITIALIZE), 0 bad while SeaBIOS ran"
		else
			vt_fail concurrent-reader "$ok ok, $un before Startup, $bad bad; first bad: $(tr '\n' ' ' </tmp/reader.badout 2>/dev/null | cut -c1-250)"
		fi
	fi
	vt_nested_results $PT_MAX

	# nested QEMU is gone: PCR 0 over the same device
	v=$(pt_pcr0 $dev)
	again=""
	if [ "$v" = "$Z" ]; then
		# SeaBIOS drops a TPM without a word when a command outlasts its TIS
		# timeouts (0.75-2 s of its clock), which nested TCG on a loaded host
		# can reach: one more boot, and the pass says so.
		vt_info "PCR0 zero after the nested boot (SeaBIOS measured nothing): one more boot"
		vt_nested_boot $dev $PT_MAX
		v=$(pt_pcr0 $dev)
		again=", on a second nested boot (the first measured nothing)"
	fi
	if [ "$v" = "$PCR0_SEABIOS" ]; then
		vt_pass pcr0 "PCR0 sha256=$v = SHA256(0^32 || SHA256(ff ff ff ff)), SeaBIOS's separator$again"
	elif [ -z "$v" ]; then
		vt_fail pcr0 "tpm2_pcrread failed: $(tail -n 2 /tmp/pcr.err | tr '\n' ' ')"
	elif [ "$v" = "$Z" ]; then
		vt_fail pcr0 "PCR0 is zero after two nested boots: SeaBIOS measured nothing into this TPM"
	else
		vt_fail pcr0 "PCR0 sha256=$v, expected $PCR0_SEABIOS (SeaBIOS's separator alone)"
	fi
	vt_run pcrread-0-7 tpm2_pcrread -T device:$dev sha256:0,1,2,3,4,5,6,7

	# swtpm_ioctl -s: the daemon exits 0 and the node goes
	t0=$(vt_now)
	vt_run ioctl-shutdown swtpm_ioctl -s --tpm-device $dev
	i=0
	while { kill -0 $dpid 2>/dev/null || [ -e $dev ]; } && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	if kill -0 $dpid 2>/dev/null; then
		vt_fail daemon-exit "still running 5 s after swtpm_ioctl -s"
		kill -9 $dpid
	else
		wait $dpid; rc=$?
		if [ $rc -ne 0 ]; then vt_fail daemon-exit "exit status $rc: $(tail -n 2 /tmp/daemon.out | tr '\n' ' ')"
		elif [ -e $dev ]; then vt_fail daemon-exit "the daemon exited but $dev is still there"
		else vt_pass daemon-exit "exit 0 and $dev removed $(vt_dt "$t0" "$(vt_now)") s after swtpm_ioctl -s"; fi
	fi
	return 0
}
