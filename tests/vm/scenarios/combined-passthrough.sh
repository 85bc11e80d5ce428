# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# The seed's picture (issue 11, point 4): one daemon, two fronts, one TPM.
#
#   vtpm-bridge --tpm2 --tpmstate dir=D --cuse vtpm-cp --vtpm-proxy
#
# A nested QEMU (TCG inside the TCG guest) boots SeaBIOS on the CUSE device
# (-tpmdev passthrough,path=/dev/vtpm-cp, as cuse-passthrough; the nested
# boot is vt_nested_boot in lib/guest.sh), while a container-style process
# (vt_container: its own mount and PID namespaces, /dev holding only
# tpmrmN as /dev/tpmrm0) reads PCR 0 through the kernel's resource manager
# of the same daemon over and over.  The daemon starts the TPM at once
# (the vtpm-proxy front needs it running); `swtpm_ioctl -i` on the CUSE
# device is the platform reset that hands Startup to the firmware, as a
# QEMU machine reset does.  Until SeaBIOS's TPM2_Startup the container gets
# TPM_RC_INITIALIZE (0x100); then it sees PCR 0 zero, then SeaBIOS's
# separator, SHA256(0^32 || SHA256(ff ff ff ff)).  After the boot PCR 0
# read through CUSE must be that value too, and the container's.  The
# daemon sends Startup itself only if nobody did within 10 s of the INIT
# (it logs that); here SeaBIOS must have been first.
#
# Debian's swtpm has no CUSE front: its row is one host-side SKIP.

VM_DESC="nested QEMU passthrough on the combined daemon's CUSE device; a namespaced container reads SeaBIOS's PCR 0 through /dev/tpmrm0"
VM_DAEMON=guest
VM_BINS="/usr/bin/qemu-system-x86_64 /usr/bin/tpm2 /usr/bin/tpm2_pcrread /usr/bin/swtpm_ioctl
/usr/share/seabios/bios-256k.bin /usr/share/qemu/kvmvapic.bin"
VM_LIBS="/usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0 /usr/lib/x86_64-linux-gnu/qemu/accel-tcg-x86_64.so
/usr/lib/x86_64-linux-gnu/libtpms.so.0"
VM_MODULES="fuse cuse tpm_vtpm_proxy"
VM_TOOLS="proxy-raw"
VM_MEM=1024
VM_TIMEOUT=300
VM_COST=20

CP_NAME=vtpm-cp
CP_MAX=90	# seconds for SeaBIOS to reach its boot stage under nested TCG
CP_GETRAND=80010000000c0000017b0008

vm_host() { vm_cuse_host; }

# cp_reader_start N: the container's loop, PCR 0 through /dev/tpmrm0
# (tpmrmN outside) every 0.3 s until /tmp/cp-reader.stop exists; one line
# per read in /tmp/cp-reader.log: "UPTIME v=HEX" or "UPTIME rc=RC"
cp_reader_start() {
	cat >/tmp/cp-reader.sh <<'EOF'
while [ ! -e /tmp/cp-reader.stop ]; do
	read -r _u _ </proc/uptime
	if tpm2_pcrread -T device:/dev/tpmrm0 sha256:0 >/tmp/cp-r.out 2>&1; then
		_v=$(sed -n 's/^ *0 *: *0x\([0-9A-Fa-f]*\)$/\1/p' /tmp/cp-r.out)
		echo "$_u v=${_v:-none}"
	else
		_r=$(sed -n 's/.*ErrorCode (\(0x[0-9a-fA-F]*\)).*/\1/p' /tmp/cp-r.out | tail -n 1)
		echo "$_u rc=${_r:-$(grep . /tmp/cp-r.out | tail -n 1 | tr ' ' '_')}"
	fi
	sleep 0.3
done
EOF
	rm -f /tmp/cp-reader.stop
	: >/tmp/cp-reader.log
	vt_container "/dev/tpmrm$1" tpmrm0 sh /tmp/cp-reader.sh >>/tmp/cp-reader.log 2>/tmp/cp-reader.err &
	CP_READER=$!
}

vm_guest() {
	if [ -e /dev/tpm0 ] || [ -e /dev/tpmrm0 ]; then
		vt_fail no-other-tpm "a TPM exists before the daemon starts: $(ls /dev/tpm* | tr '\n' ' ')"
		return 0
	fi
	vt_pass no-other-tpm
	dev=/dev/$CP_NAME
	Z=0000000000000000000000000000000000000000000000000000000000000000
	PCR0=$(vt_seabios_pcr0)
	vt_info "$(qemu-system-x86_64 --version | head -n 1)"

	vt_user_dir /tmp/cp-state
	t0=$(vt_now)
	# shellcheck disable=SC2086  # VT_SANDBOX is several words
	if ! vt_proxy_launch cp "$VT_DAEMON_BIN" --tpm2 --tpmstate dir=/tmp/cp-state --cuse $CP_NAME \
			--vtpm-proxy --log file=/tmp/cp.log,level=2 --pid file=/tmp/cp.pid $VT_SANDBOX; then
		vt_fail start "no 'New TPM device' line on stdout ('$VT_PROXY_LINE'): $(vt_proxy_why cp)"
		kill "$VT_PROXY_PID" 2>/dev/null
		return 0
	fi
	dpid=$VT_PROXY_PID n=$VT_PROXY_N
	vt_pass start "$VT_PROXY_LINE after $(vt_dt "$t0" "$(vt_now)") s"
	vt_sandboxed sandboxed "$dpid"
	if vt_wait_path $dev 10 && vt_wait_path "/dev/tpmrm$n" 10; then
		vt_pass nodes "$dev ($(vt_devnum $dev)) and /dev/tpmrm$n from pid $dpid"
	else
		vt_fail nodes "$(ls $dev "/dev/tpmrm$n" 2>&1 | tr '\n' ' ')"
		kill "$dpid"
		return 0
	fi
	# the TPM runs from the start: the container reads PCR 0, still zero
	v=$(vt_container "/dev/tpmrm$n" tpmrm0 tpm2_pcrread -T device:/dev/tpmrm0 sha256:0 2>/tmp/cp-pre.err |
		sed -n 's/^ *0 *: *0x\([0-9A-Fa-f]*\)$/\1/p')
	vt_same pcr0-before "$Z" "$v" "PCR 0 through tpmrm$n before the firmware ran"

	# the platform reset: Startup is the firmware's now
	vt_run ioctl-init swtpm_ioctl -i --tpm-device $dev
	tinit=$(vt_now)
	o=$(proxy-raw -t 20 "/dev/tpmrm$n" $CP_GETRAND)
	case $o in
	*"rc=0x00000100 "*) vt_pass not-started-rm "TPM_RC_INITIALIZE through tpmrm$n before SeaBIOS's Startup: $o" ;;
	*) vt_fail not-started-rm "GetRandom through tpmrm$n right after INIT: $o, expected rc 0x00000100" ;;
	esac

	cp_reader_start "$n"
	vt_nested_boot $dev $CP_MAX
	tend=$(vt_now)
	sleep 1		# (the container reads once more after the boot)
	touch /tmp/cp-reader.stop
	wait $CP_READER
	vt_nested_results $CP_MAX

	# PCR 0 through CUSE, the firmware's front
	vc=$(tpm2_pcrread -T device:$dev sha256:0 2>/tmp/cp-pcr.err | sed -n 's/^ *0 *: *0x\([0-9A-Fa-f]*\).*/\1/p')
	if [ "$vc" = "$PCR0" ]; then
		vt_pass pcr0-cuse "PCR0 sha256=$vc = SHA256(0^32 || SHA256(ff ff ff ff)), SeaBIOS's separator"
	elif [ -z "$vc" ]; then
		vt_fail pcr0-cuse "tpm2_pcrread through CUSE failed: $(tail -n 2 /tmp/cp-pcr.err | tr '\n' ' ')"
	else
		vt_fail pcr0-cuse "PCR0 sha256=$vc, expected $PCR0 (SeaBIOS's separator alone)"
	fi

	# what the container saw
	sed 's/^/    | /' /tmp/cp-reader.log | tail -n 80
	total=$(grep -c . /tmp/cp-reader.log)
	uninit=$(grep -c ' rc=0x00000100$' /tmp/cp-reader.log)
	zero=$(grep -c " v=$Z\$" /tmp/cp-reader.log)
	meas=$(grep -c " v=$PCR0\$" /tmp/cp-reader.log)
	other=$(grep -v -E " (rc=0x00000100|v=$Z|v=$PCR0)\$" /tmp/cp-reader.log | head -n 1)
	last=$(tail -n 1 /tmp/cp-reader.log | sed 's/^[^ ]* //')
	first=$(grep -m 1 " v=$PCR0\$" /tmp/cp-reader.log | cut -d' ' -f1)
	firstok=$(grep -m 1 ' v=' /tmp/cp-reader.log | cut -d' ' -f1)
	vt_info "container: $total reads: $uninit TPM_RC_INITIALIZE, $zero zero, $meas measured; first answer t+$(vt_dt "$tinit" "${firstok:-$tinit}") s after INIT, first measured value t+$(vt_dt "$tinit" "${first:-$tinit}") s, nested QEMU ended t+$(vt_dt "$tinit" "$tend") s"
	if [ "$total" -gt 0 ] && [ -z "$other" ]; then
		vt_pass container-reads "$total reads through tpmrm0: $uninit x TPM_RC_INITIALIZE (before SeaBIOS's Startup), $zero x zero, $meas x SeaBIOS's value; nothing else"
	else
		vt_fail container-reads "$total reads; an unexpected one: '$other' ($(tail -n 1 /tmp/cp-reader.err 2>/dev/null))"
	fi
	if [ -n "$first" ] && awk -v a="$first" -v b="$tend" 'BEGIN { exit !(a < b) }'; then
		vt_pass pcr0-container-live "the container saw SeaBIOS's PCR 0 at t+$(vt_dt "$tinit" "$first") s, while the nested QEMU ran (until t+$(vt_dt "$tinit" "$tend") s)"
	else
		vt_fail pcr0-container-live "the container never saw $PCR0 while the nested QEMU ran (first: '${first:-never}')"
	fi
	vt_same pcr0-container "v=$vc" "$last" "the container's last PCR 0 read (vs CUSE's)"
	# SeaBIOS, not the daemon, started the TPM
	if grep -q 'no TPM Startup' /tmp/cp.log; then
		vt_fail startup-by-firmware "the daemon sent Startup itself (before SeaBIOS's, which then fails): $(grep 'no TPM Startup' /tmp/cp.log | head -n 1)"
	else
		vt_pass startup-by-firmware "the daemon sent no Startup of its own after the INIT"
	fi

	vt_proxy_stop daemon-exit "$dpid" "$n"
	if [ -e $dev ]; then vt_fail cuse-node-gone "$dev is still there"; else vt_pass cuse-node-gone; fi
	vt_info "daemon log: $(grep -v '^ *$' /tmp/cp.log 2>/dev/null | tail -n 5 | tr '\n' '|' | cut -c1-500)"
	return 0
}
