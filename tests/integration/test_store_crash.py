"""Crash tests of the state store.

build/tests/tools/store_crash commits numbered transactions (see its
header), writing the documents as files (a flush) every third one. It is
killed with SIGKILL at every persistence step (several occurrences of
each): after the journal's sync but before any file (committed), in the
middle of a flush (applied), after it (flushed), around checkpoints and
the zero-filling of the journal's space ahead (journal_zeroed); and at
random moments; after each kill the state is checked by a reader (journal
overlay) and by a writer (replay onto the files), twice: every transaction
reported committed before the kill is there, nothing is half-applied, and
a second recovery changes nothing.
"""
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time

from tap import check, eq, run, test

STEPS = ['journal_written', 'journal_synced', 'committed', 'applied', 'flushed',
         'checkpoint_synced', 'checkpoint_truncated', 'journal_zeroed']


def tool():
    return os.path.join(os.environ.get('EIMZA_BUILD', 'build'), 'tests/tools/store_crash')


def last_committed(out):
    k = 0
    for line in out.splitlines():
        if line.startswith('committed '):
            k = int(line.split()[1])
    return k


def verify(d, how):
    p = subprocess.run([tool(), 'verify', d, how], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=30, text=True)
    eq(p.returncode, 0, 'verify %s: %s%s' % (how, p.stdout, p.stderr))
    _, last, digest = p.stdout.split(' ', 2)
    return int(last), digest


def recover_and_check(d, reported):
    """After a kill: reader, writer, writer again all agree, and the last
    transaction is the last reported one or the one just after it."""
    r_last, r_dig = verify(d, 'reader')
    w_last, w_dig = verify(d, 'writer')
    again_last, again_dig = verify(d, 'writer')
    eq((w_last, w_dig), (r_last, r_dig), 'reader and writer differ')
    eq((again_last, again_dig), (w_last, w_dig), 'a second recovery changed the state')
    check(reported <= w_last <= reported + 1,
          'reported %d committed, found %d' % (reported, w_last))
    return w_last


def run_tool(d, n, step=None, count=None):
    argv = [tool(), 'run', d, str(n)]
    if step:
        argv += [step, str(count)]
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60, text=True)
    return p.returncode, last_committed(p.stdout), p.stderr


@test
def crash_at_each_step(ctx):
    for step in STEPS:
        for count in (1, 2, 3, 5, 8, 13):
            d = os.path.join(ctx, 'step-%s-%d' % (step, count))
            rc, reported, err = run_tool(d, 40, step, count)
            check(rc in (-signal.SIGKILL, 0), '%s/%d: exit %d: %s' % (step, count, rc, err))
            if rc == 0:         # the step did not come that often
                eq(reported, 40, 'a full run')
            last = recover_and_check(d, reported)
            # and the run goes on from there to the end
            rc, reported2, err = run_tool(d, 60)
            eq(rc, 0, 'resume after %s/%d: %s' % (step, count, err))
            check(reported2 == 60 or last == 60, 'resumed to the end')
            eq(recover_and_check(d, 60), 60, 'final state')
            shutil.rmtree(d)


@test
def crash_at_random_moments(ctx):
    d = os.path.join(ctx, 'random')
    rnd = random.Random(int(os.environ.get('CRASH_SEED', '0')) or None)
    reported_total = 0
    for _ in range(25):
        p = subprocess.Popen([tool(), 'run', d, '1000000'], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, text=True)
        time.sleep(rnd.uniform(0.005, 0.08))
        p.send_signal(signal.SIGKILL)
        out, _ = p.communicate(timeout=10)
        reported = last_committed(out) or reported_total
        if not os.path.exists(d):
            # killed before it even created the state directory (a slow
            # start under the sanitizers): nothing can have been committed
            eq(reported, 0, 'reported commits without a state directory')
            continue
        last = recover_and_check(d, reported)
        check(last >= reported_total, 'went backwards: %d < %d' % (last, reported_total))
        reported_total = last
    check(reported_total > 0, 'nothing was committed in 25 runs')


def setup():
    check(os.access(tool(), os.X_OK), 'build the tool first: make unit')
    return tempfile.mkdtemp(prefix='eimza-crash-')


def teardown(ctx):
    if ctx:
        shutil.rmtree(ctx, ignore_errors=True)


run(setup=setup, teardown=teardown)
