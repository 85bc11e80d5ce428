# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# selftest: QEMU stuck in the TPM handshake (a ctrl socket that never
# answers) is given up after VM_BOOT_TIMEOUT, not after VM_TIMEOUT
VM_BOOT_TIMEOUT=15
VM_TIMEOUT=300
vm_host() {
	mkdir -p "$VM_JOB/mute"
	python3 -c 'import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
c, _ = s.accept(); time.sleep(600)' "$VM_JOB/mute/proxy.sock" &
	vm_track $!
	while [ ! -S "$VM_JOB/mute/proxy.sock" ]; do sleep 0.1; done
	vm_qemu_start vm --tpm mute crb
	vm_qemu_wait vm
	vm_guest_results vm
}
vm_guest() {
	vt_pass unreachable
}
