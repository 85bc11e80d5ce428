"""Issue 13 point 1: kill -9 of the daemon at random moments during a stream
of NV writes, on the state directory (--tpmstate dir=): 1000 kills of ours,
200 of Debian's swtpm in the same run as the anchor.  After every restart the
state loads and every acknowledged write is there (the value read is the last
acknowledged one or the one in flight, never torn).  Restarts alternate
between not-need-init and CMD_INIT + Startup as libvirt/QEMU do; every ninth
kill hits a start instead, half of those while the TPM itself starts
(libtpms loading the state, Startup storing it).  A restart that has not
answered its first command within DEADLINE seconds is a stall: a FAIL with
the daemon's threads, kernel stacks, wait channels, sockets and gdb
backtraces on stderr (test_filestate.kill_test does the work).

For stress runs: KILL_TEST_KILLS=N (ours; swtpm does a fifth, at least 50)
and KILL_TEST_BACKEND=file (the linear file, backend-uri=file://, instead of
the directory)."""
import os
import shutil

import harness
from harness import test, check, Fail, OURS, SWTPM
from test_filestate import kill_test, fstart, snapshot

DEADLINE = 5.0          # seconds from spawn to the first answer of a restart
KILLS = int(os.environ.get('KILL_TEST_KILLS', '1000'))
BACKEND = os.environ.get('KILL_TEST_BACKEND', 'dir')


def dir_copy(ctx, sdir, n):
    """Debian's swtpm on a copy of the state directory as ours left it.  Under
    --durability bounded (the default) the newest acknowledged write of a
    killed daemon may still be in tpm2-00.permall.pending or .syncing, which
    only our recovery commits; so, as docs/durability-measurements.md tells
    an operator to, one run of ours (--print-states takes the lock, and
    recovers) comes before swtpm."""
    dst = ctx.mkdir('copy%d' % n)
    for f in os.listdir(sdir):
        if f != '.lock':
            shutil.copy2(os.path.join(sdir, f), dst)
    r = ctx.run([ctx.env.ours, 'socket', '--tpm2', '--print-states', '--tpmstate', 'dir=' + dst])
    check(r.returncode == 0, 'vtpm-bridge --print-states on a copy: exit %d: %s'
          % (r.returncode, r.stderr.decode(errors='replace').strip()[-300:]))
    return ctx.start(SWTPM, state=dst, name='sw%d' % n)


@test('kill/nv-writes-1000-kills-state-dir' if BACKEND == 'dir' else 'kill/nv-writes-1000-kills-state-file',
      timeout=240)
def _kill_dir(ctx):
    # swtpm 0.7.1 writes TMP2-00.permall and renames it without fsync: a
    # process kill loses nothing from the page cache, so it is expected to
    # pass; should it lose a write, this records it as its defect.
    _KILL.xfail_swtpm = None
    ours = ctx.kind == OURS
    kills = KILLS if ours else max(50, KILLS // 5)
    if BACKEND == 'dir':
        sdir = ctx.mkdir('state')
        start = lambda kind, **kw: ctx.start(kind, state=sdir, **kw)  # noqa: E731
        copy = lambda n: dir_copy(ctx, sdir, n)  # noqa: E731
    else:
        path = ctx.path('tpm.bin')
        start = lambda kind, **kw: fstart(ctx, kind, path, **kw)  # noqa: E731
        copy = lambda n: fstart(ctx, SWTPM, snapshot(ctx, path, n), name='sw%d' % n)  # noqa: E731
    try:
        kill_test(ctx, start, kills=kills, budget=kills * 0.16, copy=copy, swtpm_every=50,
                  where=BACKEND, title='kill test', deadline=DEADLINE, min_kills=kills, start_busy=True)
    except Fail as e:
        if not ours and e.tag == 'kill':
            _KILL.xfail_swtpm = ('kill', 'swtpm 0.7.1 lost an acknowledged NV write across a kill -9')
        raise


_KILL = harness.TESTS[-1]
