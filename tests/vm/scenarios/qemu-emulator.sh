# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# QEMU's emulator TPM backend.  The daemon runs on the host, started the way
# libvirt starts swtpm (qemu-libvirt.md B.5), behind ctrlproxy.py; QEMU 7.2
# gives the guest a tpm-crb or tpm-tis device; the guest kernel's built-in
# driver exposes /dev/tpm0 and /dev/tpmrm0, and SeaBIOS measures itself
# into the TPM before the kernel starts.
#
# Host checks: QEMU's start-up sequence as the daemon saw it (qemu-libvirt.md
# A.3), the not-running reply to QEMU's version probe, SHUTDOWN at power-off
# and the daemon's clean exit.  Guest checks: device nodes and driver,
# tpm2-tools on both nodes, PCR0 measured, the event log parses and replays
# to the PCR values, NV define/write/read, PCR extend arithmetic.

VM_DESC="QEMU -tpmdev emulator, daemon on the host, guest tpm-crb / tpm-tis"
VM_VARIANTS="crb tis"
VM_DAEMON=host
VM_BINS="/usr/bin/tpm2 /usr/bin/tpm2_*"
VM_LIBS="/usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0"
VM_TIMEOUT=120
VM_COST=25

vm_host() {
	vm_daemon_start tpm || return 0
	vm_qemu_start vm --tpm tpm "$VM_VARIANT"
	vm_qemu_wait vm
	vm_guest_results vm
	vm_ctrl_check tpm startup --model "$VM_VARIANT"
	vm_ctrl_check tpm shutdown
	vm_daemon_wait tpm daemon-exit
}

vm_guest() {
	export TPM2TOOLS_TCTI=device:/dev/tpmrm0
	if vt_wait_path /dev/tpmrm0 10 && [ -c /dev/tpm0 ]; then
		vt_pass tpm-nodes
	else
		vt_fail tpm-nodes "no /dev/tpm0 + /dev/tpmrm0 (have: $(echo /dev/tpm*)); $(dmesg | grep -i tpm | tail -n 2 | tr '\n' ' ')"
		return 0
	fi
	drv=$(basename "$(readlink /sys/class/tpm/tpm0/device/driver)")
	ver=$(cat /sys/class/tpm/tpm0/tpm_version_major 2>/dev/null)
	vt_same tpm-driver "tpm_$VM_VARIANT 2" "$drv $ver" "driver and TPM version"

	r1=$(tpm2_getrandom 16 --hex 2>/tmp/err)
	r2=$(tpm2_getrandom 16 --hex 2>>/tmp/err)
	if echo "$r1" | grep -qE '^[0-9a-f]{32}$' && [ "$r1" != "$r2" ]; then vt_pass getrandom-tpmrm0
	else vt_fail getrandom-tpmrm0 "got '$r1' and '$r2': $(tail -n 1 /tmp/err)"; fi
	r3=$(TPM2TOOLS_TCTI=device:/dev/tpm0 tpm2_getrandom 16 --hex 2>/tmp/err)
	if echo "$r3" | grep -qE '^[0-9a-f]{32}$'; then vt_pass getrandom-tpm0
	else vt_fail getrandom-tpm0 "got '$r3': $(tail -n 1 /tmp/err)"; fi

	vt_run pcrread tpm2_pcrread sha256:0,1,2,3,4,5,6,7
	# SeaBIOS measures itself when it finds a TPM: PCR0 != 0 shows the
	# firmware, not only Linux, reached the daemon
	pcr0=$(vt_pcr sha256:0)
	case $pcr0 in
	"") vt_fail pcr0 "tpm2_pcrread sha256:0 gave no value" ;;
	*[1-9a-f]*) vt_pass pcr0 "$pcr0" ;;
	*) vt_fail pcr0 "PCR0 is all zero: the firmware measured nothing" ;;
	esac

	log=/sys/kernel/security/tpm0/binary_bios_measurements
	if [ ! -r $log ]; then   # (securityfs files have size 0: no -s)
		vt_fail eventlog "no $log (securityfs: $(ls /sys/kernel/security 2>&1 | tr '\n' ' '); $(dmesg | grep -i -E 'tpm|tcg' | tr '\n' ' ' | cut -c1-300))"
	elif vt_run eventlog tpm2_eventlog $log; then
		# the log must replay to the TPM's values: every sha256 PCR the log
		# names, compared with tpm2_pcrread
		awk '/^pcrs:/ { p = 1 } p && /^ *sha256:/ { s = 1; next } p && s && /^ *[a-z0-9]+:$/ { s = 0 }
		     p && s && /^ *[0-9]+ *: *0x/ { gsub(/[ :]+/, " "); print $1, tolower(substr($2, 3)) }' \
			"$VT_OUT" >/tmp/replay
		bad="" n=0
		while read -r idx val; do
			n=$((n + 1))
			got=$(vt_pcr "sha256:$idx")
			[ "$got" = "$val" ] || bad="$bad PCR$idx log=$val tpm=$got;"
		done </tmp/replay
		if [ $n -gt 0 ] && [ -z "$bad" ]; then vt_pass eventlog-replay "$n PCRs"
		else vt_fail eventlog-replay "${bad:-the log names no sha256 PCR}"; fi
	else
		vt_fail eventlog-replay "the event log did not parse"
	fi

	# PCR 16 (debug, resettable) starts at zero; one extend must give
	# sha256(zero || digest)
	d=00000000000000000000000000000000000000000000000000000000000000a5
	want=$(printf '%064d%s' 0 "$d" | xxd -r -p | sha256sum | cut -d' ' -f1)
	before=$(vt_pcr sha256:16)
	tpm2_pcrextend "16:sha256=$d" 2>/tmp/err || vt_info "pcrextend: $(tail -n 1 /tmp/err)"
	vt_same pcr-extend "$want" "$(vt_pcr sha256:16)" "PCR16 after one extend from '$before'"

	# NV: define, write, read back, undefine
	printf 'vtpm-bridge vm test %s\n' "$r1" | head -c 32 >/tmp/nv.in
	if tpm2_nvdefine 0x1500016 -C o -s 32 -a "ownerread|ownerwrite" >/tmp/nv.out 2>&1 &&
	   tpm2_nvwrite 0x1500016 -C o -i /tmp/nv.in >>/tmp/nv.out 2>&1 &&
	   tpm2_nvread 0x1500016 -C o -s 32 -o /tmp/nv.back >>/tmp/nv.out 2>&1; then
		vt_same nv-write-read "$(sha256sum </tmp/nv.in)" "$(sha256sum </tmp/nv.back)" "NV content hash"
	else
		vt_fail nv-write-read "$(tail -n 1 /tmp/nv.out)"
	fi
	vt_run nv-undefine tpm2_nvundefine 0x1500016 -C o

	vt_run primary-key sh -c 'tpm2_createprimary -C o -G ecc256 -c /tmp/prim.ctx &&
		tpm2_readpublic -c /tmp/prim.ctx'
	return 0
}
