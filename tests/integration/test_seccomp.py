"""The sandbox: `--seccomp action=kill|log|none` as swtpm 0.7.1 takes it, and
files that are never open to others.

On by default on every thread; off with action=none; a syscall off the list
really kills the process (gdb makes the daemon's main thread call execve(NULL),
which both daemons' filters forbid and which would otherwise fail with
EFAULT); with action=log the kernel records such a call (audit type 1326 in
the kernel log), and records nothing over a whole session of every kind of
work.  Every other check in the suite runs with the default, action=kill.
"""
import os
import re
import shutil
import struct
import subprocess

import tpm2
from harness import (test, check, Fail, Skip, OURS, define_nv, expect_nv, wait_for, NV_DATA,
                     CMD_STORE_VOLATILE, CMD_CANCEL_TPM_CMD, CMD_SHUTDOWN, BLOB_PERMANENT,
                     BLOB_VOLATILE, settled)
from test_better import rsa_primary
from test_cmdline import qemu_startup

SIGSYS = 31
NR_EXECVE = 59  # x86_64


def seccomp_of(pid):
    """{tid: (Seccomp mode, Seccomp_filters)} of every thread of pid."""
    out = {}
    for tid in os.listdir('/proc/%d/task' % pid):
        with open('/proc/%d/task/%s/status' % (pid, tid)) as f:
            st = f.read()
        mode = re.search(r'^Seccomp:\s+(\d+)', st, re.M)
        filters = re.search(r'^Seccomp_filters:\s+(\d+)', st, re.M)
        check(mode is not None, '/proc/%d/task/%s/status has no Seccomp line' % (pid, tid))
        out[int(tid)] = (int(mode.group(1)), int(filters.group(1)) if filters else None)
    return out


def expect_filtered(d, on, what):
    threads = seccomp_of(d.pid)
    for tid, (mode, filters) in sorted(threads.items()):
        if on:
            check(mode == 2 and (filters is None or filters >= 1),
                  '%s: thread %d has Seccomp %d, Seccomp_filters %s (want 2 and >= 1)' % (what, tid, mode, filters))
        else:
            check(mode == 0, '%s: thread %d has Seccomp %d (want 0: no filter)' % (what, tid, mode))
    return len(threads)


def keygen(d):
    """An RSA-2048 key generation (our worker thread runs it), flushed again."""
    r = d.tpm(rsa_primary(2048), what='CreatePrimary RSA-2048', timeout=60)
    d.tpm(tpm2.flush_context(struct.unpack('>I', r[10:14])[0]), what='FlushContext')


def inject_execve(ctx, d):
    """gdb makes the daemon's main thread call execve(NULL, NULL, NULL): EFAULT if allowed."""
    if shutil.which('gdb') is None:
        raise Fail('gdb is not installed (Debian package gdb; make check installs it)')
    r = ctx.run(['gdb', '-nx', '-batch', '-p', str(d.pid), '-ex',
                 'call (long)syscall(%dL, 0L, 0L, 0L)' % NR_EXECVE], timeout=60)
    return r.stdout.decode(errors='replace') + r.stderr.decode(errors='replace')


def kernel_log():
    r = subprocess.run(['dmesg'], stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=10)
    if r.returncode != 0:
        raise Skip('the kernel log is not readable here (dmesg: %s)' % r.stderr.decode(errors='replace').strip())
    return r.stdout.decode(errors='replace')


def seccomp_records(log, pid):
    """The kernel's seccomp records (audit type 1326) of pid in log: [syscall numbers].
    By pid, not by position: the kernel's ring buffer may have wrapped."""
    return [int(m.group(1)) for m in re.finditer(r'type=1326 .*? pid=%d .*?syscall=(\d+)' % pid, log)]


@test('sandbox/on-by-default-every-thread')
def _default(ctx):
    d = ctx.start()
    keygen(d)
    n = expect_filtered(d, True, 'default')
    check(d.kind != OURS or n >= 2, 'expected the worker thread beside the main one, found %d thread(s)' % n)
    d.tpm(tpm2.get_random(8))


@test('sandbox/action-log-filter-on')
def _log_on(ctx):
    d = ctx.start(extra=['--seccomp', 'action=log'])
    keygen(d)
    expect_filtered(d, True, 'action=log')


@test('sandbox/action-none-no-filter')
def _none(ctx):
    d = ctx.start(extra=['--seccomp', 'action=none'])
    keygen(d)
    expect_filtered(d, False, 'action=none')
    d.tpm(tpm2.get_random(8))


@test('sandbox/forbidden-syscall-kills', timeout=120)
def _kills(ctx):
    # The control: without a filter the injected call fails with EFAULT and the daemon serves on.
    free = ctx.start(extra=['--seccomp', 'action=none'], name='none')
    out = inject_execve(ctx, free)
    check(free.alive(), 'action=none: the daemon died of the injected execve(NULL): %s' % out[-300:])
    check(re.search(r'= -1\b', out), 'action=none: gdb did not report the call failing: %s' % out[-300:])
    free.tpm(tpm2.get_random(8), what='GetRandom after the injected call')
    d = ctx.start(name='kill')
    define_nv(d)
    out = inject_execve(ctx, d)
    rc = d.wait_exit(10)
    check(rc is not None, 'action=kill: the daemon still runs after execve(NULL): %s' % out[-300:])
    check(rc == -SIGSYS, 'action=kill: exit %s, expected death by SIGSYS (-%d)' % (rc, SIGSYS))


@test('sandbox/log-records-nothing-over-a-session', timeout=180)
def _session(ctx):
    """action=log over every kind of work: QEMU's start-up with SET_DATAFD, a key
    generation and a cancelled one, NV writes (state files), blobs out and back,
    STORE_VOLATILE, encrypted state, TCP; then SHUTDOWN and the exit.  The
    kernel records nothing for either daemon; an injected execve(NULL) at the
    end must be recorded, so the check can see a record when there is one."""
    keyfd_r, keyfd_w = os.pipe()
    os.write(keyfd_w, b'00112233445566778899aabbccddeeff')
    os.close(keyfd_w)
    d = ctx.start(server=None, flags='', extra=['--seccomp', 'action=log', '--key', 'fd=%d' % keyfd_r,
                                              '--pid', 'file=' + ctx.path('pid')],
                  pass_fds=(keyfd_r,), name='qemu')
    os.close(keyfd_r)
    with d.ctrl() as c:
        data = qemu_startup(d, c)
        data.send(rsa_primary(3072))
        c.request(CMD_CANCEL_TPM_CMD)
        rc = tpm2.rc_of(data.read_response(60))
        check(rc in (0, 0x909), 'cancelled CreatePrimary: rc 0x%x' % rc)
        r = data.transact(rsa_primary(2048), 60)
        check(tpm2.rc_of(r) == 0, 'CreatePrimary RSA-2048: 0x%x' % tpm2.rc_of(r))
        for cmd, what in ((tpm2.nv_define(0x01500020, len(NV_DATA)), 'NV_DefineSpace'),
                          (tpm2.nv_write(0x01500020, NV_DATA), 'NV_Write')):
            check(tpm2.rc_of(data.transact(cmd)) == 0, what)
        blobs = {}
        for b in (BLOB_PERMANENT, BLOB_VOLATILE):
            res, blob = c.get_blob(b)
            check(res == 0 and blob, 'GET_STATEBLOB %d: 0x%x' % (b, res))
            blobs[b] = blob
        check(c.request(CMD_STORE_VOLATILE)[0] == 0, 'STORE_VOLATILE')
        check(c.stop() == 0, 'STOP')
        for b, blob in blobs.items():
            check(c.set_blob(b, blob) == 0, 'SET_STATEBLOB %d' % b)
        check(c.init() == 0, 'INIT after SET_STATEBLOB')
        check(tpm2.rc_of(data.transact(tpm2.nv_read(0x01500020, len(NV_DATA)))) == 0, 'NV_Read after the blobs')
        data.close()
    tcp = ctx.start(ctrl='tcp', server='tcp', extra=['--seccomp', 'action=log'], name='tcp')
    define_nv(tcp)
    keygen(tcp)
    expect_nv(tcp)
    pids = (d.pid, tcp.pid)
    for x in (d, tcp):
        x.ctrl_cmd(CMD_SHUTDOWN)
        check(x.wait_exit(10) == 0, '%s: exit status %s after SHUTDOWN' % (x.name, x.proc.returncode))
    probe = ctx.start(extra=['--seccomp', 'action=log'], name='probe')
    inject_execve(ctx, probe)
    check(probe.alive(), 'action=log: the daemon died of the injected execve(NULL)')

    def records():
        log = kernel_log()
        return {p: seccomp_records(log, p) for p in pids + (probe.pid,)}
    seen = wait_for(lambda: records()[probe.pid] and records(), 5.0) or records()
    for p in pids:
        check(not seen[p], 'action=log recorded syscalls %s of pid %d during the session' % (sorted(set(seen[p])), p))
    check(NR_EXECVE in seen[probe.pid], 'the injected execve(NULL) left no seccomp record in the kernel log: '
          'the log cannot show what this check looks for (records: %s)' % seen[probe.pid])


@test('sandbox/refusals')
def _refusals(ctx):
    for value in ('action=maybe', 'action', 'mode=kill'):
        top = ctx.mkdir('r-' + value.replace('=', '-'))
        r = ctx.run(ctx.binary(ctx.kind) + ['--tpm2', '--tpmstate', 'dir=' + top, '--ctrl',
                                            'type=unixio,path=%s/c' % top, '--seccomp', value], timeout=5)
        check(r.returncode != 0, '--seccomp %s: accepted (exit 0)' % value)
        check(not os.path.exists(os.path.join(top, 'c')), '--seccomp %s: refused but the socket was made' % value)


def world_bits(paths):
    """{path: mode} of the paths that others may read, write or connect to."""
    out = {}
    for p in paths:
        m = os.stat(p).st_mode & 0o777
        if m & 0o007:
            out[os.path.basename(p)] = '%04o' % m
    return out


@test('sandbox/files-never-world-accessible')
def _modes(ctx):
    """Under umask 0 (a careless manager), without mode=: the state files, the
    ctrl and data sockets and the log are not open to others; mode= is exact."""
    d = ctx.start(preexec_fn=lambda: os.umask(0))
    define_nv(d)
    settled(d.state_dir)  # no .pending/.syncing file renamed away while we look
    paths = [os.path.join(d.state_dir, f) for f in os.listdir(d.state_dir) if not f.startswith('.')]
    check(paths, 'no state file after an NV write')
    bad = world_bits(paths + [d.ctrl_addr, d.data_addr, d.log_path])
    check(not bad, 'open to others under umask 0: %s' % bad)
    d.terminate()
    e = ctx.start(preexec_fn=lambda: os.umask(0), state_opts=',mode=0600', ctrl_opts=',mode=0600', name='exact')
    define_nv(e)
    settled(e.state_dir)
    for f in os.listdir(e.state_dir):
        if not f.startswith('.'):
            m = os.stat(os.path.join(e.state_dir, f)).st_mode & 0o777
            check(m == 0o600, '%s has mode %04o with --tpmstate ...,mode=0600' % (f, m))
    m = os.stat(e.ctrl_addr).st_mode & 0o777
    check(m == 0o600, 'ctrl socket has mode %04o with --ctrl ...,mode=0600' % m)
