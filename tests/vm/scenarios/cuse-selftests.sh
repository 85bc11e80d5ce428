# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# The kernel's own TPM 2.0 selftests (tools/testing/selftests/tpm2 of
# Debian's linux-source-6.1: tpm2.py, tpm2_tests.py) against our CUSE
# device named tpm0, in a guest with no other TPM: the proof that it
# behaves like a kernel TPM device (seal/unseal with auth and policy, short
# commands, partial reads, a second write before the read, O_NONBLOCK +
# poll).  SmokeTest and AsyncTest open /dev/tpm0 and give one result per
# test method.  SpaceTest needs /dev/tpmrm0 (the kernel's resource
# manager), which a CUSE device does not have: it is a SKIP with that
# reason, not run.  Recipe: shared/lab/vm/payloads/tpm2-selftests.
#
# The tests are not in the repository: vm_stage_kselftests (lib/host.sh)
# stages them from $VTPM_VM_CACHE/kselftest-tpm2/<version>/tpm2 (the first
# run downloads linux-source-6.1, about 140 MB) with the stdlib files of
# Debian's python3 that they load; vt_kselftests (lib/guest.sh) runs them.
# proxy-selftests runs the same tests on the vtpm-proxy front.
#
# The daemon: `vtpm-bridge cuse -n tpm0 --tpm2 --flags
# not-need-init,startup-clear` (the kernel's driver would have sent
# TPM2_Startup; the tests do not).  Debian's swtpm has no CUSE front: its
# row is one SKIP.

VM_DESC="kernel tpm2 selftests (SmokeTest, AsyncTest) on the CUSE device /dev/tpm0"
VM_DAEMON=guest
VM_BINS="/usr/bin/python3"
VM_LIBS="/usr/lib/x86_64-linux-gnu/libtpms.so.0"
VM_MODULES="fuse cuse"
VM_MEM=768
VM_TIMEOUT=300
VM_COST=45

vm_host() { vm_cuse_host; }

vm_stage() { vm_stage_kselftests "$1"; }

vm_guest() {
	vt_no_other_tpm || return 0
	vt_user_dir /tmp/st
	t0=$(vt_now)
	# shellcheck disable=SC2086  # VT_SANDBOX is several words
	"$VT_DAEMON_BIN" cuse -n tpm0 --tpm2 --tpmstate dir=/tmp/st --flags not-need-init,startup-clear \
		--log file=/tmp/daemon.log -f $VT_SANDBOX >/tmp/daemon.out 2>&1 &
	dpid=$!
	i=0
	while [ ! -c /dev/tpm0 ] && [ $i -lt 100 ] && kill -0 $dpid 2>/dev/null; do sleep 0.1; i=$((i + 1)); done
	if [ -c /dev/tpm0 ]; then vt_pass cuse-tpm0 "$(ls -l /dev/tpm0 | tr -s ' ' | cut -d' ' -f1,5,6,10) after ${i}00 ms"
	else
		vt_fail cuse-tpm0 "no /dev/tpm0: $(tail -n 3 /tmp/daemon.out /tmp/daemon.log 2>/dev/null | tr '\n' ' ' | cut -c1-300)"
		return 0
	fi
	vt_sandboxed sandboxed "$dpid"
	# a CUSE device has no resource-manager node: what opens tpmrm0 is a SKIP
	vt_kselftests "SmokeTest SpaceTest AsyncTest" \
		"opens /dev/tpmrm0 (the kernel's TPM resource manager, FLAG_SPACE); a CUSE device has no tpmrm node"

	kill $dpid
	i=0
	while { kill -0 $dpid 2>/dev/null || [ -e /dev/tpm0 ]; } && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); done
	if kill -0 $dpid 2>/dev/null; then vt_fail daemon-exit "still running 5 s after SIGTERM"; kill -9 $dpid
	elif [ -e /dev/tpm0 ]; then vt_fail daemon-exit "the daemon exited but /dev/tpm0 is still there"
	else wait $dpid; rc=$?
		if [ $rc -eq 0 ]; then vt_pass daemon-exit "exit 0 on SIGTERM, /dev/tpm0 removed"
		else vt_fail daemon-exit "exit status $rc on SIGTERM: $(tail -n 1 /tmp/daemon.out)"; fi
	fi
	return 0
}
