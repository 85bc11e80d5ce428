#!/usr/bin/env python3
"""bench/run.py - the benchmark behind `make bench` (see bench/README.md).

Measures, in one run and side by side: the libtpms floor, the IPC floor
(echo servers), Debian's swtpm and our daemon; prints one table, checks the
targets of issue 6, compares with the last committed result of this machine
and writes bench/results/<cpu-model>-<n>cpu.json.

Every figure is a row record {group, name, subject, unit, min, median, max,
p99, ratio_to, ...}: min/median/max over the medians of RUNS repeated runs,
p99 the median of the runs' p99s.  A new front (CUSE, vtpm-proxy) or a new
subject adds rows with Results.row() and Results.add(); nothing else.

Environment: BENCH_QUICK=1 for the ~1 minute smoke version; BENCH_NICE=-N
runs everything at that nice level (root; for a machine shared with other
work, at the cost of slowing that work down).
Only loopback TCP and unix sockets in bench/out/ are used; every process
started here or by the tools is killed at exit (PR_SET_PDEATHSIG as backstop).
"""

import argparse
import atexit
import collections
import ctypes
import json
import os
import re
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

FULL = dict(runs=5, rtt_n=20000, rtt_ecc=200, floor_n=20000, floor_ecc=200,
            start_reps=20, exec_reps=40, mem_ks=(1, 20), scale_n=200, blob_n=200,
            statewrite_n=1000,
            noise_wait=60)
QUICK = dict(runs=3, rtt_n=2000, rtt_ecc=20, floor_n=2000, floor_ecc=20,
             start_reps=5, exec_reps=10, mem_ks=(1, 20), scale_n=50, blob_n=50,
             statewrite_n=200,
             noise_wait=10)

CMDS = [("getrandom", "GetRandom(16)"), ("pcrextend", "PCR_Extend(sha256)"),
        ("cp-ecc", "CreatePrimary ECC P-256")]
# the commands the CUSE rows time in a guest (tests/vm/scenarios/cuse-latency.sh)
CUSE_CMDS = [c for c in CMDS if c[0] in ("getrandom", "pcrextend")]
# echo-*: echosrv (the IPC floor); min-daemon: echosrv -T, the epoll echo
# loop running libtpms in process (the least a socket TPM daemon does)
SERVERS = ["echo-block", "echo-epoll", "min-daemon", "swtpm", "ours"]
REGRESSION_PCT = 10.0

# ----------------------------------------------------------------- processes

_libc = ctypes.CDLL(None, use_errno=True)
PR_SET_PDEATHSIG = 1
_children = {}


def _child_setup(cpu):
    def setup():
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})
    return setup


def spawn(argv, log, cpu=None):
    """Starts a long-running server; killed at exit if still alive."""
    with open(log, "wb") as f:
        p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=f,
                             stderr=subprocess.STDOUT, preexec_fn=_child_setup(cpu))
    _children[p.pid] = p
    return p


def kill(p):
    if p.poll() is None:
        p.kill()
    p.wait()
    _children.pop(p.pid, None)


def kill_all():
    for p in list(_children.values()):
        kill(p)


def _on_signal(sig, frame):
    kill_all()
    sys.exit(128 + sig)


def pin(pid, cpu):
    """Moves every thread of pid to cpu."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), {cpu})
        except OSError:
            pass


def cpu_busy(interval=0.1):
    """Fraction of all CPUs busy over interval (from /proc/stat)."""
    def sample():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        idle = v[3] + v[4]
        return sum(v[:8]) - idle, sum(v[:8])
    b0, t0 = sample()
    time.sleep(interval)
    b1, t1 = sample()
    return (b1 - b0) / max(1, t1 - t0)


class Noise:
    """Before each block of measurements: how busy the machine is with
    other work (nothing of ours runs then); waits up to MAX_WAIT s for it
    to drop below QUIET, BUDGET s in all (the run must stay short).  The
    log goes into the JSON."""
    QUIET, MAX_WAIT = 0.10, 5.0

    def __init__(self, budget):
        self.log = []
        self.budget = budget

    def settle(self, block):
        t0 = time.monotonic()
        busy = cpu_busy()
        while busy > self.QUIET and time.monotonic() - t0 < min(self.MAX_WAIT, self.budget):
            time.sleep(0.4)
            busy = cpu_busy()
        self.budget -= time.monotonic() - t0 - 0.1
        self.log.append(dict(block=block, busy_pct=round(100 * busy, 1),
                             waited_s=round(time.monotonic() - t0 - 0.1, 2)))


class ToolError(Exception):
    pass


def run_tool(argv, timeout=300):
    """Runs a bench tool; returns {name: record} of its JSON lines."""
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                           timeout=timeout, preexec_fn=_child_setup(None))
    except subprocess.TimeoutExpired:
        raise ToolError(f"{os.path.basename(argv[0])} timed out after {timeout} s")
    if r.returncode:
        err = r.stderr.decode(errors="replace").strip().splitlines()
        raise ToolError(err[-1] if err else f"{argv[0]} exited {r.returncode}")
    out = {}
    for line in r.stdout.decode().splitlines():
        if line.startswith("{"):
            rec = json.loads(line)
            out[rec["name"]] = rec
    return out


def connect(addr):
    if addr.startswith("tcp:"):
        s = socket.create_connection(("127.0.0.1", int(addr[4:])), timeout=5)
    else:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(5)
        s.connect(addr[5:])
    return s


def wait_connectable(addr, proc, timeout=10.0):
    end = time.monotonic() + timeout
    while True:
        try:
            return connect(addr)
        except OSError:
            if proc.poll() is not None:
                raise ToolError(f"server exited with {proc.returncode}")
            if time.monotonic() > end:
                raise ToolError(f"{addr} never accepted")
            time.sleep(0.001)


def recv_exact(s, n):
    b = b""
    while len(b) < n:
        c = s.recv(n - len(b))
        if not c:
            raise ToolError("ctrl channel closed")
        b += c
    return b


def free_port_pair():
    """A port P with P and P+1 free on 127.0.0.1."""
    for _ in range(100):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            p = s.getsockname()[1]
        if p >= 65535:
            continue
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", p))
                b.bind(("127.0.0.1", p + 1))
            return p
        except OSError:
            continue
    raise ToolError("no free TCP port pair")


def log_tail(path):
    try:
        with open(path, errors="replace") as f:
            lines = [ln.strip() for ln in f if ln.strip()]
        return lines[-1] if lines else "(empty log)"
    except OSError:
        return "(no log)"


class Daemon:
    """One `BIN socket ...` instance run by this driver (round-trip tests)."""

    def __init__(self, bin_, d, transport, ref, cpu, backend="dir", statedir=None, extra=()):
        """backend "dir" (--tpmstate dir=) or "file" (backend-uri=file://STATEDIR/tpm.img);
        statedir: where the state lives (default D/state; e.g. on another file system);
        extra: more options (e.g. --durability sync)."""
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        st = statedir or f"{d}/state"
        shutil.rmtree(st, ignore_errors=True)
        os.makedirs(st)
        if ref:
            shutil.copy(ref, f"{st}/tpm2-00.permall")
        self.state = f"{st}/tpm2-00.permall" if backend == "dir" else f"{st}/tpm.img"
        tpmstate = f"dir={st}" if backend == "dir" else f"backend-uri=file://{self.state}"
        if transport == "tcp":
            port = free_port_pair()
            srv, ctl = f"type=tcp,port={port}", f"type=tcp,port={port + 1}"
            self.data, self.ctrl = f"tcp:{port}", f"tcp:{port + 1}"
        else:
            srv, ctl = f"type=unixio,path={d}/data.sock", f"type=unixio,path={d}/ctrl.sock"
            self.data, self.ctrl = f"unix:{d}/data.sock", f"unix:{d}/ctrl.sock"
        self.log = f"{d}/daemon.log"
        self.proc = spawn([bin_, "socket", "--tpm2", "--tpmstate", tpmstate,
                           "--ctrl", ctl, "--server", srv,
                           "--flags", "not-need-init,startup-clear", *extra], self.log, cpu)
        try:
            with wait_connectable(self.ctrl, self.proc) as s:
                s.sendall(struct.pack(">I", 1))     # CMD_GET_CAPABILITY
                recv_exact(s, 8)
        except (ToolError, OSError) as e:
            self.stop()
            raise ToolError(f"{e}: {log_tail(self.log)}")

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        if self.proc.poll() is None:
            try:
                with connect(self.ctrl) as s:
                    s.sendall(struct.pack(">I", 3))     # CMD_SHUTDOWN
                    recv_exact(s, 4)
                self.proc.wait(timeout=5)
            except (OSError, ToolError, subprocess.TimeoutExpired):
                pass
        kill(self.proc)


class StateStorage:
    """Where the statewrite rows keep their state: "tmpfs" (a directory under
    /dev/shm), "ext4" and "xfs" (a file system made on a loop device backed by a
    sparse image file in the bench's out dir, i.e. on the real disk, direct I/O,
    mounted under a temp dir).  Made at first use, kept for the whole bench run;
    unmounted, detached and removed at exit (atexit, which the signal handlers'
    sys.exit reaches too; after kill_all, so nothing holds the mount).  A kind
    that cannot be made (not root, no loop device, no mkfs.xfs) raises ToolError
    with the reason, every time it is asked for."""
    KINDS = (("tmpfs", "tmpfs"), ("ext4", "ext4 loop"), ("xfs", "xfs loop"))
    IMG_BYTES = 320 << 20       # sparse; mkfs.xfs wants >= 300 MB
    TAG = "vtpm-bench-statewrite-"

    def __init__(self, out):
        self.out = out
        self.made = {}          # kind -> path, or ToolError
        self.undo = []          # (what, arg), undone in reverse order
        atexit.register(self.cleanup)

    @staticmethod
    def _run(argv):
        try:
            r = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, timeout=120)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise ToolError(f"{argv[0]}: {e}")
        if r.returncode:
            err = (r.stderr or r.stdout).decode(errors="replace").strip().splitlines()
            raise ToolError(f"{' '.join(argv[:2])}: {err[-1] if err else f'exit {r.returncode}'}")
        return r.stdout.decode().strip()

    def path(self, kind):
        if kind not in self.made:
            try:
                self.made[kind] = self._make(kind)
            except (ToolError, OSError) as e:
                self.made[kind] = ToolError(f"no {kind}: {e}")
        if isinstance(self.made[kind], ToolError):
            raise self.made[kind]
        return self.made[kind]

    def describe(self, kind):
        """One line on what the storage is (for the JSON/notes)."""
        return self.made.get(kind) if isinstance(self.made.get(kind), str) else None

    def _make(self, kind):
        import tempfile
        if kind == "tmpfs":
            with open("/proc/mounts") as f:
                fstypes = {ln.split()[1]: ln.split()[2] for ln in f}
            if fstypes.get("/dev/shm") != "tmpfs":
                raise ToolError("/dev/shm is not a tmpfs")
            d = tempfile.mkdtemp(prefix=self.TAG, dir="/dev/shm")
            self.undo.append(("rmtree", d))
            return d
        if os.geteuid() != 0:
            raise ToolError("not root (a loop device and mount need root)")
        for tool in ("losetup", "mount", "umount", f"mkfs.{kind}"):
            if not shutil.which(tool):
                raise ToolError(f"{tool} not installed"
                                + (" (xfsprogs)" if kind == "xfs" else ""))
        self._sweep()
        img = os.path.join(self.out, f"statewrite-{kind}.img")
        with open(img, "wb") as f:
            f.truncate(self.IMG_BYTES)
        self.undo.append(("unlink", img))
        self._run([f"mkfs.{kind}", "-q", img])
        loop = self._run(["losetup", "--find", "--show", "--direct-io=on", img])
        self.undo.append(("detach", loop))
        mp = tempfile.mkdtemp(prefix=f"{self.TAG}{kind}-")
        self.undo.append(("rmdir", mp))
        self._run(["mount", "-t", kind, loop, mp])
        self.undo.append(("umount", mp))
        return mp

    def _sweep(self):
        """Leftovers of a run killed hard (SIGKILL: no atexit): mounts on our
        temp dirs, and loop devices whose image in this out dir was deleted."""
        try:
            with open("/proc/mounts") as f:
                mps = [ln.split()[1] for ln in f if f"/{self.TAG}" in ln.split()[1]
                       and not ln.split()[1].startswith("/dev/shm/")]
            for mp in mps:
                subprocess.run(["umount", "-l", mp], capture_output=True, timeout=30)
                shutil.rmtree(mp, ignore_errors=True)
            lines = self._run(["losetup", "-l", "-n", "--raw", "-O", "NAME,BACK-FILE"])
            for ln in lines.splitlines():
                name, _, back = ln.partition(" ")
                if back.startswith(os.path.join(self.out, "statewrite-")) and \
                        back.endswith("(deleted)"):
                    subprocess.run(["losetup", "-d", name], capture_output=True, timeout=30)
        except (OSError, ToolError, subprocess.TimeoutExpired):
            pass

    def cleanup(self):
        kill_all()              # no daemon may hold a mount
        while self.undo:
            what, arg = self.undo.pop()
            try:
                if what == "umount":
                    if subprocess.run(["umount", arg], capture_output=True, timeout=60).returncode:
                        subprocess.run(["umount", "-l", arg], capture_output=True, timeout=60)
                elif what == "detach":
                    subprocess.run(["losetup", "-d", arg], capture_output=True, timeout=60)
                elif what == "rmdir":
                    os.rmdir(arg)
                elif what == "rmtree":
                    shutil.rmtree(arg, ignore_errors=True)
                elif what == "unlink":
                    os.unlink(arg)
            except (OSError, subprocess.TimeoutExpired):
                pass
        self.made = {}


class EchoServer:
    def __init__(self, tool, mode, d, transport, cpu, tpm_ref=None, tpm=False):
        os.makedirs(d, exist_ok=True)
        if transport == "tcp":
            port = free_port_pair()
            self.data, arg = f"tcp:{port}", ["-t", str(port)]
        else:
            self.data, arg = f"unix:{d}/echo.sock", ["-u", f"{d}/echo.sock"]
        if tpm:
            arg += ["-T"] + (["-p", tpm_ref] if tpm_ref else [])
        self.log = f"{d}/echo.log"
        self.proc = spawn([tool, "-m", mode] + arg, self.log, cpu)
        try:
            wait_connectable(self.data, self.proc).close()
        except ToolError as e:
            kill(self.proc)
            raise ToolError(f"{e}: {log_tail(self.log)}")

    @property
    def pid(self):
        return self.proc.pid

    def stop(self):
        kill(self.proc)


# ------------------------------------------------------------------- results

def fmt(v):
    if v is None:
        return "-"
    a = abs(v)
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


class Row:
    def __init__(self, group, name, subject, unit, better, ratio_to, note):
        self.group, self.name, self.subject, self.unit = group, name, subject, unit
        self.better, self.ratio_to, self.note = better, list(ratio_to), note
        self.medians, self.p99s, self.ns = [], [], []
        self.failures = []
        self.extra = {}     # more figures for the JSON record (e.g. the guest's min, max)

    @property
    def id(self):
        return f"{self.group}/{self.name}/{self.subject}"

    def add(self, median, p99=None, n=None):
        self.medians.append(median)
        if p99 is not None:
            self.p99s.append(p99)
        if n is not None:
            self.ns.append(n)

    def fail(self, reason):
        self.failures.append(reason)

    @property
    def ok(self):
        return bool(self.medians)

    def iqr(self):
        """(q1, q3) of the run medians."""
        if len(self.medians) < 2:
            return (self.medians[0], self.medians[0]) if self.medians else (None, None)
        q = statistics.quantiles(self.medians, n=4, method="inclusive")
        return q[0], q[2]

    def stat(self, what):
        if not self.medians:
            return None
        if what == "p99":
            return statistics.median(self.p99s) if self.p99s else None
        return {"min": min, "median": statistics.median, "max": max}[what](self.medians)

    def reason(self):
        if self.failures:
            first = self.failures[0]
            if self.ok:
                return f"{len(self.failures)} run(s) failed: {first}"
            return first
        return None

    def record(self, results):
        rec = dict(id=self.id, group=self.group, name=self.name, subject=self.subject,
                   unit=self.unit, better=self.better, runs=len(self.medians),
                   n=self.ns[0] if self.ns else None,
                   min=self.stat("min"), median=self.stat("median"),
                   max=self.stat("max"), p99=self.stat("p99"),
                   run_medians=self.medians, run_p99s=self.p99s, failures=self.failures,
                   ratio_to=self.ratio_to,
                   ratios={r: results.ratio(self, r) for r in self.ratio_to},
                   status="ok" if self.ok else "n/a", reason=self.reason(), note=self.note)
        rec.update(self.extra)
        return rec


class Results:
    GROUPS = {
        "floor": "libtpms in-process (TPMLIB_Process, NVRAM in memory)",
        "rtt": "data-channel round trip, one connection, median/p99 per command",
        "cpu": "CPU time per GetRandom round trip (schedstat, all threads)",
        "startup": "fork+exec until the instance answers (existing state = a copied "
                   "permall; fresh = empty state dir)",
        "memory": "per instance, /proc/PID/smaps_rollup, K instances at once; "
                  "work = 100 GetRandom, 100 PCR_Extend, CreatePrimary ECC+RSA",
        "state": "state blobs over one ctrl connection (VM migration path), "
                 "daemon and client on one CPU",
        "statewrite": "state writes per command over one unix data connection, client and daemon "
                      "on one CPU, a fresh TPM per storage x backend: NV_Write of a 1 KiB index "
                      "(a store each) and PCR_Extend(16) (no store: the floor); state on tmpfs, "
                      "ext4 and xfs on a loop device (direct I/O) over an image on the out dir's "
                      "disk; --tpmstate dir= and backend-uri=file://. ours: the default "
                      "--durability bounded=1000 (dir: written unsynced as .pending, synced and "
                      "committed by a flusher thread; file: 2 fdatasync before the answer, always); "
                      "ours-sync (dir only): --durability sync, fsync of file and directory before "
                      "the answer; swtpm 0.7.1 does not sync a dir store and msyncs a file store in "
                      "place; note: the slowest command",
        "scale": "N instances forked back to back (unix sockets, existing state)",
        "guest": "QEMU emulator backend, from a guest",
        "cuse": "CUSE front /dev/vtpm-NAME, daemon in a guest (TCG); runs = the "
                "interleaved rounds of one boot (tests/vm/scenarios/cuse-latency.sh)",
        "proxy": "vtpm-proxy front (/dev/tpmrmN, /dev/tpmN), daemons in a guest (TCG), one "
                 "at a time; runs = the interleaved rounds of one boot "
                 "(tests/vm/scenarios/proxy-latency.sh)",
    }

    def __init__(self):
        self.rows = {}
        self.by_id = {}

    def row(self, group, name, subject, unit, better="lower", ratio_to=(), note=""):
        """The row (group, name, subject), created on first use; the table
        shows rows in creation order."""
        key = (group, name, subject)
        if key not in self.rows:
            r = Row(group, name, subject, unit, better, ratio_to, note)
            self.rows[key] = r
            self.by_id[r.id] = r
        return self.rows[key]

    def get(self, rid):
        return self.by_id.get(rid)

    def ratio(self, row, rid):
        ref = self.get(rid)
        if not row.ok or not ref or not ref.ok or not ref.stat("median"):
            return None
        return row.stat("median") / ref.stat("median")

    def records(self):
        return [r.record(self) for r in self.rows.values()]

    @classmethod
    def from_json(cls, doc):
        """The rows of a result file, as measured (for --show)."""
        res = cls()
        for rec in doc["rows"]:
            r = res.row(rec["group"], rec["name"], rec["subject"], rec["unit"],
                        rec.get("better", "lower"), rec.get("ratio_to", []), rec.get("note", ""))
            r.medians = list(rec.get("run_medians") or [])
            r.p99s = list(rec.get("run_p99s") or ([rec["p99"]] if rec.get("p99") is not None
                                                   else []))
            r.ns = [rec["n"]] if rec.get("n") else []
            r.failures = list(rec.get("failures") or ([rec["reason"]] if rec.get("reason")
                                                       else []))
        return res

    def table(self):
        out = []
        hdr = f"{'name':<47} {'subject':<17} {'median':>8} {'min..max of run medians':>24} {'p99':>8}  unit  ratio"
        groups = []
        for r in self.rows.values():
            if r.group not in groups:
                groups.append(r.group)
        for g in groups:
            out.append("")
            out.append(f"== {g}: {self.GROUPS.get(g, '')}")
            out.append(hdr)
            last = None
            for r in self.rows.values():
                if r.group != g:
                    continue
                name = r.name if r.name != last else ""
                last = r.name
                if not r.ok:
                    out.append(f"{name:<47} {r.subject:<17} n/a ({r.reason() or 'not measured'})")
                    continue
                rng = f"{fmt(r.stat('min'))}..{fmt(r.stat('max'))}"
                ratios = []
                for rid in r.ratio_to:
                    x = self.ratio(r, rid)
                    if x is not None:
                        ratios.append(f"{x:.2f}x {rid.rsplit('/', 1)[1]}")
                extra = "; ".join(ratios)
                if r.note:
                    extra = (extra + "  " if extra else "") + f"({r.note})"
                if r.failures:
                    extra += f"  [{r.reason()}]"
                out.append(f"{name:<47} {r.subject:<17} {fmt(r.stat('median')):>8} {rng:>24} "
                           f"{fmt(r.stat('p99')):>8}  {r.unit:<4}  {extra}")
        return "\n".join(out)


# ---------------------------------------------------------------- the bench

class Bench:
    def __init__(self, args):
        self.quick = os.environ.get("BENCH_QUICK", "") not in ("", "0")
        self.cfg = QUICK if self.quick else FULL
        self.build = os.path.abspath(os.path.join(ROOT, args.build))
        self.tools = os.path.join(self.build, "bench")
        self.out = os.path.join(HERE, "out", "run")
        shutil.rmtree(self.out, ignore_errors=True)
        os.makedirs(self.out)
        self.res = Results()
        cpus = sorted(os.sched_getaffinity(0))
        self.cpu_a = cpus[-1]                           # client, and daemon "same-CPU"
        self.cpu_b = cpus[-2] if len(cpus) > 1 else None  # daemon "cross-CPU"
        self.subjects = {"swtpm": shutil.which("swtpm"),
                         "ours": os.path.join(self.build, "vtpm-bridge")}
        self.unavailable = {}
        self.rsp_bytes = {}
        self.ref = None
        self.noise = Noise(self.cfg["noise_wait"])

    def tool(self, name):
        return os.path.join(self.tools, name)

    def log(self, msg):
        print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    # -- set-up
    def check_subjects(self):
        if not self.subjects["swtpm"]:
            self.unavailable["swtpm"] = "swtpm not installed"
        ours = self.subjects["ours"]
        if not os.access(ours, os.X_OK):
            self.unavailable["ours"] = f"daemon not built: {os.path.relpath(ours, ROOT)} missing"
        else:
            # a snapshot: a rebuild during the run must not change the subject
            snap = os.path.join(self.out, "bin", "vtpm-bridge")
            os.makedirs(os.path.dirname(snap), exist_ok=True)
            shutil.copy2(ours, snap)
            self.subjects["ours"] = snap
        # a reference state made by swtpm: every instance of both daemons
        # starts from it, so both serve the same TPM (same seeds)
        d = os.path.join(self.out, "ref")
        try:
            run_tool([self.tool("start"), "-b", self.subjects["swtpm"] or "swtpm",
                      "-d", d, "-n", "1"], timeout=60)
            self.ref = os.path.join(self.out, "ref.permall")
            shutil.copy(f"{d}/state/tpm2-00.permall", self.ref)
        except (ToolError, OSError) as e:
            self.log(f"no reference state from swtpm ({e}); instances manufacture their own")
        if "ours" not in self.unavailable:
            try:
                run_tool([self.tool("start"), "-b", ours, "-d",
                          os.path.join(self.out, "smoke"), "-n", "1"]
                         + (["-r", self.ref] if self.ref else []), timeout=60)
            except ToolError as e:
                self.unavailable["ours"] = f"daemon failed: {e}"
        for s, why in self.unavailable.items():
            self.log(f"{s}: n/a ({why})")
        # Page-cache pages of a file written moments ago (the tools, the
        # snapshot) are dirty until writeback, and smaps counts a mapped dirty
        # page as Private_Dirty: write them back before measuring memory.
        os.sync()

    def subject_rows_na(self, rows, subject):
        if subject in self.unavailable:
            for r in rows:
                if r.subject == subject and not r.failures:
                    r.fail(self.unavailable[subject])
            return True
        return False

    def run_for_rows(self, argv, rows, timeout=300, ref=True):
        """Runs a tool that starts daemon instances, from the reference state
        unless ref is False; if it fails, its rows say why and None is returned."""
        if ref and self.ref:
            argv = argv + ["-r", self.ref]
        try:
            return run_tool(argv, timeout=timeout)
        except ToolError as e:
            for r in rows:
                r.fail(str(e))
            return None

    # -- floor
    def floor_rows(self):
        rs = {}
        for cmd, label in CMDS:
            rs[cmd] = self.res.row("floor", label, "libtpms", "us")
        rs["init"] = self.res.row("floor", "MainInit + TPM2_Startup (new TPM)", "libtpms", "ms")
        rs["init-ref"] = self.res.row("floor", "MainInit + TPM2_Startup (existing state)",
                                      "libtpms", "ms")
        return rs

    def run_floor(self):
        rs = self.floor_rows()
        c = self.cfg
        argv = [self.tool("tpmfloor"), "-P", str(self.cpu_a),
                f"getrandom:{c['floor_n']}", f"pcrextend:{c['floor_n']}", f"cp-ecc:{c['floor_ecc']}"]
        recs = run_tool(argv)
        for cmd, _ in CMDS:
            rec = recs[cmd]
            rs[cmd].add(rec["median"], rec["p99"], rec["n"])
            self.rsp_bytes[cmd] = rec["rsp_bytes"]
        rs["init"].add(recs["init"]["value"] / 1000)
        if self.ref:
            recs = run_tool([self.tool("tpmfloor"), "-p", self.ref])
            rs["init-ref"].add(recs["init"]["value"] / 1000)
        else:
            rs["init-ref"].fail("no reference state")

    # -- round trips
    def placements(self):
        p = [("same-CPU", self.cpu_a)]
        if self.cpu_b is not None:
            p.append(("cross-CPU", self.cpu_b))
        return p

    def rtt_rows(self, transport, placement, cmd, label):
        name = f"{transport} {placement} {label}"
        fid = f"rtt/{name}/floor"
        rows = {
            "echo-block": self.res.row("rtt", name, "echo-block", "us"),
            "echo-epoll": self.res.row("rtt", name, "echo-epoll", "us"),
            "floor": self.res.row("rtt", name, "floor", "us", note="echo-epoll + libtpms"),
            "min-daemon": self.res.row("rtt", name, "min-daemon", "us", ratio_to=[fid],
                                       note="echo-epoll loop running libtpms"),
            "swtpm": self.res.row("rtt", name, "swtpm", "us",
                                  ratio_to=[fid, f"rtt/{name}/min-daemon"]),
            "ours": self.res.row("rtt", name, "ours", "us",
                                 ratio_to=[fid, f"rtt/{name}/min-daemon", f"rtt/{name}/swtpm"]),
        }
        return rows

    def cpu_rows(self, transport, placement):
        rows = {}
        for who in ("daemon", "client"):
            name = f"{transport} {placement} GetRandom: {who} CPU/cmd"
            for s in SERVERS:
                rt = [f"cpu/{name}/swtpm"] if s == "ours" else []
                rows[(who, s)] = self.res.row("cpu", name, s, "us", ratio_to=rt)
        return rows

    def run_rtt(self, run, transport, server):
        c = self.cfg
        phases = [f"getrandom:{c['rtt_n']}", f"pcrextend:{c['rtt_n']}", f"cp-ecc:{c['rtt_ecc']}"]
        d = os.path.join(self.out, f"rtt-{server}-{transport}")
        rows = {pl: {cmd: self.rtt_rows(transport, pl, cmd, label) for cmd, label in CMDS}
                for pl, _ in self.placements()}
        cpurows = {pl: self.cpu_rows(transport, pl) for pl, _ in self.placements()}
        allrows = [r[server] for pr in rows.values() for r in pr.values()] + \
                  [r for pr in cpurows.values() for (w, s), r in pr.items() if s == server]
        if server in ("swtpm", "ours") and self.subject_rows_na(allrows, server):
            return
        try:
            if server.startswith("echo-"):
                srv = EchoServer(self.tool("echosrv"), server[5:], d, transport, self.cpu_a)
                argv_extra = ["-E"]
                phases = [f"{p}:{self.rsp_bytes[p.split(':')[0]]}" for p in phases]
            elif server == "min-daemon":
                srv = EchoServer(self.tool("echosrv"), "epoll", d, transport, self.cpu_a,
                                 self.ref, tpm=True)
                argv_extra = []
            else:
                srv = Daemon(self.subjects[server], d, transport, self.ref, self.cpu_a)
                argv_extra = []
        except (ToolError, OSError) as e:
            for r in allrows:
                r.fail(str(e))
            return
        try:
            for pl, dcpu in self.placements():
                pin(srv.pid, dcpu)
                try:
                    recs = run_tool([self.tool("rtt"), "-a", srv.data, "-P", str(self.cpu_a),
                                     "-S", str(srv.pid)] + argv_extra + phases)
                except ToolError as e:
                    for r in rows[pl].values():
                        r[server].fail(str(e))
                    for (w, s), r in cpurows[pl].items():
                        if s == server:
                            r.fail(str(e))
                    continue
                for cmd, _ in CMDS:
                    rec = recs[cmd]
                    rows[pl][cmd][server].add(rec["median"], rec["p99"], rec["n"])
                gr = recs["getrandom"]
                cpurows[pl][("daemon", server)].add(gr["server_cpu"])
                cpurows[pl][("client", server)].add(gr["client_cpu"])
        finally:
            srv.stop()

    def derive_floor_rtt(self):
        """floor = echo-epoll + libtpms, run by run."""
        for (g, name, s), r in list(self.res.rows.items()):
            if g != "rtt" or s != "floor":
                continue
            label = name.split(" ", 2)[2]
            ep = self.res.rows[(g, name, "echo-epoll")]
            lt = self.res.rows[("floor", label, "libtpms")]
            if not ep.ok or not lt.ok:
                r.fail("echo-epoll or libtpms floor missing")
                continue
            for i in range(min(len(ep.medians), len(lt.medians))):
                p99 = ep.p99s[i] + lt.p99s[i] if i < len(ep.p99s) and i < len(lt.p99s) else None
                r.add(ep.medians[i] + lt.medians[i], p99)

    # -- start-up
    def startup_rows(self):
        R, rows = self.res, {}
        for cfg, title in (("existing", "existing state"), ("fresh", "fresh state"),
                           ("tcp", "existing state, TCP")):
            for fig, what in (("ctrl_caps", "GET_CAPABILITY answered"),
                              ("first_cmd", "first GetRandom answered")):
                name = f"{what}, {title}"
                if fig == "first_cmd" and cfg in ("existing", "fresh"):
                    rows[(cfg, fig, "floor")] = R.row(
                        "startup", name, "floor", "ms",
                        note="exec tpmfloor: link libtpms + MainInit + Startup + exit")
                    rows[(cfg, fig, "floor-static")] = R.row(
                        "startup", name, "floor-static", "ms",
                        note="the same, libtpms and libcrypto linked statically, non-PIE")
                for s in ("swtpm", "ours"):
                    rt = [f"startup/{name}/swtpm"] if s == "ours" else []
                    rows[(cfg, fig, s)] = R.row("startup", name, s, "ms", ratio_to=rt)
        for s in ("swtpm", "ours"):
            rt = ["startup/CMD_SHUTDOWN -> exit/swtpm"] if s == "ours" else []
            rows[("existing", "shutdown_exit", s)] = R.row("startup", "CMD_SHUTDOWN -> exit", s,
                                                           "ms", ratio_to=rt)
        rows["true"] = R.row("startup", "exec /bin/true (fork+exec+exit)", "floor", "ms")
        rows["link"] = R.row("startup", "exec + link libtpms, libcrypto (tpmfloor -x)", "floor",
                             "ms")
        rows["link-static"] = R.row("startup", "exec + link libtpms, libcrypto (tpmfloor -x)",
                                    "floor-static", "ms", note="linked statically, non-PIE")
        return rows

    def run_startup(self, run):
        rows = self.startup_rows()
        n = str(self.cfg["start_reps"])
        ex = [self.tool("start"), "-e", "-n", str(self.cfg["exec_reps"]), "--"]
        ref = ["-p", self.ref] if self.ref else []
        floors = [("true", ["/bin/true"]), ("link", [self.tool("tpmfloor"), "-x"]),
                  (("fresh", "first_cmd", "floor"), [self.tool("tpmfloor")]),
                  (("existing", "first_cmd", "floor"), [self.tool("tpmfloor")] + ref)]
        static = self.tool("tpmfloor-static")
        if os.access(static, os.X_OK):
            floors += [("link-static", [static, "-x"]),
                       (("fresh", "first_cmd", "floor-static"), [static]),
                       (("existing", "first_cmd", "floor-static"), [static] + ref)]
        else:
            for k in ("link-static", ("fresh", "first_cmd", "floor-static"),
                      ("existing", "first_cmd", "floor-static")):
                if not rows[k].failures:
                    rows[k].fail("libtpms.a or libcrypto.a not installed")
        for key, argv in floors:
            try:
                rec = run_tool(ex + argv)["exec_exit"]
                rows[key].add(rec["median"] / 1000, rec["p99"] / 1000, rec["n"])
            except ToolError as e:
                rows[key].fail(str(e))
        for s in ("swtpm", "ours"):
            mine = [r for k, r in rows.items() if isinstance(k, tuple) and k[2] == s]
            if self.subject_rows_na(mine, s):
                continue
            for cfg in ("existing", "fresh", "tcp"):
                argv = [self.tool("start"), "-b", self.subjects[s], "-n", n,
                        "-d", os.path.join(self.out, f"start-{s}-{cfg}")]
                if cfg == "fresh":
                    argv.append("-F")
                if cfg == "tcp":
                    argv += ["-t", str(free_port_pair())]
                figs = ["ctrl_caps", "first_cmd"] + (["shutdown_exit"] if cfg == "existing" else [])
                recs = self.run_for_rows(argv, [rows[(cfg, f, s)] for f in figs],
                                         timeout=120, ref=cfg != "fresh")
                if recs is None:
                    continue
                for f in figs:
                    rec = recs[f]
                    rows[(cfg, f, s)].add(rec["median"] / 1000, rec["p99"] / 1000, rec["n"])

    # -- memory
    MEM_FLOORS = {"min-daemon": ("echosrv", "echo-epoll loop running libtpms"),
                  "min-daemon-static": ("echosrv-static", "the same, libtpms and libcrypto "
                                        "linked statically, non-PIE")}

    def mem_rows(self, k):
        rows = {}
        for phase, title in (("mem_unused", "started, TPM unused"), ("mem_idle", "idle"),
                             ("mem_work", "after work")):
            for fig, label in (("rss", "RSS"), ("pss", "PSS"), ("pdirty", "Private_Dirty")):
                name = f"K={k} {title} {label}"
                subjects = ["swtpm", "ours"] if phase == "mem_unused" else \
                    list(self.MEM_FLOORS) + ["swtpm", "ours"]
                for s in subjects:
                    rt = [f"memory/{name}/swtpm"] if s != "swtpm" else []
                    note = self.MEM_FLOORS[s][1] if s in self.MEM_FLOORS and \
                        (phase, fig) == ("mem_idle", "rss") else ""
                    rows[(phase, fig, s)] = self.res.row("memory", name, s, "kB", ratio_to=rt,
                                                         note=note)
        return rows

    def mem_floor(self, k, subject, rows):
        """K min-daemons (echosrv -T), read like many.c reads the daemons."""
        mine = [r for key, r in rows.items() if key[2] == subject]
        tool = self.tool(self.MEM_FLOORS[subject][0])
        if not os.access(tool, os.X_OK):
            for r in mine:
                if not r.failures:
                    r.fail("libtpms.a or libcrypto.a not installed")
            return
        d = os.path.join(self.out, f"mem-{subject}")
        shutil.rmtree(d, ignore_errors=True)
        srvs = []
        try:
            for i in range(k):
                srvs.append(EchoServer(self.tool("echosrv") if subject == "min-daemon" else tool,
                                       "epoll", f"{d}/{i:03d}", "unix", None, self.ref, tpm=True))
            for phase, cmds in (("mem_idle", ["getrandom:1"]),
                                ("mem_work", ["getrandom:100", "pcrextend:100", "cp-ecc:1",
                                              "cp-rsa:1"])):
                for srv in srvs:
                    run_tool([self.tool("rtt"), "-a", srv.data, "-w", "0"] + cmds)
                time.sleep(0.2)
                figs = collections.Counter()
                for srv in srvs:
                    with open(f"/proc/{srv.pid}/smaps_rollup") as f:
                        for ln in f:
                            key, _, v = ln.partition(":")
                            if key in ("Rss", "Pss", "Private_Dirty"):
                                figs[key] += int(v.split()[0])
                for fig, key in (("rss", "Rss"), ("pss", "Pss"), ("pdirty", "Private_Dirty")):
                    rows[(phase, fig, subject)].add(figs[key] / k)
        except (ToolError, OSError) as e:
            for r in mine:
                r.fail(str(e))
        finally:
            for srv in srvs:
                srv.stop()

    def run_memory(self, run):
        for k in self.cfg["mem_ks"]:
            rows = self.mem_rows(k)
            for s in self.MEM_FLOORS:
                self.mem_floor(k, s, rows)
            for s in ("swtpm", "ours"):
                mine = [r for key, r in rows.items() if key[2] == s]
                if self.subject_rows_na(mine, s):
                    continue
                recs = {}
                for mode in ("-U", "-W"):
                    got = self.run_for_rows([self.tool("many"), "-b", self.subjects[s], "-k",
                                             str(k), mode, "-d",
                                             os.path.join(self.out, f"mem-{s}")], mine)
                    if got is None:
                        recs = None
                        break
                    recs.update(got)
                if recs is None:
                    continue
                for (phase, fig, subj), r in rows.items():
                    if subj == s:
                        r.add(recs[phase][fig])

    # -- state blobs
    STATE_FIGS = [("get_perm", "GET_STATEBLOB permanent"), ("get_vol", "GET_STATEBLOB volatile"),
                  ("save", "save: both GETs"), ("stop", "STOP"),
                  ("set_perm", "SET_STATEBLOB permanent"), ("set_vol", "SET_STATEBLOB volatile"),
                  ("init", "INIT"), ("restore", "restore: STOP + 2 SET + INIT"),
                  ("first_cmd", "first GetRandom after restore")]

    def run_state(self, run):
        rows = {}
        for fig, label in self.STATE_FIGS:
            for s in ("swtpm", "ours"):
                rt = [f"state/{label}/swtpm"] if s == "ours" else []
                rows[(fig, s)] = self.res.row("state", label, s, "us", ratio_to=rt)
        for s in ("swtpm", "ours"):
            mine = [r for key, r in rows.items() if key[1] == s]
            if self.subject_rows_na(mine, s):
                continue
            recs = self.run_for_rows([self.tool("blob"), "-b", self.subjects[s], "-n",
                                      str(self.cfg["blob_n"]), "-P", str(self.cpu_a), "-d",
                                      os.path.join(self.out, f"blob-{s}")], mine)
            if recs is None:
                continue
            for fig, _ in self.STATE_FIGS:
                rec = recs[fig]
                rows[(fig, s)].add(rec["median"], rec["p99"], rec["n"])
            rows[("get_perm", s)].note = f"{recs['get_perm']['perm_bytes']} B blob"
            rows[("get_vol", s)].note = f"{recs['get_vol']['vol_bytes']} B blob"

    # -- state writes
    NV_INDEX, NV_SIZE = 0x01500040, 1024

    @staticmethod
    def tpm_cmd(cc, body, sessions=False):
        tag = 0x8002 if sessions else 0x8001
        return struct.pack(">HII", tag, 10 + len(body), cc) + body

    def nv_cmds(self):
        """NV_DefineSpace, and NV_Write(i) of a 1 KiB owner index; password sessions."""
        sess = struct.pack(">IIHBH", 9, 0x40000009, 0, 1, 0)     # 9 bytes: TPM_RS_PW, empty
        pub = struct.pack(">IHIHH", self.NV_INDEX, 0x000B, 0x00060006, 0, self.NV_SIZE)  # ownerwrite|read
        define = self.tpm_cmd(0x12A, struct.pack(">I", 0x40000001) + sess + struct.pack(">H", 0) +
                              struct.pack(">H", len(pub)) + pub, True)

        def write(i):
            # new bytes every time: libtpms stores nothing for an unchanged index
            data = struct.pack(">I", i) * (self.NV_SIZE // 4)
            return self.tpm_cmd(0x137, struct.pack(">II", 0x40000001, self.NV_INDEX) + sess +
                                struct.pack(">H", len(data)) + data + struct.pack(">H", 0), True)
        return define, write

    SW_CMDS = (("nvwrite", "NV_Write 1 KiB"), ("pcrextend", "PCR_Extend 16"))
    # row subject -> (binary's subject, extra options, backends); file:// always syncs
    SW_SUBJECTS = {"swtpm": ("swtpm", (), ("dir", "file")),
                   "ours": ("ours", (), ("dir", "file")),
                   "ours-sync": ("ours", ("--durability", "sync"), ("dir",))}
    SW_WARM = 5

    def pcr16_extend(self):
        """PCR_Extend(16, sha256): volatile state only (PCR 16 is resettable;
        libtpms 0.9.2 stores no NV for it, which the rows check)."""
        sess = struct.pack(">IIHBH", 9, 0x40000009, 0, 1, 0)
        return self.tpm_cmd(0x182, struct.pack(">I", 16) + sess + struct.pack(">IH", 1, 0x000B) +
                            b"\xab" * 32, True)

    @staticmethod
    def _state_id(path):
        """Inode and contents (swtpm's file store writes through a mapping,
        which does not always move the mtime, e.g. on tmpfs)."""
        try:
            with open(path, "rb") as f:
                return os.fstat(f.fileno()).st_ino, f.read()
        except OSError:
            return None

    def _settled_state_id(self, path):
        """_state_id once it stays the same for 50 ms (at most 2 s): under
        --durability bounded the flusher commits the last store moments after
        its answer, and must not count as a store of the next row."""
        last, end = self._state_id(path), time.monotonic() + 2.0
        while time.monotonic() < end:
            time.sleep(0.05)
            now = self._state_id(path)
            if now == last:
                break
            last = now
        return last

    def statewrite_rows(self):
        """{(storage, backend, cmd): {subject: row}}, in table order."""
        out = {}
        for kind, slabel in StateStorage.KINDS:
            for backend, blabel in (("dir", "state dir"), ("file", "state file")):
                for cmd, clabel in self.SW_CMDS:
                    name = f"{clabel}, {blabel}, {slabel}"
                    out[(kind, backend, cmd)] = {
                        s: self.res.row("statewrite", name, s, "us",
                                        ratio_to=[f"statewrite/{name}/swtpm"] if s != "swtpm" else [])
                        for s, (_b, _x, backends) in self.SW_SUBJECTS.items() if backend in backends}
        return out

    def run_statewrite(self, run):
        """Per storage (tmpfs, ext4 and xfs on a loop device) x backend (dir,
        file) x subject: one fresh TPM, NV_DefineSpace, then SW_WARM + n
        NV_Write 1 KiB (new bytes each: a store per command), then SW_WARM + n
        PCR_Extend(16) (no store: the floor); median, p99 and max of each n."""
        n = self.cfg["statewrite_n"]
        if not hasattr(self, "sw_storage"):
            self.sw_storage = StateStorage(self.out)
        define, write = self.nv_cmds()
        extend = self.pcr16_extend()
        rows = self.statewrite_rows()

        def rt(c, cmd_bytes, what):
            t0 = time.perf_counter()
            c.sendall(cmd_bytes)
            hdr = recv_exact(c, 10)
            recv_exact(c, struct.unpack(">I", hdr[2:6])[0] - 10)
            dt = (time.perf_counter() - t0) * 1e6
            rc = struct.unpack(">I", hdr[6:10])[0]
            if rc:
                raise ToolError(f"{what} rc 0x{rc:x}")
            return dt

        def add(row, times):
            times.sort()
            row.add(times[len(times) // 2], times[min(len(times) - 1, len(times) * 99 // 100)], n)
            row.extra.setdefault("run_sample_max", []).append(times[-1])
            row.extra["sample_max"] = max(row.extra["run_sample_max"])

        aff = os.sched_getaffinity(0)
        try:
            os.sched_setaffinity(0, {self.cpu_a})   # client and daemon on one CPU
            self._statewrite(rows, n, define, write, extend, rt, add)
        finally:
            os.sched_setaffinity(0, aff)

    def _statewrite(self, rows, n, define, write, extend, rt, add):
        for kind, _ in StateStorage.KINDS:
            try:
                root = self.sw_storage.path(kind)
            except ToolError as e:
                for (k, _b, _c), by_s in rows.items():
                    if k == kind:
                        for r in by_s.values():
                            r.fail(str(e))
                continue
            for backend in ("dir", "file"):
                for s, (binary, extra, backends) in self.SW_SUBJECTS.items():
                    if backend not in backends:
                        continue
                    mine = [rows[(kind, backend, c)][s] for c, _ in self.SW_CMDS]
                    if binary in self.unavailable:
                        for r in mine:
                            r.fail(self.unavailable[binary])
                        continue
                    try:
                        srv = Daemon(self.subjects[binary], os.path.join(self.out, f"statewrite-{s}"),
                                     "unix", None, self.cpu_a, backend,
                                     statedir=os.path.join(root, f"{s}-{backend}"), extra=extra)
                    except (ToolError, OSError) as e:
                        for r in mine:
                            r.fail(str(e))
                        continue
                    try:
                        with connect(srv.data) as c:
                            rt(c, define, "NV_DefineSpace")
                            for cmd, _ in self.SW_CMDS:
                                row = rows[(kind, backend, cmd)][s]
                                times = []
                                before = None
                                for i in range(1, self.SW_WARM + n + 1):
                                    if i == self.SW_WARM + 1:
                                        before = self._settled_state_id(srv.state)
                                    dt = rt(c, write(i) if cmd == "nvwrite" else extend, cmd)
                                    if i > self.SW_WARM:
                                        times.append(dt)
                                stored = self._settled_state_id(srv.state) != before
                                add(row, times)
                                row.note = (f"max {fmt(row.extra['sample_max'])} us"
                                            + ("" if stored == (cmd == "nvwrite") else
                                               "; state file changed" if stored else
                                               "; state file NOT changed"))
                    except (ToolError, OSError) as e:
                        for r in mine:
                            r.fail(str(e))
                    finally:
                        srv.stop()
                        shutil.rmtree(os.path.join(root, f"{s}-{backend}"), ignore_errors=True)

    # -- N instances
    def run_scale(self, run):
        n = self.cfg["scale_n"]
        rows = {}
        for fig, label, unit in (("all_ctrl", "all answer GET_CAPABILITY", "ms"),
                                 ("all_ready", "all answer GetRandom", "ms"),
                                 ("pss_sum", "total PSS", "MB"),
                                 ("pdirty_sum", "total Private_Dirty", "MB")):
            name = f"N={n} {label}"
            for s in ("swtpm", "ours"):
                rt = [f"scale/{name}/swtpm"] if s == "ours" else []
                rows[(fig, s)] = self.res.row("scale", name, s, unit, ratio_to=rt)
        for s in ("swtpm", "ours"):
            mine = [r for key, r in rows.items() if key[1] == s]
            if self.subject_rows_na(mine, s):
                continue
            recs = self.run_for_rows([self.tool("many"), "-b", self.subjects[s], "-k", str(n),
                                      "-d", os.path.join(self.out, f"scale-{s}")], mine)
            if recs is None:
                continue
            rows[("all_ctrl", s)].add(recs["all_ctrl"]["value"] / 1000)
            rows[("all_ready", s)].add(recs["all_ready"]["value"] / 1000)
            rows[("pss_sum", s)].add(recs["mem_idle"]["pss_sum"] / 1024)
            rows[("pdirty_sum", s)].add(recs["mem_idle"]["pdirty_sum"] / 1024)

    # -- from a guest (tests/vm)
    GUEST_NAME = "GetRandom via QEMU emulator backend"
    GUEST_SHARE = "our share of the round trip"
    VM_DAEMONS = {"swtpm": "swtpm", "ours": "vtpm-bridge"}
    TPM_LAT = re.compile(r"tpm-lat n=(\d+) median_us=([\d.]+) p99_us=([\d.]+) "
                         r"min_us=([\d.]+) max_us=([\d.]+)")
    # cuse-latency's subjects: row subject -> the guest check's suffix
    CUSE_SUBJECTS = {"echo-cuse": "echo", "libtpms": "libtpms", "min-daemon": "min",
                     "ours": "ours"}
    CUSE_NOTES = {"echo-cuse": "tests/vm/tools/cuse-echo.c: canned responses, one thread",
                  "libtpms": "bench/tpmfloor in the same guest",
                  "floor": "echo-cuse + libtpms",
                  "min-daemon": "cuse-echo --libtpms: the echo running libtpms"}
    # proxy-latency's subjects: row subject -> the guest check's suffix
    # (checks CMD-NODE-SUFFIX, all in the vtpm-bridge job's guest)
    PROXY_SUBJECTS = {"echo-proxy": "echo", "min-daemon": "min", "swtpm": "swtpm", "ours": "ours"}
    PROXY_NODES = [("tpmrm", "/dev/tpmrmN"), ("tpm", "/dev/tpmN")]
    PROXY_NOTES = {"echo-proxy": "tests/vm/tools/proxy-echo.c: canned responses, the kernel's "
                                 "round trip alone",
                   "min-daemon": "proxy-echo --libtpms: the echo running libtpms",
                   "swtpm": "swtpm chardev --vtpm-proxy, same guest"}
    # a FAIL of these checks of proxy-latency concerns only its own row
    PROXY_OWN_CHECKS = re.compile(r"(getrandom|pcrextend)-(tpmrm|tpm)-\w+|(start|exit)-\w+")

    def guest_rows(self):
        rows = {s: self.res.row("guest", self.GUEST_NAME, s, "us",
                                ratio_to=[f"guest/{self.GUEST_NAME}/swtpm"] if s == "ours" else [])
                for s in ("swtpm", "ours")}
        rows["share"] = self.res.row(
            "guest", self.GUEST_SHARE, "ours", "%",
            note="rtt unix same-CPU GetRandom(16) of ours / its guest median")
        return rows

    def cuse_rows(self):
        return {(cmd, s): self.res.row("cuse", label, s, "us", note=self.CUSE_NOTES.get(s, ""),
                                       ratio_to=[f"cuse/{label}/floor", f"cuse/{label}/min-daemon"]
                                       if s == "ours" else [])
                for cmd, label in CUSE_CMDS
                for s in ("echo-cuse", "libtpms", "floor", "min-daemon", "swtpm", "ours")}

    def proxy_rows(self):
        rows = {}
        for node, dev in self.PROXY_NODES:
            for cmd, label in CUSE_CMDS:
                name = f"{dev} {label}"
                ref = {"swtpm": f"proxy/{name}/swtpm", "echo": f"proxy/{name}/echo-proxy",
                       "min": f"proxy/{name}/min-daemon"}
                rt = {"echo-proxy": [], "min-daemon": [ref["echo"]], "swtpm": [ref["echo"]],
                      "ours": [ref["swtpm"], ref["echo"], ref["min"]]}
                for s in self.PROXY_SUBJECTS:
                    rows[(node, cmd, s)] = self.res.row("proxy", name, s, "us", ratio_to=rt[s],
                                                        note=self.PROXY_NOTES.get(s, ""))
        return rows

    @staticmethod
    def guest_text(out, log, job, d, check, own=None):
        """The text of guest check CHECK of JOB with daemon D.  The harness
        prints a PASS without its text: it is in the job's result channel,
        results.raw.  ToolError with the first FAIL of that job (or of no
        daemon: host tools, kernel) if there is one or the PASS is missing;
        own: a regex of that job's checks whose FAIL concerns only the
        check itself (the other subjects' rows of one guest)."""
        def theirs(l):
            m = re.match(rf"FAIL vm/{re.escape(job)}/(\S+) \(", l)
            return bool(own and m and m[1] != check and own.fullmatch(m[1]))
        fails = [l for l in out.splitlines() if l.startswith("FAIL") and
                 (l.startswith(f"FAIL vm/{job}/") and f" ({d}):" in l and not theirs(l) or
                  not re.search(r" \((swtpm|vtpm-bridge)\):", l))]
        text = None
        try:
            with open(os.path.join(log, f"{job}.{d}", "vm", "results.raw"), errors="replace") as f:
                for line in f:
                    if line.startswith(f"VMTEST: PASS {check} - "):
                        text = line.split(" - ", 1)[1].strip()
        except OSError:
            pass
        if fails or text is None or f"PASS vm/{job}/{check} ({d})" not in out:
            why = fails[0] if fails else f"no {check} result (log {os.path.relpath(log, ROOT)})"
            raise ToolError(why[:300])
        return text

    def run_guest(self):
        """tests/vm scenarios qemu-latency, cuse-latency and proxy-latency
        in one run.sh, one job at a time (--jobs 1: they do not share the
        CPUs).
        qemu-latency, once per daemon: in a Debian guest, tools/tpm-lat.c
        times 500 TPM2_GetRandom(16) on /dev/tpm0 (tpm-crb, -tpmdev
        emulator, the daemon on the host started as libvirt does).
        cuse-latency, ours only (Debian's swtpm has no CUSE): in one guest,
        GetRandom and PCR_Extend on our /dev/vtpm-NAME, on a CUSE echo
        device, on that device running libtpms (min-daemon) and through
        libtpms in process, three interleaved rounds.
        proxy-latency, in the vtpm-bridge job's guest (its swtpm job is a
        SKIP): GetRandom and PCR_Extend on /dev/tpmrmN and /dev/tpmN of
        `chardev --vtpm-proxy` for ours and Debian's swtpm, and of a
        vtpm-proxy echo (plain and running libtpms), one TPM at a time,
        three interleaved rounds."""
        rows = self.guest_rows()
        crows = self.cuse_rows()
        prows = self.proxy_rows()
        daemons = [s for s in ("swtpm", "ours") if not self.subject_rows_na([rows[s]], s)]
        for (_, s), r in crows.items():
            if s == "swtpm":
                r.fail(self.unavailable.get("swtpm", "Debian's swtpm has no CUSE front"))
            elif "ours" in self.unavailable:
                r.fail(f"no guest: ours is n/a ({self.unavailable['ours']})")
        for r in prows.values():
            if "ours" in self.unavailable:
                r.fail(f"no guest: ours is n/a ({self.unavailable['ours']})")
            elif r.subject == "swtpm" and "swtpm" in self.unavailable:
                r.fail(self.unavailable["swtpm"])
        if "ours" in self.unavailable:
            rows["share"].fail(self.unavailable["ours"])
        if not daemons:
            return
        log = os.path.join(self.out, "vm")
        # --build: the snapshot's directory, so the guest rows measure the
        # same binary as the others
        argv = [os.path.join(ROOT, "tests", "vm", "run.sh"), "--build",
                os.path.dirname(self.subjects["ours"]), "--jobs", "1"]
        for s in daemons:
            argv += ["--daemon", self.VM_DAEMONS[s]]
        argv += ["qemu-latency", "cuse-latency", "proxy-latency"]
        with open(os.path.join(self.out, "vm.stderr"), "w") as err:
            try:
                p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=err, text=True,
                                   timeout=600, env=dict(os.environ, VTPM_VM_LOG=log))
                out = p.stdout
            except (OSError, subprocess.TimeoutExpired) as e:
                out = f"FAIL vm/guest-latency: {e}"
        for s in daemons:
            try:
                m = self.TPM_LAT.search(self.guest_text(out, log, "qemu-latency-crb",
                                                        self.VM_DAEMONS[s], "latency"))
                if not m:
                    raise ToolError("latency: no tpm-lat line")
            except ToolError as e:
                rows[s].fail(str(e))
                if s == "ours":
                    rows["share"].fail("no guest figure of ours")
                continue
            n, med, p99, mn, mx = int(m[1]), *map(float, m.group(2, 3, 4, 5))
            rows[s].add(med, p99, n)
            rows[s].note = f"one run of {n}; per command min {fmt(mn)}, max {fmt(mx)} us"
            rows[s].extra = dict(sample_min=mn, sample_max=mx)
        host = self.res.get("rtt/unix same-CPU GetRandom(16)/ours")
        if rows["ours"].ok and not rows["share"].failures:
            if host and host.ok:
                rows["share"].add(100.0 * host.stat("median") / rows["ours"].stat("median"))
            else:
                rows["share"].fail("no rtt/unix same-CPU GetRandom(16)/ours row")
        if "ours" in daemons:
            self.cuse_results(out, log, crows)
            self.proxy_results(out, log, prows)

    @staticmethod
    def tpm_lat_rounds(text):
        """[(median, p99, n)] of a check text of tpm-lat lines joined by " | "."""
        rounds = []
        for part in text.split(" | "):
            m = Bench.TPM_LAT.fullmatch(part)
            if not m:
                raise ValueError(f"not a tpm-lat line: {part[:80]}")
            rounds.append((float(m[2]), float(m[3]), int(m[1])))
        return rounds

    def proxy_results(self, out, log, prows):
        """proxy-latency's rounds into the proxy rows (one add() per round)."""
        for (node, cmd, s), r in prows.items():
            if r.failures:
                continue
            check = f"{cmd}-{node}-{self.PROXY_SUBJECTS[s]}"
            try:
                text = self.guest_text(out, log, "proxy-latency", "vtpm-bridge", check,
                                       own=self.PROXY_OWN_CHECKS)
                rounds = self.tpm_lat_rounds(text)
            except (ToolError, ValueError) as e:
                r.fail(str(e))
                continue
            for med, p99, n in rounds:
                r.add(med, p99, n)

    def cuse_results(self, out, log, crows):
        """cuse-latency's rounds into the cuse rows (one add() per round);
        floor = echo-cuse + libtpms, round by round."""
        for cmd, _ in CUSE_CMDS:
            for s, check in self.CUSE_SUBJECTS.items():
                r = crows[(cmd, s)]
                rounds = []     # (median, p99, n) of each round
                try:
                    text = self.guest_text(out, log, "cuse-latency", "vtpm-bridge",
                                           f"{cmd}-{check}")
                    for part in text.split(" | "):
                        if s == "libtpms":      # tpmfloor's JSON line
                            rec = json.loads(part)
                            rounds.append((rec["median"], rec["p99"], rec["n"]))
                        else:
                            m = self.TPM_LAT.fullmatch(part)
                            if not m:
                                raise ValueError(f"not a tpm-lat line: {part[:80]}")
                            rounds.append((float(m[2]), float(m[3]), int(m[1])))
                except (ToolError, ValueError, KeyError) as e:
                    r.fail(str(e))
                    continue
                for med, p99, n in rounds:
                    r.add(med, p99, n)
            ec, lt, fl = (crows[(cmd, s)] for s in ("echo-cuse", "libtpms", "floor"))
            if not ec.ok or not lt.ok or len(ec.medians) != len(lt.medians):
                fl.fail("echo-cuse or libtpms missing")
                continue
            for i in range(len(ec.medians)):
                fl.add(ec.medians[i] + lt.medians[i], ec.p99s[i] + lt.p99s[i])

    # -- the whole run
    def run(self):
        c = self.cfg
        self.log(f"{'quick' if self.quick else 'full'} run: {c['runs']} runs; client CPU "
                 f"{self.cpu_a}, cross-CPU daemon on CPU {self.cpu_b}; work dir "
                 f"{os.path.relpath(self.out, ROOT)}")
        self.check_subjects()
        t0 = time.monotonic()
        self.load0 = open("/proc/loadavg").read().split()[:3]
        for run in range(c["runs"]):
            def block(what, fn, *a):
                self.log(f"run {run + 1}/{c['runs']}: {what}")
                self.noise.settle(f"{run + 1}: {what}")
                fn(*a)
            block("libtpms floor", self.run_floor)
            for transport in ("unix", "tcp"):
                for server in SERVERS:
                    block(f"round trips, {transport}, {server}", self.run_rtt, run, transport,
                          server)
            block("start-up", self.run_startup, run)
            block("memory", self.run_memory, run)
            block("state blobs", self.run_state, run)
            block("state writes", self.run_statewrite, run)
            block(f"{c['scale_n']} instances", self.run_scale, run)
        self.derive_floor_rtt()
        self.log("guest: tests/vm/run.sh qemu-latency cuse-latency proxy-latency (one boot "
                 "per daemon, one for our CUSE front, one for both vtpm-proxy daemons; "
                 "~2 min)")
        self.noise.settle("guest")
        self.run_guest()
        self.elapsed = time.monotonic() - t0
        self.load1 = open("/proc/loadavg").read().split()[:3]


# ------------------------------------------------------------------ targets

def targets(res, cfg):
    """The issue's targets (and the bench's own, marked "(bench)") as
    records; a comparison of two rows whose interquartile ranges of run
    medians overlap is marked within_noise."""
    out = []

    def t(text, lhs, rhs, factor=1.0, const=None):
        a = res.get(lhs)
        b = res.get(rhs) if rhs else None
        rec = dict(target=text, lhs=lhs, rhs=rhs, factor=factor, const=const)
        if not a or not a.ok:
            rec.update(status="n/a", reason=(a.reason() if a else "no such row") or "not measured")
        elif rhs and (not b or not b.ok):
            rec.update(status="n/a", reason=(b.reason() if b else "no such row") or "not measured")
        else:
            lv = a.stat("median")
            rv = const if const is not None else factor * b.stat("median")
            rec.update(lhs_value=lv, rhs_value=rv, status="met" if lv <= rv else "not met")
            if b is not None:
                (a1, a3), (b1, b3) = a.iqr(), b.iqr()
                rec["within_noise"] = a1 <= factor * b3 and factor * b1 <= a3
        out.append(rec)

    for tr in ("unix", "tcp"):
        for _, label in CMDS:
            same, cross = f"rtt/{tr} same-CPU {label}", f"rtt/{tr} cross-CPU {label}"
            t(f"RTT {tr} same-CPU {label} <= 1.05 x floor (echo-epoll + libtpms)",
              f"{same}/ours", f"{same}/floor", 1.05)
            t(f"RTT {tr} same-CPU {label} <= swtpm", f"{same}/ours", f"{same}/swtpm")
            t(f"  (bench) RTT {tr} same-CPU {label} <= 1.05 x min-daemon", f"{same}/ours",
              f"{same}/min-daemon", 1.05)
            t(f"RTT {tr} cross-CPU {label} <= swtpm", f"{cross}/ours", f"{cross}/swtpm")
    for st in ("existing state", "fresh state"):
        n = f"startup/first GetRandom answered, {st}"
        t(f"start-up to ready (first GetRandom), {st} <= 0.5 x swtpm", f"{n}/ours",
          f"{n}/swtpm", 0.5)
        n = f"startup/GET_CAPABILITY answered, {st}"
        t(f"start-up to ctrl answering, {st} <= 0.5 x swtpm", f"{n}/ours", f"{n}/swtpm", 0.5)
    for k in cfg["mem_ks"]:
        n = f"memory/K={k} idle Private_Dirty"
        t(f"idle Private_Dirty per instance (K={k}) <= 0.5 x swtpm", f"{n}/ours",
          f"{n}/swtpm", 0.5)
        n = f"memory/K={k} started, TPM unused Private_Dirty"
        t(f"  (bench) started-but-unused Private_Dirty (K={k}) <= 0.5 x swtpm", f"{n}/ours",
          f"{n}/swtpm", 0.5)
    n = cfg["scale_n"]
    t(f"{n} instances: total PSS <= 0.6 x swtpm", f"scale/N={n} total PSS/ours",
      f"scale/N={n} total PSS/swtpm", 0.6)
    t(f"{n} instances: all answer GetRandom within 1 s", f"scale/N={n} all answer GetRandom/ours",
      None, const=1000.0)
    g = "guest/GetRandom via QEMU emulator backend"
    t("through QEMU: guest GetRandom median of ours <= 1.05 x swtpm's (same run)",
      f"{g}/ours", f"{g}/swtpm", 1.05)
    for _, label in CUSE_CMDS:
        t(f"CUSE in a guest: {label} <= 1.10 x floor (CUSE echo + libtpms, same guest)",
          f"cuse/{label}/ours", f"cuse/{label}/floor", 1.10)
    for _, dev in Bench.PROXY_NODES:
        for _, label in CUSE_CMDS:
            n = f"proxy/{dev} {label}"
            t(f"vtpm-proxy in a guest: {dev} {label} <= 1.05 x swtpm (same guest)",
              f"{n}/ours", f"{n}/swtpm", 1.05)
            t(f"  (bench) vtpm-proxy in a guest: {dev} {label} <= 1.05 x min-daemon",
              f"{n}/ours", f"{n}/min-daemon", 1.05)
    return out


def format_targets(ts):
    lines = []
    for x in ts:
        if x["status"] == "n/a":
            lines.append(f"  {x['target']}: n/a ({x['reason']})")
        elif "flagged" in x:
            moved = f", {x['floor_moved']} of them where the controls moved too" \
                if x.get("floor_moved") else ""
            lines.append(f"  {x['target']}: {x['flagged']} rows of ours flagged{moved} "
                         f"-> {x['status']}")
        else:
            noise = " (within noise: the interquartile ranges of the run medians overlap)" \
                if x.get("within_noise") else ""
            lines.append(f"  {x['target']}: {fmt(x['lhs_value'])} vs {fmt(x['rhs_value'])} "
                         f"-> {x['status']}{noise}")
    return "\n".join(lines)


# -------------------------------------------------------------- regressions

def machine_name():
    model = "unknown-cpu"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    model = re.sub(r"\((r|tm)\)", "", model.lower())
    model = re.sub(r"[^a-z0-9]+", "-", model).strip("-")
    return f"{model}-{os.cpu_count()}cpu"


def previous(relpath):
    """The last committed version of relpath: (commit, data) or (None, None)."""
    try:
        commit = subprocess.run(["git", "-C", ROOT, "log", "-1", "--format=%h", "--", relpath],
                                capture_output=True, text=True, check=True).stdout.strip()
        if not commit:
            return None, None
        data = subprocess.run(["git", "-C", ROOT, "show", f"{commit}:{relpath}"],
                              capture_output=True, text=True, check=True).stdout
        return commit, json.loads(data)
    except (subprocess.CalledProcessError, ValueError, OSError):
        return None, None


def regressions(records, prev):
    """Rows worse by > REGRESSION_PCT % whose median also lies beyond the
    min..max of the previous run medians."""
    old = {r["id"]: r for r in prev.get("rows", [])}
    flagged = []
    for r in records:
        o = old.get(r["id"])
        if r["status"] != "ok" or not o or o.get("status") != "ok" or not o.get("median"):
            continue
        if r["better"] == "lower":
            worse = r["median"] > o["median"] * (1 + REGRESSION_PCT / 100) and r["median"] > o["max"]
        else:
            worse = r["median"] < o["median"] * (1 - REGRESSION_PCT / 100) and r["median"] < o["min"]
        if worse:
            flagged.append(dict(id=r["id"], group=r["group"], subject=r["subject"],
                                old=o["median"], old_min=o["min"], old_max=o["max"],
                                new=r["median"], unit=r["unit"],
                                pct=100.0 * (r["median"] / o["median"] - 1)))
    # A control (a floor, or Debian's swtpm: code that did not change) that
    # got worse means the machine did; our row next to it (same name; in
    # groups whose floors have names of their own, the same group) is then
    # suspect, not convicted.
    slow = {f["id"].rsplit("/", 1)[0] for f in flagged if is_floor(f["subject"])}
    slow_groups = {f["group"] for f in flagged if is_floor(f["subject"])}
    for f in flagged:
        f["floor_moved"] = (f["id"].rsplit("/", 1)[0] in slow or
                            (f["group"] not in ("rtt", "cpu") and f["group"] in slow_groups))
    return flagged


def is_floor(subject):
    """A control: everything but our daemon (floors, and swtpm, whose code
    does not change between our commits)."""
    return subject != "ours" and not subject.startswith("ours-")


# --------------------------------------------------------------------- main

def versions():
    v = {}
    for pkg in ("swtpm", "libtpms0"):
        try:
            v[pkg] = subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg],
                                    capture_output=True, text=True).stdout.strip() or None
        except OSError:
            v[pkg] = None
    try:
        v["vtpm-bridge"] = subprocess.run(["git", "-C", ROOT, "describe", "--always", "--dirty"],
                                          capture_output=True, text=True).stdout.strip()
    except OSError:
        v["vtpm-bridge"] = None
    return v


def noise_summary(log, quiet=Noise.QUIET):
    if not log:
        return "no samples"
    b = sorted(x["busy_pct"] for x in log)
    noisy = sum(1 for x in b if x > 100 * quiet)
    return (f"other load before blocks: median {statistics.median(b):.0f} %, max {b[-1]:.0f} % "
            f"of all CPUs; {noisy} of {len(b)} blocks started above {100 * quiet:.0f} %")


def print_report(doc, res, ts, rel):
    """The table, the targets and the regressions of one result."""
    m, v = doc["machine"], doc["versions"]
    print(f"vtpm-bridge benchmark ({doc['mode']}): {m['name']}, {m['kernel']}; swtpm "
          f"{v.get('swtpm')}, libtpms {v.get('libtpms0')}, tree {v.get('vtpm-bridge')}; "
          f"{doc['config']['runs']} runs per figure; {doc['elapsed_s']:.0f} s; {doc['date']}")
    print(f"{noise_summary(doc['noise'])}; loadavg {' '.join(doc['loadavg']['start'])} -> "
          f"{' '.join(doc['loadavg']['end'])}")
    print("median = median of the run medians; min..max = spread of the run medians; "
          "p99 = median of the run p99s")
    print(res.table())
    print("\n== targets (issue 6)")
    print(format_targets(ts))
    print("\n== regressions (> %d %% worse and beyond the previous min..max)" % REGRESSION_PCT)
    commit, flagged = doc.get("compared_with"), doc.get("regressions") or []
    if not commit:
        print(f"  nothing to compare with: no committed {rel}")
    elif not flagged:
        print(f"  none against {rel} at {commit}")
    else:
        floors = sum(1 for f in flagged if is_floor(f.get("subject", "")))
        if floors:
            print(f"  {floors} of the {len(flagged)} rows flagged are controls (floors, swtpm): "
                  f"the machine was slower there; a row of ours marked [controls moved] may "
                  f"be the machine, not the code")
        for f in flagged:
            if is_floor(f.get("subject", "")):
                continue
            mark = "  [controls moved]" if f.get("floor_moved") else ""
            print(f"  REGRESSION {f['id']}: {fmt(f['old'])} -> {fmt(f['new'])} {f['unit']} "
                  f"({f['pct']:+.0f} %; previous runs {fmt(f['old_min'])}..{fmt(f['old_max'])})"
                  f"{mark}")
        for f in flagged:
            if is_floor(f.get("subject", "")):
                print(f"  control {f['id']}: {fmt(f['old'])} -> {fmt(f['new'])} {f['unit']} "
                      f"({f['pct']:+.0f} %)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="build directory (default: build)")
    ap.add_argument("--show", metavar="JSON",
                    help="print the table and targets of a result file; measure nothing")
    args = ap.parse_args()
    if args.show:
        with open(args.show) as f:
            doc = json.load(f)
        res = Results.from_json(doc)
        ts = targets(res, doc["config"]) + [x for x in doc.get("targets", [])
                                             if x["target"].startswith("no regressions")]
        print_report(doc, res, ts, args.show)
        return 0
    atexit.register(kill_all)
    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)

    nice = os.environ.get("BENCH_NICE", "")
    if nice:
        # opt-in: every process of the run (tools, daemons) inherits it
        os.setpriority(os.PRIO_PROCESS, 0, int(nice))
    b = Bench(args)
    b.cfg = dict(b.cfg, nice=int(nice) if nice else 0)
    b.run()
    res = b.res
    records = res.records()
    ts = targets(res, b.cfg)

    # the committed full result of this machine is the reference for both
    # modes; a quick run writes its JSON outside git (bench/out/)
    rel = f"bench/results/{machine_name()}.json"
    dest = f"bench/out/{machine_name()}-quick.json" if b.quick else rel
    commit, prev = previous(rel)
    flagged = regressions(records, prev) if prev else []
    if prev:
        mine = [f for f in flagged if not is_floor(f["subject"])]
        ts.append(dict(target=f"no regressions vs {commit}", status="met" if not mine else
                       "not met", flagged=len(mine),
                       floor_moved=sum(1 for f in mine if f["floor_moved"])))
    else:
        ts.append(dict(target="no regressions", status="n/a",
                       reason=f"no committed {rel} to compare with"))

    doc = dict(schema=1, machine=dict(name=machine_name(), kernel=os.uname().release,
                                      cpus=os.cpu_count(), client_cpu=b.cpu_a,
                                      cross_cpu=b.cpu_b),
               mode="quick" if b.quick else "full", config=dict(b.cfg),
               date=time.strftime("%Y-%m-%dT%H:%M:%S%z"), versions=versions(),
               elapsed_s=round(b.elapsed, 1), loadavg=dict(start=b.load0, end=b.load1),
               noise=b.noise.log, unavailable=b.unavailable, rows=records, targets=ts,
               regressions=flagged, compared_with=commit)
    print_report(doc, res, ts, rel)
    os.makedirs(os.path.dirname(os.path.join(ROOT, dest)), exist_ok=True)
    with open(os.path.join(ROOT, dest), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"\nwrote {dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
