"""The command-line forms of ../shared/spec/cli-forms.md (Proxmox VE,
dockur/windows, mkosi, systemd-vmspawn, Incus/LXD), each against both
daemons: sub-option syntax (section 1), the short options and -d (2), --log
(3), the data listener (4), TPM_PATH (5), --ctrl type=unixio,fd= (6)."""
import json
import os
import re
import signal
import socket
import stat

import tpm2
from harness import test, check, Fail, Skip, OURS, SWTPM, Ctrl, Data, free_port_pair, wait_for, CMD_SHUTDOWN


def binary(ctx, kind=None):
    return ctx.binary(kind or ctx.kind)


def clean_env(**kw):
    """The environment without TPM_PATH and TPM_PORT, plus kw."""
    env = {k: v for k, v in os.environ.items() if k not in ('TPM_PATH', 'TPM_PORT')}
    env.update(kw)
    return env


def run(ctx, args, env=None, timeout=10):
    return ctx.run(binary(ctx) + list(args), timeout=timeout, env=env or clean_env())


def err_lines(r):
    return [l for l in r.stderr.decode(errors='replace').splitlines() if l.strip()]


def state_dir(ctx, name, size=None):
    """A state directory; with size, holding a (fake) tpm2-00.permall of that many bytes,
    so that --print-states tells which directory was used."""
    d = ctx.mkdir(name)
    if size:
        with open(os.path.join(d, 'tpm2-00.permall'), 'wb') as f:
            f.write(os.urandom(size))
    return d


def print_states(ctx, tpmstate_args, env=None):
    """--print-states with these argv words for the state: the permall size listed, or None."""
    r = run(ctx, ['--tpm2', '--print-states'] + tpmstate_args, env=env)
    check(r.returncode == 0, '%s: exit %d: %r' % (' '.join(tpmstate_args), r.returncode, r.stderr[-300:]))
    try:
        states = json.loads(r.stdout)['states']
    except (ValueError, KeyError):
        raise Fail('%s: --print-states printed %r' % (' '.join(tpmstate_args), r.stdout[:200]))
    sizes = [s['size'] for s in states if s.get('name') == 'permall']
    return sizes[0] if sizes else None


def refused(ctx, args, names_ours, names_swtpm=None, env=None):
    """argv is refused: exit 1, one line on stderr naming the option (ours) or
    naming what swtpm names; nothing on stdout."""
    r = run(ctx, args, env=env)
    lines = err_lines(r)
    what = ' '.join(args)
    check(r.returncode == 1, '%s: exit %d, expected 1 (%r)' % (what, r.returncode, lines[:2]))
    check(len(lines) == 1, '%s: expected a one-line error, got %r' % (what, lines[:4]), 'multiline')
    names = names_ours if ctx.kind == OURS else (names_swtpm or names_ours)
    check(names in lines[0], '%s: the error does not name %r: %r' % (what, names, lines[0]), 'unnamed')
    check(not r.stdout.strip(), '%s: printed on stdout: %r' % (what, r.stdout[:200]))
    return lines[0]


def failing_start(ctx, log_opts, extra=(), env=None):
    """A start that fails making its ctrl socket (its directory is missing), with
    `log_opts` as the --log value (None: no --log).  Returns the run."""
    st = state_dir(ctx, 'fs-state')
    args = ['--tpm2', '--tpmstate', 'dir=' + st, '--ctrl', 'type=unixio,path=%s/missing/ctrl' % ctx.tmp]
    if log_opts is not None:
        args += ['--log', log_opts]
    r = run(ctx, args + list(extra), env=env)
    check(r.returncode == 1, 'a start with an impossible --ctrl path exited %d' % r.returncode)
    return r


def read_text(path):
    try:
        with open(path, 'rb') as f:
            return f.read().decode(errors='replace')
    except FileNotFoundError:
        return None


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def read_pid(path, timeout=5):
    check(wait_for(lambda: os.path.exists(path) and open(path).read().strip(), timeout),
          'no pid file %s' % path)
    with open(path) as f:
        return int(f.read().strip())


def stop_pid(pid):
    if pid_alive(pid):
        os.kill(pid, signal.SIGTERM)
        if not wait_for(lambda: not pid_alive(pid), 5):
            os.kill(pid, signal.SIGKILL)
            raise Fail('daemon %d did not exit on SIGTERM' % pid)


def tcp_listeners(pid):
    """The TCP ports process pid listens on (both families), from /proc."""
    inodes = set()
    for fd in os.listdir('/proc/%d/fd' % pid):
        try:
            m = re.match(r'socket:\[(\d+)\]$', os.readlink('/proc/%d/fd/%s' % (pid, fd)))
        except OSError:
            continue
        if m:
            inodes.add(m.group(1))
    ports = set()
    for table in ('/proc/net/tcp', '/proc/net/tcp6'):
        with open(table) as f:
            for line in f.readlines()[1:]:
                p = line.split()
                if p[3] == '0A' and p[9] in inodes:
                    ports.add(int(p[1].rsplit(':', 1)[1], 16))
    return ports


def getrandom_at(addr, family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(addr)
    except OSError as e:
        s.close()
        raise Fail('connect to %s: %s' % (addr, e))
    d = Data(s, 'data %s' % (addr,))
    resp = d.transact(tpm2.get_random(8))
    check(tpm2.rc_of(resp) == 0, 'GetRandom at %s: %s' % (addr, resp.hex()))
    return d


def write_state(ctx, path, what):
    """NV_DefineSpace over the data socket at path: the TPM writes its permall."""
    with Data.to(path) as d:
        rc = tpm2.rc_of(d.transact(tpm2.nv_define(0x01500040, 8)))
    check(rc == 0, '%s: NV_DefineSpace: rc 0x%x' % (what, rc))


def socket_argv(ctx, st, extra=(), log=True, flags='not-need-init,startup-clear'):
    """--tpm2, the state, a unix ctrl socket at ctx.path('c'), flags, a log file."""
    argv = binary(ctx) + ['--tpm2', '--tpmstate', 'dir=' + st, '--ctrl', 'type=unixio,path=' + ctx.path('c')]
    if flags:
        argv += ['--flags', flags]
    if log:
        argv += ['--log', 'file=%s,level=2' % ctx.path('log')]
    return argv + list(extra)


# ============================================================ 1. sub-option syntax

@test('cmdline/forms/subopt/split-at-every-comma-empty-items-skipped')
def _(ctx):
    a = state_dir(ctx, 'a', 100)
    check(print_states(ctx, ['--tpmstate', ',,dir=%s,,' % a]) == 100, 'empty items around dir= were not skipped')
    check(print_states(ctx, ['--tpmstate', 'dir=%s,,,mode=0600,' % a]) == 100, 'empty items between were not skipped')


@test('cmdline/forms/subopt/value-keeps-equals-and-spaces')
def _(ctx):
    """The name ends at the first '='; the value keeps '=' and spaces verbatim."""
    a = state_dir(ctx, 'x=y z ', 100)
    check(print_states(ctx, ['--tpmstate', 'dir=' + a]) == 100, "a dir= value with '=' and spaces was not kept")


@test('cmdline/forms/subopt/empty-value-refused')
def _(ctx):
    a = state_dir(ctx, 'a')
    refused(ctx, ['--tpm2', '--tpmstate', 'dir=' + a, '--log', 'prefix='], '--log', "'prefix='")
    refused(ctx, ['--tpm2', '--tpmstate', 'dir=%s,mode=' % a, '--ctrl', 'type=unixio,path=' + ctx.path('c')],
            '--tpmstate', "'mode='")
    refused(ctx, ['--tpm2', '--tpmstate', 'dir=' + a, '--ctrl', 'type=unixio,path='], '--ctrl', "'path='")


@test('cmdline/forms/subopt/unknown-name-refused')
def _(ctx):
    a = state_dir(ctx, 'a')
    c = ['--ctrl', 'type=unixio,path=' + ctx.path('c')]
    refused(ctx, ['--tpm2', '--tpmstate', 'dir=' + a, '--log', 'file=%s,bogus=1' % ctx.path('l')],
            '--log', "'bogus=1'")
    refused(ctx, ['--tpm2', '--tpmstate', 'dir=%s,bogus' % a] + c, '--tpmstate', "'bogus'")
    refused(ctx, ['--tpm2', '--tpmstate', 'dir=' + a, '--server', 'port=2600,bogus'] + c, '--server', "'bogus'")
    refused(ctx, ['--tpm2', '--tpmstate', 'dir=' + a, '--ctrl', 'type=unixio,path=%s,Path=x' % ctx.path('c')],
            '--ctrl', "'Path=x'")
    check(not os.path.exists(ctx.path('l')), 'a refused --log created its file')


@test('cmdline/forms/subopt/bare-name-and-booleans')
def _(ctx):
    """A bare name means true; true or 1 in any case is true, anything else false
    (observed on --log truncate over a log file with old content)."""
    a = state_dir(ctx, 'a')
    log = ctx.path('log')
    for opt, truncates in (('truncate', True), ('truncate=1', True), ('truncate=TRUE', True),
                           ('truncate=True', True), ('truncate=yes', False), ('truncate=0', False),
                           ('truncate=false', False)):
        with open(log, 'w') as f:
            f.write('old line\n')
        print_states(ctx, ['--tpmstate', 'dir=' + a, '--log', 'file=%s,%s' % (log, opt)])
        kept = 'old line' in read_text(log)
        check(kept != truncates, '--log file=...,%s: the old content was %s' % (opt, 'kept' if kept else 'truncated'))


@test('cmdline/forms/subopt/first-occurrence-wins')
def _(ctx):
    a, b = state_dir(ctx, 'a', 100), state_dir(ctx, 'b', 200)
    check(print_states(ctx, ['--tpmstate', 'dir=%s,dir=%s' % (a, b)]) == 100, 'dir=A,dir=B did not use A')
    check(print_states(ctx, ['--tpmstate', 'backend-uri=dir://%s,backend-uri=dir://%s' % (a, b)]) == 100,
          'backend-uri=A,backend-uri=B did not use A')
    print_states(ctx, ['--tpmstate', 'dir=' + a, '--log', 'file=%s,file=%s' % (ctx.path('l1'), ctx.path('l2'))])
    check(os.path.exists(ctx.path('l1')) and not os.path.exists(ctx.path('l2')),
          '--log file=L1,file=L2 did not log to L1 alone')
    # every occurrence is still checked
    r = run(ctx, ['--tpm2', '--print-states', '--tpmstate', 'dir=' + a, '--log',
                  'file=%s,level=1,level=abc' % ctx.path('l3')])
    check(r.returncode == 1, '--log level=1,level=abc: exit %d, expected 1' % r.returncode)


@test('cmdline/forms/subopt/last-whole-option-wins')
def _(ctx):
    a, b = state_dir(ctx, 'a', 100), state_dir(ctx, 'b', 200)
    check(print_states(ctx, ['--tpmstate', 'dir=' + a, '--tpmstate', 'dir=' + b]) == 200,
          '--tpmstate A --tpmstate B did not use B')
    print_states(ctx, ['--tpmstate', 'dir=' + a, '--log', 'file=' + ctx.path('l1'), '--log',
                       'file=' + ctx.path('l2')])
    check(os.path.exists(ctx.path('l2')) and not os.path.exists(ctx.path('l1')),
          '--log file=L1 --log file=L2 did not log to L2 alone')
    # the second --tpmstate replaces the first whole: it has no directory
    r = run(ctx, ['--tpm2', '--print-states', '--tpmstate', 'dir=' + a, '--tpmstate', 'mode=0600'])
    check(r.returncode == 1, '--tpmstate dir=A --tpmstate mode=0600: exit %d, expected 1' % r.returncode)


@test('cmdline/forms/subopt/dir-wins-over-backend-uri')
def _(ctx):
    a, b = state_dir(ctx, 'a', 100), state_dir(ctx, 'b', 200)
    check(print_states(ctx, ['--tpmstate', 'backend-uri=dir://%s,dir=%s' % (b, a)]) == 100,
          'backend-uri=B,dir=A did not use A')
    check(print_states(ctx, ['--tpmstate', 'dir=%s,backend-uri=dir://%s' % (a, b)]) == 100,
          'dir=A,backend-uri=B did not use A')
    check(print_states(ctx, ['--tpmstate', 'dir=%s,backend-uri=foo://x' % a]) == 100,
          'beside dir=, an unknown backend-uri was not ignored')


@test('cmdline/forms/subopt/number-formats')
def _(ctx):
    """mode= is octal; port=, fd= and level= decimal; uid= and gid= a number or a name."""
    st = state_dir(ctx, 'st')
    c = ['--ctrl', 'type=unixio,path=' + ctx.path('c')]
    for bad, opt in ((['--tpmstate', 'dir=%s,mode=0999' % st] + c, '--tpmstate'),
                     (['--tpmstate', 'dir=' + st, '--server', 'type=tcp,port=0x10'] + c, '--server'),
                     (['--tpmstate', 'dir=' + st, '--log', 'level=0x2'] + c, '--log')):
        r = run(ctx, ['--tpm2'] + bad)
        check(r.returncode == 1, '%s: exit %d, expected 1' % (' '.join(bad), r.returncode))
    argv = binary(ctx) + ['--tpm2', '--tpmstate', 'dir=%s,mode=600' % st, '--flags', 'not-need-init,startup-clear',
                          '--ctrl', 'type=unixio,path=%s,mode=640,uid=nobody,gid=nogroup' % ctx.path('c'),
                          '--server', 'type=unixio,path=' + ctx.path('s'), '--log', 'file=' + ctx.path('log')]
    d = ctx.start(argv=argv, ctrl_addr=ctx.path('c'), state=st)
    sst = os.stat(ctx.path('c'))
    check(stat.S_IMODE(sst.st_mode) == 0o640, 'ctrl socket mode %o, expected 640 (mode=640 is octal)'
          % stat.S_IMODE(sst.st_mode))
    check((sst.st_uid, sst.st_gid) == (65534, 65534), 'ctrl socket owner %d:%d, expected nobody:nogroup'
          % (sst.st_uid, sst.st_gid))
    perm = os.path.join(st, 'tpm2-00.permall')
    write_state(ctx, ctx.path('s'), 'mode=600')
    check(stat.S_IMODE(os.stat(perm).st_mode) == 0o600, 'state file mode %o, expected 600'
          % stat.S_IMODE(os.stat(perm).st_mode))
    d.check_alive()


# ============================================================ 2. short options, -d

@test('cmdline/forms/short/h-prints-usage')
def _(ctx):
    r = ctx.run(binary(ctx) + ['-h'], timeout=5)
    check(r.returncode == 0 and b'--tpmstate' in r.stdout, 'socket -h: exit %d, %r' % (r.returncode, r.stdout[:100]))


@test('cmdline/forms/short/bundled-td')
def _(ctx):
    """socket -td: a daemon (the starter exits 0) that ends with its data client."""
    st = state_dir(ctx, 'st')
    argv = socket_argv(ctx, st, ['-td', '--server', 'type=unixio,path=' + ctx.path('s'),
                                 '--pid', 'file=' + ctx.path('pid')])
    r = ctx.run(argv, timeout=20, env=clean_env())
    check(r.returncode == 0, '-td: the starting process exited %d: %r' % (r.returncode, r.stderr[-300:]))
    pid = read_pid(ctx.path('pid'))
    try:
        check(pid_alive(pid), '-td: no daemon running')
        d = Data.to(ctx.path('s'))
        check(tpm2.rc_of(d.transact(tpm2.get_random(8))) == 0, 'GetRandom')
        d.close()
        check(wait_for(lambda: not pid_alive(pid), 5), '-td: still running 5 s after the data client left')
    finally:
        if pid_alive(pid):
            os.kill(pid, signal.SIGKILL)


@test('cmdline/forms/short/f-data-connection')
def _(ctx):
    """-f N / --fd N: an already connected data socket, served; its end ends the
    process (implied --terminate), status 0."""
    for opt in ('-f', '--fd'):
        st = state_dir(ctx, 'st' + opt)
        mine, theirs = socket.socketpair()
        argv = binary(ctx) + ['--tpm2', '--tpmstate', 'dir=' + st, '--flags', 'not-need-init,startup-clear',
                              opt, '3', '--log', 'file=%s,level=2' % ctx.path('log' + opt)]
        d = ctx.start(argv=argv, state=st, fd_map={3: theirs.fileno()}, ready=False, env=clean_env())
        theirs.close()
        data = Data(mine, 'data (%s 3)' % opt)
        r = data.transact(tpm2.get_random(8))
        check(tpm2.rc_of(r) == 0, '%s 3: GetRandom: %s' % (opt, r.hex()))
        data.close()
        rc = d.wait_exit(5)
        check(rc is not None, '%s 3: still running 5 s after the data peer closed' % opt)
        check(rc == 0, '%s 3: exit status %d after the data peer closed' % (opt, rc))


def _fd_refusal(kind):
    def fn(ctx):
        st = state_dir(ctx, 'st')
        fd_map, keep = {}, []
        if kind in ('stdin', 'stdout', 'stderr'):
            num = {'stdin': 0, 'stdout': 1, 'stderr': 2}[kind]
        else:
            num = 3
            if kind == 'regular-file':
                f = open(ctx.path('file'), 'w+')
                keep.append(f)
                fd = f.fileno()
            elif kind == 'directory':
                fd = os.open(ctx.tmp, os.O_RDONLY | os.O_DIRECTORY)
            elif kind == 'block-device':
                blk = next((p for p in ('/dev/loop0', '/dev/sda', '/dev/vda') if os.path.exists(p)
                            and stat.S_ISBLK(os.stat(p).st_mode)), None)
                if blk is None:
                    raise Skip('no block device node on this host')
                fd = os.open(blk, os.O_PATH)
            elif kind == 'symlink':
                os.symlink(ctx.tmp, ctx.path('link'))
                fd = os.open(ctx.path('link'), os.O_PATH | os.O_NOFOLLOW)
            fd_map = {3: fd}
        argv = binary(ctx) + ['--tpm2', '--tpmstate', 'dir=' + st, '-f', str(num)]
        d = ctx.start(argv=argv, state=st, fd_map=fd_map, ready=False, env=clean_env())
        rc = d.wait_exit(5)
        check(rc == 1, '-f %d (%s): exit %s, expected 1' % (num, kind, rc))
        lines = [l for l in d.stderr().splitlines() if l.strip()]
        check(len(lines) == 1, '-f %d (%s): expected a one-line error, got %r' % (num, kind, lines[:3]), 'multiline')
        check('-f' in lines[0] and str(num) in lines[0], '-f %d (%s): the error does not name -f and the fd: %r'
              % (num, kind, lines[0]), 'unnamed')
    return fn


for _kind in ('stdin', 'stdout', 'stderr', 'regular-file', 'directory', 'block-device', 'symlink'):
    test('cmdline/forms/short/f-refused/%s' % _kind,
         xfail_swtpm=('unnamed', 'the refusal names neither -f nor the descriptor'))(_fd_refusal(_kind))


@test('ours-only/cmdline-forms/f-listening-socket-refused (a listening socket is --server fd=)', labels=(OURS,))
def _(ctx):
    st = state_dir(ctx, 'st')
    lst = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    lst.bind(ctx.path('l'))
    lst.listen(1)
    d = ctx.start(argv=binary(ctx) + ['--tpm2', '--tpmstate', 'dir=' + st, '-f', '3'], state=st,
                  fd_map={3: lst.fileno()}, ready=False, env=clean_env())
    check(d.wait_exit(5) == 1, '-f with a listening socket was not refused')
    check('listening' in d.stderr() and '--server' in d.stderr(), 'the error does not say what to do: %r' % d.stderr())


def _runas_dirs(ctx):
    os.chmod(ctx.tmp, 0o755)
    st = ctx.mkdir('st')
    pub = ctx.mkdir('pub')
    os.chmod(st, 0o777)
    os.chmod(pub, 0o777)
    return st, pub


@test('cmdline/forms/short/runas-log-file-is-the-users')
def _(ctx):
    """-r nobody: the process runs as nobody, and its --log file is opened as
    nobody (created 0600, owned by nobody), as swtpm opens it after --runas."""
    st, pub = _runas_dirs(ctx)
    log = os.path.join(pub, 'log')
    argv = binary(ctx) + ['--tpm2', '--tpmstate', 'dir=' + st, '--flags', 'not-need-init,startup-clear',
                          '--ctrl', 'type=unixio,path=%s/c' % pub, '-r', 'nobody', '--log', 'file=%s,level=2' % log]
    d = ctx.start(argv=argv, state=st, ctrl_addr=pub + '/c', env=clean_env())
    with open('/proc/%d/status' % d.pid) as f:
        uid = re.search(r'^Uid:\s+(\d+)', f.read(), re.M).group(1)
    check(uid == '65534', '-r nobody: the process runs as uid %s' % uid)
    lst = os.lstat(log)
    check((lst.st_uid, lst.st_gid) == (65534, 65534), 'the log file is owned by %d:%d, not nobody:nogroup'
          % (lst.st_uid, lst.st_gid))
    check(stat.S_IMODE(lst.st_mode) == 0o600, 'the log file mode is %o, not 600' % stat.S_IMODE(lst.st_mode))


@test('cmdline/forms/short/runas-log-file-where-the-user-cannot-write',
      xfail_swtpm=('silent', 'exits 1 without a word (the error goes to the log it could not open)'))
def _(ctx):
    st, pub = _runas_dirs(ctx)
    closed = ctx.mkdir('root-only')
    os.chmod(closed, 0o755)
    argv = binary(ctx) + ['--tpm2', '--tpmstate', 'dir=' + st, '--flags', 'not-need-init,startup-clear',
                          '--ctrl', 'type=unixio,path=%s/c' % pub, '-r', 'nobody', '--log',
                          'file=%s/log' % closed]
    d = ctx.start(argv=argv, state=st, ready=False, env=clean_env())
    rc = d.wait_exit(5)
    check(rc == 1, 'a --log file= that the --runas user cannot create: exit %s, expected 1' % rc)
    check(not os.path.exists(closed + '/log'), 'the log file was created (as root) where nobody cannot write')
    err = d.stderr()
    check('--log' in err and closed in err, 'no error naming --log and the path on stderr: %r' % err, 'silent')


def _daemon_start(ctx, st, flags, extra=()):
    argv = binary(ctx) + ['-d', '--tpm2', '--tpmstate', 'dir=' + st, '--ctrl', 'type=unixio,path=' + ctx.path('c'),
                          '--pid', 'file=' + ctx.path('pid'), '--log', 'file=%s,level=2' % ctx.path('log')]
    if flags:
        argv += ['--flags', flags]
    return ctx.run(argv + list(extra), timeout=20, env=clean_env())


@test('cmdline/forms/daemon/status-missing-state-not-need-init')
def _(ctx):
    """-d --flags not-need-init with a state directory that does not exist: the
    starting process exits 1, no daemon is left."""
    r = _daemon_start(ctx, ctx.path('missing'), 'not-need-init')
    check(r.returncode == 1, 'exit %d, expected 1' % r.returncode)
    check(not os.path.exists(ctx.path('pid')), 'a pid file was written')


@test('cmdline/forms/daemon/status-missing-state',
      xfail_swtpm=('late', 'without not-need-init the start succeeds (exit 0); the state fails at CMD_INIT'))
def _(ctx):
    r = _daemon_start(ctx, ctx.path('missing'), None)
    if r.returncode == 0:
        pid = read_pid(ctx.path('pid'))
        try:
            res = Ctrl.to(ctx.path('c')).init()
        finally:
            stop_pid(pid)
        raise Fail('the starting process exited 0 with a missing state directory; CMD_INIT then answered 0x%x'
                   % res, 'late')
    check(r.returncode == 1, 'exit %d, expected 1' % r.returncode)


@test('cmdline/forms/daemon/stdout-stderr-devnull-new-session')
def _(ctx):
    st = state_dir(ctx, 'st')
    r = _daemon_start(ctx, st, 'not-need-init')
    check(r.returncode == 0, '-d: exit %d: %r' % (r.returncode, r.stderr[-300:]))
    pid = read_pid(ctx.path('pid'))
    try:
        for fd in (1, 2):
            target = os.readlink('/proc/%d/fd/%d' % (pid, fd))
            check(target == '/dev/null', '-d: the daemon\'s fd %d is %s, not /dev/null' % (fd, target))
        check(os.getsid(pid) != os.getsid(0), '-d: the daemon is in its starter\'s session')
    finally:
        stop_pid(pid)


@test('cmdline/forms/daemon/cwd-is-root')
def _(ctx):
    """-d: the daemon's working directory is / (it pins no directory)."""
    st = state_dir(ctx, 'st')
    r = _daemon_start(ctx, st, 'not-need-init')
    check(r.returncode == 0, '-d: exit %d: %r' % (r.returncode, r.stderr[-300:]))
    pid = read_pid(ctx.path('pid'))
    try:
        cwd = os.readlink('/proc/%d/cwd' % pid)
        check(cwd == '/', '-d: the daemon\'s working directory is %s, not /' % cwd)
    finally:
        stop_pid(pid)


@test('cmdline/forms/daemon/relative-paths-resolved-at-start',
      xfail_swtpm=('relative', 'a relative state dir is opened against / once detached: the state is not written'))
def _(ctx):
    """cd D && socket -d --tpmstate dir=rel --ctrl path=c --server path=s --pid file=p
    (no not-need-init): after CMD_INIT the state goes to D/rel, and at SIGTERM the
    socket and pid files in D are removed."""
    os.mkdir(ctx.path('rel'))
    argv = binary(ctx) + ['-d', '--tpm2', '--tpmstate', 'dir=rel', '--ctrl', 'type=unixio,path=c',
                          '--server', 'type=unixio,path=s', '--pid', 'file=p', '--log', 'file=log,level=2']
    r = ctx.run(argv, timeout=20, env=clean_env())    # ctx.run's working directory is ctx.tmp
    check(r.returncode == 0, '-d: exit %d: %r' % (r.returncode, r.stderr[-300:]))
    pid = read_pid(ctx.path('p'))
    try:
        with Ctrl.to(ctx.path('c')) as c:
            check(c.init() == 0, 'CMD_INIT (the relative state dir could not be opened?)', 'relative')
        with Data.to(ctx.path('s')) as d:
            for cmd, what in ((tpm2.startup(), 'Startup'), (tpm2.nv_define(0x01500040, 8), 'NV_DefineSpace')):
                rc = tpm2.rc_of(d.transact(cmd))
                check(rc == 0, '%s: rc 0x%x (the relative state dir could not be written?)' % (what, rc),
                      'relative')
        check(os.path.exists(ctx.path('rel', 'tpm2-00.permall')), 'no rel/tpm2-00.permall in the start directory',
              'relative')
    finally:
        stop_pid(pid)
    left = [f for f in ('c', 's', 'p') if os.path.exists(ctx.path(f))]
    check(not left, 'left in the start directory after SIGTERM: %s' % ', '.join(left), 'relative')


@test('cmdline/forms/exit/shutdown-status-and-files')
def _(ctx):
    """CMD_SHUTDOWN: exit 0; the pid file and the path= sockets are removed."""
    st = state_dir(ctx, 'st')
    argv = socket_argv(ctx, st, ['--server', 'type=unixio,path=' + ctx.path('s'), '--pid', 'file=' + ctx.path('pid')])
    d = ctx.start(argv=argv, state=st, ctrl_addr=ctx.path('c'), env=clean_env())
    check(wait_for(lambda: os.path.exists(ctx.path('pid')), 5), 'no pid file')
    with d.ctrl() as c:
        check(c.request(CMD_SHUTDOWN)[0] == 0, 'CMD_SHUTDOWN')
    check(d.wait_exit(5) == 0, 'exit status after CMD_SHUTDOWN: %s' % d.proc.returncode)
    left = [f for f in ('c', 's', 'pid') if os.path.exists(ctx.path(f))]
    check(not left, 'left after CMD_SHUTDOWN: %s' % ', '.join(left))


# ============================================================ 3. --log

@test('cmdline/forms/log/file-appends-creates-0600')
def _(ctx):
    log = ctx.path('log')
    with open(log, 'w') as f:
        f.write('old line\n')
    failing_start(ctx, 'file=' + log)
    text = read_text(log)
    check(text.startswith('old line\n') and len(text) > len('old line\n'),
          'the log was not appended to: %r' % text[:200])
    failing_start(ctx, 'file=' + ctx.path('new'))
    mode = stat.S_IMODE(os.stat(ctx.path('new')).st_mode)
    check(mode == 0o600, 'a new log file has mode %o, not 600' % mode)


@test('cmdline/forms/log/truncate')
def _(ctx):
    log = ctx.path('log')
    with open(log, 'w') as f:
        f.write('old line\n')
    failing_start(ctx, 'file=%s,truncate' % log)
    text = read_text(log)
    check('old line' not in text and text.strip(), 'truncate: the log holds %r' % text[:200])


@test('cmdline/forms/log/file-symlink-refused',
      xfail_swtpm=('silent', 'exits 1 without a word (the error goes to the log it could not open)'))
def _(ctx):
    """A --log file= that is a symbolic link is not followed (O_NOFOLLOW): exit 1,
    the target untouched, and the reason on stderr."""
    with open(ctx.path('target'), 'w') as f:
        f.write('keep\n')
    os.symlink(ctx.path('target'), ctx.path('log'))
    st = state_dir(ctx, 'st')
    d = ctx.start(argv=socket_argv(ctx, st, ['--log', 'file=' + ctx.path('log')], log=False), state=st,
                  ctrl_addr=ctx.path('c'), ready=False, env=clean_env())
    rc = d.wait_exit(5)
    check(rc == 1, 'a symlinked --log file=: exit %s, expected 1' % rc)
    check(read_text(ctx.path('target')) == 'keep\n', 'the symlink\'s target was written to')
    err = d.stderr()
    check('--log' in err and ctx.path('log') in err, 'no error naming --log and the path: %r' % err, 'silent')


@test('cmdline/forms/log/fd')
def _(ctx):
    """--log fd=N: the messages go to N; beside file=, fd= wins and the file gets nothing."""
    for opts in ('fd=3', 'file=%s,fd=3' % ctx.path('also')):
        r_end, w_end = os.pipe()
        st = state_dir(ctx, 'st')
        argv = binary(ctx) + ['--tpm2', '--tpmstate', 'dir=' + st, '--ctrl',
                              'type=unixio,path=%s/missing/c' % ctx.tmp, '--log', opts]
        d = ctx.start(argv=argv, state=st, fd_map={3: w_end}, ready=False, env=clean_env())
        os.close(w_end)
        check(d.wait_exit(5) == 1, '--log %s: a failing start exited %s' % (opts, d.proc.returncode))
        got = b''
        while True:
            chunk = os.read(r_end, 65536)
            if not chunk:
                break
            got += chunk
        os.close(r_end)
        check(got.strip(), '--log %s: the error did not reach fd 3' % opts)
    check(not read_text(ctx.path('also')), 'beside fd=, the file= got messages')


@test('cmdline/forms/log/fd-not-writable-refused',
      xfail_swtpm=('silent', 'exits 1 without a word (the error goes to the fd it cannot write)'))
def _(ctx):
    r_end, w_end = os.pipe()
    st = state_dir(ctx, 'st')
    d = ctx.start(argv=socket_argv(ctx, st, ['--log', 'fd=3'], log=False), state=st, fd_map={3: r_end},
                  ready=False, env=clean_env())
    os.close(w_end)
    check(d.wait_exit(5) == 1, '--log fd= on a read-only fd: exit %s, expected 1' % d.proc.returncode)
    err = d.stderr()
    check('--log' in err and '3' in err, 'no error naming --log and the fd on stderr: %r' % err, 'silent')


@test('cmdline/forms/log/level-0-is-level-1')
def _(ctx):
    logs = []
    for level in (0, 1):
        log = ctx.path('log%d' % level)
        failing_start(ctx, 'file=%s,level=%d' % (log, level))
        logs.append(read_text(log))
    check(logs[1].strip(), 'level=1 logged nothing for a failed start')
    check(logs[0] == logs[1], 'level=0 logged %r, level=1 %r' % (logs[0][:200], logs[1][:200]))


@test('cmdline/forms/log/prefix-verbatim-no-separator')
def _(ctx):
    for prefix in ('[id=100]', '[id=1733400000] '):
        log = ctx.path('log-%d' % len(prefix))
        failing_start(ctx, 'file=%s,level=1,prefix=%s' % (log, prefix))
        lines = [l for l in read_text(log).splitlines() if l.strip()]
        check(lines, 'prefix=%r: nothing logged' % prefix)
        for l in lines:
            check(l.startswith(prefix) and len(l) > len(prefix) and l[len(prefix)] != ' ',
                  'prefix=%r: the line is %r (the prefix verbatim, then the message)' % (prefix, l))


@test('cmdline/forms/log/no-log-goes-to-stderr-with-a-default-prefix')
def _(ctx):
    """No --log: stderr, each line starting with the program's name and ': '
    (swtpm: "swtpm: ", ours "vtpm-bridge: "); any --log drops that prefix."""
    name = 'swtpm: ' if ctx.kind == SWTPM else 'vtpm-bridge: '
    lines = err_lines(failing_start(ctx, None))
    check(lines, 'no --log: nothing on stderr for a failed start')
    check(all(l.startswith(name) for l in lines), 'no --log: lines without %r: %r' % (name, lines[:3]))
    lines = err_lines(failing_start(ctx, 'level=1'))
    check(lines, '--log level=1: nothing on stderr for a failed start')
    check(not any(l.startswith(name) for l in lines), '--log level=1 kept the default prefix: %r' % lines[:3])


# ============================================================ 4. the data listener

def _server_daemon(ctx, server_args, env):
    st = state_dir(ctx, 'st')
    argv = socket_argv(ctx, st, server_args)
    return ctx.start(argv=argv, state=st, ctrl_addr=ctx.path('c'), env=env)


@test('cmdline/forms/server/bindaddr-ipv6')
def _(ctx):
    if not socket.has_ipv6 or not os.path.exists('/proc/net/if_inet6'):
        raise Skip('no IPv6 on this host')
    port = free_port_pair()
    _server_daemon(ctx, ['--server', 'port=%d,bindaddr=::1' % port], clean_env())
    getrandom_at(('::1', port), socket.AF_INET6).close()
    s = socket.socket()
    s.settimeout(1)
    check(s.connect_ex(('127.0.0.1', port)) != 0, 'bindaddr=::1 also listens on 127.0.0.1')
    s.close()


@test('cmdline/forms/server/TPM_PORT-without-server-ignored')
def _(ctx):
    port = free_port_pair()
    d = _server_daemon(ctx, [], clean_env(TPM_PORT=str(port)))
    check(tcp_listeners(d.pid) == set(), 'TPM_PORT without --server: the process listens on TCP %s'
          % sorted(tcp_listeners(d.pid)))


@test('cmdline/forms/server/port-wins-over-TPM_PORT')
def _(ctx):
    port = free_port_pair()
    d = _server_daemon(ctx, ['--server', 'port=%d' % (port + 1)], clean_env(TPM_PORT=str(port)))
    check(tcp_listeners(d.pid) == {port + 1}, 'listening on %s, expected %d' % (sorted(tcp_listeners(d.pid)), port + 1))
    getrandom_at(('127.0.0.1', port + 1)).close()


@test('cmdline/forms/server/p-is-TPM_PORT-for-server-type-tcp')
def _(ctx):
    """TPM_PORT=A -p B --server type=tcp: B (-p sets TPM_PORT; the later --server
    replaces -p's type=tcp,disconnect, so connections stay open)."""
    port = free_port_pair()
    d = _server_daemon(ctx, ['-p', str(port + 1), '--server', 'type=tcp'], clean_env(TPM_PORT=str(port)))
    check(tcp_listeners(d.pid) == {port + 1}, 'listening on %s, expected %d' % (sorted(tcp_listeners(d.pid)), port + 1))
    data = getrandom_at(('127.0.0.1', port + 1))
    check(tpm2.rc_of(data.transact(tpm2.get_random(8))) == 0, 'a second command on the same connection')
    data.close()


@test('cmdline/forms/server/p-last-disconnects')
def _(ctx):
    """--server type=tcp -p N: -p, the last, is type=tcp,disconnect on N: one response per connection."""
    port = free_port_pair()
    d = _server_daemon(ctx, ['--server', 'type=tcp,port=%d' % port, '-p', str(port + 1)], clean_env())
    check(tcp_listeners(d.pid) == {port + 1}, 'listening on %s, expected %d' % (sorted(tcp_listeners(d.pid)), port + 1))
    data = getrandom_at(('127.0.0.1', port + 1))
    extra, closed = data.recv_any(2.0)
    check(closed and not extra, '-p: the connection stayed open after a response')
    data.close()


@test('cmdline/forms/server/no-channel-at-all',
      xfail_swtpm=('idle', 'starts and waits forever with no channel to serve'))
def _(ctx):
    st = state_dir(ctx, 'st')
    d = ctx.start(argv=binary(ctx) + ['--tpm2', '--tpmstate', 'dir=' + st], state=st, ready=False, env=clean_env())
    rc = d.wait_exit(3)
    check(rc is not None, 'no --ctrl, --server, -p or -f: still running after 3 s, serving nothing', 'idle')
    check(rc == 1 and '--ctrl' in d.stderr(), 'exit %s, stderr %r' % (rc, d.stderr()))


# ============================================================ 5. TPM_PATH

def _tpm_path_daemon(ctx, env, state_args):
    argv = binary(ctx) + ['--tpm2'] + state_args + ['--ctrl', 'type=unixio,path=' + ctx.path('c'),
                                                    '--server', 'type=unixio,path=' + ctx.path('s'),
                                                    '--flags', 'not-need-init,startup-clear',
                                                    '--log', 'file=' + ctx.path('log')]
    return ctx.start(argv=argv, ctrl_addr=ctx.path('c'), env=env, ready=False)


@test('cmdline/forms/tpm_path/used-without-tpmstate')
def _(ctx):
    a = state_dir(ctx, 'a')
    d = _tpm_path_daemon(ctx, clean_env(TPM_PATH=a), [])
    d.wait_ready()
    write_state(ctx, ctx.path('s'), 'TPM_PATH')
    check(os.path.exists(os.path.join(a, 'tpm2-00.permall')), 'no state in $TPM_PATH')


@test('cmdline/forms/tpm_path/tpmstate-wins')
def _(ctx):
    a, b = state_dir(ctx, 'a'), state_dir(ctx, 'b')
    d = _tpm_path_daemon(ctx, clean_env(TPM_PATH=a), ['--tpmstate', 'dir=' + b])
    d.wait_ready()
    write_state(ctx, ctx.path('s'), 'TPM_PATH and --tpmstate')
    check(os.path.exists(os.path.join(b, 'tpm2-00.permall')), 'no state in the --tpmstate dir')
    check(os.listdir(a) == [], '$TPM_PATH was used beside --tpmstate: %s' % os.listdir(a))


@test('cmdline/forms/tpm_path/cannot-select-the-file-backend')
def _(ctx):
    target = ctx.path('f.tpm')
    d = _tpm_path_daemon(ctx, clean_env(TPM_PATH='file://' + target), [])
    check(d.wait_exit(5) == 1, 'TPM_PATH=file://...: exit %s, expected 1 (it names a directory)' % d.proc.returncode)
    check(not os.path.exists(target), 'TPM_PATH=file://%s made a state file' % target)


@test('cmdline/forms/tpm_path/neither-tpmstate-nor-TPM_PATH',
      xfail_swtpm=('late', 'starts without any state location and fails at CMD_INIT'))
def _(ctx):
    argv = binary(ctx) + ['--tpm2', '--ctrl', 'type=unixio,path=' + ctx.path('c'), '--log', 'file=' + ctx.path('log')]
    d = ctx.start(argv=argv, ctrl_addr=ctx.path('c'), env=clean_env(), ready=False)
    rc = d.wait_exit(2)
    if rc is None:
        d.wait_ready()
        with d.ctrl() as c:
            res = c.init()
        raise Fail('the start succeeded; CMD_INIT then answered 0x%x' % res, 'late')
    lines = [l for l in d.stderr().splitlines() if l.strip()]
    check(rc == 1 and len(lines) == 1 and '--tpmstate' in lines[0] and 'TPM_PATH' in lines[0],
          'exit %s, stderr %r' % (rc, lines))


@test('cmdline/forms/tpm_path/print-states-ignores-it')
def _(ctx):
    a = state_dir(ctx, 'a', 100)
    r = run(ctx, ['--tpm2', '--print-states'], env=clean_env(TPM_PATH=a))
    check(r.returncode == 1, '--print-states with only TPM_PATH: exit %d, expected 1' % r.returncode)
    check(b'--tpmstate' in r.stderr, 'the error does not name --tpmstate: %r' % r.stderr[:200])
    check(not r.stdout.strip(), 'printed %r' % r.stdout[:200])


# ============================================================ 6. --ctrl type=unixio,fd=N

def _listener(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen(4)
    return s


def _ctrl_fd_daemon(ctx, fd, ctrl_opts='', ctrl_addr=None):
    st = state_dir(ctx, 'st')
    argv = binary(ctx) + ['--tpm2', '--tpmstate', 'dir=' + st, '--ctrl', 'type=unixio,fd=3' + ctrl_opts,
                          '--log', 'file=%s,level=2' % ctx.path('log')]
    return ctx.start(argv=argv, state=st, ctrl_addr=ctrl_addr, fd_map={3: fd}, ready=False, env=clean_env())


@test('cmdline/forms/ctrl-fd/caller-listening-socket')
def _(ctx):
    """mkosi/systemd-vmspawn/Incus: the caller's listening socket as fd 3, with
    path= and mode= beside it (ignored); swtpm_ioctl -i, -g and -s as three
    clients one after another; exit 0; the socket file is left for its owner."""
    path = ctx.path('ctrl.sock')
    lst = _listener(path)
    os.chmod(path, 0o700)
    d = _ctrl_fd_daemon(ctx, lst.fileno(), ',path=%s,mode=0666' % ctx.path('other'), ctrl_addr=path)
    lst.close()
    d.wait_ready()
    rc, out, err = ctx.ioctl(d, '-i')
    rc, out, err = ctx.ioctl(d, '-g')
    check('ptm configuration flags' in out, 'swtpm_ioctl -g printed %r' % out)
    ctx.ioctl(d, '-s')
    check(d.wait_exit(5) == 0, 'exit status after swtpm_ioctl -s: %s' % d.proc.returncode)
    check(os.path.exists(path), 'the caller\'s socket file was removed')
    check(stat.S_IMODE(os.stat(path).st_mode) == 0o700, 'mode= beside fd= changed the socket\'s mode')
    check(not os.path.exists(ctx.path('other')), 'path= beside fd= made a socket')


@test('cmdline/forms/ctrl-fd/sigterm-leaves-the-socket-file')
def _(ctx):
    path = ctx.path('ctrl.sock')
    lst = _listener(path)
    d = _ctrl_fd_daemon(ctx, lst.fileno(), ctrl_addr=path)
    lst.close()
    d.wait_ready()
    check(d.terminate() == 0, 'exit status after SIGTERM: %s' % d.proc.returncode)
    check(os.path.exists(path), 'the caller\'s socket file was removed at exit')


@test('cmdline/forms/ctrl-fd/not-a-socket-refused')
def _(ctx):
    """fd= a regular file, or a closed fd: exit 1, the error names the fd (ours
    also --ctrl)."""
    with open(ctx.path('file'), 'w') as f:
        for fd_map in ({3: f.fileno()}, {}):
            st = state_dir(ctx, 'st')
            argv = binary(ctx) + ['--tpm2', '--tpmstate', 'dir=' + st, '--ctrl', 'type=unixio,fd=3']
            d = ctx.start(argv=argv, state=st, fd_map=fd_map, ready=False, env=clean_env())
            what = 'a regular file' if fd_map else 'a closed fd'
            check(d.wait_exit(5) == 1, '--ctrl fd= %s: exit %s, expected 1' % (what, d.proc.returncode))
            err = d.stderr()
            check('3' in err, '--ctrl fd= %s: the error does not name fd 3: %r' % (what, err))
            if ctx.kind == OURS:
                check('--ctrl' in err, '--ctrl fd= %s: the error does not name --ctrl: %r' % (what, err))


@test('cmdline/forms/ctrl-fd/connected-socket-served',
      xfail_swtpm=('timeout', 'busy-loops on accept() (EINVAL) and never answers'))
def _(ctx):
    """fd= a connected socket (one end of a socketpair): served as a client,
    as clientfd= is."""
    mine, theirs = socket.socketpair()
    d = _ctrl_fd_daemon(ctx, theirs.fileno())
    theirs.close()
    c = Ctrl(mine, 'ctrl (fd=3, connected)')
    caps = c.caps() if wait_for(lambda: d.alive(), 0.5) else None
    check(caps, 'GET_CAPABILITY over the connected fd: %r' % caps)
    check(c.init() == 0, 'CMD_INIT over the connected fd')
    c.close()
    d.check_alive('after the connected ctrl client left')
