"""The TCG/Microsoft simulator's command framing on the data channel
(`tpm-send-command-header`): what tpm2-tss's mssim TCTI speaks.

A TPM 2 command may come as u32 8 (TPM_SEND_COMMAND), u8 locality, u32
size, command; the response then goes back as u32 size, response, u32 0.
The TCTI also sends platform commands (MS_SIM_POWER_ON 1, MS_SIM_NV_ON 11)
to port+1 and wants 4 zero bytes for each.  swtpm has no platform port:
GnuTLS's and swtpm's own test suites run `swtpm socket --server
type=tcp,port=P` without a TCP ctrl and let ncat answer zeros on P+1
(FakePlatform below).  A ctrl channel on P+1 is not one: its reply to
code 1 (GET_CAPABILITY) is 8 bytes, and the TCTI takes the last 4 as its
failed answer to MS_SIM_NV_ON.

Our rule for the prefix's locality: it goes through the core's locality
rules (> 4, or 4 with reject-locality-4: TPM_RC_LOCALITY, not run) and
applies to that command only.  swtpm takes it unchecked and makes it the
process's locality for every later command.
"""
import hashlib
import os
import socket
import struct
import threading
import time

import tpm2
from harness import (test, check, Fail, OURS, Conn, Data, connect, free_port_pair, need_tool, wait_for, parse_json_line,
                     CMD_GET_CAPABILITY)

SEND_COMMAND = 8
SESSION_END = 20
MS_SIM_POWER_ON = 1
MS_SIM_NV_ON = 11
RC_LOCALITY = 0x907
CAP_SEND_COMMAND_HEADER = 1 << 15
NV_INDEX = 0x01500021
# Extends of PCRs 17, 19, 20, 21 allowed (libtpms's PC client table) -> the locality a command ran at.
FINGERPRINT = {(False, False, False, False): 0, (False, False, True, False): 1, (True, True, True, True): 2,
               (True, True, True, False): 3, (True, False, False, False): 4}


LEAK = 'locality-leak'
UNCHECKED = 'locality-unchecked'
DESYNC = 'desync'


def xf(tag, reason):
    return dict(xfail_swtpm=(tag, reason))


def prefix(cmd, locality=0, size=None):
    return struct.pack('>IBI', SEND_COMMAND, locality, len(cmd) if size is None else size)


class Mssim(Conn):
    """A client of the data channel in the simulator's framing."""

    @classmethod
    def to(cls, addr, what='mssim', timeout=5.0):
        return super().to(addr, what, timeout)

    def read_reply(self, timeout=5.0):
        (size,) = struct.unpack('>I', self.recv_exact(4, timeout, ' mssim response size'))
        check(10 <= size <= 65536, '%s: mssim response size %d' % (self.what, size))
        resp = self.recv_exact(size, timeout, ' mssim response')
        check(tpm2.parse_header(resp)[1] == size, '%s: response header size %d in a frame of %d'
              % (self.what, tpm2.parse_header(resp)[1], size))
        trailer = self.recv_exact(4, timeout, ' mssim trailer')
        check(trailer == b'\0\0\0\0', '%s: trailer %s, expected 00000000' % (self.what, trailer.hex()))
        return resp

    def transact(self, cmd, locality=0, timeout=10.0):
        self.send(prefix(cmd, locality) + cmd)
        return self.read_reply(timeout)


def rc(resp):
    return tpm2.rc_of(resp)


def locality_of(run, what):
    """The locality commands sent through run(cmd) -> response run at, from which PCR extends pass."""
    rcs = [rc(run(tpm2.pcr_extend(p))) for p in (17, 19, 20, 21)]
    check(all(r in (0, RC_LOCALITY) for r in rcs), '%s: PCR_Extend rcs %s' % (what, ['0x%x' % r for r in rcs]))
    key = tuple(r == 0 for r in rcs)
    check(key in FINGERPRINT, '%s: PCR extends allowed %s match no locality' % (what, key))
    return FINGERPRINT[key]


def expect_closed_or_quiet(conn, what, timeout=1.0):
    extra, closed = conn.recv_any(timeout)
    check(not extra, '%s: bytes after the error reply: %s' % (what, extra[:32].hex()))
    return closed


class FakePlatform:
    """The simulator's platform port as GnuTLS's test suite fakes it with ncat:
    every 4-byte platform command gets 4 zero bytes."""

    def __init__(self, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(('127.0.0.1', port))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.codes = []
        self.stop = False
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            with c:
                c.settimeout(5)
                buf = b''
                try:
                    while True:
                        chunk = c.recv(64)
                        if not chunk:
                            break
                        buf += chunk
                        while len(buf) >= 4:
                            self.codes.append(struct.unpack('>I', buf[:4])[0])
                            buf = buf[4:]
                            c.sendall(b'\0\0\0\0')
                except OSError:
                    pass

    def close(self):
        self.stop = True
        self.thread.join(2)
        self.sock.close()


def start_tcp(ctx, **kw):
    """A daemon with --server on TCP port P and the ctrl on P+1 (swtpm TCTI's layout)."""
    return ctx.start(ctrl='tcp', server='tcp', **kw)


def start_gnutls_form(ctx):
    """GnuTLS's tests/tpm2.sh: `swtpm socket --tpm2 --flags not-need-init --server
    type=tcp,bindaddr=127.0.0.1,port=P`, a fake platform port on P+1, tpm2_startup -c."""
    port = free_port_pair()
    platform = FakePlatform(port + 1)
    ctx.platforms = getattr(ctx, 'platforms', []) + [platform]
    state = ctx.mkdir('gnutls-state')
    log = ctx.path('gnutls.log')
    argv = ctx.binary(ctx.kind) + ['--tpm2', '--flags', 'not-need-init', '--tpmstate', 'dir=' + state,
                                   '--server', 'type=tcp,bindaddr=127.0.0.1,port=%d' % port,
                                   '--log', 'file=%s,level=2' % log]
    d = ctx.start(argv=argv, ready=False, data_addr=('127.0.0.1', port), name='gnutls')

    def up():
        d.check_alive('at start-up')
        try:
            connect(d.data_addr, 0.2).close()
            return True
        except OSError:
            return False
    check(wait_for(up, 10), '%s: the data port did not listen within 10 s' % d.kind)
    d.platform = platform
    d.mssim_tcti = 'mssim:host=127.0.0.1,port=%d' % port
    tools(ctx, d, 'tpm2_startup', '-c')
    return d


def tools(ctx, d, tool, *args, tcti=None, ok=True, timeout=30):
    need_tool(tool)
    env = dict(os.environ, TPM2TOOLS_TCTI=tcti or d.mssim_tcti)
    r = ctx.run([tool] + list(args), timeout, env)
    if ok:
        check(r.returncode == 0, '%s %s (%s): exit %d: %s' % (tool, ' '.join(args), env['TPM2TOOLS_TCTI'],
                                                            r.returncode, err(r)[-400:]))
    return r


def out(r):
    return r.stdout.decode(errors='replace')


def err(r):
    return r.stderr.decode(errors='replace').strip()


def closing_platforms(fn):
    """Closes the check's fake platform ports, whatever happens."""
    def run(ctx):
        try:
            fn(ctx)
        finally:
            for p in getattr(ctx, 'platforms', []):
                p.close()
    return run


# ------------------------------------------------------------ capability

@test('mssim/print-capabilities-lists-tpm-send-command-header')
def _print_caps(ctx):
    r = ctx.run(ctx.binary(ctx.kind) + ['--tpm2', '--print-capabilities'], timeout=5)
    check(r.returncode == 0, '--print-capabilities: exit %d' % r.returncode)
    feats = parse_json_line(out(r), '--print-capabilities').get('features', [])
    check('tpm-send-command-header' in feats, '"tpm-send-command-header" not among %r' % feats)


@test('mssim/ctrl-capability-bit-tpm2-only')
def _cap_bit(ctx):
    """GET_CAPABILITY bit 15 (PTM_CAP_SEND_COMMAND_HEADER): TPM 2 only, as swtpm (0xffff / 0x7fff)."""
    d = ctx.start()
    with d.ctrl() as c:
        check(c.caps() & CAP_SEND_COMMAND_HEADER, 'TPM 2: GET_CAPABILITY 0x%x lacks bit 15' % c.caps())
    d12 = ctx.start(tpm2_opt=False)
    with d12.ctrl() as c:
        check(not c.caps() & CAP_SEND_COMMAND_HEADER, 'TPM 1.2: GET_CAPABILITY 0x%x has bit 15' % c.caps())


# ------------------------------------------------------------ tpm2-tools over -T mssim

@test('mssim/tools/gnutls-form-startup-getrandom')
@closing_platforms
def _t_getrandom(ctx):
    d = start_gnutls_form(ctx)
    seen = set()
    for _ in range(2):
        hexs = out(tools(ctx, d, 'tpm2_getrandom', '--hex', '8')).strip()
        check(len(hexs) == 16 and all(ch in '0123456789abcdef' for ch in hexs), 'tpm2_getrandom printed %r' % hexs)
        seen.add(hexs)
    check(len(seen) == 2, 'two tpm2_getrandom calls returned the same bytes')
    check(d.platform.codes[:2] == [MS_SIM_POWER_ON, MS_SIM_NV_ON],
          'platform commands seen on port+1: %r' % d.platform.codes)


@test('mssim/tools/gnutls-form-pcrextend-pcrread')
@closing_platforms
def _t_pcr(ctx):
    d = start_gnutls_form(ctx)
    digest = hashlib.sha256(b'mssim').digest()
    tools(ctx, d, 'tpm2_pcrextend', '16:sha256=' + digest.hex())
    expect = hashlib.sha256(b'\0' * 32 + digest).hexdigest().upper()
    got = out(tools(ctx, d, 'tpm2_pcrread', 'sha256:16'))
    check(expect in got.upper(), 'PCR 16 after extend: %r, expected 0x%s' % (got.strip(), expect))


@test('mssim/tools/gnutls-form-nv-define-write-read')
@closing_platforms
def _t_nv(ctx):
    d = start_gnutls_form(ctx)
    data = b'written over the mssim TCTI....'
    with open(ctx.path('nv.in'), 'wb') as f:
        f.write(data)
    tools(ctx, d, 'tpm2_nvdefine', '0x%x' % NV_INDEX, '-C', 'o', '-s', str(len(data)), '-a', 'ownerread|ownerwrite')
    tools(ctx, d, 'tpm2_nvwrite', '0x%x' % NV_INDEX, '-C', 'o', '-i', ctx.path('nv.in'))
    tools(ctx, d, 'tpm2_nvread', '0x%x' % NV_INDEX, '-C', 'o', '-s', str(len(data)), '-o', ctx.path('nv.out'))
    with open(ctx.path('nv.out'), 'rb') as f:
        got = f.read()
    check(got == data, 'NV read back %r, expected %r' % (got, data))


@test('mssim/tools/gnutls-form-create-key')
@closing_platforms
def _t_key(ctx):
    d = start_gnutls_form(ctx)
    p = ctx.path
    tools(ctx, d, 'tpm2_createprimary', '-C', 'o', '-G', 'ecc', '-c', p('prim.ctx'))
    tools(ctx, d, 'tpm2_flushcontext', '-t')
    tools(ctx, d, 'tpm2_create', '-C', p('prim.ctx'), '-G', 'ecc', '-u', p('k.pub'), '-r', p('k.priv'))
    tools(ctx, d, 'tpm2_flushcontext', '-t')
    tools(ctx, d, 'tpm2_load', '-C', p('prim.ctx'), '-u', p('k.pub'), '-r', p('k.priv'), '-c', p('k.ctx'))
    tools(ctx, d, 'tpm2_flushcontext', '-t')
    with open(p('msg'), 'wb') as f:
        f.write(b'signed over mssim')
    tools(ctx, d, 'tpm2_sign', '-c', p('k.ctx'), '-g', 'sha256', '-o', p('sig'), p('msg'))
    tools(ctx, d, 'tpm2_flushcontext', '-t')
    tools(ctx, d, 'tpm2_verifysignature', '-c', p('k.ctx'), '-g', 'sha256', '-m', p('msg'), '-s', p('sig'))


@test('mssim/tools/ctrl-on-port-plus-1-is-not-a-platform-port')
def _t_ctrl_p1(ctx):
    """With the ctrl channel on P+1 it stays the ctrl channel (swtpm_ioctl, the
    swtpm TCTI): the mssim TCTI's MS_SIM_POWER_ON is GET_CAPABILITY there, and
    its init fails at once, never hangs.  The swtpm TCTI and mssim frames on P work."""
    d = start_tcp(ctx)
    r = tools(ctx, d, 'tpm2_getrandom', '8', tcti='mssim:host=127.0.0.1,port=%d' % d.data_addr[1], ok=False,
              timeout=10)
    check(r.returncode != 0 and 'MS_SIM_NV_ON' in err(r),
          'mssim TCTI against a ctrl channel on P+1: exit %d, %r' % (r.returncode, err(r)[-300:]))
    hexs = out(tools(ctx, d, 'tpm2_getrandom', '--hex', '8', tcti=d.tcti())).strip()
    check(len(hexs) == 16, 'tpm2_getrandom -T %s printed %r' % (d.tcti(), hexs))
    with Mssim.to(d.data_addr) as m:
        check(rc(m.transact(tpm2.get_random(8))) == 0, 'mssim-framed GetRandom')


# ------------------------------------------------------------ locality

@test('mssim/locality/explicit-0-to-4')
def _loc_explicit(ctx):
    d = start_tcp(ctx)
    with Mssim.to(d.data_addr) as m:
        for loc in range(5):
            got = locality_of(lambda cmd: m.transact(cmd, loc), 'mssim locality %d' % loc)
            check(got == loc, 'a command framed with locality %d ran at locality %d' % (loc, got))


@test('mssim/locality/applies-to-its-command-only',
      **xf(LEAK, "the prefix's locality becomes the process's: later plain commands (QEMU's, the swtpm "
                 "TCTI's, which set theirs once by CMD_SET_LOCALITY) run at it"))
def _loc_not_sticky(ctx):
    d = start_tcp(ctx)
    with d.ctrl() as c:
        check(c.set_locality(3) == 0, 'SET_LOCALITY(3)')
    with Data.to(d.data_addr) as plain:  # one connection: swtpm serves one data client at a time
        m = Mssim(plain.sock, 'mssim')
        check(rc(m.transact(tpm2.get_random(8), 0)) == 0, 'mssim GetRandom at locality 0')
        got = locality_of(plain.transact, 'plain commands after an mssim frame at locality 0')
        check(got == 3, 'CMD_SET_LOCALITY(3), then an mssim frame at 0: later plain commands run at %d' % got,
              LEAK)
        m.transact(tpm2.get_random(8), 4)
        got = locality_of(m.transact, 'mssim frames at locality 0 after one at 4')
        check(got == 0, 'an mssim frame at 0 after one at 4 ran at %d' % got)


@test('mssim/locality/above-4-refused',
      **xf(UNCHECKED, 'takes any locality byte unchecked (5, 32, 255): libtpms runs the command at it'))
def _loc_above_4(ctx):
    d = start_tcp(ctx)
    with Mssim.to(d.data_addr) as m:
        for loc in (5, 32, 255):
            r = rc(m.transact(tpm2.get_random(8), loc))
            check(r == RC_LOCALITY, 'GetRandom framed with locality %d: rc 0x%x, expected TPM_RC_LOCALITY' % (loc, r),
                  UNCHECKED)
        check(locality_of(m.transact, 'mssim frames at locality 0 after refused ones') == 0, 'locality moved')


@test('mssim/locality/4-with-reject-locality-4-refused',
      **xf(UNCHECKED, '--locality reject-locality-4 refuses CMD_SET_LOCALITY(4) but not a prefix with locality 4: '
                 'the command runs at locality 4'))
def _loc_reject_4(ctx):
    d = start_tcp(ctx, extra=['--locality', 'reject-locality-4'])
    with d.ctrl() as c:
        check(c.set_locality(4) == 0x3d, 'CMD_SET_LOCALITY(4) with reject-locality-4 not refused')
    with Mssim.to(d.data_addr) as m:
        before = tpm2.parse_pcr_read(m.transact(tpm2.pcr_read(17)))
        r = rc(m.transact(tpm2.pcr_extend(17), 4))
        after = tpm2.parse_pcr_read(m.transact(tpm2.pcr_read(17)))
        check(after == before, 'PCR 17 extended by a command framed with locality 4 (rc 0x%x)' % r, UNCHECKED)
        check(r == RC_LOCALITY, 'PCR_Extend framed with locality 4: rc 0x%x, expected TPM_RC_LOCALITY' % r)
        check(locality_of(lambda cmd: m.transact(cmd, 3), 'locality 3 still allowed') == 3, 'locality 3 refused')


@test('mssim/locality/queued-behind-a-key-generation',
      **xf(LEAK, "the prefix's locality becomes the process's: the plain command after it runs at it"))
def _loc_queued(ctx):
    """Commands queued while an RSA key generation runs on the worker keep the
    locality they were sent with: the frame's, and the front's for the rest."""
    from test_better import rsa_primary
    d = start_tcp(ctx)
    with Mssim.to(d.data_addr) as m:
        m.transact(tpm2.get_random(8))  # the TPM is started
    a = Data.to(d.data_addr, 'key generation')
    a.send(rsa_primary(3072))
    b = Mssim.to(d.data_addr, 'mssim at locality 1')
    b.send(prefix(tpm2.pcr_extend(20), 1) + tpm2.pcr_extend(20))
    c = Data.to(d.data_addr, 'plain at the front\'s locality 0')
    c.send(tpm2.pcr_extend(20))
    try:
        check(rc(a.read_response(60)) == 0, 'RSA-3072 CreatePrimary')
        a.close()  # swtpm serves one data client at a time
        check(rc(b.read_reply(10)) == 0, 'PCR 20 extend framed with locality 1 refused')
        b.close()
        r = rc(c.read_response(10))
        check(r == RC_LOCALITY, 'plain PCR 20 extend after an mssim frame at locality 1: rc 0x%x, '
                                'expected TPM_RC_LOCALITY (locality 0)' % r, LEAK)
    finally:
        for conn in (a, b, c):
            conn.close()


@test('mssim/locality/inband-setlocality-in-a-frame')
def _loc_inband(ctx):
    """--locality allow-set-locality: an in-band SetLocality (0x20001000) in a frame
    sets the front's locality, whatever locality its frame carries."""
    d = start_tcp(ctx, extra=['--locality', 'allow-set-locality'])
    set_loc = struct.pack('>HIIB', tpm2.TAG_SESSIONS, 11, 0x20001000, 3)
    with Data.to(d.data_addr) as plain:
        m = Mssim(plain.sock, 'mssim')
        check(rc(m.transact(set_loc, 0)) == 0, 'in-band SetLocality(3) framed with locality 0')
        check(locality_of(plain.transact, 'plain commands after it') == 3, 'the in-band locality 3 not in effect')


# ------------------------------------------------------------ streams

@test('mssim/mixed/plain-then-mssim-same-connection')
def _mixed(ctx):
    d = start_tcp(ctx)
    with Data.to(d.data_addr) as c:
        m = Mssim(c.sock, 'mixed')
        for i in range(2):
            check(rc(c.transact(tpm2.get_random(8))) == 0, 'plain GetRandom %d' % i)
            check(rc(m.transact(tpm2.get_random(8))) == 0, 'mssim GetRandom %d' % i)
        c.no_more()


@test('mssim/mixed/pipelined-in-one-write',
      **xf(DESYNC, 'a read is a command: plain + mssim + plain in one write get one 0x142 reply'))
def _pipelined(ctx):
    d = start_tcp(ctx)
    g = tpm2.get_random(8)
    with Data.to(d.data_addr) as c:
        m = Mssim(c.sock, 'pipelined')
        c.send(g + prefix(g) + g + g + prefix(g, 3) + g)
        check(rc(c.read_response(3)) == 0, 'first (plain) reply', DESYNC)
        check(rc(m.read_reply(3)) == 0, 'second (mssim) reply')
        check(rc(c.read_response(3)) == 0, 'third (plain) reply')
        check(rc(m.read_reply(3)) == 0, 'fourth (mssim, locality 3) reply')
        c.no_more()


@test('mssim/split-prefix-and-command')
def _split(ctx):
    """tpm2-tss writes the 9-byte prefix and the command separately."""
    d = start_tcp(ctx)
    g = tpm2.get_random(8)
    with Mssim.to(d.data_addr) as m:
        m.send(prefix(g))
        time.sleep(0.2)
        m.send(g)
        check(rc(m.read_reply(3)) == 0, 'GetRandom after a separate prefix')


@test('mssim/byte-at-a-time', **xf(DESYNC, 'a read of 10 bytes is a command: prefix + 1 byte is answered as one'))
def _bytewise(ctx):
    d = start_tcp(ctx)
    g = tpm2.get_random(8)
    with Mssim.to(d.data_addr) as m:
        for b in prefix(g) + g:
            m.send(bytes([b]))
            time.sleep(0.01)
        check(rc(m.read_reply(3)) == 0, 'GetRandom sent a byte at a time', DESYNC)
        m.no_more()


@test('mssim/server-disconnect-one-reply')
def _disconnect(ctx):
    """--server ...,disconnect (swtpm's -p): one framed reply, then the close."""
    port = free_port_pair()
    d = ctx.start(ctrl='unix', server='none', extra=['--server', 'type=tcp,bindaddr=127.0.0.1,port=%d,disconnect'
                                                     % port], data_addr=('127.0.0.1', port))
    for _ in range(2):
        with Mssim.to(d.data_addr) as m:
            check(rc(m.transact(tpm2.get_random(8))) == 0, 'GetRandom')
            extra, closed = m.recv_any(2)
            check(closed and not extra, 'after the reply: closed %s, bytes %s' % (closed, extra.hex()))


@test('mssim/not-running-answered-in-frame')
def _not_running(ctx):
    d = start_tcp(ctx, flags='')
    with Mssim.to(d.data_addr) as m:
        r = rc(m.transact(tpm2.get_random(8)))
        check(r == tpm2.RC_FAILURE, 'before INIT: rc 0x%x, expected the not-running 0x101' % r)


# ------------------------------------------------------------ malformed and oversized

@test('mssim/hostile/truncated-prefix-blocks-nobody',
      **xf('timeout', 'waits for 10 bytes inside its only thread: 5 bytes of a prefix block the ctrl channel'))
def _truncated(ctx):
    d = start_tcp(ctx)
    with Mssim.to(d.data_addr) as m:
        m.send(prefix(tpm2.get_random(8))[:5])
        with d.ctrl() as c:
            c.send(struct.pack('>I', CMD_GET_CAPABILITY))
            c.recv_exact(8, 2, ' GET_CAPABILITY while a data client holds 5 bytes of a prefix')
        extra, closed = m.recv_any(0.3)
        check(not extra, 'a reply to 5 bytes of a prefix: %s' % extra.hex())
    with Mssim.to(d.data_addr) as m:
        check(rc(m.transact(tpm2.get_random(8))) == 0, 'GetRandom on a new connection')


@test('mssim/hostile/size-below-header')
def _below(ctx):
    d = start_tcp(ctx)
    with Mssim.to(d.data_addr) as m:
        m.send(prefix(b'', size=1) + b'\0')
        check(rc(m.read_reply(2)) != 0, 'a 1-byte command got rc 0')
        expect_closed_or_quiet(m, 'size 1')
    with Mssim.to(d.data_addr) as m:
        check(rc(m.transact(tpm2.get_random(8))) == 0, 'GetRandom on a new connection')


@test('mssim/hostile/size-disagrees-with-header')
def _mismatch(ctx):
    """A prefix that promises more than its command: an answer, never a wait for bytes that never come."""
    d = start_tcp(ctx)
    g = tpm2.get_random(8)
    for size in (1000, 0xffffffff):
        with Mssim.to(d.data_addr) as m:
            m.send(prefix(g, size=size) + g)
            m.read_reply(2)
            expect_closed_or_quiet(m, 'size %d' % size)
    with Mssim.to(d.data_addr) as m:
        check(rc(m.transact(g)) == 0, 'GetRandom on a new connection')


@test('mssim/hostile/oversized-command-one-error-then-in-step',
      **xf(DESYNC, 'a 5000-byte framed command is read as two: 0x142 in the frame, then 0x84 out of it'))
def _oversized(ctx):
    d = start_tcp(ctx)
    big = tpm2.command(tpm2.CC_GetRandom, b'\0' * 4990)
    with Mssim.to(d.data_addr) as m:
        m.send(prefix(big) + big)
        r = rc(m.read_reply(3))
        check(r == tpm2.RC_COMMAND_SIZE, '5000-byte command: rc 0x%x, expected 0x142' % r)
        try:
            check(rc(m.transact(tpm2.get_random(8))) == 0, 'GetRandom after the oversized command')
        except Fail as e:
            raise Fail(str(e), DESYNC)
        m.no_more()


@test('mssim/session-end-closes', labels=(OURS,))
def _session_end(ctx):
    """TPM_SESSION_END on the TPM port ends the connection, as in the simulator."""
    d = start_tcp(ctx)
    with Mssim.to(d.data_addr) as m:
        check(rc(m.transact(tpm2.get_random(8))) == 0, 'GetRandom')
        m.send(struct.pack('>I', SESSION_END))
        extra, closed = m.recv_any(2)
        check(closed and not extra, 'after TPM_SESSION_END: closed %s, bytes %s' % (closed, extra.hex()))
