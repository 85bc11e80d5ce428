# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# selftest: a guest script that stops half-way (exit status != 0)
vm_guest() {
	vt_pass before-exit
	exit 3
	vt_pass never-reached
}
