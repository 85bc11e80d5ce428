#!/usr/bin/python3
# procwatch.py NSPID OUT: until SIGTERM, every 10 ms, write one line per new
# process of NSPID's PID namespace to OUT: "<host pid> <exe> <argv...>".
# run.sh runs it during the first `virsh start`, to see which binary
# swtpm_setup ran as `swtpm` (its short-lived instances do not show in any
# log).
import os
import signal
import sys
import time

nspid, out_path = sys.argv[1], sys.argv[2]
ns = os.readlink("/proc/%s/ns/pid" % nspid)
seen = set()
stop = False


def on_term(_sig, _frame):
    global stop
    stop = True


signal.signal(signal.SIGTERM, on_term)
with open(out_path, "a", buffering=1) as out:
    while not stop:
        for p in os.listdir("/proc"):
            if not p.isdigit():
                continue
            try:
                if os.readlink("/proc/%s/ns/pid" % p) != ns:
                    continue
                exe = os.readlink("/proc/%s/exe" % p)
                with open("/proc/%s/cmdline" % p, "rb") as f:
                    argv = f.read().split(b"\0")
            except OSError:
                continue
            key = (p, exe, argv[0])     # a forked child is seen again after its exec
            if key in seen or argv == [b""]:
                continue
            seen.add(key)
            out.write("%s %s %s\n" % (p, exe, b" ".join(argv).decode(errors="replace").strip()))
        time.sleep(0.01)
