# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# selftest: a kernel panic ends QEMU (panic=-1, -no-reboot) without DONE
vm_guest() {
	vt_pass before-panic
	echo c >/proc/sysrq-trigger
	sleep 30
}
