# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# selftest: a guest that reports nothing is a failure, not a pass
vm_guest() {
	true
}
