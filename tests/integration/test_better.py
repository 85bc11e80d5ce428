"""Better than swtpm (issue 4): each check must fail on Debian's swtpm 0.7.1
(reported XFAIL with the defect it caught) and pass on ours."""
import os
import re
import struct
import threading
import time

import tpm2
from harness import (test, check, Fail, Timeout, OURS, SWTPM, Ctrl, Data, connect, define_nv, expect_nv,
                     pcr_value, ms, ctrl_cycles,
                     CMD_GET_CAPABILITY, CMD_INIT, CMD_SET_LOCALITY, CMD_SET_BUFFERSIZE, CMD_STOP,
                     CMD_SHUTDOWN, CMD_GET_STATEBLOB, CMD_SET_STATEBLOB, BLOB_PERMANENT, BLOB_VOLATILE)

GETCAP = struct.pack('>I', CMD_GET_CAPABILITY)
FAST_MS = 250  # a reply that takes longer was blocked by someone


def xf(tag, reason):
    return dict(xfail_swtpm=(tag, reason))


# ------------------------------------------------------------ several ctrl clients

@test('better/second-ctrl-client-served-while-first-is-connected',
      **xf('timeout', 'one ctrl client at a time: a second client (swtpm_ioctl) hangs while the first (QEMU) '
                      'stays connected'))
def _two_clients(ctx):
    d = ctx.start()
    first = d.ctrl()
    first.caps()  # QEMU-like: talks once, then keeps the connection open
    with d.ctrl() as second:
        second.send(GETCAP)
        second.recv_exact(8, 1.5, ' GET_CAPABILITY of a second ctrl client')
        check(second.set_locality(0) == 0, 'SET_LOCALITY from the second client failed')
    r = ctx.run(['swtpm_ioctl'] + d.ioctl_addr() + ['-c'], timeout=3)
    check(r.returncode == 0, 'swtpm_ioctl -c while another client is connected: exit %d' % r.returncode)
    # and the first one is still served
    first.send(GETCAP)
    first.recv_exact(8, 1.5, ' GET_CAPABILITY on the first connection')
    # many at once, all served
    conns = [d.ctrl() for _ in range(20)]
    for c in conns:
        c.send(GETCAP)
    for c in conns:
        c.recv_exact(8, 1.5, ' GET_CAPABILITY with 20 clients connected')
        c.close()
    first.close()


@test('better/stalled-ctrl-client-blocks-nobody',
      **xf('blocked', 'a half-sent ctrl message blocks the whole daemon (data channel and every ctrl client) '
                      'for up to 500 ms'))
def _stalled(ctx):
    d = ctx.start()
    define_nv(d)
    staller = d.ctrl()
    staller.send(b'\0\0')  # half a command code, never completed in time
    time.sleep(0.02)
    t0 = time.monotonic()
    with d.data() as data:
        resp = data.transact(tpm2.get_random(8), timeout=5)
    t_data = ms(t0)
    check(tpm2.rc_of(resp) == 0, 'GetRandom during a stalled ctrl client: rc 0x%x' % tpm2.rc_of(resp))
    t0 = time.monotonic()
    with d.ctrl() as other:
        other.caps()
    t_ctrl = ms(t0)
    check(t_data < FAST_MS and t_ctrl < FAST_MS,
          'with a ctrl client stalled mid-message the data channel answered after %.0f ms and another ctrl '
          'client after %.0f ms (limit %d ms)' % (t_data, t_ctrl, FAST_MS), 'blocked')
    # the stalled client can still complete its message
    staller.send(b'\0\x01')
    staller.recv_exact(8, 2, ' GET_CAPABILITY completed after the stall')
    staller.close()
    expect_nv(d)


# ------------------------------------------------------------ ctrl stream framing

@test('better/ctrl-split-set-buffersize',
      **xf('framing', 'SET_BUFFERSIZE is processed after its 4-byte code: a payload 100 ms later gets 0x03 and '
                      'is then parsed as command 0 (desync)'))
def _split_bufsize(ctx):
    d = ctx.start()
    with d.ctrl() as c:
        c.send(struct.pack('>I', CMD_SET_BUFFERSIZE))
        time.sleep(0.1)
        c.send(struct.pack('>I', 0))
        head = c.recv_exact(4, 2, ' SET_BUFFERSIZE result')
        (res,) = struct.unpack('>I', head)
        check(res == 0, 'split SET_BUFFERSIZE(0): result 0x%x' % res, 'framing')
        size, lo, hi = struct.unpack('>III', c.recv_exact(12, 2, ' SET_BUFFERSIZE sizes'))
        check((size, lo, hi) == (4096, 2808, 4096), 'split SET_BUFFERSIZE: sizes %d/%d/%d' % (size, lo, hi))
        c.no_more(0.2)
        check(c.caps() & 1, 'GET_CAPABILITY after the split message')


@test('better/ctrl-coalesced-get-capability',
      **xf('timeout', 'two commands in one write: the second is silently dropped'))
def _coalesced(ctx):
    d = ctx.start()
    with d.ctrl() as c:
        c.send(GETCAP + GETCAP)
        r = c.recv_exact(16, 1.5, ' two GET_CAPABILITY replies')
        check(r[:8] == r[8:], 'the two GET_CAPABILITY replies differ: %s' % r.hex())
        c.no_more(0.2)


@test('better/ctrl-set-locality-padded-then-another-command',
      **xf('timeout', 'QEMU-padded SET_LOCALITY followed by a command in the same write: the command is dropped'))
def _loc_coalesced(ctx):
    d = ctx.start()
    with d.ctrl() as c:
        c.send(struct.pack('>IB3x', CMD_SET_LOCALITY, 3) + GETCAP)
        head = c.recv_exact(4, 1.5, ' SET_LOCALITY result')
        check(head == b'\0\0\0\0', 'SET_LOCALITY(3, padded): %s' % head.hex())
        c.recv_exact(8, 1.5, ' GET_CAPABILITY after the padded SET_LOCALITY')
        c.no_more(0.2)
    check(tpm2.rc_of(d.tpm(tpm2.pcr_extend(17), expect_rc=None)) == 0, 'locality 3 not in effect (PCR 17 extend)')


@test('better/ctrl-stalled-half-message-completes',
      **xf('closed', 'a ctrl message must arrive within 500 ms: after a stall the connection is closed without '
                     'a reply'))
def _half(ctx):
    d = ctx.start()
    with d.ctrl() as c:
        c.send(GETCAP[:2])
        time.sleep(0.7)
        try:
            c.sock.sendall(GETCAP[2:])
        except OSError as e:
            raise Fail('GET_CAPABILITY completed 700 ms later: send failed (%s)' % e, 'closed')
        c.recv_exact(8, 2, ' GET_CAPABILITY completed 700 ms later')
        c.send(struct.pack('>I', CMD_SET_LOCALITY))
        time.sleep(0.7)
        c.send(b'\x03')
        head = c.recv_exact(4, 2, ' SET_LOCALITY whose byte came 700 ms later')
        check(head == b'\0\0\0\0', 'late SET_LOCALITY: %s' % head.hex())
        c.no_more(0.2)
    check(tpm2.rc_of(d.tpm(tpm2.pcr_extend(17), expect_rc=None)) == 0, 'locality 3 not in effect (PCR 17 extend)')


# ------------------------------------------------------------ data channel framing

@test('better/data-command-split-across-writes',
      **xf('framing', 'the data channel ignores the header length: a command split after 10 bytes gets '
                      'TPM_RC_COMMAND_SIZE and the tail desyncs the stream'))
def _data_split(ctx):
    d = ctx.start()
    d.tpm(tpm2.pcr_extend(16))
    expect = pcr_value(d)
    cmd = tpm2.pcr_read(16)
    with d.data() as c:
        c.send(cmd[:10])
        time.sleep(0.05)
        c.send(cmd[10:])
        r = c.read_response(2)
        check(tpm2.rc_of(r) == 0, 'PCR_Read split in two writes: rc 0x%x' % tpm2.rc_of(r), 'framing')
        check(tpm2.parse_pcr_read(r) == expect, 'PCR_Read split in two writes: wrong value')
        r = c.transact(tpm2.get_random(8), 2)
        check(tpm2.rc_of(r) == 0 and len(tpm2.parse_get_random(r)) == 8, 'next command after the split one: %s'
              % r.hex(), 'framing')
        # a byte at a time
        cmd = tpm2.get_random(16)
        for b in cmd:
            c.send(bytes([b]))
            time.sleep(0.002)
        r = c.read_response(2)
        check(tpm2.rc_of(r) == 0 and len(tpm2.parse_get_random(r)) == 16, 'GetRandom sent byte by byte: %s' % r.hex(),
              'framing')


@test('better/data-pipelined-commands',
      **xf('timeout', 'two TPM commands in one write get a single TPM_RC_COMMAND_SIZE reply; both are lost'))
def _pipelined(ctx):
    d = ctx.start()
    with d.data() as c:
        c.send(tpm2.get_random(8) + tpm2.pcr_read(16) + tpm2.get_random(16))
        r1 = c.read_response(1.5)
        r2 = c.read_response(1.5)
        r3 = c.read_response(1.5)
        check(tpm2.rc_of(r1) == 0 and len(tpm2.parse_get_random(r1)) == 8, 'first pipelined reply: %s' % r1.hex())
        check(tpm2.rc_of(r2) == 0 and tpm2.parse_pcr_read(r2) == b'\0' * 32, 'second pipelined reply: %s' % r2.hex())
        check(tpm2.rc_of(r3) == 0 and len(tpm2.parse_get_random(r3)) == 16, 'third pipelined reply: %s' % r3.hex())
        c.no_more(0.2)


@test('better/data-oversized-command-then-next-works',
      **xf('desync', 'a command longer than the buffer is consumed as several commands, so the next command '
                     'gets a stale error reply'))
def _oversized(ctx):
    d = ctx.start()
    big = struct.pack('>HII', tpm2.TAG_NO_SESSIONS, 6000, tpm2.CC_GetRandom) + b'\0\x08' + b'\xa5' * 5988
    with d.data() as c:
        c.send(big)
        r = c.read_response(2)
        check(tpm2.rc_of(r) != 0, 'a 6000-byte command succeeded: %s' % r[:16].hex())
        r = c.transact(tpm2.get_random(8), 2)
        check(tpm2.rc_of(r) == 0, 'GetRandom after the oversized command: rc 0x%x (%s)' % (tpm2.rc_of(r), r.hex()),
              'desync')
        check(len(tpm2.parse_get_random(r)) == 8, 'GetRandom after the oversized command: %s' % r.hex(), 'desync')
        c.no_more(0.2)


# ------------------------------------------------------------ fd leaks

@test('better/no-fd-leak-stop-init-cycles',
      **xf('fd-leak', 'leaks one .lock fd per CMD_INIT (QEMU sends one on every reset)'))
def _fd_init(ctx):
    d = ctx.start()
    define_nv(d)
    base = d.stable_fd_count()
    with d.ctrl() as c:
        for i in range(50):
            check(c.stop() == 0, 'STOP %d failed' % i)
            check(c.init() == 0, 'INIT %d failed' % i)
    d.tpm(tpm2.startup())
    expect_nv(d)
    d.expect_fds(base, '50 STOP/INIT cycles')


@test('better/no-fd-leak-save-load-cycles',
      **xf('fd-leak', 'leaks one .lock fd per SET_STATEBLOB and per CMD_INIT'))
def _fd_blobs(ctx):
    d = ctx.start()
    define_nv(d)
    base = d.stable_fd_count()
    with d.ctrl() as c:
        for i in range(20):
            res, perm = c.get_blob(BLOB_PERMANENT)
            check(res == 0 and perm, 'GET_STATEBLOB permanent %d: 0x%x' % (i, res))
            res, vol = c.get_blob(BLOB_VOLATILE)
            check(res == 0 and vol, 'GET_STATEBLOB volatile %d: 0x%x' % (i, res))
            check(c.stop() == 0, 'STOP %d' % i)
            check(c.set_blob(BLOB_PERMANENT, perm) == 0, 'SET_STATEBLOB permanent %d' % i)
            check(c.set_blob(BLOB_VOLATILE, vol) == 0, 'SET_STATEBLOB volatile %d' % i)
            check(c.init() == 0, 'INIT %d' % i)
    expect_nv(d, what=' after 20 save/load cycles')
    d.expect_fds(base, '20 save/load cycles')


@test('ctrl/no-fd-leak-connect-close-cycles')
def _fd_connect(ctx):
    d = ctx.start()
    base = d.stable_fd_count()
    ctrl_cycles(d, 500)
    for _ in range(100):
        with d.data():
            pass
    for _ in range(100):
        with d.ctrl() as c:
            c.caps()
    d.expect_fds(base, '500 ctrl connect/close, 100 data connect/close, 100 ctrl requests')
    d.tpm(tpm2.get_random(8))


# ------------------------------------------------------------ DA counter on abrupt reset

def use_da_auth(ctx, d):
    """Creates a key with an auth value under an ordinary (DA-protected) parent
    and uses that auth once (tpm2_sign -p)."""
    p = ctx.path
    with open(p('msg'), 'wb') as f:
        f.write(b'da')
    ctx.tools(d, 'tpm2_createprimary', '-C', 'o', '-G', 'ecc', '-c', p('prim.ctx'))
    ctx.tools(d, 'tpm2_flushcontext', '-t')
    ctx.tools(d, 'tpm2_create', '-C', p('prim.ctx'), '-G', 'ecc', '-p', 'secret', '-u', p('k.pub'), '-r', p('k.priv'))
    ctx.tools(d, 'tpm2_flushcontext', '-t')
    ctx.tools(d, 'tpm2_load', '-C', p('prim.ctx'), '-u', p('k.pub'), '-r', p('k.priv'), '-c', p('k.ctx'))
    ctx.tools(d, 'tpm2_flushcontext', '-t')
    ctx.tools(d, 'tpm2_sign', '-c', p('k.ctx'), '-p', 'secret', '-g', 'sha256', '-o', p('sig'), p('msg'))
    ctx.tools(d, 'tpm2_flushcontext', '-t')


def lockout_counter(ctx, d):
    out = ctx.tools(d, 'tpm2_getcap', 'properties-variable').stdout.decode()
    m = re.search(r'TPM2_PT_LOCKOUT_COUNTER:\s*(0x[0-9a-fA-F]+|\d+)', out)
    check(m is not None, 'tpm2_getcap properties-variable has no TPM2_PT_LOCKOUT_COUNTER: %r' % out[:300])
    return int(m.group(1), 0)


def da_reset(ctx, flags):
    d = ctx.start(flags=flags)
    check(lockout_counter(ctx, d) == 0, 'lockout counter not 0 on a fresh TPM')
    use_da_auth(ctx, d)
    check(lockout_counter(ctx, d) == 0, 'lockout counter rose on a correct password')
    # abrupt reset: CMD_INIT without TPM2_Shutdown, as QEMU sends on a VM reset
    check(d.ctrl_cmd(CMD_INIT, b'\0\0\0\0')[0] == 0, 'CMD_INIT failed')
    d.tpm(tpm2.startup(), what='Startup after CMD_INIT')
    return lockout_counter(ctx, d)


@test('better/abrupt-reset-does-not-raise-da-lockout-counter',
      **xf('da', 'CMD_INIT without a prior TPM2_Shutdown counts as a DA failure (no automatic TPM2_Shutdown)'))
def _da(ctx):
    n = da_reset(ctx, 'not-need-init,startup-clear')
    check(n == 0, 'TPM2_PT_LOCKOUT_COUNTER is %d after CMD_INIT without TPM2_Shutdown' % n, 'da')


@test('better/ctrl-shutdown-does-not-raise-da-lockout-counter',
      **xf('da', 'CMD_SHUTDOWN (QEMU quitting) without TPM2_Shutdown counts as a DA failure at the next start'))
def _da_exit(ctx):
    d = ctx.start()
    use_da_auth(ctx, d)
    check(d.ctrl_cmd(CMD_SHUTDOWN)[0] == 0, 'CMD_SHUTDOWN failed')
    check(d.wait_exit(5) == 0, 'no clean exit after CMD_SHUTDOWN')
    d = ctx.start(state=d.state_dir)
    n = lockout_counter(ctx, d)
    check(n == 0, 'TPM2_PT_LOCKOUT_COUNTER is %d after CMD_SHUTDOWN and a restart' % n, 'da')


@test('ours-only/disable-auto-shutdown-opts-out (swtpm 0.7.1 lacks the flag)', labels=(OURS,))
def _da_optout(ctx):
    n = da_reset(ctx, 'not-need-init,startup-clear,disable-auto-shutdown')
    check(n == 1, 'with disable-auto-shutdown the abrupt reset should count (as swtpm 0.7.1): counter %d' % n)


# ------------------------------------------------------------ ctrl compatibility (pass on both)

@test('ctrl/set-locality-1-byte')
def _loc1(ctx):
    """tpm2-tss sends SET_LOCALITY with a 1-byte payload."""
    d = ctx.start()
    with d.ctrl() as c:
        c.send(struct.pack('>IB', CMD_SET_LOCALITY, 3))
        r = c.recv_exact(4, 2, ' SET_LOCALITY(3), 1 byte')
        check(r == b'\0\0\0\0', 'SET_LOCALITY(3) with 1 byte: %s' % r.hex())
        c.no_more(0.3)
        check(c.caps() & 1, 'GET_CAPABILITY after it on the same connection')
    check(tpm2.rc_of(d.tpm(tpm2.pcr_extend(17), expect_rc=None)) == 0, 'locality 3 not in effect (PCR 17 extend)')


@test('ctrl/set-locality-4-byte-qemu-padding')
def _loc4(ctx):
    """QEMU sends SET_LOCALITY as code + `LL 00 00 00`: one reply, padding consumed."""
    d = ctx.start()
    with d.ctrl() as c:
        c.send(struct.pack('>IB3x', CMD_SET_LOCALITY, 3))
        r = c.recv_exact(4, 2, ' SET_LOCALITY(3), padded')
        check(r == b'\0\0\0\0', 'SET_LOCALITY(3) padded: %s' % r.hex())
        c.no_more(0.3)
        check(c.caps() & 1, 'GET_CAPABILITY after it on the same connection')
        c.send(struct.pack('>IB3x', CMD_SET_LOCALITY, 0))
        check(c.recv_exact(4, 2) == b'\0\0\0\0', 'SET_LOCALITY(0) padded')
        c.no_more(0.3)
    check(tpm2.rc_of(d.tpm(tpm2.pcr_extend(17), expect_rc=None)) == 0x907, 'locality 0 not in effect')


@test('ctrl/locality-sticky-across-init-and-reconnect')
def _loc_sticky(ctx):
    """QEMU caches the locality: it must survive STOP/INIT and reconnects."""
    d = ctx.start()
    with d.ctrl() as c:
        check(c.set_locality(3, pad=True) == 0, 'SET_LOCALITY(3)')
    with d.ctrl() as c:
        check(c.stop() == 0 and c.init() == 0, 'STOP/INIT')
    d.tpm(tpm2.startup())
    check(tpm2.rc_of(d.tpm(tpm2.pcr_extend(17), expect_rc=None)) == 0,
          'locality 3 lost across INIT and a new ctrl connection (PCR 17 extend refused)')


# ------------------------------------------------------------ long commands and CANCEL_TPM_CMD

def rsa_primary(bits=3072):
    """CreatePrimary of an RSA storage key with a random unique (a real key generation)."""
    attrs = (1 << 1) | (1 << 4) | (1 << 5) | (1 << 6) | (1 << 16) | (1 << 17)
    t = struct.pack('>HHI', 0x0001, tpm2.ALG_SHA256, attrs) + tpm2.tpm2b(b'')
    t += struct.pack('>HHHH', tpm2.ALG_AES, 128, tpm2.ALG_CFB, tpm2.ALG_NULL) + struct.pack('>HI', bits, 0)
    t += tpm2.tpm2b(os.urandom(16))
    body = (struct.pack('>I', tpm2.RH_OWNER) + tpm2.pw_auth() + tpm2.tpm2b(tpm2.tpm2b(b'') + tpm2.tpm2b(b''))
            + tpm2.tpm2b(t) + tpm2.tpm2b(b'') + struct.pack('>I', 0))
    return tpm2.command(tpm2.CC_CreatePrimary, body, tpm2.TAG_SESSIONS)


def cancel_keygen(data, ctrl, tries=6):
    """Starts RSA-3072 key generations and cancels each 10 ms later: returns
    [(cancel result, cancel reply ms, CreatePrimary rc, CreatePrimary ms)]."""
    from harness import CMD_CANCEL_TPM_CMD
    seen = []
    for _ in range(tries):
        t0 = time.monotonic()
        data.send(rsa_primary())
        time.sleep(0.01)
        t1 = time.monotonic()
        res = ctrl.request(CMD_CANCEL_TPM_CMD)[0]
        t_cancel = ms(t1)
        r = data.read_response(30)
        rc = tpm2.rc_of(r)
        seen.append((res, t_cancel, rc, ms(t0)))
        if rc == 0:
            data.transact(tpm2.flush_context(struct.unpack('>I', r[10:14])[0]))
        elif rc == 0x909:
            break
    return seen


def check_cancelled(seen, how):
    check(all(s[0] == 0 for s in seen), 'CANCEL_TPM_CMD failed: %s' % ', '.join(
        'result 0x%x after %.1f ms' % (s[0], s[1]) for s in seen))
    check(any(s[2] == 0x909 for s in seen),
          '%s: no RSA-3072 CreatePrimary was cancelled (TPM_RC_CANCELED) in %d tries: %s' % (
              how, len(seen), ', '.join('cancel after %.0f ms, rc 0x%x after %.0f ms' % (s[1], s[2], s[3])
                                        for s in seen)), 'cancel')


@test('better/cancel-interrupts-key-generation',
      **xf('cancel', 'one thread: CANCEL_TPM_CMD is answered only after the key generation it should cancel'))
def _cancel(ctx):
    d = ctx.start()
    d.tpm(tpm2.get_random(8), what='warm-up GetRandom')  # start-up done (ctrl/cancel-right-after-start tests that)
    with d.data() as data, d.ctrl() as ctrl:
        check_cancelled(cancel_keygen(data, ctrl), '--server data channel')
    d.tpm(tpm2.get_random(8), what='GetRandom after the cancelled command')


@test('better/cancel-interrupts-key-generation-qemu-session',
      **xf('cancel', 'one thread: CANCEL_TPM_CMD is answered only after the key generation it should cancel'))
def _cancel_qemu(ctx):
    from test_qemu import Session
    s = Session(ctx, ctx.kind, 'vm')
    s.start()
    check_cancelled(cancel_keygen(s.data, s.ctrl), 'QEMU session (data by SET_DATAFD)')
    s.tpm(tpm2.get_random(8), what='GetRandom after the cancelled command')


@test('better/ctrl-answered-during-key-generation',
      **xf('blocked', 'one thread: a long TPM command blocks every ctrl reply (incl. the SET_LOCALITY QEMU sends '
                      'before each command)'))
def _ctrl_during_keygen(ctx):
    d = ctx.start()
    samples = []
    with d.data() as data:
        for _ in range(6):
            t0 = time.monotonic()
            data.send(rsa_primary())
            time.sleep(0.005)
            with d.ctrl() as c:
                c.send(GETCAP)
                c.recv_exact(8, 5, ' GET_CAPABILITY during a key generation')
                t_ctrl = ms(t0)
            r = data.read_response(30)
            t_data = ms(t0)
            check(tpm2.rc_of(r) == 0, 'CreatePrimary RSA-3072: rc 0x%x' % tpm2.rc_of(r))
            data.transact(tpm2.flush_context(struct.unpack('>I', r[10:14])[0]))
            if t_data > 40:  # long enough to tell
                samples.append((t_ctrl, t_data))
            if len(samples) >= 3:
                break
    check(samples, 'no key generation took over 40 ms: cannot tell')
    slow = [s for s in samples if s[0] > s[1] - 10]
    check(not slow, 'ctrl answered only when the key generation ended: %s' % ', '.join(
        'ctrl after %.0f ms, CreatePrimary after %.0f ms' % s for s in samples), 'blocked')
