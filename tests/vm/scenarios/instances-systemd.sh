# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# The real unit under real systemd (Debian 12's systemd 252): the guest's
# /init (the harness's, PID 1) starts /lib/systemd/systemd as PID 1 of a
# new PID and mount namespace (`unshare --pid --fork --mount-proc`, no
# container= variable, so systemd runs as on bare metal: device units,
# cgroup2 with the BPF device controller, mount namespaces for
# ProtectSystem= and friends, seccomp).  It boots multi-user.target from
# Debian's own unit files (the targets, systemd-journald and systemd-udevd
# with their sockets and the coldplug trigger), Debian's udev rules and our
# installed files (`make install DESTDIR=stage PREFIX=/usr`).  udevd runs
# as systemd's unit, in systemd's PID namespace: the daemon's record names
# its pid there, and `vtpm-bridge udev-node` (run by udevd) must see the
# same pids.  Every check runs inside those namespaces (nsenter), with
# systemctl and journalctl as an administrator runs them.
#
#   boot       systemd reaches multi-user.target; journald, udevd and the
#              coldplug are active (boot-*)
#   a          fronts = vtpm-proxy, group iutpm, mode 0660, user tss (the
#              default): `systemctl start` succeeds; active/running with a
#              MainPID; right after it returns /dev/vtpm/a-rm has root:iutpm
#              0660 and serves; MainPID runs as tss, NoNewPrivs 1, CapBnd =
#              the unit's set, Seccomp 2; NV written survives `systemctl
#              restart`; `systemctl stop`: links, record and CDI spec gone,
#              inactive (not failed), ExecStopPost status 0
#   protect    what root may write in a's mount namespace: only its
#              runtime and state directories and its private /tmp
#              (a-protect).  ProtectKernelTunables= and
#              ProtectControlGroups= beside ProtectSystem=strict left /run
#              writable here (found by throw-away oneshot units, one
#              setting each); the unit's ReadOnlyPaths=/run is the answer
#   crash      `systemctl kill -s KILL`: Restart=on-abnormal brings a new
#              MainPID that serves; the old CDI spec goes (how soon)
#   bad        mode = 0888: `systemctl start` fails, the unit is failed, the
#              journal and `systemctl status` show our FILE:LINE: key line
#   auto       autostart = yes: started by systemd itself at boot (udev's
#              SYSTEMD_WANTS on vtpmx's device unit); a new auto2.conf and
#              `udevadm trigger --action=add` on vtpmx starts auto2; the
#              module reloaded (remove + add) starts both
#   cuse       fronts = cuse under the unit (DeviceAllow=/dev/cuse)
#   bisect     only when a start fails: each hardening option turned off
#              by a drop-in, alone, to name the one that breaks the daemon
#
# Debian's swtpm has no instances or unit: one host-side SKIP.

VM_DESC="instances: the installed vtpm-bridge@.service under Debian's systemd 252 (PID 1 of a PID namespace) with its own journald and udevd: start, hardening as seen in /proc, restart with NV kept, stop, crash restart, a bad definition, SYSTEMD_WANTS autostart, CUSE"
VM_DAEMON=guest
VM_BINS="/lib/systemd/systemd /lib/systemd/systemd-journald /lib/systemd/systemd-udevd /usr/bin/udevadm
	/usr/bin/systemctl /usr/bin/journalctl /usr/bin/tpm2 /usr/bin/tpm2_getrandom /usr/bin/tpm2_nvdefine
	/usr/bin/tpm2_nvwrite /usr/bin/tpm2_nvread /usr/bin/tpm2_nvundefine"
VM_LIBS="/usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0 /usr/lib/x86_64-linux-gnu/libtpms.so.0"
VM_MODULES="tpm_vtpm_proxy cuse"
VM_MEM=768
VM_TIMEOUT=300
VM_COST=60

# Debian's units systemd needs here (the rest of /lib/systemd/system is not
# staged; sysinit.target.wants and sockets.target.wants get only these)
IS_UNITS="multi-user.target basic.target sysinit.target local-fs.target local-fs-pre.target swap.target
	sockets.target timers.target paths.target slices.target shutdown.target umount.target final.target
	emergency.target emergency.service rescue.target rescue.service
	systemd-journald.service systemd-journald.socket systemd-journald-dev-log.socket
	systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket systemd-udev-trigger.service"
IS_SYSINIT_WANTS="systemd-journald.service systemd-udevd.service systemd-udev-trigger.service"
IS_SOCKETS_WANTS="systemd-journald.socket systemd-journald-dev-log.socket systemd-udevd-control.socket systemd-udevd-kernel.socket"

vm_host() {
	vm_ours_host instances "Debian's swtpm has no instance management and no systemd unit ('swtpm run a': $(swtpm run a 2>&1 | head -n 1))"
}

# vm_stage STAGE (host): what a Debian host with our package has
# (vm_stage_installed), Debian's unit files named in IS_UNITS, os-release,
# a machine-id, Debian's tss user and group, the test's users and group,
# and the definitions present at boot
vm_stage() {
	_s=$1
	mkdir -p "$_s/usr/lib/systemd/system" \
		"$_s/etc/systemd/system/sysinit.target.wants" "$_s/etc/systemd/system/sockets.target.wants" \
		"$_s/etc/vtpm-bridge" "$_s/var/lib" "$_s/var/log" || return 1
	vm_stage_installed "$_s" || return 1
	for _u in $IS_UNITS; do
		cp "/usr/lib/systemd/system/$_u" "$_s/usr/lib/systemd/system/" || { VM_ERR="no unit $_u"; return 1; }
	done
	for _u in $IS_SYSINIT_WANTS; do ln -s "/usr/lib/systemd/system/$_u" "$_s/etc/systemd/system/sysinit.target.wants/$_u"; done
	for _u in $IS_SOCKETS_WANTS; do ln -s "/usr/lib/systemd/system/$_u" "$_s/etc/systemd/system/sockets.target.wants/$_u"; done
	ln -s /usr/lib/systemd/system/multi-user.target "$_s/etc/systemd/system/default.target"
	# the test's own: an active unit that refers to a and c keeps them loaded
	# once stopped (systemd unloads an inactive unit nothing refers to, and its
	# Result= and ExecStopPost= status with it)
	printf '[Unit]\nDescription=instances-systemd: keeps vtpm-bridge@a and @c loaded\nAfter=vtpm-bridge@a.service vtpm-bridge@c.service\n' \
		>"$_s/etc/systemd/system/is-pin.target"
	cp /usr/lib/os-release "$_s/usr/lib/os-release" && ln -s ../usr/lib/os-release "$_s/etc/os-release"
	echo 5f1c0de0a11ce0000000000000000001 >"$_s/etc/machine-id"
	# Debian has a real /var/tmp (PrivateTmp= mounts over both)
	rm -f "$_s/var/tmp" && mkdir -m 1777 "$_s/var/tmp"
	# tss as this Debian host has it (the skeleton's numbers are its own)
	if getent passwd tss >/dev/null && getent group tss >/dev/null; then
		sed -i '/^tss:/d' "$_s/etc/passwd" "$_s/etc/group"
		getent passwd tss >>"$_s/etc/passwd"
		getent group tss | cut -d: -f1-3 | sed 's/$/:/' >>"$_s/etc/group"
	fi
	grep -q '^systemd-journal:' "$_s/etc/group" || echo 'systemd-journal:x:990:' >>"$_s/etc/group"
	printf 'iutpm:x:960:iuuser\niuuser:x:1000:\n' >>"$_s/etc/group"
	printf 'iuuser:x:1000:1000:in group iutpm:/tmp:/bin/sh\n' >>"$_s/etc/passwd"
	# the definitions present at boot: only auto starts by itself
	printf '# by hand only\nfronts = vtpm-proxy\ngroup = iutpm\nmode = 0660\nautostart = no\n' \
		>"$_s/etc/vtpm-bridge/a.conf"
	printf '# started by udev (SYSTEMD_WANTS) when /dev/vtpmx appears\nfronts = vtpm-proxy\nautostart = yes\n' \
		>"$_s/etc/vtpm-bridge/auto.conf"
	printf '# a bad mode\nfronts = vtpm-proxy\nmode = 0888\nautostart = no\n' >"$_s/etc/vtpm-bridge/bad.conf"
	printf 'fronts = cuse\ngroup = iutpm\nmode = 0660\nflags = not-need-init,startup-clear\nautostart = no\n' \
		>"$_s/etc/vtpm-bridge/c.conf"
}

# ---------------------------------------------------------------- guest side

IS_BIN=/usr/bin/vtpm-bridge
IS_UNIT=/usr/lib/systemd/system/vtpm-bridge@.service
IS_CONF=/etc/vtpm-bridge
IS_NV=0x1500020
IS_DROPIN=/run/systemd/system/vtpm-bridge@.service.d
# CapBnd of CAP_CHOWN(0) CAP_DAC_OVERRIDE(1) CAP_FOWNER(3) CAP_SETGID(6) CAP_SETUID(7) CAP_SYS_ADMIN(21)
IS_CAPBND=00000000002000cb

is_dt() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }
is_why() { grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 3 | tr '\n' '|' | cut -c1-300; }
is_notrun() { _r=$1; shift; for _c in "$@"; do vt_fail "$_c" "not run: $_r"; done; }

# is_prop UNIT PROP: one property's value
is_prop() { systemctl show -p "$2" --value "$1" 2>/dev/null; }
# is_state UNIT: "ActiveState/SubState MainPID"
is_state() { echo "$(is_prop "$1" ActiveState)/$(is_prop "$1" SubState) $(is_prop "$1" MainPID)"; }

# is_wait_active UNIT SECONDS [NOT-PID]: until active/running (with a
# MainPID other than NOT-PID); 0 if it came
is_wait_active() {
	_i=0
	while [ $_i -lt $(($2 * 10)) ]; do
		set -- "$1" "$2" "${3:-0}" $(is_state "$1")
		[ "$4" = active/running ] && [ "${5:-0}" != 0 ] && [ "$5" != "$3" ] && return 0
		sleep 0.1; _i=$((_i + 1))
	done
	return 1
}

# is_status_field PID FIELD: a field of /proc/PID/status, blanks squeezed
is_status_field() { sed -n "s/^$2:[[:space:]]*//p" "/proc/$1/status" 2>/dev/null | tr -s ' \t' ' '; }

is_journal() { journalctl --no-pager -o short-monotonic -u "vtpm-bridge@$1.service" 2>&1; }

# is_nv_content NAME: 32 bytes
is_nv_content() { printf '%-32s' "instance $1 $2"; }

# ---- the phases (in systemd's namespaces)

is_boot_checks() {
	if [ "$(cat /vm/install.rc 2>/dev/null)" = 0 ] && [ -f $IS_UNIT ] && [ -x $IS_BIN ]; then
		vt_pass install "make install DESTDIR=stage PREFIX=/usr: $IS_BIN, $IS_UNIT"
	else vt_fail install "status $(cat /vm/install.rc 2>/dev/null): $(is_why /vm/install.log); $(ls $IS_UNIT $IS_BIN 2>&1 | tr '\n' ' ')"; fi
	vt_info "unit: $(grep -v '^[[:space:]]*#' $IS_UNIT | grep . | tr '\n' '|' | cut -c1-1200)"
	_st=$(timeout 120 systemctl is-system-running --wait 2>&1)
	_bt=$(systemctl show -p UserspaceTimestampMonotonic -p FinishTimestampMonotonic --value 2>/dev/null | tr '\n' ' ')
	vt_info "systemd $(systemctl --version | head -n 1); is-system-running: $_st; userspace/finish timestamps (us): $_bt"
	_failed=$(systemctl list-units --failed --no-legend --plain 2>&1 | awk '{ print $1 }' | tr '\n' ' ')
	case $_st in
	running) vt_pass boot "multi-user.target reached, state running" ;;
	degraded) vt_fail boot "state degraded, failed units: $_failed" ;;
	*) vt_fail boot "state '$_st', failed: $_failed" ;;
	esac
	for _u in systemd-journald.service systemd-udevd.service systemd-udev-trigger.service; do
		_s=$(is_prop $_u ActiveState)/$(is_prop $_u SubState)
		case $_u:$_s in
		*:active/running|systemd-udev-trigger.service:active/exited) vt_pass "boot-${_u%.service}" "$_s" ;;
		*) vt_fail "boot-${_u%.service}" "$_s: $(journalctl --no-pager -u $_u 2>&1 | tail -n 3 | tr '\n' '|')" ;;
		esac
	done
	vt_info "udev: vtpmx $(udevadm info -q property -n /dev/vtpmx 2>&1 | grep -E '^(TAGS|SYSTEMD_WANTS)=' | tr '\n' ' '); dev-vtpmx.device $(is_prop dev-vtpmx.device ActiveState), wants: $(is_prop dev-vtpmx.device Wants)"
}

# is_start NAME: `systemctl start`, then at once the node checks; sets IS_RC, IS_T
is_start() {
	_t0=$(vt_now)
	systemctl start "vtpm-bridge@$1" >/tmp/is-start-$1.out 2>&1
	IS_RC=$?
	IS_T=$(is_dt "$_t0" "$(vt_now)")
}

# is_first: points 1 and 2 of instance a
is_first() {
	is_start a
	# right after start returns: the link, its owner, group and mode
	_n=$(stat -L -c '%a %U:%G' /dev/vtpm/a-rm 2>&1)
	_m=$(stat -L -c '%a %U:%G' /dev/vtpm/a 2>&1)
	if [ $IS_RC -ne 0 ]; then
		vt_fail a-start "systemctl start vtpm-bridge@a: rc=$IS_RC after $IS_T s: $(is_why /tmp/is-start-a.out); journal: $(is_journal a | tail -n 4 | tr '\n' '|' | cut -c1-500)"
		is_journal a | sed 's/^/    | /'
		is_notrun "a did not start" a-active a-link-at-start a-getrandom a-uid a-nonewprivs a-capbnd a-seccomp \
			a-cdi a-nv-write a-restart a-nv-kept a-stop a-stop-inactive a-stop-links-gone a-stop-files-gone a-stoppost
		IS_BROKEN="$IS_BROKEN a"
		return 1
	fi
	vt_pass a-start "systemctl start vtpm-bridge@a: rc 0 after $IS_T s"
	set -- $(is_state vtpm-bridge@a)
	_pid=$2
	if [ "$1" = active/running ] && [ "${_pid:-0}" != 0 ]; then vt_pass a-active "ActiveState/SubState $1, MainPID $_pid"
	else vt_fail a-active "ActiveState/SubState $1, MainPID $_pid"; fi
	if [ "$_n $_m" = "660 root:iutpm 660 root:iutpm" ]; then
		vt_pass a-link-at-start "when systemctl start returned: /dev/vtpm/a-rm -> $(readlink /dev/vtpm/a-rm) $_n, /dev/vtpm/a $_m"
	else vt_fail a-link-at-start "when systemctl start returned: /dev/vtpm/a-rm '$_n', /dev/vtpm/a '$_m' (want 660 root:iutpm)"; fi
	vt_run a-getrandom tpm2_getrandom -T device:/dev/vtpm/a-rm 8 --hex
	# the sandbox as the kernel sees it
	_uid=$(is_status_field "$_pid" Uid) _gid=$(is_status_field "$_pid" Gid)
	_tu=$(id -u tss) _tg=$(id -g tss)
	if [ "$_uid" = "$_tu $_tu $_tu $_tu" ] && [ "$_gid" = "$_tg $_tg $_tg $_tg" ]; then
		vt_pass a-uid "MainPID $_pid: Uid $_uid, Gid $_gid (tss)"
	else vt_fail a-uid "MainPID $_pid: Uid '$_uid', Gid '$_gid', want tss ($_tu/$_tg)"; fi
	vt_same a-nonewprivs 1 "$(is_status_field "$_pid" NoNewPrivs)" "NoNewPrivs of MainPID $_pid"
	vt_same a-capbnd $IS_CAPBND "$(is_status_field "$_pid" CapBnd)" "CapBnd of MainPID $_pid (CapEff $(is_status_field "$_pid" CapEff))"
	vt_same a-seccomp 2 "$(is_status_field "$_pid" Seccomp)" "Seccomp of MainPID $_pid (filters: $(is_status_field "$_pid" Seccomp_filters))"
	vt_info "a: cgroup $(cat /proc/$_pid/cgroup 2>&1), mounts ro: $(awk '$4 ~ /^ro/ { print $2 }' /proc/$_pid/mounts 2>&1 | tr '\n' ' ' | cut -c1-300)"
	if [ -f /run/cdi/vtpm-bridge-a.json ] && [ -f /run/vtpm-bridge/a.instance ]; then
		vt_pass a-cdi "/run/cdi/vtpm-bridge-a.json $(stat -c '%a %U' /run/cdi/vtpm-bridge-a.json), /run/vtpm-bridge/a.instance $(stat -c '%a %U' /run/vtpm-bridge/a.instance)"
	else vt_fail a-cdi "$(ls -l /run/cdi /run/vtpm-bridge 2>&1 | tr '\n' '|')"; fi
	is_protect a "$_pid"
	# point 2: NV across a restart
	is_nv_content a 1 >/tmp/is-nv.in
	vt_run a-nv-write sh -c "tpm2_nvdefine -T device:/dev/vtpm/a-rm $IS_NV -C o -s 32 -a 'ownerread|ownerwrite' &&
		tpm2_nvwrite -T device:/dev/vtpm/a-rm $IS_NV -C o -i /tmp/is-nv.in"
	_t0=$(vt_now)
	systemctl restart vtpm-bridge@a >/tmp/is-restart.out 2>&1
	_rc=$?
	set -- $(is_state vtpm-bridge@a)
	if [ $_rc -eq 0 ] && [ "$1" = active/running ] && [ "$2" != "$_pid" ] && [ -e /dev/vtpm/a-rm ]; then
		vt_pass a-restart "rc 0 after $(is_dt "$_t0" "$(vt_now)") s, $1, MainPID $_pid -> $2"
	else vt_fail a-restart "rc $_rc, $1, MainPID $_pid -> $2: $(is_why /tmp/is-restart.out)"; fi
	rm -f /tmp/is-nv.out
	tpm2_nvread -T device:/dev/vtpm/a-rm $IS_NV -C o -s 32 -o /tmp/is-nv.out >/tmp/is-nv.err 2>&1
	vt_same a-nv-kept "$(is_nv_content a 1)" "$(cat /tmp/is-nv.out 2>/dev/null)" "NV $IS_NV after the restart ($(is_why /tmp/is-nv.err))"
	_pid=$2
	_t0=$(vt_now)
	systemctl stop vtpm-bridge@a >/tmp/is-stop.out 2>&1
	_rc=$?
	_left=$(ls /run/cdi/vtpm-bridge-a.json /run/vtpm-bridge/a.instance 2>/dev/null | tr '\n' ' ')
	if [ $_rc -eq 0 ]; then vt_pass a-stop "rc 0 after $(is_dt "$_t0" "$(vt_now)") s"
	else vt_fail a-stop "rc $_rc: $(is_why /tmp/is-stop.out)"; fi
	_s="$(is_prop vtpm-bridge@a ActiveState)/$(is_prop vtpm-bridge@a SubState) Result=$(is_prop vtpm-bridge@a Result) ExecMainCode=$(is_prop vtpm-bridge@a ExecMainCode) ExecMainStatus=$(is_prop vtpm-bridge@a ExecMainStatus)"
	case $_s in
	"inactive/dead Result=success ExecMainCode=1 ExecMainStatus=0") vt_pass a-stop-inactive "$_s (ExecMainCode 1: exited)" ;;
	*) vt_fail a-stop-inactive "$_s: $(is_journal a | tail -n 3 | tr '\n' '|')" ;;
	esac
	if udevadm wait --timeout=5 --removed --settle /dev/vtpm/a /dev/vtpm/a-rm >/tmp/is-wait.out 2>&1; then
		vt_pass a-stop-links-gone "/dev/vtpm/a, a-rm removed"
	else vt_fail a-stop-links-gone "$(ls -l /dev/vtpm 2>&1 | tr '\n' '|')"; fi
	if [ -z "$_left" ]; then vt_pass a-stop-files-gone "no /run/cdi/vtpm-bridge-a.json, no /run/vtpm-bridge/a.instance when systemctl stop returned"
	else vt_fail a-stop-files-gone "left: $_left"; fi
	# ExecStopPost ran (a pid) and exited 0
	_sp=$(is_prop vtpm-bridge@a ExecStopPost | tr -s ' ')
	case $_sp in
	*"cleanup a ;"*"pid=0 ;"*) vt_fail a-stoppost "ExecStopPost did not run: $_sp" ;;
	*"cleanup a ;"*"pid="[1-9]*"code=exited ; status=0 }"*|*"cleanup a ;"*"pid="[1-9]*"code=exited ; status=0/"*) vt_pass a-stoppost "$(echo "$_sp" | cut -c1-300)" ;;
	*) vt_fail a-stoppost "ExecStopPost: $_sp" ;;
	esac
}

# is_protect NAME PID: what the unit's mount namespace lets root write
# (nsenter into PID's mount namespace only: the mount flags are the
# sandbox's, the credentials ours) and its cgroup's processes
is_protect() {
	_w="" _r=""
	for _d in /etc /usr /var/lib /run /run/udev /run/systemd /run/vtpm-bridge /run/cdi /var/lib/vtpm-bridge /tmp /var/tmp; do
		if nsenter -t "$2" -m -r sh -c "touch $_d/.is-probe && rm -f $_d/.is-probe" >/dev/null 2>&1; then _w="$_w $_d"
		else _r="$_r $_d"; fi
	done
	_want=" /run/vtpm-bridge /run/cdi /var/lib/vtpm-bridge /tmp /var/tmp"
	if [ "$_w" = "$_want" ]; then vt_pass "$1-protect" "writable in the unit's namespace:$_w; read-only:$_r"
	else vt_fail "$1-protect" "ProtectSystem=strict, yet root in the unit may write:$_w (want$_want); read-only:$_r"; fi
	vt_info "$1: its mountinfo for /run: $(awk '$5 ~ /^\/run/ { print $5, $6 }' /proc/$2/mountinfo | tr '\n' '|' | cut -c1-600)"
	_tmp=$(nsenter -t "$2" -m -r sh -c 'ls -a /tmp | tr "\n" " "' 2>&1)
	_cg=$(sed -n 's/^0:://p' "/proc/$2/cgroup")
	vt_info "$1: /tmp in its namespace: $_tmp; cgroup $_cg holds $(tr '\n' ' ' </sys/fs/cgroup$_cg/cgroup.procs 2>&1)(MainPID $2, threads $(ls /proc/$2/task | tr '\n' ' ')); DevicePolicy=$(is_prop "vtpm-bridge@$1" DevicePolicy) DeviceAllow=$(is_prop "vtpm-bridge@$1" DeviceAllow); state dir $(stat -c '%a %U:%G' /var/lib/vtpm-bridge/$1 2>&1)"
}

# is_crash: point 3
is_crash() {
	is_start a
	if [ $IS_RC -ne 0 ]; then
		vt_fail crash-start "rc $IS_RC: $(is_why /tmp/is-start-a.out)"
		is_notrun "a did not start" crash-restarted crash-serves crash-cdi crash-stoppost
		return 1
	fi
	_pid=$(is_prop vtpm-bridge@a MainPID)
	_ino=$(stat -c %i /run/cdi/vtpm-bridge-a.json 2>/dev/null)
	_old=$(tr -d ' \n' </run/cdi/vtpm-bridge-a.json 2>/dev/null | grep -o '"hostPath":"[^"]*"' | tr '\n' ' ')
	_t0=$(vt_now)
	systemctl kill -s KILL vtpm-bridge@a >/tmp/is-kill.out 2>&1
	# poll: when is the old spec gone (removed, or replaced by the new instance's)?
	_gone="" _i=0
	while [ $_i -lt 200 ]; do
		_x=$(stat -c %i /run/cdi/vtpm-bridge-a.json 2>/dev/null)
		if [ "$_x" != "$_ino" ]; then _gone="$(is_dt "$_t0" "$(vt_now)") s (${_x:+replaced by inode $_x}${_x:-removed})"; break; fi
		sleep 0.05; _i=$((_i + 1))
	done
	_died=no
	vt_alive "$_pid" || _died=yes
	if is_wait_active vtpm-bridge@a 30 "$_pid"; then
		_np=$(is_prop vtpm-bridge@a MainPID)
		vt_pass crash-restarted "SIGKILL to MainPID $_pid: restarted as $_np after $(is_dt "$_t0" "$(vt_now)") s, NRestarts=$(is_prop vtpm-bridge@a NRestarts)"
		vt_run crash-serves tpm2_getrandom -T device:/dev/vtpm/a-rm 8 --hex
	else
		vt_fail crash-restarted "after SIGKILL to $_pid (dead: $_died): $(is_state vtpm-bridge@a), NRestarts=$(is_prop vtpm-bridge@a NRestarts): $(is_journal a | tail -n 4 | tr '\n' '|')"
		vt_fail crash-serves "not run: a did not come back"
	fi
	_new=$(tr -d ' \n' </run/cdi/vtpm-bridge-a.json 2>/dev/null | grep -o '"hostPath":"[^"]*"' | tr '\n' ' ')
	if [ -n "$_gone" ]; then
		vt_pass crash-cdi "the old spec ($_old) gone $_gone after the kill; the new one names $_new (-> $(readlink -f /dev/vtpm/a-rm))"
	else vt_fail crash-cdi "the old spec (inode $_ino: $_old) still there 10 s after the kill"; fi
	vt_info "crash: ExecStopPost $(is_prop vtpm-bridge@a ExecStopPost | tr -s ' ' | cut -c1-250); journal: $(is_journal a | tail -n 8 | cut -c1-160 | tr '\n' '|')"
	systemctl stop vtpm-bridge@a >/dev/null 2>&1
}

# is_bad: point 4
is_bad() {
	is_start bad
	_s="$(is_prop vtpm-bridge@bad ActiveState)/$(is_prop vtpm-bridge@bad SubState) Result=$(is_prop vtpm-bridge@bad Result)"
	if [ $IS_RC -ne 0 ] && [ "$(is_prop vtpm-bridge@bad ActiveState)" = failed ]; then
		vt_pass bad-start-fails "rc $IS_RC: $(head -n 1 /tmp/is-start-bad.out | cut -c1-160); $_s"
	else vt_fail bad-start-fails "rc $IS_RC, $_s: $(is_why /tmp/is-start-bad.out)"; fi
	_re="$IS_CONF/bad.conf:3: mode: "
	sleep 0.5	# journald gets the line over its stream socket
	is_journal bad >/tmp/is-bad.journal
	sed 's/^/    | /' /tmp/is-bad.journal
	if grep -qF "$_re" /tmp/is-bad.journal; then vt_pass bad-journal "$(grep -F "$_re" /tmp/is-bad.journal | head -n 1 | cut -c1-250)"
	else vt_fail bad-journal "no '$_re' in journalctl -u vtpm-bridge@bad: $(tail -n 3 /tmp/is-bad.journal | tr '\n' '|' | cut -c1-300)"; fi
	systemctl status --no-pager -l vtpm-bridge@bad >/tmp/is-bad.status 2>&1
	sed 's/^/    | /' /tmp/is-bad.status
	if grep -qF "$_re" /tmp/is-bad.status; then vt_pass bad-status "$(grep -F "$_re" /tmp/is-bad.status | head -n 1 | sed 's/^ *//' | cut -c1-250)"
	else vt_fail bad-status "no '$_re' in systemctl status: $(tr '\n' '|' </tmp/is-bad.status | cut -c1-300)"; fi
	systemctl reset-failed vtpm-bridge@bad >/dev/null 2>&1
}

# is_auto: point 5
is_auto() {
	# at boot: udev's coldplug, SYSTEMD_WANTS, systemd
	if is_wait_active vtpm-bridge@auto 20; then
		vt_pass auto-boot "vtpm-bridge@auto $(is_state vtpm-bridge@auto) without systemctl start; WantedBy=$(is_prop vtpm-bridge@auto WantedBy)"
	else
		vt_fail auto-boot "vtpm-bridge@auto: $(is_state vtpm-bridge@auto); WantedBy=$(is_prop vtpm-bridge@auto WantedBy); vtpmx: $(udevadm info -q property -n /dev/vtpmx 2>&1 | grep -E '^(TAGS|SYSTEMD_WANTS)=' | tr '\n' ' '); dev-vtpmx.device $(is_prop dev-vtpmx.device ActiveState)"
	fi
	vt_info "auto: $(is_journal auto | grep -v '^--' | head -n 4 | cut -c1-160 | tr '\n' '|')"
	# a new definition and an add event: systemd starts what SYSTEMD_WANTS newly names
	printf 'fronts = vtpm-proxy\nautostart = yes\n' >$IS_CONF/auto2.conf
	_t0=$(vt_now)
	udevadm trigger --action=add /sys/class/misc/vtpmx >/tmp/is-trig.out 2>&1
	if is_wait_active vtpm-bridge@auto2 20; then
		vt_pass auto-trigger "udevadm trigger --action=add vtpmx: vtpm-bridge@auto2 $(is_state vtpm-bridge@auto2) after $(is_dt "$_t0" "$(vt_now)") s"
	else
		vt_fail auto-trigger "vtpm-bridge@auto2: $(is_state vtpm-bridge@auto2); vtpmx: $(udevadm info -q property -n /dev/vtpmx 2>&1 | grep -E '^(TAGS|SYSTEMD_WANTS)=' | tr '\n' ' ')"
	fi
	# the device goes and comes (a module load at boot): both start
	systemctl stop vtpm-bridge@auto vtpm-bridge@auto2 >/tmp/is-stop2.out 2>&1
	udevadm settle --timeout=10
	if ! rmmod tpm_vtpm_proxy >/tmp/is-rmmod.out 2>&1; then
		vt_fail auto-module "rmmod tpm_vtpm_proxy: $(is_why /tmp/is-rmmod.out)"
		return 0
	fi
	udevadm settle --timeout=10
	_t0=$(vt_now)
	modprobe tpm_vtpm_proxy >/tmp/is-modprobe.out 2>&1
	if is_wait_active vtpm-bridge@auto 20 && is_wait_active vtpm-bridge@auto2 20; then
		vt_pass auto-module "rmmod + modprobe tpm_vtpm_proxy: auto and auto2 active after $(is_dt "$_t0" "$(vt_now)") s"
	else vt_fail auto-module "auto $(is_state vtpm-bridge@auto), auto2 $(is_state vtpm-bridge@auto2)"; fi
	systemctl stop vtpm-bridge@auto vtpm-bridge@auto2 >/dev/null 2>&1
	rm -f $IS_CONF/auto2.conf
}

# is_cuse: point 6
is_cuse() {
	is_start c
	_n=$(stat -L -c '%a %U:%G' /dev/vtpm-c 2>&1)
	if [ $IS_RC -ne 0 ]; then
		vt_fail c-start "rc $IS_RC after $IS_T s: $(is_why /tmp/is-start-c.out); journal: $(is_journal c | tail -n 4 | tr '\n' '|' | cut -c1-500)"
		is_journal c | sed 's/^/    | /'
		is_notrun "c did not start" c-node c-getrandom c-stop
		IS_BROKEN="$IS_BROKEN c"
		return 1
	fi
	vt_pass c-start "rc 0 after $IS_T s, $(is_state vtpm-bridge@c)"
	vt_same c-node "660 root:iutpm" "$_n" "/dev/vtpm-c when systemctl start returned"
	vt_run c-getrandom tpm2_getrandom -T device:/dev/vtpm-c 8 --hex
	systemctl stop vtpm-bridge@c >/tmp/is-stop.out 2>&1
	_s="$(is_prop vtpm-bridge@c ActiveState) Result=$(is_prop vtpm-bridge@c Result)"
	if [ "$_s" = "inactive Result=success" ] && [ ! -e /dev/vtpm-c ] && [ ! -e /run/cdi/vtpm-bridge-c.json ]; then
		vt_pass c-stop "$_s, /dev/vtpm-c and its CDI spec gone"
	else vt_fail c-stop "$_s, left: $(ls /dev/vtpm-c /run/cdi/vtpm-bridge-c.json 2>&1 | tr '\n' ' ')"; fi
}

# is_bisect NAME: NAME's start failed under the unit.  Each hardening
# setting is turned off alone by a drop-in; the ones that make it start are
# named (INFO lines, and one FAIL naming them)
is_bisect() {
	_n=$1
	systemctl reset-failed "vtpm-bridge@$_n" >/dev/null 2>&1
	if timeout 60 systemctl start "vtpm-bridge@$_n" >/tmp/is-bis.out 2>&1; then
		systemctl stop "vtpm-bridge@$_n" >/dev/null 2>&1
		vt_fail "bisect-$_n" "starts now without any drop-in: its first start failed once only"
		return 0
	fi
	mkdir -p $IS_DROPIN
	_ok=""
	for _o in "NoNewPrivileges=no" "ProtectSystem=no" "ProtectHome=no" "PrivateTmp=no" \
			"DevicePolicy=auto|DeviceAllow=" "ProtectKernelTunables=no" "ProtectKernelModules=no" \
			"ProtectKernelLogs=no" "ProtectControlGroups=no" "ProtectClock=no" "ProtectHostname=no" \
			"RestrictNamespaces=no" "RestrictRealtime=no" "RestrictSUIDSGID=no" "LockPersonality=no" \
			"MemoryDenyWriteExecute=no" "SystemCallArchitectures=" "RestrictAddressFamilies=" \
			"CapabilityBoundingSet=~" "UMask=0022"; do
		printf '[Service]\n%s\n' "$(echo "$_o" | tr '|' '\n')" >$IS_DROPIN/zz-bisect.conf
		systemctl daemon-reload
		systemctl reset-failed "vtpm-bridge@$_n" >/dev/null 2>&1
		if timeout 60 systemctl start "vtpm-bridge@$_n" >/tmp/is-bis.out 2>&1; then
			_ok="$_ok $_o"
			vt_info "bisect $_n: starts with $_o"
			systemctl stop "vtpm-bridge@$_n" >/dev/null 2>&1
		fi
	done
	rm -rf $IS_DROPIN
	systemctl daemon-reload
	if [ -n "$_ok" ]; then vt_fail "bisect-$_n" "starts once one of these is off:$_ok"
	else vt_fail "bisect-$_n" "no single hardening setting turned off makes it start"; fi
}

is_main() {
	export TPM2TOOLS_TCTI=device:/dev/null	# every tool names its device
	IS_BROKEN=""
	is_boot_checks
	systemctl start is-pin.target
	is_auto
	is_first
	case " $IS_BROKEN " in *" a "*) is_notrun "a did not start" crash-start crash-restarted crash-serves crash-cdi ;; *) is_crash ;; esac
	is_bad
	is_cuse
	for _b in $IS_BROKEN; do is_bisect "$_b"; done
	# what the daemon said under the unit, but for bad's error
	journalctl --no-pager -o cat -t vtpm-bridge 2>&1 | grep -v 'bad.conf:3: mode' |
		grep -iE 'warn|error|fail|denied|not permitted|did not|cannot|can.t' >/tmp/is-jw.out
	if [ -s /tmp/is-jw.out ]; then vt_fail journal-clean "$(head -n 5 /tmp/is-jw.out | tr '\n' '|' | cut -c1-400)"
	else vt_pass journal-clean "no warning or error from vtpm-bridge in the journal ($(journalctl --no-pager -o cat -t vtpm-bridge 2>/dev/null | wc -l) lines; bad's error apart)"; fi
	echo "---- systemctl list-units"
	systemctl list-units --all --no-pager --plain 2>&1 | sed 's/^/    | /'
	echo "---- journal"
	journalctl --no-pager -o short-monotonic 2>&1 | tail -n 250 | sed 's/^/    | /'
}

# ---- outside: PID 1 of the guest starts systemd

vm_guest() {
	rm -f /tmp/is-sd.log
	# (env -i: systemd gets no VT_ or container= variable)
	unshare --pid --fork --mount-proc env -i /lib/systemd/systemd --system --show-status=no \
		--log-target=kmsg --log-level=info --log-color=no --unit=multi-user.target \
		</dev/null >/tmp/is-sd.log 2>&1 &
	_up=$!
	_t0=$(vt_now)
	_sd="" _i=0
	while [ $_i -lt 600 ]; do
		_sd=$(cat /proc/$_up/task/$_up/children 2>/dev/null | awk '{ print $1 }')
		[ -n "$_sd" ] && [ -S /run/systemd/private ] && break
		vt_alive "$_up" || break
		sleep 0.1; _i=$((_i + 1))
	done
	if [ -z "$_sd" ] || [ ! -S /run/systemd/private ]; then
		vt_fail systemd-pid1 "no /run/systemd/private after 60 s (unshare $(vt_alive "$_up" && echo runs || echo exited)): $(is_why /tmp/is-sd.log); dmesg: $(dmesg | grep -i systemd | tail -n 5 | tr '\n' '|')"
		dmesg | tail -n 60 | sed 's/^/    | /'
		return 0
	fi
	vt_pass systemd-pid1 "/lib/systemd/systemd is PID 1 of a new PID namespace (pid $_sd outside), its bus after $(is_dt "$_t0" "$(vt_now)") s"
	nsenter -t "$_sd" -m -p /bin/sh -c 'cd /tmp && . /vm/guest.sh && . /vm/env && . /vm/scenario.sh && is_main' </dev/null
	_rc=$?
	[ $_rc -eq 0 ] || vt_info "the checks in systemd's namespaces ended with status $_rc"
	echo "---- systemd's messages (dmesg)"
	dmesg | grep -E 'systemd|vtpm' | tail -n 150 | sed 's/^/    | /'
	kill -9 "$_sd" 2>/dev/null
	wait "$_up" 2>/dev/null
	return 0
}
