"""Command line: refusals, --print-capabilities, --version, --help, the argv
forms libvirt (B.5) and swtpm_setup (B.4) use, inherited fds."""
import fcntl
import json
import os
import signal
import socket
import stat
import struct
import tempfile
import time

import tpm2
from harness import (test, check, Fail, Skip, free_port_pair, OURS, SWTPM, KINDS, Ctrl, Data, lock_holder, wait_for, define_nv,
                     expect_nv, CMD_GET_CAPABILITY, CMD_SHUTDOWN, CMD_INIT, CMD_STOP, CMD_SET_DATAFD,
                     CMD_SET_BUFFERSIZE, CMD_GET_TPMESTABLISHED, CMD_SET_LOCALITY, settled)


def run_bin(ctx, kind, args, timeout=5):
    return ctx.run(ctx.binary(kind)[:1] + list(args), timeout=timeout)


# ------------------------------------------------------------ refusals

# (check name, extra argv, text the error must name, swtpm 0.7.1 defect or None)
REFUSALS = [
    ('unknown-option', ['--bogus-option'], 'bogus-option',
     ('multiline', 'prints the whole usage text (about 90 lines), not a one-line error')),
    ('option-missing-value', ['--pid'], 'pid',
     ('multiline', 'prints the whole usage text, not a one-line error')),
    ('ctrl-bad-type', ['--ctrl', 'type=foo,path=/nonexistent/c2'], 'ctrl',
     ('created', 'creates the --log file before refusing, and writes the error there (stderr empty)')),
    ('server-bad-port', ['--server', 'type=tcp,port=notaport'], 'server',
     ('created', 'creates the --log file before refusing, and writes the error there (stderr empty)')),
    ('flags-unknown-flag', ['--flags', 'not-need-init,bogusflag'], 'flag',
     ('created', 'creates the --log file before refusing, and writes the error there (stderr empty)')),
    ('tpmstate-bad-parameter', ['--tpmstate', 'bogus=1'], 'tpmstate',
     ('created', 'creates the --log file before refusing, and writes the error there (stderr empty)')),
    ('locality-bad-parameter', ['--locality', 'bogus'], 'locality',
     ('created', 'creates the --log file before refusing, and writes the error there (stderr empty)')),
    ('log-bad-level', ['--log', 'file=LOG2,level=abc'], 'log', None),
    # fuzz_cli found this one crashing ours (a NULL value for -f's handler)
    ('socket-foreground', ['--foreground'], 'foreground',
     ('multiline', 'prints the whole usage text, not a one-line error')),
    ('damaged-state-bad-word', ['--damaged-state', 'maybe'], 'damaged-state',
     ('multiline', 'has no --damaged-state: prints the whole usage text')),
]

for name, extra, names, defect in REFUSALS:
    def _refuse(ctx, extra=extra, names=names):
        top = ctx.mkdir('cl')
        st = os.path.join(top, 'st')
        os.mkdir(st)
        extra = [a.replace('LOG2', os.path.join(top, 'log2')) for a in extra]
        argv = ['socket', '--tpm2', '--tpmstate', 'dir=' + st, '--ctrl', 'type=unixio,path=%s/c' % top,
                '--log', 'file=%s/log' % top, '--pid', 'file=%s/pid' % top] + extra
        r = run_bin(ctx, ctx.kind, argv)
        err = r.stderr.decode(errors='replace')
        check(r.returncode == 1, 'exit status %d, expected 1 (stderr %r)' % (r.returncode, err[:200]))
        made = sorted(os.listdir(top)) + ['st/' + f for f in sorted(os.listdir(st))]
        check(made == ['st'], 'a refused command line created %s' % ', '.join(f for f in made if f != 'st'),
              'created')
        lines = [l for l in err.splitlines() if l.strip()]
        check(len(lines) == 1, 'expected a one-line error on stderr, got %d lines: %r' % (len(lines), err[:300]),
              'multiline')
        check(names in lines[0], 'the error does not name %r: %r' % (names, lines[0]), 'unnamed')
        check(not r.stdout.strip(), 'refusal printed on stdout: %r' % r.stdout[:200])
    kw = {'xfail_swtpm': defect} if defect else {}
    test('cmdline/refused/%s' % name, **kw)(_refuse)


# ------------------------------------------------------------ information options

@test('cmdline/print-capabilities')
def _caps(ctx):
    for args in (['socket', '--print-capabilities'], ['socket', '--tpm2', '--print-capabilities'],
                 ['socket', '--print-capabilities', '--log', 'file=%s' % ctx.path('log')]):
        r = run_bin(ctx, ctx.kind, args)
        out = r.stdout.decode(errors='replace')
        check(r.returncode == 0, '%s: exit %d' % (' '.join(args), r.returncode))
        check(out.endswith('\n') and out.count('\n') == 1, '%s: not one line: %r' % (' '.join(args), out[:200]))
        try:
            caps = json.loads(out)
        except ValueError as e:
            raise Fail('%s: not JSON (%s): %r' % (' '.join(args), e, out[:200]))
        feats = caps.get('features')
        check(isinstance(feats, list) and all(isinstance(f, str) for f in feats),
              '%s: no "features" array of strings: %r' % (' '.join(args), out[:200]))
        check('tpm-2.0' in feats, '"tpm-2.0" not among the features: %r' % feats)
        check(isinstance(caps.get('version'), str), 'no "version" string')
        check(len(set(feats)) == len(feats), 'duplicate features: %r' % feats)


@test('cmdline/version')
def _version(ctx):
    r = run_bin(ctx, ctx.kind, ['--version'])
    out = r.stdout.decode(errors='replace')
    check(r.returncode == 0, '--version: exit %d' % r.returncode)
    check(out.count('\n') == 1 and any(ch.isdigit() for ch in out), '--version printed %r' % out[:200])


@test('ours-only/socket---version (swtpm 0.7.1 refuses it after "socket")', labels=(OURS,))
def _sversion(ctx):
    r = run_bin(ctx, OURS, ['socket', '--version'])
    check(r.returncode == 0 and r.stdout.count(b'\n') == 1, 'socket --version: exit %d, %r' % (r.returncode, r.stdout))


@test('cmdline/help')
def _help(ctx):
    r = run_bin(ctx, ctx.kind, ['socket', '--help'])
    out = r.stdout.decode(errors='replace')
    check(r.returncode == 0, 'socket --help: exit %d' % r.returncode)
    for opt in ('--tpmstate', '--ctrl', '--server', '--flags', '--pid', '--log', '--tpm2'):
        check(opt in out, 'socket --help does not mention %s' % opt)


@test('cmdline/print-states')
def _states(ctx):
    st = ctx.mkdir('st')
    args = ['socket', '--print-states', '--tpmstate', 'backend-uri=dir://' + st, '--tpm2', '--log',
            'file=' + ctx.path('log')]
    r = run_bin(ctx, ctx.kind, args)
    check(r.returncode == 0, '--print-states on an empty dir: exit %d %r' % (r.returncode, r.stderr[:200]))
    try:
        j = json.loads(r.stdout)
    except ValueError:
        raise Fail('--print-states printed %r' % r.stdout[:200])
    check(j.get('states') == [], '--print-states on an empty dir: %r' % j)
    d = ctx.start(state=st)
    define_nv(d)
    d.terminate()
    r = run_bin(ctx, ctx.kind, args)
    j = json.loads(r.stdout)
    size = os.path.getsize(os.path.join(st, 'tpm2-00.permall'))
    check(j.get('states') == [{'name': 'permall', 'size': size}],
          '--print-states after use: %r (permall is %d bytes)' % (j, size))


# ------------------------------------------------------------ inherited fds, libvirt argv

def libvirt_pidfile(ctx):
    """As libvirt does: the child holds an fcntl write lock on byte 0 of the pid
    file on fd 5 and writes its pid before exec.  No other fd of the file may
    be open in the child at exec (closing one would drop the lock)."""
    path = ctx.path('1-vm-swtpm.pid')

    def pre():
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        if fd != 5:
            os.dup2(fd, 5)
            os.close(fd)
        fcntl.lockf(5, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 0)
        os.ftruncate(5, 0)
        os.write(5, b'%d\n' % os.getpid())
    return path, pre


def check_fd5(d, path, when):
    try:
        target = os.readlink('/proc/%d/fd/5' % d.pid)
    except OSError:
        raise Fail('inherited fd 5 (locked pid file) was closed %s' % when)
    check(target == path, 'fd 5 now points to %s, not the pid file, %s' % (target, when))
    check(lock_holder(path), 'the lock on the inherited pid file was dropped %s' % when)


@test('cmdline/inherited-fd-never-closed')
def _inherited(ctx):
    path, pre = libvirt_pidfile(ctx)
    d = ctx.start(preexec_fn=pre, close_fds=False)
    check_fd5(d, path, 'after start-up')
    define_nv(d)
    with d.ctrl() as c:
        for _ in range(3):
            check(c.stop() == 0 and c.init() == 0, 'STOP/INIT failed')
    d.tpm(tpm2.startup())
    expect_nv(d)
    check_fd5(d, path, 'after STOP/INIT cycles')


def qemu_startup(d, ctrl, buffersize=3968):
    """QEMU 7.2's start-up sequence (qemu-libvirt.md A.3); returns the data socket."""
    mine, theirs = socket.socketpair()
    res, _ = ctrl.request(CMD_SET_DATAFD, fds=[theirs.fileno()])
    theirs.close()
    check(res == 0, 'SET_DATAFD: 0x%x' % res)
    data = Data(mine, 'data (socketpair)')
    # version probe: ReadClock before INIT gets the 10-byte not-running reply, in one read
    mine.sendall(tpm2.command(0x181))
    mine.settimeout(1.0)
    try:
        probe = mine.recv(1024)
    except socket.timeout:
        raise Fail('no reply to QEMU\'s version probe within 1 s')
    check(probe == bytes.fromhex('80010000000a00000101'), 'version probe reply %s' % probe.hex())
    caps = ctrl.caps()
    check(caps & 0x348f == 0x348f, 'capabilities 0x%x lack what QEMU needs (0x348f)' % caps)
    check(ctrl.stop() == 0, 'STOP')
    check(ctrl.buffersize(0) == (0, 4096, 2808, 4096), 'SET_BUFFERSIZE(0)')
    check(ctrl.stop() == 0, 'STOP')
    check(ctrl.buffersize(buffersize)[:2] == (0, buffersize), 'SET_BUFFERSIZE(%d)' % buffersize)
    check(ctrl.init() == 0, 'INIT')
    check(ctrl.established() == (0, 0), 'GET_TPMESTABLISHED')
    check(ctrl.set_locality(0, pad=True) == 0, 'SET_LOCALITY(0) with padding')
    r = data.transact(tpm2.startup())
    check(tpm2.rc_of(r) == 0, 'TPM2_Startup: 0x%x' % tpm2.rc_of(r))
    r = data.transact(tpm2.get_random(16))
    check(tpm2.rc_of(r) == 0 and len(tpm2.parse_get_random(r)) == 16, 'GetRandom: %s' % r.hex())
    return data


@test('cmdline/libvirt-argv-and-qemu-session')
def _libvirt(ctx):
    """libvirt 9.0's exact argv (B.5), its pid-file lock on fd 5, QEMU's
    start-up over SET_DATAFD, then --terminate on the data channel's EOF."""
    rundir = ctx.mkdir('run')
    st = ctx.mkdir('tpm2')
    os.chmod(st, 0o700)
    sock = os.path.join(rundir, '1-vm-swtpm.sock')
    log = ctx.path('vm-swtpm.log')
    path, pre = libvirt_pidfile(ctx)
    argv = ctx.binary(ctx.kind) + ['--ctrl', 'type=unixio,path=%s,mode=0600' % sock,
                                   '--tpmstate', 'dir=%s,mode=0600' % st, '--log', 'file=%s' % log,
                                   '--terminate', '--tpm2']
    t0 = time.monotonic()
    d = ctx.start(argv=argv, ctrl_addr=sock, state=st, preexec_fn=pre, close_fds=False, ready=False)
    check(wait_for(lambda: os.path.exists(sock), 1.0), 'ctrl socket did not show up within 1 s (libvirt gives up)')
    dt = time.monotonic() - t0
    mode = stat.S_IMODE(os.stat(sock).st_mode)
    check(mode == 0o600, 'ctrl socket mode %o, expected 600 (mode=0600)' % mode)
    check_fd5(d, path, 'after start-up')
    with d.ctrl() as ctrl:
        data = qemu_startup(d, ctrl)
        r = data.transact(tpm2.nv_define(0x01500030, 8))
        check(tpm2.rc_of(r) == 0, 'NV_DefineSpace: 0x%x' % tpm2.rc_of(r))
        perm = os.path.join(st, 'tpm2-00.permall')
        settled(st)
        pmode = stat.S_IMODE(os.stat(perm).st_mode)
        check(pmode == 0o600, 'tpm2-00.permall mode %o, expected 600 (--tpmstate mode=0600)' % pmode)
        check_fd5(d, path, 'during the QEMU session')
        # swtpm_ioctl -s style client while QEMU holds ctrl is a better-than check; here QEMU quits (SIGKILL)
        data.close()
        rc = d.wait_exit(5)
        check(rc is not None, '--terminate: still running 5 s after the data channel closed')
        check(rc == 0, '--terminate: exit status %d' % rc)
    check(not os.path.exists(sock), 'ctrl socket file left after exit')


@test('cmdline/swtpm_setup-argv-forms')
def _setup_forms(ctx):
    """The three forms swtpm_setup 0.7.1 runs (B.4), including its way of
    waiting for the pid file: fstat() on the fd of the mkstemp()ed file."""
    st = ctx.mkdir('st')
    log = ctx.path('setup.log')
    b = ctx.binary(ctx.kind)[:1]
    r = ctx.run(b + ['socket', '--print-capabilities', '--log', 'file=' + log], timeout=5)
    check(r.returncode == 0 and b'"features"' in r.stdout, '--print-capabilities --log: %d %r' % (r.returncode, r.stdout[:100]))
    r = ctx.run(b + ['socket', '--print-states', '--tpmstate', 'backend-uri=dir://' + st, '--tpm2',
                     '--log', 'file=' + log], timeout=5)
    check(r.returncode == 0 and json.loads(r.stdout).get('states') == [], '--print-states: %d %r' % (r.returncode, r.stdout[:100]))
    pidfd, pidfile = tempfile.mkstemp(prefix='.swtpm_setup.pidfile.', dir=ctx.tmp)
    dmine, dtheirs = socket.socketpair()
    cmine, ctheirs = socket.socketpair()
    argv = b + ['socket', '--flags', 'not-need-init,startup-clear', '--tpmstate', 'backend-uri=dir://' + st,
                '--pid', 'file=' + pidfile, '--tpm2', '--log', 'file=' + log, '--server', 'type=tcp,fd=7',
                '--ctrl', 'type=unixio,clientfd=5']
    d = ctx.start(argv=argv, state=st, fd_map={7: dtheirs.fileno(), 5: ctheirs.fileno()}, ready=False)
    dtheirs.close()
    ctheirs.close()
    ok = wait_for(lambda: os.fstat(pidfd).st_size > 0 or not d.alive(), 3.0)
    d.check_alive('after start-up with inherited socketpairs')
    check(ok, 'the pid file swtpm_setup created (and polls with fstat on its fd) is still empty after 3 s '
              '(written to a new inode?)')
    check(os.pread(pidfd, 32, 0).strip() == str(d.pid).encode(), 'pid file content %r' % os.pread(pidfd, 32, 0))
    os.close(pidfd)
    data = Data(dmine, 'data (fd=7)')
    ctrl = Ctrl(cmine, 'ctrl (clientfd=5)')
    r = data.transact(tpm2.get_random(8))
    check(tpm2.rc_of(r) == 0, 'GetRandom over the inherited data fd: %s' % r.hex())
    check(ctrl.caps() & 1, 'GET_CAPABILITY over the inherited ctrl fd')
    check(ctrl.request(CMD_SHUTDOWN)[0] == 0, 'CMD_SHUTDOWN')
    rc = d.wait_exit(5)
    check(rc == 0, 'exit status after CMD_SHUTDOWN: %s' % rc)
    check(not os.path.exists(pidfile), 'pid file left after exit')
    check(os.path.exists(os.path.join(st, 'tpm2-00.permall')), 'no tpm2-00.permall written')


@test('cmdline/server-tcp-fd-exits-when-data-peer-closes')
def _tcpfd_eof(ctx):
    """`--server type=tcp,fd=N` is an already-connected stream and implies
    terminate: swtpm_setup relies on the daemon going away with it."""
    st = ctx.mkdir('st')
    dmine, dtheirs = socket.socketpair()
    argv = ctx.binary(ctx.kind) + ['--tpm2', '--flags', 'not-need-init,startup-clear', '--tpmstate', 'dir=' + st,
                                   '--server', 'type=tcp,fd=7', '--ctrl', 'type=unixio,path=' + ctx.path('c'),
                                   '--log', 'file=' + ctx.path('log')]
    d = ctx.start(argv=argv, state=st, ctrl_addr=ctx.path('c'), fd_map={7: dtheirs.fileno()})
    dtheirs.close()
    data = Data(dmine, 'data (fd=7)')
    r = data.transact(tpm2.get_random(8))
    check(tpm2.rc_of(r) == 0, 'GetRandom: %s' % r.hex())
    data.close()
    rc = d.wait_exit(5)
    check(rc is not None, 'still running 5 s after the data peer of --server type=tcp,fd= closed')


@test('cmdline/locality-reject-locality-4')
def _reject4(ctx):
    d = ctx.start(extra=['--locality', 'reject-locality-4'])
    with d.ctrl() as c:
        check(c.set_locality(4) == 0x3d, 'SET_LOCALITY(4) with reject-locality-4 not refused with 0x3d')
        check(c.set_locality(3) == 0, 'SET_LOCALITY(3) with reject-locality-4 refused')
    e = ctx.start(name='allow4')
    with e.ctrl() as c:
        check(c.set_locality(4) == 0, 'SET_LOCALITY(4) refused without reject-locality-4')


@test('cmdline/terminate-when-server-client-leaves')
def _terminate(ctx):
    """-t with a unixio --server: the process exits (status 0, socket files
    and pid file removed) when its data client disconnects."""
    d = ctx.start(extra=['--terminate', '--pid', 'file=' + ctx.path('pid')])
    with d.data() as c:
        r = c.transact(tpm2.get_random(8))
        check(tpm2.rc_of(r) == 0, 'GetRandom: %s' % r.hex())
    rc = d.wait_exit(5)
    check(rc is not None, '--terminate: still running 5 s after the data client left')
    check(rc == 0, '--terminate: exit status %d' % rc)
    for f in (d.ctrl_addr, d.data_addr, ctx.path('pid')):
        check(not os.path.exists(f), '%s left behind at exit' % f)


@test('cmdline/sigterm-clean-exit')
def _sigterm(ctx):
    d = ctx.start(extra=['--pid', 'file=' + ctx.path('pid')])
    define_nv(d)
    check(d.terminate() == 0, 'exit status on SIGTERM is not 0')
    for f in (d.ctrl_addr, d.data_addr, ctx.path('pid')):
        check(not os.path.exists(f), '%s left behind after SIGTERM' % f)
    e = ctx.start(state=d.state_dir, name='again')
    expect_nv(e, what=' after SIGTERM and a restart')


@test('cmdline/argv-left-intact')
def _argv(ctx):
    """/proc/PID/cmdline still shows the argv the daemon was given (ps, pgrep -f
    and operators read it)."""
    d = ctx.start()
    with open('/proc/%d/cmdline' % d.pid, 'rb') as f:
        seen = f.read().rstrip(b'\0').split(b'\0')
    given = [a.encode() for a in d.argv]
    check(seen == given, '/proc/PID/cmdline is %r, the daemon was given %r'
          % (b' '.join(seen).decode(errors='replace')[:300], ' '.join(d.argv)[:300]))


# ------------------------------------------------------------ cuse (the device itself: tests/vm cuse-*)

# (check name, argv after "cuse", text the one-line error must name)
CUSE_REFUSALS = [
    ('no-name', ['--tpm2'], 'name'),
    ('socket-option', ['-n', 'vtpm-x', '--ctrl', 'type=unixio,path=/nonexistent/c'], 'ctrl'),
    ('bad-major', ['-n', 'vtpm-x', '--maj', 'abc'], 'maj'),
    ('major-too-large', ['-n', 'vtpm-x', '--maj', '4096'], 'maj'),
    ('bad-minor', ['-n', 'vtpm-x', '--maj', '260', '--min', '-1'], 'min'),
    ('bad-name', ['-n', '../etc/x'], 'name'),
]

for name, extra, names in CUSE_REFUSALS:
    def _cuse_refuse(ctx, extra=extra, names=names):
        top = ctx.mkdir('cc')
        r = run_bin(ctx, OURS, ['cuse', '--tpmstate', 'dir=' + top, '--pid', 'file=%s/pid' % top] + extra)
        err = r.stderr.decode(errors='replace')
        lines = [l for l in err.splitlines() if l.strip()]
        check(r.returncode == 1, 'exit status %d, expected 1 (stderr %r)' % (r.returncode, err[:200]))
        check(len(lines) == 1 and names in lines[0], 'expected one line naming %r, got %r' % (names, err[:300]))
        check(os.listdir(top) == [], 'a refused command line created %s' % os.listdir(top))
    test('ours-only/cuse-refused/%s (swtpm 0.7.1 has no cuse)' % name, labels=(OURS,))(_cuse_refuse)


@test('ours-only/cuse-socket-options-refused (swtpm 0.7.1 has no cuse)', labels=(OURS,))
def _cuse_socket_refuses_cuse_options(ctx):
    top = ctx.mkdir('cs')
    r = run_bin(ctx, OURS, ['socket', '--tpmstate', 'dir=' + top, '--ctrl', 'type=unixio,path=%s/c' % top,
                            '--name', 'vtpm-x'])
    check(r.returncode == 1 and b'cuse option' in r.stderr, 'socket --name: exit %d, %r' % (r.returncode, r.stderr))


@test('ours-only/cuse-without-dev-cuse (swtpm 0.7.1 has no cuse)', labels=(OURS,))
def _cuse_no_dev(ctx):
    # This host's kernel has no CUSE: the start fails with the reason, leaves no pid file,
    # and the parent does not detach first (the device must exist before it exits 0).
    if os.path.exists('/dev/cuse'):
        raise Skip('this host has /dev/cuse (the guest scenarios cover a real one)')
    top = ctx.mkdir('cn')
    r = run_bin(ctx, OURS, ['cuse', '-n', 'vtpm-x', '--tpm2', '--tpmstate', 'dir=' + top,
                            '--pid', 'file=%s/pid' % top])
    err = r.stderr.decode(errors='replace')
    check(r.returncode == 1, 'exit status %d, expected 1 (stderr %r)' % (r.returncode, err[:200]))
    check('/dev/cuse' in err and 'modprobe cuse' in err, 'the reason is not given: %r' % err[:300])
    check(not os.path.exists(os.path.join(top, 'pid')), 'a pid file was written')


@test('ours-only/cuse-help-and-capabilities (swtpm 0.7.1 has no cuse)', labels=(OURS,))
def _cuse_help(ctx):
    r = run_bin(ctx, OURS, ['cuse', '--help'])
    out = r.stdout.decode(errors='replace')
    check(r.returncode == 0, 'cuse --help: exit %d' % r.returncode)
    for opt in ('--name', '--maj', '--min', '--foreground'):
        check(opt in out, 'cuse --help does not mention %s' % opt)
    r = run_bin(ctx, OURS, ['cuse', '--tpm2', '--print-capabilities'])
    check(r.returncode == 0 and json.loads(r.stdout.decode()).get('type') == 'swtpm',
          'cuse --print-capabilities: exit %d, %r' % (r.returncode, r.stdout[:200]))


# ------------------------------------------------------------ pid file of a refused start

@test('cmdline/refused-start-keeps-others-pid-file',
      xfail_swtpm=(None, 'a refused start removes the pid file of the daemon already running'))
def _(ctx):
    """A second daemon on a state dir in use, with the same --pid file, is
    refused: the file still names the first one (it is not removed)."""
    pid = ctx.path('tpm.pid')
    a = ctx.start(extra=['--pid', 'file=' + pid])
    check(wait_for(lambda: os.path.exists(pid), 5), 'the first daemon wrote no pid file')
    b = ctx.start(state=a.state_dir, extra=['--pid', 'file=' + pid], ready=False)
    rc = b.wait_exit(10)
    check(rc not in (None, 0), 'second daemon on the same state dir: exit %s, expected a refusal' % rc)
    check(os.path.exists(pid), 'the refused start removed the pid file of the running daemon')
    with open(pid) as f:
        text = f.read().strip()
    check(text == str(a.pid), 'pid file holds %r, expected the running daemon %d' % (text, a.pid))
    a.check_alive()


# ------------------------------------------------------------ -d: ready before the starter exits

def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _daemon_argv(ctx, kind, top, ctrl_dir=None):
    st = os.path.join(top, 'st')
    os.makedirs(st, exist_ok=True)
    return ctx.binary(kind) + ['-d', '--tpm2', '--tpmstate', 'dir=' + st,
                               '--server', 'type=unixio,path=%s/data' % top,
                               '--ctrl', 'type=unixio,path=%s/ctrl' % (ctrl_dir or top),
                               '--flags', 'not-need-init,startup-clear', '--pid', 'file=%s/pid' % top,
                               '--log', 'file=%s/log,level=2' % top]


@test('cmdline/daemon-ready-when-starter-exits')
def _(ctx):
    """-d: when the starting process exits 0 the daemon serves: both sockets
    accept, the TPM answers, the pid file names the live daemon."""
    top = ctx.mkdir('dm')
    r = ctx.run(_daemon_argv(ctx, ctx.kind, top), timeout=20)
    check(r.returncode == 0, '-d: the starting process exited %d: %r' % (r.returncode, r.stderr[:300]))
    check(os.path.exists(top + '/pid'), '-d: no pid file when the starting process exited')
    with open(top + '/pid') as f:
        pid = int(f.read().strip())
    try:
        check(pid != 0 and _pid_alive(pid), 'the pid file names %d, which is not running' % pid)
        data = Data.to(top + '/data')
        resp = data.transact(tpm2.get_random(8))
        check(tpm2.parse_header(resp)[2] == 0 and len(resp) == 20, 'GetRandom at once after -d: %r' % resp.hex())
        check(Ctrl.to(top + '/ctrl').caps() != 0, 'ctrl GET_CAPABILITY after -d')
    finally:
        os.kill(pid, signal.SIGTERM)
    check(wait_for(lambda: not _pid_alive(pid), 10), 'the daemon %d did not exit on SIGTERM' % pid)


@test('cmdline/daemon-failed-start-status',
      xfail_swtpm=('unnamed', 'the error in the log does not name the socket path'))
def _(ctx):
    """-d with a ctrl socket that cannot be made: the starting process exits 1
    (the daemon's status, as swtpm's), and no daemon is left."""
    top = ctx.mkdir('df')
    r = ctx.run(_daemon_argv(ctx, ctx.kind, top, ctrl_dir=top + '/missing'), timeout=20)
    check(r.returncode == 1, '-d with an impossible --ctrl: the starting process exited %d' % r.returncode)
    check(not os.path.exists(top + '/pid') or not _pid_alive(int(open(top + '/pid').read().strip() or 0)),
          'a daemon is running after a failed start')
    with open(top + '/log', errors='replace') as f:
        log = f.read()
    check('missing' in log, 'the log does not name the socket path: %r' % log[-300:], 'unnamed')


# ------------------------------------------------------------ chardev and the combined form

CHARDEV_REFUSALS = [
    ('chardev-without-vtpm-proxy', ['chardev', '--tpm2'], '--vtpm-proxy'),
    ('chardev-char-device', ['chardev', '--tpm2', '-c', '/dev/vtpm0'], '-c'),
    ('chardev-fd', ['chardev', '--tpm2', '--fd', '5'], '--fd'),
    ('chardev-server', ['chardev', '--vtpm-proxy', '--server', 'type=unixio,path=S'], '--server'),
    ('socket-with-cuse-option', ['socket', '--cuse', 'x', '--ctrl', 'type=unixio,path=C'], '--cuse'),
    ('socket-with-vtpm-proxy', ['socket', '--vtpm-proxy', '--ctrl', 'type=unixio,path=C'], '--vtpm-proxy'),
    ('combined-without-front', ['--tpm2'], 'no front'),
    ('combined-maj-without-cuse', ['--maj', '260', '--ctrl', 'type=unixio,path=C'], '--maj'),
    ('unknown-subcommand', ['sockett', '--tpm2'], 'sockett'),
]

for name, argv, names in CHARDEV_REFUSALS:
    def _refuse_mode(ctx, argv=argv, names=names):
        top = ctx.mkdir('cr')
        st = ctx.mkdir('cr/st')
        r = ctx.run([ctx.env.ours] + argv + ['--tpmstate', 'dir=' + st], timeout=5)
        err = r.stderr.decode(errors='replace')
        lines = [l for l in err.splitlines() if l.strip()]
        check(r.returncode == 1, 'exit %d, expected 1 (%r)' % (r.returncode, err[:200]))
        check(len(lines) == 1 and names in lines[0], 'expected one line naming %r, got %r' % (names, err[:300]))
        check(sorted(os.listdir(top)) == ['st'] and not os.listdir(st), 'a refused command line created files')
    test('ours-only/refused/%s' % name, labels=(OURS,))(_refuse_mode)


@test('cmdline/vtpm-proxy-without-vtpmx')
def _(ctx):
    """chardev --vtpm-proxy on a host without /dev/vtpmx: exit 1, and the error
    names /dev/vtpmx (ours also says how to get it)."""
    if os.path.exists('/dev/vtpmx'):
        raise Skip('this host has /dev/vtpmx (the guest tests cover it)')
    st = ctx.mkdir('st')
    r = ctx.run(ctx.binary(ctx.kind)[:1] + ['chardev', '--vtpm-proxy', '--tpm2', '--tpmstate', 'dir=' + st],
                timeout=10)
    err = r.stderr.decode(errors='replace')
    check(r.returncode == 1, 'exit %d, expected 1 (%r)' % (r.returncode, err[:200]))
    check('/dev/vtpmx' in err, 'the error does not name /dev/vtpmx: %r' % err[:300])
    if ctx.kind == OURS:
        check('modprobe tpm_vtpm_proxy' in err, 'the error does not say how to get /dev/vtpmx: %r' % err[:300])
    check(not r.stdout, 'something was printed on stdout: %r' % r.stdout[:200])


@test('ours-only/print-capabilities-fronts', labels=(OURS,))
def _(ctx):
    """--print-capabilities (with or without a subcommand) lists the fronts
    this host can open: the socket always, CUSE and vtpm-proxy as their
    kernel nodes allow."""
    for argv in (['--print-capabilities'], ['socket', '--tpm2', '--print-capabilities']):
        r = ctx.run([ctx.env.ours] + argv, timeout=5)
        check(r.returncode == 0, '%s: exit %d' % (' '.join(argv), r.returncode))
        fronts = json.loads(r.stdout.decode()).get('fronts')
        want = ['socket'] + [f for f, node in (('cuse', '/dev/cuse'), ('vtpm-proxy', '/dev/vtpmx'))
                             if os.access(node, os.R_OK | os.W_OK)]
        check(fronts == want, '%s: fronts %r, expected %r' % (' '.join(argv), fronts, want))


# ------------------------------------------------------------ forms other managers use (cli-forms.md)

def _tcp_getrandom(port):
    data = Data.to(('127.0.0.1', port))
    resp = data.transact(tpm2.get_random(8))
    check(tpm2.parse_header(resp)[2] == 0, 'GetRandom on 127.0.0.1:%d: %r' % (port, resp.hex()))


def _server_form(ctx, server, env_port=None, port_arg=None):
    """Starts a daemon with the ctrl on a unix socket and the data channel as
    `server` says; returns the daemon (not waited for: the caller probes)."""
    env = dict(os.environ)
    env.pop('TPM_PORT', None)
    if env_port is not None:
        env['TPM_PORT'] = env_port
    st = ctx.mkdir('sf-state')
    argv = ctx.binary(ctx.kind) + ['--tpm2', '--tpmstate', 'dir=' + st, '--ctrl',
                                   'type=unixio,path=%s' % ctx.path('sf.ctrl'),
                                   '--flags', 'not-need-init,startup-clear', '--log', 'file=' + ctx.path('sf.log')]
    argv += ['--server', server] if server else []
    argv += ['-p', port_arg] if port_arg else []
    return ctx.start(argv=argv, env=env, ready=False, ctrl_addr=ctx.path('sf.ctrl'))


@test('cmdline/server-port-without-type-is-tcp')
def _(ctx):
    """--server port=N (no type=): TCP on 127.0.0.1:N, as swtpm (Proxmox-style forms)."""
    port = free_port_pair()
    d = _server_form(ctx, 'port=%d' % port)
    check(wait_for(lambda: _port_open(port), 5), 'nothing listens on 127.0.0.1:%d' % port)
    _tcp_getrandom(port)
    d.check_alive()


@test('cmdline/server-tcp-port-from-TPM_PORT')
def _(ctx):
    """--server type=tcp without port=: the leading digits of $TPM_PORT."""
    port = free_port_pair()
    d = _server_form(ctx, 'type=tcp', env_port='%dabc' % port)
    check(wait_for(lambda: _port_open(port), 5), 'nothing listens on $TPM_PORT %d' % port)
    _tcp_getrandom(port)
    d.check_alive()


@test('cmdline/server-tcp-without-any-port-refused')
def _(ctx):
    """--server type=tcp with no port=, fd= or $TPM_PORT: exit 1."""
    d = _server_form(ctx, 'type=tcp')
    rc = d.wait_exit(10)
    check(rc == 1, 'exit %s, expected 1' % rc)


@test('cmdline/port-option-c-bases')
def _(ctx):
    """-p takes C bases (strtoul base 0), as swtpm: -p 0xNNNN."""
    port = free_port_pair()
    d = _server_form(ctx, None, port_arg=hex(port))
    check(wait_for(lambda: _port_open(port), 5), 'nothing listens on 127.0.0.1:%d (-p %s)' % (port, hex(port)))
    _tcp_getrandom(port)
    d.check_alive()


@test('cmdline/log-prefix-verbatim')
def _(ctx):
    """--log ...,level=1,prefix=[id=N] (Proxmox VE's, trailing space kept): every
    line of the log starts with the prefix.  A start that fails writes one."""
    st = ctx.mkdir('lp-state')
    prefix = '[id=1733400000] '
    r = ctx.run(ctx.binary(ctx.kind) + ['--tpm2', '--tpmstate', 'dir=' + st, '--ctrl',
                                        'type=unixio,path=%s/missing/ctrl' % ctx.tmp,
                                        '--log', 'file=%s,level=1,prefix=%s' % (ctx.path('lp.log'), prefix)],
                timeout=10)
    check(r.returncode == 1, 'exit %d, expected 1' % r.returncode)
    with open(ctx.path('lp.log'), errors='replace') as f:
        lines = [l for l in f.read().splitlines() if l.strip()]
    check(lines, 'nothing was logged')
    bad = [l for l in lines if not l.startswith(prefix) and not l.startswith('libtpms')]
    check(not bad, 'lines without the prefix %r: %r' % (prefix, bad[:3]))


@test('cmdline/log-file-dash-logs-nothing')
def _(ctx):
    """--log file=-: nothing is logged, errors included; no file named '-'."""
    st = ctx.mkdir('ld-state')
    r = ctx.run(ctx.binary(ctx.kind) + ['--tpm2', '--tpmstate', 'dir=' + st, '--ctrl',
                                        'type=unixio,path=%s/missing/ctrl' % ctx.tmp, '--log', 'file=-'],
                timeout=10)
    check(r.returncode == 1, 'exit %d, expected 1' % r.returncode)
    check(not r.stderr.strip(), 'stderr: %r' % r.stderr[:200])
    check(not os.path.exists(os.path.join(ctx.tmp, '-')), "a file named '-' was created")


def _port_open(port):
    try:
        socket.create_connection(('127.0.0.1', port), timeout=0.5).close()
        return True
    except OSError:
        return False
