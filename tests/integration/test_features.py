"""--print-capabilities lists only what works: every listed feature is probed."""
import json
import os
import re
import struct
import time

import tpm2
from harness import (test, check, Fail, OURS, SWTPM, define_nv, expect_nv, lock_holder, NV_DATA, connect, Ctrl,
                     CMD_INIT, CMD_STOP)

RSA = 0x0001
CC_TestParms = 0x18A


def pipe_with(data):
    r, w = os.pipe()
    os.write(w, data)
    os.close(w)
    return r


def probe_tpm12(ctx):
    d = ctx.start(tpm2_opt=False, name='tpm12')
    r = d.tpm(struct.pack('>HIII', 0x00C1, 14, 0x46, 8), expect_rc=None)
    check(r[:2] == b'\x00\xc4' and tpm2.rc_of(r) == 0 and len(r) == 14 + 8, 'TPM 1.2 GetRandom: %s' % r.hex())
    with d.ctrl() as c:
        check(c.stop() == 0, 'STOP')
    r = d.tpm(struct.pack('>HIII', 0x00C1, 14, 0x46, 8), expect_rc=None)
    check(r == bytes.fromhex('00c40000000a00000009'), 'TPM 1.2 not-running reply: %s' % r.hex())


def probe_tpm20(ctx):
    d = ctx.start(name='tpm20')
    d.tpm(tpm2.get_random(8))


def probe_send_command_header(ctx):
    d = ctx.start(name='hdr')
    cmd = tpm2.get_random(8)
    with d.data() as c:
        c.send(struct.pack('>IBI', 8, 0, len(cmd)) + cmd)
        (n,) = struct.unpack('>I', c.recv_exact(4, 2))
        resp = c.recv_exact(n, 2)
        trailer = c.recv_exact(4, 2)
    check(tpm2.rc_of(resp) == 0 and trailer == b'\0\0\0\0', 'prefixed GetRandom: %s %s' % (resp.hex(), trailer.hex()))


def probe_startup_flags(ctx):
    d = ctx.start(flags='not-need-init,startup-none', name='none')
    d.tpm(tpm2.get_random(8), expect_rc=tpm2.RC_INITIALIZE, what='GetRandom with startup-none')
    d = ctx.start(flags='not-need-init,startup-clear', name='clear')
    d.tpm(tpm2.get_random(8), what='GetRandom with startup-clear')


def probe_disable_auto_shutdown(ctx):
    d = ctx.start(flags='not-need-init,startup-clear,disable-auto-shutdown', name='das')
    d.tpm(tpm2.get_random(8))


def probe_ctrl_terminate(ctx):
    d = ctx.start(ctrl_opts=',terminate', name='cterm', ready=False)
    s = None
    end = time.monotonic() + 5
    while s is None:
        d.check_alive('during start-up')
        try:
            s = connect(d.ctrl_addr, 1.0)
        except OSError:
            check(time.monotonic() < end, 'ctrl socket not up')
            time.sleep(0.01)
    with Ctrl(s, 'ctrl') as c:
        c.caps()
    check(d.wait_exit(5) is not None, '--ctrl ...,terminate: still running 5 s after the ctrl client left')


def probe_seccomp(ctx):
    d = ctx.start(extra=['--seccomp', 'action=none'], name='seccomp')
    d.tpm(tpm2.get_random(8))


def probe_key(ctx, spec, name):
    """State encrypted with --key: NV plaintext not on disk; a restart with the key reads it."""
    st = ctx.mkdir(name + '-st')
    fd = pipe_with(spec[1])
    d = ctx.start(state=st, extra=['--key', spec[0] % fd], pass_fds=(fd,), name=name)
    os.close(fd)
    define_nv(d)
    d.terminate()
    with open(os.path.join(st, 'tpm2-00.permall'), 'rb') as f:
        check(NV_DATA not in f.read(), '%s: NV data in plaintext in tpm2-00.permall' % spec[0])
    fd = pipe_with(spec[1])
    d = ctx.start(state=st, extra=['--key', spec[0] % fd], pass_fds=(fd,), name=name + '2')
    os.close(fd)
    expect_nv(d, what=' after a restart with the same key')


def probe_key_fd(ctx):
    probe_key(ctx, ('fd=%d,mode=aes-256-cbc,format=hex', b'00112233445566778899aabbccddeeff'
                                                            b'00112233445566778899aabbccddeeff'), 'keyfd')


def probe_pwd_fd(ctx):
    probe_key(ctx, ('pwdfd=%d,mode=aes-256-cbc', b'a passphrase'), 'pwdfd')


def probe_print_states(ctx):
    st = ctx.mkdir('ps')
    r = ctx.run(ctx.binary(ctx.kind)[:2] + ['--print-states', '--tpm2', '--tpmstate', 'dir=' + st], timeout=5)
    check(r.returncode == 0 and json.loads(r.stdout).get('states') == [], '--print-states: %r' % r.stdout[:100])


def probe_migration(ctx):
    d = ctx.start(flags=None, extra=['--migration', 'incoming,release-lock-outgoing'], name='mig')
    with d.ctrl() as c:
        check(c.init() == 0, 'INIT with --migration incoming,release-lock-outgoing')
    d.tpm(tpm2.startup())


def probe_backend_dir(ctx):
    st = ctx.mkdir('bd')
    argv = ctx.binary(ctx.kind) + ['--tpm2', '--tpmstate', 'backend-uri=dir://' + st, '--flags',
                                   'not-need-init,startup-clear', '--ctrl', 'type=unixio,path=' + ctx.path('bd.ctrl'),
                                   '--server', 'type=unixio,path=' + ctx.path('bd.data')]
    d = ctx.start(argv=argv, state=st, ctrl_addr=ctx.path('bd.ctrl'), data_addr=ctx.path('bd.data'))
    define_nv(d)
    check(os.path.exists(os.path.join(st, 'tpm2-00.permall')), 'backend-uri=dir:// wrote no tpm2-00.permall')


def probe_backend_file(ctx):
    f = ctx.path('state.file')
    argv = ctx.binary(ctx.kind) + ['--tpm2', '--tpmstate', 'backend-uri=file://' + f, '--flags',
                                   'not-need-init,startup-clear', '--ctrl', 'type=unixio,path=' + ctx.path('bf.ctrl'),
                                   '--server', 'type=unixio,path=' + ctx.path('bf.data')]
    d = ctx.start(argv=argv, state=None, ctrl_addr=ctx.path('bf.ctrl'), data_addr=ctx.path('bf.data'))
    define_nv(d)
    d.terminate()
    check(os.path.getsize(f) > 100, 'backend-uri=file:// wrote %d bytes' % os.path.getsize(f))
    d = ctx.start(argv=argv, state=None, ctrl_addr=ctx.path('bf.ctrl'), data_addr=ctx.path('bf.data'))
    expect_nv(d, what=' after a restart on the file backend')


def probe_rsa_keysize(ctx, bits):
    d = ctx.start(name='rsa%d' % bits)
    parms = struct.pack('>HHHHI', RSA, 0x0010, 0x0010, bits, 0)
    d.tpm(tpm2.command(CC_TestParms, parms), what='TestParms(RSA %d)' % bits)


PROBES = {
    'tpm-1.2': probe_tpm12,
    'tpm-2.0': probe_tpm20,
    'tpm-send-command-header': probe_send_command_header,
    'flags-opt-startup': probe_startup_flags,
    'flags-opt-disable-auto-shutdown': probe_disable_auto_shutdown,
    'ctrl-opt-terminate': probe_ctrl_terminate,
    'cmdarg-seccomp': probe_seccomp,
    'cmdarg-key-fd': probe_key_fd,
    'cmdarg-pwd-fd': probe_pwd_fd,
    'cmdarg-print-states': probe_print_states,
    'cmdarg-migration': probe_migration,
    'nvram-backend-dir': probe_backend_dir,
    'nvram-backend-file': probe_backend_file,
}


@test('cmdline/print-capabilities-lists-only-what-works', timeout=120)
def _features(ctx):
    r = ctx.run(ctx.binary(ctx.kind)[:2] + ['--tpm2', '--print-capabilities'], timeout=5)
    check(r.returncode == 0, '--print-capabilities: exit %d' % r.returncode)
    feats = json.loads(r.stdout)['features']
    bad = []
    for f in feats:
        m = re.match(r'rsa-keysize-(\d+)$', f)
        probe = (lambda c, b=int(m.group(1)): probe_rsa_keysize(c, b)) if m else PROBES.get(f)
        if probe is None:
            bad.append('%s: no probe for this feature in test_features.py' % f)
            continue
        try:
            probe(ctx)
        except Fail as e:
            bad.append('%s: %s' % (f, e))
        finally:
            for d in ctx.daemons:
                d.kill()
    check(not bad, 'listed features that do not work: ' + '; '.join(bad))
