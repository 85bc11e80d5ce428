# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# selftest: VM_DAEMON=guest stages the daemon under test into the guest as
# $VT_DAEMON_BIN (with its libraries); with no such daemon, FAIL daemon
VM_DAEMON=guest
vm_guest() {
	vt_run daemon-runs "$VT_DAEMON_BIN" socket --tpm2 --print-capabilities
	case $(cat "$VT_OUT") in
	*'"tpm-2.0"'*) vt_pass daemon-capabilities ;;
	*) vt_fail daemon-capabilities "no tpm-2.0 in: $(cat "$VT_OUT")" ;;
	esac
}
