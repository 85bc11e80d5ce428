#!/usr/bin/env python3
"""Checks a ctrlproxy.py traffic log against what QEMU 7.2 does with a
`-tpmdev emulator` backend (shared/spec/qemu-libvirt.md A.3, A.5, A.6).

    ctrlcheck.py startup  LOG --model crb|tis
    ctrlcheck.py shutdown LOG
    ctrlcheck.py migrate-src LOG --blobs-out BLOBS.json
    ctrlcheck.py migrate-dst LOG --model crb|tis --blobs BLOBS.json
    (each also takes --prefix P, prepended to every check name)

Prints one result line per check on stdout, "PASS <check>" or
"FAIL <check>: <why>", and the decoded traffic on stderr.  Exit status 0.
"""
import argparse
import json
import sys

NAMES = {1: "GET_CAPABILITY", 2: "INIT", 3: "SHUTDOWN", 4: "GET_TPMESTABLISHED",
         5: "SET_LOCALITY", 6: "HASH_START", 7: "HASH_DATA", 8: "HASH_END",
         9: "CANCEL_TPM_CMD", 10: "STORE_VOLATILE", 11: "RESET_TPMESTABLISHED",
         12: "GET_STATEBLOB", 13: "SET_STATEBLOB", 14: "STOP", 15: "GET_CONFIG",
         16: "SET_DATAFD", 17: "SET_BUFFERSIZE", 18: "GET_INFO", 19: "LOCK_STORAGE"}
# QEMU 7.2's required capability bits for TPM 2 (INIT SHUTDOWN GET_TPMESTABLISHED
# SET_LOCALITY RESET_TPMESTABLISHED SET_DATAFD STOP SET_BUFFERSIZE), and the
# ones without which it blocks migration (GET/SET_STATEBLOB, STOP)
CAPS_REQUIRED = 0x348F
CAPS_MIGRATION = 0x0700
BUFSIZE = {"crb": 3968, "tis": 4096}
NOT_RUNNING_TPM2 = "80010000000a00000101"
PROBE_TPM2 = "80010000000a00000181"      # TPM2_ReadClock, no sessions


def u32(hexstr, i):
    return int(hexstr[8 * i:8 * i + 8], 16)


class Msg:
    def __init__(self, rec):
        self.rec = rec
        self.ch, self.dir, self.hex, self.len = rec["ch"], rec["dir"], rec["hex"], rec["len"]
        self.fds = rec.get("fds", 0)

    def code(self):
        return u32(self.hex, 0) if self.len >= 4 else None


class Exchange:
    """A request and its reply on one channel."""

    def __init__(self, req, rep):
        self.req, self.rep = req, rep
        self.ch = req.ch

    @property
    def name(self):
        if self.ch == "data":
            return "TPM_CC_0x%x" % int(self.req.hex[12:20], 16) if self.req.len >= 10 else "short"
        c = self.req.code()
        n = NAMES.get(c, "CODE_0x%x" % (c or 0))
        if c in (2, 17) and self.req.len >= 8:       # INIT flags / buffer size
            n += "(%d)" % u32(self.req.hex, 1)
        if c in (12, 13) and self.req.len >= 12:     # blob type
            n += "(type %d)" % u32(self.req.hex, 2)
        return n

    def result(self):
        return u32(self.rep.hex, 0) if self.rep and self.rep.len >= 4 else None

    def __str__(self):
        rep = "no reply" if not self.rep else "%d bytes %s" % (self.rep.len, self.rep.hex[:48])
        return "%s %-28s > %d bytes %s%s | < %s" % (
            self.ch, self.name, self.req.len, self.req.hex[:40],
            " +fd" if self.req.fds else "", rep)


def load(path):
    recs = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                recs.append(json.loads(line))
    recs.sort(key=lambda r: r.get("seq", 0))
    events = [r for r in recs if "ev" in r]
    out, pending = [], {}
    for r in recs:
        if "ev" in r:
            continue
        m = Msg(r)
        if m.dir == ">":
            if m.ch in pending:
                out.append(Exchange(pending[m.ch], None))
            pending[m.ch] = m
        else:
            req = pending.pop(m.ch, None)
            if req is None:
                out.append(Exchange(Msg(dict(r, dir=">", hex="", len=0)), m))
            else:
                out.append(Exchange(req, m))
    for req in pending.values():
        out.append(Exchange(req, None))
    out.sort(key=lambda x: x.req.rec.get("seq", 0))
    return out, events


class Report:
    prefix = ""

    def __init__(self):
        self.nfail = 0

    def ok(self, name, cond, why):
        name = self.prefix + name
        if cond:
            print("PASS %s" % name)
        else:
            print("FAIL %s: %s" % (name, why))
            self.nfail += 1
        return cond


def dump(exchanges, events):
    for x in exchanges:
        print("  %s" % x, file=sys.stderr)
    for e in events:
        print("  event %s" % json.dumps(e, sort_keys=True), file=sys.stderr)


def ctrl_only(xs):
    return [x for x in xs if x.ch == "ctrl"]


def first_index(xs, pred):
    for i, x in enumerate(xs):
        if pred(x):
            return i
    return None


def reply_ok(x, size):
    """The reply is the full success size with result 0."""
    if not x.rep:
        return "no reply"
    if x.rep.len != size:
        return "reply is %d bytes (%s), expected %d" % (x.rep.len, x.rep.hex[:40], size)
    if x.result() != 0:
        return "result 0x%x" % x.result()
    return None


REPLY_SIZE = {1: 8, 2: 4, 3: 4, 4: 8, 5: 4, 14: 4, 16: 4, 17: 16, 13: 4}


def check_prefix(rep, name, xs, expected):
    """The ctrl commands up to and including the first INIT are `expected`,
    each answered with result 0 and its full size."""
    ctrl = ctrl_only(xs)
    i_init = first_index(ctrl, lambda x: x.req.code() == 2)
    got = [x.name for x in (ctrl[:i_init + 1] if i_init is not None else ctrl)]
    if not rep.ok(name, got == expected,
                  "ctrl commands up to INIT were [%s], expected [%s]"
                  % (", ".join(got) or "none", ", ".join(expected))):
        return None
    bad = []
    for x in ctrl[:i_init + 1]:
        why = reply_ok(x, REPLY_SIZE.get(x.req.code(), 4))
        if why:
            bad.append("%s: %s" % (x.name, why))
    rep.ok(name + "-replies", not bad, "; ".join(bad))
    return ctrl[:i_init + 1]


def check_probe(rep, xs):
    """The first data-channel exchange comes after SET_DATAFD, before INIT,
    and gets swtpm's 10-byte not-running reply."""
    i_fd = first_index(xs, lambda x: x.ch == "ctrl" and x.req.code() == 16)
    i_data = first_index(xs, lambda x: x.ch == "data")
    i_init = first_index(xs, lambda x: x.ch == "ctrl" and x.req.code() == 2)
    if i_data is None:
        return rep.ok("probe-not-running-reply", False, "no TPM command on the data channel")
    x = xs[i_data]
    order = i_fd is not None and i_fd < i_data and (i_init is None or i_data < i_init)
    if not rep.ok("probe-before-init", order,
                  "first data exchange is not between SET_DATAFD and INIT: %s" % x):
        return False
    if x.req.hex != PROBE_TPM2:
        print("  note: probe is %s, not TPM2_ReadClock" % x.req.hex, file=sys.stderr)
    got = x.rep.hex if x.rep else "nothing"
    if x.rep is not None and x.rep.hex == NOT_RUNNING_TPM2 and x.rep.len == 10:
        # QEMU takes the reply from a single read(): it must come in one piece
        return rep.ok("probe-not-running-reply", x.rep.rec.get("chunks", 1) == 1,
                      "the reply came in %s pieces" % x.rep.rec.get("chunks"))
    return rep.ok("probe-not-running-reply", False,
                  "probe %s got %s, expected %s" % (x.req.hex, got, NOT_RUNNING_TPM2))


def check_caps(rep, xs):
    x = next((x for x in ctrl_only(xs) if x.req.code() == 1), None)
    if not x or not x.rep or x.rep.len != 8:
        return rep.ok("capabilities", False, "no 8-byte GET_CAPABILITY reply: %s" % x)
    caps = int(x.rep.hex, 16)
    need = CAPS_REQUIRED | CAPS_MIGRATION
    return rep.ok("capabilities", caps & need == need,
                  "mask 0x%x lacks 0x%x" % (caps, need & ~caps))


def check_buffersize(rep, xs, model):
    sets = [x for x in ctrl_only(xs) if x.req.code() == 17]
    n = BUFSIZE[model]
    q = next((x for x in sets if x.req.len >= 8 and u32(x.req.hex, 1) == 0), None)
    s = next((x for x in sets if x.req.len >= 8 and u32(x.req.hex, 1) == n), None)
    why = []
    if not q or reply_ok(q, 16):
        why.append("query: %s" % (reply_ok(q, 16) if q else "not sent"))
    else:
        size, mn, mx = u32(q.rep.hex, 1), u32(q.rep.hex, 2), u32(q.rep.hex, 3)
        if not mn <= size <= mx or mx < n:
            why.append("query answered size %d min %d max %d" % (size, mn, mx))
    if not s or reply_ok(s, 16):
        why.append("SET_BUFFERSIZE(%d): %s" % (n, reply_ok(s, 16) if s else "not sent"))
    elif u32(s.rep.hex, 1) != n:
        why.append("SET_BUFFERSIZE(%d) answered size %d" % (n, u32(s.rep.hex, 1)))
    return rep.ok("buffersize", not why, "; ".join(why))


def check_data_after(rep, name, xs, start_pred, min_ok=1):
    """TPM commands after the point where start_pred first holds were answered
    with well-formed responses (size field == length, a TPM 2 tag), and at
    least min_ok of them with TPM_RC_SUCCESS."""
    i = first_index(xs, start_pred)
    if i is None:
        return rep.ok(name, False, "the start point never came")
    data = [x for x in xs[i:] if x.ch == "data"]
    bad, okc = [], 0
    for x in data:
        if not x.rep:
            bad.append("%s: no response" % x.name)
            continue
        h = x.rep.hex
        if x.rep.len < 10 or int(h[4:12], 16) != x.rep.len or h[:4] not in ("8001", "8002"):
            bad.append("%s: malformed response %s (%d bytes)" % (x.name, h[:20], x.rep.len))
        elif int(h[12:20], 16) == 0:
            okc += 1
    if okc < min_ok:
        bad.append("%d of %d commands succeeded" % (okc, len(data)))
    return rep.ok(name, not bad, "; ".join(bad[:3]))


def cmd_startup(a):
    xs, ev = load(a.log)
    dump(xs, ev)
    rep = Report()
    n = BUFSIZE[a.model]
    check_prefix(rep, "ctrl-startup-sequence", xs,
                 ["SET_DATAFD", "GET_CAPABILITY", "STOP", "SET_BUFFERSIZE(0)", "STOP",
                  "SET_BUFFERSIZE(%d)" % n, "INIT(0)"])
    check_probe(rep, xs)
    check_caps(rep, xs)
    check_buffersize(rep, xs, a.model)
    check_data_after(rep, "tpm-commands", xs,
                     lambda x: x.ch == "ctrl" and x.req.code() == 2, min_ok=5)


def cmd_shutdown(a):
    xs, ev = load(a.log)
    rep = Report()
    ctrl = ctrl_only(xs)
    last = ctrl[-1] if ctrl else None
    if not last or last.req.code() != 3:
        rep.ok("ctrl-shutdown", False, "last ctrl command was %s, not SHUTDOWN"
               % (last.name if last else "none"))
        return
    why = reply_ok(last, 4)
    later = [x for x in xs if x.req.rec["seq"] > last.req.rec["seq"] and x.ch == "data"]
    eofs = {(e["ch"], e["side"]) for e in ev if e["ev"] == "eof" and e["seq"] > last.req.rec["seq"]}
    if not why and later:
        why = "TPM commands after SHUTDOWN: %s" % later[0]
    if not why and ("ctrl", "daemon") not in eofs and ("ctrl", "client") not in eofs:
        why = "ctrl channel not closed after SHUTDOWN"
    rep.ok("ctrl-shutdown", not why, why)


def blob_replies(xs):
    return [x for x in ctrl_only(xs) if x.req.code() == 12]


def cmd_migrate_src(a):
    xs, ev = load(a.log)
    dump(xs, ev)
    rep = Report()
    gets = blob_replies(xs)
    got = [(u32(x.req.hex, 1), u32(x.req.hex, 2)) for x in gets if x.req.len >= 16]
    rep.ok("get-stateblobs", got == [(1, 1), (1, 2), (1, 3)],
           "GET_STATEBLOB (flags, type) were %s, expected decrypted types 1, 2, 3" % got)
    i_first = first_index(xs, lambda x: x.ch == "ctrl" and x.req.code() == 12)
    stops = [x for x in ctrl_only(xs) if x.req.code() == 14 and i_first is not None
             and x.req.rec["seq"] > xs[i_first].req.rec["seq"] and x.req.rec["seq"]
             < (gets[-1].req.rec["seq"] if gets else 0)]
    rep.ok("no-stop-during-save", not stops, "STOP while the blobs were fetched")
    blobs, bad = {}, []
    for x in gets:
        t = u32(x.req.hex, 2)
        if not x.rep or x.rep.len < 16:
            bad.append("type %d: reply %s" % (t, x.rep.hex if x.rep else "none"))
            continue
        res, flags, tot, ln = (u32(x.rep.hex, i) for i in range(4))
        if res != 0 and not res & 0x800:
            bad.append("type %d: result 0x%x" % (t, res))
        if tot != ln or x.rep.len != 16 + ln:
            bad.append("type %d: totlength %d length %d, %d data bytes" % (t, tot, ln, x.rep.len - 16))
        if t in (1, 2) and (res != 0 or ln == 0):
            bad.append("type %d: empty (result 0x%x)" % (t, res))
        blobs[t] = {"flags": flags, "length": ln, "sha256": x.rep.rec["tail_sha256"]}
    rep.ok("stateblob-replies", not bad, "; ".join(bad))
    print("  blobs %s" % json.dumps(blobs, sort_keys=True), file=sys.stderr)
    with open(a.blobs_out, "w") as f:
        json.dump(blobs, f)


def cmd_migrate_dst(a):
    xs, ev = load(a.log)
    dump(xs, ev)
    rep = Report()
    with open(a.blobs) as f:
        blobs = {int(k): v for k, v in json.load(f).items()}
    n = BUFSIZE[a.model]
    sets = ["SET_STATEBLOB(type %d)" % t for t in (1, 2, 3) if blobs.get(t, {}).get("length")]
    seq = check_prefix(rep, "ctrl-sequence", xs,
                       ["SET_DATAFD", "GET_CAPABILITY", "STOP", "SET_BUFFERSIZE(0)", "STOP",
                        "SET_BUFFERSIZE(%d)" % n, "STOP"] + sets + ["INIT(1)"])
    check_probe(rep, xs)
    bad = []
    for x in ctrl_only(xs):
        if x.req.code() != 13 or x.req.len < 16:
            continue
        flags, t, ln = u32(x.req.hex, 1), u32(x.req.hex, 2), u32(x.req.hex, 3)
        src = blobs.get(t)
        if not src:
            bad.append("type %d was not fetched on the source" % t)
            continue
        if ln != src["length"] or x.req.len != 16 + ln or x.req.rec["tail_sha256"] != src["sha256"]:
            bad.append("type %d: %d bytes differ from the source's %d" % (t, ln, src["length"]))
        if flags != src["flags"]:
            bad.append("type %d: flags 0x%x, source had 0x%x" % (t, flags, src["flags"]))
    rep.ok("stateblobs-match-src", seq is not None and not bad, "; ".join(bad) or
           "sequence wrong (see ctrl-sequence)")
    check_data_after(rep, "tpm-commands", xs,
                     lambda x: x.ch == "ctrl" and x.req.code() == 2, min_ok=3)


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("startup")
    p.add_argument("log")
    p.add_argument("--model", choices=BUFSIZE, required=True)
    p.set_defaults(fn=cmd_startup)
    p = sub.add_parser("shutdown")
    p.add_argument("log")
    p.set_defaults(fn=cmd_shutdown)
    p = sub.add_parser("migrate-src")
    p.add_argument("log")
    p.add_argument("--blobs-out", required=True)
    p.set_defaults(fn=cmd_migrate_src)
    p = sub.add_parser("migrate-dst")
    p.add_argument("log")
    p.add_argument("--model", choices=BUFSIZE, required=True)
    p.add_argument("--blobs", required=True)
    p.set_defaults(fn=cmd_migrate_dst)
    for p in sub.choices.values():
        p.add_argument("--prefix", default="", help="prepended to every check name")
    a = ap.parse_args()
    Report.prefix = a.prefix
    try:
        a.fn(a)
    except (OSError, ValueError) as e:
        print("FAIL %s-log: cannot read %s: %s" % (a.cmd, a.log, e))


if __name__ == "__main__":
    main()
