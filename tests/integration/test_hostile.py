"""Hostile input on the ctrl and data sockets and garbage state blobs.

Each gets a clear error response or a closed connection (an incomplete
message may also just wait, without blocking anyone), never a crash, a hang
or lost state.  After each: the daemon is alive, the NV index written before
still reads back, and the fd count is unchanged after 500 ctrl
connect/close cycles.
"""
import os
import random
import socket
import struct
import time

import tpm2
from harness import (test, check, Fail, OURS, SWTPM, Ctrl, Data, define_nv, expect_nv, health, ctrl_cycles,
                     CMD_GET_CAPABILITY, CMD_INIT, CMD_SET_LOCALITY, CMD_HASH_START, CMD_HASH_DATA,
                     CMD_GET_STATEBLOB, CMD_SET_STATEBLOB, CMD_STOP, CMD_GET_INFO, CMD_SET_DATAFD,
                     CMD_RESET_TPMESTABLISHED, BLOB_PERMANENT, BLOB_VOLATILE)

LEAK = ('fd-leak', 'leaks one .lock fd per SET_STATEBLOB and per CMD_INIT (the hostile part itself passed)')


def garbage(n, seed):
    """Deterministic random bytes in which no 4-byte window is a valid ctrl
    code (1..0x13), so no alignment of the stream can issue e.g. SHUTDOWN."""
    rnd = random.Random(seed)
    while True:
        b = bytearray(rnd.randbytes(n))
        bad = [i for i in range(n - 3) if int.from_bytes(b[i:i + 4], 'big') <= 0x13]
        for i in bad:
            b[i] = 0xa5
        if all(int.from_bytes(b[i:i + 4], 'big') > 0x13 for i in range(n - 3)):
            return bytes(b)


def u32(*v):
    return struct.pack('>%dI' % len(v), *v)


def outcome(conn, expect, what, quiet=0.6):
    """Reads what the daemon answers until `quiet` seconds pass without a byte.
    expect: 'error' = exactly one non-zero 4-byte result, or a close;
            'pending' = nothing yet (an incomplete message), an error, or a close;
            'results' = any sequence of 4-byte results, or a close."""
    data, closed = conn.recv_any(quiet)
    if expect == 'error':
        check(closed or (len(data) == 4 and data != b'\0\0\0\0'),
              '%s: expected one error result or a close, got %s%s' % (what, data[:40].hex() or 'nothing',
                                                                      ' (closed)' if closed else ''))
    elif expect == 'pending':
        check(closed or not data or (len(data) == 4 and data != b'\0\0\0\0'),
              '%s: expected to wait, an error or a close, got %s' % (what, data[:40].hex()))
    elif expect == 'results':
        check(closed or len(data) % 4 == 0, '%s: %d bytes are not 4-byte results' % (what, len(data)))
    return data, closed


def others_served(d, what):
    """While a hostile ctrl client is still connected, another one is served."""
    with d.ctrl() as c:
        c.send(u32(CMD_GET_CAPABILITY))
        c.recv_exact(8, 2.0, ' GET_CAPABILITY of another client while %s' % what)


def hostile(name, xfail_swtpm=None):
    """Registers a hostile-input check: fn(ctx, d) sends the input."""
    def deco(fn):
        def run(ctx):
            d = ctx.start()
            define_nv(d)
            base = d.stable_fd_count()
            fn(ctx, d)
            health(d, what='after ' + name)
            ctrl_cycles(d, 500)
            health(d, what='after 500 ctrl connect/close cycles')
            d.expect_fds(base, '%s and 500 ctrl connect/close cycles' % name)
        return test('hostile/' + name, xfail_swtpm=xfail_swtpm)(run)
    return deco


# ------------------------------------------------------------ ctrl channel

@hostile('ctrl/half-code-then-close')
def _(ctx, d):
    with d.ctrl() as c:
        c.send(b'\0\0')


@hostile('ctrl/half-code-held-open')
def _(ctx, d):
    with d.ctrl() as c:
        c.send(b'\0\0')
        outcome(c, 'pending', 'half a command code', 0.7)
        others_served(d, 'one sits on half a code')


@hostile('ctrl/unknown-codes')
def _(ctx, d):
    with d.ctrl() as c:
        for code in (0, 0x14, 0x100, 0xdeadbeef, 0xffffffff):
            c.send(u32(code))
            r = c.recv_exact(4, 2, ' reply to unknown code 0x%x' % code)
            check(r == u32(0x0a), 'unknown code 0x%x: reply %s, expected TPM_BAD_ORDINAL 0000000a' % (code, r.hex()))
        check(c.caps() & 1, 'GET_CAPABILITY after unknown codes')


@hostile('ctrl/init-truncated-payload-held-open')
def _(ctx, d):
    with d.ctrl() as c:
        c.send(u32(CMD_INIT) + b'\0\0')
        outcome(c, 'pending', 'INIT with 2 of 4 payload bytes', 0.7)
        others_served(d, 'one sits on a truncated INIT')


@hostile('ctrl/bad-locality')
def _(ctx, d):
    with d.ctrl() as c:
        for loc in (5, 0xff):
            c.send(u32(CMD_SET_LOCALITY) + bytes([loc]) + b'\0\0\0')
            r = c.recv_exact(4, 2, ' SET_LOCALITY(%d)' % loc)
            check(r == u32(0x3d), 'SET_LOCALITY(%d): %s, expected TPM_BAD_LOCALITY' % (loc, r.hex()))
        c.send(u32(CMD_RESET_TPMESTABLISHED) + b'\x09\0\0\0')
        r = c.recv_exact(4, 2, ' RESET_TPMESTABLISHED(9)')
        check(r == u32(0x3d), 'RESET_TPMESTABLISHED(9): %s' % r.hex())
    check(tpm2.rc_of(d.tpm(tpm2.pcr_extend(17), expect_rc=None)) == 0x907, 'a refused locality was applied')


@hostile('ctrl/oversized-set-locality')
def _(ctx, d):
    with d.ctrl() as c:
        c.send(u32(CMD_SET_LOCALITY) + b'\0' + garbage(5000, 1))
        data, closed = outcome(c, 'results', 'SET_LOCALITY with a 5000-byte payload')
        check(closed or data[:4] == b'\0\0\0\0', 'SET_LOCALITY(0) itself failed: %s' % data[:4].hex())
        check(all(data[i:i + 4] != b'\0\0\0\0' for i in range(4, len(data), 4)),
              'junk after SET_LOCALITY was accepted as a successful command')


@hostile('ctrl/garbage')
def _(ctx, d):
    with d.ctrl() as c:
        c.send(garbage(4096, 2))
        outcome(c, 'results', '4096 garbage bytes')


@hostile('ctrl/hash-data-lying-length')
def _(ctx, d):
    with d.ctrl() as c:
        check(c.request(CMD_HASH_START)[0] == 0, 'HASH_START')
        c.send(u32(CMD_HASH_DATA, 0xffffffff) + b'x' * 100)
        outcome(c, 'pending', 'HASH_DATA claiming 4 GiB')
        others_served(d, 'one claims a 4 GiB HASH_DATA')


@hostile('ctrl/get-stateblob-short-payload')
def _(ctx, d):
    with d.ctrl() as c:
        c.send(u32(CMD_GET_STATEBLOB, 0))
        outcome(c, 'pending', 'GET_STATEBLOB with 4 of 12 payload bytes', 0.7)
        others_served(d, 'one sits on a short GET_STATEBLOB')


@hostile('ctrl/get-info-bad-offset')
def _(ctx, d):
    with d.ctrl() as c:
        c.send(struct.pack('>IQII', CMD_GET_INFO, 1, 100000, 0))
        r = c.recv_exact(4, 2, ' GET_INFO offset 100000')
        check(r == u32(3), 'GET_INFO with offset 100000: %s, expected TPM_BAD_PARAMETER' % r.hex())
        c.send(struct.pack('>IQII', CMD_GET_INFO, 0xffffffffffffffff, 0, 0))
        r = c.recv_exact(4, 2, ' GET_INFO all flags')
        (res,) = struct.unpack('>I', r)
        if res == 0:  # unknown flags ignored: the JSON follows
            tot, length = struct.unpack('>II', c.recv_exact(8, 2))
            c.recv_exact(length, 2)
        check(c.caps() & 1, 'GET_CAPABILITY after GET_INFO')


@hostile('ctrl/set-datafd-refused-fds-not-leaked',
         xfail_swtpm=('datafd-accepted', 'with --server, once the first data client has disconnected SET_DATAFD '
                                         'is accepted and the listening socket leaks (ctrl-socket.md section 5)'))
def _(ctx, d):
    """With --server the data slot is taken: SET_DATAFD is refused whatever it
    carries, and the fds it carried are closed."""
    with open('/dev/null', 'rb') as f:
        for fds in ([], [f.fileno()], [f.fileno(), f.fileno()], [f.fileno()] * 3):
            with d.ctrl() as c:
                res, _ = c.request(CMD_SET_DATAFD, fds=fds or None)
                check(res != 0, 'SET_DATAFD with %d fds accepted while --server serves data' % len(fds),
                      'datafd-accepted')


@hostile('ctrl/set-datafd-bad-fds-without-server',
         xfail_swtpm=('fd-leak', 'a pipe accepted as data fd stays open after its writer closed'))
def _(ctx, d):
    """QEMU-style daemon (no --server): /dev/null, a pipe, several fds in one
    message: refused or dropped on use, never leaked; a socketpair then works."""
    e = ctx.start(server=None, name='noserver')
    base = e.stable_fd_count()
    with e.ctrl() as c:
        with open('/dev/null', 'rb') as f:
            c.request(CMD_SET_DATAFD, fds=[f.fileno()])
        time.sleep(0.1)
        e.check_alive('after SET_DATAFD with /dev/null')
    with e.ctrl() as c:
        r, w = os.pipe()
        c.request(CMD_SET_DATAFD, fds=[r])
        os.close(r)
        os.close(w)
        time.sleep(0.1)
        e.check_alive('after SET_DATAFD with a pipe')
    e.expect_fds(base, 'SET_DATAFD with /dev/null and with a pipe')
    pairs = [socket.socketpair() for _ in range(3)]
    with e.ctrl() as c:
        res, _ = c.request(CMD_SET_DATAFD, fds=[p[1].fileno() for p in pairs])
    for p in pairs:
        p[1].close()
    # whichever was taken (if any), closing ours ends it
    for p in pairs:
        p[0].close()
    e.expect_fds(base, 'SET_DATAFD carrying 3 socketpair fds (result 0x%x), all peers closed' % res)
    with e.ctrl() as c:
        mine, theirs = socket.socketpair()
        res, _ = c.request(CMD_SET_DATAFD, fds=[theirs.fileno()])
        theirs.close()
        check(res == 0, 'SET_DATAFD with a socketpair after bad fds: 0x%x' % res)
        with Data(mine, 'data (socketpair)') as data:
            resp = data.transact(tpm2.get_random(8))
            check(tpm2.rc_of(resp) == 0, 'GetRandom over the socketpair: %s' % resp.hex())
    e.expect_fds(base, 'a good data channel opened and closed')


# ------------------------------------------------------------ state blobs

def blob_case(name, make, xfail=LEAK):
    """STOP, SET_STATEBLOB(garbage), INIT: refused, and nothing lost."""
    @hostile('blob/' + name, xfail_swtpm=xfail)
    def _(ctx, d):
        with d.ctrl() as c:
            res, perm = c.get_blob(BLOB_PERMANENT)
            check(res == 0 and perm, 'GET_STATEBLOB permanent')
            res, vol = c.get_blob(BLOB_VOLATILE)
            check(res == 0 and vol, 'GET_STATEBLOB volatile')
            check(c.stop() == 0, 'STOP')
            btype, blob = make(perm, vol)
            try:
                c.sock.settimeout(10)
                c.sock.sendall(u32(CMD_SET_STATEBLOB, 0, btype, len(blob)) + blob)
            except OSError:
                pass  # the daemon may refuse early and close: fine
            data, closed = c.recv_upto(4, 5.0)
            check(closed or len(data) == 4, 'SET_STATEBLOB of %s: reply %s' % (name, data.hex() or 'none'))
            check(data != b'\0\0\0\0', 'SET_STATEBLOB accepted %s' % name)
        with d.ctrl() as c:
            check(c.init() == 0, 'INIT after a refused blob failed')
        d.tpm(tpm2.startup(), what='Startup after the refused blob')
        expect_nv(d, what=' after a refused %s blob' % name)


blob_case('garbage-permanent', lambda p, v: (BLOB_PERMANENT, garbage(4000, 3)))
blob_case('garbage-volatile', lambda p, v: (BLOB_VOLATILE, garbage(4000, 4)))
blob_case('truncated-permanent', lambda p, v: (BLOB_PERMANENT, p[:len(p) // 2]))
blob_case('truncated-volatile', lambda p, v: (BLOB_VOLATILE, v[:len(v) // 2]))
blob_case('permanent-header-only', lambda p, v: (BLOB_PERMANENT, p[:10]))
blob_case('unknown-type', lambda p, v: (7, p))
blob_case('big-garbage-2MiB', lambda p, v: (BLOB_PERMANENT, garbage(2 << 20, 5)))


@hostile('blob/lying-length-then-close', xfail_swtpm=LEAK)
def _(ctx, d):
    with d.ctrl() as c:
        check(c.stop() == 0, 'STOP')
        c.send(u32(CMD_SET_STATEBLOB, 0, BLOB_PERMANENT, 0x7fffffff) + garbage(1000, 6))
        outcome(c, 'pending', 'SET_STATEBLOB claiming 2 GiB')
        others_served(d, 'one claims a 2 GiB state blob')
    with d.ctrl() as c:
        check(c.init() == 0, 'INIT after the abandoned blob')
    d.tpm(tpm2.startup(), what='Startup after the abandoned blob')


@hostile('blob/while-running')
def _(ctx, d):
    with d.ctrl() as c:
        c.send(u32(CMD_SET_STATEBLOB, 0, BLOB_PERMANENT, 1000) + garbage(1000, 7))
        r = c.recv_exact(4, 2, ' SET_STATEBLOB while running')
        check(r == u32(0x0a), 'SET_STATEBLOB while running: %s, expected TPM_BAD_ORDINAL' % r.hex())
        c.no_more(0.2)
        check(c.caps() & 1, 'GET_CAPABILITY after the refused blob (stream in sync)')


# ------------------------------------------------------------ data channel

@hostile('data/short-then-close')
def _(ctx, d):
    with d.data() as c:
        c.send(b'\x80\x01\0\0\0')


@hostile('data/size-below-header')
def _(ctx, d):
    with d.data() as c:
        c.send(struct.pack('>HII', 0x8001, 5, tpm2.CC_GetRandom))
        data, closed = c.recv_any(1.0)
        check(closed or (len(data) >= 10 and tpm2.rc_of(data) != 0),
              'command with size 5: %s' % (data.hex() or 'no reply and not closed'))


@hostile('data/size-4GiB-held-open')
def _(ctx, d):
    with d.data() as c:
        c.send(struct.pack('>HII', 0x8001, 0xffffffff, tpm2.CC_GetRandom) + b'\0\x08')
        data, closed = c.recv_any(1.0)
        check(closed or not data or (len(data) >= 10 and tpm2.rc_of(data) != 0),
              'command claiming 4 GiB: %s' % data.hex())


@hostile('data/lying-length-then-close')
def _(ctx, d):
    with d.data() as c:
        c.send(struct.pack('>HII', 0x8001, 100, tpm2.CC_GetRandom) + b'\0' * 40)
        time.sleep(0.1)


@hostile('data/garbage')
def _(ctx, d):
    with d.data() as c:
        c.send(garbage(4096, 8))
        c.recv_any(1.0)


@hostile('data/bad-tag')
def _(ctx, d):
    with d.data() as c:
        r = c.transact(struct.pack('>HIIH', 0x1234, 12, tpm2.CC_GetRandom, 8), 2)
        check(tpm2.rc_of(r) != 0, 'bad tag accepted: %s' % r.hex())
        r = c.transact(tpm2.get_random(8), 2)
        check(tpm2.rc_of(r) == 0, 'GetRandom after a bad tag: %s' % r.hex())


@hostile('data/unknown-command-code')
def _(ctx, d):
    with d.data() as c:
        r = c.transact(tpm2.command(0x1ff), 2)
        check(tpm2.rc_of(r) != 0, 'unknown command code accepted: %s' % r.hex())


@hostile('data/truncated-parameters')
def _(ctx, d):
    with d.data() as c:
        full = tpm2.nv_write(0x01500020, b'x' * 16)
        cut = full[:20]
        cut = cut[:2] + struct.pack('>I', len(cut)) + cut[6:]
        r = c.transact(cut, 2)
        check(tpm2.rc_of(r) != 0, 'NV_Write cut to 20 bytes accepted: %s' % r.hex())
        lying = bytearray(tpm2.nv_write(0x01500020, b'x' * 16))
        lying[-20:-18] = b'\xff\xff'  # TPM2B size far beyond the command
        r = c.transact(bytes(lying), 2)
        check(tpm2.rc_of(r) != 0, 'NV_Write with a lying TPM2B size accepted: %s' % r.hex())
    expect_nv(d, what=' after refused NV_Writes')


@hostile('data/not-running-commands', xfail_swtpm=LEAK)
def _(ctx, d):
    with d.ctrl() as c:
        check(c.stop() == 0, 'STOP')
        with d.data() as data:
            for cmd in (tpm2.get_random(8), garbage(64, 9), tpm2.startup()):
                r = data.transact(cmd[:2] + struct.pack('>I', len(cmd)) + cmd[6:], 2)
                check(r == bytes.fromhex('80010000000a00000101'), 'stopped TPM answered %s' % r.hex())
        check(c.init() == 0, 'INIT')
    d.tpm(tpm2.startup())



@hostile('data/oversized-64KiB')
def _(ctx, d):
    """A 64 KiB command (header size honest): a TPM error or a close."""
    big = struct.pack('>HII', 0x8001, 65536, tpm2.CC_GetRandom) + garbage(65526, 10)
    with d.data() as c:
        try:
            c.sock.settimeout(5)
            c.sock.sendall(big)
        except OSError:
            return  # closed on us: fine
        data, closed = c.recv_upto(10, 2.0)
        check(closed or (len(data) == 10 and tpm2.rc_of(data) != 0),
              '64 KiB command: %s' % (data.hex() or 'no reply and not closed'))
