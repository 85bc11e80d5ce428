"""--durability (issue 13, docs/durability-measurements.md): under the default
bounded=1000 a state write is acknowledged once it is in the kernel, as
tpm2-00.<name>.pending, and a flusher thread syncs and commits it.  These
checks make that window wide with the fault shim (fsync_file_delay: a slow
disk), so each fails if the behaviour it tests is missing:

- a kill -9 right after acknowledged writes loses none of them (recovery of
  .pending/.syncing at the next start); swtpm runs the same writes and kills;
- STOP, GET_STATEBLOB, STORE_VOLATILE, SHUTDOWN and SIGTERM commit every
  acknowledged write before they answer or exit: Debian's swtpm, started on
  a copy of the directory at once, reads the last write, and no
  .pending/.syncing is left;
- the acknowledgement comes before the sync (the command path has no fsync),
  and a write waits only once the oldest unsynced one is older than MS;
- a failed sync is final: later writes fail, a restart recovers the write;
- --durability sync commits before the answer; without a flusher thread
  (thread creation failing) writes are synced instead;
- the option's errors name it."""
import os
import shutil
import signal
import struct
import time

import tpm2
from harness import (test, check, OURS, SWTPM, CMD_STOP, CMD_SHUTDOWN, CMD_GET_STATEBLOB, CMD_STORE_VOLATILE,
                     BLOB_PERMANENT, wait_for)
from test_core import Faults, start_faulty

ONLY_OURS = (OURS,)
INDICES = (0x01500050, 0x01500051, 0x01500052)
SIZE = 64
SLOW_SYNC_MS = 400      # the fault shim's fsync delay: a store stays unsynced this long


def value(index, n):
    return struct.pack('>IQ', index, n) * (SIZE // 12) + bytes(SIZE % 12)


def read_value(d, index, what):
    resp = d.tpm(tpm2.nv_read(index, SIZE), expect_rc=None)
    check(tpm2.rc_of(resp) == 0, '%s: NV_Read 0x%x: rc 0x%x' % (what, index, tpm2.rc_of(resp)))
    data = tpm2.parse_nv_read(resp)
    n = struct.unpack('>Q', data[4:12])[0]
    check(data == value(index, n), '%s: NV 0x%x torn' % (what, index))
    return n


def unsynced(d):
    return sorted(f for f in os.listdir(d.state_dir) if f.endswith(('.pending', '.syncing')))


def copy_dir(ctx, src, name):
    dst = ctx.mkdir(name)
    for f in os.listdir(src):
        if f != '.lock':
            shutil.copy2(os.path.join(src, f), dst)
    return dst


def start(ctx, faults, state, name, extra=()):
    """Ours on a slow disk (every fsync of a file takes SLOW_SYNC_MS), or swtpm."""
    if ctx.kind == OURS:
        faults.set(fsync_file_delay=SLOW_SYNC_MS)
        return start_faulty(ctx, faults, state=state, name=name, extra=extra)
    return ctx.start(SWTPM, state=state, name=name, extra=extra)


# ------------------------------------------------------------ kill -9 after acknowledged writes

@test('durability/kill-after-acknowledged-writes', timeout=120)
def _(ctx):
    """Rounds of back-to-back NV_Writes to three indices, SIGKILL at once
    after the last answer: after a restart each index holds its last
    acknowledged value.  Ours on a slow disk, so the writes are still
    .pending or .syncing when the kill comes; its log must show the
    recovery."""
    faults = Faults(ctx)
    sdir = ctx.mkdir('state')
    d = start(ctx, faults, sdir, 'k0')
    for i in INDICES:
        d.tpm(tpm2.nv_define(i, SIZE), what='NV_DefineSpace')
    acked = {i: None for i in INDICES}
    recovered = 0
    for rnd in range(12):
        with d.data() as c:
            for n in range(rnd * 10, rnd * 10 + 3 + rnd % 4):
                for i in INDICES:
                    c.send(tpm2.nv_write(i, value(i, n)))
                    rc = tpm2.rc_of(c.read_response())
                    check(rc == 0, 'round %d: NV_Write 0x%x = %d: rc 0x%x' % (rnd, i, n, rc))
                    acked[i] = n
        d.kill()
        d = start(ctx, faults, sdir, 'k%d' % (rnd + 1))
        for i in INDICES:
            got = read_value(d, i, 'after kill %d' % rnd)
            check(got == acked[i], 'after kill %d: NV 0x%x holds %d, the last acknowledged write was %d'
                  % (rnd, i, got, acked[i]))
        recovered += d.log().count('recovered tpm2-00.permall')
    d.terminate()
    if ctx.kind == OURS:
        check(recovered > 0, 'no restart recovered a .pending/.syncing file: the kills never found an '
              'unsynced acknowledged write, so this check proved nothing')


# ------------------------------------------------------------ flushed before the answer

def last_write_reaches_swtpm(ctx, op):
    """Writes 1..3 to an index, then op(d); at once a copy of the directory
    goes to Debian's swtpm, which must read 3."""
    faults = Faults(ctx)
    sdir = ctx.mkdir('state')
    d = start(ctx, faults, sdir, 'd')
    i = INDICES[0]
    d.tpm(tpm2.nv_define(i, SIZE), what='NV_DefineSpace')
    for n in (1, 2, 3):
        d.tpm(tpm2.nv_write(i, value(i, n)), what='NV_Write %d' % n)
    op(d)
    copy = copy_dir(ctx, sdir, 'copy')
    if ctx.kind == OURS:
        check(not unsynced(d), 'unsynced files after the operation answered: %s' % unsynced(d))
    d.terminate()
    s = ctx.start(SWTPM, state=copy, name='sw')
    got = read_value(s, i, 'Debian swtpm on a copy')
    check(got == 3, 'Debian swtpm on a copy taken when the operation answered reads %d, not 3' % got)
    s.terminate()


@test('durability/stop-commits')
def _(ctx):
    def op(d):
        res, _ = d.ctrl_cmd(CMD_STOP)
        check(res == 0, 'STOP: 0x%x' % res)
    last_write_reaches_swtpm(ctx, op)


@test('durability/get-stateblob-commits')
def _(ctx):
    def op(d):
        res, body = d.ctrl_cmd(CMD_GET_STATEBLOB, struct.pack('>III', 0, BLOB_PERMANENT, 0))
        check(res == 0 and len(body) > 12, 'GET_STATEBLOB: 0x%x, %d bytes' % (res, len(body)))
    last_write_reaches_swtpm(ctx, op)


@test('durability/store-volatile-commits')
def _(ctx):
    def op(d):
        res, _ = d.ctrl_cmd(CMD_STORE_VOLATILE)
        check(res == 0, 'STORE_VOLATILE: 0x%x' % res)
        check(os.path.exists(os.path.join(d.state_dir, 'tpm2-00.volatilestate')),
              'no tpm2-00.volatilestate when STORE_VOLATILE answered')
    last_write_reaches_swtpm(ctx, op)


@test('durability/shutdown-commits')
def _(ctx):
    def op(d):
        res, _ = d.ctrl_cmd(CMD_SHUTDOWN)
        check(res == 0, 'SHUTDOWN: 0x%x' % res)
        check(d.wait_exit(10) is not None, 'still running 10 s after SHUTDOWN')
    last_write_reaches_swtpm(ctx, op)


@test('durability/sigterm-commits')
def _(ctx):
    def op(d):
        d.proc.send_signal(signal.SIGTERM)
        check(d.wait_exit(10) is not None, 'still running 10 s after SIGTERM')
    last_write_reaches_swtpm(ctx, op)


# ------------------------------------------------------------ the command path

@test('durability/acknowledged-before-synced', labels=ONLY_OURS)
def _(ctx):
    """On a disk whose fsync takes SLOW_SYNC_MS: right after an NV_Write
    answered, its state is .pending or .syncing (bounded acknowledges before
    the sync); within the bound nothing waits; a write while the oldest
    unsynced one is older than MS waits for it, and says so."""
    faults = Faults(ctx)
    d = start(ctx, faults, None, 'd', extra=('--durability', 'bounded=%d' % (SLOW_SYNC_MS // 4)))
    i = INDICES[0]
    d.tpm(tpm2.nv_define(i, SIZE), what='NV_DefineSpace')
    # GET_STATEBLOB returns once the flusher's round is over, directory fsync included
    res, _ = d.ctrl_cmd(CMD_GET_STATEBLOB, struct.pack('>III', 0, BLOB_PERMANENT, 0))
    check(res == 0 and not unsynced(d), 'GET_STATEBLOB: 0x%x, left %s' % (res, unsynced(d)))
    waits = d.log().count('a state write waited')     # the start's and the define's may have waited
    d.tpm(tpm2.nv_write(i, value(i, 1)), what='NV_Write 1')
    check(unsynced(d), 'the write answered, and nothing is pending: it was synced on the command path')
    check(d.log().count('a state write waited') == waits, 'a write with nothing unsynced waited: %s'
          % d.log()[-300:])
    time.sleep(SLOW_SYNC_MS / 2 / 1000)
    d.tpm(tpm2.nv_write(i, value(i, 2)), what='NV_Write 2')
    check(d.log().count('a state write waited') == waits + 1, 'a write while the oldest unsynced one was '
          '%d ms old, over the %d ms bound, did not wait' % (SLOW_SYNC_MS / 2, SLOW_SYNC_MS // 4))
    check(read_value(d, i, 'after the writes') == 2, 'NV_Read after the writes')
    d.terminate()


@test('durability/sync-option', labels=ONLY_OURS)
def _(ctx):
    """--durability sync: the write is committed when it is answered, and the
    replaced file is kept as .prev."""
    faults = Faults(ctx)
    d = start(ctx, faults, None, 'd', extra=('--durability', 'sync'))
    i = INDICES[0]
    d.tpm(tpm2.nv_define(i, SIZE), what='NV_DefineSpace')
    d.tpm(tpm2.nv_write(i, value(i, 1)), what='NV_Write 1')
    check(not unsynced(d), 'unsynced files under --durability sync: %s' % unsynced(d))
    live = os.path.join(d.state_dir, 'tpm2-00.permall')
    with open(live, 'rb') as f:
        before = f.read()
    d.tpm(tpm2.nv_write(i, value(i, 2)), what='NV_Write 2')
    with open(live + '.prev', 'rb') as f:
        check(f.read() == before, 'tpm2-00.permall.prev is not the file the last write replaced')
    d.kill()
    s = ctx.start(SWTPM, state=copy_dir(ctx, d.state_dir, 'copy'), name='sw')
    check(read_value(s, i, 'Debian swtpm after a kill under sync') == 2, 'swtpm reads an older write')


@test('durability/failed-sync-is-final', labels=ONLY_OURS)
def _(ctx):
    """fsync of files fails: the write that reached the kernel was answered;
    once its sync failed every later write fails (the kernel may have dropped
    the data, and a second fsync could lie); a restart recovers the write
    from its .syncing file."""
    faults = Faults(ctx)
    d = start_faulty(ctx, faults)
    i = INDICES[0]
    d.tpm(tpm2.nv_define(i, SIZE), what='NV_DefineSpace')
    d.tpm(tpm2.nv_write(i, value(i, 1)), what='NV_Write 1')
    check(wait_for(lambda: not unsynced(d), 5.0), 'never committed: %s' % unsynced(d))
    faults.set(fsync_file='EIO')
    d.tpm(tpm2.nv_write(i, value(i, 2)), what='NV_Write 2 (answered before its sync fails)')
    check(wait_for(lambda: 'could not be synced' in d.log(), 5.0), 'the failed sync was not logged')
    r = d.tpm(tpm2.nv_write(i, value(i, 3)), expect_rc=None)
    check(tpm2.rc_of(r) != 0, 'NV_Write 3 answered 0 after a failed sync')
    res, _ = d.ctrl_cmd(CMD_GET_STATEBLOB, struct.pack('>III', 0, BLOB_PERMANENT, 0))
    check(res != 0, 'GET_STATEBLOB handed out a state that could not be synced')
    d.check_alive('after the failed sync')
    check(unsynced(d) == ['tpm2-00.permall.syncing'], 'left: %s' % unsynced(d))
    d.kill()
    faults.set()
    d = start_faulty(ctx, faults, state=d.state_dir, name='again')
    check(read_value(d, i, 'after the restart') == 2, 'the acknowledged NV_Write 2 was lost')
    check('recovered tpm2-00.permall.syncing' in d.log(), 'the recovery was not logged')
    d.terminate()


@test('durability/no-flusher-thread', labels=ONLY_OURS)
def _(ctx):
    """No thread can be made (a pids limit): writes are synced before they
    are answered instead, and that is said."""
    faults = Faults(ctx)
    faults.set(pthread_create='EAGAIN')
    d = start_faulty(ctx, faults)
    i = INDICES[0]
    d.tpm(tpm2.nv_define(i, SIZE), what='NV_DefineSpace')
    d.tpm(tpm2.nv_write(i, value(i, 1)), what='NV_Write 1')
    check(not unsynced(d), 'unsynced files without a flusher: %s' % unsynced(d))
    check('cannot start the flusher thread' in d.log(), 'the missing flusher was not logged')
    d.terminate()
    faults.set()
    d = start_faulty(ctx, faults, state=d.state_dir, name='again')
    check(read_value(d, i, 'after the restart') == 1, 'NV_Write 1 lost')
    d.terminate()


@test('durability/option-errors', labels=ONLY_OURS)
def _(ctx):
    for bad, says in (('bounded=0', '1 to 60000'), ('bounded=60001', '1 to 60000'), ('bounded=', '1 to 60000'),
                      ('bounded=1e3', '1 to 60000'), ('none', 'sync or bounded=MS'), ('Sync', 'sync or bounded')):
        r = ctx.run([ctx.env.ours, 'socket', '--tpm2', '--tpmstate', 'dir=' + ctx.tmp,
                     '--ctrl', 'type=unixio,path=' + ctx.path('c'), '--durability', bad])
        err = r.stderr.decode(errors='replace')
        check(r.returncode == 1 and '--durability' in err and says in err,
              '--durability %s: exit %d, stderr %r' % (bad, r.returncode, err))
    r = ctx.run([ctx.env.ours, '--help'])
    check('--durability sync | bounded=MS' in r.stdout.decode(), '--help does not describe --durability')
    for good in ('sync', 'bounded=1', 'bounded=60000'):
        d = ctx.start(OURS, extra=('--durability', good), name='ok' + good.replace('=', ''))
        d.tpm(tpm2.nv_define(INDICES[0], SIZE), what='NV_DefineSpace with --durability ' + good)
        d.terminate()
