"""A backlog through the pipelined ingest, on a real Dovecot: 600
messages in batches of 40, each batch classified on worker threads while
the next one is fetched, then applied and committed in UID order:
- every message is handled once (kinds counted once, one notice per
  KAMUSM mail, repeats recognised), batches are recorded in UID order,
  and every KAMUSM mail is marked \\Seen after its batch's commit;
- the same when Dovecot is killed in the middle of the backlog and comes
  back: what was committed stays, the rest is fetched again after the
  reconnect, and a batch committed after the connection died is marked
  once the daemon is connected again;
- a SIGTERM in the middle of the backlog stops it after the batches in
  hand (not after the whole mailbox), and the next start goes on from
  there, still handling every message once."""
import contextlib
import re
import time

from eimzad_env import Env, kamusm_info, mail
from tap import check, eq, run, test, wait_for

NOW = '2026-03-02 10:00'
APPS = 150
OTHERS = 450
REPEATS = 5                          # KAMUSM mails delivered twice
BATCH = 40


def backlog():
    """The mailbox: [(raw, is_kamusm)], KAMUSM mails spread among others."""
    out, k = [], 0
    for i in range(APPS + OTHERS):
        if i % 4 == 0 and k < APPS:
            k += 1
            out.append((kamusm_info('app%03d@example.edu.tr' % k,
                                    msgid='<backlog.%d@test.invalid>' % k), True))
        else:
            out.append((mail('Biri <biri@example.com>', 'eimza@example.edu.tr',
                             'Toplantı %d (sentetik)' % i, 'Merhaba,\n\nSentetik.\n'), False))
    for k in range(1, REPEATS + 1):
        out.append((kamusm_info('app%03d@example.edu.tr' % k,
                                msgid='<backlog.%d@test.invalid>' % k), True))
    return out


def installation():
    env = Env(fetch_batch=BATCH)
    env.import_csv(['Ad Soyad;Kurumsal E-posta;state'] +
                   ['Sentetik Kişi %d;app%03d@example.edu.tr;submitted' % (k, k)
                    for k in range(1, APPS + 1)], now=NOW)
    msgs = backlog()
    env.dv.populate('eimza', [raw for raw, _ in msgs])
    return env, msgs


def status(env):
    return env.ctl('status')[1]


def handled_lines(env):
    """The UIDs of the 'handled, up to uid N' lines, in log order."""
    return [int(x) for x in re.findall(r'message\(s\) handled, up to uid (\d+)', env.log())]


def check_outcome(env, msgs):
    uids = env.dv.uids('eimza')
    eq(len(uids), len(msgs), 'every message is in the mailbox')
    wait_for(lambda: status(env)['source'].get('last_uid') == max(uids), timeout=60,
             what='the last UID recorded')
    st = status(env)
    eq(st['kinds'], {'kamusm.info': APPS, 'other': OTHERS}, 'each message counted once')
    eq({k: v for k, v in st['states'].items() if v}, {'credentials_issued': APPS},
       'every applicant moved once')
    env.sink.wait_for(APPS, timeout=30)
    time.sleep(0.5)
    eq(len(env.sink.messages), APPS, 'one notice per applicant, none for a repeat')
    tops = handled_lines(env)
    eq(tops, sorted(tops), 'batches recorded in UID order')
    check(len(tops) >= (len(msgs) + BATCH - 1) // BATCH, '%d batches' % len(tops))
    kamusm = [uid for uid, raw in env.dv.folder_messages('eimza', 'INBOX')
              if b'bilgilendirme@kamusm.gov.tr' in raw]
    eq(len(kamusm), APPS + REPEATS, 'KAMUSM mails in the mailbox')
    unseen = [uid for uid in kamusm if '\\Seen' not in (env.dv.flags('eimza', uid) or [])]
    eq(unseen, [], 'every KAMUSM mail marked')


@contextlib.contextmanager
def running():
    """A fresh installation with eimzad started on it; closed afterwards."""
    env, msgs = installation()
    try:
        env.start(now=NOW)
        yield env, msgs
    finally:
        env.close()


def first_batch(env):
    wait_for(lambda: handled_lines(env), timeout=30, interval=0.005, what='a first batch')


def setup():
    return None


@test
def backlog_handled_once_in_order(ctx):
    with running() as (env, msgs):
        check_outcome(env, msgs)


@test
def server_killed_in_the_middle(ctx):
    with running() as (env, msgs):
        first_batch(env)
        env.dv.kill()
        before = handled_lines(env)
        time.sleep(0.5)
        env.dv.start()
        print('# killed after %d batch(es) were recorded (up to uid %d)'
              % (len(before), before[-1]))
        wait_for(lambda: env.log().count('source: connected') >= 2, timeout=30,
                 what='the reconnect')
        check_outcome(env, msgs)
        lost = re.findall(r'source: (\w+): .*connection lost', env.log())
        check(lost, 'the connection loss was noticed')
        print('# noticed by: %s' % ', '.join(lost))


@test
def sigterm_in_the_middle(ctx):
    with running() as (env, msgs):
        first_batch(env)
        eq(env.stop(), 0, 'exit code after SIGTERM')
        tops = handled_lines(env)
        uids = env.dv.uids('eimza')
        print('# stopped after %d of %d batches (up to uid %d of %d)'
              % (len(tops), (len(msgs) + BATCH - 1) // BATCH, tops[-1], max(uids)))
        check(tops[-1] < max(uids), 'stopped before the end of the backlog')
        check('draining and exiting' in env.log(), 'the signal was handled')
        env.start(now=NOW)
        check_outcome(env, msgs)


if __name__ == '__main__':
    run(setup=setup)
