"""Tampered state (issue 13, point 3): flipped bits and truncations at many
offsets of every state file and of incoming blobs.  Whatever the damage, a
daemon must not silently run a changed or a new TPM: it refuses naming the
file, or falls back to the previous good copy saying so, and it never
overwrites the damaged bytes (they stay in the file, or in the copy it set
aside).  Debian's swtpm runs the same cases: it loads a permall with a
flipped byte without a word and overwrites the evidence (expected failure).
"""
import glob
import os
import shutil

import tpm2
from harness import test, check, OURS, NV_INDEX, CMD_STORE_VOLATILE, read_nv

NV_A = b'value-A!'
NV_B = b'value-B!'
# NV_Read in an earlier, real state: before the first NV_Write, or before NV_DefineSpace
# (stores merged by --durability bounded make the previous copy one commit, not one write, older)
OLDER_RCS = (0x14a, 0x28b)  # TPM_RC_NV_UNINITIALIZED, TPM_RC_HANDLE + 1
SILENT = ('silent-load', 'swtpm 0.7.1 has no integrity check on plain state: it loads a damaged file '
          'without a word (or runs a new TPM) and rewrites it')


def make_pristine(ctx, with_volatile=False):
    """A state dir with NV index NV_INDEX written twice (A, then B), so ours
    keeps the state holding A as the previous copy; returns its path."""
    d = ctx.start(name='pristine')
    d.tpm(tpm2.nv_define(NV_INDEX, len(NV_A)), what='NV_DefineSpace')
    d.tpm(tpm2.nv_write(NV_INDEX, NV_A), what='NV_Write A')
    # STOP makes the state with A durable, so the write of B is a commit of its own
    # (ours merges stores made within --durability bounded's window) and A's state its previous copy
    with d.ctrl() as c:
        check(c.stop() == 0 and c.init() == 0, 'STOP, INIT')
    d.tpm(tpm2.startup(), what='Startup')
    d.tpm(tpm2.nv_write(NV_INDEX, NV_B), what='NV_Write B')
    with d.ctrl() as c:
        if with_volatile:
            c.ok(CMD_STORE_VOLATILE, what='STORE_VOLATILE')
        # STOP makes every store durable (ours: --durability) and sends no TPM2_Shutdown
        # unless the TPM was used, which it was: either way the files are complete.
        check(c.stop() == 0, 'STOP')
    d.kill()
    return d.state_dir


def copy_state(ctx, src, name):
    dst = ctx.path(name)
    shutil.rmtree(dst, ignore_errors=True)
    shutil.copytree(src, dst)
    return dst


def damaged_copies(state, fname):
    return sorted(glob.glob(os.path.join(state, fname + '.damaged-*')))


def offsets(size, n=40):
    """Header bytes, the last bytes, and n spread over the middle."""
    pts = set(range(0, min(16, size))) | {size - 1, size - 2, size - 38, size - 37, size - 33}
    pts |= {size * i // n for i in range(n)}
    return sorted(p for p in pts if 0 <= p < size)


def run_case(ctx, state, fname, tampered, extra=(), name='t'):
    """Starts a daemon on a state whose fname holds `tampered`; returns a
    short failure text, or None when the outcome is acceptable."""
    path = os.path.join(state, fname)
    d = ctx.start(state=state, ready=False, extra=extra, name=name)
    try:
        ready = False
        try:
            d.wait_ready(5.0)
            ready = True
        except Exception:
            pass
        if not ready:
            rc = d.wait_exit(5.0)
            text = d.stderr() + d.log()
            if rc is None:
                return 'neither serves nor exits'
            if rc == 0:
                return 'exit 0 without serving'
            if fname not in text:
                return 'exit %s without naming %s' % (rc, fname)
            if not os.path.exists(path) or open(path, 'rb').read() != tampered:
                return 'refused but the damaged file was changed'
            return None
        # It serves: the TPM must hold a written state, and the damage must be named or harmless.
        try:
            rsp = d.tpm(tpm2.nv_read(NV_INDEX, len(NV_A)), expect_rc=None, what='NV_Read')
        except Exception as e:
            return 'serves, but NV_Read failed: %s' % e
        rc = tpm2.rc_of(rsp)
        text = d.stderr() + d.log()
        kept = [p for p in damaged_copies(state, fname) if open(p, 'rb').read() == tampered]
        named = fname in text and 'damaged' in text
        if rc in OLDER_RCS or (rc == 0 and tpm2.parse_nv_read(rsp) == NV_A):
            # an earlier state: only as a loud fallback that kept the damaged bytes
            if not (named and kept and 'FALLING BACK' in text):
                return 'an older state (NV_Read rc 0x%x) without a loud fallback that kept the file' % rc
            return None
        if rc != 0:
            if named or 'refused' in text:
                return None  # an error reply, and the log says why: not silent
            return 'NV_Read rc 0x%x and no word in the log' % rc
        value = tpm2.parse_nv_read(rsp)
        if value != NV_B:
            return 'NV reads %r: a changed state' % value
        if named and not kept:
            return 'named the damage but did not keep the damaged bytes: %s' % text.strip()[-200:]
        return None
    finally:
        d.kill()


def tamper_file(ctx, fname, with_volatile=False, truncate=False, extra=()):
    pristine = make_pristine(ctx, with_volatile)
    original = open(os.path.join(pristine, fname), 'rb').read()
    if truncate:
        cases = [('len %d' % n, original[:n]) for n in sorted({0, 1, 9, 10, 16, 100, len(original) // 2,
                                                               len(original) - 38, len(original) - 1})]
    else:
        cases = [('byte %d' % o, original[:o] + bytes([original[o] ^ (1 << (o % 8))]) + original[o + 1:])
                 for o in offsets(len(original))]
    bad = []
    for i, (what, data) in enumerate(cases):
        state = copy_state(ctx, pristine, 'case%d' % i)
        with open(os.path.join(state, fname), 'wb') as f:
            f.write(data)
        why = run_case(ctx, state, fname, data, extra, name='t%d' % i)
        if why:
            bad.append('%s: %s' % (what, why))
        shutil.rmtree(state, ignore_errors=True)
    check(not bad, '%d of %d cases of %s: %s' % (len(bad), len(cases), fname, '; '.join(bad[:6])), 'silent-load')


@test('tamper/permall-bit-flips', xfail_swtpm=SILENT, timeout=180)
def _permall_flips(ctx):
    tamper_file(ctx, 'tpm2-00.permall')


@test('tamper/permall-truncations', xfail_swtpm=SILENT, timeout=120)
def _permall_cuts(ctx):
    tamper_file(ctx, 'tpm2-00.permall', truncate=True)


@test('tamper/volatilestate-bit-flips', xfail_swtpm=SILENT, timeout=180)
def _volatile_flips(ctx):
    tamper_file(ctx, 'tpm2-00.volatilestate', with_volatile=True)


@test('tamper/volatilestate-truncations', xfail_swtpm=SILENT, timeout=120)
def _volatile_cuts(ctx):
    tamper_file(ctx, 'tpm2-00.volatilestate', with_volatile=True, truncate=True)


@test('tamper/refuse-mode-leaves-file', labels=(OURS,))
def _refuse(ctx):
    """--damaged-state refuse: exit 1 naming the file, nothing changed, no copy made."""
    pristine = make_pristine(ctx)
    path = os.path.join(pristine, 'tpm2-00.permall')
    data = bytearray(open(path, 'rb').read())
    data[len(data) // 2] ^= 0x10
    open(path, 'wb').write(data)
    d = ctx.start(state=pristine, ready=False, extra=('--damaged-state', 'refuse'), name='refuse')
    rc = d.wait_exit(10.0)
    text = d.stderr() + d.log()
    check(rc == 1, 'exit %s, expected 1' % rc)
    check('tpm2-00.permall' in text and 'SHA-256 mismatch' in text, 'the log does not name the file and '
          'the damage: %s' % text.strip()[-300:])
    check(open(path, 'rb').read() == bytes(data), 'the damaged file was changed')
    check(not damaged_copies(pristine, 'tpm2-00.permall'), 'a copy was set aside in refuse mode')


@test('tamper/fallback-then-restart', labels=(OURS,))
def _fallback(ctx):
    """Fallback is loud, keeps the damaged bytes, and a restart starts clean
    from the restored copy; a damaged previous copy too means exit 1."""
    pristine = make_pristine(ctx)
    path = os.path.join(pristine, 'tpm2-00.permall')
    data = bytearray(open(path, 'rb').read())
    data[len(data) // 3] ^= 0x01
    open(path, 'wb').write(data)
    d = ctx.start(state=pristine, name='fb')
    rsp = d.tpm(tpm2.nv_read(NV_INDEX, len(NV_A)), expect_rc=None, what='NV_Read')
    before = tpm2.rc_of(rsp), tpm2.parse_nv_read(rsp) if tpm2.rc_of(rsp) == 0 else None
    # the previous commit: A's state, or B's if a later store (STOP's TPM2_Shutdown) committed again
    check(before in ((0, NV_A), (0, NV_B)), 'after the fallback NV_Read gives %s, expected A or B' % (before,))
    text = d.log()
    check('FALLING BACK' in text and 'tpm2-00.permall.prev' in text, 'no loud fallback line: %s' % text[-300:])
    kept = damaged_copies(pristine, 'tpm2-00.permall')
    check(len(kept) == 1 and open(kept[0], 'rb').read() == bytes(data), 'damaged file not kept: %s' % kept)
    d.terminate()
    d2 = ctx.start(state=pristine, name='fb2')
    rsp = d2.tpm(tpm2.nv_read(NV_INDEX, len(NV_A)), expect_rc=None, what='NV_Read')
    after = tpm2.rc_of(rsp), tpm2.parse_nv_read(rsp) if tpm2.rc_of(rsp) == 0 else None
    check(after == before, 'the restored state did not survive a restart: %s, then %s' % (before, after))
    check('damaged' not in d2.log(), 'the restart met damage again: %s' % d2.log()[-300:])
    d2.terminate()  # flushed: no newer .pending/.syncing is left to recover
    # both copies damaged: refuse, naming both
    for name in ('tpm2-00.permall', 'tpm2-00.permall.prev'):
        p = os.path.join(pristine, name)
        b = bytearray(open(p, 'rb').read())
        b[20] ^= 0x40
        open(p, 'wb').write(b)
    d3 = ctx.start(state=pristine, ready=False, name='fb3')
    rc = d3.wait_exit(10.0)
    text = d3.stderr() + d3.log()
    check(rc == 1 and 'tpm2-00.permall.prev' in text, 'both damaged: exit %s, log %s' % (rc, text[-300:]))


@test('tamper/incoming-blob-flips', xfail_swtpm=SILENT, timeout=180)
def _blob_flips(ctx):
    """GET_STATEBLOB, flip one bit, STOP, SET_STATEBLOB, INIT: refused with an
    error reply (never a dropped connection), and the state on disk kept."""
    d = ctx.start(name='blob')
    d.tpm(tpm2.nv_define(NV_INDEX, len(NV_A)), what='NV_DefineSpace')
    d.tpm(tpm2.nv_write(NV_INDEX, NV_B), what='NV_Write B')
    with d.ctrl() as c:
        res, perm = c.get_blob(1)
        check(res == 0 and perm, 'GET_STATEBLOB permanent')
    permall = os.path.join(d.state_dir, 'tpm2-00.permall')
    bad = []
    for o in offsets(len(perm), 30):
        blob = perm[:o] + bytes([perm[o] ^ (1 << (o % 8))]) + perm[o + 1:]
        with d.ctrl() as c:
            check(c.stop() == 0, 'STOP')
            on_disk = open(permall, 'rb').read()
            res = c.set_blob(1, blob)
            changed = open(permall, 'rb').read() != on_disk
            init = c.init() if res == 0 else None
        d.check_alive('after a flipped blob at byte %d' % o)
        if res != 0:
            if changed:
                bad.append('byte %d: refused, but the state on disk changed' % o)
            with d.ctrl() as c:
                check(c.init() == 0, 'INIT after a refused blob')
            d.tpm(tpm2.startup(), expect_rc=None, what='Startup')
            continue
        if init != 0:
            continue  # refused at INIT with an error reply
        d.tpm(tpm2.startup(), expect_rc=None, what='Startup')
        rsp = d.tpm(tpm2.nv_read(NV_INDEX, len(NV_B)), expect_rc=None, what='NV_Read')
        if tpm2.rc_of(rsp) != 0 or tpm2.parse_nv_read(rsp) != NV_B:
            bad.append('byte %d: accepted, and the TPM changed (NV_Read rc 0x%x)' % (o, tpm2.rc_of(rsp)))
    check(not bad, '%d flips: %s' % (len(bad), '; '.join(bad[:6])), 'silent-load')


def as_swtpm_wrote_it(data):
    """Our file without its integrity tag: what swtpm writes (and what it
    leaves after it wrote our directory)."""
    if len(data) > 38 and data[-38:-36] == b'\x76\x42':
        data = data[:-38]
        data = data[:6] + len(data).to_bytes(4, 'big') + data[10:]
    return data


@test('tamper/libtpms-refusal-is-an-error-reply',
      xfail_swtpm=('no-file-named', 'swtpm 0.7.1 exits 1 at start-up with a libtpms message that names no '
                                    'file'))
def _libtpms_refusal(ctx):
    """A state that passes our checks but libtpms refuses (an untagged file,
    as swtpm writes them, damaged inside): the daemon starts, the command
    gets a TPM error reply, the log names the file, and it keeps serving."""
    pristine = make_pristine(ctx)
    path = os.path.join(pristine, 'tpm2-00.permall')
    data = bytearray(as_swtpm_wrote_it(open(path, 'rb').read()))
    data[16 + 10] ^= 0x01  # the compile-constants header's magic inside the libtpms blob
    open(path, 'wb').write(data)
    d = ctx.start(state=pristine, name='refused', ready=False)
    try:
        d.wait_ready(5.0)
    except Exception:
        text = d.stderr() + d.log()
        check('tpm2-00.permall' in text, 'exited at start-up without naming the file: %s' % text.strip()[-300:],
              'no-file-named')
        return  # refusing to start, naming the file, is the other acceptable outcome
    with d.data() as c:
        resp = c.transact(tpm2.get_random(8), 10.0)
    rc = tpm2.rc_of(resp)
    check(rc != 0, 'GetRandom on a state libtpms refuses: rc 0')
    d.check_alive('after the refused start', )
    text = d.stderr() + d.log()
    check('tpm2-00.permall' in text and 'libtpms refused' in text,
          'the log does not name the file libtpms refused: %s' % text.strip()[-300:])
    with d.ctrl() as c:
        check(c.init() != 0, 'INIT on the refused state succeeded')
    d.check_alive('after INIT')
    check(open(path, 'rb').read() == bytes(data), 'the refused file was changed')


@test('tamper/state-verify-and-inspect', labels=(OURS,))
def _state_cmd(ctx):
    pristine = make_pristine(ctx)
    ours = ctx.env.ours
    r = ctx.run([ours, 'state', 'verify', pristine])
    out = r.stdout.decode()
    check(r.returncode == 0 and 'intact' in out, 'verify on a good dir: exit %d: %s' % (r.returncode, out))
    d = ctx.start(state=pristine, name='holder')
    r = ctx.run([ours, 'state', 'inspect', pristine])
    out = r.stdout.decode()
    check(r.returncode == 0, 'inspect: exit %d: %s' % (r.returncode, r.stderr.decode()))
    for want in ('tpm2-00.permall', 'SHA-256 tag matches', 'TPM 2.0 permanent state', 'held by pid %d' % d.pid):
        check(want in out, 'inspect does not say %r:\n%s' % (want, out))
    d.kill()
    path = os.path.join(pristine, 'tpm2-00.permall')
    data = bytearray(open(path, 'rb').read())
    data[100] ^= 0x02
    open(path, 'wb').write(data)
    r = ctx.run([ours, 'state', 'verify', pristine])
    out = r.stdout.decode()
    check(r.returncode == 1 and 'tpm2-00.permall: damaged: SHA-256 mismatch' in out,
          'verify on a damaged file: exit %d: %s' % (r.returncode, out))
    check(open(path, 'rb').read() == bytes(data), 'verify changed the file')
    r = ctx.run([ours, 'state', 'verify', '/nonexistent/dir'])
    check(r.returncode == 2 and b'/nonexistent/dir' in r.stderr, 'verify of a missing path: exit %d' % r.returncode)


@test('tamper/linear-file-refused', labels=(OURS,))
def _linear(ctx):
    """file://: no previous copy is kept, so a damaged section is refused by
    name and the file is left as it is."""
    img = ctx.path('tpm.img')
    d = ctx.start(tpmstate='backend-uri=file://%s' % img, name='lin')
    d.tpm(tpm2.nv_define(NV_INDEX, len(NV_A)), what='NV_DefineSpace')
    with d.ctrl() as c:
        check(c.stop() == 0, 'STOP')
    d.kill()
    data = bytearray(open(img, 'rb').read())
    off = int.from_bytes(data[12:16], 'little')  # slot 0 (permall): its offset (state-file-backend.md 2.2)
    check(0 < off < len(data) - 200, 'permall section offset %d' % off)
    data[off + 100] ^= 0x08
    open(img, 'wb').write(data)
    d2 = ctx.start(tpmstate='backend-uri=file://%s' % img, name='lin2', ready=False)
    rc = d2.wait_exit(10.0)
    text = d2.stderr() + d2.log()
    check(rc == 1 and 'permall section is damaged' in text, 'exit %s: %s' % (rc, text.strip()[-300:]))
    check(open(img, 'rb').read() == bytes(data), 'the damaged file was changed')


@test('tamper/damaged-but-newer-pending', labels=(OURS,))
def _newer_pending(ctx):
    """A damaged file beside a newer acknowledged one the last process left
    (--durability bounded's .pending): the start recovers the newer one; no
    refusal, no fallback."""
    pristine = make_pristine(ctx)
    path = os.path.join(pristine, 'tpm2-00.permall')
    good = open(path, 'rb').read()
    open(path + '.pending', 'wb').write(good)
    bad = bytearray(good)
    bad[len(bad) // 2] ^= 0x04
    open(path, 'wb').write(bad)
    d = ctx.start(state=pristine, name='newer')
    check(read_nv(d, NV_INDEX, len(NV_B)) == NV_B, 'the recovered state does not hold B')
    text = d.log()
    check('recovered' in text and 'FALLING BACK' not in text, 'no recovery, or a fallback: %s' % text[-300:])
