"""Core and socket-front defects of issue 9, each with the test that would
have caught it.  Fault-injection checks run our daemon with the shim of
tests/fault (LD_PRELOAD) and a control file that turns a fault on."""
import fcntl
import os
import socket
import struct
import time

import tpm2
from harness import (test, check, Fail, OURS, SWTPM, KINDS, Ctrl, define_nv, expect_nv, wait_for, health,
                     CMD_INIT, CMD_SHUTDOWN, CMD_SET_DATAFD, CMD_LOCK_STORAGE, CMD_GET_STATEBLOB, CMD_STOP,
                     CMD_SET_LOCALITY, CMD_GET_CAPABILITY, TPM_IOERROR, BLOB_VOLATILE)

ONLY_OURS = (OURS,)
TPM_FAIL = 0x09


class Faults:
    """The shim's control file: set() turns faults on, from the next libc call on."""

    def __init__(self, ctx):
        self.path = ctx.path('faults')
        self.lib = os.path.join(ctx.env.build, 'tests', 'libvtpm-fault.so')
        check(os.path.exists(self.lib), '%s is not built (make unit)' % self.lib)
        self.n = 0
        self.set()

    def set(self, **faults):
        self.n += 1
        tmp = self.path + '.tmp'
        with open(tmp, 'w') as f:
            f.write(''.join('%s=%s\n' % kv for kv in faults.items()))
        # a distinct mtime for every version, whatever the clock's resolution
        os.utime(tmp, ns=(self.n * 10**9, self.n * 10**9))
        os.rename(tmp, self.path)

    def env(self):
        env = dict(os.environ)
        env['LD_PRELOAD'] = self.lib
        env['VTPM_FAULT_FILE'] = self.path
        return env


def start_faulty(ctx, faults, **kw):
    kw.setdefault('env', faults.env())
    return ctx.start(OURS, **kw)


def state_file(d, name='permall'):
    return os.path.join(d.state_dir, 'tpm2-00.' + name)


def read_file(path):
    with open(path, 'rb') as f:
        return f.read()


# ------------------------------------------------------------ 1. heap over-read in the classifier

@test('core/short-create-primary-first-command')
def _(ctx):
    """A 10-byte CreatePrimary without sessions as the first command (queued
    behind the start), then pipelined with a lying header: an error each time,
    the daemon alive (the ASan run of this suite catches an over-read)."""
    d = ctx.start()
    short = bytes.fromhex('80010000000a00000131')
    with d.data() as c:
        r = c.transact(short)
        check(tpm2.rc_of(r) != 0, 'short CreatePrimary answered 0')
        c.send(short + bytes.fromhex('8001ffffffff'))
        r = c.read_response(5)
        check(tpm2.rc_of(r) != 0, 'short CreatePrimary (pipelined) answered 0')
    d.check_alive('after short CreatePrimary commands')
    d.tpm(tpm2.get_random(8), what='GetRandom after them')


# ------------------------------------------------------------ 2. no worker thread

@test('core/no-worker-thread-start-loads-inline', labels=ONLY_OURS)
def _(ctx):
    """pthread_create fails (EAGAIN under a pids limit): INIT still starts
    the TPM, key generation runs, nothing calls into an unloaded libtpms."""
    faults = Faults(ctx)
    faults.set(pthread_create='EAGAIN')
    d = start_faulty(ctx, faults, flags=None)
    with d.ctrl() as c:
        check(c.init() == 0, 'INIT without a worker thread')
    d.tpm(tpm2.startup(), what='Startup')
    from test_better import rsa_primary
    r = d.tpm(rsa_primary(2048), what='RSA-2048 CreatePrimary inline')
    d.tpm(tpm2.flush_context(struct.unpack('>I', r[10:14])[0]), what='FlushContext')
    define_nv(d)
    health(d, what='without a worker thread')


# ------------------------------------------------------------ 3. disconnect with partial writes

@test('core/disconnect-short-writes', labels=ONLY_OURS)
def _(ctx):
    """--server ...,disconnect while the socket takes 4 bytes a write: every
    reply arrives whole, then the connection closes; queued and inline."""
    faults = Faults(ctx)
    state = ctx.mkdir('disc-state')
    sock = ctx.path('disc.sock')
    argv = [ctx.env.ours, 'socket', '--tpm2', '--tpmstate', 'dir=' + state,
            '--server', 'type=unixio,path=%s,disconnect' % sock, '--ctrl', 'type=unixio,path=%s.ctrl' % sock,
            '--flags', 'not-need-init,startup-clear', '--log', 'file=%s,level=2' % ctx.path('disc.log')]
    faults.set(sock_write_max=4)
    d = ctx.start(OURS, argv=argv, ctrl_addr=sock + '.ctrl', data_addr=sock, env=faults.env())
    for i in range(3):      # the first is queued behind the start, the others run inline
        with d.data() as c:
            r = c.transact(tpm2.get_random(16), 5)
            check(tpm2.rc_of(r) == 0 and len(r) == 12 + 16, 'GetRandom %d: %s' % (i, r.hex()))
            extra, closed = c.recv_upto(1, 2)
            check(extra == b'' and closed, 'connection %d not closed after its reply (extra %s)' % (i, extra.hex()))
    d.check_alive('after short writes with disconnect')


# ------------------------------------------------------------ 4. LOCK_STORAGE holds the FIFO

@test('core/lock-storage-waits-at-the-head', labels=ONLY_OURS)
def _(ctx):
    """A deferred LOCK_STORAGE keeps what comes after it (INIT on another
    ctrl connection, a TPM command) waiting until the lock is held."""
    state = ctx.mkdir('shared')
    lock = os.path.join(state, '.lock')
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o660)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    d = ctx.start(flags=None, state=state, extra=['--migration', 'incoming'])
    a, b = d.ctrl(), d.ctrl()
    try:
        a.send(struct.pack('>II', CMD_LOCK_STORAGE, 200))     # up to 2 s
        time.sleep(0.1)
        b.send(struct.pack('>II', CMD_INIT, 0))
        early, _ = b.recv_upto(4, 0.3)
        check(early == b'', 'INIT answered while LOCK_STORAGE still waits for the lock: %s' % early.hex())
        with d.ctrl() as c:
            c.caps()    # others are still answered
        t0 = time.monotonic()
        os.close(fd)    # the other side lets go
        res, _ = a.read_reply(CMD_LOCK_STORAGE, 3)
        check(res == 0, 'LOCK_STORAGE after the holder let go: 0x%x' % res)
        res, _ = b.read_reply(CMD_INIT, 3)
        check(res == 0, 'INIT after the lock: 0x%x' % res)
        check(time.monotonic() - t0 < 1.5, 'LOCK_STORAGE took too long after the lock was free')
    finally:
        a.close()
        b.close()
    d.tpm(tpm2.startup(), what='Startup')
    define_nv(d)


@test('core/lock-storage-timer-fails-answers', labels=ONLY_OURS)
def _(ctx):
    """No retry timer to be had: LOCK_STORAGE is answered at once, not never."""
    faults = Faults(ctx)
    state = ctx.mkdir('shared')
    fd = os.open(os.path.join(state, '.lock'), os.O_RDWR | os.O_CREAT, 0o660)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    try:
        d = start_faulty(ctx, faults, flags=None, state=state, extra=['--migration', 'incoming'])
        faults.set(timerfd_settime='EIO')
        with d.ctrl() as c:
            c.caps()
            res, _ = c.request(CMD_LOCK_STORAGE, struct.pack('>I', 100), 2)
            check(res != 0, 'LOCK_STORAGE of a held lock answered 0')
            c.caps()
    finally:
        os.close(fd)


# ------------------------------------------------------------ 5. lock given up with the state

@test('core/release-lock-outgoing-writes-nothing-after', labels=ONLY_OURS)
def _(ctx):
    """Once the volatile blob left with release-lock-outgoing, STOP, SHUTDOWN
    and SIGTERM write nothing to the storage the destination now owns."""
    for end in ('shutdown', 'sigterm', 'stop'):
        d = ctx.start(extra=['--migration', 'release-lock-outgoing'], name='src-' + end)
        define_nv(d)
        with d.ctrl() as c:
            c.get_blob(BLOB_VOLATILE)
        # the lock is free for the destination (which has not taken it yet):
        # the files are the destination's from here on all the same
        fd = os.open(os.path.join(d.state_dir, '.lock'), os.O_RDWR)
        check(wait_for(lambda: _try_lock(fd), 2), '%s: the source kept the lock after the volatile blob' % end)
        fcntl.lockf(fd, fcntl.LOCK_UN)
        before = {n: read_file(os.path.join(d.state_dir, n)) for n in os.listdir(d.state_dir) if n != '.lock'}
        mtimes = {n: os.stat(os.path.join(d.state_dir, n)).st_mtime_ns for n in before}
        if end == 'shutdown':
            with d.ctrl() as c:
                check(c.request(CMD_SHUTDOWN)[0] == 0, 'SHUTDOWN')
            check(d.wait_exit(5) == 0, 'exit after SHUTDOWN')
        elif end == 'sigterm':
            check(d.terminate() == 0, 'exit status after SIGTERM')
        else:
            with d.ctrl() as c:
                check(c.stop() == 0, 'STOP')
            d.terminate()
        after = {n: read_file(os.path.join(d.state_dir, n)) for n in os.listdir(d.state_dir) if n != '.lock'}
        check(after == before and all(os.stat(os.path.join(d.state_dir, n)).st_mtime_ns == mtimes[n]
                                      for n in after),
              '%s after the state was handed out changed %s' % (end, sorted(set(after) ^ set(before)) or
                                                                 [n for n in after if after[n] != before.get(n)]
                                                                 or 'an mtime'))
        os.close(fd)


def _try_lock(fd):
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except OSError:
        return False


# ------------------------------------------------------------ 6. nothing after SHUTDOWN

@test('core/nothing-runs-after-shutdown', labels=ONLY_OURS)
def _(ctx):
    """SHUTDOWN with INIT and a TPM command pipelined in the same write: the
    SHUTDOWN reply arrives whole (even 1 byte a write), nothing after it runs."""
    faults = Faults(ctx)
    d = start_faulty(ctx, faults)
    define_nv(d)
    faults.set(sock_write_max=1)
    with d.ctrl() as c:
        c.send(struct.pack('>I', CMD_SHUTDOWN) + struct.pack('>II', CMD_INIT, 0) +
               struct.pack('>I', CMD_GET_CAPABILITY))
        res, _ = c.read_reply(CMD_SHUTDOWN, 3)
        check(res == 0, 'SHUTDOWN: 0x%x' % res)
        permall = read_file(state_file(d))     # as SHUTDOWN's own TPM2_Shutdown left it
        rest, _ = c.recv_upto(64, 2)
        check(rest[:4] != b'\0\0\0\0', 'INIT after SHUTDOWN was answered 0 (it ran): %s' % rest.hex())
    check(d.wait_exit(5) == 0, 'exit status after SHUTDOWN')
    check(read_file(state_file(d)) == permall, 'permall changed after the SHUTDOWN reply (INIT ran?)')
    check(not os.path.exists(state_file(d, 'volatilestate')), 'a volatile state was written after SHUTDOWN')


# ------------------------------------------------------------ 7. a failed start answers everyone

@test('core/failed-start-answers-queued', labels=ONLY_OURS)
def _(ctx):
    """A state file libtpms cannot start from, though its frame is whole (as
    swtpm writes it: no integrity tag): what waited behind the start gets an
    error reply (not EOF), the log names the file, and the daemon stays up
    for a CMD_INIT once the state is mended."""
    state = ctx.mkdir('bad')
    payload = b'\x00\x03\xab\x36\x47\x23\x00\x03' + b'garbage' * 10 + b'\xab\x36\x47\x23'
    body = struct.pack('>HI', 1, len(payload)) + payload
    with open(os.path.join(state, 'tpm2-00.permall'), 'wb') as f:
        f.write(struct.pack('>BBHHI', 2, 1, 10, 0, 10 + len(body)) + body)
    d = ctx.start(state=state, ready=False, name='bad')
    wait_for(lambda: os.path.exists(d.ctrl_addr) and os.path.exists(d.data_addr), 5)
    data, ctrl = d.data(), d.ctrl()
    try:
        data.send(tpm2.get_random(8))
        ctrl.send(struct.pack('>II', CMD_INIT, 0))
        r = data.read_response(5)
        check(tpm2.rc_of(r) != 0 and len(r) == 10, 'queued GetRandom: %s' % r.hex())
        res, _ = ctrl.read_reply(CMD_INIT, 5)
        check(res != 0, 'INIT after a failed start answered 0')
    finally:
        data.close()
        ctrl.close()
    d.check_alive('after a failed start')
    check('tpm2-00.permall' in d.log() + d.stderr(), 'no message naming tpm2-00.permall')
    # mended (removed: a new TPM is wanted), a CMD_INIT starts the TPM
    os.unlink(os.path.join(state, 'tpm2-00.permall'))
    with d.ctrl() as c:
        check(c.init() == 0, 'INIT after the state was mended')
    d.tpm(tpm2.startup(), what='Startup after the mended INIT')


@test('core/malformed-state-fails-start', labels=ONLY_OURS)
def _(ctx):
    """What can be checked without libtpms is checked before anything
    listens: a malformed state file fails the start with exit 1 naming it."""
    state = ctx.mkdir('bad')
    with open(os.path.join(state, 'tpm2-00.permall'), 'wb') as f:
        f.write(b'\x00\x02' + b'garbage' * 10)
    d = ctx.start(state=state, ready=False, name='bad')
    check(d.wait_exit(5) == 1, 'exit status after a malformed state')
    text = d.log() + d.stderr()
    check(state in text and 'tpm2-00.permall' in text,
          'no message naming the file: %s' % text.strip()[-300:])
    check(not os.path.exists(d.data_addr), 'the data socket was created before the check')


# ------------------------------------------------------------ 9. directory fsync after the rename

@test('core/dir-fsync-failure-keeps-new-state', labels=ONLY_OURS)
def _(ctx):
    """fsync of the directory fails after the rename: the NV write succeeds
    (the new file is in place) and the failure is logged; fsync of the temp
    file fails: the write fails and the old file is intact.  --durability
    sync, where these happen before the answer (bounded: test_durability)."""
    faults = Faults(ctx)
    d = start_faulty(ctx, faults, extra=('--durability', 'sync'))
    faults.set(fsync_dir='EIO')
    define_nv(d)
    expect_nv(d)
    check('fsync directory' in d.log(), 'the failed directory fsync was not logged')
    before = read_file(state_file(d))
    faults.set(fsync_file='EIO')
    r = d.tpm(tpm2.nv_write(0x01500020, b'lost write'), expect_rc=None)
    check(tpm2.rc_of(r) != 0, 'NV_Write answered 0 although the state could not be written')
    check(read_file(state_file(d)) == before, 'permall changed by a failed store')
    check(not [n for n in os.listdir(d.state_dir) if n.startswith('TMP')], 'temp file left behind')
    faults.set(rename='EIO')
    r = d.tpm(tpm2.nv_write(0x01500020, b'lost write'), expect_rc=None)
    check(tpm2.rc_of(r) != 0, 'NV_Write answered 0 although the rename failed')
    check(read_file(state_file(d)) == before, 'permall changed by a failed rename')
    faults.set()
    d.check_alive('after storage faults')


# ------------------------------------------------------------ accept and memory faults

@test('core/accept-emfile-pauses-then-serves', labels=ONLY_OURS)
def _(ctx):
    faults = Faults(ctx)
    d = start_faulty(ctx, faults)
    faults.set(accept='EMFILE:3')
    t0 = time.monotonic()
    with d.ctrl(3) as c:
        c.caps()
    check(time.monotonic() - t0 < 2, 'ctrl served only after %.1f s' % (time.monotonic() - t0))
    check('pausing' in d.log(), 'EMFILE was not logged')
    d.tpm(tpm2.get_random(8))


@test('core/out-of-memory-queueing-answers', labels=ONLY_OURS)
def _(ctx):
    """No memory to queue a command (it waits behind a LOCK_STORAGE, so
    libtpms allocates nothing meanwhile): an error reply, the daemon alive."""
    faults = Faults(ctx)
    state = ctx.mkdir('shared')
    fd = os.open(os.path.join(state, '.lock'), os.O_RDWR | os.O_CREAT, 0o660)
    fcntl.lockf(fd, fcntl.LOCK_EX)
    d = start_faulty(ctx, faults, flags=None, state=state, extra=['--migration', 'incoming'])
    big = tpm2.command(0x18B, b'\0' * 3000)        # 3 KiB: queued, so copied
    with d.ctrl() as lock, d.data() as data:
        data.transact(big)                          # grows the connection's buffers first
        lock.send(struct.pack('>II', CMD_LOCK_STORAGE, 300))
        time.sleep(0.1)
        faults.set(malloc_min=2048)
        data.send(big)
        r = data.read_response(5)
        check(len(r) == 10 and tpm2.rc_of(r) != 0, 'queued command without memory: %s' % r.hex())
        faults.set()
        with d.ctrl() as c:
            c.caps()                                # answered at once; the shim reads the cleared file
        os.close(fd)
        res, _ = lock.read_reply(CMD_LOCK_STORAGE, 5)
        check(res == 0, 'LOCK_STORAGE once the lock is free: 0x%x' % res)
        check(lock.init() == 0, 'INIT')
    d.tpm(tpm2.startup(), what='Startup')
    d.tpm(tpm2.get_random(8))


@test('core/accept-burst-all-served', labels=ONLY_OURS)
def _(ctx):
    """200 ctrl connections held open at once: all are accepted and answered
    (swtpm serves one ctrl client at a time, by design)."""
    d = ctx.start()
    socks = []
    try:
        for _ in range(200):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(d.ctrl_addr)      # blocking: waits for room in the backlog
            s.settimeout(5)
            socks.append(s)
        for s in socks:
            s.sendall(struct.pack('>I', CMD_GET_CAPABILITY))
        for i, s in enumerate(socks):
            got = b''
            while len(got) < 8:
                chunk = s.recv(8 - len(got))
                check(chunk, 'connection %d closed without a reply' % i)
                got += chunk
    finally:
        for s in socks:
            s.close()


# ------------------------------------------------------------ 10. one data channel

@test('core/set-datafd-refused-with-server-client')
def _(ctx):
    """--server holds the data slot: SET_DATAFD is 0x1f, with a data client connected or not."""
    d = ctx.start()
    with d.data() as data:
        data.transact(tpm2.get_random(8))
        ours, theirs = socket.socketpair()
        try:
            with d.ctrl() as c:
                res, _ = c.request(CMD_SET_DATAFD, fds=[theirs.fileno()])
            check(res == TPM_IOERROR, 'SET_DATAFD with a --server client connected: 0x%x' % res)
        finally:
            ours.close()
            theirs.close()
        data.transact(tpm2.get_random(8))


# ------------------------------------------------------------ 11. SET_LOCALITY framing per connection

@test('core/locality-one-byte-pipelined', labels=ONLY_OURS)
def _(ctx):
    """A 1-byte SET_LOCALITY with INIT right behind it in one write: both are
    answered (the INIT's code is not taken for padding)."""
    d = ctx.start(flags=None)
    with d.ctrl() as c:
        c.send(struct.pack('>IB', CMD_SET_LOCALITY, 0) + struct.pack('>II', CMD_INIT, 0))
        check(c.read_reply(CMD_SET_LOCALITY)[0] == 0, 'SET_LOCALITY')
        check(c.read_reply(CMD_INIT)[0] == 0, 'INIT behind a 1-byte SET_LOCALITY')
        c.no_more()
    d.tpm(tpm2.startup(), what='Startup')


@test('core/locality-padding-in-a-later-write',
      xfail_swtpm=(None, 'padding that arrives after the 1-byte SET_LOCALITY is read as a message of code 0'))
def _(ctx):
    """QEMU's 4-byte SET_LOCALITY whose padding arrives in a later write,
    then GET_CAPABILITY: one reply each, nothing taken for a message."""
    d = ctx.start()
    with d.ctrl() as c:
        c.send(struct.pack('>IB', CMD_SET_LOCALITY, 0))
        check(c.read_reply(CMD_SET_LOCALITY)[0] == 0, 'SET_LOCALITY')
        time.sleep(0.1)
        c.send(b'\0\0\0' + struct.pack('>I', CMD_GET_CAPABILITY))
        c.read_reply(CMD_GET_CAPABILITY)
        c.no_more(0.3)
        c.send(struct.pack('>IB', CMD_SET_LOCALITY, 0) + b'\0\0\0')
        check(c.read_reply(CMD_SET_LOCALITY)[0] == 0, 'second SET_LOCALITY')
        c.no_more(0.3)


# ------------------------------------------------------------ 8. a cancel in the hand-off window

@test('core/cancel-before-libtpms-starts-the-command', labels=ONLY_OURS)
def _(ctx):
    """The worker is slow to reach libtpms after taking the job (the shim
    delays its first unlock by 300 ms); a cancel sent in that window must
    still cancel the key generation, which libtpms starts by clearing the flag."""
    from harness import CMD_CANCEL_TPM_CMD
    from test_better import rsa_primary
    faults = Faults(ctx)
    d = start_faulty(ctx, faults)
    d.tpm(tpm2.get_random(8), what='warm-up GetRandom')
    with d.data() as data, d.ctrl() as ctrl:
        faults.set(thread_unlock_delay=300)
        ctrl.caps()                             # the shim reads the new setting
        data.send(rsa_primary(3072))
        time.sleep(0.1)
        res, _ = ctrl.request(CMD_CANCEL_TPM_CMD)
        check(res == 0, 'CANCEL_TPM_CMD: 0x%x' % res)
        r = data.read_response(60)
        check(tpm2.rc_of(r) == 0x909, 'RSA-3072 CreatePrimary after a cancel in the hand-off window: rc 0x%x '
              '(expected TPM_RC_CANCELED 0x909)' % tpm2.rc_of(r))
    d.tpm(tpm2.get_random(8), what='GetRandom after the cancelled command')


# ------------------------------------------------------------ a unix socket seen before it listens

@test('core/unix-socket-listens-once-visible',
      xfail_swtpm=(None, 'binds the path, then listens: a connect in between is refused'))
def _(ctx):
    """libvirt connects as soon as the socket file exists: with listen()
    held back 400 ms by the shim, a connect at first sight must succeed
    (the file appears only once it listens), not get ECONNREFUSED."""
    faults = Faults(ctx)
    faults.set(listen_delay=400)
    d = ctx.start(ctx.kind, env=faults.env(), ready=False)
    check(wait_for(lambda: os.path.exists(d.ctrl_addr) or not d.alive(), 10), 'no ctrl socket within 10 s')
    d.check_alive('before its ctrl socket appeared')
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        s.connect(d.ctrl_addr)
    except OSError as e:
        raise Fail('connect as soon as %s exists: %s' % (d.ctrl_addr, e))
    finally:
        s.close()
    d.wait_ready()
    check(sorted(f for f in os.listdir(ctx.tmp) if f.endswith('~')) == [],
          'temporary socket names left behind')


def _set_locality_inband(loc, tag=0x8002, short=False):
    """The vtpm-proxy driver's in-band SetLocality (0x20001000): tag, size 11, one byte."""
    body = b'' if short else bytes([loc])
    return struct.pack('>HII', tag, 10 + len(body), 0x20001000) + body


@test('core/inband-set-locality',
      xfail_swtpm=('rc', 'a locality of 5 is refused with 0x107, not TPM_RC_LOCALITY (0x907)'))
def _(ctx):
    """--locality allow-set-locality: the in-band SetLocality is answered by
    the daemon (libtpms never sees it) and sets the locality of the data
    channel's later commands: PCR 17 can be extended at locality 3, not 0
    (TPM_RC_LOCALITY 0x907).  A locality of 5 is refused with
    TPM_RC_LOCALITY and changes nothing; a request without its byte gets
    TPM_RC_INSUFFICIENT."""
    d = ctx.start(extra=['--locality', 'allow-set-locality'])
    with d.data() as c:
        def rc(cmd):
            return tpm2.parse_header(c.transact(cmd))[2]
        check(rc(tpm2.pcr_extend(17)) == 0x907, 'PCR 17 extended at the default locality 0')
        check(rc(_set_locality_inband(3)) == 0, 'SetLocality(3) refused')
        check(rc(tpm2.pcr_extend(17)) == 0, 'PCR 17 not extended after SetLocality(3)')
        check(rc(_set_locality_inband(0, tag=0x8001)) == 0, 'SetLocality(0) with tag NO_SESSIONS refused')
        check(rc(tpm2.pcr_extend(17)) == 0x907, 'PCR 17 extended after SetLocality(0)')
        check(rc(_set_locality_inband(3)) == 0, 'SetLocality(3) refused')
        r = rc(_set_locality_inband(5))
        check(r == 0x907, 'SetLocality(5): rc 0x%x, expected TPM_RC_LOCALITY 0x907' % r, 'rc')
        check(rc(tpm2.pcr_extend(17)) == 0, 'a refused SetLocality(5) changed the locality')
        r = rc(_set_locality_inband(0, short=True))
        check(r == 0x9a, 'SetLocality without its byte: rc 0x%x, expected TPM_RC_INSUFFICIENT 0x9a' % r)
        check(rc(tpm2.get_random(8)) == 0, 'GetRandom after the in-band requests')
