"""Every fixture mail (tests/fixtures/mail, all synthetic) APPENDed to the
test Dovecot, one at a time on a fresh state, handled by `eimzad --once`:
the event it causes in the state store must be the one `eimzactl explain`
predicts (whose own output the unit tests check against expected.json),
and spoofed mail, refused links and non-officers' commands change
nothing and reach no applicant."""
import glob
import json
import os
import shutil
import subprocess

from eimzad_env import BUILD, EBYS, ROOT, Env
from tap import check, eq, run, test

FIXTURES = sorted(glob.glob(os.path.join(ROOT, 'tests/fixtures/mail/*.eml')))
KAMUSM = ('kamusm.credentials', 'kamusm.info', 'kamusm.shipped')
START = {'kamusm.credentials': 'submitted', 'kamusm.info': 'submitted', 'kamusm.shipped': 'posted'}
AFTER = {'kamusm.credentials': 'credentials_issued', 'kamusm.info': 'credentials_issued',
         'kamusm.shipped': 'shipped'}


def setup():
    return Env()


def teardown(env):
    if env:
        env.close()


def explain(env, path):
    p = subprocess.run([os.path.join(BUILD, 'eimzactl'), '-c', env.conf, 'explain', '--json',
                        path], stdout=subprocess.PIPE, timeout=30)
    return json.loads(p.stdout)


def fresh(env):
    shutil.rmtree(os.path.join(env.dir, 'state'), ignore_errors=True)
    env.dv.clear('eimza')


def kinds_counted(env):
    with open(os.path.join(env.dir, 'state', 'meta', 'stats.json')) as f:
        return json.load(f)['kinds']


def one(env, path, ex):
    """Run one fixture; returns a list of problems (empty when right)."""
    name = os.path.basename(path)
    fresh(env)
    applicant = (ex['fields'].get('applicant') or {}).get('email')
    if ex['kind'] in KAMUSM and applicant:
        env.import_csv(['Ad Soyad;Kurumsal E-posta;state',
                        'Sentetik Kişi;%s;%s' % (applicant, START[ex['kind']])])
    with open(path, 'rb') as f:
        env.append(f.read())
    mails_before = len(env.sink.messages)
    rc, out = env.once('2026-03-10 10:00')
    bad = []
    if rc != 0:
        return ['%s: eimzad --once exit %d: %s' % (name, rc, out[-300:])]
    counted = kinds_counted(env)
    if counted != {ex['kind']: 1}:
        bad.append('%s: counted %s, explain says %s' % (name, counted, ex['kind']))
    mails = env.sink.messages[mails_before:]
    to_applicant = [m for m in mails if applicant and m.rcpt_tos == [applicant]]
    refused_link = any(p.startswith('link refused') for p in ex.get('problems', []))
    if ex['kind'] in KAMUSM and applicant:
        state = env.app('EIMZA-2026-0001')['state']
        moves = ex['trusted'] and not refused_link and \
            (ex['kind'] == 'kamusm.shipped' or ex['fields'].get('link') or ex['kind'] == 'kamusm.info')
        want = AFTER[ex['kind']] if moves else START[ex['kind']]
        if state != want:
            bad.append('%s: state %s, expected %s (trusted=%s, refused link=%s)'
                       % (name, state, want, ex['trusted'], refused_link))
        if not moves and to_applicant:
            bad.append('%s: untrusted or refused mail reached the applicant' % name)
        if moves and len(to_applicant) != 1:
            bad.append('%s: %d mails to the applicant, expected 1' % (name, len(to_applicant)))
    elif ex['kind'] == 'request' and ex['trusted']:
        n = len(ex['fields'].get('applicants', []))
        apps = os.listdir(os.path.join(env.dir, 'state', 'apps')) if n else []
        if len(apps) != n:
            bad.append('%s: %d applications created, explain lists %d' % (name, len(apps), n))
        if n and not any(m.rcpt_tos == [EBYS] for m in mails):
            bad.append('%s: no decision request to the EBYS officer' % name)
    elif ex['kind'] in ('bounce', 'auto_reply', 'other', 'unreadable') and mails:
        bad.append('%s: a %s mail caused notices to %s' % (name, ex['kind'],
                                                          [m.rcpt_tos for m in mails]))
    elif ex['kind'] == 'command':
        # No application exists: nothing may change; an answer goes only
        # to a sender inside the institution.
        for m in mails:
            if not m.rcpt_tos[0].endswith('example.edu.tr'):
                bad.append('%s: answered outside the institution: %s' % (name, m.rcpt_tos))
        if os.path.isdir(os.path.join(env.dir, 'state', 'apps')) and \
                os.listdir(os.path.join(env.dir, 'state', 'apps')):
            bad.append('%s: a command created an application' % name)
    return bad


@test
def every_fixture_gives_the_event_explain_predicts(env):
    check(len(FIXTURES) >= 60, 'at least 60 fixtures: %d' % len(FIXTURES))
    problems = []
    kinds = {}
    for path in FIXTURES:
        ex = explain(env, path)
        kinds[ex['kind']] = kinds.get(ex['kind'], 0) + 1
        if os.path.getsize(path) == 0:
            continue        # IMAP cannot hold an empty message; explain covers it
        problems += one(env, path, ex)
    print('# %d fixtures: %s' % (len(FIXTURES), ', '.join('%s %d' % kv for kv in sorted(kinds.items()))))
    for p in problems:
        print('# ' + p)
    eq(problems, [], 'fixtures handled as explained')
    for k in ('request', 'kamusm.credentials', 'kamusm.info', 'kamusm.shipped', 'kamusm.expiry',
              'command', 'bounce', 'auto_reply', 'other', 'unreadable'):
        check(kinds.get(k, 0) >= 1, 'the corpus covers %s' % k)


run(setup, teardown)
