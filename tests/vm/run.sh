#!/bin/bash
# tests/vm/run.sh - the real-kernel suite: boots Debian's own kernel in QEMU
# and runs the scenarios of tests/vm/scenarios/ against Debian's swtpm and
# our daemon in the same run.  See tests/vm/README.md.
#
# usage: tests/vm/run.sh [--build DIR] [--jobs N] [--daemon NAME]... [SCENARIO...]
#   --build DIR    build directory holding vtpm-bridge (default: build)
#   --jobs N       guests run in parallel (default: number of CPUs)
#   --daemon NAME  swtpm | vtpm-bridge; repeatable (default: both)
#   --scenarios DIR  where the scenario files are (default: tests/vm/scenarios;
#                  tests/vm/selftest/check.sh runs the harness's own failure
#                  tests from tests/vm/selftest/scenarios)
#   SCENARIO       a scenario (qemu-emulator) or one variant of it
#                  (qemu-emulator-crb); default: all of them
# environment:
#   VTPM_VM_CACHE  kernel cache (default /var/cache/vtpm-bridge/vm)
#   VTPM_VM_LOG    log directory (default: a new /tmp/vtpm-vm.XXXXXX)
#   VM_ACCEL       kvm | tcg: skip the KVM probe
#   VTPM_VM_KEEP=1 keep the initramfs images and migration streams
#   VM_KERNEL_PKG  e.g. linux-image-6.1.0-56-amd64 (default: what
#                  linux-image-amd64 depends on)
#
# stdout: result lines only (tests/README.md).  stderr: the log directory
# and progress.  Exit status 0 iff no FAIL.
set -u

VM_HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$VM_HERE/../.." && pwd)
VM_BUILD=build
VM_SCEN_DIR=$VM_HERE/scenarios
JOBS=$(nproc 2>/dev/null || echo 2)
DAEMONS=""
SELECT=()
while [ $# -gt 0 ]; do
	case $1 in
	--build) VM_BUILD=$2; shift 2 ;;
	--jobs) JOBS=$2; shift 2 ;;
	--daemon) DAEMONS="$DAEMONS $2"; shift 2 ;;
	--scenarios) VM_SCEN_DIR=$(cd "$2" && pwd) || exit 2; shift 2 ;;
	-h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	-*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	*) SELECT+=("$1"); shift ;;
	esac
done
DAEMONS=${DAEMONS:-swtpm vtpm-bridge}
case $VM_BUILD in /*) ;; *) VM_BUILD=$REPO/$VM_BUILD ;; esac
VM_CACHE=${VTPM_VM_CACHE:-/var/cache/vtpm-bridge/vm}
if [ -n "${VTPM_VM_LOG:-}" ]; then VM_LOG=$VTPM_VM_LOG; mkdir -p "$VM_LOG"
else VM_LOG=$(mktemp -d /tmp/vtpm-vm.XXXXXX); fi
export VM_HERE VM_BUILD VM_CACHE VM_LOG
echo "vm: logs in $VM_LOG" >&2

# shellcheck source=lib/host.sh
. "$VM_HERE/lib/host.sh"

T_START=$SECONDS
fail_all() {	# CHECK WHY: the suite cannot run at all
	echo "FAIL vm/$1: $2"
	echo "vm: $1: $2" >&2
	exit 1
}

# ------------------------------------------------------------ host tools
# Each is a Debian package that scripts/setup-deps.sh installs; missing
# one is a FAIL (make check installs them), never a SKIP.
missing=""
for t in qemu-system-x86_64:qemu-system-x86 swtpm:swtpm busybox:busybox-static cpio:cpio \
		depmod:kmod python3:python3 tpm2:tpm2-tools apt-get:apt dpkg:dpkg ldd:libc-bin \
		flock:util-linux cc:build-essential dmsetup:dmsetup mkfs.xfs:xfsprogs mkfs.ext4:e2fsprogs; do
	command -v "${t%%:*}" >/dev/null 2>&1 || missing="$missing ${t%%:*} (${t#*:})"
done
[ -e /usr/share/seabios/bios-256k.bin ] || missing="$missing SeaBIOS (seabios)"
[ -z "$missing" ] || fail_all host-tools "missing:$missing"

# ------------------------------------------------------------ scenarios
scen_files=()
for f in "$VM_SCEN_DIR"/*.sh; do
	[ -f "$f" ] && scen_files+=("$f")
done
[ ${#scen_files[@]} -gt 0 ] || fail_all scenarios "no scenario in $VM_SCEN_DIR"

# plan: one job per scenario x variant x daemon ("scenario variant daemon cost")
plan=()
for f in "${scen_files[@]}"; do
	s=$(basename "$f" .sh)
	hdr=$(VM_VARIANTS="" VM_DAEMON=none VM_COST=30; . "$f" >/dev/null 2>&1 &&
		declare -F vm_guest >/dev/null && echo "${VM_VARIANTS:-} | $VM_DAEMON | $VM_COST")
	[ -n "$hdr" ] || fail_all "$s/scenario-file" "$f does not source cleanly or defines no vm_guest"
	variants=$(echo "$hdr" | cut -d"|" -f1 | xargs)
	where=$(echo "$hdr" | cut -d'|' -f2 | tr -d ' ')
	cost=$(echo "$hdr" | cut -d'|' -f3 | tr -d ' ')
	for v in ${variants:-"-"}; do
		job=$s; [ "$v" != - ] && job=$s-$v
		if [ ${#SELECT[@]} -gt 0 ]; then
			sel=0
			for x in "${SELECT[@]}"; do [ "$x" = "$s" ] || [ "$x" = "$job" ] && sel=1; done
			[ $sel = 1 ] || continue
		fi
		if [ "$where" = none ]; then
			plan+=("$cost $s $v -")
		else
			for dmn in $DAEMONS; do plan+=("$cost $s $v $dmn"); done
		fi
	done
done
[ ${#plan[@]} -gt 0 ] || fail_all scenarios "nothing matches: ${SELECT[*]}"
# longest jobs first: fewer idle CPUs at the end
mapfile -t plan < <(printf '%s\n' "${plan[@]}" | sort -s -k1,1nr)

# ------------------------------------------------------------ kernel + accel
vm_kernel_prepare || fail_all kernel "$VM_ERR"
T_KERNEL=$((SECONDS - T_START))
vm_log "kernel $VM_KPKG ($VM_KV) ready after $T_KERNEL s"
t0=$SECONDS
vm_accel_prepare
T_ACCEL=$((SECONDS - t0))
vm_log "accelerator $VM_ACCEL ($T_ACCEL s)"

# ------------------------------------------------------------ initramfs images
# one per scenario, shared by its variants and daemons; built in parallel
declare -A INITRD_ERR=()
mkdir -p "$VM_LOG/initramfs"
t0=$SECONDS
for s in $(printf '%s\n' "${plan[@]}" | awk '{ print $2 }' | sort -u); do
	( vm_initramfs_build "$VM_SCEN_DIR/$s.sh" "$VM_LOG/initramfs/$s.cpio" ||
		{ echo "$VM_ERR" >"$VM_LOG/initramfs/$s.err"; exit 1; } ) &
done
wait
for s in $(printf '%s\n' "${plan[@]}" | awk '{ print $2 }' | sort -u); do
	[ -f "$VM_LOG/initramfs/$s.err" ] && INITRD_ERR[$s]=$(cat "$VM_LOG/initramfs/$s.err")
done
T_INITRD=$((SECONDS - t0))
vm_log "initramfs images built in $T_INITRD s"
T_JOBS0=$SECONDS

# ------------------------------------------------------------ jobs
daemon_bin() {	# NAME -> path, empty if it does not exist
	case $1 in
	swtpm) command -v swtpm ;;
	vtpm-bridge) [ -x "$VM_BUILD/vtpm-bridge" ] && echo "$VM_BUILD/vtpm-bridge" ;;
	esac
}

# run_job INDEX COST SCENARIO VARIANT DAEMON: runs in a subshell; result
# lines go to $VM_LOG/<job>/results
run_job() {
	# (the scenario's functions run in this shell: harness names start with VM_ or _vm)
	_vm_s=$3 _vm_v=$4 _vm_dmn=$5 _vm_t0=$SECONDS
	VM_VARIANT=""; [ "$_vm_v" != - ] && VM_VARIANT=$_vm_v
	VM_JOBNAME=$_vm_s; [ -n "$VM_VARIANT" ] && VM_JOBNAME=$_vm_s-$VM_VARIANT
	VM_DAEMON_NAME=""; [ "$_vm_dmn" != - ] && VM_DAEMON_NAME=$_vm_dmn
	VM_JOB=$VM_LOG/$VM_JOBNAME${VM_DAEMON_NAME:+.$VM_DAEMON_NAME}
	mkdir -p "$VM_JOB"
	exec >"$VM_JOB/results" 2>"$VM_JOB/job.log"
	trap 'vm_job_cleanup; echo "$((SECONDS - _vm_t0))" >"$VM_JOB/seconds"' EXIT
	trap 'exit 143' TERM INT
	VM_DAEMON=none VM_MEM=512 VM_SMP=1 VM_TIMEOUT=300 VM_MODULES="" VM_VARIANTS=""
	unset -f vm_host vm_guest
	# shellcheck disable=SC1090
	. "$VM_SCEN_DIR/$_vm_s.sh"
	if [ -n "${INITRD_ERR[$_vm_s]:-}" ]; then
		vm_result FAIL initramfs "${INITRD_ERR[$_vm_s]}"
		exit 0
	fi
	if [ -n "$VM_DAEMON_NAME" ]; then
		VM_DAEMON_BIN=$(daemon_bin "$VM_DAEMON_NAME")
		if [ -z "$VM_DAEMON_BIN" ]; then
			case $VM_DAEMON_NAME in
			vtpm-bridge) vm_result FAIL daemon "$VM_BUILD/vtpm-bridge does not exist (run make)" ;;
			*) vm_result FAIL daemon "$VM_DAEMON_NAME is not installed" ;;
			esac
			exit 0
		fi
	fi
	# per job: the scenario's image plus /vm/env (a second, concatenated cpio)
	_vm_ov=$VM_JOB/overlay
	mkdir -p "$_vm_ov/vm"
	{
		echo "VT_JOB='$VM_JOBNAME'"
		echo "VM_VARIANT='$VM_VARIANT'"
		echo "VT_DAEMON='$VM_DAEMON_NAME'"
	} >"$_vm_ov/vm/env"
	if [ "$VM_DAEMON" = guest ] && [ -n "$VM_DAEMON_NAME" ]; then
		# the daemon under test runs in the guest as /usr/bin/tpm-daemon.
		# The overlay gets the image's merged-/usr links first: a real
		# lib/ directory in this cpio (ldd names /lib/x86_64-linux-gnu/...)
		# would replace the image's /lib -> usr/lib link when the kernel
		# unpacks it, and /lib/modules (modprobe) would be gone.
		mkdir -p "$_vm_ov/usr/bin" "$_vm_ov/usr/sbin" "$_vm_ov/usr/lib" "$_vm_ov/usr/lib64"
		for _vm_l in bin sbin lib lib64; do ln -s "usr/$_vm_l" "$_vm_ov/$_vm_l"; done
		if ! vm_stage_elf "$_vm_ov" "$VM_DAEMON_BIN" /usr/bin/tpm-daemon; then
			vm_result FAIL daemon-staging "$VM_ERR"
			exit 0
		fi
		echo "VT_DAEMON_BIN=/usr/bin/tpm-daemon" >>"$_vm_ov/vm/env"
	fi
	VM_INITRD=$VM_JOB/guest.initrd
	{ cat "$VM_LOG/initramfs/$_vm_s.cpio"
	  (cd "$_vm_ov" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0); } >"$VM_INITRD"
	rm -rf "$_vm_ov"
	if declare -F vm_host >/dev/null; then
		vm_host
	else
		vm_host_default
	fi
	echo "job $VM_JOBNAME ${VM_DAEMON_NAME:-}: $((SECONDS - _vm_t0)) s" >&2
}

# the default host part: (the daemon on the host,) one guest, its results
vm_host_default() {
	local tpm=()
	if [ "$VM_DAEMON" = host ]; then
		vm_daemon_start tpm || return 0
		tpm=(--tpm tpm "${VM_TPM_MODEL:-crb}")
	fi
	vm_qemu_start vm "${tpm[@]}"
	vm_qemu_wait vm
	vm_guest_results vm
	if [ "$VM_DAEMON" = host ]; then
		vm_daemon_wait tpm daemon-exit
	fi
}

jobdir() {	# plan entry -> the job's log directory
	set -- $1
	local j=$2; [ "$3" != - ] && j=$2-$3
	[ "$4" != - ] && j=$j.$4
	echo "$VM_LOG/$j"
}

declare -A PID_OF=()
children=""
on_signal() {
	vm_log "interrupted: stopping the jobs"
	for p in $children; do kill -TERM "$p" 2>/dev/null; done
	wait
	exit 130
}
trap on_signal INT TERM
# the logs stay; the big reproducible files go (VTPM_VM_KEEP=1 keeps them)
[ "${VTPM_VM_KEEP:-0}" = 1 ] ||
	trap 'rm -rf "$VM_LOG"/initramfs/*.cpio "$VM_LOG"/kvm-probe/initrd.cpio' EXIT

next=0 printed=0
ntotal=${#plan[@]}
: >"$VM_LOG/results.txt"
vm_log "${ntotal} jobs, $JOBS at a time"
while [ $printed -lt "$ntotal" ]; do
	running=0
	for ((i = printed; i < next; i++)); do
		vm_alive "${PID_OF[$i]}" && running=$((running + 1))
	done
	if [ $running -lt "$JOBS" ] && [ $next -lt "$ntotal" ]; then
		# shellcheck disable=SC2086
		( run_job $next ${plan[$next]} ) &
		PID_OF[$next]=$!
		children="$children $!"
		next=$((next + 1))
		continue
	fi
	wait -n
	# print finished jobs in plan order
	while [ $printed -lt $next ] && ! vm_alive "${PID_OF[$printed]}"; do
		d=$(jobdir "${plan[$printed]}")
		if [ -s "$d/results" ]; then
			cat "$d/results"
			cat "$d/results" >>"$VM_LOG/results.txt"
		else
			echo "FAIL vm/$(basename "$d"): the job printed no result (see $d/job.log)" |
				tee -a "$VM_LOG/results.txt"
		fi
		vm_log "done $(basename "$d") ($(cat "$d/seconds" 2>/dev/null || echo '?') s)"
		printed=$((printed + 1))
	done
done

# timing notes for the README
{
	echo "total $((SECONDS - T_START)) s: kernel $T_KERNEL s, accel probe $T_ACCEL s ($VM_ACCEL)," \
		"initramfs $T_INITRD s, jobs $((SECONDS - T_JOBS0)) s ($JOBS at a time)"
	for e in "${plan[@]}"; do
		d=$(jobdir "$e")
		echo "$(basename "$d") $(cat "$d/seconds" 2>/dev/null || echo '?') s"
	done
} >"$VM_LOG/times.txt"
vm_log "$(grep -c '^PASS' "$VM_LOG/results.txt") passed, $(grep -c '^FAIL' "$VM_LOG/results.txt") failed, $(grep -c '^SKIP' "$VM_LOG/results.txt") skipped in $((SECONDS - T_START)) s"
! grep -q '^FAIL' "$VM_LOG/results.txt"
