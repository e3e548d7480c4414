"""eimzactl: import with bad rows reported by line, list filters, show,
changes with and without the daemon running (over its control socket, or
holding the lock itself), refusals with exit codes from sysexits.h, the
audit record, edit, resend, purge, and human output for people."""
import json
import os
import subprocess

from eimzad_env import BUILD, Env, kamusm_credentials
from tap import check, eq, run, test, wait_for

NOW = '2026-03-02 10:00'
EX_DATAERR, EX_NOINPUT, EX_USAGE = 65, 66, 64


def setup():
    return Env()


def teardown(env):
    if env:
        env.close()


def ctl_raw(env, *args, now=NOW):
    argv = [os.path.join(BUILD, 'eimzactl'), '-c', env.conf, '--now', now] + list(args)
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


@test
def import_reports_bad_rows_by_line_and_keeps_good_ones(env):
    path = os.path.join(env.dir, 'list.csv')
    with open(path, 'w', encoding='utf-8-sig') as f:    # with a BOM, as Excel writes it
        f.write('Ad Soyad;Kurumsal E-posta;Cep Telefonu;TC Kimlik No;Unvan;Birim;state;since\n'
                'Ayşe Bir;ayse.bir@example.edu.tr;0555 000 00 01;10000000146;Şef;Fen;;\n'
                'Bora İki;bora.iki@gmail.com;0555 000 00 02;;Uzman;Fen;;\n'
                'Cem Üç;cem.uc@example.edu.tr;0212 000 00 03;;Uzman;Fen;;\n'
                'Deniz Dört;deniz.dort@example.edu.tr;;12345678901;Uzman;Fen;;\n'
                'Ece Beş;ece.bes@example.edu.tr;+90 555 000 0005;;Müdür;Müh;credentials_issued;2026-01-05\n'
                'Fırat Altı;firat.alti@example.edu.tr;;;Müdür;Müh;nosuchstate;\n')
    rc, out, err = ctl_raw(env, 'import', path)
    eq(rc, 0, 'import exit code (%s)' % err)
    for line, what in ((3, 'bora.iki@gmail.com'), (4, 'mobile'), (5, 'TC'), (7, 'nosuchstate')):
        check('list.csv:%d:' % line in err, 'row %d (%s) reported: %r' % (line, what, err))
    check('10000000146' not in err and '12345678901' not in err, 'TC numbers masked in reports')
    _, lst = env.ctl('list')
    eq([a['email'] for a in lst['apps']], ['ayse.bir@example.edu.tr', 'ece.bes@example.edu.tr'],
       'only the good rows')
    eq([a['state'] for a in lst['apps']], ['submitted', 'credentials_issued'], 'default and given state')
    app = env.app('EIMZA-2026-0002')
    eq(app['opened'][:10], '2026-01-04', '`since` starts the clock (local midnight, in UTC)')
    eq(app['applicant']['mobile'], '+905550000005', 'mobile in E.164')


@test
def list_filters_and_show_timeline(env):
    _, lst = env.ctl('list', '--state', 'credentials_issued')
    eq([a['id'] for a in lst['apps']], ['EIMZA-2026-0002'], '--state')
    _, lst = env.ctl('list', '--unit', 'fen')
    eq([a['id'] for a in lst['apps']], ['EIMZA-2026-0001'], '--unit (case-insensitive)')
    _, lst = env.ctl('list', '--overdue', now=NOW)
    eq([a['id'] for a in lst['apps']], ['EIMZA-2026-0002'], '--overdue: imported two months late')
    rc, out, _ = ctl_raw(env, 'show', 'EIMZA-2026-0001')
    eq(rc, 0, 'show')
    check('Ayşe Bir' in out and 'imported' in out and 'cli:' in out, 'timeline for people: %r' % out)
    rc, _, err = ctl_raw(env, 'show', 'EIMZA-2026-0999')
    eq(rc, EX_NOINPUT, 'unknown id exit code')
    check('no application EIMZA-2026-0999' in err, err)


@test
def changes_without_the_daemon_take_the_lock(env):
    rc, out, err = ctl_raw(env, 'mark', 'EIMZA-2026-0001', 'activated')
    eq(rc, EX_DATAERR, 'an illegal step is refused')
    check('state submitted' in out + err, 'the refusal names the state: %r' % (out + err))
    eq(env.app('EIMZA-2026-0001')['state'], 'submitted', 'nothing changed')
    rc, _, err = ctl_raw(env, 'reject', 'EIMZA-2026-0001')
    eq(rc, EX_USAGE, 'reject without a reason')
    rc, out, err = ctl_raw(env, 'edit', 'EIMZA-2026-0001', 'mobile=0555 000 00 09')
    eq(rc, 0, 'edit (%s)' % err)
    eq(env.app('EIMZA-2026-0001')['applicant']['mobile'], '+905550000009', 'edited mobile')
    rc, _, err = ctl_raw(env, 'edit', 'EIMZA-2026-0001', 'tc=11111111111')
    eq(rc, EX_DATAERR, 'a bad TC is refused')
    with open(os.path.join(env.dir, 'state', 'audit.log')) as f:
        audit = [json.loads(x) for x in f]
    check(any(a['request']['cmd'] == 'edit' and a['ok'] and a['user'] for a in audit),
          'the edit is in the audit log with the Unix user')
    check(all(isinstance(a['request'].get('rows', 0), int) for a in audit),
          'imports are audited by size, not personal data')


@test
def changes_while_the_daemon_runs_go_over_its_socket(env):
    env.start(now=NOW)
    rc, _, err = ctl_raw(env, 'cancel', 'EIMZA-2026-0002')
    eq(rc, 0, 'cancel through the daemon (%s)' % err)
    _, show = env.ctl('show', 'EIMZA-2026-0002')
    eq(show['app']['state'], 'cancelled', 'state, as the daemon serves it at once')
    # the file (what jq reads) follows once the daemon is idle (~0.5 s)
    wait_for(lambda: env.app('EIMZA-2026-0002')['state'] == 'cancelled', timeout=5,
             what='the state file')
    # The cancellation notice to the applicant is sent by the daemon at once.
    msgs = env.sink.wait_for(1, timeout=15)
    eq(msgs[0].rcpt_tos, ['ece.bes@example.edu.tr'], 'cancelled notice')
    _, st = env.ctl('status')
    check(st['daemon'] is True, 'status comes from the running daemon')
    eq(st['states']['cancelled'], 1, 'status counts')
    env.append(kamusm_credentials('ayse.bir@example.edu.tr'))
    wait_for(lambda: env.app('EIMZA-2026-0001')['state'] == 'credentials_issued', timeout=15,
             what='the KAMUSM mail')
    _, show = env.ctl('show', 'EIMZA-2026-0001')
    kinds = sorted((n['kind'], n['medium']) for n in show['notices'])
    eq(kinds, [('credentials_issued', 'mail'), ('credentials_issued', 'sms')], 'notices in show')
    # show lists each notice's delivery state: both reach the test servers
    wait_for(lambda: all(n['state'] == 'sent'
                         for n in env.ctl('show', 'EIMZA-2026-0001')[1]['notices']),
             timeout=15, what='show to list both notices as sent')
    rc, out, err = ctl_raw(env, 'resend', 'EIMZA-2026-0001', 'nosuchkind')
    eq(rc, EX_DATAERR, 'resend of an unknown notice')
    env.stop()


@test
def purge_after_retention(env):
    rc, out, _ = ctl_raw(env, 'purge', '--dry-run', now='2027-06-01 10:00')
    eq(rc, 0, 'purge --dry-run')
    check('would remove' in out and 'EIMZA-2026-0002' in out, out)
    eq(env.app('EIMZA-2026-0002')['applicant'].get('name'), 'Ece Beş', 'dry run keeps data')
    rc, out, _ = ctl_raw(env, 'purge', now='2027-06-01 10:00')
    eq(rc, 0, 'purge')
    app = env.app('EIMZA-2026-0002')
    eq(app['applicant'], {}, 'personal data removed')
    eq(app['state'], 'cancelled', 'the anonymous record stays')
    check(app['purged'] is True and len(app['history']) >= 2, 'timings kept')
    eq(env.app('EIMZA-2026-0001')['applicant']['name'], 'Ayşe Bir', 'open applications untouched')


@test
def human_list_aligns_turkish_names(env):
    rc, out, _ = ctl_raw(env, 'list')
    eq(rc, 0, 'list')
    lines = out.splitlines()
    col = lines[0].index('SINCE')          # in characters, not bytes
    rows = [x for x in lines if x.startswith('EIMZA-')]
    eq(len(rows), 2, 'two applications')
    for r in rows:
        check(r[col:col + 2] in ('20', '- '), 'the SINCE column lines up: %r' % r)


run(setup, teardown)
