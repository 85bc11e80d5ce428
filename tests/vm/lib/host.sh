# shellcheck shell=bash
# Host side of the VM harness, sourced by tests/vm/run.sh.
#
#   kernel      vm_kernel_prepare: Debian's linux-image-amd64 via apt-get
#               download + dpkg -x into $VM_CACHE (never /boot)
#   accel       vm_accel_prepare: KVM if a probe guest boots with it, else TCG
#               (the answer is cached per kernel and QEMU version)
#   initramfs   vm_initramfs_build: busybox, /init, the scenario's binaries
#               with their ldd closure, dlopen()ed libraries, our guest tools
#               (tools/*.c), modules + depmod, the scenario's vm_stage hook
#   job API     the functions a scenario's vm_host uses (see README.md):
#               vm_daemon_start/_wait, vm_qemu_start/_wait, vm_wait_line,
#               vm_send, vm_qmp, vm_guest_results, vm_ctrl_check, vm_result
#
# Globals set by run.sh: VM_HERE (tests/vm), VM_CACHE, VM_LOG (log dir),
# VM_BUILD (build dir).

VM_KVM_PROBE_TIMEOUT=${VM_KVM_PROBE_TIMEOUT:-20}

vm_log() { printf '[vm %s] %s\n' "$(date +%T)" "$*" >&2; }

# ------------------------------------------------------------------ kernel

# vm_kernel_prepare: sets VM_KPKG, VM_KROOT, VM_KV, VM_VMLINUZ.  On failure
# returns 1 with the reason in VM_ERR.
vm_kernel_prepare() {
	local lockfd deb
	mkdir -p "$VM_CACHE/debs" "$VM_CACHE/kernel" || { VM_ERR="cannot create $VM_CACHE"; return 1; }
	exec {lockfd}>"$VM_CACHE/.lock"
	flock -w 900 "$lockfd" || { VM_ERR="$VM_CACHE/.lock stays locked"; return 1; }
	VM_KPKG=${VM_KERNEL_PKG:-$(vm_kernel_resolve)}
	if [ -z "$VM_KPKG" ] || { [ ! -f "$VM_CACHE/kernel/$VM_KPKG/.unpacked" ] &&
			! ls "$VM_CACHE/debs/${VM_KPKG}"_*.deb >/dev/null 2>&1; }; then
		# nothing cached for it: the lists may be stale, or missing
		vm_log "apt-get update (resolving linux-image-amd64)"
		apt-get update -q >"$VM_LOG/apt-update.log" 2>&1
		VM_KPKG=${VM_KERNEL_PKG:-$(vm_kernel_resolve)}
	fi
	if [ -z "$VM_KPKG" ]; then
		# offline and no lists: fall back to the newest kernel in the cache
		VM_KPKG=$(find "$VM_CACHE/kernel" -mindepth 2 -maxdepth 2 -name .unpacked -printf '%h\n' 2>/dev/null |
			xargs -rn1 basename | sort -V | tail -n 1)
	fi
	if [ -z "$VM_KPKG" ]; then
		VM_ERR="apt-cache cannot resolve linux-image-amd64 (see $VM_LOG/apt-update.log)"
		exec {lockfd}>&-; return 1
	fi
	VM_KROOT=$VM_CACHE/kernel/$VM_KPKG
	if [ ! -f "$VM_KROOT/.unpacked" ]; then
		deb=$(ls "$VM_CACHE/debs/${VM_KPKG}"_*.deb 2>/dev/null | head -n 1)
		if [ -z "$deb" ]; then
			vm_log "apt-get download $VM_KPKG into $VM_CACHE/debs"
			(cd "$VM_CACHE/debs" && apt-get download -q "$VM_KPKG") >"$VM_LOG/apt-download.log" 2>&1
			deb=$(ls "$VM_CACHE/debs/${VM_KPKG}"_*.deb 2>/dev/null | head -n 1)
			if [ -z "$deb" ]; then
				VM_ERR="apt-get download $VM_KPKG failed: $(grep -E '^E:' "$VM_LOG/apt-download.log" | head -n 1)"
				exec {lockfd}>&-; return 1
			fi
		fi
		vm_log "dpkg -x $(basename "$deb")"
		rm -rf "$VM_KROOT"
		if ! dpkg -x "$deb" "$VM_KROOT" 2>"$VM_LOG/dpkg-x.log"; then
			VM_ERR="dpkg -x $deb failed: $(tail -n 1 "$VM_LOG/dpkg-x.log")"
			exec {lockfd}>&-; return 1
		fi
		VM_KV=$(ls "$VM_KROOT/lib/modules" | head -n 1)
		# the package ships no modules.dep (its postinst runs depmod)
		depmod -b "$VM_KROOT" "$VM_KV" || { VM_ERR="depmod -b $VM_KROOT failed"; exec {lockfd}>&-; return 1; }
		touch "$VM_KROOT/.unpacked"
		rm -f "$deb"	# the unpacked tree is all we use
		# a new kernel replaces the old ones (about 400 MB each)
		find "$VM_CACHE/kernel" -mindepth 1 -maxdepth 1 ! -name "$VM_KPKG" -exec rm -rf {} +
		rm -f "$VM_CACHE"/accel.*
	fi
	exec {lockfd}>&-
	VM_KV=$(ls "$VM_KROOT/lib/modules" | head -n 1)
	VM_VMLINUZ=$VM_KROOT/boot/vmlinuz-$VM_KV
	[ -f "$VM_VMLINUZ" ] || { VM_ERR="no $VM_VMLINUZ in $VM_KPKG"; return 1; }
	[ -f "$VM_KROOT/lib/modules/$VM_KV/modules.dep" ] || { VM_ERR="no modules.dep for $VM_KV"; return 1; }
}

vm_kernel_resolve() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		awk '/Depends: linux-image-[0-9]/ { print $2; exit }'
}

# ------------------------------------------------------------------ accel

# vm_accel_prepare: sets VM_ACCEL (kvm|tcg) and VM_ACCEL_ARGS.  KVM is used
# only if a tiny guest boots with it; the answer is cached in
# $VM_CACHE/accel.<kernel>.<qemu version> (delete it to probe again).
# VM_ACCEL=kvm|tcg in the environment skips the probe.
vm_accel_prepare() {
	local cache qv
	qv=$(qemu-system-x86_64 --version | sed -n '1s/.*version \([^ ]*\).*/\1/p')
	cache=$VM_CACHE/accel.$VM_KPKG.$qv
	if [ -z "${VM_ACCEL:-}" ]; then
		if [ -f "$cache" ]; then
			VM_ACCEL=$(cat "$cache")
		elif [ -r /dev/kvm ] && [ -w /dev/kvm ]; then
			if vm_kvm_probe; then VM_ACCEL=kvm; else VM_ACCEL=tcg; fi
			echo "$VM_ACCEL" >"$cache"
		else
			VM_ACCEL=tcg
			echo tcg >"$cache"
		fi
	fi
	case $VM_ACCEL in
	kvm) VM_ACCEL_ARGS=(-accel kvm -cpu host) ;;
	*) VM_ACCEL=tcg; VM_ACCEL_ARGS=(-accel tcg -cpu max) ;;
	esac
}

vm_kvm_probe() {
	local p=$VM_LOG/kvm-probe t0
	mkdir -p "$p/root/dev" "$p/root/proc"
	cp "$(command -v busybox)" "$p/root/busybox"
	printf '#!/busybox sh\n/busybox echo KVM-PROBE-OK\n/busybox poweroff -f\n' >"$p/root/init"
	chmod 0755 "$p/root/init"
	(cd "$p/root" && find . | cpio -o -H newc --quiet) >"$p/initrd.cpio"
	t0=$SECONDS
	# (a subshell: bash's "Aborted" note about QEMU goes to the log too)
	( timeout -k 2 "$VM_KVM_PROBE_TIMEOUT" qemu-system-x86_64 -accel kvm -cpu host -m 256 \
		-nodefaults -display none -monitor none -no-reboot -serial "file:$p/console.log" \
		-kernel "$VM_VMLINUZ" -initrd "$p/initrd.cpio" -append "console=ttyS0 panic=-1 quiet" \
		</dev/null >"$p/qemu.out" 2>&1 ) 2>>"$p/qemu.out"
	if grep -q KVM-PROBE-OK "$p/console.log" 2>/dev/null; then
		vm_log "KVM works ($((SECONDS - t0)) s probe)"
		return 0
	fi
	vm_log "KVM unusable, using TCG: $(head -c 200 "$p/qemu.out" | tr '\n' ' ')(probe: $p)"
	return 1
}

# ------------------------------------------------------------------ staging

# The guest root is a Debian-style merged /usr, so the paths ldd prints on
# the host resolve the same way in the guest.
vm_stage_skeleton() {	# STAGE
	local s=$1 a
	mkdir -p "$s"/usr/bin "$s"/usr/sbin "$s"/usr/lib "$s"/usr/lib64 "$s"/dev "$s"/proc \
		"$s"/sys "$s"/tmp "$s"/run "$s"/root "$s"/etc "$s"/var "$s"/vm
	ln -s usr/bin "$s/bin"; ln -s usr/sbin "$s/sbin"
	ln -s usr/lib "$s/lib"; ln -s usr/lib64 "$s/lib64"
	ln -s /tmp "$s/var/tmp"; ln -s /run "$s/var/run"
	vm_stage_elf "$s" "$(readlink -f "$(command -v busybox)")" /usr/bin/busybox || return 1
	for a in $(busybox --list-full); do
		[ -e "$s/$a" ] || [ -L "$s/$a" ] || ln -s /usr/bin/busybox "$s/$a"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\ntss:x:100:101:TPM:/var/lib/tpm:/bin/false\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$s/etc/passwd"
	printf 'root:x:0:\ntss:x:101:\nnogroup:x:65534:\n' >"$s/etc/group"
	install -m 0755 "$VM_HERE/lib/guest-init" "$s/init"
	install -m 0644 "$VM_HERE/lib/guest.sh" "$s/vm/guest.sh"
}

vm_stage_lib() {	# STAGE LIB: one shared library, its soname link kept
	local s=$1 lib=$2 real
	real=$(readlink -f "$lib") || return 1
	[ -e "$s$real" ] || install -D -m 0755 "$real" "$s$real" || return 1
	if [ "$lib" != "$real" ] && [ ! -e "$s$lib" ]; then
		mkdir -p "$(dirname "$s$lib")" && ln -sf "$real" "$s$lib"
	fi
}

vm_stage_deps() {	# STAGE ELF: the ldd closure of ELF
	local s=$1 f=$2 out l
	[ "$(head -c 4 "$f" 2>/dev/null | tail -c 3)" = ELF ] || return 0
	out=$(ldd "$f" 2>&1)
	case $out in *"not a dynamic executable"*|*"statically linked"*) return 0 ;; esac
	if echo "$out" | grep -q 'not found'; then
		VM_ERR="ldd $f: $(echo "$out" | grep 'not found' | tr -s ' \t\n' ' ')"
		return 1
	fi
	for l in $(echo "$out" | awk '$2 == "=>" && $3 ~ /^\// { print $3 } $1 ~ /^\// { print $1 }'); do
		vm_stage_lib "$s" "$l" || return 1
	done
}

vm_stage_elf() {	# STAGE SRC [DEST]: an executable (symlinks kept) and its libraries
	local s=$1 src=$2 dest=${3:-$2} tgt
	[ -e "$src" ] || { VM_ERR="$src does not exist"; return 1; }
	if [ -L "$src" ] && [ "$dest" = "$src" ]; then
		# multi-call links such as tpm2_getrandom -> tpm2 stay links
		tgt=$(readlink -f "$src")
		vm_stage_elf "$s" "$tgt" || return 1
		mkdir -p "$(dirname "$s$dest")"
		ln -sf "$tgt" "$s$dest"
		return 0
	fi
	# (a busybox applet link of the same name, mke2fs say, gives way to the real binary)
	[ -e "$s$dest" ] && [ "$(readlink "$s$dest")" != /usr/bin/busybox ] && return 0
	rm -f "$s$dest"
	install -D -m 0755 "$(readlink -f "$src")" "$s$dest" || return 1
	vm_stage_deps "$s" "$src"
}

# vm_stage_asan STAGE: the ASan+UBSan daemon that make check builds, as
# /usr/bin/tpm-daemon-asan, for a scenario's variant "asan" (guest side:
# vt_asan_daemon, vt_asan_report); nothing when it is not built
vm_stage_asan() {
	[ -x "$VM_BUILD/asan/vtpm-bridge" ] || return 0
	vm_stage_elf "$1" "$VM_BUILD/asan/vtpm-bridge" /usr/bin/tpm-daemon-asan
}

# vm_stage_installed STAGE: the system a managed instance runs on, as a
# Debian host has it: Debian's udev rules and udev.conf, every group and
# user those rules name (udevd resolves GROUP= and OWNER= names when it
# loads them), and our files from `make install DESTDIR=STAGE PREFIX=/usr`
# of the build under test (-o: never a rebuilt binary).  A failing install
# does not stop the image: its status is in STAGE/vm/install.rc and its
# output in install.log, for the guest to report.
vm_stage_installed() {
	local s=$1 g u
	mkdir -p "$s/usr/lib/udev/rules.d" "$s/etc/udev/rules.d" || return 1
	cp /usr/lib/udev/rules.d/*.rules "$s/usr/lib/udev/rules.d/" || return 1
	cp /etc/udev/udev.conf "$s/etc/udev/udev.conf" || return 1
	make -C "$VM_HERE/../.." --no-print-directory -o "$VM_BUILD/vtpm-bridge" BUILD="$VM_BUILD" \
		DESTDIR="$s" PREFIX=/usr install >"$s/vm/install.log" 2>&1
	echo $? >"$s/vm/install.rc"
	if [ -x "$s/usr/bin/vtpm-bridge" ]; then
		vm_stage_deps "$s" "$s/usr/bin/vtpm-bridge" || return 1
	fi
	for g in $(sed -n 's/.*GROUP="\([a-z0-9_-]*\)".*/\1/p' "$s"/usr/lib/udev/rules.d/*.rules | sort -u); do
		grep -q "^$g:" "$s/etc/group" || getent group "$g" | cut -d: -f1-3 | sed 's/$/:/' >>"$s/etc/group"
	done
	for u in $(sed -n 's/.*OWNER="\([a-z0-9_-]*\)".*/\1/p' "$s"/usr/lib/udev/rules.d/*.rules | sort -u); do
		grep -q "^$u:" "$s/etc/passwd" || getent passwd "$u" >>"$s/etc/passwd"
	done
}

# vm_ours_host CHECK WHY: the host half of a scenario of what only
# vtpm-bridge has: one SKIP CHECK for Debian's swtpm, saying WHY, else the
# guest's boot and results
vm_ours_host() {
	if [ "$VM_DAEMON_NAME" = swtpm ]; then
		vm_result SKIP "$1" "$2"
		return 0
	fi
	vm_qemu_start vm
	vm_qemu_wait vm
	vm_guest_results vm
}

# vm_cuse_host: the host half of a scenario whose daemon serves CUSE in the
# guest: one SKIP for Debian's swtpm (built without CUSE) or for a missing
# ASan build (vm_asan_skip), else the guest's boot and results
vm_cuse_host() {
	if [ "$VM_DAEMON_NAME" = swtpm ]; then
		vm_result SKIP cuse "Debian's swtpm has no CUSE front ($(swtpm cuse --help 2>&1 | head -n 1))"
		return 0
	fi
	vm_asan_skip && return 0
	vm_qemu_start vm
	vm_qemu_wait vm
	vm_guest_results vm
}

# vm_asan_skip: in variant "asan" without that build, the job's one SKIP
# (returns 0); returns 1 otherwise
vm_asan_skip() {
	[ "$VM_VARIANT" = asan ] && [ ! -x "$VM_BUILD/asan/vtpm-bridge" ] || return 1
	vm_result SKIP sanitizer "no $VM_BUILD/asan/vtpm-bridge (make check builds it)"
}

# vm_kselftests_fetch: print the cached kernel tpm2 selftests directory,
# $VM_CACHE/kselftest-tpm2/<version>/tpm2; on the first run download
# Debian's linux-source-6.1 (about 140 MB) and keep only
# tools/testing/selftests/tpm2 of it (delete the directory to fetch the
# current one).  Returns 1 with VM_ERR.
vm_kselftests_fetch() {
	local cache=$VM_CACHE/kselftest-tpm2 have tmp deb ver lockfd
	mkdir -p "$cache" || { VM_ERR="cannot create $cache"; return 1; }
	exec {lockfd}>"$cache/.lock"
	flock -w 900 "$lockfd" || { VM_ERR="$cache/.lock stays locked"; return 1; }
	have=$(ls -1d "$cache"/*/tpm2 2>/dev/null | sort -V | tail -n 1)
	if [ -z "$have" ]; then
		rm -rf "$cache"/.fetch.*
		tmp=$(mktemp -d "$cache/.fetch.XXXXXX")
		vm_log "kselftests: apt-get download linux-source-6.1 (about 140 MB, first run only)"
		if ! (cd "$tmp" && apt-get download -q linux-source-6.1) >"$tmp/apt.log" 2>&1; then
			apt-get update -q >>"$tmp/apt.log" 2>&1
			(cd "$tmp" && apt-get download -q linux-source-6.1) >>"$tmp/apt.log" 2>&1
		fi
		deb=$(ls "$tmp"/linux-source-6.1_*.deb 2>/dev/null | head -n 1)
		if [ -z "$deb" ]; then
			VM_ERR="apt-get download linux-source-6.1 failed: $(grep -E '^E:' "$tmp/apt.log" | head -n 1)"
			rm -rf "$tmp"; exec {lockfd}>&-; return 1
		fi
		ver=$(dpkg-deb -f "$deb" Version)
		dpkg-deb --fsys-tarfile "$deb" | tar -xO ./usr/src/linux-source-6.1.tar.xz | xz -dc -T0 |
			tar -C "$tmp" -x --wildcards '*/tools/testing/selftests/tpm2/*'
		if [ ! -f "$tmp/linux-source-6.1/tools/testing/selftests/tpm2/tpm2_tests.py" ]; then
			VM_ERR="no tools/testing/selftests/tpm2/tpm2_tests.py in linux-source-6.1 $ver"
			rm -rf "$tmp"; exec {lockfd}>&-; return 1
		fi
		echo "linux-source-6.1 $ver (Debian), tools/testing/selftests/tpm2" \
			>"$tmp/linux-source-6.1/tools/testing/selftests/tpm2/SOURCE"
		mkdir -p "$cache/$ver"
		mv -T "$tmp/linux-source-6.1/tools/testing/selftests/tpm2" "$cache/$ver/tpm2"
		rm -rf "$tmp"
		have=$cache/$ver/tpm2
	fi
	exec {lockfd}>&-
	echo "$have"
}

# vm_stage_kselftests STAGE: the kernel's tpm2 selftests (tpm2.py,
# tpm2_tests.py; vm_kselftests_fetch) in /vm/kst, and the stdlib files of
# Debian's python3 that they load, with their __pycache__ (found by running
# them here, where they fail without /dev/tpm0); the scenario lists
# /usr/bin/python3 in VM_BINS.  Guest side: vt_kselftests.
vm_stage_kselftests() {
	local s=$1 kst f pyc list
	kst=$(vm_kselftests_fetch) || return 1
	mkdir -p "$s/vm/kst"
	cp -a "$kst/." "$s/vm/kst/"
	# Debian's python3 by its path (not a pyenv or venv one earlier on PATH)
	list=$(cd "$kst" && /usr/bin/python3 -B -c '
import io, os, sys, runpy
import locale, gettext, difflib, pprint, traceback, linecache, tokenize, signal, fnmatch, inspect
# a real run (it fails here, without /dev/tpm0) loads what the guest run loads
sys.argv = ["python3 -m unittest", "-v", "tpm2_tests.SmokeTest", "tpm2_tests.SpaceTest", "tpm2_tests.AsyncTest"]
out, err = sys.stdout, sys.stderr
sys.stdout = sys.stderr = io.StringIO()
try:
    runpy.run_module("unittest", run_name="__main__", alter_sys=True)
except BaseException:
    pass
sys.stdout, sys.stderr = out, err
for m in list(sys.modules.values()):
    f = getattr(m, "__file__", None)
    if f and f.startswith("/usr/lib/python3"):
        print(f)') || { VM_ERR="importing tpm2_tests on the host failed"; return 1; }
	# python3 -m unittest runs unittest/__main__.py (gone from sys.modules
	# after runpy); lib-dynload must exist
	list="$list /usr/lib/python3.11/unittest/__main__.py"
	mkdir -p "$s/usr/lib/python3.11/lib-dynload"
	for f in $list; do
		case $f in
		*.so) vm_stage_lib "$s" "$f" && vm_stage_deps "$s" "$f" || return 1 ;;
		*) install -D -m 0644 "$f" "$s$f" || return 1
		   pyc=$(dirname "$f")/__pycache__/$(basename "$f" .py).cpython-311.pyc
		   if [ -f "$pyc" ]; then install -D -m 0644 "$pyc" "$s$pyc" || return 1; fi ;;
		esac
	done
	return 0
}

vm_stage_module() {	# STAGE NAME: a module of the test kernel and its dependencies
	local s=$1 name=${2//-/_} mdir line rel dep
	mdir=$VM_KROOT/lib/modules/$VM_KV
	line=$(awk -v n="$name" -F: '{ b = $1; sub(/.*\//, "", b); sub(/\.ko(\..*)?$/, "", b)
		gsub(/-/, "_", b); if (b == n) { print; exit } }' "$mdir/modules.dep")
	if [ -z "$line" ]; then
		grep -q "/${name}.ko" "$mdir/modules.builtin" && return 0
		VM_ERR="module $2 is not in $VM_KPKG"
		return 1
	fi
	rel=${line%%:*}
	for dep in ${line#*:}; do
		dep=$(basename "$dep")
		vm_stage_module "$s" "${dep%%.ko*}" || return 1
	done
	[ -e "$s/lib/modules/$VM_KV/$rel" ] ||
		install -D -m 0644 "$mdir/$rel" "$s/lib/modules/$VM_KV/$rel"
}

# vm_initramfs_build SCENARIO_FILE OUT.cpio: the scenario's initramfs
# (everything but the per-job /vm/env and guest daemon).  Reads VM_BINS,
# VM_LIBS, VM_MODULES, VM_TOOLS from the scenario file and runs its
# vm_stage STAGE hook if it has one.  Returns 1 with VM_ERR.
vm_initramfs_build() {
	local scen=$1 out=$2 stage pat f m t pkgs
	local VM_BINS="" VM_LIBS="" VM_MODULES="" VM_TOOLS=""
	# shellcheck disable=SC1090
	. "$scen"
	stage=${out%.cpio}.root
	rm -rf "$stage"
	vm_stage_skeleton "$stage" || return 1
	for pat in $VM_BINS; do
		for f in $pat; do vm_stage_elf "$stage" "$f" || return 1; done
	done
	for pat in $VM_LIBS; do
		for f in $pat; do
			[ -e "$f" ] || { VM_ERR="library $f does not exist"; return 1; }
			vm_stage_lib "$stage" "$f" && vm_stage_deps "$stage" "$f" || return 1
		done
	done
	# our own guest tools: tools/NAME.c, built here, /usr/bin/NAME in the guest;
	# NAME:PKG[,PKG...] also takes those libraries' pkg-config flags (cuse-echo:fuse3)
	for t in $VM_TOOLS; do
		pkgs=""
		case $t in *:*) pkgs=${t#*:} t=${t%%:*} ;; esac
		if [ -n "$pkgs" ] && ! pkgs=$(pkg-config --cflags --libs "$pkgs" 2>&1); then
			VM_ERR="pkg-config for tools/$t.c failed: $pkgs"
			return 1
		fi
		# shellcheck disable=SC2086  # $pkgs: several flags
		if ! cc -O2 -Wall -Wextra -Werror -o "$stage/usr/bin/$t" "$VM_HERE/tools/$t.c" $pkgs \
				2>"$out.$t.log"; then
			VM_ERR="cc tools/$t.c failed: $(head -n 3 "$out.$t.log" | tr '\n' ' ')"
			return 1
		fi
		vm_stage_deps "$stage" "$stage/usr/bin/$t" || return 1
	done
	if [ -n "$VM_MODULES" ]; then
		mkdir -p "$stage/lib/modules/$VM_KV"
		for m in $VM_MODULES; do vm_stage_module "$stage" "$m" || return 1; done
		cp "$VM_KROOT/lib/modules/$VM_KV"/modules.builtin* "$VM_KROOT/lib/modules/$VM_KV/modules.order" \
			"$stage/lib/modules/$VM_KV/"
		depmod -b "$stage" "$VM_KV" || { VM_ERR="depmod -b $stage failed"; return 1; }
	fi
	# the scenario's own files (test suites, data): optional vm_stage STAGE
	if declare -F vm_stage >/dev/null; then
		vm_stage "$stage" || { VM_ERR="vm_stage: ${VM_ERR:-failed}"; return 1; }
	fi
	install -m 0644 "$scen" "$stage/vm/scenario.sh"
	echo "$VM_KV" >"$stage/vm/kernel-release"
	# ld.so.cache: dlopen() by soname (TCTI libraries) works as on the host
	printf '/usr/local/lib\n/usr/lib/x86_64-linux-gnu\n/usr/lib\n' >"$stage/etc/ld.so.conf"
	ldconfig -r "$stage" 2>/dev/null
	(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc --quiet -R 0:0) >"$out" ||
		{ VM_ERR="cpio of $stage failed"; return 1; }
	rm -rf "$stage"
}

# ------------------------------------------------------------------ job API
# A job runs one scenario (variant) against one daemon, in its own subshell,
# with these set: VM_JOB (its directory), VM_JOBNAME (scenario[-variant]),
# VM_VARIANT, VM_DAEMON_NAME (swtpm|vtpm-bridge|""), VM_DAEMON_BIN,
# VM_INITRD.  Every process it starts is killed when the job ends.

VM_PIDS=""

vm_track() { VM_PIDS="$VM_PIDS $1"; }

# vm_alive PID: the process exists and is not a zombie
vm_alive() {
	local st
	st=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
	[ -n "$st" ] && [ "$st" != Z ]
}

vm_job_cleanup() {
	local p="" i	# (a job that started nothing: p stays empty, set -u)
	for p in $VM_PIDS; do vm_alive "$p" && kill -TERM "$p" 2>/dev/null; done
	for i in $(seq 30); do
		for p in $VM_PIDS; do vm_alive "$p" && break; p=""; done
		[ -z "$p" ] && break
		sleep 0.1
	done
	for p in $VM_PIDS; do
		if vm_alive "$p"; then
			echo "cleanup: SIGKILL $p ($(tr '\0' ' ' </proc/"$p"/cmdline 2>/dev/null | cut -c1-80))" >&2
			kill -KILL "$p" 2>/dev/null
		fi
	done
	wait 2>/dev/null
	[ "${VTPM_VM_KEEP:-0}" = 1 ] || rm -f "$VM_JOB"/*.initrd "$VM_JOB"/*/migration.stream
}

# vm_result PASS|FAIL|SKIP CHECK [WHY]: one result line in the suite's format
vm_result() {
	local word=$1 check=$2 why=${3:-} label=""
	[ -n "$VM_DAEMON_NAME" ] && label=" ($VM_DAEMON_NAME)"
	why=$(printf '%s' "$why" | tr '\n\r' '  ' | cut -c1-400)
	case $word in
	PASS) echo "PASS vm/$VM_JOBNAME/$check$label" ;;
	FAIL) echo "FAIL vm/$VM_JOBNAME/$check$label: ${why:-failed}" ;;
	SKIP) echo "SKIP vm/$VM_JOBNAME/$check$label: ${why:-no reason given}" ;;
	*) echo "FAIL vm/$VM_JOBNAME/$check$label: bad result word '$word'" ;;
	esac
}

# vm_daemon_start NAME [BINARY]: start the job's daemon (or BINARY) on the
# host as libvirt does (qemu-libvirt.md B.5), with a fresh state dir, behind
# ctrlproxy.py; vm_qemu_start --tpm NAME connects QEMU to it.  On failure
# reports FAIL <NAME>-start and returns 1.  It serves unprivileged, as
# libvirt's swtpm_user on Debian (--runas tss), under its
# seccomp filter with action=kill (the default, named).
vm_daemon_start() {
	local n=$1 bin=${2:-$VM_DAEMON_BIN} d=$VM_JOB/$1 pid ppid i t0 why user=tss
	if [ ${#d} -gt 90 ]; then	# sun_path holds 108 bytes
		vm_result FAIL "$n-start" "socket directory $d is too long for a unix socket path"
		return 1
	fi
	if ! id "$user" >/dev/null 2>&1; then
		vm_result FAIL "$n-start" "no user '$user' on this host to run the daemon as (swtpm-tools makes tss)"
		return 1
	fi
	mkdir -p "$d/state"
	# The user reaches its directory (search only above it) and owns it: the
	# state, the log, and the socket it removes at exit.
	chmod o+x "$VM_LOG" "$VM_JOB"
	chown "$user:" "$d" "$d/state"
	t0=$(date +%s.%N)
	echo "$bin" >"$d/daemon.bin"
	"$bin" socket --ctrl "type=unixio,path=$d/ctrl.sock,mode=0600" \
		--tpmstate "dir=$d/state,mode=0600" --log "file=$d/daemon.log" --terminate --tpm2 \
		--runas "$user" --seccomp action=kill \
		</dev/null >"$d/daemon.out" 2>&1 &
	pid=$!
	vm_track "$pid"
	echo "$pid" >"$d/daemon.pid"
	for i in $(seq 100); do
		[ -S "$d/ctrl.sock" ] && break
		vm_alive "$pid" || break
		sleep 0.1
	done
	if [ ! -S "$d/ctrl.sock" ]; then
		if vm_alive "$pid"; then why="no ctrl socket after 10 s"
		else wait "$pid"; why="exited with status $? before creating its ctrl socket"; fi
		vm_result FAIL "$n-start" "$bin $why: $(tail -n 2 "$d/daemon.out" "$d/daemon.log" 2>/dev/null | grep -v '^==>' | grep . | tail -n 1)"
		return 1
	fi
	echo "$n: $bin pid $pid, ctrl socket after $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s" >&2
	# The socket comes before the drop and the filter: wait for both.
	for i in $(seq 50); do
		why=$(awk '/^Uid:/ { printf "uid %s/%s, ", $2, $3 } /^Seccomp:/ { printf "Seccomp %s", $2 }' \
			"/proc/$pid/status" 2>/dev/null)
		[ "$why" = "uid $(id -u "$user")/$(id -u "$user"), Seccomp 2" ] && break
		sleep 0.1
	done
	if [ "$why" = "uid $(id -u "$user")/$(id -u "$user"), Seccomp 2" ]; then
		vm_result PASS "$n-sandboxed"
	else
		vm_result FAIL "$n-sandboxed" "expected uid $(id -u "$user") ($user) and Seccomp 2 (a filter), got '$why'"
	fi
	python3 "$VM_HERE/tools/ctrlproxy.py" --listen "$d/proxy.sock" --connect "$d/ctrl.sock" \
		--log "$d/ctrl.jsonl" </dev/null >"$d/proxy.out" 2>&1 &
	ppid=$!
	vm_track "$ppid"
	for i in $(seq 50); do
		[ -S "$d/proxy.sock" ] && break
		sleep 0.1
	done
	if [ ! -S "$d/proxy.sock" ]; then
		vm_result FAIL "$n-start" "ctrlproxy.py did not start: $(tail -n 1 "$d/proxy.out")"
		return 1
	fi
}

# vm_daemon_wait NAME CHECK [SECONDS]: after QEMU has gone, the daemon must
# exit by itself (SHUTDOWN / --terminate) with status 0 and remove its ctrl
# socket.  Reports CHECK.
vm_daemon_wait() {
	local n=$1 check=$2 max=${3:-10} d=$VM_JOB/$1 pid i rc
	pid=$(cat "$d/daemon.pid" 2>/dev/null)
	[ -n "$pid" ] || { vm_result FAIL "$check" "daemon $n was never started"; return 1; }
	for i in $(seq $((max * 10))); do
		vm_alive "$pid" || break
		sleep 0.1
	done
	if vm_alive "$pid"; then
		vm_result FAIL "$check" "the daemon still runs ${max} s after QEMU exited"
		kill -TERM "$pid"
		return 1
	fi
	wait "$pid"; rc=$?
	if [ "$rc" -ne 0 ]; then
		vm_result FAIL "$check" "the daemon exited with status $rc: $(tail -n 1 "$d/daemon.out" "$d/daemon.log" 2>/dev/null | grep -v '^==>' | grep . | tail -n 1)"
	elif [ -e "$d/ctrl.sock" ]; then
		vm_result FAIL "$check" "the daemon exited but left its ctrl socket $d/ctrl.sock"
	else
		vm_result PASS "$check"
	fi
}

# vm_ctrl_check NAME MODE [ARGS...]: ctrlcheck.py MODE on NAME's ctrl log
vm_ctrl_check() {
	local n=$1 mode=$2 line word rest
	shift 2
	python3 "$VM_HERE/tools/ctrlcheck.py" "$mode" "$VM_JOB/$n/ctrl.jsonl" "$@" \
		2>>"$VM_JOB/$n/ctrlcheck.log" >"$VM_JOB/$n/ctrlcheck.$mode.out"
	[ -s "$VM_JOB/$n/ctrlcheck.$mode.out" ] ||
		vm_result FAIL "ctrlcheck-$mode" "ctrlcheck.py printed nothing (see $VM_JOB/$n/ctrlcheck.log)"
	while IFS= read -r line; do
		word=${line%% *}; rest=${line#* }
		case $word in
		PASS) vm_result PASS "$rest" ;;
		FAIL) vm_result FAIL "${rest%%: *}" "${rest#*: }" ;;
		esac
	done <"$VM_JOB/$n/ctrlcheck.$mode.out"
}

# vm_qemu_start NAME [--tpm DAEMON MODEL] [--incoming URI]: boot the guest.
# ttyS0 (console) goes to NAME/console.log; ttyS1 is the result channel:
# NAME/serial.out (read into NAME/results.raw), input NAME/serial.in; QMP on
# NAME/qmp.sock.  The guest gets VM_TIMEOUT seconds (from now) to finish.
vm_qemu_start() {
	local n=$1 d=$VM_JOB/$1 tpm=() inc=() pid
	shift
	while [ $# -gt 0 ]; do
		case $1 in
		--tpm) tpm=(-chardev "socket,id=chrtpm,path=$VM_JOB/$2/proxy.sock"
			-tpmdev "emulator,id=tpm0,chardev=chrtpm" -device "tpm-$3,tpmdev=tpm0"); shift 3 ;;
		--incoming) inc=(-incoming "$2"); shift 2 ;;
		*) echo "vm_qemu_start: bad argument $1" >&2; return 2 ;;
		esac
	done
	mkdir -p "$d"
	mkfifo "$d/serial.in" "$d/serial.out"
	: >"$d/results.raw"
	cat "$d/serial.out" >>"$d/results.raw" &
	vm_track $!
	VM_QEMU_CMD=(qemu-system-x86_64 "${VM_ACCEL_ARGS[@]}" -m "${VM_MEM:-512}" -smp "${VM_SMP:-1}"
		-nodefaults -no-user-config -display none -monitor none -no-reboot
		-kernel "$VM_VMLINUZ" -initrd "$VM_INITRD"
		-append "console=ttyS0 panic=-1 loglevel=4 rdinit=/init"
		-serial "file:$d/console.log" -serial "pipe:$d/serial"
		-qmp "unix:$d/qmp.sock,server=on,wait=off"
		"${tpm[@]}" "${inc[@]}")
	printf '%q ' "${VM_QEMU_CMD[@]}" >"$d/qemu.cmd"
	echo >>"$d/qemu.cmd"
	"${VM_QEMU_CMD[@]}" </dev/null >"$d/qemu.out" 2>&1 &
	pid=$!
	vm_track "$pid"
	echo "$pid" >"$d/qemu.pid"
	echo "$(( SECONDS + ${VM_TIMEOUT:-300} ))" >"$d/deadline"
	# a guest that does not even reach /init (QEMU stuck in the TPM
	# handshake, say) is given up early; an incoming guest never boots
	if [ ${#inc[@]} -eq 0 ]; then
		echo "$(( SECONDS + ${VM_BOOT_TIMEOUT:-60} ))" >"$d/boot-deadline"
	fi
	echo "$n: qemu pid $pid ($VM_ACCEL) $(date +%T)" >&2
}

# vm_qemu_wait NAME: wait until NAME's QEMU exits or its time is up (then
# it is killed).  NAME/status is "exit RC" or "timeout".
vm_qemu_wait() {
	local d=$VM_JOB/$1 pid deadline boot="" rc why=timeout
	pid=$(cat "$d/qemu.pid")
	deadline=$(cat "$d/deadline")
	[ -f "$d/boot-deadline" ] && boot=$(cat "$d/boot-deadline")
	while vm_alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do
		if [ -n "$boot" ] && [ "$SECONDS" -ge "$boot" ]; then
			if grep -q 'VMTEST: BOOTED' "$d/results.raw"; then boot=""
			else why=no-boot; break; fi
		fi
		sleep 0.2
	done
	if vm_alive "$pid"; then
		echo "$why" >"$d/status"
		echo "$1: timeout, killing qemu" >&2
		kill -TERM "$pid"
		sleep 2
		vm_alive "$pid" && kill -KILL "$pid"
		wait "$pid"
	else
		wait "$pid"; rc=$?
		echo "exit $rc" >"$d/status"
	fi
	echo "$1: qemu $(cat "$d/status") $(date +%T)" >&2
}

# vm_wait_line NAME ERE: wait until the guest's result channel shows a line
# matching ERE.  Returns 1 if QEMU exits or the time is up first.
vm_wait_line() {
	local d=$VM_JOB/$1 pid deadline
	pid=$(cat "$d/qemu.pid")
	deadline=$(cat "$d/deadline")
	while [ "$SECONDS" -lt "$deadline" ]; do
		tr -d '\r' <"$d/results.raw" | grep -qE "$2" && return 0
		vm_alive "$pid" || { tr -d '\r' <"$d/results.raw" | grep -qE "$2"; return; }
		sleep 0.2
	done
	return 1
}

# vm_send NAME TEXT: one line to the guest's ttyS1
vm_send() {
	timeout 10 sh -c 'printf "%s\n" "$1" >"$2"' sh "$2" "$VM_JOB/$1/serial.in"
}

# vm_qmp NAME COMMAND [JSON-ARGUMENTS]: prints the "return" value as JSON
vm_qmp() {
	python3 "$VM_HERE/tools/qmp.py" "$VM_JOB/$1/qmp.sock" "$2" "${3:-}" 2>>"$VM_JOB/$1/qmp.log"
}

# vm_parse_line LINE: for a guest's "VMTEST: WORD NAME[ - WHY]" line, sets
# VM_WORD, VM_NAME and VM_WHY; any other line returns 1.
vm_parse_line() {
	local rest
	case $1 in "VMTEST: "*) ;; *) return 1 ;; esac
	rest=${1#VMTEST: }
	VM_WORD=${rest%% *}; rest=${rest#* }
	VM_NAME=${rest%% - *}
	case $rest in *" - "*) VM_WHY=${rest#* - } ;; *) VM_WHY="" ;; esac
}

# vm_guest_results NAME...: turn the VMTEST lines of the guest, read from
# the result channels of the named QEMUs in order (a migrated guest moves
# from one to the next), into results.  Adds "guest-done": the guest
# reported DONE (no hang, no crash, the script ran to its end).
vm_guest_results() {
	local n d line word name why seen=" " done=0 nres=0 boots=0 last
	for n in "$@"; do
		d=$VM_JOB/$n
		while IFS= read -r line; do
			vm_parse_line "$line" || continue
			word=$VM_WORD name=$VM_NAME why=$VM_WHY
			case $word in
			PASS|FAIL|SKIP)
				nres=$((nres + 1))
				case $seen in *" $name "*)
					vm_result FAIL "$name" "reported twice (guest ran twice?)"
					continue ;;
				esac
				seen="$seen$name "
				vm_result "$word" "$name" "$why" ;;
			DONE) done=1 ;;
			BOOTED) boots=$((boots + 1)) ;;
			esac
		done < <(tr -d '\r' <"$d/results.raw")
	done
	if [ $boots -gt 1 ]; then
		vm_result FAIL guest-boots "the guest booted $boots times (a reset or reboot)"
	fi
	# the guest kernel must not have oopsed, whatever the scenario reported
	why=""
	for n in "$@"; do
		why=$(tr -d '\r' <"$VM_JOB/$n/console.log" 2>/dev/null |
			grep -m 1 -E 'BUG:|Oops|general protection fault|Kernel panic|list_(add|del) corruption|Call Trace:' |
			sed "s|^|$n console: |")
		[ -n "$why" ] && break
	done
	if [ -n "$why" ]; then vm_result FAIL guest-kernel "$why"
	else vm_result PASS guest-kernel; fi
	if [ $done = 1 ] && [ $nres -gt 0 ]; then
		vm_result PASS guest-done
		return 0
	fi
	last=$n
	d=$VM_JOB/$last
	if [ $done = 1 ]; then why="the guest reported no result at all"
	else
		case $(cat "$d/status" 2>/dev/null) in
		timeout) why="no DONE within ${VM_TIMEOUT:-300} s: guest hung" ;;
		no-boot) why="the guest did not reach /init within ${VM_BOOT_TIMEOUT:-60} s (QEMU stuck, e.g. in the TPM handshake?)$(grep . "$d/qemu.out" | tail -n 1 | sed 's/^/; QEMU: /')" ;;
		"exit 0") why="QEMU exited before the guest reported DONE (guest crash?)" ;;
		*) why="QEMU $(cat "$d/status" 2>/dev/null): $(grep . "$d/qemu.out" | tail -n 1)" ;;
		esac
		why="$why; console: $d/console.log, last line: $(tr -d '\r' <"$d/console.log" | grep . | tail -n 1 | cut -c1-120)"
	fi
	vm_result FAIL guest-done "$why"
	return 1
}
