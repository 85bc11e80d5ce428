"""Managers: the exact command lines of the programs that run `swtpm socket`,
replayed against Debian's swtpm and ours (found as `swtpm` through PATH, as the
managers find it).  For each: it starts the way the manager waits for it, the
ctrl channel answers (swtpm_ioctl, GET_CAPABILITY, INIT), the data channel
answers (QEMU's SET_DATAFD socketpair, or the --server port with tpm2-tools),
an NV index survives a stop and a restart with the same command line, and the
stop is clean (exit 0, pid file and path= socket gone).

Where the command lines come from (cli-forms.md, state-file-backend.md):
  proxmox   proxmox/qemu-server src/PVE/QemuServer.pm start_swtpm(): swtpm_setup,
            then `swtpm socket ... --daemon`, then it polls 5 s for the pid file
  dockur    qemus/qemu src/boot.sh (the base of dockur/windows)
  mkosi     systemd/mkosi mkosi/qemu.py start_swtpm(): swtpm_setup, then a
            listening socket passed as fd 3 (canonical/lxd lxd/device/tpm.go
            startVM() passes the same argv); stopped with SIGTERM
  vmspawn   systemd src/vmspawn/vmspawn.c start_tpm(): systemd-socket-activate
            --listen ADDR swtpm socket ... --ctrl type=unixio,fd=3
  incus     lxc/incus internal/server/device/tpm.go startVM(): relative
            path= in the devices dir, --migration when --print-capabilities has
            cmdarg-migration; Stop() is SIGKILL
  qemu-doc  qemu/qemu docs/specs/tpm.rst (VM save/restore section)
  tpm2-tools  tpm2-software/tpm2-tools test/integration/helpers.sh start_sim()
  tpm2-tss    tpm2-software/tpm2-tss script/int-log-compiler-swtpm.sh simulator_start()
  gnutls      gnutls/gnutls tests/tpm2.sh start_swtpm(): no ctrl channel, the
              mssim TCTI's platform port faked (ncat there, a thread here)
"""
import ctypes
import hashlib
import json
import os
import shutil
import signal
import socket
import stat
import struct
import subprocess
import threading
import time

import tpm2
from harness import (test, check, Fail, OURS, Ctrl, Conn, Data, CMD_SHUTDOWN, NV_INDEX, NV_DATA,
                     ALL_GROUPS, need_tool, wait_for, free_port_pair)
from test_cmdline import qemu_startup
from test_state import setup_conf

PR_SET_CHILD_SUBREAPER = 36
EK_HANDLES = (0x81010001, 0x81010016)            # RSA 2048 and ECC (--ecc) EKs made by swtpm_setup
CERT_INDEXES = (0x01c00002, 0x01c00016, 0x01c08000)  # RSA EK, ECC EK and platform certificates
NV_TOOLS = '0x1500016'


# ---------------------------------------------------------------- processes

class Subreaper:
    """Orphans (a --daemon's grandchild) are reparented to this process, so
    their exit status can be read.  Only the pids we ask for are reaped."""

    def __enter__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.on = self.libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
        return self

    def __exit__(self, *a):
        if self.on:
            self.libc.prctl(PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)


class Detached:
    """A daemon that left its parent (--daemon): pid from the pid file."""

    def __init__(self, ctx, kind, pid, what):
        self.ctx = ctx
        self.kind = kind
        self.pid = pid
        self.what = what
        self.rc = None
        try:
            pgid = os.getpgid(pid)
        except OSError:
            pgid = None
        if pgid is not None and pgid != os.getpgid(0):
            ctx.groups.append(pgid)   # killed by the harness whatever happens
            ALL_GROUPS.append(pgid)
        ctx.managers_detached.append(self)

    def poll(self):
        if self.rc is None:
            try:
                p, st = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                # not reparented to us: we can see that it ended, not how
                if not os.path.exists('/proc/%d' % self.pid) or proc_state(self.pid) == 'Z':
                    self.rc = 'unknown (not our child)'
                return self.rc
            if p == self.pid:
                self.rc = os.waitstatus_to_exitcode(st)
        return self.rc

    def alive(self):
        return self.poll() is None

    def wait_exit(self, timeout):
        wait_for(lambda: not self.alive(), timeout)
        return self.poll()

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)

    def kill(self):
        if self.alive():
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass
            self.wait_exit(5)


def proc_state(pid):
    try:
        with open('/proc/%d/stat' % pid) as f:
            st = f.read()
        return st[st.rindex(')') + 2:].split()[0]
    except (OSError, ValueError, IndexError):
        return None


def managed(ctx):
    """Per-check list of detached daemons, reaped at the end of the check."""
    if not hasattr(ctx, 'managers_detached'):
        ctx.managers_detached = []


def reap_all(ctx):
    for p in getattr(ctx, 'managers_detached', []):
        p.kill()


def swtpm_env(ctx):
    """PATH with a dir holding `swtpm` -> the daemon under test, first."""
    bindir = ctx.path('bin')
    link = os.path.join(bindir, 'swtpm')
    if not os.path.lexists(link):
        os.makedirs(bindir, exist_ok=True)
        if ctx.kind == OURS:
            target = ctx.binary(OURS)[0]
        else:
            need_tool('swtpm')
            target = shutil.which('swtpm')
        os.symlink(os.path.realpath(target), link)
    return dict(os.environ, PATH=bindir + ':' + os.environ.get('PATH', '/usr/sbin:/usr/bin:/sbin:/bin'))


def check_exe(ctx, pid, what):
    """The process really is the daemon under test (not a leftover or the other kind)."""
    want = os.path.realpath(ctx.path('bin', 'swtpm'))
    try:
        exe = os.path.realpath('/proc/%d/exe' % pid)
    except OSError as e:
        raise Fail('%s: pid %d: %s' % (what, pid, e))
    check(exe == want, '%s: pid %d runs %s, expected %s' % (what, pid, exe, want))


def read_pidfile(path, what):
    try:
        with open(path) as f:
            text = f.read()
    except OSError as e:
        raise Fail('%s: cannot read the pid file %s: %s' % (what, path, e))
    try:
        return int(text.strip())
    except ValueError:
        raise Fail('%s: pid file %s holds %r' % (what, path, text[:40]))


def stopped_cleanly(p, how, files=(), timeout=5.0):
    """p exits 0 within timeout after `how`; the files it made are gone."""
    rc = p.wait_exit(timeout)
    check(rc is not None, '%s: still running %.0f s after %s' % (p.kind, timeout, how))
    check(rc == 0, '%s: exit status %s after %s' % (p.kind, rc, how))
    left = [f for f in files if os.path.lexists(f)]
    check(not left, '%s: left behind after %s: %s' % (p.kind, how, ', '.join(left)))


def ioctl(ctx, addr, *args, ok=True):
    """swtpm_ioctl against a unix path or a (host, port)."""
    need_tool('swtpm_ioctl')
    where = ['--unix', addr] if isinstance(addr, str) else ['--tcp', '%s:%d' % addr]
    r = ctx.run(['swtpm_ioctl'] + where + list(args), 30)
    out = r.stdout.decode(errors='replace')
    if ok:
        check(r.returncode == 0, 'swtpm_ioctl %s: exit %d: %s %s' % (
            ' '.join(args), r.returncode, out.strip(), r.stderr.decode(errors='replace').strip()))
    return r.returncode, out


def caps_via_ioctl(ctx, addr):
    rc, out = ioctl(ctx, addr, '-c')
    check('ptm capability is 0x' in out, 'swtpm_ioctl -c printed %r' % out.strip())
    caps = int(out.split('0x')[1].split()[0], 16)
    check(caps & 0x348f == 0x348f, 'swtpm_ioctl -c: capabilities 0x%x lack what QEMU needs (0x348f)' % caps)


def tools(ctx, tcti, *args, ok=True, timeout=10):
    need_tool(args[0])
    r = ctx.run(list(args), timeout, dict(os.environ, TPM2TOOLS_TCTI=tcti))
    if ok:
        check(r.returncode == 0, '%s (TCTI %s): exit %d: %s' % (
            ' '.join(args), tcti, r.returncode, r.stderr.decode(errors='replace').strip()[-400:]))
    return r


def checksum(path):
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()


# ---------------------------------------------------------------- TPM over a data connection

def xact(data, cmd, what, expect=0):
    resp = data.transact(cmd)
    rc = tpm2.rc_of(resp)
    if expect is not None:
        check(rc == expect, '%s: rc 0x%x, expected 0x%x' % (what, rc, expect))
    return resp


def nv_read_public(index):
    return tpm2.command(tpm2.CC_NV_ReadPublic, struct.pack('>I', index))


def write_nv(data):
    xact(data, tpm2.nv_define(NV_INDEX, len(NV_DATA)), 'NV_DefineSpace')
    xact(data, tpm2.nv_write(NV_INDEX, NV_DATA), 'NV_Write')


def expect_nv(data, what):
    got = tpm2.parse_nv_read(xact(data, tpm2.nv_read(NV_INDEX, len(NV_DATA)), 'NV_Read %s' % what))
    check(got == NV_DATA, 'NV index 0x%x %s reads %r, expected %r' % (NV_INDEX, what, got, NV_DATA))


def qemu_session(sock):
    """QEMU 7.2 connecting to the ctrl socket (A.3): SET_DATAFD, probe, INIT,
    Startup, GetRandom.  Returns (ctrl, data)."""
    ctrl = Ctrl.to(sock, 'ctrl (QEMU)')
    try:
        data = qemu_startup(None, ctrl)
    except BaseException:
        ctrl.close()
        raise
    return ctrl, data


def qemu_quit(ctrl, data):
    """QEMU's exit (A.6): CMD_SHUTDOWN, then both sockets close."""
    res, _ = ctrl.request(CMD_SHUTDOWN)
    check(res == 0, 'CMD_SHUTDOWN: result 0x%x' % res)
    ctrl.close()
    data.close()


def qemu_killed(ctrl, data):
    """QEMU SIGKILLed: both sockets just close."""
    data.close()
    ctrl.close()


def mssim_command(port, cmd, what):
    """One command framed as the mssim TCTI sends it (TPM_SEND_COMMAND 8,
    locality, size; reply: size, response, u32 0)."""
    with Conn.to(('127.0.0.1', port), 'data (mssim framing)') as c:
        c.send(struct.pack('>IBI', 8, 0, len(cmd)) + cmd)
        (n,) = struct.unpack('>I', c.recv_exact(4, 5, ' mssim response length'))
        check(10 <= n <= 4096, '%s: mssim response length %d' % (what, n))
        resp = c.recv_exact(n, 5, ' mssim response')
        (ack,) = struct.unpack('>I', c.recv_exact(4, 5, ' mssim trailing u32'))
        check(ack == 0, '%s: mssim trailing u32 is 0x%x, expected 0' % (what, ack))
    check(struct.unpack('>I', resp[2:6])[0] == n, '%s: header size %d != mssim length %d'
          % (what, struct.unpack('>I', resp[2:6])[0], n))
    return resp


class FakePlatform:
    """The stand-in for the mssim TCTI's platform port (GnuTLS runs ncat there):
    answers 4 zero bytes (success) to every 4-byte platform command."""

    def __init__(self, port):
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.sock.bind(('127.0.0.1', port))
        except OSError as e:
            self.sock.close()
            raise Fail('fake platform port %d: %s' % (port, e))
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.stopped = False
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        while not self.stopped:
            try:
                c, _ = self.sock.accept()
            except (socket.timeout, OSError):
                continue
            threading.Thread(target=self.serve, args=(c,), daemon=True).start()

    def serve(self, c):
        c.settimeout(30)
        pending = 0
        try:
            while not self.stopped:
                d = c.recv(4096)
                if not d:
                    break
                pending += len(d)
                c.sendall(b'\0\0\0\0' * (pending // 4))
                pending %= 4
        except OSError:
            pass
        finally:
            c.close()

    def close(self):
        self.stopped = True
        self.sock.close()
        self.t.join(2)


# ---------------------------------------------------------------- 1. Proxmox VE

def pve_setup(ctx, env, state, conf):
    """start_swtpm()'s swtpm_setup, with our config instead of /etc/swtpm_setup.conf."""
    need_tool('swtpm_setup')
    argv = ['swtpm_setup', '--tpmstate', 'file://%s' % state, '--createek', '--create-ek-cert',
            '--create-platform-cert', '--lock-nvram', '--config', conf, '--runas', '0', '--not-overwrite',
            '--tpm2', '--ecc']
    r = ctx.run(argv, 60, env)
    out = (r.stdout + r.stderr).decode(errors='replace').strip()
    if r.returncode != 0:
        # swtpm_setup shows only the exit status of its --print-states child: show its output
        ps = ctx.run(['swtpm', 'socket', '--print-states', '--tpmstate', 'backend-uri=file://%s' % state, '--tpm2'],
                     10, env)
        raise Fail('swtpm_setup (Proxmox) with swtpm=%s: exit %d: %s | `swtpm socket --print-states --tpmstate '
                   'backend-uri=file://%s --tpm2`: exit %d: %s' % (
                       ctx.kind, r.returncode, out[-800:].replace('\n', ' | '), state, ps.returncode,
                       (ps.stdout + ps.stderr).decode(errors='replace').strip()[-300:]))
    check(not r.leftovers, 'left running after swtpm_setup exited: %s' % ' | '.join(r.leftovers))
    return out


class Pve:
    def __init__(self, ctx, state, vmid=100):
        self.ctx = ctx
        self.state = state
        run = ctx.mkdir('run-qemu-server')
        self.sock = os.path.join(run, '%d.swtpm' % vmid)
        self.pid = os.path.join(run, '%d.swtpm.pid' % vmid)
        self.log = os.path.join(run, '%d-swtpm.log' % vmid)
        self.n = 0

    def start(self, env):
        """start_swtpm(): `swtpm socket ... --daemon` must exit 0 (run_command),
        then the pid file must appear within 5 s."""
        ctx = self.ctx
        self.n += 1
        self.prefix = '[id=%d] ' % int(time.time())
        argv = ['swtpm', 'socket', '--tpmstate', 'backend-uri=file://%s,mode=0600' % self.state,
                '--ctrl', 'type=unixio,path=%s,mode=0600' % self.sock, '--pid', 'file=%s' % self.pid,
                '--terminate', '--daemon', '--log', 'file=%s,level=1,prefix=%s' % (self.log, self.prefix), '--tpm2']
        parent = ctx.start(ctx.kind, argv=argv, ctrl_addr=self.sock, state=self.state, name='pve%d' % self.n,
                           ready=False, env=env, preexec_fn=lambda: os.umask(0o022))   # pvedaemon's umask
        parent.log_path = self.log
        rc = parent.wait_exit(10)
        check(rc is not None, '`swtpm socket --daemon` (Proxmox) did not return within 10 s')
        check(rc == 0, '`swtpm socket --daemon` (Proxmox) exited %d: %s' % (
            rc, (parent.stderr().strip() or 'log: ' + parent.log().strip())[-300:]))
        check(wait_for(lambda: os.path.exists(self.pid), 5.0, 0.05),
              "failed to start swtpm: pid file '%s' wasn't created (Proxmox waits 5 s)" % self.pid)
        d = Detached(ctx, ctx.kind, read_pidfile(self.pid, 'Proxmox'), 'Proxmox swtpm')
        check(d.alive(), 'the daemon named in the pid file (pid %d) is not running' % d.pid)
        check_exe(ctx, d.pid, 'Proxmox swtpm')
        check(os.path.exists(self.sock), 'ctrl socket %s missing once the daemon is ready' % self.sock)
        mode = stat.S_IMODE(os.stat(self.sock).st_mode)
        check(mode == 0o600, 'ctrl socket mode %o, expected 600 (mode=0600)' % mode)
        return d


def pve_check_setup(data):
    """What swtpm_setup --createek --create-ek-cert --create-platform-cert --ecc made."""
    for h in EK_HANDLES:
        xact(data, tpm2.read_public(h), 'ReadPublic of the EK 0x%x made by swtpm_setup' % h)
    for i in CERT_INDEXES:
        xact(data, nv_read_public(i), 'NV_ReadPublic of certificate index 0x%x made by swtpm_setup' % i)


def loop_attach(ctx, img):
    r = subprocess.run(['losetup', '-f', '--show', img], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=20)
    check(r.returncode == 0, 'losetup -f --show %s: exit %d: %s' % (img, r.returncode, r.stderr.decode().strip()))
    dev = r.stdout.decode().strip()
    check(dev.startswith('/dev/loop'), 'losetup printed %r' % dev)
    return dev


def loop_detach(dev):
    for _ in range(20):
        r = subprocess.run(['losetup', '-d', dev], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=20)
        if r.returncode == 0 or b'No such device' in r.stderr:
            return
        time.sleep(0.1)


def proxmox(ctx, variant):
    managed(ctx)
    need_tool('swtpm_ioctl')
    env = swtpm_env(ctx)
    conf = setup_conf(ctx)
    dev = None
    with Subreaper():
        try:
            if variant == 'new':
                state = ctx.path('vm-100-disk-1.raw')
            elif variant == 'zeroed':
                state = ctx.path('vm-100-disk-1.raw')
                with open(state, 'wb') as f:
                    f.write(b'\0' * (4 << 20))
            else:
                img = ctx.path('vm-100-disk-1.img')
                with open(img, 'wb') as f:
                    f.truncate(4 << 20)
                dev = state = loop_attach(ctx, img)
            pve_setup(ctx, env, state, conf)
            pve = Pve(ctx, state)
            d = pve.start(env)
            caps_via_ioctl(ctx, pve.sock)
            ctrl, data = qemu_session(pve.sock)
            pve_check_setup(data)
            write_nv(data)
            # the VM quits: QEMU sends CMD_SHUTDOWN
            qemu_quit(ctrl, data)
            stopped_cleanly(d, 'QEMU\'s CMD_SHUTDOWN', (pve.pid, pve.sock))
            # the next VM start: swtpm_setup --not-overwrite again, which must change nothing
            before = checksum(state)
            out = pve_setup(ctx, env, state, conf)
            after = checksum(state)
            check(before == after, 'swtpm_setup --not-overwrite changed the existing state (sha256 %s -> %s); '
                  'it said: %s' % (before[:16], after[:16], out[-400:].replace('\n', ' | ')))
            d = pve.start(env)
            ctrl, data = qemu_session(pve.sock)
            expect_nv(data, 'after a stop, swtpm_setup --not-overwrite and a restart')
            pve_check_setup(data)
            qemu_killed(ctrl, data)     # QEMU gone; --terminate ends the daemon
            stopped_cleanly(d, 'the data channel closed (--terminate)', (pve.pid, pve.sock))
            # a third start, stopped as Proxmox does on a QEMU start-up error: SIGTERM
            d = pve.start(env)
            if variant != 'loop':
                check(os.path.getsize(state) >= 192, 'state file %d bytes' % os.path.getsize(state))
            d.signal(signal.SIGTERM)
            stopped_cleanly(d, 'SIGTERM', (pve.pid, pve.sock))
        finally:
            reap_all(ctx)
            if dev:
                loop_detach(dev)


@test('managers/proxmox/new-file', timeout=60)
def _pve_new(ctx):
    proxmox(ctx, 'new')


@test('managers/proxmox/zero-filled-4M-file', timeout=60)
def _pve_zeroed(ctx):
    proxmox(ctx, 'zeroed')


@test('managers/proxmox/loop-block-device', timeout=60)
def _pve_loop(ctx):
    proxmox(ctx, 'loop')


def pve_incoming_start(ctx, env, state):
    """An incoming migration: Proxmox skips swtpm_setup, so `swtpm socket`
    meets no state file and the first CMD_INIT creates it."""
    pve = Pve(ctx, state)
    d = pve.start(env)
    check(not os.path.exists(state), 'the state file exists before CMD_INIT')
    ioctl(ctx, pve.sock, '-i')
    check(os.path.exists(state), 'CMD_INIT did not create %s' % state)
    return pve, d


@test('managers/proxmox/incoming-start-log-prefix', timeout=30)
def _pve_log(ctx):
    """The log carries Proxmox's prefix `[id=<time>] ` verbatim, trailing space
    included, on the line a new state file logs at level=1 (cli-forms.md §3)."""
    managed(ctx)
    env = swtpm_env(ctx)
    state = ctx.path('vm-100-disk-1.raw')
    with Subreaper():
        try:
            pve, d = pve_incoming_start(ctx, env, state)
            try:
                with open(pve.log) as f:
                    lines = f.read().splitlines()
            except OSError as e:
                raise Fail('log file %s: %s' % (pve.log, e))
            bad = [ln for ln in lines if ln and not ln.startswith(pve.prefix)]
            check(not bad, 'log lines without the prefix %r: %r' % (pve.prefix, bad[:3]))
            line = "%sFormatting 'file://%s' as new linear NVRAM store" % (pve.prefix, state)
            check(line in lines, 'log %s lacks the line %r; it holds: %r' % (pve.log, line, lines[-4:]))
            ioctl(ctx, pve.sock, '-s')
            stopped_cleanly(d, 'swtpm_ioctl -s', (pve.pid, pve.sock))
        finally:
            reap_all(ctx)


@test('managers/proxmox/incoming-start-file-mode', timeout=30,
      xfail_swtpm=('mode', 'swtpm 0.7.1 ignores mode= for backend-uri=file:// (state-file-backend.md §7): '
                           'the state file is created 0640'))
def _pve_mode(ctx):
    """mode=0600 is the state file's create mode, and (as swtpm 0.10, and as
    ours does for dir=) an existing file is set to it at the next start: in
    Proxmox's normal flow swtpm_setup creates the file, without mode=."""
    managed(ctx)
    env = swtpm_env(ctx)
    state = ctx.path('vm-100-disk-1.raw')
    with Subreaper():
        try:
            pve, d = pve_incoming_start(ctx, env, state)
            ioctl(ctx, pve.sock, '-s')
            stopped_cleanly(d, 'swtpm_ioctl -s', (pve.pid, pve.sock))
            mode = stat.S_IMODE(os.stat(state).st_mode)
            check(mode == 0o600, 'state file created with mode %o, expected 600 (mode=0600)' % mode, 'mode')
            os.chmod(state, 0o644)
            d = pve.start(env)
            ioctl(ctx, pve.sock, '-i')
            mode = stat.S_IMODE(os.stat(state).st_mode)
            check(mode == 0o600, 'existing state file left at mode %o, expected 600 (mode=0600, as swtpm 0.10)'
                  % mode, 'mode')
            d.signal(signal.SIGTERM)
            stopped_cleanly(d, 'SIGTERM', (pve.pid, pve.sock))
        finally:
            reap_all(ctx)


# ---------------------------------------------------------------- 2. dockur/windows

@test('managers/dockur-windows', timeout=40)
def _dockur(ctx):
    """qemus/qemu src/boot.sh: `swtpm socket -t -d --tpmstate
    backend-uri=file://$STORAGE/uefi.tpm ...` without swtpm_setup; the first
    CMD_INIT creates the file."""
    managed(ctx)
    env = swtpm_env(ctx)
    storage = ctx.mkdir('storage')
    state = os.path.join(storage, 'uefi.tpm')
    sock = ctx.path('swtpm-sock')
    pidf = ctx.path('tpm.pid')
    argv = ['swtpm', 'socket', '-t', '-d', '--tpmstate', 'backend-uri=file://%s' % state,
            '--ctrl', 'type=unixio,path=%s' % sock, '--pid', 'file=%s' % pidf, '--tpm2']

    def start(n):
        if os.path.exists(pidf):
            os.unlink(pidf)     # rm -f /var/run/tpm.pid
        parent = ctx.start(ctx.kind, argv=argv, ctrl_addr=sock, state=storage, name='dockur%d' % n,
                           ready=False, env=env)
        rc = parent.wait_exit(10)
        check(rc == 0, '`swtpm socket -t -d` (dockur) exited %s: %s' % (rc, parent.stderr().strip()[-300:]))
        # boot.sh: 20 x 0.1 s for [ -S /run/swtpm-sock ], else the TPM is disabled
        check(wait_for(lambda: os.path.exists(sock) and stat.S_ISSOCK(os.stat(sock).st_mode), 2.0, 0.1),
              'TPM socket not found? (dockur waits 2 s for %s)' % sock)
        d = Detached(ctx, ctx.kind, read_pidfile(pidf, 'dockur'), 'dockur swtpm')
        check_exe(ctx, d.pid, 'dockur swtpm')
        return d

    with Subreaper():
        try:
            d = start(1)
            caps_via_ioctl(ctx, sock)
            check(not os.path.exists(state), 'the state file exists before CMD_INIT')
            ctrl, data = qemu_session(sock)
            check(os.path.exists(state) and os.path.getsize(state) >= 192,
                  'CMD_INIT did not create the state file %s' % state)
            write_nv(data)
            qemu_killed(ctrl, data)   # docker stop kills QEMU; -t ends the daemon
            stopped_cleanly(d, 'the data channel closed (-t)', (pidf, sock))
            d = start(2)
            ctrl, data = qemu_session(sock)
            expect_nv(data, 'after a restart')
            qemu_quit(ctrl, data)
            stopped_cleanly(d, 'QEMU\'s CMD_SHUTDOWN', (pidf, sock))
        finally:
            reap_all(ctx)


# ---------------------------------------------------------------- 3. mkosi / LXD, systemd-vmspawn: fd=3

def listener(path):
    if os.path.lexists(path):
        os.unlink(path)
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.listen()
    return s


@test('managers/mkosi-lxd-listening-fd3', timeout=40)
def _mkosi(ctx):
    """mkosi's start_swtpm(): swtpm_setup --tpm-state S --tpm2 --pcr-banks
    sha256 --config /dev/null, then a socket it bound and listens on, passed as
    fd 3: `swtpm socket --tpm2 --tpmstate dir=S --ctrl type=unixio,fd=3`
    (LXD's startVM() runs the same argv); stopped with SIGTERM."""
    need_tool('swtpm_setup')
    env = swtpm_env(ctx)
    state = ctx.mkdir('mkosi-swtpm')
    r = ctx.run(['swtpm_setup', '--tpm-state', state, '--tpm2', '--pcr-banks', 'sha256', '--config', '/dev/null'],
                60, env)
    check(r.returncode == 0, 'swtpm_setup (mkosi) with swtpm=%s: exit %d: %s' % (
        ctx.kind, r.returncode, (r.stdout + r.stderr).decode(errors='replace').strip()[-600:]))
    path = os.path.join(state, 'sock')
    argv = ['swtpm', 'socket', '--tpm2', '--tpmstate', 'dir=%s' % state, '--ctrl', 'type=unixio,fd=3']
    socks = []
    try:
        s = listener(path)
        socks.append(s)
        d = ctx.start(ctx.kind, argv=argv, ctrl_addr=path, state=state, name='mkosi1', ready=False, env=env,
                      fd_map={3: s.fileno()})
        check_exe(ctx, d.pid, 'mkosi swtpm')
        ctrl, data = qemu_session(path)
        write_nv(data)
        qemu_killed(ctrl, data)
        # no --terminate: it goes back to accept() on the caller's socket
        rc, out = ioctl(ctx, path, '-g')
        check('ptm configuration flags' in out, 'swtpm_ioctl -g printed %r' % out.strip())
        d.check_alive('after the QEMU client left')
        d.proc.send_signal(signal.SIGTERM)
        stopped_cleanly(d, 'SIGTERM')
        # next start: a new socket at the same path, the same state
        s = listener(path)
        socks.append(s)
        d = ctx.start(ctx.kind, argv=argv, ctrl_addr=path, state=state, name='mkosi2', ready=False, env=env,
                      fd_map={3: s.fileno()})
        caps_via_ioctl(ctx, path)
        ctrl, data = qemu_session(path)
        expect_nv(data, 'after SIGTERM and a restart')
        qemu_killed(ctrl, data)
        ioctl(ctx, path, '-s')
        stopped_cleanly(d, 'swtpm_ioctl -s')
    finally:
        for s in socks:
            s.close()


@test('managers/systemd-vmspawn-socket-activate', timeout=40)
def _vmspawn(ctx):
    """vmspawn's start_tpm(): systemd-socket-activate --listen ADDR swtpm
    socket --tpm2 --tpmstate dir=D --ctrl type=unixio,fd=3 (it execs the
    daemon at the first connection, with LISTEN_FDS=1)."""
    if shutil.which('systemd-socket-activate') is None:
        raise Fail('systemd-socket-activate is not installed (Debian package systemd)')
    env = swtpm_env(ctx)
    state = ctx.mkdir('vmspawn-tpm')
    addr = ctx.path('tpm.sock')
    swtpm = ctx.path('bin', 'swtpm')
    argv = ['systemd-socket-activate', '--listen', addr, swtpm, 'socket', '--tpm2', '--tpmstate',
            'dir=%s' % state, '--ctrl', 'type=unixio,fd=3']

    def start(n):
        if os.path.lexists(addr):
            os.unlink(addr)
        d = ctx.start(ctx.kind, argv=argv, ctrl_addr=addr, state=state, name='vmspawn%d' % n, ready=False, env=env)
        check(wait_for(lambda: os.path.exists(addr) or not d.alive(), 5.0), 'systemd-socket-activate did not listen')
        d.check_alive('(systemd-socket-activate)')
        return d

    d = start(1)
    ctrl, data = qemu_session(addr)
    check_exe(ctx, d.pid, 'vmspawn swtpm')
    write_nv(data)
    qemu_killed(ctrl, data)
    d.proc.send_signal(signal.SIGTERM)
    stopped_cleanly(d, 'SIGTERM')
    d = start(2)
    ctrl, data = qemu_session(addr)
    expect_nv(data, 'after SIGTERM and a restart')
    qemu_quit(ctrl, data)
    stopped_cleanly(d, 'QEMU\'s CMD_SHUTDOWN')


# ---------------------------------------------------------------- 4. Incus

@test('managers/incus', timeout=40)
def _incus(ctx):
    """Incus startVM(): swtpm socket --tpm2 --tpmstate dir=<inst>/tpm.vtpm
    --ctrl type=unixio,path=swtpm-vtpm.sock [--migration release-lock-outgoing],
    run in the devices dir (relative socket path); it waits 2 s for the
    socket; Stop() is SIGKILL (QEMU's CMD_SHUTDOWN usually ended it before)."""
    env = swtpm_env(ctx)
    r = subprocess.run(['swtpm', 'socket', '--print-capabilities'], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       env=env, timeout=10)
    check(r.returncode == 0, 'swtpm socket --print-capabilities: exit %d' % r.returncode)
    try:
        features = json.loads(r.stdout.decode()).get('features', [])
    except ValueError:
        raise Fail('--print-capabilities is not JSON: %r' % r.stdout[:200])
    tpmdir = ctx.mkdir('tpm.vtpm')
    os.chmod(tpmdir, 0o700)
    devices = ctx.tmp          # the daemon's cwd: the harness runs it in ctx.tmp
    sock = os.path.join(devices, 'swtpm-vtpm.sock')
    argv = ['swtpm', 'socket', '--tpm2', '--tpmstate', 'dir=%s' % tpmdir, '--ctrl', 'type=unixio,path=swtpm-vtpm.sock']
    if 'cmdarg-migration' in features:
        argv += ['--migration', 'release-lock-outgoing']

    def start(n):
        if os.path.lexists(sock):
            os.unlink(sock)     # "Delete any leftover socket"
        d = ctx.start(ctx.kind, argv=argv, ctrl_addr=sock, state=tpmdir, name='incus%d' % n, ready=False, env=env)
        check(wait_for(lambda: os.path.exists(sock), 2.0, 0.1), "swtpm socket didn't appear within 2s")
        check_exe(ctx, d.pid, 'Incus swtpm')
        return d

    d = start(1)
    caps_via_ioctl(ctx, sock)
    ctrl, data = qemu_session(sock)
    write_nv(data)
    qemu_quit(ctrl, data)
    stopped_cleanly(d, 'QEMU\'s CMD_SHUTDOWN', (sock,))
    d = start(2)
    ctrl, data = qemu_session(sock)
    expect_nv(data, 'after CMD_SHUTDOWN and a restart')
    xact(data, tpm2.nv_define(NV_INDEX + 1, 8), 'NV_DefineSpace (second index)')
    xact(data, tpm2.nv_write(NV_INDEX + 1, b'sigkill!'), 'NV_Write (second index)')
    qemu_killed(ctrl, data)
    d.kill()                    # Incus Stop(): SIGKILL
    d = start(3)
    ctrl, data = qemu_session(sock)
    expect_nv(data, 'after SIGKILL and a restart')
    got = tpm2.parse_nv_read(xact(data, tpm2.nv_read(NV_INDEX + 1, 8), 'NV_Read (second index)'))
    check(got == b'sigkill!', 'second NV index after SIGKILL and a restart reads %r' % got)
    qemu_killed(ctrl, data)
    d.proc.send_signal(signal.SIGTERM)
    stopped_cleanly(d, 'SIGTERM', (sock,))


# ---------------------------------------------------------------- 5. QEMU's documentation

@test('managers/qemu-docs-tpm-rst', timeout=40)
def _qemu_doc(ctx):
    """docs/specs/tpm.rst: mkdir /tmp/mytpm1; swtpm socket --tpmstate
    dir=/tmp/mytpm1 --ctrl type=unixio,path=/tmp/mytpm1/swtpm-sock --log
    level=20 --tpm2; `(qemu) quit`, then the same command line again."""
    env = swtpm_env(ctx)
    d1 = ctx.mkdir('mytpm1')
    sock = os.path.join(d1, 'swtpm-sock')
    argv = ['swtpm', 'socket', '--tpmstate', 'dir=%s' % d1, '--ctrl', 'type=unixio,path=%s' % sock,
            '--log', 'level=20', '--tpm2']
    d = ctx.start(ctx.kind, argv=argv, ctrl_addr=sock, state=d1, name='doc1', env=env)
    check_exe(ctx, d.pid, 'swtpm of tpm.rst')
    caps_via_ioctl(ctx, sock)
    ctrl, data = qemu_session(sock)
    write_nv(data)
    qemu_quit(ctrl, data)
    stopped_cleanly(d, '(qemu) quit, i.e. CMD_SHUTDOWN', (sock,))
    d = ctx.start(ctx.kind, argv=argv, ctrl_addr=sock, state=d1, name='doc2', env=env)
    ctrl, data = qemu_session(sock)
    expect_nv(data, 'after quit and the same command line again')
    qemu_killed(ctrl, data)
    ioctl(ctx, sock, '-s')
    stopped_cleanly(d, 'swtpm_ioctl -s', (sock,))


# ---------------------------------------------------------------- 6. TCP simulator ports of test suites

def tools_nv_write(ctx, tcti):
    with open(ctx.path('nvdata'), 'wb') as f:
        f.write(NV_DATA)
    tools(ctx, tcti, 'tpm2', 'nvdefine', NV_TOOLS, '-C', 'o', '-s', str(len(NV_DATA)), '-a',
          'ownerread|ownerwrite|authread|authwrite')
    tools(ctx, tcti, 'tpm2', 'nvwrite', NV_TOOLS, '-C', 'o', '-i', ctx.path('nvdata'))


def tools_nv_expect(ctx, tcti, what):
    got = tools(ctx, tcti, 'tpm2', 'nvread', NV_TOOLS, '-C', 'o', '-s', str(len(NV_DATA))).stdout
    check(got == NV_DATA, 'tpm2 nvread %s %s (TCTI %s): %r, expected %r' % (NV_TOOLS, what, tcti, got, NV_DATA))


def tools_getrandom(ctx, tcti):
    hexs = tools(ctx, tcti, 'tpm2', 'getrandom', '--hex', '16').stdout.decode(errors='replace').strip()
    check(len(hexs) == 32 and all(c in '0123456789abcdef' for c in hexs),
          'tpm2 getrandom --hex 16 (TCTI %s) printed %r' % (tcti, hexs))


def raw_getrandom(port, what):
    with Data.to(('127.0.0.1', port), 'data (port %d)' % port) as data:
        r = xact(data, tpm2.get_random(16), 'GetRandom on the --server port (%s)' % what)
    check(len(tpm2.parse_get_random(r)) == 16, 'GetRandom returned %s' % r.hex())


def ctrl_caps_tcp(ctx, port):
    with Ctrl.to(('127.0.0.1', port), 'ctrl (tcp)') as c:
        caps = c.caps()
    check(caps & 0x348f == 0x348f, 'GET_CAPABILITY on the tcp ctrl port: 0x%x' % caps)
    caps_via_ioctl(ctx, ('127.0.0.1', port))


def tcp_start(ctx, make_argv, name, env, **kw):
    """Starts a TCP form on a free port pair (a port taken meanwhile: retried)."""
    for attempt in range(3):
        port = free_port_pair()
        argv = make_argv(port)
        d = ctx.start(ctx.kind, argv=argv, ctrl_addr=None, name='%s-%d' % (name, attempt), ready=False, env=env, **kw)
        ok = wait_for(lambda: listening(port) or not d.alive(), 5.0)
        if ok and d.alive():
            check_exe(ctx, d.pid, name)
            return d, port
        if d.alive():
            d.kill()
            raise Fail('%s: nothing listens on 127.0.0.1:%d after 5 s' % (name, port))
        if 'in use' not in d.stderr() + d.log() or attempt == 2:
            raise Fail('%s exited %s at start-up: %s' % (name, d.proc.returncode,
                                                        (d.stderr() + d.log()).strip()[-400:]))
    raise AssertionError('unreachable')


def listening(port):
    s = socket.socket()
    s.settimeout(0.5)
    try:
        s.connect(('127.0.0.1', port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def restart_same(ctx, d, port, name, env, **kw):
    d2 = ctx.start(ctx.kind, argv=d.argv, ctrl_addr=None, name=name, ready=False, env=env, **kw)
    check(wait_for(lambda: listening(port) or not d2.alive(), 5.0) and d2.alive(),
          '%s: the same command line did not come up again on port %d: %s' % (name, port, d2.stderr().strip()[-300:]))
    return d2


@test('managers/tpm2-tools-test-helpers', timeout=60)
def _tools_helpers(ctx):
    """tpm2-tools test/integration/helpers.sh start_sim(), run in the test dir:
    $TPM2_SIM socket --tpm2 --server port=P --ctrl type=tcp,port=P+1 --flags
    not-need-init --tpmstate dir=$PWD; TCTI swtpm:host=localhost,port=P;
    `tpm2 startup -c`, `tpm2 clear`; shut_down() is kill -9."""
    env = swtpm_env(ctx)
    state = ctx.tmp              # the harness runs the daemon in ctx.tmp: $PWD

    def argv(p):
        return ['swtpm', 'socket', '--tpm2', '--server', 'port=%d' % p, '--ctrl', 'type=tcp,port=%d' % (p + 1),
                '--flags', 'not-need-init', '--tpmstate', 'dir=%s' % state]
    d, port = tcp_start(ctx, argv, 'tpm2-tools-sim', env)
    tcti = 'swtpm:host=localhost,port=%d' % port
    tools(ctx, tcti, 'tpm2', 'startup', '-c')
    tools(ctx, tcti, 'tpm2', 'clear')
    ctrl_caps_tcp(ctx, port + 1)
    raw_getrandom(port, 'tpm2-tools form')
    tools_getrandom(ctx, tcti)
    tools_getrandom(ctx, 'swtpm:port=%d' % port)
    tools_nv_write(ctx, tcti)
    d.kill()                                            # kill -9
    d = restart_same(ctx, d, port, 'tpm2-tools-sim-2', env)
    tools(ctx, tcti, 'tpm2', 'startup', '-c')
    tools_nv_expect(ctx, 'swtpm:port=%d' % port, 'after kill -9 and a restart')
    d.proc.send_signal(signal.SIGTERM)
    stopped_cleanly(d, 'SIGTERM')


@test('managers/tpm2-tools-test-helpers-mssim-framing', timeout=30)
def _tools_helpers_mssim(ctx):
    """The same simulator with the mssim framing on its --server port, as
    tcti-mssim sends it (capability tpm-send-command-header).  (tcti-mssim
    itself cannot run here: its platform commands 1 and 11 on port P+1 are
    CMD_GET_CAPABILITY and CMD_RESET_TPMESTABLISHED to swtpm's ctrl channel.)"""
    env = swtpm_env(ctx)

    def argv(p):
        return ['swtpm', 'socket', '--tpm2', '--server', 'port=%d' % p, '--ctrl', 'type=tcp,port=%d' % (p + 1),
                '--flags', 'not-need-init', '--tpmstate', 'dir=%s' % ctx.tmp]
    d, port = tcp_start(ctx, argv, 'tpm2-tools-sim', env)
    r = mssim_command(port, tpm2.startup(), 'Startup(CLEAR)')
    check(tpm2.rc_of(r) == 0, 'Startup over mssim framing: rc 0x%x' % tpm2.rc_of(r))
    r = mssim_command(port, tpm2.get_random(16), 'GetRandom')
    check(tpm2.rc_of(r) == 0 and len(tpm2.parse_get_random(r)) == 16, 'GetRandom over mssim framing: %s' % r.hex())
    # plain framing still works on the same port afterwards
    raw_getrandom(port, 'after mssim-framed commands')
    d.proc.send_signal(signal.SIGTERM)
    stopped_cleanly(d, 'SIGTERM')


@test('managers/tpm2-tss-int-log-compiler', timeout=60)
def _tss(ctx):
    """tpm2-tss script/int-log-compiler-swtpm.sh simulator_start(), cwd = the
    state dir, stdout and stderr to a log: swtpm socket --tpm2 -p P --ctrl
    type=tcp,port=P+1 --log fd=1,level=5 --flags not-need-init --tpmstate
    dir=D --locality allow-set-locality; TCTI swtpm:host=127.0.0.1,port=P;
    daemon_stop() is kill (SIGTERM).  -p means `type=tcp,disconnect`."""
    env = swtpm_env(ctx)
    state = ctx.tmp

    def argv(p):
        return ['swtpm', 'socket', '--tpm2', '-p', str(p), '--ctrl', 'type=tcp,port=%d' % (p + 1),
                '--log', 'fd=1,level=5', '--flags', 'not-need-init', '--tpmstate', 'dir=%s' % state,
                '--locality', 'allow-set-locality']
    d, port = tcp_start(ctx, argv, 'tss-sim', env)
    d.log_path = d.out_path
    tcti = 'swtpm:host=127.0.0.1,port=%d' % port
    ioctl(ctx, ('127.0.0.1', port + 1), '-i')
    tools(ctx, tcti, 'tpm2_startup', '-c')          # test/helper/tpm_startup
    ctrl_caps_tcp(ctx, port + 1)
    # -p: the server closes the connection after each response
    with Data.to(('127.0.0.1', port), 'data (-p)') as data:
        xact(data, tpm2.get_random(8), 'GetRandom')
        rest, closed = data.recv_any(2.0)
        check(closed and not rest, '-p (disconnect): the connection was not closed after the response (%s)'
              % ('got %s' % rest[:16].hex() if rest else 'still open after 2 s'))
    tools_getrandom(ctx, tcti)
    tools_nv_write(ctx, tcti)
    check(os.path.getsize(d.out_path) > 0, '--log fd=1,level=5: nothing was logged to stdout')
    d.proc.send_signal(signal.SIGTERM)
    stopped_cleanly(d, 'SIGTERM (daemon_stop)')
    d = restart_same(ctx, d, port, 'tss-sim-2', env)
    tools(ctx, tcti, 'tpm2_startup', '-c')
    tools_nv_expect(ctx, tcti, 'after SIGTERM and a restart')
    r = mssim_command(port, tpm2.get_random(16), 'GetRandom (mssim framing)')
    check(tpm2.rc_of(r) == 0, 'GetRandom over mssim framing: rc 0x%x' % tpm2.rc_of(r))
    d.proc.send_signal(signal.SIGTERM)
    stopped_cleanly(d, 'SIGTERM')


@test('managers/gnutls-tests-tpm2', timeout=60)
def _gnutls(ctx):
    """GnuTLS tests/tpm2.sh start_swtpm(): swtpm socket --tpm2 --flags
    not-need-init --pid file=PID --tpmstate dir=W --server
    type=tcp,bindaddr=127.0.0.1,port=P (no ctrl channel: ncat fakes the
    mssim platform port P+1); TPM2TOOLS_TCTI=mssim:host=127.0.0.1,port=P;
    tpm2_startup -c; stop_swtpm() is terminate_proc (SIGTERM, 1 s, SIGKILL)."""
    env = swtpm_env(ctx)
    work = ctx.mkdir('gnutls-work')
    pidf = os.path.join(work, 'swtpm.pid')
    plat = []
    try:
        def argv(p):
            return ['swtpm', 'socket', '--tpm2', '--flags', 'not-need-init', '--pid', 'file=%s' % pidf,
                    '--tpmstate', 'dir=%s' % work, '--server', 'type=tcp,bindaddr=127.0.0.1,port=%d' % p]
        d, port = tcp_start(ctx, argv, 'gnutls-swtpm', env)
        check(wait_for(lambda: os.path.exists(pidf), 3.0), 'pid file %s not written within 3 s' % pidf)
        check(read_pidfile(pidf, 'gnutls') == d.pid, 'pid file holds %d, the daemon is %d'
              % (read_pidfile(pidf, 'gnutls'), d.pid))
        plat.append(FakePlatform(port + 1))
        mssim = 'mssim:host=127.0.0.1,port=%d' % port
        tools(ctx, mssim, 'tpm2_startup', '-V', '-c')
        tools_getrandom(ctx, mssim)
        tools_getrandom(ctx, 'swtpm:host=127.0.0.1,port=%d' % port)
        raw_getrandom(port, 'gnutls form')
        tools_nv_write(ctx, mssim)
        d.proc.send_signal(signal.SIGTERM)
        stopped_cleanly(d, 'SIGTERM (terminate_proc waits 1 s, then SIGKILL)', (pidf,), timeout=2.0)
        d = restart_same(ctx, d, port, 'gnutls-swtpm-2', env)
        tools(ctx, mssim, 'tpm2_startup', '-V', '-c')
        tools_nv_expect(ctx, mssim, 'after SIGTERM and a restart')
        d.proc.send_signal(signal.SIGTERM)
        stopped_cleanly(d, 'SIGTERM (terminate_proc waits 1 s, then SIGKILL)', (pidf,), timeout=2.0)
    finally:
        for p in plat:
            p.close()
