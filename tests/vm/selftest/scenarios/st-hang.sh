# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# selftest: a guest that hangs ends at VM_TIMEOUT with FAIL guest-done
VM_TIMEOUT=30
vm_guest() {
	vt_pass started
	sleep 100000
}
