# Guest helpers (busybox ash), /vm/guest.sh in the initramfs.  /init and
# every scenario's vm_guest use them.
#
# Protocol: one line per event, "VMTEST: <WORD> <name>[ - <text>]", WORD one
# of BOOTED PASS FAIL SKIP INFO WAIT DONE.  Each line goes to the console
# (ttyS0, among kernel messages) and to ttyS1 (fd 9), which the host reads
# for results.  "WAIT <tag>" asks the host for an event (e.g. a migration);
# the host answers with one line on ttyS1.

export PATH=/usr/sbin:/usr/bin:/sbin:/bin

vt_now() { read -r _u _ < /proc/uptime; echo "$_u"; }

vt_emit() {
	echo "VMTEST: $*"
	if [ -e /proc/self/fd/9 ]; then echo "VMTEST: $*" >&9; fi
}
vt_pass() { vt_emit "PASS $1${2:+ - $2}"; }
vt_fail() { vt_emit "FAIL $1 - ${2:-failed}"; }
vt_skip() { vt_emit "SKIP $1 - ${2:?a SKIP needs its reason}"; }
vt_info() { vt_emit "INFO $*"; }

# vt_run NAME CMD...: run CMD; PASS or FAIL NAME by its exit status.  The
# output is echoed indented on the console and kept in $VT_OUT.
vt_run() {
	_name=$1; shift
	VT_OUT=/tmp/vt-$(echo "$_name" | tr -c 'A-Za-z0-9_.\n-' '_').out
	"$@" > "$VT_OUT" 2>&1
	_rc=$?
	sed 's/^/    | /' "$VT_OUT"
	if [ $_rc -eq 0 ]; then vt_pass "$_name"
	else vt_fail "$_name" "rc=$_rc: $(grep -v '^[[:space:]]*$' "$VT_OUT" | tail -n 1)"; fi
	return $_rc
}

# vt_same NAME EXPECTED GOT [what]: PASS if both strings are equal and not empty
vt_same() {
	if [ -n "$2" ] && [ "$2" = "$3" ]; then vt_pass "$1"
	else vt_fail "$1" "${4:-value} is '$3', expected '$2'"; fi
}

# vt_wait_path PATH [SECONDS]: wait until PATH exists
vt_wait_path() {
	_i=0
	while [ ! -e "$1" ]; do
		_i=$((_i + 1))
		[ $_i -gt $(( ${2:-10} * 10 )) ] && return 1
		sleep 0.1
	done
}

# vt_host_wait TAG [SECONDS]: tell the host we wait for TAG and read its
# one-line answer (printed on stdout).  Fails on timeout (default 600 s).
vt_host_wait() {
	vt_emit "WAIT $1" >&2     # stdout is the answer
	read -r -t "${2:-600}" _answer <&9 || return 1
	echo "$_answer"
}

# vt_pcr BANK:INDEX: the PCR's value as lower-case hex, nothing on error
vt_pcr() {
	tpm2_pcrread "$1" 2>/dev/null |
		sed -n 's/^ *[0-9]* *: *0x\([0-9A-Fa-f]*\)$/\1/p' | tr 'A-F' 'a-f'
}
