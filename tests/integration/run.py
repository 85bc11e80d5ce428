#!/usr/bin/env python3
"""Integration tests: vtpm-bridge and Debian's swtpm side by side.

    python3 tests/integration/run.py --build BUILDDIR [-k PATTERN] [-j N] [--keep] [--list]

Prints one result line per check and daemon on stdout (tests/README.md):
    PASS  integration/<check> (vtpm-bridge)
    XFAIL integration/<check> (swtpm): <the swtpm defect the check caught>
Details of failures (daemon logs) go to stderr.  Exit status 0 when nothing
FAILed or XPASSed.
"""
import argparse
import fnmatch
import glob
import importlib
import os
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402
from harness import Fail, Skip, Timeout, SWTPM  # noqa: E402


def load_tests():
    for f in sorted(glob.glob(os.path.join(HERE, 'test_*.py'))):
        importlib.import_module(os.path.basename(f)[:-3])
    return harness.TESTS


class _Alarm(BaseException):
    pass


def _on_alarm(signum, frame):
    raise _Alarm()


def run_one(env, t, label):
    """Runs one check for one label; returns (status, line-suffix, details)."""
    ctx = harness.Ctx(env, label, t.name)
    err = None
    details = ''
    t0 = time.monotonic()
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, t.timeout)
    try:
        try:
            t.fn(ctx)
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Alarm:
        err = Timeout('the check did not finish within %ds' % t.timeout, 'timeout')
    except Skip as e:
        ctx.cleanup(env.keep)
        return 'SKIP', str(e), ''
    except Fail as e:
        err = e
    except Exception as e:  # a bug in the test or an unexpected reply: still a FAIL
        err = Fail('%s: %s' % (type(e).__name__, e))
        details = traceback.format_exc()
    if err is not None:
        details = (details + '\n' + ctx.diag()).strip()
    ctx.cleanup(env.keep or (err is not None and env.keep_failed))
    dt = time.monotonic() - t0
    if env.verbose:
        sys.stderr.write('[%.2fs] %s (%s)\n' % (dt, t.name, label))
    msg = str(err).replace('\n', ' | ') if err is not None else ''
    if label == SWTPM and t.xfail_swtpm is not None:
        tag, reason = t.xfail_swtpm
        if err is None:
            return 'XPASS', 'swtpm passed a check it should fail (%s)' % reason, ''
        if tag is None or err.tag == tag:
            return 'XFAIL', '%s: %s' % (reason, msg), ''
        return 'FAIL', 'expected the known defect (%s), got: %s' % (reason, msg), details
    if err is None:
        return 'PASS', '', ''
    return 'FAIL', msg, details


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--build', default='build', help='build directory holding vtpm-bridge')
    ap.add_argument('-k', action='append', default=[], help='run checks whose "name (label)" contains '
                    'this text or matches this glob (repeatable)')
    ap.add_argument('--keep', action='store_true', help='keep every temp dir')
    ap.add_argument('--keep-failed', action='store_true', help='keep temp dirs of failed checks')
    ap.add_argument('--list', action='store_true', help='list the checks and exit')
    ap.add_argument('-v', '--verbose', action='store_true', help='timings on stderr')
    args = ap.parse_args()

    env = harness.Env(args.build)
    env.keep = args.keep
    env.keep_failed = args.keep_failed
    env.verbose = args.verbose

    def killed(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, killed)

    jobs = []
    for t in load_tests():
        for label in t.labels:
            full = '%s (%s)' % (t.name, label)
            if args.k and not any(k in full or fnmatch.fnmatch(full, k) for k in args.k):
                continue
            jobs.append((t, label))
    if args.list:
        for t, label in jobs:
            print('integration/%s (%s)' % (t.name, label))
        return 0

    try:
        return run_all(env, jobs)
    finally:
        harness.kill_everything()


def run_all(env, jobs):
    counts = {}
    bad = 0
    t0 = time.monotonic()
    for t, label in jobs:
        status, why, details = run_one(env, t, label)
        counts[status] = counts.get(status, 0) + 1
        line = '%-5s integration/%s (%s)' % (status, t.name, label)
        if why:
            line += ': ' + why
        print(line, flush=True)
        if details:
            sys.stderr.write('==== %s integration/%s (%s)\n%s\n' % (status, t.name, label, details))
            sys.stderr.flush()
        if status in ('FAIL', 'XPASS'):
            bad += 1
    sys.stderr.write('integration: %s in %.1fs\n' % (
        ', '.join('%d %s' % (v, k) for k, v in sorted(counts.items())), time.monotonic() - t0))
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
