"""The state-dir lock: ours and swtpm never serve one state dir at once."""
import os
import re

import tpm2
from harness import (test, check, Fail, KINDS, define_nv, expect_nv, lock_holder, wait_for,
                     CMD_INIT)


def lock_message(d):
    text = d.stderr() + d.log()
    return re.search(r'lock|in use|busy', text, re.I) is not None, text.strip()[-300:]


def permall(d):
    with open(os.path.join(d.state_dir, 'tpm2-00.permall'), 'rb') as f:
        return f.read()


for holder in KINDS:
    def _at_start(ctx, holder=holder):
        a = ctx.start(holder, name='holder')
        define_nv(a)
        # ours (--durability bounded): its flusher commits the write moments after the answer
        check(wait_for(lambda: not [f for f in os.listdir(a.state_dir) if f.endswith(('.pending', '.syncing'))],
                       5.0), 'the holder never committed its state')
        before = permall(a)
        b = ctx.start(ctx.kind, name='second', state=a.state_dir, ready=False)
        rc = b.wait_exit(5)
        check(rc is not None, 'second daemon (not-need-init) still running 5 s after start on a locked dir')
        check(rc != 0, 'second daemon exited 0 on a locked dir')
        found, text = lock_message(b)
        check(found, 'no message about the lock from the second daemon: %r' % text)
        check(text.count('\n') < 20, 'more than a clear message: %r' % text)
        a.check_alive()
        expect_nv(a, what=' on the holder after the refused start')
        check(permall(a) == before, 'the refused daemon changed tpm2-00.permall')
    test('lock/refused-at-start-when-held-by-%s' % holder)(_at_start)

    def _at_init(ctx, holder=holder):
        a = ctx.start(holder, name='holder')
        define_nv(a)
        b = ctx.start(ctx.kind, name='second', state=a.state_dir, flags=None)
        res = b.ctrl_cmd(CMD_INIT, b'\0\0\0\0')[0]
        check(res != 0, 'CMD_INIT succeeded while %s holds the state dir' % holder)
        found, text = lock_message(b)
        check(found, 'no message about the lock after the refused CMD_INIT: %r' % text)
        b.check_alive('after a refused CMD_INIT')
        a.check_alive()
        expect_nv(a, what=' on the holder after the refused INIT')
        # once the holder is gone, INIT works
        a.terminate()
        res = b.ctrl_cmd(CMD_INIT, b'\0\0\0\0')[0]
        check(res == 0, 'CMD_INIT after the holder exited: 0x%x' % res)
        b.tpm(tpm2.startup(), what='Startup')
        expect_nv(b, what=' after taking over the state dir')
    test('lock/refused-at-init-when-held-by-%s' % holder)(_at_init)


@test('lock/taken-when-state-is-needed')
def _when(ctx):
    lockf = lambda d: os.path.join(d.state_dir, '.lock')
    a = ctx.start(name='nni')
    check(lock_holder(lockf(a)), 'not-need-init: no lock on .lock after start-up')
    a.terminate()
    check(not lock_holder(lockf(a)), 'lock still held after the daemon exited')
    b = ctx.start(name='init', flags=None)
    check(not os.path.exists(lockf(b)) or not lock_holder(lockf(b)),
          'lock taken before CMD_INIT (a --migration incoming destination must wait)')
    check(b.ctrl_cmd(CMD_INIT, b'\0\0\0\0')[0] == 0, 'CMD_INIT failed')
    check(lock_holder(lockf(b)), 'no lock after CMD_INIT')
    with b.ctrl() as c:
        check(c.stop() == 0, 'STOP failed')
    check(lock_holder(lockf(b)), 'lock dropped by CMD_STOP')
