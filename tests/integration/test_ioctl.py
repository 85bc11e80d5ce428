"""Every swtpm_ioctl operation, over --unix and --tcp, with its real outcome checked."""
import hashlib
import json
import os
import re
import time

import tpm2
from harness import (test, check, Fail, define_nv, expect_nv, pcr_value, NV_DATA, NV_INDEX,
                     CMD_GET_CAPABILITY)

TRANSPORTS = ('unix', 'tcp')
NOT_RUNNING = bytes.fromhex('80010000000a00000101')


def start(ctx, transport, **kw):
    return ctx.start(ctrl=transport, server=transport, **kw)


def extend_rc(d, pcr):
    return tpm2.rc_of(d.tpm(tpm2.pcr_extend(pcr), expect_rc=None))


def established(ctx, d):
    rc, out, err = ctx.ioctl(d, '-e')
    m = re.search(r'tpmEstablished is (\d)', out)
    check(m is not None, 'swtpm_ioctl -e printed %r' % out)
    return int(m.group(1))


for transport in TRANSPORTS:
    T = transport

    def _caps(ctx, transport=T):
        d = start(ctx, transport)
        rc, out, err = ctx.ioctl(d, '-c')
        m = re.match(r'ptm capability is 0x([0-9a-f]+)$', out.strip())
        check(m is not None, 'swtpm_ioctl -c printed %r' % out)
        caps = int(m.group(1), 16)
        # INIT .. GET_INFO: every command the PTM set defines up to 0x12
        check(caps & 0x7fff == 0x7fff, 'capabilities 0x%x lack some of 0x7fff' % caps)
        with d.ctrl() as c:
            check(c.caps() == caps, 'raw GET_CAPABILITY differs from swtpm_ioctl -c')
    test('ioctl/%s/-c' % T)(_caps)

    def _init(ctx, transport=T):
        d = start(ctx, transport)
        define_nv(d)
        d.tpm(tpm2.pcr_extend(16))
        pcr = pcr_value(d)
        ctx.ioctl(d, '-i')
        # a fresh TPM_Init: TPM2_Startup is needed again, NV kept, PCRs reset
        d.tpm(tpm2.get_random(8), expect_rc=tpm2.RC_INITIALIZE, what='GetRandom right after -i')
        d.tpm(tpm2.startup(), what='Startup after -i')
        expect_nv(d, what=' after -i')
        check(pcr_value(d) == b'\0' * 32, 'PCR 16 not reset by -i + Startup(CLEAR)')
        # -i with a volatile state file: resume from it, then delete it
        d.tpm(tpm2.pcr_extend(16))
        pcr = pcr_value(d)
        ctx.ioctl(d, '-v')
        vol = os.path.join(d.state_dir, 'tpm2-00.volatilestate')
        check(os.path.exists(vol), '-v wrote no %s' % vol)
        ctx.ioctl(d, '-i')
        check(not os.path.exists(vol), '-i (DELETE_VOLATILE) left tpm2-00.volatilestate')
        resp = d.tpm(tpm2.pcr_read(16), expect_rc=None)
        check(tpm2.rc_of(resp) == 0, '-i did not resume from the volatile state (PCR_Read rc 0x%x)' % tpm2.rc_of(resp))
        check(tpm2.parse_pcr_read(resp) == pcr, 'PCR 16 not restored from the volatile state by -i')
    test('ioctl/%s/-i' % T)(_init)

    def _stop(ctx, transport=T):
        d = start(ctx, transport)
        define_nv(d)
        ctx.ioctl(d, '--stop')
        with d.data() as c:
            r = c.transact(tpm2.get_random(8))
        check(r == NOT_RUNNING, 'TPM command after --stop answered %s, expected %s' % (r.hex(), NOT_RUNNING.hex()))
        rc, out, err = ctx.ioctl(d, '-e', ok=False)
        check(rc != 0, 'swtpm_ioctl -e succeeded on a stopped TPM: %r' % out)
        d.check_alive('after --stop')
        ctx.ioctl(d, '-i')
        d.tpm(tpm2.startup(), what='Startup after --stop and -i')
        expect_nv(d, what=' after --stop/-i')
    test('ioctl/%s/--stop' % T)(_stop)

    def _shutdown(ctx, transport=T):
        d = start(ctx, transport, extra=['--pid', 'file=%s' % ctx.path('pidfile')])
        check(os.path.exists(ctx.path('pidfile')), '--pid file= not written')
        with open(ctx.path('pidfile')) as f:
            check(f.read().strip() == str(d.pid), 'pid file does not hold the pid')
        ctx.ioctl(d, '-s')
        rc = d.wait_exit(5)
        check(rc is not None, 'daemon still running 5 s after swtpm_ioctl -s')
        check(rc == 0, 'daemon exit status %d after -s' % rc)
        if transport == 'unix':
            check(not os.path.exists(d.ctrl_addr), 'ctrl socket file left after -s')
            check(not os.path.exists(d.data_addr), 'server socket file left after -s')
        check(not os.path.exists(ctx.path('pidfile')), 'pid file left after -s')
    test('ioctl/%s/-s' % T)(_shutdown)

    def _est(ctx, transport=T):
        d = start(ctx, transport)
        check(established(ctx, d) == 0, '-e: established after Startup')
        ctx.ioctl(d, '-h', 'x')
        check(established(ctx, d) == 1, '-e: not established after -h')
    test('ioctl/%s/-e' % T)(_est)

    def _reset(ctx, transport=T):
        d = start(ctx, transport)
        ctx.ioctl(d, '-h', 'abc')
        check(established(ctx, d) == 1, 'not established after -h')
        rc, out, err = ctx.ioctl(d, '-r', '0', ok=False)
        check(rc != 0, '-r 0 (locality 0) succeeded')
        check('0x3d' in (out + err), '-r 0 did not report TPM_BAD_LOCALITY (0x3d): %r' % (out + err))
        check(established(ctx, d) == 1, '-r 0 reset the flag')
        ctx.ioctl(d, '-l', '3')
        ctx.ioctl(d, '-r', '3')
        check(established(ctx, d) == 0, 'flag still set after -l 3; -r 3')
    test('ioctl/%s/-r' % T)(_reset)

    def _loc(ctx, transport=T):
        d = start(ctx, transport)
        # PCR 17 may be extended from locality 2-4 only (PC client profile)
        check(extend_rc(d, 17) == 0x907, 'PCR 17 extend at locality 0 not refused')
        ctx.ioctl(d, '-l', '3')
        check(extend_rc(d, 17) == 0, 'PCR 17 extend refused after -l 3')
        ctx.ioctl(d, '-l', '0')
        check(extend_rc(d, 17) == 0x907, 'PCR 17 extend allowed after -l 0')
        rc, out, err = ctx.ioctl(d, '-l', '5', ok=False)
        check(rc != 0, '-l 5 succeeded')
        check(extend_rc(d, 17) == 0x907, 'a refused -l 5 changed the locality')
    test('ioctl/%s/-l' % T)(_loc)

    def _hash(ctx, transport=T):
        d = start(ctx, transport)
        check(pcr_value(d, 17) == b'\xff' * 32, 'PCR 17 not all ones after Startup')
        ctx.ioctl(d, '-h', 'abc')
        expect = hashlib.sha256(b'\0' * 32 + hashlib.sha256(b'abc').digest()).digest()
        got = pcr_value(d, 17)
        check(got == expect, '-h abc: PCR 17 = %s, expected %s' % (got.hex(), expect.hex()))
        r = ctx.run(['swtpm_ioctl'] + d.ioctl_addr() + ['-h', '-'], input=b'x' * 10000)
        check(r.returncode == 0, 'swtpm_ioctl -h - (10000 bytes on stdin): exit %d' % r.returncode)
        expect = hashlib.sha256(b'\0' * 32 + hashlib.sha256(b'x' * 10000).digest()).digest()
        got = pcr_value(d, 17)
        check(got == expect, '-h - (10000 bytes): PCR 17 = %s, expected %s' % (got.hex(), expect.hex()))
    test('ioctl/%s/-h' % T)(_hash)

    def _cancel(ctx, transport=T):
        d = start(ctx, transport)
        ctx.ioctl(d, '-C')
        d.tpm(tpm2.get_random(8), what='GetRandom after -C')
    test('ioctl/%s/-C' % T)(_cancel)

    def _vol(ctx, transport=T):
        d = start(ctx, transport)
        vol = os.path.join(d.state_dir, 'tpm2-00.volatilestate')
        check(not os.path.exists(vol), 'volatile state file before -v')
        ctx.ioctl(d, '-v')
        check(os.path.exists(vol) and os.path.getsize(vol) > 100,
              '-v did not write %s' % vol)
        d.tpm(tpm2.get_random(8), what='GetRandom after -v')
    test('ioctl/%s/-v' % T)(_vol)

    def _saveload(ctx, transport=T):
        d = start(ctx, transport)
        define_nv(d)
        d.tpm(tpm2.pcr_extend(16))
        pcr = pcr_value(d)
        p = ctx.path
        for kind in ('permanent', 'volatile', 'savestate'):
            ctx.ioctl(d, '--save', kind, p(kind))
        check(os.path.getsize(p('permanent')) > 100, '--save permanent wrote %d bytes' % os.path.getsize(p('permanent')))
        check(os.path.getsize(p('volatile')) > 100, '--save volatile wrote %d bytes' % os.path.getsize(p('volatile')))
        check(os.path.getsize(p('savestate')) == 0, 'TPM 2 has no savestate blob, yet --save wrote %d bytes'
              % os.path.getsize(p('savestate')))
        # change everything, then go back by loading the blobs
        d.tpm(tpm2.nv_write(NV_INDEX, b'X' * len(NV_DATA)))
        d.tpm(tpm2.pcr_extend(16, b'more'))
        ctx.ioctl(d, '--stop')
        for kind in ('permanent', 'volatile', 'savestate'):
            ctx.ioctl(d, '--load', kind, p(kind))
        ctx.ioctl(d, '-i')
        expect_nv(d, what=' after --load permanent')
        check(pcr_value(d) == pcr, 'PCR 16 not restored by --load volatile')
    test('ioctl/%s/--save-load' % T)(_saveload)

    def _config(ctx, transport=T):
        d = start(ctx, transport)
        rc, out, err = ctx.ioctl(d, '-g')
        check(out.strip() == 'ptm configuration flags: 0x0', '-g printed %r' % out)
    test('ioctl/%s/-g' % T)(_config)

    def _bufsize(ctx, transport=T):
        d = start(ctx, transport)

        def sizes(arg):
            rc, out, err = ctx.ioctl(d, '-b', arg)
            m = re.search(r'buffersize: (\d+)\s+minimum size\s*: (\d+)\s+maximum size\s*: (\d+)', out)
            check(m is not None, '-b %s printed %r' % (arg, out))
            return tuple(int(x) for x in m.groups())
        check(sizes('0') == (4096, 2808, 4096), '-b 0 (query): %s' % (sizes('0'),))
        rc, out, err = ctx.ioctl(d, '-b', '3000', ok=False)
        check(rc != 0, '-b 3000 succeeded on a running TPM')
        ctx.ioctl(d, '--stop')
        check(sizes('1') == (2808, 2808, 4096), '-b 1 not clamped to the minimum: %s' % (sizes('1'),))
        check(sizes('100000') == (4096, 2808, 4096), '-b 100000 not clamped to the maximum')
        check(sizes('3000') == (3000, 2808, 4096), '-b 3000 not taken: %s' % (sizes('3000'),))
        ctx.ioctl(d, '-i')
        d.tpm(tpm2.startup(), what='Startup after -b')
        d.tpm(tpm2.get_random(32), what='GetRandom after -b 3000')
    test('ioctl/%s/-b' % T)(_bufsize)

    def _info(ctx, transport=T):
        d = start(ctx, transport)

        def info(flags):
            rc, out, err = ctx.ioctl(d, '--info', str(flags))
            try:
                return json.loads(out)
            except ValueError:
                raise Fail('--info %d printed %r' % (flags, out))
        spec = info(1)
        check(spec.get('TPMSpecification', {}).get('family') == '2.0', '--info 1 printed %r' % spec)
        check(set(spec) == {'TPMSpecification'}, '--info 1 has other keys: %r' % spec)
        attrs = info(2)
        check(set(attrs) == {'TPMAttributes'} and 'manufacturer' in attrs['TPMAttributes'],
              '--info 2 printed %r' % attrs)
        both = info(3)
        check(set(both) == {'TPMSpecification', 'TPMAttributes'}, '--info 3 printed %r' % both)
        check(info(0) == {}, '--info 0 is not {}')
    test('ioctl/%s/--info' % T)(_info)


@test('ctrl/cancel-right-after-start')
def _cancel_first(ctx):
    """CANCEL_TPM_CMD as the very first request after start-up (the TPM runs:
    not-need-init) succeeds, as swtpm's does; tried on 10 fresh daemons."""
    from harness import CMD_CANCEL_TPM_CMD, Ctrl, connect
    for i in range(10):
        d = ctx.start(name='d%d' % i, ready=False)
        end = time.monotonic() + 5
        while True:
            d.check_alive('during start-up')
            try:
                s = connect(d.ctrl_addr, 1.0)
                break
            except OSError:
                check(time.monotonic() < end, 'ctrl socket not up within 5 s')
                time.sleep(0.002)
        with Ctrl(s, 'ctrl') as c:
            res = c.request(CMD_CANCEL_TPM_CMD)[0]
        check(res == 0, 'start %d: CANCEL_TPM_CMD as the first request after start-up answered 0x%x' % (i + 1, res))
        d.terminate()
