"""eimzad end to end on real servers: Dovecot (IMAP, TLS, IDLE), an SMTP
server (STARTTLS, AUTH) and an SMS HTTP API. The walking skeleton's cases:
one KAMUSM mail in IDLE gives exactly one e-mail and one SMS, the state on
disk moves, a restart sends nothing again, other mail and look-alike links
send nothing, a wrong certificate is refused, config errors name their
line, and a second daemon refuses the same state directory."""
import os
import subprocess
import time

from eimzad_env import BUILD, Env, kamusm_credentials, mail
from tap import check, eq, run, test, wait_for

NOW = '2026-03-02 10:00'      # a Monday: working time and SMS hours


def setup():
    env = Env()
    env.import_csv([
        'Ad Soyad;Kurumsal E-posta;Cep Telefonu;TC Kimlik No;Unvan;Birim',
        'Ayşe Sınamalı;ayse.sinamali@example.edu.tr;0555 000 00 01;10000000146;Şef;Fen Fakültesi',
        'Mehmet Deneme;mehmet.deneme@example.edu.tr;0555 000 00 02;10000000214;Müdür;BİDB',
    ], now=NOW)
    env.start(now=NOW)
    return env


def teardown(env):
    if env:
        env.close()


def processed(env, n):
    """Wait until the daemon has handled n messages in all (status kinds)."""
    def done():
        _, st = env.ctl('status')
        return sum(st.get('kinds', {}).values()) >= n
    wait_for(done, timeout=15, what='%d messages handled' % n)


@test
def kamusm_mail_in_idle_gives_one_mail_and_one_sms(env):
    time.sleep(0.3)                       # let the daemon enter IDLE
    t0 = time.monotonic()
    env.append(kamusm_credentials('ayse.sinamali@example.edu.tr', code='SYNTH-CODE-77'))
    reqs = env.sms.wait_for(1, timeout=15)
    t_sms = reqs[0].start - t0
    msgs = env.sink.wait_for(1, timeout=15)
    t_mail = msgs[0].time - (time.time() - (time.monotonic() - t0))
    print('# APPEND -> SMS request %.0f ms, -> end of SMTP DATA %.0f ms (Dovecot delays '
          'IDLE notifications by ~500 ms of that)' % (t_sms * 1000, t_mail * 1000))
    time.sleep(1.0)                       # nothing more may come
    eq(len(env.sms.requests), 1, 'SMS requests')
    eq(len(env.sink.messages), 1, 'mails')
    sms = env.sms.requests[0]
    eq(sms.json['to'], '+905550000001', 'SMS recipient (E.164)')
    check('EIMZA-2026-0001' in sms.json['text'], 'SMS names the tag: %r' % sms.json['text'])
    check('taahhütname' in sms.json['text'], 'SMS says what to do next')
    check('SYNTH-CODE-77' not in sms.json['text'], 'SMS must not repeat the password')
    eq(sms.headers.get('authorization'), 'Bearer sms-token-secret', 'SMS auth header')
    m = env.sink.messages[0]
    eq(m.rcpt_tos, ['ayse.sinamali@example.edu.tr'], 'mail recipient')
    check(m.tls and m.auth_user == 'eimza', 'SMTP over STARTTLS with AUTH')
    check('[EIMZA-2026-0001]' in m.headers['Subject'], m.headers['Subject'])
    eq(m.headers['Auto-Submitted'], 'auto-generated', 'Auto-Submitted')
    body = m.body()
    check('taahhütname' in body and 'EBYS sorumlusuna' in body, 'steps 5-6 explained')
    check('SYNTH-CODE-77' not in body, 'the password is not repeated in the notice')
    eq(env.app('EIMZA-2026-0001')['state'], 'credentials_issued', 'state on disk')
    check('SYNTH-CODE-77' not in env.log(), 'the access code never reaches the log')
    check('sms-token-secret' not in env.log(), 'the SMS token never reaches the log')


@test
def restart_sends_nothing_again(env):
    eq(env.stop(), 0, 'eimzad exit code after SIGTERM')
    start = len(env.log())
    env.start(now=NOW)
    check('outbox: 0 notice(s) pending at start' in env.log()[start:],
          'the restarted daemon read both notices as sent: %r' % env.log()[start:][-600:])
    time.sleep(2.0)
    eq(len(env.sms.requests), 1, 'SMS requests after restart')
    eq(len(env.sink.messages), 1, 'mails after restart')
    eq(env.app('EIMZA-2026-0001')['state'], 'credentials_issued', 'state after restart')


@test
def other_mail_produces_nothing(env):
    env.append(mail('Tedarikçi <satis@vendor.example>', '<eimza@example.edu.tr>',
                    'Kampanya', 'Yeni kart okuyucularımız stokta.\n'))
    processed(env, 2)
    time.sleep(0.5)
    eq(len(env.sms.requests), 1, 'SMS requests')
    eq(len(env.sink.messages), 1, 'mails')
    _, st = env.ctl('status')
    eq(st['kinds'].get('other'), 1, 'counted as other')


@test
def lookalike_link_gives_no_notice_and_a_warning(env):
    env.append(kamusm_credentials('mehmet.deneme@example.edu.tr',
                                  host='basvuru.kamusm.gov.tr.example.com'))
    processed(env, 3)
    time.sleep(0.5)
    eq(len(env.sms.requests), 1, 'SMS requests')
    eq(len(env.sink.messages), 1, 'mails')
    eq(env.app('EIMZA-2026-0002')['state'], 'submitted', 'state unchanged')
    check('kamusm.gov.tr.example.com' in env.log(), 'a warning names the refused link host')


@test
def second_daemon_refuses_the_state_directory(env):
    p = subprocess.run([os.path.join(BUILD, 'eimzad'), '-c', env.conf], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=20)
    out = p.stdout.decode()
    check(p.returncode != 0, 'a second eimzad must not start')
    check(str(env.proc.pid) in out, 'the refusal names the running pid: %r' % out)


@test
def broken_config_line_is_reported_with_its_line(env):
    bad = os.path.join(env.dir, 'bad.conf')
    with open(env.conf) as f:
        lines = f.read().splitlines()
    lines.insert(3, 'this is not an option line')
    lines.insert(6, 'retention = forever')
    with open(bad, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    p = subprocess.run([os.path.join(BUILD, 'eimzad'), '-n', '-c', bad], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=20)
    err = p.stderr.decode()
    eq(p.returncode, 78, 'EX_CONFIG')
    check('%s:4: ' % bad in err, 'line 4 reported: %r' % err)
    check('%s:7: retention' % bad in err, 'line 7 reported: %r' % err)
    p = subprocess.run([os.path.join(BUILD, 'eimzad'), '-n', '-c', env.conf],
                       stdout=subprocess.PIPE, timeout=20)
    eq(p.stdout.decode().strip(), 'configuration OK', 'the good file')


@test
def wrong_certificate_is_refused(env):
    env.stop()
    env.dv.set_cert('wronghost')
    try:
        p = subprocess.run([os.path.join(BUILD, 'eimzad'), '-c', env.conf, '--once',
                            '--now', NOW], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        out = p.stdout.decode()
        check(p.returncode != 0, '--once must fail when the mailbox cannot be reached')
        check('not-this-host.example' in out or 'does not match' in out,
              'the log says the certificate does not match: %r' % out[-600:])
        env.dv.set_cert('untrusted')
        p = subprocess.run([os.path.join(BUILD, 'eimzad'), '-c', env.conf, '--once',
                            '--now', NOW], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=60)
        check(p.returncode != 0 and 'trust' in p.stdout.decode().lower(),
              'an untrusted CA is refused: %r' % p.stdout.decode()[-600:])
    finally:
        env.dv.set_cert('good')


@test
def uidvalidity_change_rescans_without_repeats(env):
    """A folder recreated on the server (new UIDVALIDITY) is scanned again
    from the start; what was handled is recognised by its Message-ID."""
    env.write_config(extra='[source]\nfolder = Kamusm\n')
    env.dv.create('eimza', 'Kamusm')
    mail1 = kamusm_credentials('mehmet.deneme@example.edu.tr', msgid='<uidv-1@test.invalid>')
    env.dv.append('eimza', mail1, folder='Kamusm')
    before = len(env.sink.messages)
    rc, out = env.once(NOW)
    eq(rc, 0, 'first run: %s' % out[-300:])
    eq(len(env.sink.messages), before + 1, 'one notice for the first mail')
    env.dv.recreate('eimza', 'Kamusm')
    env.dv.append('eimza', mail1, folder='Kamusm')            # the same mail again
    env.dv.append('eimza', mail('Birisi <biri@example.edu.tr>', '<eimza@example.edu.tr>',
                                'Bilgi', 'Merhaba.\n'), folder='Kamusm')
    rc, out = env.once(NOW)
    eq(rc, 0, 'second run')
    check('UIDVALIDITY changed' in out, 'the change is logged: %r' % out[-500:])
    eq(len(env.sink.messages), before + 1, 'nothing sent again after the re-scan')


run(setup, teardown)
