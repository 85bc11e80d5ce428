#!/usr/bin/env python3
"""bench/profile.py - where the time and memory of our daemon go, next to
swtpm and the min-daemon floor (echosrv -T).  `make -f bench/bench.mk profile`.

perf hardware counters are not available in this kind of guest (`perf stat
-e instructions true` says "not supported"), so instruction counts come from
valgrind callgrind (user space only, differential: (Ir(N2) - Ir(N1)) /
(N2 - N1) cancels start-up and shutdown) and the kernel/user split from
perf's software clock (cpu-clock sampling; in a guest the samples skid to
where interrupts are re-enabled, so the kernel symbols are unreliable and
the timing is perturbed, but the split by DSO holds).  Also: syscalls per
command (strace -c), context switches per thread, Private_Dirty by mapping
(/proc/PID/smaps), and the start-up, STOP and INIT paths (strace -tt).

Writes bench/out/profile/*.txt and prints a summary.  Needs valgrind,
linux-perf and strace (scripts/setup-deps.sh installs the first two; strace
sections are skipped without it).
"""

import collections
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run as B  # noqa: E402  (the driver's process and socket helpers)

OUT = os.path.join(B.HERE, "out", "profile")


def p(msg=""):
    print(msg, flush=True)


def save(name, text):
    with open(os.path.join(OUT, name), "w") as f:
        f.write(text)


class Prof:
    def __init__(self, build):
        self.build = os.path.abspath(os.path.join(B.ROOT, build))
        self.tools = os.path.join(self.build, "bench")
        shutil.rmtree(OUT, ignore_errors=True)
        os.makedirs(OUT)
        ours = os.path.join(self.build, "vtpm-bridge")
        self.bins = {"swtpm": shutil.which("swtpm")}
        if os.access(ours, os.X_OK):
            snap = os.path.join(OUT, "vtpm-bridge")
            shutil.copy2(ours, snap)
            self.bins["ours"] = snap
        d = os.path.join(OUT, "ref")
        B.run_tool([self.tool("start"), "-b", self.bins["swtpm"], "-d", d, "-n", "1"])
        self.ref = os.path.join(OUT, "ref.permall")
        shutil.copy(f"{d}/state/tpm2-00.permall", self.ref)
        self.cpu = sorted(os.sched_getaffinity(0))[-1]
        os.sync()   # a just-written binary's pages would count as Private_Dirty

    def tool(self, name):
        return os.path.join(self.tools, name)

    def subjects(self, with_min=True):
        s = [x for x in ("swtpm", "ours") if x in self.bins]
        return s + (["min-daemon"] if with_min else [])

    def argv(self, who, d):
        """(argv, data address, ctrl address or None) of one server in d."""
        os.makedirs(f"{d}/state", exist_ok=True)
        shutil.copy(self.ref, f"{d}/state/tpm2-00.permall")
        if who == "min-daemon":
            return ([self.tool("echosrv"), "-m", "epoll", "-T", "-p", self.ref,
                     "-u", f"{d}/data.sock"], f"unix:{d}/data.sock", None)
        return ([self.bins[who], "socket", "--tpm2", "--tpmstate", f"dir={d}/state",
                 "--ctrl", f"type=unixio,path={d}/ctrl.sock",
                 "--server", f"type=unixio,path={d}/data.sock",
                 "--flags", "not-need-init,startup-clear"],
                f"unix:{d}/data.sock", f"unix:{d}/ctrl.sock")

    def start(self, who, d, wrapper=(), cpu=None, timeout=60.0):
        shutil.rmtree(d, ignore_errors=True)
        argv, data, ctrl = self.argv(who, d)
        proc = B.spawn(list(wrapper) + argv, f"{d}/server.log", cpu)
        B.wait_connectable(data, proc, timeout).close()
        return proc, data, ctrl

    def stop(self, proc, ctrl):
        if ctrl:
            try:
                with B.connect(ctrl) as s:
                    s.sendall(struct.pack(">I", 3))
                    B.recv_exact(s, 4)
            except (OSError, B.ToolError):
                proc.send_signal(2)
        else:
            proc.send_signal(2)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        B.kill(proc)

    def rtt(self, data, phases, server=None, cpu=None):
        argv = [self.tool("rtt"), "-a", data, "-w", "0"]
        if cpu is not None:
            argv += ["-P", str(cpu)]
        if server:
            argv += ["-S", str(server)]
        return B.run_tool(argv + phases, timeout=600)

    # ---------------------------------------------------------- callgrind
    def callgrind(self):
        p("== instructions per command, user space (callgrind, differential)")
        lines = []
        cases = [("GetRandom(16)", "getrandom", 1000, 6000), ("CreatePrimary ECC", "cp-ecc", 5, 25)]
        ir = {}
        for who in self.subjects():
            for label, cmd, n1, n2 in cases:
                tot = []
                for n in (n1, n2):
                    d = os.path.join(OUT, f"cg-{who}-{cmd}-{n}")
                    out = f"{d}.out"
                    proc, data, ctrl = self.start(
                        who, d, ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}"],
                        timeout=120)
                    self.rtt(data, [f"{cmd}:{n}"])
                    self.stop(proc, ctrl)
                    ann = subprocess.run(["callgrind_annotate", out], capture_output=True,
                                         text=True).stdout
                    m = re.search(r"([\d,]+) \(100\.0%\)\s+PROGRAM TOTALS", ann)
                    tot.append(int(m.group(1).replace(",", "")) if m else None)
                    if who == "ours" and cmd == "getrandom" and n == n2:
                        save("callgrind-ours-getrandom.txt", ann)
                if None not in tot:
                    ir[(who, label)] = (tot[1] - tot[0]) / (n2 - n1)
        for label, *_ in cases:
            row = "  ".join(f"{w} {ir[(w, label)]:,.0f}" for w in self.subjects()
                            if (w, label) in ir)
            lines.append(f"  {label:<20} Ir/cmd: {row}")
        ann = open(os.path.join(OUT, "callgrind-ours-getrandom.txt")).read() \
            if os.path.exists(os.path.join(OUT, "callgrind-ours-getrandom.txt")) else ""
        own = [ln for ln in ann.splitlines() if "/work/" in ln and ("bridge/" in ln or
                                                                    "emulator/" in ln)]
        if own:
            lines.append("  our own functions (ours, 6000 GetRandom + start-up, self Ir):")
            lines += ["    " + ln.strip()[:110] for ln in own[:8]]
        p("\n".join(lines))
        save("callgrind.txt", "\n".join(lines) + "\n")

    # -------------------------------------------------------------- perf
    def perf(self):
        p("== kernel / user split of the daemon's CPU, 50000 GetRandom, same CPU "
          "(perf cpu-clock; perturbs the RTT)")
        lines = []
        for who in self.subjects():
            d = os.path.join(OUT, f"perf-{who}")
            proc, data, ctrl = self.start(who, d, cpu=self.cpu)
            pd = f"{d}.data"
            rec = subprocess.run(["perf", "record", "-q", "-e", "cpu-clock", "-F", "2000",
                                  "-o", pd, "-p", str(proc.pid), "--", self.tool("rtt"),
                                  "-a", data, "-P", str(self.cpu), "getrandom:50000"],
                                 capture_output=True, text=True)
            self.stop(proc, ctrl)
            if rec.returncode:
                lines.append(f"  {who}: perf record failed: {rec.stderr.strip()[-200:]}")
                continue
            rep = subprocess.run(["perf", "report", "-i", pd, "--no-children", "--sort", "dso",
                                  "--stdio"], capture_output=True, text=True).stdout
            parts = [ln.split() for ln in rep.splitlines()
                     if ln.strip() and not ln.startswith("#")]
            split = ", ".join(f"{x[1]} {x[0]}" for x in parts[:6] if len(x) >= 2)
            lines.append(f"  {who:<10} {split}")
            save(f"perf-{who}.txt", rep)
        p("\n".join(lines))
        save("perf.txt", "\n".join(lines) + "\n")

    # ------------------------------------------------------------- strace
    def syscalls(self):
        if not shutil.which("strace"):
            p("== syscalls: skipped (no strace)")
            return
        p("== syscalls per GetRandom round trip (strace -c -f, 10000 commands)")
        lines = []
        for who in self.subjects(with_min=False):
            d = os.path.join(OUT, f"strace-{who}")
            out = f"{d}.txt"
            proc, data, ctrl = self.start(who, d, ["strace", "-f", "-c", "-o", out])
            self.rtt(data, ["getrandom:10000"])
            self.stop(proc, ctrl)
            calls = {}
            for ln in open(out):
                f = ln.split()
                if len(f) >= 5 and f[0][0].isdigit() and f[-1] != "total":
                    calls[f[-1]] = int(f[3])
            per = {k: v / 10000 for k, v in calls.items() if v >= 5000}
            lines.append(f"  {who:<10} " + ", ".join(f"{k} {v:.2f}" for k, v in
                                                     sorted(per.items(), key=lambda x: -x[1])))
        p("\n".join(lines))
        save("syscalls.txt", "\n".join(lines) + "\n")

    # --------------------------------------------------- context switches
    def threads(self):
        p("== CreatePrimary ECC: daemon CPU and voluntary context switches per command, "
          "per thread (200 commands, daemon and client on one CPU)")
        lines = []

        def ctx(pid):
            out = {}
            for t in os.listdir(f"/proc/{pid}/task"):
                for ln in open(f"/proc/{pid}/task/{t}/status"):
                    if ln.startswith("voluntary_ctxt_switches"):
                        out[int(t)] = int(ln.split()[1])
            return out
        for who in self.subjects():
            d = os.path.join(OUT, f"ctx-{who}")
            proc, data, ctrl = self.start(who, d, cpu=self.cpu)
            self.rtt(data, ["cp-ecc:3"], cpu=self.cpu)
            c0 = ctx(proc.pid)
            rec = self.rtt(data, ["cp-ecc:200"], server=proc.pid, cpu=self.cpu)["cp-ecc"]
            c1 = ctx(proc.pid)
            self.stop(proc, ctrl)
            per = [f"{(c1[t] - c0.get(t, 0)) / 200:.2f}" for t in sorted(c1)]
            lines.append(f"  {who:<10} RTT median {rec['median']:.0f} us, daemon CPU "
                         f"{rec['server_cpu']:.1f} us/cmd, threads {len(c1)}, ctx switches/cmd "
                         f"per thread: {' '.join(per)}  (each cmd is followed by an untimed "
                         f"FlushContext)")
        p("\n".join(lines))
        save("threads.txt", "\n".join(lines) + "\n")

    # ------------------------------------------------------------- memory
    def memory(self):
        p("== Private_Dirty by mapping, idle instance after one GetRandom (kB)")
        lines = []
        for who in self.subjects(with_min=False):
            d = os.path.join(OUT, f"mem-{who}")
            proc, data, ctrl = self.start(who, d)
            self.rtt(data, ["getrandom:1"])
            time.sleep(0.2)
            agg, cur = collections.Counter(), None
            for ln in open(f"/proc/{proc.pid}/smaps"):
                f = ln.split()
                if f and not f[0].endswith(":") and "-" in f[0]:
                    cur = (f[5].rsplit("/", 1)[-1] if len(f) > 5 else "[anon]")
                    if cur.startswith("vtpm-bridge"):
                        cur = "vtpm-bridge"
                elif f and f[0] == "Private_Dirty:":
                    agg[cur] += int(f[1])
            self.stop(proc, ctrl)
            top = ", ".join(f"{k} {v}" for k, v in agg.most_common(8) if v)
            lines.append(f"  {who:<10} total {sum(agg.values())}: {top}")
        p("\n".join(lines))
        save("memory.txt", "\n".join(lines) + "\n")

    # ----------------------------------------------------- start-up path
    # exec, the libraries that matter, sockets, state files, the replies
    # (8 bytes: GET_CAPABILITY, 28: GetRandom, 4: STOP/INIT), the exit
    INTEREST = re.compile(r"execve|clone|bind\(|listen\(|accept|fsync|rename|"
                          r"openat\(.*(libtpms\.so|libcrypto\.so).*\) = \d|"
                          r"openat\(.*(permall|volatile|openssl\.cnf|\.lock)|"
                          r"(writev?|sendmsg)\(\d+, .*(iov_len=(8|28|4)\}|\", (8|28|4)\))|exited")

    def startup(self):
        if not shutil.which("strace"):
            p("== start-up path: skipped (no strace)")
            return
        p("== start-up path: exec -> GET_CAPABILITY -> first GetRandom -> STOP -> INIT "
          "(strace -f -tt; strace slows every syscall, so read the order and the gaps)")
        for who in self.subjects(with_min=False):
            d = os.path.join(OUT, f"start-{who}")
            shutil.rmtree(d, ignore_errors=True)
            argv, data, ctrl = self.argv(who, d)
            out = f"{d}.strace"
            proc = B.spawn(["strace", "-f", "-tt", "-o", out] + argv, f"{d}/server.log")
            s = B.wait_connectable(ctrl, proc, 60)
            s.sendall(struct.pack(">I", 1))
            B.recv_exact(s, 8)
            t = B.wait_connectable(data, proc, 60)
            t.sendall(bytes.fromhex("80010000000c0000017b0010"))
            B.recv_exact(t, 28)
            time.sleep(0.05)
            s.sendall(struct.pack(">I", 14))             # STOP
            B.recv_exact(s, 4)
            time.sleep(0.05)
            s.sendall(struct.pack(">II", 2, 0))          # INIT
            B.recv_exact(s, 4)
            t.close()
            s.close()
            self.stop(proc, ctrl)
            lines, t0 = [], None
            for ln in open(out):
                f = ln.split(None, 2)
                if len(f) < 3:
                    continue
                hh, mm, ss = f[1].split(":")
                ts = int(hh) * 3600 + int(mm) * 60 + float(ss)
                if t0 is None and "execve(" in f[2]:
                    t0 = ts
                if t0 is not None and self.INTEREST.search(f[2]):
                    lines.append(f"  {1000 * (ts - t0):8.2f} ms  [{f[0]}] {f[2].strip()[:120]}")
            save(f"startup-{who}.txt", "\n".join(lines) + "\n")
            p(f"-- {who} (bench/out/profile/startup-{who}.txt)")
            p("\n".join(lines[:40]))


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default=os.environ.get("BUILD", "build"))
    ap.add_argument("sections", nargs="*",
                    default=["callgrind", "perf", "syscalls", "threads", "memory", "startup"])
    args = ap.parse_args()
    import atexit
    atexit.register(B.kill_all)
    for sig in (2, 15, 1):
        B.signal.signal(sig, B._on_signal)
    pr = Prof(args.build)
    if "ours" not in pr.bins:
        p("note: build/vtpm-bridge is missing; profiling swtpm and the min-daemon only")
    for s in args.sections:
        getattr(pr, s)()
    p(f"\nfiles: {os.path.relpath(OUT, B.ROOT)}/")


if __name__ == "__main__":
    main()
