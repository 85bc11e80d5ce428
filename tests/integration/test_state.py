"""State: --save/--load of each blob type into a fresh instance (also across
daemons), state surviving a restart, and state dirs swapped between swtpm
(incl. swtpm_setup) and ours."""
import os
import stat

import tpm2
from harness import (test, check, Fail, OURS, SWTPM, KINDS, define_nv, expect_nv, pcr_value,
                     make_persistent, persistent_name, NV_INDEX, NV_DATA, need_tool, settled)

PERSIST = 0x81000005
CROSS = ('%s->%s' % (SWTPM, OURS), '%s->%s' % (OURS, SWTPM))


def pair(label):
    a, b = label.split('->')
    return a, b


def populate(d):
    """NV index, PCR 16 and a persistent object; returns (pcr16, name)."""
    define_nv(d)
    d.tpm(tpm2.pcr_extend(16, b'populate'))
    name = make_persistent(d, PERSIST)
    return pcr_value(d), name


def verify(d, pcr, name, what, with_pcr=True):
    expect_nv(d, what=' ' + what)
    got = persistent_name(d, PERSIST)
    check(got == name, 'persistent object 0x%x %s: name %s, expected %s' % (PERSIST, what, got.hex(), name.hex()))
    if with_pcr:
        got = pcr_value(d)
        check(got == pcr, 'PCR 16 %s: %s, expected %s' % (what, got.hex(), pcr.hex()))


def save_blobs(ctx, d, prefix):
    files = {}
    for kind in ('permanent', 'volatile', 'savestate'):
        f = ctx.path('%s.%s' % (prefix, kind))
        ctx.ioctl(d, '--save', kind, f)
        files[kind] = f
    check(os.path.getsize(files['permanent']) > 100, '--save permanent: %d bytes' % os.path.getsize(files['permanent']))
    check(os.path.getsize(files['volatile']) > 100, '--save volatile: %d bytes' % os.path.getsize(files['volatile']))
    return files


def load_blobs(ctx, d, files, kinds=('permanent', 'volatile', 'savestate')):
    """As QEMU does on the destination: STOP, SET_STATEBLOB each, INIT."""
    ctx.ioctl(d, '--stop')
    for kind in kinds:
        ctx.ioctl(d, '--load', kind, files[kind])
    ctx.ioctl(d, '-i')


def move(ctx, src_kind, dst_kind):
    a = ctx.start(src_kind, name='src')
    pcr, name = populate(a)
    files = save_blobs(ctx, a, 'a')
    # a fresh destination, started as libvirt does (no --flags): needs INIT
    b = ctx.start(dst_kind, name='dst', flags=None)
    check(not os.path.exists(os.path.join(b.state_dir, 'tpm2-00.permall')), 'destination state dir not fresh')
    load_blobs(ctx, b, files)
    verify(b, pcr, name, 'after --load into a fresh %s' % dst_kind)
    settled(b.state_dir)
    check(os.path.getsize(os.path.join(b.state_dir, 'tpm2-00.permall')) > 100,
          'INIT after --load permanent wrote no tpm2-00.permall')
    # and it was really written: a restart of the destination keeps NV
    b.terminate()
    c = ctx.start(dst_kind, name='dst2', state=b.state_dir)
    verify(c, pcr, name, 'after restarting the destination', with_pcr=False)


@test('state/blobs-move-to-fresh-instance')
def _move(ctx):
    move(ctx, ctx.kind, ctx.kind)


@test('state/blobs-move-across-daemons', labels=CROSS)
def _move_cross(ctx):
    move(ctx, *pair(ctx.kind))


@test('state/blob-permanent-only')
def _perm_only(ctx):
    """The permanent blob carries NV and persistent objects, not PCRs."""
    a = ctx.start(name='src')
    pcr, name = populate(a)
    files = save_blobs(ctx, a, 'a')
    b = ctx.start(name='dst', flags=None)
    load_blobs(ctx, b, files, kinds=('permanent',))
    b.tpm(tpm2.get_random(8), expect_rc=tpm2.RC_INITIALIZE, what='GetRandom without volatile state')
    b.tpm(tpm2.startup(), what='Startup')
    verify(b, pcr, name, 'after --load permanent', with_pcr=False)
    check(pcr_value(b) == b'\0' * 32, 'PCR 16 not reset without the volatile blob')


def restart(ctx, d, flags, how):
    if how == 'sigterm':
        rc = d.terminate()
        check(rc == 0, '%s exited %s on SIGTERM' % (d.kind, rc))
    else:
        ctx.ioctl(d, '-s')
        check(d.wait_exit(5) == 0, '%s did not exit 0 after -s' % d.kind)
    return ctx.start(d.kind, state=d.state_dir, flags=flags)


@test('state/survives-restart')
def _restart(ctx):
    d = ctx.start(name='first')
    pcr, name = populate(d)
    vol = os.path.join(d.state_dir, 'tpm2-00.volatilestate')
    # store the volatile state, SIGTERM; a restart resumes from it (no Startup)
    ctx.ioctl(d, '-v')
    d = restart(ctx, d, 'not-need-init', 'sigterm')
    verify(d, pcr, name, 'after -v, SIGTERM and a restart with the volatile state')
    # the volatile file is kept (swtpm semantics): CMD_SHUTDOWN and a restart
    # with startup-clear resume from it again (Startup is then refused)
    check(os.path.exists(vol), 'start-up deleted tpm2-00.volatilestate (swtpm keeps it)')
    d = restart(ctx, d, 'not-need-init,startup-clear', 'shutdown')
    verify(d, pcr, name, 'after -s and a restart, volatile state still present')
    # as libvirt runs it: no --flags; INIT with DELETE_VOLATILE resumes, then deletes the file
    d = restart(ctx, d, None, 'sigterm')
    ctx.ioctl(d, '-i')
    verify(d, pcr, name, 'after a restart and -i')
    check(not os.path.exists(vol), '-i did not delete tpm2-00.volatilestate')
    # no volatile state left: INIT, Startup needed, NV and objects stay, PCRs reset
    d = restart(ctx, d, None, 'sigterm')
    ctx.ioctl(d, '-i')
    d.tpm(tpm2.get_random(8), expect_rc=tpm2.RC_INITIALIZE, what='GetRandom before Startup')
    d.tpm(tpm2.startup(), what='Startup after INIT')
    verify(d, pcr, name, 'after a restart without volatile state', with_pcr=False)
    check(pcr_value(d) == b'\0' * 32, 'PCR 16 not reset by Startup(CLEAR)')


@test('state/dir-swapped-between-daemons', labels=CROSS)
def _swap(ctx):
    first, second = pair(ctx.kind)
    a = ctx.start(first, name='a')
    pcr, name = populate(a)
    ctx.ioctl(a, '-v')
    a.terminate()
    b = ctx.start(second, name='b', state=a.state_dir, flags='not-need-init')
    verify(b, pcr, name, 'made by %s, served by %s (volatile resumed)' % (first, second))
    b.tpm(tpm2.nv_define(NV_INDEX + 1, 8), what='NV_DefineSpace on the second daemon')
    b.tpm(tpm2.nv_write(NV_INDEX + 1, b'and back'), what='NV_Write on the second daemon')
    b.terminate()
    c = ctx.start(first, name='c', state=a.state_dir)
    verify(c, pcr, name, 'back on %s' % first, with_pcr=False)
    expect_nv(c, NV_INDEX + 1, b'and back', ' written by %s, read by %s' % (second, first))


def setup_conf(ctx):
    """swtpm_setup and swtpm_localca config in the temp dir (host untouched)."""
    ca = ctx.mkdir('localca')
    with open(ctx.path('swtpm-localca.conf'), 'w') as f:
        f.write('statedir = %s\nsigningkey = %s/signkey.pem\nissuercert = %s/issuercert.pem\n'
                'certserial = %s/certserial\n' % (ca, ca, ca, ca))
    with open(ctx.path('swtpm-localca.options'), 'w') as f:
        f.write('--platform-manufacturer vtpm-bridge\n--platform-version 2.1\n--platform-model test\n')
    with open(ctx.path('swtpm_setup.conf'), 'w') as f:
        f.write('create_certs_tool = /usr/bin/swtpm_localca\ncreate_certs_tool_config = %s\n'
                'create_certs_tool_options = %s\nactive_pcr_banks = sha256\n'
                % (ctx.path('swtpm-localca.conf'), ctx.path('swtpm-localca.options')))
    return ctx.path('swtpm_setup.conf')


def swtpm_setup(ctx, state, swtpm_kind=SWTPM):
    """libvirt's swtpm_setup line (B.4), running `swtpm` = swtpm_kind from PATH."""
    need_tool('swtpm_setup')
    bindir = ctx.mkdir('bin')
    target = ctx.binary(swtpm_kind)[0] if swtpm_kind == OURS else '/usr/bin/swtpm'
    with open(os.path.join(bindir, 'swtpm'), 'w') as f:
        f.write('#!/bin/sh\necho "$@" >> %s\nexec %s "$@"\n' % (ctx.path('swtpm-argv'), target))
    os.chmod(os.path.join(bindir, 'swtpm'), 0o755)
    env = dict(os.environ, PATH=bindir + ':' + os.environ.get('PATH', '/usr/bin:/bin'))
    argv = ['swtpm_setup', '--tpm2', '--config', setup_conf(ctx), '--tpm-state', state,
            '--vmid', 'test:3c0cd2e8-7a5a-4e26-b0aa-f1f5a1c1c3b3', '--logfile', ctx.path('setup.log'),
            '--createek', '--create-ek-cert', '--create-platform-cert', '--lock-nvram', '--not-overwrite']
    r = ctx.run(argv, timeout=60, env=env)
    left = ('; left running after swtpm_setup exited: %s' % ' | '.join(r.leftovers)) if r.leftovers else ''
    if r.returncode != 0:
        try:
            log = open(ctx.path('setup.log')).read()[-1500:]
        except OSError:
            log = ''
        raise Fail('swtpm_setup with swtpm=%s: exit %d: %s %s | log: %s%s' % (
            swtpm_kind, r.returncode, r.stdout.decode(errors='replace').strip(),
            r.stderr.decode(errors='replace').strip(), log.strip().replace('\n', ' | '), left))
    check(not left, 'swtpm_setup succeeded' + left)
    with open(ctx.path('swtpm-argv')) as f:
        argvs = f.read()
    check('--print-states' in argvs and 'fd=' in argvs,
          'swtpm_setup did not run the expected swtpm forms: %r' % argvs)


def check_setup_dir(ctx, d):
    """What swtpm_setup made: EK at 0x81010001, EK and platform certs in NV."""
    r = ctx.tools(d, 'tpm2_readpublic', '-c', '0x81010001')
    check(b'rsa' in r.stdout, 'EK 0x81010001 is not an RSA key: %r' % r.stdout[:200])
    for index in ('0x1c00002', '0x1c08000', '0x1c00016'):
        cert = ctx.tools(d, 'tpm2_nvread', index, '-C', 'o').stdout
        check(len(cert) > 300 and cert[0] == 0x30, 'certificate in NV %s: %d bytes, starts %s'
              % (index, len(cert), cert[:4].hex()))
    # --lock-nvram: the certs are write-locked
    with open(ctx.path('junk'), 'wb') as f:
        f.write(b'x')
    r = ctx.tools(d, 'tpm2_nvwrite', '0x1c00002', '-C', 'o', '-i', ctx.path('junk'), ok=False)
    check(r.returncode != 0, 'NV 0x1c00002 is writable despite --lock-nvram')


@test('state/dir-made-by-swtpm_setup', timeout=90)
def _setup_dir(ctx):
    """A dir made by Debian's swtpm_setup (with Debian's swtpm) served by each daemon."""
    state = ctx.mkdir('state')
    swtpm_setup(ctx, state, SWTPM)
    d = ctx.start(state=state)
    check_setup_dir(ctx, d)


@test('state/swtpm_setup-drives-daemon-then-swtpm-serves', timeout=90)
def _setup_drives(ctx):
    """swtpm_setup running the daemon under test as `swtpm` (B.4 argv forms:
    --print-capabilities, --print-states, --server type=tcp,fd= --ctrl
    type=unixio,clientfd=); Debian's swtpm then serves the dir it made."""
    state = ctx.mkdir('state')
    swtpm_setup(ctx, state, ctx.kind)
    d = ctx.start(SWTPM, state=state)
    check_setup_dir(ctx, d)
    if ctx.kind == OURS:
        d.terminate()
        d = ctx.start(OURS, state=state)
        check_setup_dir(ctx, d)
