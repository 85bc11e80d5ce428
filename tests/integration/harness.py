"""Harness for the integration tests: daemons of either kind, ctrl and data
clients, peers (tpm2-tools, swtpm_ioctl), and the check registry.

Every socket operation has a deadline, so a hang is a FAIL, never a stuck
suite.  Every process started here is killed when its test ends.
"""
import array
import errno
import fcntl
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import time

import tpm2

OURS = 'vtpm-bridge'
SWTPM = 'swtpm'
KINDS = (OURS, SWTPM)

# Ctrl command codes (ctrl-socket.md section 4).
CMD_GET_CAPABILITY = 0x01
CMD_INIT = 0x02
CMD_SHUTDOWN = 0x03
CMD_GET_TPMESTABLISHED = 0x04
CMD_SET_LOCALITY = 0x05
CMD_HASH_START = 0x06
CMD_HASH_DATA = 0x07
CMD_HASH_END = 0x08
CMD_CANCEL_TPM_CMD = 0x09
CMD_STORE_VOLATILE = 0x0a
CMD_RESET_TPMESTABLISHED = 0x0b
CMD_GET_STATEBLOB = 0x0c
CMD_SET_STATEBLOB = 0x0d
CMD_STOP = 0x0e
CMD_GET_CONFIG = 0x0f
CMD_SET_DATAFD = 0x10
CMD_SET_BUFFERSIZE = 0x11
CMD_GET_INFO = 0x12
CMD_LOCK_STORAGE = 0x13

BLOB_PERMANENT = 1
BLOB_VOLATILE = 2
BLOB_SAVESTATE = 3

TPM_SUCCESS = 0
TPM_BAD_PARAMETER = 0x03
TPM_BAD_ORDINAL = 0x0a
TPM_IOERROR = 0x1f
TPM_BAD_LOCALITY = 0x3d
TPM_RETRY = 0x800

# Fixed success-reply sizes of the ctrl commands (the 4-byte result included).
REPLY_LEN = {CMD_GET_CAPABILITY: 8, CMD_GET_TPMESTABLISHED: 8, CMD_GET_CONFIG: 8,
             CMD_SET_BUFFERSIZE: 16}

NV_INDEX = 0x01500020
NV_DATA = b'vtpm-bridge integration: nv data survives'


class Fail(Exception):
    """A check failed.  `tag` names a known swtpm defect class, for XFAIL."""

    def __init__(self, msg, tag=None):
        super().__init__(msg)
        self.tag = tag


class Timeout(Fail):
    pass


class Skip(Exception):
    pass


def check(cond, msg, tag=None):
    if not cond:
        raise Fail(msg, tag)


def need_tool(name):
    if shutil.which(name) is None:
        pkg = {'swtpm_ioctl': 'swtpm-tools', 'swtpm_setup': 'swtpm-tools', 'swtpm': 'swtpm'}.get(name, 'tpm2-tools')
        raise Fail('%s is not installed (Debian package %s; make check installs it)' % (name, pkg))


# ---------------------------------------------------------------- registry

TESTS = []
ALL_PROCS = []    # every Popen of the run, killed at exit whatever happens
ALL_GROUPS = []   # process groups of peers (swtpm_setup) that may leave children


def group_members(pgid):
    """Live pids in process group pgid (scanning /proc)."""
    out = []
    for p in os.listdir('/proc'):
        if not p.isdigit():
            continue
        try:
            with open('/proc/%s/stat' % p) as f:
                st = f.read()
        except OSError:
            continue
        fields = st[st.rindex(')') + 2:].split()
        if int(fields[2]) == pgid and fields[0] != 'Z':
            out.append(int(p))
    return out


def kill_group(pgid):
    if group_members(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except OSError:
            pass


def kill_everything():
    for p in ALL_PROCS:
        if p.poll() is None:
            try:
                p.kill()
                p.wait(5)
            except Exception:
                pass
    for g in ALL_GROUPS:
        kill_group(g)


class Test:
    def __init__(self, name, fn, labels, xfail_swtpm, timeout):
        self.name = name
        self.fn = fn
        self.labels = labels
        self.xfail_swtpm = xfail_swtpm  # (tag or None, reason) or None
        self.timeout = timeout


def test(name, labels=KINDS, xfail_swtpm=None, timeout=60):
    """Registers a check run once per label (a daemon kind, or 'a->b').

    xfail_swtpm=(tag, reason): Debian's swtpm is known to fail this check;
    on swtpm a Fail (with that tag, when tag is not None) is an XFAIL and a
    pass is an XPASS."""
    def deco(fn):
        TESTS.append(Test(name, fn, tuple(labels), xfail_swtpm, timeout))
        return fn
    return deco


# ---------------------------------------------------------------- sockets

def free_port_pair():
    """A port N with N and N+1 both free on 127.0.0.1 (found by binding 0)."""
    for _ in range(200):
        s = socket.socket()
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s2 = socket.socket()
        try:
            s2.bind(('127.0.0.1', port + 1))
        except OSError:
            continue
        finally:
            s2.close()
            s.close()
        if port + 1 < 65535:
            return port
    raise Fail('no free TCP port pair on 127.0.0.1')


def connect(addr, timeout=5.0):
    """A connected socket; a full unix listen backlog (EAGAIN) is retried until timeout."""
    end = time.monotonic() + timeout
    while True:
        if isinstance(addr, str):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        else:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        s.settimeout(max(0.01, end - time.monotonic()))
        try:
            s.connect(addr)
            return s
        except BlockingIOError:
            s.close()
            if time.monotonic() > end:
                raise
            time.sleep(0.002)
        except OSError:
            s.close()
            raise


class Conn:
    """A stream socket with deadline-bound reads."""

    def __init__(self, sock, what):
        self.sock = sock
        self.what = what

    @classmethod
    def to(cls, addr, what, timeout=5.0):
        try:
            return cls(connect(addr, timeout), what)
        except OSError as e:
            raise Fail('%s: connect to %s: %s' % (what, addr, e))

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        self.sock.settimeout(5.0)
        try:
            self.sock.sendall(data)
        except OSError as e:
            raise Fail('%s: send of %d bytes: %s' % (self.what, len(data), e))

    def recv_exact(self, n, timeout=5.0, what=''):
        """Exactly n bytes, or Fail on EOF / timeout."""
        buf = b''
        end = time.monotonic() + timeout
        while len(buf) < n:
            left = end - time.monotonic()
            if left <= 0:
                raise Timeout('%s%s: no reply within %.1fs (got %d of %d bytes: %s)'
                              % (self.what, what, timeout, len(buf), n, buf[:32].hex()), 'timeout')
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(n - len(buf))
            except socket.timeout:
                continue
            except OSError as e:
                raise Fail('%s%s: recv: %s (got %d of %d bytes)' % (self.what, what, e, len(buf), n), 'closed')
            if not chunk:
                raise Fail('%s%s: connection closed (got %d of %d bytes: %s)'
                           % (self.what, what, len(buf), n, buf[:32].hex()), 'closed')
            buf += chunk
        return buf

    def recv_any(self, timeout):
        """Whatever arrives within timeout: (bytes, closed)."""
        return self.recv_upto(None, timeout)

    def recv_upto(self, n, timeout):
        """Up to n bytes (None: no limit): returns early on n bytes or EOF:
        (bytes, closed)."""
        buf = b''
        end = time.monotonic() + timeout
        while n is None or len(buf) < n:
            left = end - time.monotonic()
            if left <= 0:
                return buf, False
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536 if n is None else n - len(buf))
            except socket.timeout:
                return buf, False
            except ConnectionResetError:
                return buf, True
            if not chunk:
                return buf, True
            buf += chunk
        return buf, False

    def no_more(self, timeout=0.2):
        """Fails if any byte arrives within timeout (EOF is fine)."""
        extra, closed = self.recv_any(timeout)
        check(not extra, '%s: unexpected extra bytes after the reply: %s' % (self.what, extra[:32].hex()), 'extra')


class Ctrl(Conn):
    """Client of the control channel (big-endian PTM/CMD messages)."""

    @classmethod
    def to(cls, addr, what='ctrl', timeout=5.0):
        return super().to(addr, what, timeout)

    def read_reply(self, code, timeout=5.0):
        """Reads one reply to `code`: (result, body after the result)."""
        n = REPLY_LEN.get(code)
        if code == CMD_GET_CAPABILITY:
            raw = self.recv_exact(8, timeout, ' GET_CAPABILITY')
            return 0, raw
        head = self.recv_exact(4, timeout, ' reply to 0x%02x' % code)
        (res,) = struct.unpack('>I', head)
        if code == CMD_GET_STATEBLOB and res in (0, TPM_RETRY):
            hdr = self.recv_exact(12, timeout, ' GET_STATEBLOB header')
            flags, tot, length = struct.unpack('>III', hdr)
            data = self.recv_exact(length, timeout, ' GET_STATEBLOB data') if length else b''
            return res, hdr + data
        if res != 0:
            return res, b''
        if n:
            return res, self.recv_exact(n - 4, timeout, ' reply to 0x%02x' % code)
        if code == CMD_GET_INFO:
            hdr = self.recv_exact(8, timeout, ' GET_INFO header')
            tot, length = struct.unpack('>II', hdr)
            return res, hdr + self.recv_exact(length, timeout, ' GET_INFO data')
        return res, b''

    def request(self, code, payload=b'', timeout=5.0, fds=None):
        msg = struct.pack('>I', code) + payload
        if fds:
            try:
                self.sock.sendmsg([msg], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', fds))])
            except OSError as e:
                raise Fail('ctrl: sendmsg: %s' % e)
        else:
            self.send(msg)
        return self.read_reply(code, timeout)

    def ok(self, code, payload=b'', timeout=5.0, what=None):
        res, body = self.request(code, payload, timeout)
        check(res == 0, '%s: result 0x%x' % (what or 'ctrl cmd 0x%02x' % code, res))
        return body

    # convenience
    def caps(self):
        return struct.unpack('>Q', self.request(CMD_GET_CAPABILITY)[1])[0]

    def init(self, flags=0):
        return self.request(CMD_INIT, struct.pack('>I', flags))[0]

    def stop(self):
        return self.request(CMD_STOP)[0]

    def set_locality(self, loc, pad=False):
        return self.request(CMD_SET_LOCALITY, bytes([loc]) + (b'\0\0\0' if pad else b''))[0]

    def get_blob(self, btype, offset=0):
        res, body = self.request(CMD_GET_STATEBLOB, struct.pack('>III', 0, btype, offset))
        if len(body) >= 12:
            flags, tot, length = struct.unpack('>III', body[:12])
            return res, body[12:]
        return res, b''

    def set_blob(self, btype, data, flags=0):
        return self.request(CMD_SET_STATEBLOB, struct.pack('>III', flags, btype, len(data)) + data)[0]

    def buffersize(self, size=0):
        res, body = self.request(CMD_SET_BUFFERSIZE, struct.pack('>I', size))
        return (res,) + (struct.unpack('>III', body) if res == 0 else (None, None, None))

    def established(self):
        res, body = self.request(CMD_GET_TPMESTABLISHED)
        return res, (body[0] if res == 0 else None)


class Data(Conn):
    """Client of the data channel: raw TPM commands framed by the header."""

    @classmethod
    def to(cls, addr, what='data', timeout=5.0):
        return super().to(addr, what, timeout)

    def read_response(self, timeout=10.0):
        head = self.recv_exact(10, timeout, ' TPM response header')
        tag, size, rc = tpm2.parse_header(head)
        check(10 <= size <= 65536, '%s: response header size %d' % (self.what, size))
        return head + (self.recv_exact(size - 10, timeout, ' TPM response body') if size > 10 else b'')

    def transact(self, cmd, timeout=10.0):
        self.send(cmd)
        return self.read_response(timeout)


# ---------------------------------------------------------------- daemons

class Daemon:
    """One `swtpm socket` or `vtpm-bridge socket` process."""

    def __init__(self, ctx, kind, argv, name, ctrl_addr, data_addr, state_dir, log_path,
                 pass_fds=(), preexec_fn=None, env=None, fd_map=None, close_fds=True):
        self.ctx = ctx
        self.kind = kind
        self.argv = argv
        self.name = name
        self.ctrl_addr = ctrl_addr
        self.data_addr = data_addr
        self.state_dir = state_dir
        self.log_path = log_path
        self.out_path = os.path.join(ctx.tmp, name + '.stdout')
        self.err_path = os.path.join(ctx.tmp, name + '.stderr')
        if fd_map:
            # {fd number in the child: fd in this process}; only these (and
            # 0-2) are inherited: every fd Python opens is close-on-exec.
            close_fds = False
            inner = preexec_fn

            def preexec_fn():
                high = {t: fcntl.fcntl(s, fcntl.F_DUPFD_CLOEXEC, 300) for t, s in fd_map.items()}
                for t, h in high.items():
                    os.dup2(h, t)  # inheritable
                    os.close(h)
                if inner:
                    inner()
        with open(self.out_path, 'wb') as out, open(self.err_path, 'wb') as err:
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                         pass_fds=pass_fds, close_fds=close_fds, preexec_fn=preexec_fn,
                                         env=env, cwd=ctx.tmp)
        ctx.procs.append(self.proc)
        ALL_PROCS.append(self.proc)
        self.pid = self.proc.pid

    # -- process
    def alive(self):
        return self.proc.poll() is None

    def wait_exit(self, timeout):
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stderr(self):
        with open(self.err_path, 'rb') as f:
            return f.read().decode(errors='replace')

    def log(self):
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().decode(errors='replace')
        except (OSError, TypeError):
            return ''

    def diag(self):
        return 'argv: %s\nstderr:\n%s\nlog (tail):\n%s' % (
            ' '.join(self.argv), self.stderr()[-1500:], self.log()[-1500:])

    def check_alive(self, what=''):
        rc = self.proc.poll()
        check(rc is None, '%s daemon died (exit %s)%s; stderr: %s'
              % (self.kind, rc, ' ' + what if what else '', self.stderr().strip()[-300:]), 'crash')

    def terminate(self, timeout=5.0):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise Fail('%s did not exit within %.0fs of SIGTERM' % (self.kind, timeout))
        return self.proc.returncode

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def wait_ready(self, timeout=10.0):
        """Until the ctrl socket answers GET_CAPABILITY."""
        end = time.monotonic() + timeout
        last = None
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise Fail('%s exited with %s during start-up: %s'
                           % (self.kind, self.proc.returncode, self.stderr().strip()[-400:] or self.log().strip()[-400:]))
            try:
                s = connect(self.ctrl_addr, 1.0)
            except OSError as e:
                last = e
                time.sleep(0.01)
                continue
            try:
                c = Ctrl(s, 'ctrl')
                c.caps()
                return
            except Fail as e:
                last = e
            finally:
                s.close()
            time.sleep(0.02)
        raise Fail('%s: ctrl socket %s did not answer within %.0fs (%s)' % (self.kind, self.ctrl_addr, timeout, last))

    # -- fds
    def fds(self):
        return sorted(int(x) for x in os.listdir('/proc/%d/fd' % self.pid))

    def fd_count(self):
        return len(self.fds())

    def stable_fd_count(self, quiet=0.2, timeout=3.0):
        """The fd count once it has not changed for `quiet` seconds (closes by
        clients are processed asynchronously)."""
        end = time.monotonic() + timeout
        n = self.fd_count()
        since = time.monotonic()
        while time.monotonic() < end:
            time.sleep(0.02)
            m = self.fd_count()
            if m != n:
                n, since = m, time.monotonic()
            elif time.monotonic() - since >= quiet:
                break
        return n

    def fd_targets(self):
        out = {}
        for fd in self.fds():
            try:
                out[fd] = os.readlink('/proc/%d/fd/%d' % (self.pid, fd))
            except OSError:
                pass
        return out

    def expect_fds(self, baseline, what, tag='fd-leak'):
        """Waits up to 1 s for the fd count to return to `baseline`."""
        end = time.monotonic() + 1.0
        while True:
            n = self.fd_count()
            if n == baseline or time.monotonic() > end:
                break
            time.sleep(0.05)
        if n != baseline:
            kinds = {}
            for t in self.fd_targets().values():
                k = re.sub(r':\[\d+\]$', '', t)
                k = os.path.basename(k) if k.startswith('/') else k
                kinds[k] = kinds.get(k, 0) + 1
            extra = ', '.join('%s%s' % ('%dx ' % v if v > 1 else '', k) for k, v in sorted(kinds.items()))
            raise Fail('fd count %d -> %d after %s (open now: %s)' % (baseline, n, what, extra), tag)

    # -- clients
    def ctrl(self, timeout=5.0):
        return Ctrl.to(self.ctrl_addr, 'ctrl', timeout)

    def data(self, timeout=5.0):
        check(self.data_addr is not None, 'daemon has no --server data socket')
        return Data.to(self.data_addr, 'data', timeout)

    def ctrl_cmd(self, code, payload=b'', timeout=5.0):
        """One ctrl request on a fresh connection: (result, body)."""
        with self.ctrl(timeout) as c:
            return c.request(code, payload, timeout)

    def ctrl_ok(self, code, payload=b'', what=None):
        res, body = self.ctrl_cmd(code, payload)
        check(res == 0, '%s: result 0x%x' % (what or 'ctrl 0x%02x' % code, res))
        return body

    def tpm(self, cmd, expect_rc=0, what='TPM command', timeout=10.0):
        """One TPM command on a fresh data connection; checks the rc."""
        with self.data(timeout) as d:
            resp = d.transact(cmd, timeout)
        rc = tpm2.rc_of(resp)
        if expect_rc is not None:
            check(rc == expect_rc, '%s: rc 0x%x, expected 0x%x' % (what, rc, expect_rc))
        return resp

    # -- TCTI strings for tpm2-tools
    def tcti(self):
        if isinstance(self.data_addr, str):
            check(self.ctrl_addr == self.data_addr + '.ctrl', 'unix TCTI needs ctrl at DATA.ctrl')
            return 'swtpm:path=%s' % self.data_addr
        return 'swtpm:host=127.0.0.1,port=%d' % self.data_addr[1]

    def ioctl_addr(self):
        if isinstance(self.ctrl_addr, str):
            return ['--unix', self.ctrl_addr]
        return ['--tcp', '127.0.0.1:%d' % self.ctrl_addr[1]]


# ---------------------------------------------------------------- context

class Env:
    def __init__(self, build):
        self.build = os.path.abspath(build)
        self.ours = os.path.join(self.build, 'vtpm-bridge')
        self.keep = False


class Ctx:
    """One check run: a temp dir, the processes it started, and helpers."""

    def __init__(self, env, label, name):
        self.env = env
        self.label = label
        self.kind = label
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix='vi-', dir='/tmp')
        self.procs = []
        self.groups = []
        self.daemons = []
        self.seq = 0

    def cleanup(self, keep=False):
        for g in self.groups:
            kill_group(g)
        for p in self.procs:
            if p.poll() is None:
                try:
                    p.kill()
                    p.wait(5)
                except Exception:
                    pass
        if not keep:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def diag(self):
        return '\n'.join('--- %s %s (pid %d)\n%s' % (d.kind, d.name, d.pid, d.diag()) for d in self.daemons)

    def path(self, *parts):
        return os.path.join(self.tmp, *parts)

    def mkdir(self, name):
        p = self.path(name)
        os.makedirs(p, exist_ok=True)
        return p

    def binary(self, kind):
        if kind == OURS:
            check(os.access(self.env.ours, os.X_OK), '%s is not built' % self.env.ours, 'not-built')
            return [self.env.ours, 'socket']
        need_tool('swtpm')
        return ['swtpm', 'socket']

    def start(self, *args, **kw):
        """Starts a daemon (see _start); a TCP daemon that dies at start-up
        (a free port taken meanwhile by someone else) is retried on new ports."""
        tcp = kw.get('ctrl') == 'tcp' or kw.get('server') == 'tcp'
        for attempt in range(3 if tcp and kw.get('argv') is None else 1):
            try:
                return self._start(*args, **kw)
            except Fail as e:
                d = self.daemons[-1] if self.daemons else None
                if not tcp or attempt == 2 or d is None or d.alive() or 'in use' not in (d.stderr() + d.log()):
                    raise
        raise AssertionError('unreachable')

    def _start(self, kind=None, ctrl='unix', server='unix', flags='not-need-init,startup-clear',
              state=None, extra=(), tpm2_opt=True, log_level=2, ready=True, name=None,
              pass_fds=(), preexec_fn=None, argv=None, env=None, ctrl_opts='', state_opts='',
              fd_map=None, ctrl_addr=None, data_addr=None, close_fds=True, tpmstate=None):
        """Starts a daemon with swtpm's argv in a fresh (or the given) state dir;
        tpmstate: the whole --tpmstate value instead (e.g. backend-uri=file://F)."""
        kind = kind or self.kind
        self.seq += 1
        name = name or 'd%d' % self.seq
        if state is None:
            state = self.mkdir(name + '-state')
        log = self.path(name + '.log')
        if argv is None:
            args = []
            if tpm2_opt:
                args.append('--tpm2')
            args += ['--tpmstate', tpmstate or 'dir=%s%s' % (state, state_opts)]
            if server == 'tcp' or ctrl == 'tcp':
                port = free_port_pair()
            if server == 'unix':
                data_addr = self.path(name + '.sock')
                args += ['--server', 'type=unixio,path=%s' % data_addr]
            elif server == 'tcp':
                data_addr = ('127.0.0.1', port)
                args += ['--server', 'type=tcp,port=%d,bindaddr=127.0.0.1' % port]
            if ctrl == 'unix':
                ctrl_addr = (data_addr + '.ctrl') if isinstance(data_addr, str) else self.path(name + '.ctrl')
                args += ['--ctrl', 'type=unixio,path=%s%s' % (ctrl_addr, ctrl_opts)]
            elif ctrl == 'tcp':
                ctrl_addr = ('127.0.0.1', port + 1)
                args += ['--ctrl', 'type=tcp,port=%d,bindaddr=127.0.0.1%s' % (port + 1, ctrl_opts)]
            if flags:
                args += ['--flags', flags]
            args += ['--log', 'file=%s,level=%d' % (log, log_level)]
            args += list(extra)
            argv = self.binary(kind) + args
        d = Daemon(self, kind, argv, name, ctrl_addr, data_addr, state, log, pass_fds, preexec_fn, env, fd_map,
                   close_fds)
        self.daemons.append(d)
        if ready:
            d.wait_ready()
        return d

    # -- peers
    def run(self, argv, timeout=30, env=None, input=None):
        """Runs a peer in its own process group; whatever it leaves running is
        killed and listed in the result's .leftovers."""
        try:
            p = subprocess.Popen(argv, stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=self.tmp,
                                 start_new_session=True)
        except OSError as e:
            raise Fail('cannot run %s: %s' % (argv[0], e))
        ALL_PROCS.append(p)
        ALL_GROUPS.append(p.pid)
        self.groups.append(p.pid)
        try:
            out, err = p.communicate(input, timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_group(p.pid)
            p.kill()
            p.communicate()
            raise Timeout('%s did not finish within %ds' % (' '.join(argv), timeout), 'timeout')
        names = []
        if not wait_for(lambda: not group_members(p.pid), 2.0):
            for pid in group_members(p.pid):
                try:
                    with open('/proc/%d/cmdline' % pid, 'rb') as f:
                        names.append(f.read().replace(b'\0', b' ').decode(errors='replace').strip())
                except OSError:
                    pass
            kill_group(p.pid)
        r = subprocess.CompletedProcess(argv, p.returncode, out, err)
        r.leftovers = names
        return r

    def tools(self, d, tool, *args, ok=True, timeout=30):
        need_tool(tool)
        env = dict(os.environ, TPM2TOOLS_TCTI=d.tcti())
        r = self.run([tool] + list(args), timeout, env)
        if ok:
            check(r.returncode == 0, '%s %s: exit %d: %s' % (tool, ' '.join(args), r.returncode,
                                                               r.stderr.decode(errors='replace').strip()[-400:]))
        return r

    def ioctl(self, d, *args, ok=True, timeout=30):
        need_tool('swtpm_ioctl')
        r = self.run(['swtpm_ioctl'] + d.ioctl_addr() + list(args), timeout)
        out = r.stdout.decode(errors='replace')
        if ok:
            check(r.returncode == 0, 'swtpm_ioctl %s: exit %d: %s %s' % (
                ' '.join(args), r.returncode, out.strip(), r.stderr.decode(errors='replace').strip()))
        return r.returncode, out, r.stderr.decode(errors='replace')


# ---------------------------------------------------------------- TPM helpers

def define_nv(d, index=NV_INDEX, data=NV_DATA):
    d.tpm(tpm2.nv_define(index, len(data)), what='NV_DefineSpace')
    d.tpm(tpm2.nv_write(index, data), what='NV_Write')


def read_nv(d, index=NV_INDEX, size=len(NV_DATA)):
    return tpm2.parse_nv_read(d.tpm(tpm2.nv_read(index, size), what='NV_Read 0x%x' % index))


def expect_nv(d, index=NV_INDEX, data=NV_DATA, what=''):
    got = read_nv(d, index, len(data))
    check(got == data, 'NV index 0x%x%s reads %r, expected %r' % (index, what, got, data))


def pcr_value(d, pcr=16):
    return tpm2.parse_pcr_read(d.tpm(tpm2.pcr_read(pcr), what='PCR_Read'))


def make_persistent(d, handle=0x81000005):
    """CreatePrimary (ECC storage key) + EvictControl to `handle`; returns its name."""
    h, name = tpm2.parse_create_primary(d.tpm(tpm2.create_primary(unique=b'vtpm-bridge'), what='CreatePrimary'))
    d.tpm(tpm2.evict_control(h, handle), what='EvictControl')
    d.tpm(tpm2.flush_context(h), what='FlushContext')
    return name


def persistent_name(d, handle=0x81000005):
    return tpm2.parse_read_public(d.tpm(tpm2.read_public(handle), what='ReadPublic 0x%x' % handle))


def ctrl_cycles(d, n=500):
    """n connect/close cycles on the ctrl socket."""
    for i in range(n):
        try:
            s = connect(d.ctrl_addr, 5.0)
        except OSError as e:
            raise Fail('ctrl connect %d of %d: %s' % (i + 1, n, e))
        s.close()


def health(d, nv=True, what=''):
    """Daemon alive, ctrl answers, (the NV index reads back)."""
    d.check_alive(what)
    with d.ctrl() as c:
        c.caps()
    if nv:
        expect_nv(d, what=(' ' + what) if what else '')


def lock_holder(path):
    """True when another process holds an fcntl/OFD lock on path."""
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
        if e.errno in (errno.EAGAIN, errno.EACCES):
            return True
        raise
    else:
        fcntl.lockf(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


def parse_json_line(text, what):
    try:
        return json.loads(text)
    except ValueError as e:
        raise Fail('%s: not JSON (%s): %r' % (what, e, text[:300]))


def settled(state_dir, timeout=5.0):
    """Until no store waits for the flusher (ours: --durability bounded's
    .pending/.syncing files); at once for swtpm, which writes in place."""
    busy = lambda: [n for n in os.listdir(state_dir) if n.endswith(('.pending', '.syncing'))]
    check(wait_for(lambda: not busy(), timeout), 'stores still unsynced after %.0f s: %s' % (timeout, busy()))


def wait_for(pred, timeout, step=0.02):
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > end:
            return v
        time.sleep(step)


def ms(t0):
    return (time.monotonic() - t0) * 1000.0


__all__ = [n for n in dir() if not n.startswith('_')] + ['re', 'os', 'socket', 'struct', 'time', 'json']
