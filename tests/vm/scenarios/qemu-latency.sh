# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# Latency through QEMU's emulator TPM backend: the daemon runs on the host,
# started the way libvirt starts swtpm (as in qemu-emulator), QEMU 7.2 gives
# the guest a tpm-crb device, and the guest times TPM2_GetRandom(16) round
# trips on /dev/tpm0 with tools/tpm-lat.c (20 warm-up commands, then 500).
#
# Guest check "latency": PASS with the tool's line as its text,
#     tpm-lat n=500 median_us=X p99_us=Y min_us=Z max_us=W
# or FAIL if a command failed.  The harness prints a PASS without its text,
# so the numbers are in the job's result channel, NAME.DAEMON/vm/results.raw
# in the log directory; bench/run.py (the "guest" rows) reads them there.
# No tpm2-tools in the image: a small initramfs, one short boot per daemon.
# It runs in the default set (make check): about 10 s per daemon.

VM_DESC="GetRandom latency in a guest through QEMU -tpmdev emulator (tpm-crb)"
VM_VARIANTS="crb"
VM_DAEMON=host
VM_TOOLS="tpm-lat"
VM_TIMEOUT=120
VM_COST=15

vm_host() {
	vm_daemon_start tpm || return 0
	vm_qemu_start vm --tpm tpm "$VM_VARIANT"
	vm_qemu_wait vm
	vm_guest_results vm
	vm_daemon_wait tpm daemon-exit
}

vm_guest() {
	if ! vt_wait_path /dev/tpm0 10; then
		vt_fail latency "no /dev/tpm0 (have: $(echo /dev/tpm*)); $(dmesg | grep -i tpm | tail -n 2 | tr '\n' ' ')"
		return 0
	fi
	# warm-up: first commands after boot, page faults, caches
	if ! tpm-lat /dev/tpm0 20 >/tmp/lat.out 2>&1; then
		vt_fail latency "warm-up: $(tail -n 1 /tmp/lat.out)"
		return 0
	fi
	if tpm-lat /dev/tpm0 500 >/tmp/lat.out 2>&1 &&
	   line=$(grep -E '^tpm-lat n=500 median_us=[0-9.]+ p99_us=[0-9.]+ min_us=[0-9.]+ max_us=[0-9.]+$' /tmp/lat.out); then
		vt_pass latency "$line"
	else
		vt_fail latency "$(tail -n 1 /tmp/lat.out)"
	fi
	return 0
}
