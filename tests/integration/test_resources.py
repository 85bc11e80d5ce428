"""Issue 13 point 5: descriptors and memory stay flat under churn.

After a warm-up (the allocator's arenas, lazily loaded code, libtpms's
caches), the daemon's fd count and resident memory are taken, then:
  * resources/ctrl-connect-10000: 10,000 ctrl connect/close cycles, every
    other one sending CMD_GET_CAPABILITY and reading its reply first;
  * resources/save-load-1000: 1,000 save/load cycles as QEMU's migration
    does them (GET_STATEBLOB permanent and volatile, STOP, SET_STATEBLOB of
    both, INIT), each followed by an NV_Read on the restored TPM;
then taken again.  The fd count must be equal; VmRSS may grow by at most
RSS_SLACK_KIB.  The numbers go to stderr (fd count, VmRSS, RssAnon, Pss
before and after, time taken).
"""
import sys
import time

from harness import test, check, Fail, Ctrl, connect, define_nv, expect_nv, BLOB_PERMANENT, BLOB_VOLATILE

CONNECTS = 10000
CYCLES = 1000
# Measured after the warm-up (5 runs of each check, both daemons): VmRSS
# and RssAnon moved by 0 KiB; Pss moved by up to 940 KiB either way (it
# follows other processes mapping the same libraries: reported, not
# asserted).  16 pages of slack still catches a leak of the smallest
# malloc chunk (32 bytes) per connect (320 KiB; a shim leaking malloc(32)
# per accept4 made ours grow by 480 KiB) or of 64 bytes per save/load
# cycle (80 KiB).
RSS_SLACK_KIB = 64


def memory(d):
    """{'VmRSS', 'RssAnon', 'Pss'} in KiB."""
    out = {}
    with open('/proc/%d/status' % d.pid) as f:
        for line in f:
            key, _, value = line.partition(':')
            if key in ('VmRSS', 'RssAnon'):
                out[key] = int(value.split()[0])
    with open('/proc/%d/smaps_rollup' % d.pid) as f:
        for line in f:
            key, _, value = line.partition(':')
            if key == 'Pss':
                out[key] = int(value.split()[0])
    return out


def snapshot(d):
    """(fd count once stable, memory)."""
    return d.stable_fd_count(), memory(d)


def connects(d, n, what):
    """n ctrl connect/close cycles; every other one asks GET_CAPABILITY first."""
    for i in range(n):
        try:
            s = connect(d.ctrl_addr, 5.0)
        except OSError as e:
            raise Fail('%s: ctrl connect %d of %d: %s' % (what, i + 1, n, e))
        if i % 2:
            with Ctrl(s, 'ctrl') as c:
                c.caps()
        else:
            s.close()


def save_load(d, c, n):
    """n save/load cycles on the ctrl connection c, each proven by an NV_Read."""
    for i in range(n):
        blobs = {}
        for btype in (BLOB_PERMANENT, BLOB_VOLATILE):
            res, blobs[btype] = c.get_blob(btype)
            check(res == 0 and blobs[btype], 'cycle %d: GET_STATEBLOB %d: result 0x%x, %d bytes'
                  % (i + 1, btype, res, len(blobs[btype])))
        check(c.stop() == 0, 'cycle %d: CMD_STOP failed' % (i + 1))
        for btype in (BLOB_PERMANENT, BLOB_VOLATILE):
            res = c.set_blob(btype, blobs[btype])
            check(res == 0, 'cycle %d: SET_STATEBLOB %d: result 0x%x' % (i + 1, btype, res))
        res = c.init()
        check(res == 0, 'cycle %d: CMD_INIT: result 0x%x' % (i + 1, res))
        expect_nv(d, what=' after save/load cycle %d' % (i + 1))


def report(ctx, what, before, after, seconds):
    (fd0, m0), (fd1, m1) = before, after
    text = ('fds %d -> %d, VmRSS %d -> %d KiB (%+d), RssAnon %d -> %d KiB (%+d), Pss %d -> %d KiB (%+d), %.1f s'
            % (fd0, fd1, m0['VmRSS'], m1['VmRSS'], m1['VmRSS'] - m0['VmRSS'], m0['RssAnon'], m1['RssAnon'],
               m1['RssAnon'] - m0['RssAnon'], m0['Pss'], m1['Pss'], m1['Pss'] - m0['Pss'], seconds))
    sys.stderr.write('resources/%s (%s): %s\n' % (what, ctx.kind, text))
    return text


def flat(ctx, what, before, after, seconds):
    text = report(ctx, what, before, after, seconds)
    check(after[0] == before[0], 'fd count not flat: %s' % text, 'fd-leak')
    growth = after[1]['VmRSS'] - before[1]['VmRSS']
    check(growth <= RSS_SLACK_KIB, 'VmRSS grew by %d KiB (bound %d): %s' % (growth, RSS_SLACK_KIB, text), 'rss')


@test('resources/ctrl-connect-10000', timeout=120)
def _connects(ctx):
    d = ctx.start()
    connects(d, 200, 'warm-up')
    before = snapshot(d)
    t0 = time.monotonic()
    connects(d, CONNECTS, 'churn')
    seconds = time.monotonic() - t0
    d.check_alive('after %d ctrl connects' % CONNECTS)
    flat(ctx, 'ctrl-connect-10000', before, snapshot(d), seconds)


@test('resources/save-load-1000', timeout=180,
      xfail_swtpm=('fd-leak', 'swtpm 0.7.1 leaks one .lock fd per SET_STATEBLOB and per CMD_INIT'))
def _save_load(ctx):
    d = ctx.start()
    define_nv(d)
    with d.ctrl() as c:
        save_load(d, c, 20)
        before = snapshot(d)
        t0 = time.monotonic()
        save_load(d, c, CYCLES)
        seconds = time.monotonic() - t0
        d.check_alive('after %d save/load cycles' % CYCLES)
        flat(ctx, 'save-load-1000', before, snapshot(d), seconds)
