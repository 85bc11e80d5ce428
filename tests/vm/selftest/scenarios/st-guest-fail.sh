# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# selftest: failing guest checks come through as FAIL with their reason
vm_guest() {
	vt_run false-cmd sh -c 'echo the reason; exit 3'
	vt_same mismatch expected got "a value"
	vt_skip skipped "a capability the selftest lacks"
	vt_pass passed
	vt_pass passed
}
