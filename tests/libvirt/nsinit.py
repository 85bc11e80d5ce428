#!/usr/bin/python3
# PID 1 of the libvirt suite's private mount + PID namespace (run.sh starts
# it with `unshare --mount --pid --fork --mount-proc --kill-child`).
#
#   nsinit.py DIR PATH
#
# DIR was prepared on the host by run.sh (lv_prepare_dir):
#   DIR/farm/var/lib, DIR/farm/var/log, DIR/farm/var/cache, DIR/farm/run:
#       each holds symlinks to every entry of the host's directory (through
#       DIR/orig/<name>, a bind of the original made here) plus the real,
#       per-run directories libvirt writes (libvirt, swtpm, swtpm-localca);
#   DIR/etc-libvirt: the per-run /etc/libvirt (qemu.conf, libvirtd.conf);
#   DIR/passwd, DIR/group: the host's files plus libvirt-qemu.
# Those are bound over the real paths here, in this namespace only (the
# host never sees them: unshare makes every mount private), then libvirtd
# runs in the foreground with PATH, and this process reaps every orphan
# (libvirt double-forks swtpm, which then belongs to PID 1).  SIGTERM is
# passed to libvirtd; when libvirtd has gone this process exits, and the
# kernel kills whatever is left in the namespace (QEMU, swtpm).
import os
import signal
import subprocess
import sys
import time

FARMS = (("/var/lib", "var-lib"), ("/var/log", "var-log"),
         ("/var/cache", "var-cache"), ("/run", "run"))


def mount(*args):
    subprocess.run(["mount", *args], check=True)


def main():
    d, path = sys.argv[1], sys.argv[2]
    for real, name in FARMS:
        orig = os.path.join(d, "orig", name)
        mount("--rbind", real, orig)        # the host's tree, for the farm's symlinks
        mount("--bind", os.path.join(d, "farm", real.lstrip("/")), real)
    mount("--bind", os.path.join(d, "etc-libvirt"), "/etc/libvirt")
    mount("--bind", os.path.join(d, "passwd"), "/etc/passwd")
    mount("--bind", os.path.join(d, "group"), "/etc/group")

    env = {
        "PATH": path,
        "HOME": os.path.join(d, "home"),
        "XDG_CONFIG_HOME": os.path.join(d, "home", ".config"),
        "XDG_CACHE_HOME": os.path.join(d, "home", ".cache"),
        "XDG_RUNTIME_DIR": os.path.join(d, "home", "run"),
        "LC_ALL": "C",
    }
    out = open("/var/log/libvirt/libvirtd.out", "ab")
    child = subprocess.Popen(["libvirtd", "--pid-file", "/run/libvirt/libvirtd.pid"],
                             env=env, stdin=subprocess.DEVNULL, stdout=out, stderr=out,
                             cwd="/")
    out.close()

    def on_term(_sig, _frame):
        try:
            os.kill(child.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)

    status = 0
    while True:
        try:
            pid, st = os.wait()
        except ChildProcessError:
            break
        except InterruptedError:
            continue
        if pid == child.pid:
            status = os.waitstatus_to_exitcode(st)
            break
    # libvirtd is gone; the kernel kills the rest when this PID 1 exits
    sys.exit(status if status >= 0 else 128 - status)


if __name__ == "__main__":
    main()
