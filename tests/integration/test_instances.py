"""Instances the system manages (issue 14), on the host: /etc/vtpm-bridge/NAME.conf
(here a --confdir of the check's own), `vtpm-bridge create|list|status|destroy`,
`run NAME` (the systemd unit's ExecStart) with sd_notify readiness, `cleanup`
(its ExecStopPost), the udev rule's `udev-node` answers, hostile definitions,
and `systemd-analyze verify` of the installed unit.  The kernel fronts, the
udev rules and the CDI hand-off run for real in the guest
(tests/vm/scenarios/instances-*.sh); here every instance is a socket one.
Debian's swtpm has no instance management: these checks are ours only.
"""
import grp
import os
import pwd
import socket
import stat
import subprocess
import time

from harness import test, check, Skip, OURS, define_nv, expect_nv, wait_for

ONLY_OURS = (OURS,)
GOOD = 'fronts = socket\nuser = root\nowner = root\ngroup = root\n'
# a TPM that runs from the start, as tpm2-tools on the data socket want it
STARTED = GOOD + 'flags = not-need-init,startup-clear\n'


class Dirs:
    def __init__(self, ctx):
        self.conf = ctx.mkdir('etc')
        self.run = ctx.mkdir('run')
        self.cdi = ctx.path('cdi')
        self.state = ctx.path('lib')

    def opts(self):
        return ['--confdir', self.conf, '--rundir', self.run, '--cdidir', self.cdi]


def cmd(ctx, dirs, *args, timeout=20):
    r = ctx.run([ctx.env.ours] + list(args) + dirs.opts(), timeout)
    return r.returncode, r.stdout.decode(errors='replace'), r.stderr.decode(errors='replace')


def write_conf(dirs, name, text):
    path = os.path.join(dirs.conf, name + '.conf')
    with open(path, 'w') as f:
        f.write(text)
    return path


def start(ctx, dirs, name, env=None, ready=True):
    """`vtpm-bridge run NAME` as the unit runs it; its default sockets in the run dir."""
    from harness import Daemon
    base = os.path.join(dirs.run, name)
    d = Daemon(ctx, OURS, [ctx.env.ours, 'run', name] + dirs.opts(), name, os.path.join(base, 'ctrl.sock'),
               os.path.join(base, 'data.sock'), os.path.join(dirs.state, name), None,
               env=dict(os.environ, **(env or {})))
    ctx.daemons.append(d)
    if ready:
        d.wait_ready()
    return d


def tree(path):
    """Every path under path (itself included), or an empty set if it is not there."""
    out = set()
    for root, dnames, fnames in os.walk(path):
        out.add(root)
        out.update(os.path.join(root, n) for n in dnames + fnames)
    return out


@test('instances/create-list-status-destroy', labels=ONLY_OURS)
def create_list_status_destroy(ctx):
    dirs = Dirs(ctx)
    state = os.path.join(dirs.state, 'a')
    rc, out, err = cmd(ctx, dirs, 'create', 'a', '--fronts', 'socket', '--user', 'root', '--group=root',
                       '--owner', 'root', '--state-dir', state)
    check(rc == 0, 'create: exit %d: %s' % (rc, err))
    with open(os.path.join(dirs.conf, 'a.conf')) as f:
        text = f.read()
    check('fronts = socket' in text and 'state-dir = %s' % state in text, 'a.conf: %r' % text)
    rc, out, err = cmd(ctx, dirs, 'create', 'a', '--fronts', 'socket', '--user', 'root')
    check(rc == 1 and 'exists' in err, 'a second create: exit %d: %s' % (rc, err))
    rc, out, err = cmd(ctx, dirs, 'status', 'a')
    check(rc == 3 and 'state: stopped' in out, 'status of a stopped instance: exit %d: %s%s' % (rc, out, err))
    rc, out, err = cmd(ctx, dirs, 'list')
    check(rc == 0 and any(l.split()[:2] == ['a', 'stopped'] for l in out.splitlines()), 'list: %s%s' % (out, err))

    d = start(ctx, dirs, 'a')
    rc, out, err = cmd(ctx, dirs, 'status', 'a')
    check(rc == 0 and 'state: ready' in out and 'pid: %d' % d.pid in out and 'state dir: %s' % state in out
          and 'ctrl: %s/a/ctrl.sock' % dirs.run in out,
          'status of a running instance: exit %d: %s%s' % (rc, out, err))
    rc, out, err = cmd(ctx, dirs, 'list')
    check(any(l.split()[:3] == ['a', 'ready', str(d.pid)] for l in out.splitlines()), 'list: %s' % out)
    rc, out, err = cmd(ctx, dirs, 'destroy', 'a')
    check(rc == 1 and 'running' in err and os.path.exists(os.path.join(dirs.conf, 'a.conf')),
          'destroy of a running instance: exit %d: %s' % (rc, err))
    # a second daemon of the same instance would take the first one's sockets and record
    rc, out, err = cmd(ctx, dirs, 'run', 'a')
    check(rc == 1 and 'running already' in err, 'a second run: exit %d: %s' % (rc, err))
    rc, out, err = cmd(ctx, dirs, 'status', 'a')
    check(rc == 0 and 'pid: %d' % d.pid in out, 'status after a refused second run: %s' % out)

    check(d.terminate() == 0, 'exit status after SIGTERM')
    check(not os.path.exists(os.path.join(dirs.run, 'a.instance')), 'the record outlived the instance')
    check(not os.path.exists(os.path.join(dirs.run, 'a', 'ready')), 'the ready mark outlived the instance')
    rc, out, err = cmd(ctx, dirs, 'cleanup', 'a')
    check(rc == 0 and not os.path.exists(os.path.join(dirs.run, 'a')), 'cleanup: exit %d: %s' % (rc, err))
    rc, out, err = cmd(ctx, dirs, 'destroy', 'a')
    check(rc == 0 and not os.path.exists(os.path.join(dirs.conf, 'a.conf')), 'destroy: exit %d: %s' % (rc, err))
    check(os.path.isdir(state) and state in out, 'destroy must keep the state dir and say so: %s' % out)
    rc, out, err = cmd(ctx, dirs, 'status', 'a')
    check(rc == 1 and 'a.conf' in err, 'status of a destroyed instance: exit %d: %s' % (rc, err))


@test('instances/run-serves-and-persists', labels=ONLY_OURS)
def run_serves_and_persists(ctx):
    dirs = Dirs(ctx)
    write_conf(dirs, 's', STARTED + 'mode = 0660\nstate-dir = %s/s\n' % dirs.state)
    d = start(ctx, dirs, 's')
    define_nv(d)
    expect_nv(d, what='first run')
    for sock in ('ctrl.sock', 'data.sock'):
        st = os.stat(os.path.join(dirs.run, 's', sock))
        check(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660,
              '%s: mode %o (want a socket, 0660)' % (sock, stat.S_IMODE(st.st_mode)))
    st = os.stat(os.path.join(dirs.state, 's'))
    check(stat.S_IMODE(st.st_mode) == 0o750, 'a new state dir is 0750, got %o' % stat.S_IMODE(st.st_mode))
    check(d.terminate() == 0, 'exit status after SIGTERM')
    d = start(ctx, dirs, 's')
    expect_nv(d, what='after a restart')
    check(d.terminate() == 0, 'exit status after SIGTERM')


@test('instances/sd-notify', labels=ONLY_OURS)
def sd_notify(ctx):
    """READY=1 only once the ctrl socket answers; STOPPING=1 at SIGTERM."""
    dirs = Dirs(ctx)
    write_conf(dirs, 'n', GOOD + 'state-dir = %s/n\n' % dirs.state)
    path = ctx.path('notify')
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(10)
    d = start(ctx, dirs, 'n', env={'NOTIFY_SOCKET': path}, ready=False)
    msg = s.recv(4096).decode()
    check(msg == 'READY=1', 'first message %r' % msg)
    c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    c.connect(os.path.join(dirs.run, 'n', 'ctrl.sock'))
    c.close()
    d.wait_ready()
    d.proc.send_signal(15)
    msg = s.recv(4096).decode()
    check(msg == 'STOPPING=1', 'at SIGTERM: %r' % msg)
    check(d.wait_exit(10) == 0, 'exit status after SIGTERM')
    s.close()


def record(dirs, name, pid, starttime, **nodes):
    with open(os.path.join(dirs.run, name + '.instance'), 'w') as f:
        f.write('pid=%d\nstarttime=%d\nowner=root\ngroup=root\nmode=0640\ntpm=%s\ntpmrm=%s\ncuse=%s\n'
                % (pid, starttime, nodes.get('tpm', ''), nodes.get('tpmrm', ''), nodes.get('cuse', '')))


def starttime(pid):
    with open('/proc/%d/stat' % pid) as f:
        return int(f.read().rsplit(')', 1)[1].split()[19])


@test('instances/udev-node', labels=ONLY_OURS)
def udev_node(ctx):
    """The rule's answer names a node's instance only while that process lives:
    a record of a dead process, or of a pid now someone else's, names nothing."""
    dirs = Dirs(ctx)
    live = subprocess.Popen(['sleep', '60'])
    ctx.procs.append(live)
    dead = subprocess.Popen(['true'])
    dead.wait()
    record(dirs, 'live', live.pid, starttime(live.pid), tpm='tpm7', tpmrm='tpmrm7')
    record(dirs, 'dead', dead.pid, 12345, tpm='tpm8', tpmrm='tpmrm8')
    record(dirs, 'reused', live.pid, starttime(live.pid) + 1, tpm='tpm9')
    record(dirs, 'cuse', live.pid, starttime(live.pid), cuse='vtpm-cuse')
    want = {
        'tpm7': 'VTPM_BRIDGE_NAME=live\nVTPM_BRIDGE_LINK=vtpm/live\n'
                'VTPM_BRIDGE_OWNER=root\nVTPM_BRIDGE_GROUP=root\nVTPM_BRIDGE_MODE=0640\n',
        'tpmrm7': 'VTPM_BRIDGE_NAME=live\nVTPM_BRIDGE_LINK=vtpm/live-rm\n'
                  'VTPM_BRIDGE_OWNER=root\nVTPM_BRIDGE_GROUP=root\nVTPM_BRIDGE_MODE=0640\n',
        'vtpm-cuse': 'VTPM_BRIDGE_NAME=cuse\nVTPM_BRIDGE_OWNER=root\nVTPM_BRIDGE_GROUP=root\nVTPM_BRIDGE_MODE=0640\n',
        'tpm8': '', 'tpmrm8': '', 'tpm9': '', 'tpm0': '', 'vtpm-other': '',
    }
    for kernel, out_want in want.items():
        rc, out, err = cmd(ctx, dirs, 'udev-node', kernel)
        check(rc == 0 and out == out_want, 'udev-node %s: exit %d, printed %r (want %r) %s'
              % (kernel, rc, out, out_want, err))
    # a record that is not ours (too big, binary, a symlink) names nothing and breaks nothing
    with open(os.path.join(dirs.run, 'junk.instance'), 'wb') as f:
        f.write(b'pid=%d\nstarttime=%d\nowner=root\ngroup=root\ntpm=tpm7\n' % (live.pid, starttime(live.pid))
                + b'\0' * 10000)
    os.symlink(os.path.join(dirs.run, 'live.instance'), os.path.join(dirs.run, 'link.instance'))
    # a record that is not root's names nothing, however right it looks
    record(dirs, 'nobodys', live.pid, starttime(live.pid), tpm='tpm6')
    os.chown(os.path.join(dirs.run, 'nobodys.instance'), 65534, 65534)
    rc, out, err = cmd(ctx, dirs, 'udev-node', 'tpm7')
    check(rc == 0 and out == want['tpm7'], 'udev-node beside junk: %r %s' % (out, err))
    rc, out, err = cmd(ctx, dirs, 'udev-node', 'tpm6')
    check(rc == 0 and out == '', "udev-node of a record that is not root's: %r" % out)
    live.kill()
    live.wait()
    rc, out, err = cmd(ctx, dirs, 'udev-node', 'tpm7')
    check(rc == 0 and out == '', 'udev-node after its process died: %r' % out)


HOSTILE = [
    # (what, name, conf text or None, words the error must hold)
    ('unknown-key', 'u', GOOD + 'colour = blue\n', ['u.conf:5', 'colour']),
    ('bad-mode', 'm', GOOD + 'mode = 0888\n', ['m.conf:5', 'mode']),
    ('setuid-mode', 'm2', GOOD + 'mode = 4660\n', ['m2.conf:5', 'mode']),
    ('bad-front', 'f', 'fronts = socket, floppy\nuser = root\n', ['f.conf:1', 'fronts', 'floppy']),
    ('no-fronts', 'nf', 'user = root\n', ['nf.conf', 'fronts']),
    ('twice', 't', GOOD + 'user = root\n', ['t.conf:5', 'user']),
    ('no-equals', 'e', GOOD + 'just words\n', ['e.conf:5']),
    ('unknown-group', 'g', 'fronts = socket\nuser = root\nowner = root\n\ngroup = no-such-group-vtpm\n', ['g.conf:5', 'group', 'no-such-group-vtpm']),
    ('relative-state', 'r', GOOD + 'state-dir = lib/r\n', ['r.conf:5', 'state-dir']),
    ('dotdot-state', 'r2', GOOD + 'state-dir = /var/lib/../../etc\n', ['r2.conf:5', 'state-dir']),
    ('bad-flags', 'fl', GOOD + 'flags = startup-sideways\n', ['fl.conf:5', 'flags']),
    ('fd-in-ctrl', 'fd', GOOD + 'ctrl = type=unixio,fd=3\n', ['fd.conf:5', 'ctrl']),
    ('nul-byte', 'z', GOOD + 'mode = 06\0' + '60\n', ['z.conf:5']),
    ('huge', 'h', GOOD + ('# ' + 'x' * 1000 + '\n') * 70, ['h.conf', '65536']),
    ('long-line', 'l', GOOD + '# ' + 'x' * 5000 + '\n', ['l.conf:5']),
    ('traversal', '../etc/x', None, ['../etc/x']),
    ('traversal-slash', 'a/b', None, ['a/b']),
    ('dot-name', '.hidden', None, ['.hidden']),
    ('rm-name', 'x-rm', None, ['x-rm']),
    ('dash-end', 'x-', None, ['x-', 'last character']),
    ('symlink-loop', 'loop', 'LOOP', ['loop.conf', 'loop']),
    ('directory', 'dir', 'DIR', ['dir.conf', 'directory']),
    ('missing', 'nothere', None, ['nothere.conf']),
]


def hostile_case(ctx, what, name, text, words):
    dirs = Dirs(ctx)
    if text == 'LOOP':
        os.symlink('loop.conf', os.path.join(dirs.conf, 'loop.conf'))
    elif text == 'DIR':
        os.mkdir(os.path.join(dirs.conf, 'dir.conf'))
    elif text is not None:
        write_conf(dirs, name, text)
    before = tree(ctx.tmp)
    r = ctx.run([ctx.env.ours, 'run', name] + dirs.opts(), 20)
    err = r.stderr.decode(errors='replace')
    check(r.returncode not in (0, None) and r.returncode != -9, '%s: run exit %s' % (what, r.returncode))
    check(err.count('\n') >= 1 and all(w in err for w in words),
          '%s: the error must name %s; stderr: %r' % (what, words, err[-400:]))
    check(not r.leftovers, '%s: left processes %s' % (what, r.leftovers))
    made = tree(ctx.tmp) - before
    check(not made, '%s: a refused definition wrote %s' % (what, sorted(made)))


for _case in HOSTILE:
    def _make(case):
        @test('instances/hostile-' + case[0], labels=ONLY_OURS)
        def _t(ctx):
            hostile_case(ctx, *case)
    _make(_case)


@test('instances/create-refuses', labels=ONLY_OURS)
def create_refuses(ctx):
    """create checks as run does, and writes nothing when it refuses."""
    dirs = Dirs(ctx)
    cases = [
        (['../x', '--fronts', 'socket'], '../x'),
        (['a', '--fronts', 'socket', '--colour', 'blue'], 'colour'),
        (['a', '--fronts', 'socket', '--mode', '0888'], 'mode'),
        (['a', '--fronts', 'socket', '--user', 'root\nfronts = cuse'], 'one line'),
        (['a'], 'fronts'),
    ]
    before = tree(ctx.tmp)
    for args, word in cases:
        rc, out, err = cmd(ctx, dirs, 'create', *args)
        check(rc != 0 and word in err, 'create %r: exit %d: %s' % (args, rc, err))
    check(tree(ctx.tmp) == before, 'a refused create wrote %s' % sorted(tree(ctx.tmp) - before))


@test('instances/systemd-analyze-verify', labels=ONLY_OURS)
def systemd_analyze_verify(ctx):
    """The installed unit, as systemd reads it (binary, man pages and all)."""
    import shutil
    if not shutil.which('systemd-analyze'):
        raise Skip('no systemd-analyze (package systemd)')
    root = ctx.path('root')
    top = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = ctx.run(['make', '-s', '-C', top, 'install', 'BUILD=' + ctx.env.build, 'DESTDIR=' + root, 'PREFIX=/usr',
                 'UDEVRULESDIR=/usr/lib/udev/rules.d', 'SYSTEMDUNITDIR=/usr/lib/systemd/system'], 120)
    check(r.returncode == 0, 'make install: %s' % r.stderr.decode(errors='replace')[-400:])
    unit = os.path.join(root, 'usr/lib/systemd/system/vtpm-bridge@.service')
    inst = ctx.path('vtpm-bridge@a.service')
    with open(unit) as f, open(inst, 'w') as g:
        # ExecStart names /usr/bin, which is in root here
        g.write(f.read().replace('/usr/bin/vtpm-bridge', os.path.join(root, 'usr/bin/vtpm-bridge')))
    env = dict(os.environ, MANPATH=os.path.join(root, 'usr/share/man'), SYSTEMD_LOG_LEVEL='notice')
    r = ctx.run(['systemd-analyze', 'verify', inst], 60, env)
    out = (r.stdout + r.stderr).decode(errors='replace')
    check(r.returncode == 0 and 'vtpm-bridge@a.service' not in out,
          'systemd-analyze verify: exit %d: %s' % (r.returncode, out[-800:]))


@test('instances/udev-removed', labels=ONLY_OURS)
def udev_removed(ctx):
    """The kernel removed a node: the CDI spec naming it goes unless its instance
    still lives and owns that node; other specs and other files stay."""
    dirs = Dirs(ctx)
    os.makedirs(dirs.cdi)
    live = subprocess.Popen(['sleep', '60'])
    ctx.procs.append(live)
    record(dirs, 'live', live.pid, starttime(live.pid), tpm='tpm3', tpmrm='tpmrm3')
    specs = {}
    for name, node in (('live', 'tpmrm3'), ('gone', 'tpmrm4'), ('other', 'tpmrm5')):
        path = os.path.join(dirs.cdi, 'vtpm-bridge-%s.json' % name)
        with open(path, 'w') as f:
            f.write('{ "deviceNodes": [ { "path": "/dev/tpmrm0", "hostPath": "/dev/%s" } ] }\n' % node)
        specs[name] = path
    foreign = os.path.join(dirs.cdi, 'vendor-x.json')
    with open(foreign, 'w') as f:
        f.write('{ "hostPath": "/dev/tpmrm4" }\n')
    for node in ('tpmrm3', 'tpmrm4', 'tpmrm44'):
        rc, out, err = cmd(ctx, dirs, 'udev-removed', node)
        check(rc == 0 and out == '' and err == '', 'udev-removed %s: exit %d %r %r' % (node, rc, out, err))
    check(os.path.exists(specs['live']), "a live instance's spec was removed")
    check(not os.path.exists(specs['gone']), "a gone instance's spec naming the removed node stayed")
    check(os.path.exists(specs['other']) and os.path.exists(foreign), 'a spec naming another node, or not ours, was removed')
    live.kill()
    live.wait()
    rc, out, err = cmd(ctx, dirs, 'udev-removed', 'tpmrm3')
    check(rc == 0 and not os.path.exists(specs['live']), 'the spec of an instance that died stayed')
