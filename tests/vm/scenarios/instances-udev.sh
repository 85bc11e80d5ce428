# shellcheck shell=sh disable=SC2034  # VM_* are read by the harness
# Instances the system manages (issue 14), in a guest with Debian's own
# systemd-udevd and our installed files (`make install DESTDIR=stage
# PREFIX=/usr`: /usr/bin/vtpm-bridge, 70-vtpm-bridge.rules,
# vtpm-bridge@.service).  There is no systemd PID 1: the unit's
# ExecStart/ExecStopPost lines are read from the installed unit, %i
# substituted, and run as systemd runs them (clean environment,
# NOTIFY_SOCKET=/run/systemd/notify, a datagram socket that
# tools/notify-recv.c listens on with SO_PASSCRED, so the sender of
# READY=1 is known; SIGTERM; ExecStopPost with SERVICE_RESULT, EXIT_CODE,
# EXIT_STATUS).  Of the unit's sandboxing, what needs no systemd is
# applied: UMask=, StateDirectory=/RuntimeDirectory= (made, with their
# modes), NoNewPrivileges= and CapabilityBoundingSet= (util-linux setpriv);
# the rest is listed in an INFO line.
#
#   setup      make install, the unit is Type=notify, udevd started with
#              Debian's rules + ours, coldplug, every GROUP/OWNER the rules
#              name exists (udev-names)
#   wants      `udevadm test /sys/class/misc/vtpmx` and `.../misc/cuse`:
#              SYSTEMD_WANTS names exactly the autostart instances needing
#              that device (a conf with autostart = no is absent), TAG systemd
#   a          fronts = vtpm-proxy, group iutpm, mode 0660: READY=1 from the
#              main pid, with udev's links and modes already there (-udev);
#              /dev/vtpm/a, /dev/vtpm/a-rm -> the instance's tpmN/tpmrmN
#              with root:iutpm 0660; tpm2-tools through the links (getrandom,
#              NV define/write/read); a member of iutpm opens it, an outsider
#              gets EACCES; status/list; the CDI spec's host nodes (path,
#              major/minor), 0644 for any runtime; the record is root's, 0644
#              (the instance's user cannot rewrite it), so `status` works
#              for a group member; SIGTERM: exit 0, STOPPING=1,
#              ExecStopPost, links, record and CDI spec gone, status says
#              stopped (3)
#   names      a and b (owner iuuser, mode 0640) in the orders a,b; b,a; and
#              a restarted while b runs: each round, per instance, the links
#              point at the nodes its record and `status` name, the CDI spec
#              names the same host nodes, and an NV index written once
#              through the instance's own link ("instance NAME") reads back
#              through /dev/vtpm/NAME-rm (content, not just the link target)
#   plain      `vtpm-bridge chardev --vtpm-proxy --tpm2` beside a and b: its
#              line, it serves, no /dev/vtpm/ link, udev-node says nothing
#   crash      b SIGKILLed: udev's remove rule takes its CDI spec away at
#              once; status says stopped despite its stale record; a plain
#              daemon that gets b's old number gets no /dev/vtpm/b;
#              ExecStopPost (EXIT_CODE=killed) removes the record
#   cuse       instance c (fronts = cuse, owner iuuser, group iutpm, mode
#              0640): /dev/vtpm-c gets them, and no /dev/vtpm/ link
#   hostile    each refused with a message naming file, line and key, exit
#              status non-zero, no node, no process, nothing written under
#              /etc, /run (but /run/udev), /var: unknown key, mode = 0888, a
#              file over 64 KiB, a symlink loop; names with ../ for run,
#              create, cleanup, destroy (each would reach a real file); with
#              those files present, udev-wants still names a and b
#   commands   create (d, e), destroy (e), list, status, udev-node; udevd
#              logged no error about our rules or the programs they run
#
# Debian's swtpm has no instance management at all (`swtpm run a`:
# "Unsupported TPM interface type 'run'."; no rules, no unit): its job is
# one host-side SKIP and boots no guest.

VM_DESC="instances: NAME.conf, the unit's command lines with sd_notify, Debian's udevd with our rules (owner/group/mode, /dev/vtpm/NAME links, SYSTEMD_WANTS), CDI spec, hostile confs"
VM_DAEMON=guest
# /lib/systemd/systemd-udevd is a link to udevadm (one binary, argv[0] picks)
VM_BINS="/lib/systemd/systemd-udevd /usr/bin/udevadm /usr/bin/setpriv /usr/bin/tpm2 /usr/bin/tpm2_*"
VM_LIBS="/usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0 /usr/lib/x86_64-linux-gnu/libtpms.so.0"
VM_MODULES="tpm_vtpm_proxy cuse"
VM_TOOLS="notify-recv"
VM_TIMEOUT=300
VM_COST=40

vm_host() {
	vm_ours_host instances "Debian's swtpm has no instance management ('swtpm run a': $(swtpm run a 2>&1 | head -n 1); no NAME.conf, udev rules or unit in swtpm/swtpm-tools)"
}

# vm_stage STAGE (host): what a Debian host with our package has
# (vm_stage_installed), the test's users and group
vm_stage() {
	_s=$1
	vm_stage_installed "$_s" || return 1
	# the test's group for the instances' nodes, a member and an outsider
	printf 'iutpm:x:960:iuuser\niuuser:x:1000:\niuout:x:1001:\n' >>"$_s/etc/group"
	printf 'iuuser:x:1000:1000:in group iutpm:/tmp:/bin/sh\niuout:x:1001:1001:not in group iutpm:/tmp:/bin/sh\n' \
		>>"$_s/etc/passwd"
}

# ---------------------------------------------------------------- guest side

IU_BIN=/usr/bin/vtpm-bridge
IU_RULES=/usr/lib/udev/rules.d/70-vtpm-bridge.rules
IU_UNIT=/usr/lib/systemd/system/vtpm-bridge@.service
IU_CONF=/etc/vtpm-bridge
IU_RUN=/run/vtpm-bridge
IU_CDI=/run/cdi
IU_NOTIFY=/run/systemd/notify
IU_NLOG=/tmp/iu-notify.log
IU_NV=0x1500020
IU_WAIT=15		# udevadm wait --timeout; 5 once a wait failed (no pile-up of timeouts)
IU_PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin

iu_dt() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# iu_stat PATH: "MODE USER:GROUP" of what PATH resolves to
iu_stat() { stat -L -c '%a %U:%G' "$1" 2>/dev/null; }

# iu_why FILE: its last lines, for a FAIL text
iu_why() { grep -v '^[[:space:]]*$' "$1" 2>/dev/null | tail -n 3 | tr '\n' '|' | cut -c1-300; }

# iu_notrun REASON CHECK...: FAIL each check that could not run
iu_notrun() {
	_r=$1; shift
	for _c in "$@"; do vt_fail "$_c" "not run: $_r"; done
}

# iu_expect_fail NAME ERE CMD...: PASS if CMD fails and its output matches ERE
iu_expect_fail() {
	_name=$1 _pat=$2; shift 2
	"$@" >/tmp/iu-neg.out 2>&1
	_rc=$?
	sed 's/^/    | /' /tmp/iu-neg.out
	if [ $_rc -eq 0 ]; then vt_fail "$_name" "succeeded: $(iu_why /tmp/iu-neg.out)"
	elif ! grep -qE "$_pat" /tmp/iu-neg.out; then vt_fail "$_name" "failed (rc=$_rc) but not with /$_pat/: $(iu_why /tmp/iu-neg.out)"
	else vt_pass "$_name" "rc=$_rc: $(grep -E -m 1 "$_pat" /tmp/iu-neg.out | cut -c1-200)"; fi
}

# ---- the unit, as systemd reads it

# iu_unit KEY: the values of KEY= in the installed unit, one a line
iu_unit() { sed -n "s/^[[:space:]]*$1[[:space:]]*=[[:space:]]*//p" "$IU_UNIT" 2>/dev/null; }

# iu_subst NAME: the unit specifiers we know, on stdin
iu_subst() {
	sed -e 's/%%/@IU_PCT@/g' -e "s/%[iIjJ]/$1/g" -e "s/%[nN]/vtpm-bridge@$1.service/g" \
		-e 's|%t|/run|g' -e 's|%S|/var/lib|g' -e 's|%E|/etc|g' -e 's|%C|/var/cache|g' \
		-e 's|%L|/var/log|g' -e 's/@IU_PCT@/%/g'
}

# iu_sd_setup NAME: what systemd does before the first Exec line of
# NAME's unit and this emulation can do: StateDirectory= and
# RuntimeDirectory= made (with their modes); sets IU_UMASK (UMask=) and
# IU_WRAP: setpriv for NoNewPrivileges= and CapabilityBoundingSet= (root
# keeps only those capabilities, as under systemd)
iu_sd_setup() {
	_m=$(iu_unit StateDirectoryMode | tail -n 1)
	for _d in $(iu_unit StateDirectory | iu_subst "$1"); do
		mkdir -p "/var/lib/$_d" && chmod "${_m:-0755}" "/var/lib/$_d"
	done
	_m=$(iu_unit RuntimeDirectoryMode | tail -n 1)
	for _d in $(iu_unit RuntimeDirectory | iu_subst "$1"); do
		mkdir -p "/run/$_d" && chmod "${_m:-0755}" "/run/$_d"
	done
	IU_UMASK=$(iu_unit UMask | tail -n 1)
	IU_WRAP=""
	case $(iu_unit NoNewPrivileges | tail -n 1) in yes|true|1|on) IU_WRAP="--no-new-privs" ;; esac
	_caps=$(iu_unit CapabilityBoundingSet | tr ' ' '\n' | grep . | sed 's/^CAP_//' | tr '[:upper:]' '[:lower:]' |
		sed 's/^/+/' | tr '\n' ',' | sed 's/,$//')
	[ -n "$_caps" ] && IU_WRAP="$IU_WRAP --bounding-set=-all,$_caps"
	# (by its path: busybox env would run its own setpriv applet, which has no --bounding-set)
	[ -n "$IU_WRAP" ] && IU_WRAP="/usr/bin/setpriv $IU_WRAP"
}

# iu_exec KIND NAME ENV...: run each KIND= line (ExecStopPost, ...) of the
# unit for instance NAME in the foreground, in systemd's clean
# environment plus ENV; their output to /tmp/iu-NAME.KIND.  Returns the
# first failure's status, unless the line has systemd's "-" prefix.
iu_exec() {
	_k=$1 _n=$2; shift 2
	_rc=0
	: >"/tmp/iu-$_n.$_k"
	iu_unit "$_k" | iu_subst "$_n" >"/tmp/iu-$_n.$_k.lines"
	while IFS= read -r _l; do
		_ign=0
		case $_l in -*) _ign=1 ;; esac
		_l=$(echo "$_l" | sed 's/^[-@:+!]*//')
		echo "+ $_l" >>"/tmp/iu-$_n.$_k"
		# shellcheck disable=SC2086  # the command line is split as systemd splits a plain one
		( umask "${IU_UMASK:-0022}"
		  exec env -i PATH=$IU_PATH "$@" $(iu_unit Environment | iu_subst "$_n" | tr -d '"') $IU_WRAP $_l \
			</dev/null >>"/tmp/iu-$_n.$_k" 2>&1 )
		_r=$?
		[ $_r -ne 0 ] && [ $_ign = 0 ] && [ $_rc = 0 ] && _rc=$_r
	done <"/tmp/iu-$_n.$_k.lines"
	return $_rc
}

# iu_start NAME: ExecStartPre (if any), then ExecStart of
# vtpm-bridge@NAME.service in the background as systemd starts a
# Type=notify service; sets IU_PID (and IU_PID_NAME), IU_T0
iu_start() {
	_n=$1
	IU_T0=$(vt_now)
	iu_sd_setup "$_n"
	iu_exec ExecStartPre "$_n" NOTIFY_SOCKET=$IU_NOTIFY ||
		vt_info "$_n: ExecStartPre failed: $(iu_why "/tmp/iu-$_n.ExecStartPre")"
	_l=$(iu_unit ExecStart | head -n 1 | iu_subst "$_n" | sed 's/^[-@:+!]*//')
	[ -n "$_l" ] || _l=/no-ExecStart-in/$IU_UNIT	# env: can't execute it: a clear FAIL
	# shellcheck disable=SC2086  # as iu_exec
	( umask "${IU_UMASK:-0022}"
	  exec env -i PATH=$IU_PATH NOTIFY_SOCKET=$IU_NOTIFY INVOCATION_ID=$(head -c 16 /dev/urandom | xxd -p) \
		$(iu_unit Environment | iu_subst "$_n" | tr -d '"') $IU_WRAP $_l </dev/null >"/tmp/iu-$_n.out" 2>&1 ) &
	IU_PID=$!
	eval "IU_PID_$_n=$IU_PID"
}

# iu_ready CHECK NAME: READY=1 from NAME's main process within 30 s; sets
# IU_READY_LINE.  FAIL (and returns 1) if the daemon exited or nothing came.
iu_ready() {
	_c=$1 _n=$2
	eval "_p=\$IU_PID_$_n"
	_i=0 IU_READY_LINE=""
	while [ $_i -lt 300 ]; do
		IU_READY_LINE=$(grep -E " pid=$_p .*text=(.*\|)?READY=1(\||\$| )" $IU_NLOG | head -n 1)
		[ -n "$IU_READY_LINE" ] && break
		vt_alive "$_p" || break
		sleep 0.1; _i=$((_i + 1))
	done
	if [ -n "$IU_READY_LINE" ]; then
		vt_pass "$_c" "READY=1 from the main pid $_p after $(iu_dt "$IU_T0" "$(vt_now)") s"
		# udev's links and permissions are there when READY=1 comes (the daemon waits for udev)
		_at=$(echo "$IU_READY_LINE" | sed 's/.* text=//')
		case $_n in
		c) _want="/dev/vtpm-c=640:$(id -u iuuser):$(getent group iutpm | cut -d: -f3)" ;;
		*) _want="/dev/vtpm/$_n=->" ;;
		esac
		case " $_at " in
		*" $_want"*) case $_n in
			c) vt_pass "$_c-udev" "at READY=1: $_want" ;;
			*) case " $_at " in
				*" /dev/vtpm/$_n-rm=->"*) vt_pass "$_c-udev" "at READY=1: /dev/vtpm/$_n and $_n-rm exist" ;;
				*) vt_fail "$_c-udev" "at READY=1 (want /dev/vtpm/$_n-rm too): $_at" ;;
				esac ;;
			esac ;;
		*) vt_fail "$_c-udev" "at READY=1 (want $_want...): $_at" ;;
		esac
		return 0
	fi
	_other=$(grep 'READY=1' $IU_NLOG | grep -v " pid=$_p " | tail -n 1)
	if vt_alive "$_p"; then
		vt_fail "$_c" "no READY=1 from pid $_p in 30 s${_other:+ (from another pid, which systemd ignores: $_other)}: $(iu_why "/tmp/iu-$_n.out")"
		kill -9 "$_p"; wait "$_p"
	else
		wait "$_p"
		vt_fail "$_c" "exited with status $? before READY=1: $(iu_why "/tmp/iu-$_n.out")"
	fi
	return 1
}

# iu_kill NAME SIGNAL: the signal to NAME's main process; waits 20 s for
# it; sets IU_RC (exit status, or "running")
iu_kill() {
	eval "_p=\$IU_PID_$1"
	[ -n "$_p" ] || { IU_RC=never-started; return 0; }
	kill "-$2" "$_p" 2>/dev/null
	_i=0 _hung=0
	while vt_alive "$_p" && [ $_i -lt 200 ]; do sleep 0.1; _i=$((_i + 1)); done
	if vt_alive "$_p"; then
		_hung=1
		kill -9 "$_p"
	fi
	wait "$_p"
	IU_RC=$?
	[ $_hung = 0 ] || IU_RC=running
}

# iu_links NAME: the instance's links (c: its CUSE node), as udevadm wait wants them
iu_links() {
	case $1 in
	c) echo /dev/vtpm-c ;;
	*) echo "/dev/vtpm/$1 /dev/vtpm/$1-rm" ;;
	esac
}

# iu_wait_links NAME: udevadm wait --settle for NAME's links; 0 if they came
iu_wait_links() {
	# shellcheck disable=SC2046  # two paths
	udevadm wait --timeout=$IU_WAIT --settle $(iu_links "$1") >/tmp/iu-wait.out 2>&1 && return 0
	IU_WAIT=5
	return 1
}

# iu_wait_gone NAME: udevadm wait --removed --settle for NAME's links
iu_wait_gone() {
	# shellcheck disable=SC2046
	udevadm wait --timeout=$IU_WAIT --removed --settle $(iu_links "$1") >/tmp/iu-wait.out 2>&1 && return 0
	IU_WAIT=5
	return 1
}

# iu_rec NAME KEY: KEY's value in NAME's instance record
iu_rec() { sed -n "s/^$2=//p" "$IU_RUN/$1.instance" 2>/dev/null | head -n 1; }

# iu_udev_dump NODE: what udev made of NODE, on the console (for a FAIL)
iu_udev_dump() {
	echo "---- udevadm info $1"
	udevadm info --query=all --name="$1" 2>&1 | sed 's/^/    | /'
	echo "---- udevadm test $1 (tail)"
	_sp=$(udevadm info --query=path --name="$1" 2>/dev/null)
	[ -n "$_sp" ] && udevadm test "$_sp" 2>&1 | tail -n 30 | sed 's/^/    | /'
}

# iu_stop_files NAME: what is left of NAME's run files and CDI spec
iu_stop_files() {
	ls -d "$IU_RUN/$1.instance" "$IU_CDI/vtpm-bridge-$1.json" 2>/dev/null | tr '\n' ' '
}

# iu_stop PREFIX NAME SIGNAL: stop NAME as systemd would (SIGNAL: TERM;
# KILL for a crash, then ExecStopPost as systemd runs it after one).
# Checks PREFIX-exit, PREFIX-stopping, PREFIX-stoppost, PREFIX-links-gone,
# PREFIX-files-gone (or, for SIGKILL, PREFIX-crash-cleanup only).
iu_stop() {
	_pf=$1 _n=$2 _sig=$3
	eval "_p=\$IU_PID_$_n"
	iu_kill "$_n" "$_sig"
	_rc=$IU_RC
	vt_info "$_n: after SIG$_sig and before ExecStopPost, left: '$(iu_stop_files "$_n")'"
	if [ "$_sig" = TERM ]; then
		case $_rc in
		0) vt_pass "$_pf-exit" "exit 0 on SIGTERM" ;;
		running) vt_fail "$_pf-exit" "still running 20 s after SIGTERM (SIGKILLed)"; _rc=137 ;;
		*) vt_fail "$_pf-exit" "exit status $_rc on SIGTERM: $(iu_why "/tmp/iu-$_n.out")" ;;
		esac
		if grep -qE " pid=$_p .*text=(.*\|)?STOPPING=1" $IU_NLOG; then vt_pass "$_pf-stopping" "STOPPING=1 from pid $_p"
		else vt_fail "$_pf-stopping" "no STOPPING=1 from pid $_p: $(grep " pid=$_p " $IU_NLOG | cut -d' ' -f5- | tr '\n' '|' | cut -c1-200)"; fi
		if [ "$_rc" = 0 ]; then set -- SERVICE_RESULT=success EXIT_CODE=exited EXIT_STATUS=0
		else set -- SERVICE_RESULT=exit-code EXIT_CODE=exited "EXIT_STATUS=$_rc"; fi
	else
		set -- SERVICE_RESULT=signal EXIT_CODE=killed EXIT_STATUS=KILL
	fi
	if [ "$_sig" != TERM ] && [ "$_n" != c ]; then
		# the kernel removed the nodes: udev's remove rule takes the dead instance's CDI spec away,
		# before any ExecStopPost (a spec must never name a node number another TPM may get)
		iu_wait_gone "$_n"
		if [ ! -e "$IU_CDI/vtpm-bridge-$_n.json" ]; then
			vt_pass "$_pf-cdi-gone-by-udev" "no $IU_CDI/vtpm-bridge-$_n.json once the kernel removed the nodes"
		else vt_fail "$_pf-cdi-gone-by-udev" "$IU_CDI/vtpm-bridge-$_n.json still there after the nodes' removal"; fi
	fi
	iu_exec ExecStopPost "$_n" "$@"
	_src=$?
	if [ "$_sig" != TERM ]; then
		_left=$(iu_stop_files "$_n")
		if [ $_src -eq 0 ] && [ -z "$_left" ]; then vt_pass "$_pf-crash-cleanup" "ExecStopPost ($(tr '\n' ' ' <"/tmp/iu-$_n.ExecStopPost.lines")) exit 0, record and CDI spec gone"
		else vt_fail "$_pf-crash-cleanup" "ExecStopPost status $_src, left: '$_left': $(iu_why "/tmp/iu-$_n.ExecStopPost")"; fi
		return 0
	fi
	if [ $_src -eq 0 ]; then vt_pass "$_pf-stoppost" "$(tr '\n' ' ' <"/tmp/iu-$_n.ExecStopPost.lines")"
	else vt_fail "$_pf-stoppost" "status $_src: $(iu_why "/tmp/iu-$_n.ExecStopPost")"; fi
	if iu_wait_gone "$_n"; then vt_pass "$_pf-links-gone" "$(iu_links "$_n") removed by udev"
	else vt_fail "$_pf-links-gone" "$(ls -l /dev/vtpm/ 2>&1 | tr '\n' '|'): $(iu_why /tmp/iu-wait.out)"; fi
	_left=$(iu_stop_files "$_n")
	if [ -z "$_left" ]; then vt_pass "$_pf-files-gone" "no $IU_RUN/$_n.instance, no $IU_CDI/vtpm-bridge-$_n.json"
	else vt_fail "$_pf-files-gone" "left: $_left"; fi
}

# iu_stop_brief CHECK NAME: SIGTERM + ExecStopPost, one check for all of it
iu_stop_brief() {
	_c=$1 _n=$2
	iu_kill "$_n" TERM
	_rc=$IU_RC
	iu_exec ExecStopPost "$_n" SERVICE_RESULT=success EXIT_CODE=exited "EXIT_STATUS=$_rc"
	_src=$?
	iu_wait_gone "$_n"
	_left=$(iu_stop_files "$_n")
	_ll=$(ls /dev/vtpm/"$_n" /dev/vtpm/"$_n"-rm 2>/dev/null | tr '\n' ' ')
	if [ "$_rc" = 0 ] && [ $_src = 0 ] && [ -z "$_left$_ll" ]; then
		vt_pass "$_c" "exit 0 on SIGTERM, ExecStopPost 0, links, record and CDI spec gone"
	else
		vt_fail "$_c" "exit status $_rc, ExecStopPost status $_src, left: '$_left$_ll': $(iu_why "/tmp/iu-$_n.out")"
	fi
}

# ---- what an instance's nodes are

# iu_cdi_node FILE CPATH: "hostPath major minor" of the deviceNodes entry
# whose path is CPATH (the spec flattened: the entries are flat objects)
iu_cdi_node() {
	tr -d ' \t\r\n' <"$1" 2>/dev/null | grep -o '{[^{}]*"path":"[^"]*"[^{}]*}' |
		grep "\"path\":\"$2\"" | head -n 1 | awk '{
			h = $0; sub(/.*"hostPath":"/, "", h); sub(/".*/, "", h); if ($0 !~ /"hostPath"/) h = "-"
			ma = $0; if (sub(/.*"major":/, "", ma)) sub(/[^0-9].*/, "", ma); else ma = "-"
			mi = $0; if (sub(/.*"minor":/, "", mi)) sub(/[^0-9].*/, "", mi); else mi = "-"
			print h, ma, mi }'
}

# iu_cdi_check CHECK NAME: the CDI spec of the running NAME names its nodes
# (as its links resolve) for the container's /dev/tpmrm0 and /dev/tpm0
iu_cdi_check() {
	_c=$1 _n=$2 _f=$IU_CDI/vtpm-bridge-$2.json
	if [ ! -f "$_f" ]; then vt_fail "$_c" "no $_f ($(ls $IU_CDI 2>&1 | tr '\n' ' '))"; return; fi
	_flat=$(tr -d ' \t\r\n' <"$_f")
	_bad=""
	case $_flat in *'"kind":"vtpm-bridge.io/tpm"'*) ;; *) _bad="$_bad kind is not vtpm-bridge.io/tpm;" ;; esac
	case $_flat in *"\"name\":\"$_n\""*) ;; *) _bad="$_bad no device named $_n;" ;; esac
	_what=""
	for _cp in /dev/tpmrm0:/dev/vtpm/$_n-rm /dev/tpm0:/dev/vtpm/$_n; do
		_cpath=${_cp%%:*} _host=$(readlink -f "${_cp#*:}")
		set -- $(iu_cdi_node "$_f" "$_cpath")
		_dn=$(vt_devnum "$_host")
		if [ -z "${1:-}" ]; then _bad="$_bad no deviceNodes entry with path $_cpath;"; continue; fi
		[ "$1" = "$_host" ] || _bad="$_bad $_cpath: hostPath '$1', the link resolves to '$_host';"
		if [ "$2" != - ] || [ "$3" != - ]; then
			[ "$2:$3" = "$_dn" ] || _bad="$_bad $_cpath: major:minor $2:$3, $_host is $_dn;"
		fi
		_what="$_what $_cpath<-$1 ($2:$3)"
	done
	if [ -z "$_bad" ]; then vt_pass "$_c" "kind vtpm-bridge.io/tpm, device $_n:$_what"
	else vt_fail "$_c" "$_bad $(echo "$_flat" | cut -c1-250)"; fi
}

# iu_status_nodes NAME: the tpm node names `status NAME` prints, sorted
iu_status_nodes() {
	grep -oE '(^|[^a-z-])tpm(rm)?[0-9]+' "$1" | grep -oE 'tpm(rm)?[0-9]+' | sort -u | tr '\n' ' '
}

# iu_nv_content NAME: the 32 bytes instance NAME's NV index holds
iu_nv_content() { printf '%-32s' "instance $1"; }

# iu_nv_write CHECK NAME: define and write IU_NV through /dev/vtpm/NAME-rm
iu_nv_write() {
	iu_nv_content "$2" >"/tmp/iu-nv-$2.in"
	vt_run "$1" sh -c "tpm2_nvdefine -T device:/dev/vtpm/$2-rm $IU_NV -C o -s 32 -a 'ownerread|ownerwrite' &&
		tpm2_nvwrite -T device:/dev/vtpm/$2-rm $IU_NV -C o -i /tmp/iu-nv-$2.in"
}

# iu_names ROUND NAME: after a start: ROUND-NAME-link, -status, -cdi, -nv
iu_names() {
	_r=$1 _n=$2
	if ! iu_wait_links "$_n"; then
		vt_fail "$_r-$_n-link" "no $(iu_links "$_n") after ${IU_WAIT} s: $(iu_why /tmp/iu-wait.out) ($(ls -l /dev/vtpm/ 2>&1 | tr '\n' '|'))"
		iu_notrun "no links" "$_r-$_n-status" "$_r-$_n-cdi" "$_r-$_n-nv"
		return 1
	fi
	_t=$(readlink -f "/dev/vtpm/$_n") _trm=$(readlink -f "/dev/vtpm/$_n-rm")
	_rt=$(iu_rec "$_n" tpm) _rrm=$(iu_rec "$_n" tpmrm)
	if [ "$_t" = "/dev/$_rt" ] && [ "$_trm" = "/dev/$_rrm" ] && [ "${_t#/dev/tpm}" = "${_trm#/dev/tpmrm}" ]; then
		vt_pass "$_r-$_n-link" "/dev/vtpm/$_n -> $_t, /dev/vtpm/$_n-rm -> $_trm, as its record says"
	else
		vt_fail "$_r-$_n-link" "/dev/vtpm/$_n -> $_t, -rm -> $_trm; the record says tpm=$_rt tpmrm=$_rrm"
	fi
	"$IU_BIN" status "$_n" >/tmp/iu-status.out 2>&1
	_src=$?
	_sn=$(iu_status_nodes /tmp/iu-status.out)
	if [ $_src -eq 0 ] && [ "$_sn" = "${_t#/dev/} ${_trm#/dev/} " ]; then
		vt_pass "$_r-$_n-status" "exit 0, names $_sn"
	else
		vt_fail "$_r-$_n-status" "exit $_src, names '$_sn', the links: ${_t#/dev/} ${_trm#/dev/}: $(iu_why /tmp/iu-status.out)"
	fi
	iu_cdi_check "$_r-$_n-cdi" "$_n"
	rm -f /tmp/iu-nv.out
	tpm2_nvread -T "device:/dev/vtpm/$_n-rm" $IU_NV -C o -s 32 -o /tmp/iu-nv.out >/tmp/iu-nv.err 2>&1
	vt_same "$_r-$_n-nv" "$(iu_nv_content "$_n")" "$(cat /tmp/iu-nv.out 2>/dev/null)" \
		"NV $IU_NV through /dev/vtpm/$_n-rm ($(iu_why /tmp/iu-nv.err))"
}

# iu_started ROUND NAME: iu_start + ready, the check ROUND-NAME-ready
iu_started() {
	iu_start "$2"
	iu_ready "$1-$2-ready" "$2"
}

# ---- hostile configurations

# iu_procs: "PID CMDLINE" of the processes running our binary (by
# /proc/PID/exe: busybox timeout's watcher, named after the command it
# watches, lingers up to a second and is not one of them)
iu_procs() {
	for _d in /proc/[0-9]*; do
		case $(readlink "$_d/exe" 2>/dev/null) in
		"$IU_BIN"|"$IU_BIN (deleted)") echo "${_d#/proc/} $(tr '\0' ' ' <"$_d/cmdline" 2>/dev/null | cut -c1-60)" ;;
		esac
	done | sort
}

# iu_snap FILE: the TPM nodes, our processes and every path under /etc,
# /run (but udev's database) and /var
iu_snap() {
	{
		ls /dev | grep -E '^(tpm|vtpm)' | sed 's|^|dev /dev/|'
		iu_procs | sed 's/^/proc /'
		find /etc /run /var 2>/dev/null | grep -v '^/run/udev' | sed 's/^/path /'
	} | sort >"$1"
}

# iu_hostile CHECK ERES CMD...: CMD must exit non-zero within 20 s, its
# stderr matching each ERE of ERES (separated by "&&"), and leave nothing
# behind: CHECK-refused, CHECK-nothing
iu_hostile() {
	_c=$1 _pats=$2; shift 2
	iu_snap /tmp/iu-before
	timeout 20 "$@" >/tmp/iu-h.out 2>/tmp/iu-h.err
	_rc=$?
	sleep 0.3	# a process or node it started has shown itself by now
	iu_snap /tmp/iu-after
	sed 's/^/    | /' /tmp/iu-h.err
	_miss=""
	_rest=$_pats
	while [ -n "$_rest" ]; do
		_p=${_rest%%&&*}
		case $_rest in *"&&"*) _rest=${_rest#*&&} ;; *) _rest="" ;; esac
		grep -qE -- "$_p" /tmp/iu-h.err || _miss="$_miss /$_p/"
	done
	# (busybox timeout: the child's 143 after its SIGTERM; coreutils: 124)
	if [ $_rc -eq 124 ] || [ $_rc -eq 143 ]; then vt_fail "$_c-refused" "still running after 20 s (killed): $*"
	elif [ $_rc -eq 0 ]; then vt_fail "$_c-refused" "exit 0: $* ($(iu_why /tmp/iu-h.err))"
	elif [ -n "$_miss" ]; then vt_fail "$_c-refused" "exit $_rc, stderr lacks$_miss: '$(iu_why /tmp/iu-h.err)'"
	else vt_pass "$_c-refused" "exit $_rc: $(head -n 1 /tmp/iu-h.err | cut -c1-200)"; fi
	_diff=$(diff /tmp/iu-before /tmp/iu-after | grep '^[-+][dp]' | tr '\n' ' ' | cut -c1-300)
	if [ -z "$_diff" ]; then vt_pass "$_c-nothing" "no node, no process, nothing under /etc /run /var"
	else vt_fail "$_c-nothing" "changed: $_diff"
		# whatever it started goes, so later checks see a clean guest
		for _p in $(diff /tmp/iu-before /tmp/iu-after | sed -n 's/^+proc \([0-9]*\).*/\1/p'); do kill -9 "$_p" 2>/dev/null; done
	fi
}

# ---------------------------------------------------------------- the phases

iu_setup() {
	if [ "$(cat /vm/install.rc 2>/dev/null)" = 0 ]; then vt_pass install "make install DESTDIR=stage PREFIX=/usr"
	else vt_fail install "status $(cat /vm/install.rc 2>/dev/null): $(iu_why /vm/install.log)"; fi
	sed 's/^/    | /' /vm/install.log
	_miss=""
	for _f in $IU_BIN $IU_RULES $IU_UNIT; do [ -f "$_f" ] || _miss="$_miss $_f"; done
	if [ -z "$_miss" ]; then vt_pass installed-files "$IU_BIN, $IU_RULES, $IU_UNIT"
	else vt_fail installed-files "missing:$_miss"; fi
	if [ -f "$IU_RULES" ]; then
		vt_info "rules: $(grep -v '^[[:space:]]*#' "$IU_RULES" | grep . | tr '\n' '|' | cut -c1-900)"
	fi
	if [ -f "$IU_UNIT" ]; then
		vt_info "unit: $(grep -v '^[[:space:]]*#' "$IU_UNIT" | grep . | tr '\n' '|' | cut -c1-900)"
		vt_same unit-type-notify notify "$(iu_unit Type | tail -n 1)" "Type="
		_l=$(iu_unit ExecStart | head -n 1)
		case $_l in
		*"run %i"*|*"run %I"*) vt_pass unit-exec "ExecStart=$_l; ExecStopPost=$(iu_unit ExecStopPost | tr '\n' ' ')" ;;
		*) vt_fail unit-exec "ExecStart=$_l (no 'run %i')" ;;
		esac
		case $(iu_unit ExecStopPost) in
		*"cleanup %i"*|*"cleanup %I"*) vt_pass unit-stoppost "ExecStopPost=$(iu_unit ExecStopPost | tr '\n' ' ')" ;;
		*) vt_fail unit-stoppost "ExecStopPost=$(iu_unit ExecStopPost | tr '\n' ' ') (no 'cleanup %i')" ;;
		esac
		_na=$(iu_unit NotifyAccess | tail -n 1)
		[ -n "$_na" ] && vt_info "NotifyAccess=$_na (the checks want READY=1 from the main pid regardless)"
		# what systemd would do and this emulation does not (it does Type=notify,
		# NotifyAccess, Exec*, Environment, UMask, NoNewPrivileges,
		# CapabilityBoundingSet, StateDirectory, RuntimeDirectory and their modes)
		iu_sd_setup x
		vt_info "emulated: umask ${IU_UMASK:-0022}, ${IU_WRAP:-no setpriv}"
		_other=$(grep -vE '^[[:space:]]*(#|\[|$|(Description|Documentation|After|Before|Wants|WantedBy|Type|NotifyAccess|ExecStart|ExecStartPre|ExecStopPost|Environment|UMask|NoNewPrivileges|CapabilityBoundingSet|StateDirectory|StateDirectoryMode|RuntimeDirectory|RuntimeDirectoryMode|RuntimeDirectoryPreserve)[[:space:]]*=)' "$IU_UNIT" |
			sed 's/[[:space:]]*=.*//' | tr '\n' ' ')
		[ -n "$_other" ] && vt_info "unit settings not emulated here (no systemd PID 1): $_other"
		case $(iu_unit RuntimeDirectoryPreserve | tail -n 1) in
		yes|restart) ;;
		*) vt_info "RuntimeDirectoryPreserve is not yes: systemd would remove the shared $(iu_unit RuntimeDirectory | tr '\n' ' ')at every instance's stop (not emulated)" ;;
		esac
	else
		iu_notrun "no $IU_UNIT" unit-type-notify unit-exec unit-stoppost
	fi
	vt_no_other_tpm

	# udevd: --daemon detaches with stdio on /dev/null; SYSTEMD_LOG_TARGET=kmsg
	# keeps its messages (rule errors, unknown names) in dmesg
	mkdir -p "$(dirname $IU_NOTIFY)"
	notify-recv $IU_NOTIFY $IU_NLOG /dev/vtpm/a /dev/vtpm/a-rm /dev/vtpm/b /dev/vtpm/b-rm /dev/vtpm-c \
		/dev/tpm0 /dev/tpmrm0 /dev/tpm1 /dev/tpmrm1 &
	IU_NR_PID=$!
	vt_wait_path $IU_NOTIFY 5 || vt_info "notify-recv: no $IU_NOTIFY after 5 s"
	SYSTEMD_LOG_TARGET=kmsg vt_run udevd-start /lib/systemd/systemd-udevd --daemon
	vt_run udevd-ping udevadm control --ping
	_t=$(vt_now)
	udevadm trigger --type=subsystems --action=add >/tmp/iu-trig.out 2>&1 &&
		udevadm trigger --type=devices --action=add >>/tmp/iu-trig.out 2>&1
	vt_run coldplug udevadm settle --timeout=60
	vt_info "coldplug (trigger + settle) took $(iu_dt "$_t" "$(vt_now)") s; /dev/vtpmx $(iu_stat /dev/vtpmx), /dev/cuse $(iu_stat /dev/cuse)"
	_unk=$(dmesg | grep 'systemd-udevd' | grep -iE "unknown (user|group)" | sort -u | head -n 5 | tr '\n' '|')
	if [ -z "$_unk" ]; then vt_pass udev-names "no unknown user or group in the rules (Debian's and ours)"
	else vt_fail udev-names "$_unk"; fi
	_err=$(dmesg | grep 'systemd-udevd' | grep -F '70-vtpm-bridge.rules' | head -n 5 | tr '\n' '|')
	if [ -z "$_err" ]; then vt_pass rules-load "udevd says nothing about 70-vtpm-bridge.rules"
	else vt_fail rules-load "$_err"; fi
}

# the instances' definitions: a, b, c by hand (the format of
# vtpm-bridge.conf(5)); d and e (autostart = no) by `create`
iu_confs() {
	mkdir -p $IU_CONF
	cat >$IU_CONF/a.conf <<-EOF
	# instance a: the kernel's nodes, for the group iutpm
	fronts = vtpm-proxy
	tpm = 2.0
	group = iutpm
	mode = 0660
	autostart = yes
	EOF
	cat >$IU_CONF/b.conf <<-EOF
	fronts = vtpm-proxy
	owner = iuuser
	group = iutpm
	mode = 0640
	autostart = yes
	EOF
	cat >$IU_CONF/c.conf <<-EOF
	fronts = cuse
	owner = iuuser
	group = iutpm
	mode = 0640
	flags = not-need-init,startup-clear
	autostart = yes
	EOF
	vt_run create-d "$IU_BIN" create d --fronts vtpm-proxy --group iutpm --autostart no
	if grep -qE '^[[:space:]]*fronts[[:space:]]*=[[:space:]]*vtpm-proxy' $IU_CONF/d.conf 2>/dev/null &&
			grep -qE '^[[:space:]]*autostart[[:space:]]*=[[:space:]]*no' $IU_CONF/d.conf; then
		vt_pass create-d-file "$(grep -v '^#' $IU_CONF/d.conf | grep . | tr '\n' '|')"
	else
		vt_fail create-d-file "$(ls -l $IU_CONF/d.conf 2>&1): $(tr '\n' '|' <$IU_CONF/d.conf 2>/dev/null)"
	fi
	vt_run create-e "$IU_BIN" create e --fronts cuse --autostart no
	vt_info "confs: $(ls $IU_CONF | tr '\n' ' '); list: $("$IU_BIN" list 2>&1 | tr '\n' '|' | cut -c1-300)"
}

# iu_wants CHECK DEVICE EXPECTED: udevadm test on /sys/class/misc/DEVICE:
# SYSTEMD_WANTS holds exactly EXPECTED (sorted unit names), TAGS systemd
iu_wants() {
	if [ ! -e "/sys/class/misc/$2" ]; then vt_fail "$1" "no /sys/class/misc/$2"; return; fi
	udevadm test "/sys/class/misc/$2" >/tmp/iu-test.out 2>&1
	_rc=$?
	_w=$(sed -n 's/^SYSTEMD_WANTS=//p' /tmp/iu-test.out | tail -n 1 | tr ' ' '\n' | grep . | sort | tr '\n' ' ')
	_tags=$(sed -n 's/^TAGS=//p' /tmp/iu-test.out | tail -n 1)
	vt_info "$2: udevadm test exit $_rc, SYSTEMD_WANTS='$_w', TAGS='$_tags'; vtpm-bridge udev-wants: $("$IU_BIN" udev-wants "$3" 2>&1 | tr '\n' '|')"
	case $_tags in
	*:systemd:*) _tag=ok ;;
	*) _tag="no systemd tag (TAGS=$_tags)" ;;
	esac
	if [ "$_w" = "$4" ] && [ "$_tag" = ok ]; then vt_pass "$1" "SYSTEMD_WANTS=$_w, TAGS=$_tags"
	else
		vt_fail "$1" "SYSTEMD_WANTS='$_w', expected '$4'; $_tag"
		grep -iE 'vtpm|SYSTEMD_WANTS' /tmp/iu-test.out | sed 's/^/    | /'
	fi
}

# instance a alone: everything of point 1 and 4
iu_first() {
	iu_started first a || {
		iu_notrun "a did not start" first-links first-link-targets first-nodes-new first-perms \
			first-getrandom first-nv-write first-nv-read-tpm first-member first-outsider \
			first-status first-list first-cdi first-member-status first-cdi-mode first-record-root first-record first-exit first-stopping \
			first-stoppost first-links-gone first-files-gone first-status-stopped
		return 0
	}
	_t=$(vt_now)
	if iu_wait_links a; then
		vt_pass first-links "/dev/vtpm/a, /dev/vtpm/a-rm $(iu_dt "$_t" "$(vt_now)") s after READY=1 (udevadm wait --settle)"
	else
		vt_fail first-links "not there ${IU_WAIT} s after READY=1: $(iu_why /tmp/iu-wait.out); /dev/vtpm: $(ls -l /dev/vtpm 2>&1 | tr '\n' '|'); tpm nodes: $(ls /dev | grep tpm | tr '\n' ' ')"
		for _x in /dev/tpm0 /dev/tpmrm0; do [ -e $_x ] && iu_udev_dump $_x; done
	fi
	_t=$(readlink -f /dev/vtpm/a) _trm=$(readlink -f /dev/vtpm/a-rm)
	_rt=$(iu_rec a tpm) _rrm=$(iu_rec a tpmrm)
	if [ -n "$_rt" ] && [ "$_t" = "/dev/$_rt" ] && [ "$_trm" = "/dev/$_rrm" ] && [ "${_rt#tpm}" = "${_rrm#tpmrm}" ]; then
		vt_pass first-link-targets "/dev/vtpm/a -> $_t, /dev/vtpm/a-rm -> $_trm (the record: tpm=$_rt tpmrm=$_rrm)"
	else
		vt_fail first-link-targets "/dev/vtpm/a -> '$_t', a-rm -> '$_trm'; the record: tpm=$_rt tpmrm=$_rrm ($(tr '\n' ' ' <$IU_RUN/a.instance 2>&1))"
	fi
	# the only TPM of the guest: its nodes are new and are a's
	if [ "$(ls /dev | grep -E '^tpm(rm)?[0-9]' | tr '\n' ' ')" = "${_rt:-?} ${_rrm:-?} " ]; then
		vt_pass first-nodes-new "the guest's only TPM nodes: $_rt $_rrm"
	else
		vt_fail first-nodes-new "nodes: $(ls /dev | grep -E '^tpm' | tr '\n' ' '), the record: $_rt $_rrm"
	fi
	_p1=$(iu_stat /dev/vtpm/a) _p2=$(iu_stat /dev/vtpm/a-rm)
	if [ "$_p1" = "660 root:iutpm" ] && [ "$_p2" = "660 root:iutpm" ]; then
		vt_pass first-perms "$_t and $_trm: 660 root:iutpm (conf: group iutpm, mode 0660, owner default root)"
	else
		vt_fail first-perms "$_t: '$_p1', $_trm: '$_p2', expected '660 root:iutpm'"
		[ -e "$_trm" ] && iu_udev_dump "$_trm"
	fi
	vt_run first-getrandom tpm2_getrandom -T device:/dev/vtpm/a-rm 8 --hex
	iu_nv_write first-nv-write a
	# read back through the other link, /dev/vtpm/a (the kernel's tpmN, no resource manager)
	rm -f /tmp/iu-nv.out
	tpm2_nvread -T device:/dev/vtpm/a $IU_NV -C o -s 32 -o /tmp/iu-nv.out >/tmp/iu-nv.err 2>&1
	vt_same first-nv-read-tpm "$(iu_nv_content a)" "$(cat /tmp/iu-nv.out 2>/dev/null)" \
		"NV $IU_NV through /dev/vtpm/a ($(iu_why /tmp/iu-nv.err))"
	# the group is what grants access
	vt_run first-member su -s /bin/sh iuuser -c 'id; tpm2_getrandom -T device:/dev/vtpm/a-rm 8 --hex'
	iu_expect_fail first-outsider 'Permission denied|EACCES|[Aa]ccess denied' \
		su -s /bin/sh iuout -c 'id; tpm2_getrandom -T device:/dev/vtpm/a-rm 8 --hex'
	"$IU_BIN" status a >/tmp/iu-status.out 2>&1
	_src=$?
	sed 's/^/    | /' /tmp/iu-status.out
	_sn=$(iu_status_nodes /tmp/iu-status.out)
	if [ $_src -eq 0 ] && [ "$_sn" = "$_rt $_rrm " ] && grep -q "$IU_PID_a" /tmp/iu-status.out; then
		vt_pass first-status "exit 0, names ${_sn}and pid $IU_PID_a"
	else
		vt_fail first-status "exit $_src, names '$_sn' (want '$_rt $_rrm'), pid $IU_PID_a $(grep -q "$IU_PID_a" /tmp/iu-status.out || echo 'not ')named: $(iu_why /tmp/iu-status.out)"
	fi
	"$IU_BIN" list >/tmp/iu-list.out 2>&1
	_lrc=$?
	sed 's/^/    | /' /tmp/iu-list.out
	if [ $_lrc -eq 0 ] && grep -qE '(^|[^A-Za-z0-9_.-])a([^A-Za-z0-9_.-]|$)' /tmp/iu-list.out; then
		vt_pass first-list "$(tr '\n' '|' </tmp/iu-list.out | cut -c1-200)"
	else vt_fail first-list "exit $_lrc: $(iu_why /tmp/iu-list.out)"; fi
	iu_cdi_check first-cdi a
	# who may read what it published (UMask= applies to it)
	su -s /bin/sh iuuser -c "$IU_BIN status a" >/tmp/iu-ustatus.out 2>&1
	_src=$?
	if [ $_src -eq 0 ] && grep -q '^state: ready' /tmp/iu-ustatus.out; then
		vt_pass first-member-status "'status a' as a member of the group: exit 0, ready"
	else vt_fail first-member-status "'status a' as iuuser: exit $_src: $(iu_why /tmp/iu-ustatus.out)"; fi
	vt_same first-cdi-mode "644 root:root" "$(stat -c '%a %U:%G' $IU_CDI/vtpm-bridge-a.json 2>&1)" \
		"the CDI spec is readable by every runtime, whatever the unit's UMask"
	# the record names the nodes udev gives away: the instance's own user must not be able to change it
	iu_expect_fail first-record-root 'Permission denied|can.t create|Read-only' \
		su -s /bin/sh tss -c "echo 'tpmrm=tpmrm9' >> $IU_RUN/a.instance || exit 1; mv $IU_RUN/a.instance $IU_RUN/a.x"
	vt_info "modes: $(stat -c '%a %U:%G %n' $IU_RUN $IU_RUN/a $IU_RUN/a.instance $IU_CDI $IU_CDI/vtpm-bridge-a.json 2>&1 | tr '\n' '|'); 'status a' as iuuser: exit $_src, $(tr '\n' '|' </tmp/iu-ustatus.out | cut -c1-200)"
	_rec="pid=$(iu_rec a pid) ready=$(cat $IU_RUN/a/ready 2>/dev/null) owner=$(iu_rec a owner) group=$(iu_rec a group) mode=$(iu_rec a mode) starttime=$(iu_rec a starttime) file=$(stat -c '%a:%u' $IU_RUN/a.instance 2>&1)"
	_st=$(sed 's/.*) //' "/proc/$IU_PID_a/stat" | awk '{ print $20 }')
	case $_rec in
	"pid=$IU_PID_a ready=$IU_PID_a owner=root group=iutpm mode="*"660 starttime=$_st file=644:0") vt_pass first-record "$_rec" ;;
	*) vt_fail first-record "$_rec (pid $IU_PID_a, starttime $_st): $(tr '\n' ' ' <$IU_RUN/a.instance 2>&1)" ;;
	esac
	vt_info "udev-node $_rt: $("$IU_BIN" udev-node "$_rt" 2>&1 | tr '\n' ' '); $_rrm: $("$IU_BIN" udev-node "$_rrm" 2>&1 | tr '\n' ' ')"
	iu_stop first a TERM
	"$IU_BIN" status a >/tmp/iu-status.out 2>&1
	_src=$?
	vt_same first-status-stopped 3 "$_src" "exit status of 'status a' after the stop ($(iu_why /tmp/iu-status.out))"
	vt_info "a's state dir: $(ls -la /var/lib/vtpm-bridge/a 2>&1 | tr '\n' '|' | cut -c1-300)"
}

# two instances, three orders
iu_rounds() {
	# a, then b
	iu_started r1 a && iu_started r1 b || {
		iu_notrun "a or b did not start" r1-b-nv-write r1-b-perms r1-a-link r1-a-status r1-a-cdi r1-a-nv \
			r1-b-link r1-b-status r1-b-cdi r1-b-nv
		iu_kill a KILL; iu_kill b KILL
		iu_exec ExecStopPost a; iu_exec ExecStopPost b
		return 1
	}
	if iu_wait_links b; then
		iu_nv_write r1-b-nv-write b
		_p=$(iu_stat /dev/vtpm/b)/$(iu_stat /dev/vtpm/b-rm)
		vt_same r1-b-perms "640 iuuser:iutpm/640 iuuser:iutpm" "$_p" "mode owner:group of b's tpmN/tpmrmN"
	else
		iu_notrun "no links for b" r1-b-nv-write r1-b-perms
	fi
	iu_names r1 a
	iu_names r1 b
	iu_stop_brief r1-a-stop a
	iu_stop_brief r1-b-stop b
	# b, then a: the numbers swap
	iu_started r2 b && iu_started r2 a || {
		iu_notrun "a or b did not start" r2-a-link r2-a-status r2-a-cdi r2-a-nv r2-b-link r2-b-status r2-b-cdi r2-b-nv
		return 1
	}
	iu_names r2 b
	iu_names r2 a
	vt_info "r2: /dev/vtpm/a -> $(readlink /dev/vtpm/a), /dev/vtpm/b -> $(readlink /dev/vtpm/b)"
	# a restarts while b runs
	iu_stop_brief r3-a-stop a
	iu_started r3 a || {
		iu_notrun "a did not start again" r3-a-link r3-a-status r3-a-cdi r3-a-nv r3-b-link r3-b-status r3-b-cdi r3-b-nv
		return 1
	}
	iu_names r3 a
	iu_names r3 b
}

# the plain command line beside the instances (a and b run)
iu_plain() {
	vt_user_dir /tmp/plain
	# shellcheck disable=SC2086  # VT_SANDBOX is several words
	if ! vt_proxy_launch plain "$IU_BIN" chardev --vtpm-proxy --tpm2 --tpmstate dir=/tmp/plain $VT_SANDBOX; then
		vt_fail plain-line "no 'New TPM device' line: $(vt_proxy_why plain)"
		kill "$VT_PROXY_PID" 2>/dev/null
		iu_notrun "the plain daemon did not start" plain-serves plain-no-link plain-udev-node plain-exit
		return 0
	fi
	_pp=$VT_PROXY_PID _pn=$VT_PROXY_N
	vt_pass plain-line "$VT_PROXY_LINE beside a ($(readlink /dev/vtpm/a)) and b ($(readlink /dev/vtpm/b))"
	vt_run plain-serves tpm2_getrandom -T "device:/dev/tpmrm$_pn" 8 --hex
	udevadm wait --timeout=$IU_WAIT --settle "/dev/tpm$_pn" "/dev/tpmrm$_pn" >/tmp/iu-wait.out 2>&1
	_to=""
	for _l in /dev/vtpm/*; do
		[ -L "$_l" ] || continue
		case $(readlink -f "$_l") in "/dev/tpm$_pn"|"/dev/tpmrm$_pn") _to="$_to $_l" ;; esac
	done
	if [ -z "$_to" ]; then vt_pass plain-no-link "/dev/vtpm holds $(ls /dev/vtpm | tr '\n' ' ')- none for tpm$_pn; tpm$_pn $(iu_stat "/dev/tpm$_pn"), tpmrm$_pn $(iu_stat "/dev/tpmrm$_pn") (Debian's 60-tpm-udev.rules)"
	else vt_fail plain-no-link "links to the plain daemon's nodes:$_to"; fi
	_o=$("$IU_BIN" udev-node "tpm$_pn" 2>&1; "$IU_BIN" udev-node "tpmrm$_pn" 2>&1)
	if [ -z "$_o" ]; then vt_pass plain-udev-node "udev-node tpm$_pn, tpmrm$_pn: nothing"
	else vt_fail plain-udev-node "$(echo "$_o" | tr '\n' ' ')"; fi
	vt_proxy_stop plain-exit "$_pp" "$_pn"
}

# b crashes: its stale record must name nothing
iu_crash() {
	_bt=$(iu_rec b tpm)
	iu_kill b KILL
	_left=$(iu_stop_files b)
	vt_info "b SIGKILLed (was $_bt): left: '$_left'"
	"$IU_BIN" status b >/tmp/iu-status.out 2>&1
	_src=$?
	vt_same crash-status 3 "$_src" "exit status of 'status b' after SIGKILL, its record '$_left' left ($(iu_why /tmp/iu-status.out))"
	udevadm wait --timeout=$IU_WAIT --removed --settle "/dev/$_bt" >/dev/null 2>&1
	vt_user_dir /tmp/plain2
	# shellcheck disable=SC2086  # VT_SANDBOX is several words
	if vt_proxy_launch plain2 "$IU_BIN" chardev --vtpm-proxy --tpm2 --tpmstate dir=/tmp/plain2 $VT_SANDBOX; then
		_pp=$VT_PROXY_PID _pn=$VT_PROXY_N
		udevadm wait --timeout=$IU_WAIT --settle "/dev/tpm$_pn" "/dev/tpmrm$_pn" >/tmp/iu-wait.out 2>&1
		_o=$("$IU_BIN" udev-node "tpm$_pn" 2>&1)
		if [ -e /dev/vtpm/b ] || [ -e /dev/vtpm/b-rm ] || [ -n "$_o" ]; then
			vt_fail crash-stale-no-link "the plain daemon's tpm$_pn (b had $_bt): /dev/vtpm/b -> '$(readlink /dev/vtpm/b)', udev-node tpm$_pn: '$_o'"
		else
			vt_pass crash-stale-no-link "a plain daemon got tpm$_pn (b had $_bt, b's record still there): no /dev/vtpm/b, udev-node says nothing"
		fi
		vt_proxy_stop crash-plain-exit "$_pp" "$_pn"
	else
		vt_fail crash-stale-no-link "the plain daemon did not start: $(vt_proxy_why plain2)"
		kill "$VT_PROXY_PID" 2>/dev/null
		vt_fail crash-plain-exit "not run: it did not start"
	fi
	iu_stop crash b KILL
}

# the CUSE instance c
iu_cuse() {
	iu_started cuse c || {
		iu_notrun "c did not start" cuse-node cuse-perms cuse-no-link cuse-getrandom cuse-exit cuse-stopping \
			cuse-stoppost cuse-links-gone cuse-files-gone
		return 0
	}
	if udevadm wait --timeout=$IU_WAIT --settle /dev/vtpm-c >/tmp/iu-wait.out 2>&1; then
		vt_pass cuse-node "/dev/vtpm-c initialized by udev; the record says cuse=$(iu_rec c cuse)"
	else vt_fail cuse-node "udevadm wait: $(iu_why /tmp/iu-wait.out)"; fi
	_p=$(iu_stat /dev/vtpm-c)
	if [ "$_p" = "640 iuuser:iutpm" ]; then vt_pass cuse-perms "/dev/vtpm-c: $_p (conf: owner iuuser, group iutpm, mode 0640)"
	else vt_fail cuse-perms "/dev/vtpm-c: '$_p', expected '640 iuuser:iutpm'"; iu_udev_dump /dev/vtpm-c; fi
	_to=$(ls /dev/vtpm/c /dev/vtpm/c-rm 2>/dev/null | tr '\n' ' ')
	if [ -z "$_to" ]; then vt_pass cuse-no-link "no /dev/vtpm/c link (CUSE: owner/group/mode only)"
	else vt_fail cuse-no-link "$_to"; fi
	vt_run cuse-getrandom tpm2_getrandom -T device:/dev/vtpm-c 8 --hex
	vt_info "c: CDI spec: $(tr -d ' \n' <$IU_CDI/vtpm-bridge-c.json 2>&1 | cut -c1-300)"
	iu_stop cuse c TERM
}

iu_hostile_all() {
	_f=$IU_CONF/hk-key.conf
	printf '# hostile: an unknown key\nfronts = vtpm-proxy\nfrobnicate = yes\n' >$_f
	iu_hostile hostile-unknown-key "$_f&&(:| line )3([^0-9]|\$)&&frobnicate" "$IU_BIN" run hk-key
	_f=$IU_CONF/hk-mode.conf
	printf 'fronts = vtpm-proxy\nmode = 0888\n' >$_f
	iu_hostile hostile-bad-mode "$_f&&(:| line )2([^0-9]|\$)&&mode" "$IU_BIN" run hk-mode
	_f=$IU_CONF/hk-huge.conf
	{ echo 'fronts = vtpm-proxy'
	  _i=0
	  while [ $_i -lt 700 ]; do printf '# %098d\n' $_i; _i=$((_i + 1)); done; } >$_f
	vt_info "hk-huge.conf: $(wc -c <$_f) bytes (limit 64 KiB), otherwise valid"
	iu_hostile hostile-huge "$_f" "$IU_BIN" run hk-huge
	ln -s hk-loop.conf $IU_CONF/hk-loop.conf
	iu_hostile hostile-symlink-loop "$IU_CONF/hk-loop.conf" "$IU_BIN" run hk-loop
	# each ../ name reaches a real file if it is not refused:
	# /etc/vtpm-bridge/../etc/x.conf is /etc/etc/x.conf, a valid conf
	mkdir -p /etc/etc
	printf 'fronts = vtpm-proxy\n' >/etc/etc/x.conf
	iu_hostile hostile-run-dotdot '\.\./etc/x' "$IU_BIN" run ../etc/x
	iu_hostile hostile-create-dotdot '\.\./x' "$IU_BIN" create ../x --fronts vtpm-proxy
	iu_hostile hostile-destroy-dotdot '\.\./etc/x' "$IU_BIN" destroy ../etc/x
	# /run/vtpm-bridge/../cdi is /run/cdi, which holds a's spec now
	iu_hostile hostile-cleanup-dotdot '\.\./cdi' "$IU_BIN" cleanup ../cdi
	# one bad file must not hide the good ones from the boot's autostart
	"$IU_BIN" udev-wants vtpm-proxy >/tmp/iu-w.out 2>/tmp/iu-w.err
	_w=$(sed -n 's/^SYSTEMD_WANTS=//p' /tmp/iu-w.out | tr ' ' '\n' | grep . | sort | tr '\n' ' ')
	vt_same wants-beside-bad-confs "vtpm-bridge@a.service vtpm-bridge@b.service " "$_w" \
		"SYSTEMD_WANTS with hk-*.conf in $IU_CONF (stderr: $(iu_why /tmp/iu-w.err))"
	rm -f $IU_CONF/hk-*.conf
}

# (stdin is the console: nothing here may wait on it)
vm_guest() { iu_main </dev/null; }

iu_main() {
	export TPM2TOOLS_TCTI=device:/dev/null	# every tool names its device
	iu_setup
	iu_confs
	iu_wants wants-vtpmx vtpmx vtpm-proxy "vtpm-bridge@a.service vtpm-bridge@b.service "
	iu_wants wants-cuse cuse cuse "vtpm-bridge@c.service "
	iu_first
	iu_rounds
	# a and b run (r3), if the rounds got that far
	if vt_alive "${IU_PID_a:-0}" && vt_alive "${IU_PID_b:-0}"; then
		iu_plain
		iu_crash
	else
		iu_notrun "a and b are not both running" plain-line plain-serves plain-no-link plain-udev-node plain-exit \
			crash-status crash-stale-no-link crash-plain-exit crash-cdi-gone-by-udev crash-crash-cleanup
	fi
	iu_cuse
	if vt_alive "${IU_PID_a:-0}"; then
		iu_hostile_all
		iu_stop last-a a TERM
	else
		iu_start a
		iu_ready last-a-ready a && iu_hostile_all
	fi
	vt_run destroy-e "$IU_BIN" destroy e
	if [ -e $IU_CONF/e.conf ]; then vt_fail destroy-e-file "$IU_CONF/e.conf is still there"
	else vt_pass destroy-e-file "$IU_CONF/e.conf gone"; fi
	# what udevd said about our rules and the programs they run
	_err=$(dmesg | grep 'systemd-udevd' | grep -iE 'vtpm' | grep -iE 'fail|error|invalid|unknown|timeout|killed' |
		sort -u | head -n 5 | tr '\n' '|')
	if [ -z "$_err" ]; then vt_pass udev-no-errors "no udevd error about our rules or vtpm-bridge's programs in dmesg"
	else vt_fail udev-no-errors "$_err"; fi
	echo "---- notify messages"; sed 's/^/    | /' $IU_NLOG
	echo "---- udevd messages in dmesg"; dmesg | grep 'systemd-udevd' | tail -n 40 | sed 's/^/    | /'
	for _p in $(iu_procs | cut -d' ' -f1); do kill -9 "$_p" 2>/dev/null; done
	kill "$IU_NR_PID" 2>/dev/null
	udevadm control --exit 2>/dev/null
	return 0
}
