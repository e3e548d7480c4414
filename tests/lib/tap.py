"""A tiny TAP harness for integration tests.

    from tap import test, run

    @test
    def kamusm_mail_reaches_applicant(ctx): ...
    run(setup=..., teardown=...)

Each test is a function; an exception or a failed `check` marks it
"not ok" with the reason. run() prints the plan first, then one line per
test, and always calls teardown (servers are stopped whatever happens).
"""
import os
import sys
import time
import traceback

_tests = []


class Failure(Exception):
    pass


def test(fn):
    _tests.append(fn)
    return fn


def check(cond, msg='check failed'):
    if not cond:
        raise Failure(msg)


def eq(a, b, msg=''):
    if a != b:
        raise Failure('%s: expected %r, got %r' % (msg or 'not equal', b, a))


def wait_for(pred, timeout=10.0, interval=0.02, what='condition'):
    """Poll pred() until it returns a true value; bounded by timeout."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() > end:
            raise Failure('timed out after %.1fs waiting for %s' % (timeout, what))
        time.sleep(interval)


def run(setup=None, teardown=None):
    print('1..%d' % len(_tests), flush=True)
    ctx = None
    failed = 0
    try:
        ctx = setup() if setup else None
    except Exception:
        traceback.print_exc(file=sys.stdout)
        for i, fn in enumerate(_tests, 1):
            print('not ok %d - %s # setup failed' % (i, fn.__name__), flush=True)
        if teardown:
            try:
                teardown(ctx)
            except Exception:
                traceback.print_exc(file=sys.stdout)
        sys.exit(1)
    try:
        only = os.environ.get('TAP_ONLY')      # a debugging aid: run some tests
        for i, fn in enumerate(_tests, 1):
            if only and fn.__name__ not in only.split(','):
                print('ok %d - %s # SKIP not in TAP_ONLY' % (i, fn.__name__), flush=True)
                continue
            t0 = time.monotonic()
            try:
                fn(ctx)
                print('ok %d - %s (%.2fs)' % (i, fn.__name__, time.monotonic() - t0), flush=True)
            except Exception as e:
                failed += 1
                for line in traceback.format_exc().splitlines():
                    print('# ' + line)
                print('not ok %d - %s: %s' % (i, fn.__name__, str(e).splitlines()[0] if str(e) else type(e).__name__), flush=True)
    finally:
        if teardown:
            try:
                teardown(ctx)
            except Exception:
                traceback.print_exc(file=sys.stdout)
    sys.exit(1 if failed else 0)
