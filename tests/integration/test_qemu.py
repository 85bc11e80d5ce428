"""QEMU 7.2's use of the ctrl channel, replayed byte for byte
(qemu-libvirt.md A.3-A.6): start-up, VM reset, migration / save-restore of
the three blobs into a fresh daemon (also across daemons), quit."""
import fcntl
import os
import socket
import struct
import time

import tpm2
from harness import (test, check, Fail, OURS, SWTPM, Ctrl, Data, define_nv, expect_nv, pcr_value, make_persistent,
                     persistent_name, wait_for, lock_holder, CMD_GET_STATEBLOB, CMD_SET_STATEBLOB, CMD_SHUTDOWN, CMD_SET_DATAFD,
                     TPM_RETRY, CMD_LOCK_STORAGE, ms)
from test_cmdline import qemu_startup

CROSS = ('%s->%s' % (SWTPM, OURS), '%s->%s' % (OURS, SWTPM))
PERSIST = 0x81000007


class Session:
    """A QEMU-like session: one ctrl connection, the data channel by SET_DATAFD."""

    def __init__(self, ctx, kind, name, state=None, extra=()):
        self.sock = ctx.path(name + '.sock')
        st = state or ctx.mkdir(name + '-tpm2')
        argv = ctx.binary(kind) + ['--ctrl', 'type=unixio,path=%s,mode=0600' % self.sock,
                                   '--tpmstate', 'dir=%s,mode=0600' % st, '--log', 'file=%s' % ctx.path(name + '.log'),
                                   '--terminate', '--tpm2'] + list(extra)
        self.d = ctx.start(kind, argv=argv, ctrl_addr=self.sock, state=st, name=name, ready=False)
        check(wait_for(lambda: os.path.exists(self.sock), 1.0), '%s: ctrl socket not up within 1 s' % kind)
        self.ctrl = self.d.ctrl()
        self.data = None

    def start(self):
        self.data = qemu_startup(self.d, self.ctrl)

    def tpm(self, cmd, expect_rc=0, what='TPM command', timeout=10.0):
        r = self.data.transact(cmd, timeout)
        if expect_rc is not None:
            check(tpm2.rc_of(r) == expect_rc, '%s: rc 0x%x, expected 0x%x' % (what, tpm2.rc_of(r), expect_rc))
        return r


def qemu_save(s):
    """pre_save: GET_STATEBLOB(flags 1) for types 1, 2, 3; no STOP."""
    blobs = []
    for btype in (1, 2, 3):
        s.ctrl.send(struct.pack('>IIII', CMD_GET_STATEBLOB, 1, btype, 0))
        head = s.ctrl.recv_exact(16, 5, ' GET_STATEBLOB(%d) header' % btype)
        res, flags, tot, length = struct.unpack('>IIII', head)
        check(res == 0 or res & TPM_RETRY, 'GET_STATEBLOB(%d): result 0x%x' % (btype, res))
        check(tot == length, 'GET_STATEBLOB(%d): totlength %d != length %d (QEMU refuses)' % (btype, tot, length))
        data = s.ctrl.recv_exact(length, 5, ' GET_STATEBLOB(%d) data' % btype) if length else b''
        blobs.append((btype, flags, data))
    check(blobs[0][2] and blobs[1][2], 'permanent or volatile blob empty')
    return blobs


def qemu_load(s, blobs, bufsize=3968):
    """Destination: reset (STOP, SET_BUFFERSIZE, no INIT), post_load (STOP,
    SET_STATEBLOB header then blob in a second write, size 0 skipped), INIT(1)."""
    mine, theirs = socket.socketpair()
    res, _ = s.ctrl.request(CMD_SET_DATAFD, fds=[theirs.fileno()])
    theirs.close()
    check(res == 0, 'SET_DATAFD: 0x%x' % res)
    s.data = Data(mine, 'data (socketpair)')
    caps = s.ctrl.caps()
    check(caps & 0x0700 == 0x0700, 'no GET/SET_STATEBLOB + STOP capability: 0x%x (QEMU blocks migration)' % caps)
    check(s.ctrl.stop() == 0, 'STOP')
    check(s.ctrl.buffersize(0)[0] == 0, 'SET_BUFFERSIZE(0)')
    check(s.ctrl.stop() == 0, 'STOP')
    check(s.ctrl.buffersize(bufsize)[:2] == (0, bufsize), 'SET_BUFFERSIZE(%d)' % bufsize)
    check(s.ctrl.stop() == 0, 'STOP before SET_STATEBLOB')
    for btype, flags, data in blobs:
        if not data:
            continue
        s.ctrl.send(struct.pack('>IIII', CMD_SET_STATEBLOB, flags, btype, len(data)))
        s.ctrl.send(data)
        r = s.ctrl.recv_exact(4, 5, ' SET_STATEBLOB(%d)' % btype)
        check(r == b'\0\0\0\0', 'SET_STATEBLOB(%d, %d bytes): %s' % (btype, len(data), r.hex()))
    check(s.ctrl.init(1) == 0, 'INIT(DELETE_VOLATILE)')


def migrate(ctx, src_kind, dst_kind):
    a = Session(ctx, src_kind, 'src')
    a.start()
    define_nv(a)
    a.tpm(tpm2.pcr_extend(16, b'before migration'))
    pcr = pcr_value(a)
    name = make_persistent(a, PERSIST)
    blobs = qemu_save(a)
    a.tpm(tpm2.get_random(8), what='GetRandom on the source after the blobs were fetched (TPM keeps running)')
    check(a.ctrl.request(CMD_SHUTDOWN)[0] == 0, 'SHUTDOWN of the source')
    check(a.d.wait_exit(5) == 0, 'source did not exit 0 after SHUTDOWN')
    check(not os.path.exists(a.sock), 'source left its ctrl socket')
    b = Session(ctx, dst_kind, 'dst')
    qemu_load(b, blobs)
    r = b.tpm(tpm2.get_random(8), expect_rc=None)
    check(tpm2.rc_of(r) == 0, 'GetRandom right after INIT on the destination (no Startup): rc 0x%x' % tpm2.rc_of(r))
    expect_nv(b, what=' after migration %s->%s' % (src_kind, dst_kind))
    check(pcr_value(b) == pcr, 'PCR 16 not migrated')
    check(persistent_name(b, PERSIST) == name, 'persistent object not migrated')
    # the destination wrote the state: a VM reset (STOP, SET_BUFFERSIZE, INIT) keeps NV
    check(b.ctrl.stop() == 0 and b.ctrl.buffersize(3968)[0] == 0 and b.ctrl.init() == 0, 'VM reset sequence')
    b.tpm(tpm2.startup(), what='Startup after the VM reset')
    expect_nv(b, what=' after a VM reset on the destination')
    b.data.close()
    check(b.d.wait_exit(5) == 0, '--terminate: destination did not exit 0 on data EOF')


@test('qemu/migration-of-blobs-into-fresh-daemon')
def _migrate(ctx):
    migrate(ctx, ctx.kind, ctx.kind)


@test('qemu/migration-of-blobs-across-daemons', labels=CROSS)
def _migrate_cross(ctx):
    migrate(ctx, *ctx.kind.split('->'))


@test('qemu/vm-reset-keeps-state-and-locality')
def _reset(ctx):
    s = Session(ctx, ctx.kind, 'vm')
    s.start()
    define_nv(s)
    check(s.ctrl.set_locality(3, pad=True) == 0, 'SET_LOCALITY(3)')
    for _ in range(2):  # one system_reset gave two reset blocks
        check(s.ctrl.stop() == 0 and s.ctrl.buffersize(0)[0] == 0, 'STOP, SET_BUFFERSIZE(0)')
        check(s.ctrl.stop() == 0 and s.ctrl.buffersize(4096)[:2] == (0, 4096), 'STOP, SET_BUFFERSIZE(4096)')
        check(s.ctrl.init() == 0, 'INIT')
    s.tpm(tpm2.startup(), what='Startup after the resets')
    expect_nv(s, what=' after two VM resets')
    r = s.tpm(tpm2.pcr_extend(17), expect_rc=None)
    check(tpm2.rc_of(r) == 0, 'locality 3 not kept across the resets (PCR 17 extend: 0x%x)' % tpm2.rc_of(r))
    check(s.ctrl.request(CMD_SHUTDOWN)[0] == 0, 'SHUTDOWN')
    check(s.d.wait_exit(5) == 0, 'no exit 0 after SHUTDOWN')
    check(not os.path.exists(s.sock), 'ctrl socket left after SHUTDOWN')


@test('ours-only/migration-shared-storage-lock-handover (swtpm 0.7.1 has no --migration)', labels=(OURS,))
def _shared(ctx):
    """libvirt on shared storage: source with --migration release-lock-outgoing,
    destination with --migration incoming on the same dir.  The destination
    starts while the source holds the lock; the source drops it once its blobs
    are fetched; the destination then loads them and takes the lock."""
    a = Session(ctx, OURS, 'src', extra=['--migration', 'release-lock-outgoing'])
    a.start()
    define_nv(a)
    lockf = os.path.join(a.d.state_dir, '.lock')
    check(lock_holder(lockf), 'source holds no lock while running')
    b = Session(ctx, OURS, 'dst', state=a.d.state_dir, extra=['--migration', 'incoming'])
    b.d.check_alive('started on a dir the source holds')
    blobs = qemu_save(a)
    check(wait_for(lambda: not lock_holder(lockf), 2.0),
          'source still holds the lock after its savestate blob was fetched (release-lock-outgoing)')
    qemu_load(b, blobs)
    r = b.tpm(tpm2.get_random(8), expect_rc=None)
    check(tpm2.rc_of(r) == 0, 'destination GetRandom after INIT: rc 0x%x' % tpm2.rc_of(r))
    expect_nv(b, what=' on the destination')
    check(lock_holder(lockf), 'destination holds no lock after INIT')
    check(a.ctrl.request(CMD_SHUTDOWN)[0] == 0, 'SHUTDOWN of the source')
    check(a.d.wait_exit(5) == 0, 'source exit')
    expect_nv(b, what=' on the destination after the source quit')


@test('ours-only/lock-storage-after-failed-migration (swtpm 0.7.1 has no LOCK_STORAGE)', labels=(OURS,))
def _relock(ctx):
    """QEMU after a failed outgoing migration: the source had dropped its lock
    (release-lock-outgoing), the VM resumes, QEMU sends LOCK_STORAGE(300).
    Retries wait on a timer, not in the loop: another ctrl client is answered
    meanwhile; the lock is taken as soon as the other holder lets go."""
    a = Session(ctx, OURS, 'src', extra=['--migration', 'release-lock-outgoing'])
    a.start()
    lockf = os.path.join(a.d.state_dir, '.lock')
    qemu_save(a)
    check(wait_for(lambda: not lock_holder(lockf), 2.0), 'lock not released after the blobs were fetched')
    fd = os.open(lockf, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)      # a destination holding it
        res = a.ctrl.request(CMD_LOCK_STORAGE, struct.pack('>I', 0))[0]
        check(res == 0x09, 'LOCK_STORAGE(0) while another process holds the lock: 0x%x, not 0x9' % res)
        a.ctrl.send(struct.pack('>II', CMD_LOCK_STORAGE, 300))
        other = a.d.ctrl()
        t0 = time.monotonic()
        check(other.caps() != 0, 'GET_CAPABILITY')
        check(ms(t0) < 100, 'another ctrl client waited %.0f ms behind LOCK_STORAGE retries' % ms(t0))
        time.sleep(0.2)
        fcntl.lockf(fd, fcntl.LOCK_UN)
        res = struct.unpack('>I', a.ctrl.recv_exact(4, 3.5, ' LOCK_STORAGE(300) reply'))[0]
        check(res == 0, 'LOCK_STORAGE(300): 0x%x after the holder let go' % res)
        check(ms(t0) < 1500, 'LOCK_STORAGE took %.0f ms after the lock was free' % ms(t0))
    finally:
        os.close(fd)
    check(lock_holder(lockf), 'the daemon holds no lock after LOCK_STORAGE succeeded')
    r = a.tpm(tpm2.get_random(8), expect_rc=None)
    check(tpm2.rc_of(r) == 0, 'GetRandom after the relock: rc 0x%x' % tpm2.rc_of(r))
