"""Delivery through the daemon when servers fail, and when the daemon is
killed at each point of a send: the right outcome, the right retry time,
no notice lost, none sent twice except the one in flight at a crash."""
import json
import os
import signal
import time

from eimzad_env import EBYS, Env, kamusm_credentials
from tap import check, eq, run, test, wait_for

NOW = '2026-03-02 10:00'          # Monday, SMS hours
SATURDAY = '2026-03-07 10:00'
MONDAY = '2026-03-09 09:05'
N = 8


_t0 = []


def clock():
    """The simulated time, running on from NOW since the first start, so a
    restart never moves the daemon's clock back."""
    if not _t0:
        _t0.append(time.time())
    base = time.mktime(time.strptime(NOW, '%Y-%m-%d %H:%M'))
    return time.strftime('%Y-%m-%d %H:%M', time.localtime(base + time.time() - _t0[0] + 60))


def setup():
    env = Env(extra='[sms]\nbody_template = {"to":"{{to}}","text":"{{text}}","id":"{{id}}"}\n')
    rows = ['Ad Soyad;Kurumsal E-posta;Cep Telefonu;Unvan']
    rows += ['Kişi %d;app%d@example.edu.tr;0555 000 10 %02d;Şef' % (i, i, i) for i in range(1, N + 1)]
    env.import_csv(rows, now=NOW)
    return env


def teardown(env):
    if env:
        env.close()


def mobile(i):
    return '+9055500010%02d' % i


def sms_for(env, i):
    return [r for r in env.sms.requests if r.json and r.json.get('to') == mobile(i)]


def mails_for(env, addr):
    return [m for m in env.sink.messages if m.rcpt_tos == [addr]]


def notice(env, nid):
    with open(os.path.join(env.dir, 'state', 'notices', nid + '.json')) as f:
        return json.load(f)


def notices_of(env, tag, medium):
    _, show = env.ctl('show', tag)
    return [n for n in show['notices'] if n['medium'] == medium]


@test
def sms_500_is_retried_after_backoff_then_sent_once(env):
    _t0.append(time.time())
    env.start(now=NOW)
    env.sms.mode('status', code=500, count=1, to=mobile(1))
    env.append(kamusm_credentials('app1@example.edu.tr'))
    wait_for(lambda: len(sms_for(env, 1)) >= 2, timeout=20, what='the retry')
    time.sleep(2)
    reqs = sms_for(env, 1)
    eq(len(reqs), 2, 'one failed request, one retry, nothing more')
    eq(reqs[0].json['id'], reqs[1].json['id'], 'the same notice')
    gap = reqs[1].start - reqs[0].start
    check(0.9 <= gap <= 3.5, 'retry after retry_min (1 s, +-20%%, rounded to the second, plus '
          'one for the whole-second clock): %.2fs' % gap)
    n = notice(env, reqs[0].json['id'])
    eq((n['state'], n['attempts']), ('sent', 2), 'recorded as sent after 2 attempts')


@test
def sms_429_honours_retry_after(env):
    env.sms.mode('retry', code=429, after='3', count=1, to=mobile(2))
    env.append(kamusm_credentials('app2@example.edu.tr'))
    wait_for(lambda: len(sms_for(env, 2)) >= 2, timeout=20, what='the retry')
    reqs = sms_for(env, 2)
    gap = reqs[1].start - reqs[0].start
    check(gap >= 2.9, 'waited for Retry-After: 3 s, not the 1 s backoff: %.2fs' % gap)
    wait_for(lambda: notice(env, reqs[0].json['id'])['state'] == 'sent', timeout=10,
             what='the outcome recorded as sent')


@test
def smtp_451_is_retried_then_delivered_once(env):
    env.sink.fail('data', code=451, count=1, match='app3@')
    env.append(kamusm_credentials('app3@example.edu.tr'))
    wait_for(lambda: mails_for(env, 'app3@example.edu.tr'), timeout=20, what='the retried mail')
    time.sleep(2)
    eq(len(mails_for(env, 'app3@example.edu.tr')), 1, 'delivered once')
    n = [x for x in notices_of(env, 'EIMZA-2026-0003', 'mail')][0]
    eq((n['state'], n['attempts']), ('sent', 2), 'sent on the second attempt')


@test
def smtp_550_dead_letters_and_tells_the_officer_once(env):
    env.sink.fail('rcpt', code=550, match='app4@')
    env.append(kamusm_credentials('app4@example.edu.tr'))
    wait_for(lambda: any('app4' in m.body() for m in mails_for(env, EBYS)), timeout=20,
             what='the dead-letter alert')
    time.sleep(1.5)
    env.sink.clear()
    n = [x for x in notices_of(env, 'EIMZA-2026-0004', 'mail')][0]
    eq(n['state'], 'dead', 'the notice is dead-lettered')
    check('550' in (n.get('last_error') or ''), 'with the server\'s reason: %r' % n.get('last_error'))
    alerts = [m for m in mails_for(env, EBYS) if 'app4' in m.body()]
    eq(len(alerts), 1, 'one alert to the EBYS officer')
    eq(len(sms_for(env, 4)), 1, 'the SMS went anyway')
    _, ob = env.ctl('outbox', 'dead')
    check(any(x['to'] == 'app4@example.edu.tr' for x in ob['notices']), 'eimzactl outbox dead')


@test
def kill_during_the_send_repeats_only_the_one_in_flight(env):
    env.sms.mode('delay', ms=3000, count=1, to=mobile(5))
    env.append(kamusm_credentials('app5@example.edu.tr'))
    wait_for(lambda: sms_for(env, 5), timeout=20, what='the SMS request in flight')
    time.sleep(0.3)
    env.stop(signal.SIGKILL)
    env.start(now=clock())
    wait_for(lambda: len(sms_for(env, 5)) >= 2, timeout=20, what='the resend after restart')
    time.sleep(2)
    reqs = sms_for(env, 5)
    eq(len(reqs), 2, 'the one in flight, once more: at least once, at most twice')
    eq(reqs[0].json['id'], reqs[1].json['id'], 'the same notice')
    eq(notice(env, reqs[0].json['id'])['state'], 'sent', 'recorded as sent')
    eq(len(mails_for(env, 'app5@example.edu.tr')), 1, 'the mail, done before the kill, not again')


@test
def kill_after_recording_repeats_nothing(env):
    env.append(kamusm_credentials('app6@example.edu.tr'))
    def recorded():
        ns = notices_of(env, 'EIMZA-2026-0006', 'sms') + notices_of(env, 'EIMZA-2026-0006', 'mail')
        return len(ns) == 2 and all(n['state'] == 'sent' for n in ns)
    wait_for(recorded, timeout=20, what='both outcomes recorded')
    env.stop(signal.SIGKILL)
    start = len(env.log())
    env.start(now=clock())
    check('outbox: 0 notice(s) pending at start' in env.log()[start:],
          'the restarted daemon read both outcomes as recorded: %r' % env.log()[start:][-600:])
    time.sleep(2.5)
    eq(len(sms_for(env, 6)), 1, 'SMS once')
    eq(len(mails_for(env, 'app6@example.edu.tr')), 1, 'mail once (sink has %s)'
       % [(m.rcpt_tos, m.headers.get('X-Eimza-Notice')) for m in env.sink.messages])
    env.stop()


@test
def sms_waits_for_working_hours_across_a_restart(env):
    env.start(now=SATURDAY)
    env.append(kamusm_credentials('app7@example.edu.tr'))
    wait_for(lambda: mails_for(env, 'app7@example.edu.tr'), timeout=20, what='the mail (at once)')
    time.sleep(1.5)
    eq(len(sms_for(env, 7)), 0, 'no SMS on a Saturday')
    n = notices_of(env, 'EIMZA-2026-0007', 'sms')[0]
    eq(n['state'], 'queued', 'queued')
    check(n['next_attempt'].startswith('2026-03-09T06:00'), 'deferred to Monday 09:00 (06:00Z): %s'
          % n['next_attempt'])
    env.stop(signal.SIGKILL)
    env.start(now=MONDAY)
    wait_for(lambda: sms_for(env, 7), timeout=20, what='the deferred SMS on Monday')
    time.sleep(1.5)
    eq(len(sms_for(env, 7)), 1, 'sent once')
    env.stop()


run(setup, teardown)
