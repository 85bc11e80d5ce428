"""The linear state backend, --tpmstate backend-uri=file://PATH
(../shared/spec/state-file-backend.md): state files and loop devices swapped
between Debian's swtpm and ours, corrupt or foreign volumes refused untouched,
empty volumes formatted, create mode and mode=, the lock, --print-states, a
full device, and SIGKILL at random moments during NV writes."""
import atexit
import contextlib
import os
import random
import shutil
import signal
import stat
import struct
import subprocess
import sys
import threading
import time

import harness
import tpm2
from harness import (test, check, Fail, Skip, OURS, SWTPM, KINDS, CMD_INIT, CMD_STORE_VOLATILE,
                     define_nv, expect_nv, pcr_value, parse_json_line, lock_holder)

CROSS = ('%s->%s' % (SWTPM, OURS), '%s->%s' % (OURS, SWTPM))
MAGIC = b'nilmptws'
HDR = 192
TPM_SIZE = 0x17
KEY = '0x81000001'
NV_MAIN = 0x01500018


def uri(path, opts=''):
    return 'backend-uri=file://%s%s' % (path, opts)


def fstart(ctx, kind, path, opts='', **kw):
    """A daemon of `kind` on the linear volume `path`."""
    return ctx.start(kind, tpmstate=uri(path, opts), **kw)


def slurp(path):
    with open(path, 'rb') as f:
        return f.read()


def spit(path, data):
    with open(path, 'wb') as f:
        f.write(data)


def header(data):
    """(magic, version, hdrsize, [(offset, data_length, section_length)] * 15)."""
    check(len(data) >= HDR, 'volume shorter than the %d-byte header: %d bytes' % (HDR, len(data)))
    slots = [struct.unpack_from('<III', data, 12 + 12 * i) for i in range(15)]
    return data[:8], data[8], struct.unpack_from('<H', data, 10)[0], slots


def umask(mask):
    return lambda: os.umask(mask)


# ---------------------------------------------------------------- loop devices

_ATTACHED = set()


def _detach(dev):
    subprocess.run(['losetup', '-d', dev], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=20)
    _ATTACHED.discard(dev)


atexit.register(lambda: [_detach(d) for d in list(_ATTACHED)])


@contextlib.contextmanager
def loop_device(ctx, size, name='vol'):
    """A loop device over a zero-filled image of `size` bytes in the check's
    temp dir; the check's processes are killed and the device detached when
    the block ends, however it ends."""
    if os.geteuid() != 0:
        raise Skip('loop devices need root')
    if shutil.which('losetup') is None:
        raise Fail('losetup is not installed (Debian package mount)')
    img = ctx.path(name + '.img')
    with open(img, 'wb') as f:
        f.truncate(size)
    r = subprocess.run(['losetup', '-f', '--show', img], capture_output=True, timeout=20)
    check(r.returncode == 0, 'losetup -f --show %s: exit %d: %s' % (img, r.returncode, r.stderr.decode().strip()))
    dev = r.stdout.decode().strip()
    _ATTACHED.add(dev)
    try:
        check(stat.S_ISBLK(os.stat(dev).st_mode), '%s is not a block device' % dev)
        yield dev
    finally:
        for p in ctx.procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        _detach(dev)


# ---------------------------------------------------------------- start outcome

def outcome(d, timeout=10.0):
    """The exit status of a daemon that should fail at start-up, or None when
    it is serving (ctrl answers and it is still alive 0.3 s later)."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        rc = d.proc.poll()
        if rc is not None:
            return rc
        try:
            with harness.Ctrl(harness.connect(d.ctrl_addr, 0.5), 'ctrl') as c:
                c.caps()
            time.sleep(0.3)
            rc = d.proc.poll()
            return rc
        except (OSError, Fail):
            time.sleep(0.02)
    raise harness.Timeout('%s neither exited nor served within %.0fs' % (d.kind, timeout), 'timeout')


def said(d):
    return d.stderr() + d.log()


def names_path(d, path, what, tag='unnamed'):
    text = said(d)
    check(path in text, '%s: no message naming %s on stderr or in the log: %r'
          % (what, path, text.strip()[-400:]), tag)


def print_states(ctx, kind, path):
    """(exit status, stdout, stderr) of `<kind> socket --print-states`."""
    r = ctx.run(ctx.binary(kind) + ['--print-states', '--tpmstate', uri(path), '--tpm2'], timeout=20)
    return r.returncode, r.stdout.decode(errors='replace'), r.stderr.decode(errors='replace')


# ---------------------------------------------------------------- 1. interop

def interop(ctx, path, first, second):
    """first makes the TPM (NV index, persistent signing key, PCR 16, volatile
    state); then second, first and second again serve the same volume, each
    checking all of it, writing the NV index, and defining one more index
    (so permall grows across section sizes on both daemons' layouts)."""
    T = lambda d, *a, **kw: ctx.tools(d, *a, **kw)  # noqa: E731
    msg = ctx.path('msg')
    spit(msg, b'signed by a key that moved between daemons')
    a = fstart(ctx, first, path, name='step1-' + first)
    spit(ctx.path('v1'), b'written by step 1 (%s)' % first.encode())
    T(a, 'tpm2_nvdefine', '0x%x' % NV_MAIN, '-C', 'o', '-s', '64', '-a', 'ownerread|ownerwrite')
    T(a, 'tpm2_nvwrite', '0x%x' % NV_MAIN, '-C', 'o', '-i', ctx.path('v1'))
    T(a, 'tpm2_createprimary', '-C', 'o', '-G', 'ecc256:ecdsa-sha256',
      '-a', 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|sign', '-c', ctx.path('prim.ctx'))
    T(a, 'tpm2_evictcontrol', '-C', 'o', '-c', ctx.path('prim.ctx'), KEY)
    T(a, 'tpm2_readpublic', '-c', KEY, '-n', ctx.path('name0'), '-f', 'pem', '-o', ctx.path('key.pem'))
    name0 = slurp(ctx.path('name0'))
    a.tpm(tpm2.pcr_extend(16, b'filestate'), what='PCR_Extend')
    pcr = pcr_value(a)
    last = slurp(ctx.path('v1'))
    extra = []
    d = a
    for step, kind in ((2, second), (3, first), (4, second)):
        ctx.ioctl(d, '-v')
        rc = d.terminate()
        check(rc == 0, '%s exited %s on SIGTERM' % (d.kind, rc))
        prev = d.kind
        d = fstart(ctx, kind, path, flags='not-need-init', name='step%d-%s' % (step, kind))
        where = 'step %d: %s serving the volume %s left' % (step, kind, prev)
        got = T(d, 'tpm2_nvread', '0x%x' % NV_MAIN, '-C', 'o', '-s', str(len(last))).stdout
        check(got == last, '%s: NV 0x%x reads %r, expected %r' % (where, NV_MAIN, got, last))
        for index, data in extra:
            got = T(d, 'tpm2_nvread', '0x%x' % index, '-C', 'o', '-s', str(len(data))).stdout
            check(got == data, '%s: NV 0x%x (%d bytes) differs' % (where, index, len(data)))
        T(d, 'tpm2_readpublic', '-c', KEY, '-n', ctx.path('name%d' % step))
        name = slurp(ctx.path('name%d' % step))
        check(name == name0, '%s: key %s has name %s, expected %s' % (where, KEY, name.hex(), name0.hex()))
        got = pcr_value(d)
        check(got == pcr, '%s: PCR 16 (volatile state) %s, expected %s' % (where, got.hex(), pcr.hex()))
        sig = ctx.path('sig%d' % step)
        T(d, 'tpm2_sign', '-c', KEY, '-g', 'sha256', '-f', 'plain', '-o', sig, msg)
        r = ctx.run(['openssl', 'dgst', '-sha256', '-verify', ctx.path('key.pem'), '-signature', sig, msg])
        check(r.returncode == 0, '%s: signature by %s does not verify against the public key exported at '
              'step 1: %s' % (where, KEY, (r.stdout + r.stderr).decode(errors='replace').strip()))
        last = b'written by step %d (%s)' % (step, kind.encode())
        spit(ctx.path('v%d' % step), last)
        T(d, 'tpm2_nvwrite', '0x%x' % NV_MAIN, '-C', 'o', '-i', ctx.path('v%d' % step))
        index = NV_MAIN + step
        data = bytes([step]) * 1024
        spit(ctx.path('x%d' % step), data)
        T(d, 'tpm2_nvdefine', '0x%x' % index, '-C', 'o', '-s', str(len(data)), '-a', 'ownerread|ownerwrite')
        T(d, 'tpm2_nvwrite', '0x%x' % index, '-C', 'o', '-i', ctx.path('x%d' % step))
        extra.append((index, data))
    magic, version, hdrsize, slots = header(slurp(path)[:HDR] if os.path.isfile(path) else _dev_head(path))
    check(magic == MAGIC and version == 1 and hdrsize == HDR and not any(s[0] for s in slots[3:]),
          'header after the round trips: magic %r version %d hdrsize %d' % (magic, version, hdrsize))


def _dev_head(dev):
    with open(dev, 'rb') as f:
        return f.read(HDR)


@test('filestate/interop-regular-file', labels=CROSS, timeout=60)
def _interop_file(ctx):
    first, second = ctx.kind.split('->')
    interop(ctx, ctx.path('tpm.bin'), first, second)


@test('filestate/interop-loop-device', labels=CROSS, timeout=60)
def _interop_loop(ctx):
    first, second = ctx.kind.split('->')
    with loop_device(ctx, 4 << 20) as dev:
        interop(ctx, dev, first, second)


# ---------------------------------------------------------------- 3. refused volumes

def good_volume(ctx, kind, path):
    """A formatted volume with permall (and an NV index) made by `kind`."""
    d = fstart(ctx, kind, path, name='maker')
    define_nv(d)
    d.terminate()
    return slurp(path)


def corrupt_random(data):
    out = bytearray(os.urandom(len(data)))
    out[0] |= 1  # never the all-zero (empty) magic
    return bytes(out)


def corrupt_text(data):
    return (b'# not a TPM state: a text file given by mistake\n' * 200)[:len(data)]


def corrupt_magic(data):
    return data[:3] + bytes([data[3] ^ 0x20]) + data[4:]


def corrupt_slot_past_end(data):
    off, dlen, slen = header(data)[3][0]
    check(off, 'the maker left no permall slot')
    return data[:12] + struct.pack('<III', len(data) + 4096, dlen, slen) + data[24:]


def corrupt_version2(data):
    return data[:8] + b'\x02' + data[9:]


def corrupt_truncated(data):
    off, dlen, slen = header(data)[3][0]
    check(off and dlen > 100, 'the maker left no permall slot')
    return data[:off + dlen // 2]


WIPES = ('accepted', 'swtpm 0.7.1 formats any volume without its magic, destroying the state in it (spec 4)')
UNNAMED = ('unnamed', "swtpm 0.7.1 refuses it, but its error does not name the file (spec 4)")
CORRUPT = (
    ('random-bytes', corrupt_random, WIPES),
    ('text-file', corrupt_text, WIPES),
    ('magic-one-byte-changed', corrupt_magic, WIPES),
    ('slot-past-end', corrupt_slot_past_end, UNNAMED),
    ('header-version-2', corrupt_version2, UNNAMED),
    ('truncated-inside-section', corrupt_truncated, UNNAMED),
)


def refuses(ctx, corrupt):
    """Every behaviour first; whether the errors name the file last, so a
    daemon that only fails that is told apart."""
    path = ctx.path('tpm.bin')
    bad = corrupt(good_volume(ctx, ctx.kind, path))
    spit(path, bad)
    unnamed = []

    def unchanged(what):
        now = slurp(path)
        check(now == bad, '%s: the file changed (%d -> %d bytes; magic now %r)' % (what, len(bad), len(now), now[:8]),
              'accepted' if now[:8] == MAGIC and bad[:8] != MAGIC else 'modified')

    def named(d, what):
        if path not in said(d):
            unnamed.append('%s: %r' % (what, said(d).strip()[-300:]))

    # with not-need-init the TPM starts with the process: it must exit non-zero
    d = fstart(ctx, ctx.kind, path, flags='not-need-init', ready=False, name='nni')
    rc = outcome(d)
    if rc is None:
        unchanged('%s with not-need-init started and serves' % ctx.kind)
        raise Fail('%s with not-need-init started on the bad file (file unchanged)' % ctx.kind, 'accepted')
    check(rc != 0, 'not-need-init start on the bad file exited 0')
    unchanged('after the failed not-need-init start')
    named(d, 'not-need-init start (exit %d)' % rc)
    # As libvirt/Proxmox start it (no --flags).  Ours checks the volume at
    # start-up, so the manager's start fails with our message in its log;
    # swtpm opens it only at CMD_INIT (spec 1.2), where QEMU reports a bare
    # result code: that must fail and leave the daemon serving.
    d = fstart(ctx, ctx.kind, path, flags=None, ready=False, name='init')
    rc = outcome(d)
    if ctx.kind == OURS:
        check(rc is not None and rc != 0, 'without not-need-init ours started on the bad file (exit %s)' % rc)
        unchanged('after the refused start')
        named(d, 'start without flags (exit %s)' % rc)
        check(not unnamed, 'no message naming %s on stderr or in the log: %s' % (path, ' | '.join(unnamed)))
        return
    check(rc is None, 'without not-need-init %s exited %s at start-up instead of serving ctrl and failing '
          'CMD_INIT (spec 1.2): %s' % (ctx.kind, rc, said(d).strip()[-300:]), 'early')
    res = d.ctrl_cmd(CMD_INIT, struct.pack('>I', 0))[0]
    unchanged('after CMD_INIT')
    check(res != 0, 'CMD_INIT on the bad file returned 0', 'accepted')
    d.check_alive('after the failed CMD_INIT')
    with d.ctrl() as c:
        c.caps()
        check(c.init() != 0, 'a second CMD_INIT returned 0')
    named(d, 'CMD_INIT (result 0x%x)' % res)
    unchanged('after a second CMD_INIT')
    check(not unnamed, 'no message naming %s on stderr or in the log: %s' % (path, ' | '.join(unnamed)), 'unnamed')


def _register_refuses(case, corrupt, xfail):
    @test('filestate/refuses-' + case, xfail_swtpm=xfail, timeout=30)
    def _fn(ctx):
        refuses(ctx, corrupt)


for _c in CORRUPT:
    _register_refuses(*_c)


# ---------------------------------------------------------------- 4. empty volumes, create mode

def formats(ctx, path, what):
    d = fstart(ctx, ctx.kind, path, name='first')
    define_nv(d)
    d.terminate()
    with open(path, 'rb') as f:
        head = f.read(HDR)
    magic, version, hdrsize, slots = header(head)
    check(magic == MAGIC and version == 1 and hdrsize == HDR and slots[0][0] >= HDR,
          '%s: after the first start: magic %r version %d hdrsize %d permall slot %s'
          % (what, magic, version, hdrsize, slots[0]))
    d = fstart(ctx, ctx.kind, path, name='again')
    expect_nv(d, what=' after a restart on the %s' % what)


@test('filestate/formats-zero-filled-file', timeout=30)
def _zero_file(ctx):
    path = ctx.path('tpm.bin')
    spit(path, bytes(4 << 20))
    formats(ctx, path, 'zero-filled 4 MiB file')


@test('filestate/formats-zero-length-file', timeout=30)
def _zero_len(ctx):
    path = ctx.path('tpm.bin')
    spit(path, b'')
    formats(ctx, path, 'zero-length file')


@test('filestate/formats-zero-loop-device', timeout=30)
def _zero_loop(ctx):
    with loop_device(ctx, 4 << 20) as dev:
        formats(ctx, dev, 'zero-filled 4 MiB loop device')


@test('filestate/missing-file-created-at-tpm-start', timeout=30)
def _missing(ctx):
    """Created at CMD_INIT (not before) with 0640 less the umask."""
    path = ctx.path('new.bin')
    d = fstart(ctx, ctx.kind, path, flags=None, preexec_fn=umask(0o022), name='umask022')
    check(not os.path.exists(path), 'the file exists before CMD_INIT')
    check(d.ctrl_cmd(CMD_INIT, struct.pack('>I', 0))[0] == 0, 'CMD_INIT on a missing file failed')
    check(os.path.exists(path), 'CMD_INIT did not create the file')
    mode = os.stat(path).st_mode & 0o7777
    check(mode == 0o640, 'created with mode %04o under umask 022, expected 0640' % mode)
    d.tpm(tpm2.startup(), what='Startup')
    define_nv(d)
    d.terminate()
    d = fstart(ctx, ctx.kind, path, name='again')
    expect_nv(d, what=' after a restart')
    path = ctx.path('new077.bin')
    fstart(ctx, ctx.kind, path, preexec_fn=umask(0o077), name='umask077')
    mode = os.stat(path).st_mode & 0o7777
    check(mode == 0o600, 'created with mode %04o under umask 077 (not-need-init), expected 0600' % mode)


@test('filestate/mode-option-exact', timeout=30,
      xfail_swtpm=('mode', 'swtpm 0.7.1 ignores mode= for file:// (spec 7)'))
def _mode(ctx):
    """mode= is the file's mode exactly, as swtpm 0.10 makes it."""
    for mask, want in ((0o022, 0o600), (0o077, 0o660)):
        path = ctx.path('m%04o.bin' % want)
        fstart(ctx, ctx.kind, path, opts=',mode=%04o' % want, preexec_fn=umask(mask), name='m%04o' % want)
        mode = os.stat(path).st_mode & 0o7777
        check(mode == want, 'mode=%04o under umask %03o: created %04o' % (want, mask, mode), 'mode')
    path = ctx.path('existing.bin')
    good_volume(ctx, ctx.kind, path)
    os.chmod(path, 0o644)
    d = fstart(ctx, ctx.kind, path, opts=',mode=0600', name='existing')
    expect_nv(d, what=' on an existing file with mode=')
    mode = os.stat(path).st_mode & 0o7777
    check(mode == 0o600, 'existing 0644 file with mode=0600: now %04o' % mode, 'mode')


# ---------------------------------------------------------------- 5. lock

@test('filestate/lock-second-instance', labels=(OURS,), timeout=30)
def _lock(ctx):
    path = ctx.path('tpm.bin')
    a = fstart(ctx, OURS, path, name='first')
    define_nv(a)
    check(lock_holder(path), 'no fcntl lock on %s while an instance serves it' % path)
    b = fstart(ctx, OURS, path, flags='not-need-init', ready=False, name='second-nni')
    rc = outcome(b)
    check(rc is not None and rc != 0, 'a second instance with not-need-init on the same file: %s'
          % ('serves' if rc is None else 'exit 0'))
    check('in use' in said(b), 'second instance (exit %d): no "in use" error: %r' % (rc, said(b).strip()[-300:]))
    names_path(b, path, 'second instance with not-need-init')
    c = fstart(ctx, OURS, path, flags=None, name='second-init')
    res = c.ctrl_cmd(CMD_INIT, struct.pack('>I', 0))[0]
    check(res != 0, 'CMD_INIT of a second instance on the same file returned 0')
    c.check_alive('after its refused CMD_INIT')
    check('in use' in said(c), 'refused CMD_INIT (0x%x): no "in use" error: %r' % (res, said(c).strip()[-300:]))
    expect_nv(a, what=' on the first instance after the second was refused')
    a.tpm(tpm2.nv_write(harness.NV_INDEX, b'x' * len(harness.NV_DATA)), what='NV_Write on the first instance')
    a.terminate()
    check(c.ctrl_cmd(CMD_INIT, struct.pack('>I', 0))[0] == 0, 'CMD_INIT of the second instance after the first exited')
    c.tpm(tpm2.startup(), what='Startup')
    expect_nv(c, data=b'x' * len(harness.NV_DATA), what=' on the second instance, written by the first')


@test('filestate/print-states-while-running', timeout=30)
def _ps_running(ctx):
    path = ctx.path('tpm.bin')
    d = fstart(ctx, ctx.kind, path)
    define_nv(d)
    rc, out, err = print_states(ctx, ctx.kind, path)
    check(rc == 0, '--print-states while an instance runs: exit %d: %s' % (rc, err.strip()))
    js = parse_json_line(out, '--print-states')
    check([s['name'] for s in js.get('states', [])] == ['permall'], '--print-states: %r' % out)
    expect_nv(d, what=' after --print-states')


# ---------------------------------------------------------------- 6. --print-states

@test('filestate/print-states-missing-file', timeout=30)
def _ps_missing(ctx):
    path = ctx.path('missing.bin')
    rc, out, err = print_states(ctx, ctx.kind, path)
    check(rc == 0, '--print-states on a missing file: exit %d: %s' % (rc, err.strip()))
    js = parse_json_line(out, '--print-states')
    check(js == {'type': 'swtpm', 'states': []}, '--print-states on a missing file: %r' % out)
    if ctx.kind == OURS:  # created empty, not formatted: swtpm_setup unlinks it next
        check(os.path.exists(path) and os.path.getsize(path) == 0,
              '--print-states on a missing file: %s, expected an empty file'
              % (os.path.getsize(path) if os.path.exists(path) else 'no file'))
    else:  # recorded (spec 9): swtpm 0.7.1 creates and formats it
        check(os.path.exists(path) and os.path.getsize(path) == HDR,
              'swtpm --print-states no longer creates a 192-byte file (spec 9): %s'
              % (os.path.getsize(path) if os.path.exists(path) else 'no file'))


@test('filestate/print-states-same-as-swtpm', timeout=30)
def _ps_same(ctx):
    """A volume with permall and volatilestate made by the label's daemon,
    listed by both daemons: the same names and sizes, those of the header."""
    path = ctx.path('tpm.bin')
    d = fstart(ctx, ctx.kind, path)
    define_nv(d)
    ctx.ioctl(d, '-v')
    d.terminate()
    slots = header(slurp(path))[3]
    want = {'type': 'swtpm', 'states': [{'name': 'permall', 'size': slots[0][1]},
                                        {'name': 'volatilestate', 'size': slots[1][1]}]}
    check(slots[0][0] and slots[1][0], 'no permall and volatilestate slots: %s' % slots[:3])
    before = slurp(path)
    for kind in (OURS, SWTPM):
        rc, out, err = print_states(ctx, kind, path)
        check(rc == 0, '%s --print-states: exit %d: %s' % (kind, rc, err.strip()))
        js = parse_json_line(out, '%s --print-states' % kind)
        check(js == want, '%s --print-states: %r, expected %r' % (kind, out, want))
        check(slurp(path) == before, '%s --print-states changed the file' % kind)


@test('filestate/print-states-foreign-file', timeout=30, xfail_swtpm=WIPES)
def _ps_foreign(ctx):
    path = ctx.path('notes.txt')
    text = corrupt_text(bytes(4096))
    spit(path, text)
    rc, out, err = print_states(ctx, ctx.kind, path)
    check(slurp(path) == text, '--print-states (exit %d) changed the foreign file: magic now %r'
          % (rc, slurp(path)[:8]), 'accepted')
    check(rc == 1, '--print-states on a text file: exit %d, expected 1 (stdout %r)' % (rc, out))
    check(path in err, '--print-states on a text file: stderr does not name it: %r' % err.strip())


# ---------------------------------------------------------------- 7. full device

@test('filestate/full-device-store-volatile', timeout=30)
def _full_volatile(ctx):
    with loop_device(ctx, 16 << 10) as dev:
        d = fstart(ctx, ctx.kind, dev)
        res = d.ctrl_cmd(CMD_STORE_VOLATILE)[0]
        check(res == TPM_SIZE, 'CMD_STORE_VOLATILE on a 16 KiB device: 0x%x, expected TPM_SIZE 0x17' % res)
        d.check_alive('after the full STORE_VOLATILE')
        d.tpm(tpm2.get_random(8), what='GetRandom after the failed STORE_VOLATILE')
        define_nv(d)
        expect_nv(d, what=' after the failed STORE_VOLATILE')
        d.terminate()
        d = fstart(ctx, ctx.kind, dev, name='again')
        expect_nv(d, what=' after a restart')


@test('filestate/full-device-permall-kept', timeout=30,
      xfail_swtpm=('lost', 'swtpm 0.7.1 clears the permall slot before the new section fits (spec 3.5)'))
def _full_permall(ctx):
    """permall grows beyond an 8 KiB device: the command fails, the old
    permall (every index defined before) loads after a restart."""
    with loop_device(ctx, 8 << 10) as dev:
        d = fstart(ctx, ctx.kind, dev, name='maker')
        define_nv(d)
        name = harness.make_persistent(d, 0x81000005)
        d.terminate()
        d = fstart(ctx, ctx.kind, dev, name='grow')
        expect_nv(d, what=' after a restart before the device filled')
        kept, failed = [], None
        for i in range(4):
            index = 0x01500100 + i
            resp = d.tpm(tpm2.nv_define(index, 2048), expect_rc=None, what='NV_DefineSpace')
            if tpm2.rc_of(resp) == 0:
                resp = d.tpm(tpm2.nv_write(index, bytes([0x40 + i]) * 1024), expect_rc=None, what='NV_Write')
            if tpm2.rc_of(resp) != 0 or not d.alive():
                failed = (index, tpm2.rc_of(resp))
                break
            kept.append(index)
        check(failed is not None, 'four 2 KiB NV indexes fit on an 8 KiB device?')
        sys.stderr.write('filestate/full-device-permall-kept (%s): %d index(es) fit, 0x%x failed with 0x%x\n'
                         % (ctx.kind, len(kept), failed[0], failed[1]))
        d.kill()
        d = fstart(ctx, ctx.kind, dev, name='after')
        resp = d.tpm(tpm2.nv_read(harness.NV_INDEX, len(harness.NV_DATA)), expect_rc=None)
        check(tpm2.rc_of(resp) == 0 and tpm2.parse_nv_read(resp) == harness.NV_DATA,
              'after the device filled and a restart: NV 0x%x rc 0x%x (permall lost)'
              % (harness.NV_INDEX, tpm2.rc_of(resp)), 'lost')
        got = harness.persistent_name(d, 0x81000005)
        check(got == name, 'persistent key name %s, expected %s' % (got.hex(), name.hex()), 'lost')
        for i, index in enumerate(kept):
            expect_nv(d, index, bytes([0x40 + i]) * 1024, ' (defined before the device filled)')
        d.tpm(tpm2.nv_read(failed[0], 8), expect_rc=None)  # absent or not: either is the old or new permall
        d.tpm(tpm2.get_random(8), what='GetRandom after the restart')


# ---------------------------------------------------------------- 8. kill test

KILL_INDEX = 0x01500040
KILL_SIZE = 1024


def kill_value(n):
    return struct.pack('>Q', n) * (KILL_SIZE // 8)


def read_kill_value(d, what, timeout=10.0, conn=None):
    cmd = tpm2.nv_read(KILL_INDEX, KILL_SIZE)
    resp = conn.transact(cmd, timeout) if conn else d.tpm(cmd, expect_rc=None, timeout=timeout)
    check(tpm2.rc_of(resp) == 0, '%s: NV_Read rc 0x%x' % (what, tpm2.rc_of(resp)), 'kill')
    data = tpm2.parse_nv_read(resp)
    n = struct.unpack('>Q', data[:8])[0]
    check(data == kill_value(n), '%s: torn NV contents (first value %d)' % (what, n), 'kill')
    return n


def snapshot(ctx, path, n):
    """A regular-file copy of the volume for Debian's swtpm."""
    copy = ctx.path('copy%d.bin' % n)
    with open(path, 'rb') as f:
        spit(copy, f.read())
    return copy


def _output(argv, timeout=60):
    try:
        r = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout)
        return r.stdout.decode(errors='replace').rstrip()
    except (OSError, subprocess.SubprocessError) as e:
        return '(%s: %s)' % (argv[0], e)


def _proc(path):
    try:
        with open(path, 'rb') as f:
            return f.read().decode(errors='replace').replace('\0', ' ').rstrip()
    except OSError as e:
        return '(%s)' % e.strerror


def stall_report(d):
    """What a live daemon that missed a deadline is doing: each thread's
    state, wait channel, system call and kernel stack, its descriptors and
    unix sockets (with accept queues), gdb's backtraces, its stderr and log."""
    pid = d.pid
    out = ['pid %d, %s' % (pid, ', '.join(l for l in _proc('/proc/%d/status' % pid).splitlines()
                                           if l.startswith(('State:', 'Threads:'))))]
    try:
        tids = sorted(os.listdir('/proc/%d/task' % pid), key=int)
    except OSError as e:
        tids = []
        out.append('(/proc/%d/task: %s)' % (pid, e.strerror))
    for tid in tids:
        base = '/proc/%d/task/%s/' % (pid, tid)
        st = _proc(base + 'stat')
        state = st[st.rfind(')') + 2:].split()[0] if ')' in st else '?'
        out.append('--- thread %s (%s): state %s, wchan %s, syscall %s\n%s'
                   % (tid, _proc(base + 'comm'), state, _proc(base + 'wchan'), _proc(base + 'syscall'),
                      _proc(base + 'stack')))
    out.append('--- /proc/%d/wchan: %s' % (pid, _proc('/proc/%d/wchan' % pid)))
    fds = []
    try:
        for fd in sorted(os.listdir('/proc/%d/fd' % pid), key=int):
            try:
                fds.append('%s -> %s' % (fd, os.readlink('/proc/%d/fd/%s' % (pid, fd))))
            except OSError:
                pass
    except OSError:
        pass
    out.append('--- descriptors\n' + '\n'.join(fds))
    mine = 'pid=%d,' % pid
    socks = [l for l in _output(['ss', '-xanp'], 20).splitlines() if mine in l or l.startswith('Netid')]
    out.append('--- its unix sockets (ss -xanp; Recv-Q of a listener is its accept queue)\n' + '\n'.join(socks))
    if shutil.which('gdb'):
        out.append('--- gdb\n' + _output(['gdb', '-batch', '-nx', '-p', str(pid), '-ex', 'info threads',
                                          '-ex', 'thread apply all bt'], 90))
    out.append('--- ' + d.diag())
    return '\n'.join(out)


def stalled(d, what, err):
    """A live daemon missed its deadline: a FAIL, with all that tells why on stderr."""
    report = stall_report(d)
    sys.stderr.write('==== stall: %s: %s\n%s\n==== end of stall report\n' % (what, err, report))
    sys.stderr.flush()
    raise Fail('%s: %s; the daemon (pid %d) is alive: its threads, kernel stacks and gdb backtraces are on '
               'stderr' % (what, err, d.pid), 'stall')


def kill_restart(start, kind, name, init, deadline, what):
    """Starts `kind` on the state under test, with not-need-init or as libvirt
    does (CMD_INIT, then the guest's Startup), and reads the counter: (daemon,
    value).  A daemon still alive without that first answer `deadline`
    seconds after its start is a stall."""
    t0 = time.monotonic()
    d = start(kind, name=name, ready=False, **({'flags': None} if init else {}))

    def left():
        return max(0.05, deadline - (time.monotonic() - t0))

    step = 'its ctrl channel to answer'
    conns = []  # kept open until the report is made: the daemon is seen as the client left it
    try:
        d.wait_ready(left())
        if init:
            step = 'CMD_INIT'
            c = d.ctrl(left())
            conns.append(c)
            res = c.request(CMD_INIT, struct.pack('>I', 0), timeout=left())[0]
            check(res == 0, 'CMD_INIT %s: 0x%x' % (what, res), 'kill')
        c = d.data(left())
        conns.append(c)
        if init:
            step = 'TPM2_Startup'
            rc = tpm2.rc_of(c.transact(tpm2.startup(), left()))
            check(rc == 0, 'Startup %s: rc 0x%x, expected 0x0' % (what, rc))
        step = 'the first NV_Read'
        v = read_kill_value(d, what, timeout=left(), conn=c)
        return d, v, time.monotonic() - t0
    except Fail as e:
        late = time.monotonic() - t0 >= deadline - 0.1
        if d.alive() and e.tag != 'kill' and (late or isinstance(e, harness.Timeout)):
            stalled(d, 'restart %s (%s) %s' % (name, 'CMD_INIT + Startup' if init else 'not-need-init', what),
                    'waited %.1f s for %s: %s' % (time.monotonic() - t0, step, e))
        raise
    finally:
        for c in conns:
            c.close()


def kill_now(d, kind, what):
    """SIGKILL and reap; a daemon that does not go is diagnosed."""
    d.proc.send_signal(signal.SIGKILL)
    rc = d.wait_exit(10)
    if rc is None:
        stalled(d, what, 'not gone 10 s after SIGKILL')
    return rc


def kill_test(ctx, start, kills=150, budget=25.0, copy=None, swtpm_every=5, where='file',
              title='filestate kill test', deadline=10.0, min_kills=100, start_busy=False):
    """SIGKILL the daemon at a random moment during a burst of NV_Writes of a
    counter; after each kill the next start must load the state and read the
    last acknowledged value or the one in flight.  Restarts alternate between
    not-need-init and CMD_INIT + Startup (libvirt), every ninth kill hits a
    start instead; each restart must answer within `deadline` seconds.

    start(kind, name=, ready=, flags=): a daemon on the state under test;
    copy(n): Debian's swtpm on a copy of it (every swtpm_every kills), or None;
    start_busy: half the kills at start hit the TPM's own start (libtpms
    loading the state, Startup storing it), not only the process's."""
    kind = ctx.kind if ctx.kind in KINDS else OURS
    rnd = random.Random(os.getpid() ^ int(time.time()))
    d = start(kind, name='k0')
    d.tpm(tpm2.nv_define(KILL_INDEX, KILL_SIZE), what='NV_DefineSpace')
    d.tpm(tpm2.nv_write(KILL_INDEX, kill_value(0)), what='NV_Write 0')
    d.kill()
    acked, inflight = 0, None
    n = writes = seen_inflight = at_start = at_tpm_start = swtpm_loads = 0
    slowest = 0.0  # seconds from a restart's spawn to its first answer
    t0 = time.monotonic()
    while n < kills and time.monotonic() - t0 < budget:
        allowed = {acked} | ({inflight} if inflight is not None else set())
        what = 'after kill %d (acked %d, in flight %s)' % (n, acked, inflight)
        if copy is not None and kind == OURS and n % swtpm_every == 0:
            s = copy(n)
            v = read_kill_value(s, 'Debian swtpm on a copy ' + what)
            check(v in allowed, 'Debian swtpm on a copy %s: reads %d' % (what, v), 'kill')
            s.kill()
            swtpm_loads += 1
        if n % 9 == 8:
            name = 'k%d' % (n + 1)
            init = (n // 9) % 4 == 3
            if start_busy and (n // 9) % 2:
                # killed while the TPM starts: libtpms loads the state, Startup stores it
                t1 = time.monotonic()
                d = start(kind, name=name, ready=False, **({'flags': None} if init else {}))
                try:
                    d.wait_ready(deadline)
                except Fail as e:
                    if d.alive():
                        stalled(d, 'start %s %s' % (name, what), 'waited %.1f s for its ctrl channel: %s'
                                % (time.monotonic() - t1, e))
                    raise
                conns = []
                try:
                    if init:
                        res = d.ctrl_cmd(CMD_INIT, struct.pack('>I', 0), timeout=deadline)[0]
                        check(res == 0, 'CMD_INIT %s: 0x%x' % (what, res), 'kill')
                    c = d.data()
                    conns.append(c)
                    c.send(tpm2.startup() if init else tpm2.nv_read(KILL_INDEX, KILL_SIZE))
                    time.sleep(rnd.uniform(0, 0.03))
                    rc = kill_now(d, kind, 'start %s %s' % (name, what))
                finally:
                    for c in conns:
                        c.close()
                at_tpm_start += 1
            else:
                # killed while the process starts (with not-need-init swtpm starts its TPM then)
                d = start(kind, name=name, ready=False)
                time.sleep(rnd.uniform(0, 0.015))
                rc = kill_now(d, kind, 'start %s %s' % (name, what))
            check(rc == -signal.SIGKILL, '%s exited %s on its own while starting %s: %s'
                  % (kind, rc, what, said(d).strip()[-300:]), 'kill')
            n += 1
            at_start += 1
            continue
        d, v, first = kill_restart(start, kind, 'k%d' % (n + 1), n % 2 == 0, deadline, what)
        slowest = max(slowest, first)
        check(v in allowed, '%s: NV reads %d, expected %s' % (what, v, sorted(allowed)), 'kill')
        if inflight is not None and v == inflight:
            seen_inflight += 1
        acked, inflight = v, None
        timer = threading.Timer(rnd.uniform(0, 0.05), d.proc.send_signal, (signal.SIGKILL,))
        bad = None
        with d.data() as c:
            timer.start()
            try:
                while True:
                    inflight = acked + 1
                    c.send(tpm2.nv_write(KILL_INDEX, kill_value(inflight)))
                    rc = tpm2.rc_of(c.read_response())
                    if rc != 0:
                        bad = 'NV_Write %d: rc 0x%x' % (inflight, rc)
                        break
                    acked, inflight = inflight, None
                    writes += 1
            except Fail:
                pass  # the kill closed the connection
        timer.join()
        rc = d.wait_exit(10)
        if rc is None:
            stalled(d, 'the write burst %s' % what, 'not gone 10 s after SIGKILL')
        check(bad is None, bad or '')
        check(rc == -signal.SIGKILL, '%s daemon exit %s during the write burst, expected SIGKILL' % (kind, rc))
        n += 1
        if len(ctx.daemons) > 8:
            del ctx.daemons[:-4]
    took = time.monotonic() - t0
    d, v, _ = kill_restart(start, kind, 'final', False, deadline, 'after the last kill')
    check(v in ({acked} | ({inflight} if inflight is not None else set())), 'after the last kill: %d' % v, 'kill')
    d.terminate()
    check(n >= min_kills, 'only %d kills within %.0f s' % (n, budget))
    sys.stderr.write('%s (%s, %s): %d kills (%d during start-up%s) in %.1f s, %d acknowledged '
                     'writes, in-flight value found %d times, last value %d, slowest restart %.0f ms, '
                     'Debian swtpm loaded %s copies\n'
                     % (title, ctx.kind, where, n, at_start,
                        ', %d of them in the TPM\'s start' % at_tpm_start if start_busy else '',
                        took, writes, seen_inflight, v, slowest * 1000,
                        swtpm_loads if kind == OURS and copy else 'n/a'))


def kill_file_test(ctx, path, budget):
    """The kill test on the linear volume `path` (a file or a block device)."""
    kill_test(ctx, lambda kind, **kw: fstart(ctx, kind, path, **kw), budget=budget,
              copy=lambda n: fstart(ctx, SWTPM, snapshot(ctx, path, n), name='sw%d' % n),
              where='device' if os.path.exists(path) and stat.S_ISBLK(os.stat(path).st_mode) else 'file')


@test('filestate/kill-regular-file', timeout=60)
def _kill_file(ctx):
    # swtpm overwrites in place through its mapping (spec 3.4): it may or may
    # not survive; when it does not, that is recorded as its known defect.
    _KILL_FILE.xfail_swtpm = None
    try:
        kill_file_test(ctx, ctx.path('tpm.bin'), budget=25.0 if ctx.kind == OURS else 15.0)
    except Fail as e:
        if ctx.kind == SWTPM and e.tag == 'kill':
            _KILL_FILE.xfail_swtpm = ('kill', 'swtpm 0.7.1 writes state in place, not crash-safe (spec 3.4)')
        raise


_KILL_FILE = harness.TESTS[-1]


@test('filestate/kill-loop-device', labels=(OURS,), timeout=60)
def _kill_loop(ctx):
    with loop_device(ctx, 256 << 10) as dev:
        kill_file_test(ctx, dev, budget=25.0)


# ---------------------------------------------------------------- 9. every crash point of a commit

# A commit writes the new sections, then the header (state-linear.c).  The
# shim (tests/fault) kills the daemon at each of those writes: before it,
# half-way (whole sectors written: a power cut; the 192-byte header lies in
# one sector, so it is never torn) and after it.  Only the header written
# whole makes the new value visible.
CRASH_POINTS = ((1, 'before'), (1, 'torn'), (1, 'after'), (2, 'before'), (2, 'torn'), (2, 'after'))


@test('filestate/crash-at-every-write-of-a-commit', labels=(OURS,), timeout=90)
def _crash_points(ctx):
    # Ours only: swtpm writes through a shared mapping, which no shim can stop mid-way.
    from test_core import Faults
    faults = Faults(ctx)
    path = ctx.path('tpm.bin')
    d = fstart(ctx, OURS, path, env=faults.env(), name='c0')
    d.tpm(tpm2.nv_define(KILL_INDEX, KILL_SIZE), what='NV_DefineSpace')
    d.tpm(tpm2.nv_write(KILL_INDEX, kill_value(0)), what='NV_Write 0')
    acked, n = 0, 0
    for rnd in range(2):  # the new sections go below the old ones, then after them
        for at, how in CRASH_POINTS:
            n += 1
            what = 'killed at write %d of a commit (%s), round %d' % (at, how, rnd)
            faults.set(pwrite_crash='%d:%s' % (at, how))
            replied = None
            with d.data() as c:
                c.send(tpm2.nv_write(KILL_INDEX, kill_value(acked + 1)))
                try:
                    replied = tpm2.rc_of(c.read_response())
                except Fail:
                    pass
            rc = d.wait_exit(10)
            check(rc == -signal.SIGKILL, '%s: the daemon exited %s (reply %s), expected the shim\'s SIGKILL'
                  % (what, rc, replied))
            check(replied is None, '%s: NV_Write was acknowledged (0x%x) before its commit' % (what, replied or 0))
            faults.set()
            d = fstart(ctx, OURS, path, env=faults.env(), name='c%d' % n)
            v = read_kill_value(d, what)
            want = acked + 1 if (at, how) == (2, 'after') else acked
            check(v == want, '%s: NV reads %d, expected %d' % (what, v, want))
            s = fstart(ctx, SWTPM, snapshot(ctx, path, 100 + n), name='sw-c%d' % n)
            check(read_kill_value(s, 'Debian swtpm, ' + what) == v, 'Debian swtpm reads another value ' + what)
            s.kill()
            acked = v
            # one acknowledged write in between, so each round starts from a fresh commit
            d.tpm(tpm2.nv_write(KILL_INDEX, kill_value(acked + 1)), what='NV_Write after ' + what)
            acked += 1
    d.terminate()
