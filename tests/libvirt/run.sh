#!/bin/bash
# tests/libvirt/run.sh - Debian's real libvirtd, run without systemd
# (shared/spec/qemu-libvirt.md B.8), defines and starts a TCG domain with
# <tpm model='tpm-crb'><backend type='emulator' version='2.0'/></tpm>, once
# with our vtpm-bridge as the `swtpm` libvirt finds on PATH (the `make
# install` entry point, $(PREFIX)/libexec/vtpm-bridge/swtpm) and once with
# Debian's /usr/bin/swtpm.  See tests/libvirt/README.md.
#
# usage: tests/libvirt/run.sh [--build DIR] [--daemon NAME]...
#   --build DIR    build directory holding vtpm-bridge (default: build)
#   --daemon NAME  swtpm | vtpm-bridge; repeatable (default: both)
# environment:
#   VTPM_VM_CACHE        kernel cache shared with tests/vm (default
#                        /var/cache/vtpm-bridge/vm)
#   VTPM_LIBVIRT_KEEP=1  keep the log directory even when every check passed
#
# stdout: result lines only (tests/README.md), a FAIL followed by indented
# tails of the logs.  stderr: the log directory and progress.  Exit status
# 0 iff no FAIL.
set -u

LV_HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$LV_HERE/../.." && pwd)
BUILD=build
DAEMONS=""
while [ $# -gt 0 ]; do
	case $1 in
	--build) BUILD=$2; shift 2 ;;
	--daemon) DAEMONS="$DAEMONS $2"; shift 2 ;;
	-h|--help) sed -n '2,/^set -u/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) echo "run.sh: unknown argument $1" >&2; exit 2 ;;
	esac
done
DAEMONS=${DAEMONS:-swtpm vtpm-bridge}
case $BUILD in /*) ;; *) BUILD=$REPO/$BUILD ;; esac

RUN=$(mktemp -d /tmp/vtpm-libvirt.XXXXXX)
chmod 0755 "$RUN"
echo "libvirt: logs in $RUN" >&2

# the guest's kernel and initramfs come from the VM harness
VM_HERE=$REPO/tests/vm
VM_BUILD=$BUILD
VM_CACHE=${VTPM_VM_CACHE:-/var/cache/vtpm-bridge/vm}
VM_LOG=$RUN/vm
mkdir -p "$VM_LOG"
# shellcheck source=tests/vm/lib/host.sh
. "$VM_HERE/lib/host.sh"

lv_log() { printf '[libvirt %s] %s\n' "$(date +%T)" "$*" >&2; }

T0=$SECONDS
NFAIL=0
LV_DAEMON=""	# the daemon of the current run, for the result lines
D=""		# its directory
DOM=""		# its domain

# lv_tails: the last lines of the logs that explain a failure, indented
lv_tails() {
	local f
	[ -n "$D" ] || return 0
	# libvirtd.log: its errors and warnings (the debug lines of tpm and
	# command are in the file), without the two every run has here
	if [ -s "$D/farm/var/log/libvirt/libvirtd.log" ]; then
		echo "    farm/var/log/libvirt/libvirtd.log (errors, warnings):"
		grep -E ' : [0-9]+: (error|warning) : ' "$D/farm/var/log/libvirt/libvirtd.log" |
			grep -vE 'virCgroupDetectControllers|dmidecode|security driver "none"|tainted' |
			tail -n 4 | cut -c1-220 | sed 's/^/      /'
	fi
	for f in "$D/farm/var/log/libvirt/libvirtd.out" \
			"$D/farm/var/log/libvirt/qemu/$DOM.log" "$D/farm/var/log/swtpm/libvirt/qemu/$DOM-swtpm.log" \
			"$D/console.log"; do
		[ -s "$f" ] || continue
		echo "    ${f#"$D"/}:"
		tr -d '\r' <"$f" | grep . | tail -n 4 | cut -c1-220 | sed 's/^/      /'
	done
}

# lv_result PASS|FAIL|SKIP CHECK [WHY]: one result line (tests/README.md)
lv_result() {
	local word=$1 check=$2 why=${3:-} label=""
	[ -n "$LV_DAEMON" ] && label=" ($LV_DAEMON)"
	why=$(printf '%s' "$why" | tr '\n\r' '  ' | cut -c1-400)
	case $word in
	PASS) echo "PASS  libvirt/$check$label" ;;
	SKIP) echo "SKIP  libvirt/$check$label: ${why:-no reason given}" ;;
	*) echo "FAIL  libvirt/$check$label: ${why:-failed}"
	   NFAIL=$((NFAIL + 1))
	   lv_tails ;;
	esac
}

fail_all() {	# CHECK WHY: the suite cannot run at all
	LV_DAEMON="" D=""
	lv_result FAIL "$1" "$2"
	echo "libvirt: $1: $2" >&2
	exit 1
}

# ------------------------------------------------------------ host tools
# Debian packages that scripts/setup-deps.sh installs: missing one is a
# FAIL (make check installs them), never a SKIP.
missing=""
for t in libvirtd:libvirt-daemon virsh:libvirt-clients qemu-system-x86_64:qemu-system-x86 \
		swtpm:swtpm swtpm_setup:swtpm-tools swtpm_ioctl:swtpm-tools swtpm_localca:swtpm-tools \
		unshare:util-linux busybox:busybox-static cpio:cpio depmod:kmod python3:python3 \
		tpm2:tpm2-tools openssl:openssl apt-get:apt dpkg:dpkg make:make; do
	command -v "${t%%:*}" >/dev/null 2>&1 || missing="$missing ${t%%:*} (${t#*:})"
done
[ -e /usr/lib/x86_64-linux-gnu/libvirt/connection-driver/libvirt_driver_qemu.so ] ||
	missing="$missing libvirt_driver_qemu.so (libvirt-daemon-driver-qemu)"
[ -e /usr/share/seabios/bios-256k.bin ] || missing="$missing SeaBIOS (seabios)"
[ -z "$missing" ] || fail_all host-tools "missing:$missing"
# capabilities, not packages
[ "$(id -u)" = 0 ] || { lv_result SKIP libvirt "needs root (a system libvirtd in private namespaces)"; exit 0; }
unshare --mount --pid --fork --mount-proc true 2>/dev/null ||
	{ lv_result SKIP libvirt "unshare --mount --pid cannot make namespaces here: $(unshare --mount --pid --fork --mount-proc true 2>&1 | head -n 1)"; exit 0; }

# what the host has before the run, compared at the end (host-untouched):
# the paths only libvirt would write, and the libvirt-qemu user.  (Not
# /var/lib/swtpm-localca: other swtpm_setup users on the host write there.)
HOST_PATHS="/etc/libvirt /run/libvirt /var/lib/libvirt /var/log/libvirt /var/log/swtpm /var/cache/libvirt"
host_snapshot() {
	local p
	for p in $HOST_PATHS; do
		if [ -e "$p" ]; then find "$p" -printf '%p %s %m %u %T@\n' 2>/dev/null | sort
		else echo "$p absent"; fi
	done
	echo "passwd: $(getent passwd libvirt-qemu)"
	echo "group: $(getent group libvirt-qemu)"
}
host_snapshot >"$RUN/host.before"

# ------------------------------------------------------------ guest
vm_kernel_prepare || fail_all kernel "$VM_ERR"
cp "$VM_VMLINUZ" "$RUN/vmlinuz"
vm_initramfs_build "$LV_HERE/guest.sh" "$RUN/guest.cpio" || fail_all initramfs "$VM_ERR"
lv_log "kernel $VM_KV, initramfs $(du -m "$RUN/guest.cpio" | cut -f1) MB ($((SECONDS - T0)) s)"

# ------------------------------------------------------------ one run
LV_UNSHARE="" LV_NSINIT="" LV_READER=""
LV_VIRSH_T=60

lv_virsh() {	# virsh against this run's libvirtd; LV_VIRSH_T seconds at most
	timeout -k 5 "$LV_VIRSH_T" env HOME="$D/home" XDG_CONFIG_HOME="$D/home/.config" \
		XDG_CACHE_HOME="$D/home/.cache" XDG_RUNTIME_DIR="$D/home/run" \
		LIBVIRT_DEFAULT_URI="qemu:///system?socket=$D/farm/run/libvirt/libvirt-sock" \
		virsh -q "$@"
}

lv_domstate() { lv_virsh domstate "$DOM" 2>/dev/null | head -n 1; }

# lv_prepare_dir PATH: the per-run copies libvirtd gets in its namespace
# (nsinit.py binds them over the real paths)
lv_prepare_dir() {
	local real name e uid
	mkdir -p "$D/home/.config" "$D/home/.cache" "$D/home/run" "$D/orig"
	for real in /var/lib /var/log /var/cache /run; do
		name=${real#/}; name=${name//\//-}
		mkdir -p "$D/orig/$name" "$D/farm$real"
		# the host's entries stay reachable through symlinks into the
		# original tree (bound at $D/orig/$name inside the namespace)
		while IFS= read -r e; do
			case $real/$e in
			/var/lib/libvirt|/var/lib/swtpm-localca|/var/log/libvirt|/var/log/swtpm|/var/cache/libvirt|/run/libvirt) ;;
			*) ln -s "$D/orig/$name/$e" "$D/farm$real/$e" ;;
			esac
		done < <(find "$real" -mindepth 1 -maxdepth 1 -printf '%f\n')
	done
	mkdir -p "$D/farm/var/lib/libvirt" "$D/farm/var/log/libvirt" "$D/farm/var/log/swtpm" \
		"$D/farm/var/cache/libvirt" "$D/farm/run/libvirt"
	chmod 0700 "$D/farm/var/log/libvirt"
	# swtpm_localca's CA starts empty, as on a fresh install: a new CA per
	# run, and no copy of the host's CA keys in the logs
	mkdir -m 0750 "$D/farm/var/lib/swtpm-localca"
	chown --reference=/var/lib/swtpm-localca "$D/farm/var/lib/swtpm-localca" 2>/dev/null
	mkdir -p "$D/etc-libvirt"
	cp -a /etc/libvirt/. "$D/etc-libvirt/"
	cat >"$D/etc-libvirt/qemu.conf" <<-'EOF'
	# a root-only test host (qemu-libvirt.md B.8)
	user = "root"
	group = "root"
	swtpm_user = "root"
	swtpm_group = "root"
	cgroup_controllers = [ ]
	namespaces = [ ]
	remember_owner = 0
	security_driver = "none"
	stdio_handler = "file"
	EOF
	cat >"$D/etc-libvirt/libvirtd.conf" <<-'EOF'
	auth_unix_ro = "none"
	auth_unix_rw = "none"
	log_level = 3
	log_filters = "1:tpm 1:command 1:qemu_extdevice"
	log_outputs = "1:file:/var/log/libvirt/libvirtd.log"
	EOF
	# libvirtd resolves its default user libvirt-qemu before it reads
	# qemu.conf: add it (and its group) to this namespace's copies
	cp /etc/passwd "$D/passwd"
	cp /etc/group "$D/group"
	if ! getent passwd libvirt-qemu >/dev/null; then
		uid=64055
		while getent passwd "$uid" >/dev/null || getent group "$uid" >/dev/null; do uid=$((uid + 1)); done
		echo "libvirt-qemu:x:$uid:$uid:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin" >>"$D/passwd"
		getent group libvirt-qemu >/dev/null || echo "libvirt-qemu:x:$uid:" >>"$D/group"
	fi
	getent group kvm >/dev/null || echo "kvm:x:$((uid + 1)):" >>"$D/group"
}

lv_domain_xml() {	# UUID
	cat <<-EOF
	<domain type='qemu'>
	  <name>$DOM</name>
	  <uuid>$1</uuid>
	  <memory unit='MiB'>512</memory>
	  <vcpu>1</vcpu>
	  <os>
	    <type arch='x86_64' machine='pc'>hvm</type>
	    <kernel>$RUN/vmlinuz</kernel>
	    <initrd>$RUN/guest.cpio</initrd>
	    <cmdline>console=ttyS0 panic=-1 loglevel=4 rdinit=/init</cmdline>
	  </os>
	  <features><acpi/><apic/></features>
	  <on_poweroff>destroy</on_poweroff>
	  <on_reboot>destroy</on_reboot>
	  <on_crash>destroy</on_crash>
	  <devices>
	    <emulator>/usr/bin/qemu-system-x86_64</emulator>
	    <serial type='file'>
	      <source path='$D/console.log' append='on'/>
	      <target port='0'/>
	    </serial>
	    <serial type='pipe'>
	      <source path='$D/serial'/>
	      <target port='1'/>
	    </serial>
	    <tpm model='tpm-crb'>
	      <backend type='emulator' version='2.0'/>
	    </tpm>
	    <memballoon model='none'/>
	  </devices>
	</domain>
	EOF
}

# lv_wait_guest WORD COUNT SECONDS: until the guest has sent COUNT lines
# "VMTEST: WORD..." (the result channel keeps every boot's lines); 1 with
# LV_WHY if the time is up or the domain stops running first
lv_wait_guest() {
	local end=$((SECONDS + $3)) n i=0 st
	while :; do
		n=$(tr -d '\r' <"$D/results.raw" | grep -c "^VMTEST: $1")
		[ "$n" -ge "$2" ] && return 0
		if [ $SECONDS -ge $end ]; then
			LV_WHY="the guest did not send 'VMTEST: $1' (#$2) within $3 s"
			return 1
		fi
		i=$((i + 1))
		if [ $((i % 6)) = 0 ]; then
			st=$(lv_domstate)
			if [ "$st" != running ]; then
				sleep 0.5
				n=$(tr -d '\r' <"$D/results.raw" | grep -c "^VMTEST: $1")
				[ "$n" -ge "$2" ] && return 0
				LV_WHY="the domain is '$st' before the guest sent 'VMTEST: $1' (#$2)"
				return 1
			fi
		fi
		sleep 0.5
	done
}

# lv_wait_state STATE SECONDS
lv_wait_state() {
	local end=$((SECONDS + $2)) st
	while :; do
		st=$(lv_domstate)
		[ "$st" = "$1" ] && return 0
		[ $SECONDS -ge $end ] && { LV_WHY="the domain is '$st', not '$1', after $2 s"; return 1; }
		sleep 0.5
	done
}

lv_send() {	# TEXT: one line to the guest's ttyS1
	# shellcheck disable=SC2016  # sh expands them
	timeout 10 sh -c 'printf "%s\n" "$1" >"$2"' sh "$1" "$D/serial.in"
}

# lv_guest_sync: the guest's new PASS/FAIL/SKIP lines as results (complete
# lines only; the result channel keeps growing across boots)
LV_GLINES=0
LV_GSEEN=" "
lv_guest_sync() {
	local total line word name why
	total=$(tr -d '\r' <"$D/results.raw" | wc -l)
	[ "$total" -gt "$LV_GLINES" ] || return 0
	while IFS= read -r line; do
		vm_parse_line "$line" || continue
		word=$VM_WORD name=$VM_NAME why=$VM_WHY
		case $word in
		PASS|FAIL|SKIP)
			case $LV_GSEEN in *" $name "*)
				lv_result FAIL "$name" "reported twice (the guest ran a boot twice?)"
				continue ;;
			esac
			LV_GSEEN="$LV_GSEEN$name "
			lv_result "$word" "$name" "$why" ;;
		esac
	done < <(tr -d '\r' <"$D/results.raw" | sed -n "$((LV_GLINES + 1)),${total}p")
	LV_GLINES=$total
}

# lv_swtpm CHECK: the swtpm libvirt started for the domain (its pid file,
# written by libvirt, names the process by its PID in the namespace) must
# be the one this run put on PATH.  Sets LV_SWPID (the host PID).
lv_swtpm() {
	local check=$1 pidf nspid ns p exe i
	LV_SWPID=""
	for i in $(seq 20); do
		pidf=$(ls "$D"/farm/run/libvirt/qemu/swtpm/*-swtpm.pid 2>/dev/null | head -n 1)
		[ -n "$pidf" ] && [ -s "$pidf" ] && break
		sleep 0.25
	done
	if [ -z "$pidf" ] || [ ! -s "$pidf" ]; then
		lv_result FAIL "$check" "no swtpm pid file in /run/libvirt/qemu/swtpm ($(ls "$D/farm/run/libvirt/qemu/swtpm" 2>&1 | tr '\n' ' '))"
		return 1
	fi
	nspid=$(tr -dc 0-9 <"$pidf")
	ns=$(readlink "/proc/$LV_NSINIT/ns/pid")
	for p in /proc/[0-9]*; do
		[ "$(readlink "$p/ns/pid" 2>/dev/null)" = "$ns" ] || continue
		[ "$(awk '/^NSpid:/ { print $NF }' "$p/status" 2>/dev/null)" = "$nspid" ] || continue
		LV_SWPID=${p#/proc/}
		break
	done
	if [ -z "$LV_SWPID" ] || ! vm_alive "$LV_SWPID"; then
		lv_result FAIL "$check" "$(basename "$pidf") names PID $nspid, which does not run"
		return 1
	fi
	exe=$(readlink "/proc/$LV_SWPID/exe")
	echo "$check: swtpm pid $LV_SWPID (ns $nspid): $exe $(tr '\0' ' ' <"/proc/$LV_SWPID/cmdline")" >&2
	if [ "$exe" = "$LV_EXE" ]; then
		lv_result PASS "$check"
	else
		lv_result FAIL "$check" "libvirt's swtpm (pid $nspid, $(tr '\0' ' ' <"/proc/$LV_SWPID/cmdline" | cut -c1-100)) is $exe, not $LV_EXE"
		return 1
	fi
}

# lv_swtpm_gone CHECK SECONDS: the swtpm of lv_swtpm exits by itself and
# its ctrl socket goes
lv_swtpm_gone() {
	local end=$(($2 + SECONDS)) sock
	while [ $SECONDS -lt $end ]; do
		sock=$(ls "$D"/farm/run/libvirt/qemu/swtpm/*-swtpm.sock 2>/dev/null)
		if ! vm_alive "$LV_SWPID" && [ -z "$sock" ]; then return 0; fi
		sleep 0.25
	done
	if vm_alive "$LV_SWPID"; then
		LV_WHY="swtpm (pid $LV_SWPID) still runs $2 s after the domain stopped"
	else
		LV_WHY="swtpm exited, but its socket $sock is still there after $2 s"
	fi
	return 1
}

lv_stop() {	# whatever this run started; quiet
	local i
	if [ -n "$LV_NSINIT" ] && vm_alive "$LV_NSINIT"; then
		if [ -n "$DOM" ] && [ -S "$D/farm/run/libvirt/libvirt-sock" ]; then
			LV_VIRSH_T=20 lv_virsh destroy "$DOM" >/dev/null 2>&1
		fi
		kill -TERM "$LV_NSINIT" 2>/dev/null
		for i in $(seq 50); do vm_alive "$LV_NSINIT" || break; sleep 0.2; done
	fi
	# unshare --kill-child: SIGKILL to the namespace's PID 1 and so to all in it
	[ -n "$LV_UNSHARE" ] && kill -KILL "$LV_UNSHARE" 2>/dev/null
	[ -n "$LV_READER" ] && kill -TERM "$LV_READER" 2>/dev/null
	wait 2>/dev/null
	LV_UNSHARE="" LV_NSINIT="" LV_READER=""
	if [ -n "$D" ]; then rm -f "$D/domain.save"; fi
}

# lv_run DAEMON: the whole cycle for one daemon; returns at the first
# failure that leaves nothing more to check
lv_run() {
	local path uuid hex i out rc n watch
	LV_DAEMON=$1
	D=$RUN/$1
	DOM=vtpm-lv-${1%%-*}
	LV_GLINES=0 LV_GSEEN=" "
	mkdir -p "$D"
	path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
	case $1 in
	swtpm)
		LV_EXE=$(readlink -f /usr/bin/swtpm)
		path=/usr/sbin:/usr/bin:/sbin:/bin ;;
	vtpm-bridge)
		# the documented entry point: make install's $(LIBEXECDIR)/vtpm-bridge/swtpm
		if [ ! -x "$BUILD/vtpm-bridge" ]; then
			lv_result FAIL daemon "$BUILD/vtpm-bridge does not exist (run make)"
			return 1
		fi
		if ! make -C "$REPO" --no-print-directory -o "$BUILD/vtpm-bridge" install \
				BUILD="$BUILD" PREFIX="$RUN/prefix" >"$D/make-install.log" 2>&1 ||
				[ ! -L "$RUN/prefix/libexec/vtpm-bridge/swtpm" ]; then
			lv_result FAIL install "make install PREFIX=$RUN/prefix: $(tail -n 1 "$D/make-install.log")"
			return 1
		fi
		LV_EXE=$(readlink -f "$RUN/prefix/libexec/vtpm-bridge/swtpm")
		if [ "$LV_EXE" != "$RUN/prefix/bin/vtpm-bridge" ]; then
			lv_result FAIL install "libexec/vtpm-bridge/swtpm resolves to $LV_EXE"
			return 1
		fi
		path=$RUN/prefix/libexec/vtpm-bridge:$path ;;
	*) lv_result FAIL daemon "unknown daemon $1"; return 1 ;;
	esac
	lv_prepare_dir

	# libvirtd, PID 1's child in new mount + PID namespaces
	unshare --mount --pid --fork --mount-proc --kill-child \
		python3 "$LV_HERE/nsinit.py" "$D" "$path" </dev/null >"$D/nsinit.out" 2>&1 &
	LV_UNSHARE=$!
	for i in $(seq 300); do
		[ -z "$LV_NSINIT" ] && LV_NSINIT=$(pgrep -P "$LV_UNSHARE" | head -n 1)
		[ -S "$D/farm/run/libvirt/libvirt-sock" ] && lv_virsh uri >/dev/null 2>&1 && break
		vm_alive "$LV_UNSHARE" || break
		sleep 0.1
	done
	if ! LV_VIRSH_T=10 lv_virsh uri >"$D/virsh.out" 2>&1; then
		lv_result FAIL libvirtd "libvirtd does not answer after 30 s: $(tail -n 1 "$D/virsh.out") $(tail -n 2 "$D/nsinit.out" | tr '\n' ' ')"
		return 1
	fi
	lv_result PASS libvirtd
	lv_log "$1: libvirtd up ($((SECONDS - LV_T0)) s)"

	# the guest's result channel: a FIFO pair; the reader holds the
	# output FIFO open read-write, so it never sees EOF between QEMUs
	mkfifo "$D/serial.in" "$D/serial.out"
	: >"$D/results.raw"
	exec {i}<>"$D/serial.out"
	cat <&$i >>"$D/results.raw" &
	LV_READER=$!
	exec {i}<&-

	uuid=$(cat /proc/sys/kernel/random/uuid)
	hex=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
	lv_domain_xml "$uuid" >"$D/domain.xml"
	if out=$(lv_virsh define "$D/domain.xml" 2>&1); then lv_result PASS define
	else lv_result FAIL define "$out"; return 1; fi

	# ---- boot 1: swtpm_setup (EK certificate), tpm2-tools, an NV index
	# (every process in the namespace is recorded meanwhile: which swtpm
	# swtpm_setup runs shows nowhere else)
	python3 "$LV_HERE/procwatch.py" "$LV_NSINIT" "$D/procs.txt" 2>"$D/procwatch.err" &
	watch=$!
	sleep 0.2
	LV_VIRSH_T=120
	out=$(lv_virsh start "$DOM" 2>&1); rc=$?
	LV_VIRSH_T=60
	kill -TERM $watch; wait $watch
	if [ $rc = 0 ]; then lv_result PASS start
	else lv_result FAIL start "virsh start: $out"; return 1; fi
	lv_log "$1: started ($((SECONDS - LV_T0)) s)"
	if [ -n "$(ls "$D/farm/var/lib/libvirt/swtpm/$uuid/tpm2" 2>/dev/null)" ]; then
		lv_result PASS swtpm-setup
	else
		lv_result FAIL swtpm-setup "no TPM state in /var/lib/libvirt/swtpm/$uuid/tpm2 after the start"
	fi
	lv_swtpm "swtpm-is-$1" || return 1
	# swtpm_setup (Debian's) ran the same swtpm: its manufacturing instance
	# (--flags not-need-init,startup-clear ... --ctrl type=unixio,clientfd=N)
	out=$(awk -v want="$LV_EXE" '$3 ~ /(^|\/)swtpm$/ && $2 != want { print $2 ": " $3, $4, $5, $6; exit }' "$D/procs.txt")
	n=$(awk -v want="$LV_EXE" '$3 ~ /(^|\/)swtpm$/ && $2 == want && / --flags not-need-init/' "$D/procs.txt" | wc -l)
	if [ -n "$out" ]; then
		lv_result FAIL "setup-swtpm-is-$1" "swtpm_setup ran another swtpm: $out"
	elif [ "$n" -lt 1 ]; then
		lv_result FAIL "setup-swtpm-is-$1" "no swtpm_setup instance of $LV_EXE seen (procs.txt: $(cut -d' ' -f2,3 "$D/procs.txt" | sort -u | tr '\n' ';' | cut -c1-200))"
	else
		lv_result PASS "setup-swtpm-is-$1"
	fi
	lv_wait_guest "WAIT phase" 1 150 || { lv_result FAIL boot1 "$LV_WHY"; return 1; }
	lv_log "$1: boot 1 at /init ($((SECONDS - LV_T0)) s)"
	lv_send "boot1 $hex" || { lv_result FAIL boot1 "cannot write to the guest's ttyS1"; return 1; }
	lv_wait_guest "WAIT destroy" 1 150 || { lv_guest_sync; lv_result FAIL boot1 "$LV_WHY"; return 1; }
	lv_guest_sync

	# ---- virsh destroy + start: the NV index must still be there
	if ! out=$(lv_virsh destroy "$DOM" 2>&1); then lv_result FAIL destroy "virsh destroy: $out"; return 1; fi
	if ! lv_wait_state "shut off" 30; then lv_result FAIL destroy "$LV_WHY"; return 1; fi
	if lv_swtpm_gone destroy 20; then lv_result PASS destroy
	else lv_result FAIL destroy "$LV_WHY"; return 1; fi
	LV_VIRSH_T=120
	if out=$(lv_virsh start "$DOM" 2>&1); then lv_result PASS start-after-destroy
	else lv_result FAIL start-after-destroy "virsh start: $out"; return 1; fi
	LV_VIRSH_T=60
	lv_swtpm "swtpm-is-$1-after-destroy" || return 1
	lv_wait_guest "WAIT phase" 2 150 || { lv_result FAIL boot2 "$LV_WHY"; return 1; }
	lv_log "$1: boot 2 at /init ($((SECONDS - LV_T0)) s)"
	lv_send "boot2 $hex" || { lv_result FAIL boot2 "cannot write to the guest's ttyS1"; return 1; }
	lv_wait_guest "WAIT save" 1 150 || { lv_guest_sync; lv_result FAIL boot2 "$LV_WHY"; return 1; }
	lv_guest_sync

	# ---- virsh save + restore in the middle of the guest's script
	LV_VIRSH_T=180
	if ! out=$(lv_virsh save "$DOM" "$D/domain.save" 2>&1); then
		LV_VIRSH_T=60; lv_result FAIL save "virsh save: $out"; return 1
	fi
	LV_VIRSH_T=60
	if ! lv_wait_state "shut off" 30; then lv_result FAIL save "$LV_WHY"; return 1; fi
	if lv_swtpm_gone save 20; then lv_result PASS save
	else lv_result FAIL save "$LV_WHY"; return 1; fi
	lv_log "$1: saved, $(du -m "$D/domain.save" | cut -f1) MB ($((SECONDS - LV_T0)) s)"
	LV_VIRSH_T=180
	if ! out=$(lv_virsh restore "$D/domain.save" 2>&1); then
		LV_VIRSH_T=60; lv_result FAIL restore "virsh restore: $out"; return 1
	fi
	LV_VIRSH_T=60
	if lv_wait_state running 30; then lv_result PASS restore
	else lv_result FAIL restore "$LV_WHY"; return 1; fi
	rm -f "$D/domain.save"
	lv_swtpm "swtpm-is-$1-after-restore" || return 1
	lv_send go || { lv_result FAIL resume "cannot write to the guest's ttyS1"; return 1; }
	if lv_wait_guest DONE 1 150; then
		lv_guest_sync
		if lv_wait_state "shut off" 30; then lv_result PASS guest-done
		else lv_result FAIL guest-done "after DONE: $LV_WHY"; return 1; fi
	else
		lv_guest_sync
		lv_result FAIL guest-done "$LV_WHY"
		return 1
	fi
	lv_log "$1: guest done ($((SECONDS - LV_T0)) s)"
	if lv_swtpm_gone swtpm-exit 20; then lv_result PASS swtpm-exit
	else lv_result FAIL swtpm-exit "$LV_WHY"; fi

	# the guest kernel must not have oopsed, whatever it reported
	out=$(tr -d '\r' <"$D/console.log" 2>/dev/null |
		grep -m 1 -E 'BUG:|Oops|general protection fault|Kernel panic|list_(add|del) corruption|Call Trace:')
	if [ -n "$out" ]; then lv_result FAIL guest-kernel "console: $out"
	else lv_result PASS guest-kernel; fi

	# ---- undefine removes the TPM state
	if ! out=$(lv_virsh undefine "$DOM" 2>&1); then lv_result FAIL undefine "virsh undefine: $out"; return 1; fi
	if [ -e "$D/farm/var/lib/libvirt/swtpm/$uuid" ]; then
		lv_result FAIL undefine "/var/lib/libvirt/swtpm/$uuid is still there"
	else
		lv_result PASS undefine
	fi
	DOM=""
}

cleanup() {
	lv_stop
	if [ "$NFAIL" = 0 ] && [ "${VTPM_LIBVIRT_KEEP:-0}" != 1 ]; then
		rm -rf "$RUN"
	else
		rm -f "$RUN/vmlinuz" "$RUN/guest.cpio" "$RUN"/*/domain.save
		echo "libvirt: logs kept in $RUN" >&2
	fi
}
trap cleanup EXIT
trap 'echo "libvirt: interrupted" >&2; NFAIL=$((NFAIL + 1)); exit 143' TERM INT

for dmn in $DAEMONS; do
	LV_T0=$SECONDS
	lv_run "$dmn"
	lv_stop
	lv_log "$dmn: $((SECONDS - LV_T0)) s"
done

LV_DAEMON="" D=""
host_snapshot >"$RUN/host.after"
if cmp -s "$RUN/host.before" "$RUN/host.after"; then
	lv_result PASS host-untouched
else
	lv_result FAIL host-untouched "the host's libvirt paths changed: $(diff "$RUN/host.before" "$RUN/host.after" | grep '^[<>]' | head -n 3 | tr '\n' ' ')"
fi
lv_log "done in $((SECONDS - T0)) s, $NFAIL failed"
[ "$NFAIL" = 0 ]
