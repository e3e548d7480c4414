#!/usr/bin/python3
"""The delivery channels against real test servers.

Drives build/.../tests/tools/chsend (one channel, one batch, outcomes as
JSON) against smtpsink.py (aiosmtpd, with STARTTLS from a test CA and
AUTH) and smsserver.py (a keep-alive HTTP server), and checks what
arrives and what each notice's outcome is. All mail and numbers are
synthetic.
"""
import base64
import json
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time

from tap import check, eq, run, test
from smtpsink import SmtpSink, free_port
from smsserver import SmsServer, http_date
from testca import TestCA

BUILD = os.environ.get('EIMZA_BUILD', os.path.join(os.path.dirname(__file__), '..', '..', 'build'))
CHSEND = os.path.join(BUILD, 'tests', 'tools', 'chsend')

SMTP_PASSWORD = 'Sm7p-pa55-Gizli'
SMS_TOKEN = 'tok-9f8e7d-GIZLI'
TWILIO_SID = 'AC0123456789abcdef'
TWILIO_TOKEN = 'twilio-auth-token-GIZLI'
ILETI_KEY = 'ileti-key-1234'
ILETI_HASH = 'ileti-hash-GIZLI-5678'
SECRETS = [SMTP_PASSWORD, SMS_TOKEN, TWILIO_TOKEN, ILETI_HASH]

TR_SUBJECT = 'E-imza başvurunuz: KAMUSM bağlantısı geldi — İşlem gerekli [EIMZA-2026-0001]'
TR_BODY = ('Sayın Ayşe Yılmaz,\n\nKAMUSM başvuru bağlantınız geldi. Formu doldurup '
           'imzalayın ve taahhütnameyi Bilgi İşlem Daire Başkanlığına teslim edin. '
           'Bu satır 76 karakterden uzundur ve = işareti içerir.\n\nE-İmza Birimi\n')


class Ctx:
    pass


def setup():
    c = Ctx()
    c.dir = tempfile.mkdtemp(prefix='eimza-ch-')
    os.chmod(c.dir, 0o700)
    c.ca = TestCA()
    c.cert = c.ca.server_cert(['localhost', '127.0.0.1'])
    c.wrong = c.ca.wrong_host_cert()
    c.other_ca = TestCA(name='another CA')
    c.untrusted = c.other_ca.server_cert(['localhost'])
    c.secret = {}
    for name, value in [('smtp', SMTP_PASSWORD), ('sms', SMS_TOKEN), ('twilio', TWILIO_TOKEN),
                        ('ileti', ILETI_HASH), ('smtp_wrong', 'not-the-password')]:
        path = os.path.join(c.dir, name + '.secret')
        with open(path, 'w') as f:
            f.write(value + '\n')
        os.chmod(path, 0o600)
        c.secret[name] = path
    c.servers = []
    return c


def teardown(c):
    if c is None:
        return
    for s in c.servers:
        try:
            s.stop()
        except Exception:
            pass
    c.ca.cleanup()
    c.other_ca.cleanup()
    shutil.rmtree(c.dir, ignore_errors=True)


def start(c, server):
    server.start()
    c.servers.append(server)
    return server


def stop(c, server):
    server.stop()
    c.servers.remove(server)


def chsend(c, conf, notices, args=(), timeout=60):
    """Run chsend; returns (parsed stdout, stdout + stderr text)."""
    cpath = os.path.join(c.dir, 'c.conf')
    npath = os.path.join(c.dir, 'n.json')
    with open(cpath, 'w') as f:
        f.write(conf)
    with open(npath, 'w') as f:
        json.dump(notices, f, ensure_ascii=False)
    # EIMZA_WRAP="valgrind -q --log-file=/tmp/vg.%p" runs chsend under a tool
    wrap = os.environ.get('EIMZA_WRAP', '').split()
    p = subprocess.run(wrap + [CHSEND] + list(args) + [cpath, npath], stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=timeout)
    out, err = p.stdout.decode('utf-8', 'replace'), p.stderr.decode('utf-8', 'replace')
    check(p.returncode in (0, 3), 'chsend exit %d: %s %s' % (p.returncode, out, err[-2000:]))
    return json.loads(out), out + err


def outcomes(res):
    return [r['outcome'] for r in res['results']]


def no_secrets(text):
    for s in SECRETS:
        check(s not in text, 'a secret appears in the output')
        check(base64.b64encode(s.encode()).decode() not in text, 'a base64 secret appears')


def mail(i, to=None, **kw):
    n = {'id': 'n%04d' % i, 'medium': 'mail', 'to': to or 'ayse.yilmaz%d@example.edu.tr' % i,
         'subject': TR_SUBJECT, 'body': TR_BODY, 'created': 1795000000}
    n.update(kw)
    return n


def sms(i, to=None, body='Sayın Ayşe Yılmaz, KAMUSM bağlantınız geldi.', **kw):
    n = {'id': 's%04d' % i, 'medium': 'sms', 'to': to or '+90532%07d' % i, 'body': body}
    n.update(kw)
    return n


# ---------------------------------------------------------------- SMTP

def smtp_conf(c, port, tls='starttls', host='localhost', user=True, extra=''):
    conf = ('[smtp]\nhost = %s\nport = %d\ntls = %s\nca_file = %s\n'
            'from = "E-İmza Birimi <eimza@example.edu.tr>"\nreply_to = eimza-kutu@example.edu.tr\n'
            'message_id_domain = eimzad.example.edu.tr\ntimeout = 5s\n'
            % (host, port, tls, c.ca.ca_file))
    if user:
        conf += 'user = eimza\npassword_file = %s\n' % (c.secret['smtp'] if user is True else user)
    return conf + extra


def plain_sink(c, **kw):
    return start(c, SmtpSink(**kw))


@test
def smtp_starttls_auth_delivers_turkish_mail(c):
    sink = start(c, SmtpSink(tls=c.cert, require_tls=True, auth=('eimza', SMTP_PASSWORD)))
    ns = [mail(1, message_id='eimza-2026-0001.credentials',
               in_reply_to='orig.1@kamusm.gov.tr',
               references='<req.7@example.edu.tr> <orig.1@kamusm.gov.tr>'),
          mail(2, body_html='<p>Sayın <b>Ayşe</b></p>')]
    res, text = chsend(c, smtp_conf(c, sink.port), ns, ['-v'])
    eq(outcomes(res), ['sent', 'sent'], 'outcomes')
    check(res['results'][0]['provider_id'].startswith('Q'), 'queue id recorded')
    no_secrets(text)
    msgs = sink.wait_for(2)
    m = msgs[0]
    check(m.tls and m.auth_user == 'eimza', 'delivered over TLS, authenticated')
    eq(sink.sni[0], 'localhost', 'SNI')
    eq(m.mail_from, 'eimza@example.edu.tr', 'envelope sender')
    eq(m.rcpt_tos, ['ayse.yilmaz1@example.edu.tr'], 'envelope recipient')
    h = m.headers
    eq(str(h['Subject']), TR_SUBJECT, 'decoded subject')
    eq(str(h['From']), 'E-İmza Birimi <eimza@example.edu.tr>', 'From')
    eq(str(h['Reply-To']), 'eimza-kutu@example.edu.tr', 'Reply-To')
    eq(str(h['To']), 'ayse.yilmaz1@example.edu.tr', 'To')
    eq(str(h['Message-ID']), '<eimza-2026-0001.credentials@eimzad.example.edu.tr>', 'Message-ID')
    eq(str(h['In-Reply-To']), '<orig.1@kamusm.gov.tr>', 'In-Reply-To')
    eq(str(h['References']), '<req.7@example.edu.tr> <orig.1@kamusm.gov.tr>', 'References')
    eq(str(h['Auto-Submitted']), 'auto-generated', 'Auto-Submitted')
    eq(str(h['X-Auto-Response-Suppress']), 'All', 'X-Auto-Response-Suppress')
    eq(str(h['Date']), 'Wed, 18 Nov 2026 11:06:40 +0000', 'Date')
    check(h['Precedence'] is None, 'no Precedence header')
    eq(h.get_content_type(), 'text/plain', 'single part')
    eq(h['Content-Transfer-Encoding'], 'quoted-printable', 'QP')
    eq(m.body().replace('\r\n', '\n'), TR_BODY, 'decoded body')
    for line in m.raw.split(b'\r\n'):
        check(len(line) <= 78, 'line too long: %r' % line)
    head = m.raw.split(b'\r\n\r\n')[0].lower()
    for name in (b'date', b'from', b'to', b'subject', b'message-id', b'mime-version'):
        eq(head.count(b'\r\n' + name + b':') + head.startswith(name + b':'), 1,
           'one %s header (libesmtp adds none)' % name.decode())
    m2 = msgs[1]
    eq(m2.headers.get_content_type(), 'multipart/alternative', 'alternative')
    eq(m2.body('html').replace('\r\n', '\n'), '<p>Sayın <b>Ayşe</b></p>\n', 'html part')
    eq(m2.body().replace('\r\n', '\n'), TR_BODY, 'text part')
    eq(str(m2.headers['Message-ID']), '<n0002@eimzad.example.edu.tr>', 'made-up Message-ID')
    stop(c, sink)


@test
def smtp_parallel_sessions_on_one_channel(c):
    # The outbox runs [smtp] sessions workers on one channel instance.
    sink = start(c, SmtpSink(tls=c.cert, require_tls=True, auth=('eimza', SMTP_PASSWORD)))
    ns = [mail(i) for i in range(40)]
    res, _ = chsend(c, smtp_conf(c, sink.port), ns, ['-t', '4', '-b', '5'])
    eq(res['counts']['sent'], 40, 'all sent')
    msgs = sink.wait_for(40)
    eq(sorted(m.rcpt_tos[0] for m in msgs), sorted(n['to'] for n in ns), 'each once')
    check(len({m.peer for m in msgs}) >= 4, 'several sessions')
    stop(c, sink)


@test
def smtp_certificate_for_wrong_host_is_down(c):
    sink = start(c, SmtpSink(tls=c.wrong, auth=('eimza', SMTP_PASSWORD)))
    res, text = chsend(c, smtp_conf(c, sink.port), [mail(1), mail(2)])
    eq(outcomes(res), ['down', 'down'], 'outcomes')
    check('hostname mismatch' in res['results'][0]['detail'], res['results'][0]['detail'])
    eq(sink.messages, [], 'nothing delivered')
    eq(sink.auth_attempts, [], 'no credentials sent')
    no_secrets(text)
    stop(c, sink)


@test
def smtp_certificate_from_unknown_ca_is_down(c):
    sink = start(c, SmtpSink(tls=c.untrusted))
    res, _ = chsend(c, smtp_conf(c, sink.port, user=False), [mail(1)])
    eq(outcomes(res), ['down'], 'outcomes')
    check('certificate refused' in res['results'][0]['detail'], res['results'][0]['detail'])
    eq(sink.messages, [], 'nothing delivered')
    stop(c, sink)


@test
def smtp_ip_address_certificate_checked(c):
    # The configured host is an IP literal: OpenSSL checks the IP SAN.
    sink = start(c, SmtpSink(tls=c.cert))
    res, _ = chsend(c, smtp_conf(c, sink.port, host='127.0.0.1', user=False), [mail(1)])
    eq(outcomes(res), ['sent'], 'outcomes')
    stop(c, sink)


@test
def smtp_plain_refused_at_open(c):
    res, _ = chsend(c, smtp_conf(c, 2525, tls='none', host='mail.example.edu.tr', user=False), [mail(1)])
    check('loopback' in res.get('open_error', ''), 'tls = none refused: %r' % res)
    res, _ = chsend(c, smtp_conf(c, 25, tls='none', host='::1', user=False), [mail(1)])
    check('IPv6' in res.get('open_error', ''), 'IPv6 literal refused: %r' % res)


# -- implicit TLS ([smtp] tls = tls): libesmtp through a tunnel of ours

def implicit_sink(c, cert=None, auth=True, **kw):
    return start(c, SmtpSink(tls=cert or c.cert, implicit_tls=True,
                             auth=('eimza', SMTP_PASSWORD) if auth else None, **kw))


@test
def smtp_implicit_tls_auth_delivers(c):
    sink = implicit_sink(c, require_tls=True)
    big = TR_BODY * 1000        # ~300 KB: many relay buffers and TLS records
    res, text = chsend(c, smtp_conf(c, sink.port, tls='tls'), [mail(1), mail(2), mail(3, body=big)],
                       ['-v'])
    eq(outcomes(res), ['sent', 'sent', 'sent'], 'outcomes')
    check(res['results'][0]['provider_id'].startswith('Q'), 'queue id recorded')
    no_secrets(text)
    msgs = sink.wait_for(3)
    eq(msgs[2].body().replace('\r\n', '\n'), big, 'the big body, intact')
    check(all(m.tls and m.auth_user == 'eimza' for m in msgs), 'over TLS, authenticated')
    eq([a[2] for a in sink.auth_attempts], [True], 'one AUTH, accepted')
    eq(sink.sni, ['localhost'], 'SNI')
    eq(str(msgs[0].headers['Subject']), TR_SUBJECT, 'subject')
    eq(msgs[1].rcpt_tos, ['ayse.yilmaz2@example.edu.tr'], 'recipient')
    check('tunnel: TLSv1.3' in text, 'TLS 1.3 through the tunnel: %s' % text[-1500:])


@test
def smtp_implicit_tls_parallel_sessions(c):
    sink = implicit_sink(c)
    ns = [mail(i) for i in range(24)]
    res, _ = chsend(c, smtp_conf(c, sink.port, tls='tls'), ns, ['-t', '3', '-b', '4'])
    eq(res['counts']['sent'], 24, 'all sent')
    msgs = sink.wait_for(24)
    eq(sorted(m.rcpt_tos[0] for m in msgs), sorted(n['to'] for n in ns), 'each once')
    check(len({m.peer for m in msgs}) >= 3, 'several sessions')


@test
def smtp_implicit_tls_connection_lost_during_data(c):
    # The server drops the connection: a lost connection for libesmtp (the
    # dropped notice may have gone: tempfail), not a tunnel failure; the
    # rest go out in a new session through a new tunnel.
    sink = implicit_sink(c)
    sink.fail('drop_data', count=1)
    res, _ = chsend(c, smtp_conf(c, sink.port, tls='tls'), [mail(1), mail(2), mail(3)])
    eq(outcomes(res), ['tempfail', 'sent', 'sent'], 'outcomes')
    check('connection lost during DATA' in res['results'][0]['detail'], res['results'][0]['detail'])
    eq(len(sink.wait_for(2)), 2, 'two delivered')


@test
def smtp_implicit_tls_greeting_421_is_down(c):
    sink = implicit_sink(c, auth=False)
    sink.fail('greeting', code=421)
    res, _ = chsend(c, smtp_conf(c, sink.port, tls='tls', user=False), [mail(1)])
    eq(outcomes(res), ['down'], 'outcomes')
    check('server said: 421' in res['results'][0]['detail'], res['results'][0]['detail'])


@test
def smtp_implicit_tls_ip_address_certificate_checked(c):
    sink = implicit_sink(c, auth=False)
    res, _ = chsend(c, smtp_conf(c, sink.port, tls='tls', host='127.0.0.1', user=False), [mail(1)])
    eq(outcomes(res), ['sent'], 'outcomes')
    eq(sink.sni, [None], 'no SNI for an IP address')


@test
def smtp_implicit_tls_certificate_for_wrong_host_is_down(c):
    sink = implicit_sink(c, cert=c.wrong)
    res, text = chsend(c, smtp_conf(c, sink.port, tls='tls'), [mail(1), mail(2)])
    eq(outcomes(res), ['down', 'down'], 'outcomes')
    d = res['results'][0]['detail']
    check('certificate verify failed: hostname mismatch' in d, d)
    eq(sink.messages, [], 'nothing delivered')
    eq(sink.auth_attempts, [], 'no credentials sent')
    no_secrets(text)


@test
def smtp_implicit_tls_certificate_from_unknown_ca_is_down(c):
    sink = implicit_sink(c, cert=c.untrusted)
    res, _ = chsend(c, smtp_conf(c, sink.port, tls='tls'), [mail(1)])
    eq(outcomes(res), ['down'], 'outcomes')
    d = res['results'][0]['detail']
    check('certificate verify failed: unable to get local issuer certificate' in d, d)
    eq(sink.messages, [], 'nothing delivered')
    eq(sink.auth_attempts, [], 'no credentials sent')


@test
def smtp_implicit_tls_silent_server_is_down_within_timeout(c):
    # A server that takes the TCP connection (the kernel's backlog) and
    # never answers the ClientHello.
    silent = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        silent.bind(('127.0.0.1', 0))
        silent.listen(4)
        conf = smtp_conf(c, silent.getsockname()[1], tls='tls').replace('timeout = 5s', 'timeout = 1s')
        res, _ = chsend(c, conf, [mail(1), mail(2)])
    finally:
        silent.close()
    eq(outcomes(res), ['down', 'down'], 'outcomes')
    d = res['results'][0]['detail']
    check('TLS handshake' in d and 'no answer within 1000 ms' in d, d)
    # chsend's own clock (a loaded machine or a sanitizer slows its start):
    # the tunnel's 1 s, not libesmtp's greeting timeout (2 s here)
    ms = res['elapsed_ms']
    check(900 <= ms < 1800, 'gave up after [smtp] timeout: %d ms' % ms)


@test
def smtp_implicit_tls_connection_refused_is_down(c):
    res, _ = chsend(c, smtp_conf(c, free_port(), tls='tls', host='127.0.0.1'), [mail(1), mail(2)])
    eq(outcomes(res), ['down', 'down'], 'outcomes')
    d = res['results'][0]['detail']
    check('connect to 127.0.0.1:' in d and 'Connection refused' in d, d)


@test
def smtp_implicit_tls_without_auth_is_not_sent_unauthenticated(c):
    # The guard holds through the tunnel: a user is configured, the server
    # offers no AUTH, nothing goes out.
    sink = implicit_sink(c, auth=False)
    res, _ = chsend(c, smtp_conf(c, sink.port, tls='tls'), [mail(1)])
    eq(outcomes(res), ['down'], 'outcomes')
    check('AUTH not offered' in res['results'][0]['detail'], res['results'][0]['detail'])
    time.sleep(0.1)
    eq(sink.messages, [], 'nothing delivered')


@test
def smtp_secret_file_readable_by_others_refused(c):
    path = os.path.join(c.dir, 'open.secret')
    with open(path, 'w') as f:
        f.write(SMTP_PASSWORD + '\n')
    os.chmod(path, 0o644)
    res, text = chsend(c, smtp_conf(c, 2525, user=path), [mail(1)])
    check('readable by others' in res.get('open_error', ''), repr(res))
    no_secrets(text)


@test
def smtp_4xx_is_tempfail(c):
    sink = plain_sink(c)
    conf = smtp_conf(c, sink.port, tls='none', host='127.0.0.1', user=False)
    for stage in ('mail', 'rcpt', 'data'):
        sink.clear()
        sink.fail(stage, code=451, count=1)
        res, _ = chsend(c, conf, [mail(1), mail(2)])
        eq(outcomes(res), ['tempfail', 'sent'], 'outcomes for 451 at ' + stage)
        check('451' in res['results'][0]['detail'], res['results'][0]['detail'])
    stop(c, sink)


@test
def smtp_550_for_one_recipient_only(c):
    sink = plain_sink(c)
    sink.fail('rcpt', code=550, match='bad@')
    conf = smtp_conf(c, sink.port, tls='none', host='127.0.0.1', user=False)
    res, _ = chsend(c, conf, [mail(1, to='bad@example.edu.tr'), mail(2)])
    eq(outcomes(res), ['permfail', 'sent'], 'outcomes')
    msgs = sink.wait_for(1)
    eq(len(msgs), 1, 'one message delivered')
    eq(msgs[0].rcpt_tos, ['ayse.yilmaz2@example.edu.tr'], 'the good recipient')
    stop(c, sink)


@test
def smtp_connection_lost_during_data(c):
    sink = plain_sink(c)
    sink.fail('drop_data', count=1)
    conf = smtp_conf(c, sink.port, tls='none', host='127.0.0.1', user=False)
    res, _ = chsend(c, conf, [mail(1), mail(2), mail(3)])
    # the dropped one may have been delivered: retry later; the others go
    # out in a new session
    eq(outcomes(res), ['tempfail', 'sent', 'sent'], 'outcomes')
    eq(len(sink.wait_for(2)), 2, 'two delivered')
    stop(c, sink)


@test
def smtp_data_timeout_is_tempfail(c):
    sink = plain_sink(c)
    sink.fail('data', delay=2.5, count=1)
    conf = smtp_conf(c, sink.port, tls='none', host='127.0.0.1', user=False).replace(
        'timeout = 5s', 'timeout = 1s')
    t0 = time.monotonic()
    res, _ = chsend(c, conf, [mail(1)])
    eq(outcomes(res), ['tempfail'], 'outcomes')
    check(time.monotonic() - t0 < 2.4, 'gave up after [smtp] timeout')
    stop(c, sink)


@test
def smtp_connection_refused_is_down(c):
    port = free_port()
    res, _ = chsend(c, smtp_conf(c, port, tls='none', host='127.0.0.1', user=False), [mail(1), mail(2)])
    eq(outcomes(res), ['down', 'down'], 'outcomes')
    check('refused' in res['results'][0]['detail'].lower(), res['results'][0]['detail'])


@test
def smtp_greeting_421_is_down(c):
    sink = plain_sink(c)
    sink.fail('greeting', code=421)
    res, _ = chsend(c, smtp_conf(c, sink.port, tls='none', host='127.0.0.1', user=False), [mail(1)])
    eq(outcomes(res), ['down'], 'outcomes')
    check('421' in res['results'][0]['detail'], res['results'][0]['detail'])
    stop(c, sink)


@test
def smtp_auth_failure_is_down(c):
    sink = start(c, SmtpSink(tls=c.cert, auth=('eimza', SMTP_PASSWORD)))
    res, text = chsend(c, smtp_conf(c, sink.port, user=c.secret['smtp_wrong']), [mail(1), mail(2)])
    eq(outcomes(res), ['down', 'down'], 'outcomes')
    check('535' in res['results'][0]['detail'], res['results'][0]['detail'])
    eq(sink.messages, [], 'nothing delivered')
    check('not-the-password' not in text, 'password not shown')
    stop(c, sink)


@test
def smtp_without_auth_on_open_server_is_not_sent_unauthenticated(c):
    # A server that offers no AUTH but would accept mail: with a user
    # configured, nothing may go out unauthenticated.
    sink = plain_sink(c)
    res, _ = chsend(c, smtp_conf(c, sink.port, tls='none', host='127.0.0.1'), [mail(1)])
    eq(outcomes(res), ['down'], 'outcomes')
    check('AUTH not offered' in res['results'][0]['detail'], res['results'][0]['detail'])
    time.sleep(0.1)
    eq(sink.messages, [], 'nothing delivered')
    stop(c, sink)


@test
def smtp_starttls_not_offered_is_down(c):
    sink = plain_sink(c)
    res, _ = chsend(c, smtp_conf(c, sink.port, user=False), [mail(1)])
    eq(outcomes(res), ['down'], 'outcomes')
    check('STARTTLS' in res['results'][0]['detail'], res['results'][0]['detail'])
    stop(c, sink)


@test
def smtp_bad_recipient_address_is_permfail(c):
    sink = plain_sink(c)
    conf = smtp_conf(c, sink.port, tls='none', host='127.0.0.1', user=False)
    res, _ = chsend(c, conf, [mail(1, to='a@example.edu.tr>\r\nRCPT TO:<evil@example.com'), mail(2)])
    eq(outcomes(res), ['permfail', 'sent'], 'outcomes')
    eq([m.rcpt_tos for m in sink.wait_for(1)], [['ayse.yilmaz2@example.edu.tr']], 'recipients')
    stop(c, sink)


# ---------------------------------------------------------------- SMS

def sms_conf(url, extra='', rate=0, concurrency=4, timeout='5s'):
    return ('[sms]\nurl = %s\nsender = EIMZA\nrate = %s\nconcurrency = %d\n'
            'timeout = %s\nconnect_timeout = 2s\n%s' % (url, rate, concurrency, timeout, extra))


def json_profile(c, srv, extra='', **kw):
    body = '{"to":"{{to}}","from":"{{sender}}","text":"{{text}}","ref":"{{id}}"}'
    return sms_conf(srv.url('/v1/sms'), 'auth = header\nauth_header = X-API-Key\nsecret_file = %s\n'
                    'id_field = id\nbody_template = %s\n%s'
                    % (c.secret['sms'], json.dumps(body), extra), **kw)


@test
def sms_json_profile_escapes_and_authenticates(c):
    srv = start(c, SmsServer())
    tricky = 'Sayın "Ayşe" Yılmaz,\nşifre\\yok\t{{to}} — İĞÜŞÖÇ ığüşöç'
    ns = [sms(1, body=tricky), sms(2)]
    res, text = chsend(c, json_profile(c, srv), ns, ['-v'])
    eq(outcomes(res), ['sent', 'sent'], 'outcomes')
    check(res['results'][0]['provider_id'].startswith('sms-'), 'provider id')
    reqs = srv.wait_for(2)
    r = [q for q in reqs if q.to == '+905320000001'][0]
    eq(r.method, 'POST', 'method')
    eq(r.path, '/v1/sms', 'path')
    eq(r.headers.get('content-type'), 'application/json', 'content type')
    eq(r.headers.get('x-api-key'), SMS_TOKEN, 'auth header at the server')
    eq(r.json, {'to': '+905320000001', 'from': 'EIMZA', 'text': tricky, 'ref': 's0001'},
       'body, JSON-escaped')
    no_secrets(text)
    stop(c, srv)


@test
def sms_twilio_profile_form_and_basic_auth(c):
    srv = start(c, SmsServer())
    srv.ok_reply(201, lambda req, n: {'sid': 'SM%032d' % n, 'status': 'queued'})
    conf = sms_conf(srv.url('/2010-04-01/Accounts/{sid}/Messages.json'),
                    'profile = twilio\nuser = %s\nsecret_file = %s\n' % (TWILIO_SID, c.secret['twilio']))
    res, text = chsend(c, conf, [sms(1, body='Merhaba & hoş geldiniz + 100%')], ['-v'])
    eq(outcomes(res), ['sent'], 'outcomes')
    eq(res['results'][0]['provider_id'], 'SM%032d' % 1, 'sid')
    r = srv.wait_for(1)[0]
    eq(r.path, '/2010-04-01/Accounts/%s/Messages.json' % TWILIO_SID, 'account in the URL')
    eq(r.headers.get('content-type'), 'application/x-www-form-urlencoded', 'form')
    eq(r.form, {'To': '+905320000001', 'From': 'EIMZA', 'Body': 'Merhaba & hoş geldiniz + 100%'}, 'form body')
    auth = base64.b64encode(('%s:%s' % (TWILIO_SID, TWILIO_TOKEN)).encode()).decode()
    eq(r.headers.get('authorization'), 'Basic ' + auth, 'basic auth')
    no_secrets(text)
    stop(c, srv)


@test
def sms_iletimerkezi_profile(c):
    srv = start(c, SmsServer())

    def reply(req, n):
        return {'response': {'status': {'code': '200', 'message': 'İşlem başarılı'},
                             'order': {'id': str(900000 + n)}}}
    srv.ok_reply(200, reply)
    srv.mode('status', code=200, to='+905320000002',
             body={'response': {'status': {'code': '402', 'message': 'Bakiye yetersiz'}}})
    conf = sms_conf(srv.url('/v1/send-sms/json'), 'profile = iletimerkezi\nuser = %s\nsecret_file = %s\n'
                    % (ILETI_KEY, c.secret['ileti']))
    res, text = chsend(c, conf, [sms(1), sms(2)])
    eq(outcomes(res), ['sent', 'permfail'], 'outcomes')
    check(res['results'][0]['provider_id'].startswith('9000'), 'order id')
    check('402' in res['results'][1]['detail'], res['results'][1]['detail'])
    r = [q for q in srv.wait_for(2) if q.to == '+905320000001'][0]
    eq(r.json['request']['authentication'], {'key': ILETI_KEY, 'hash': ILETI_HASH}, 'credentials in body')
    order = r.json['request']['order']
    eq(order['sender'], 'EIMZA', 'sender')
    eq(order['iys'], '0', 'transactional')
    eq(order['message'], {'text': 'Sayın Ayşe Yılmaz, KAMUSM bağlantınız geldi.',
                          'receipents': {'number': ['+905320000001']}}, 'message')
    no_secrets(text)
    stop(c, srv)


@test
def sms_server_errors_and_retry_after(c):
    srv = start(c, SmsServer())
    srv.mode('status', code=500, to='+905320000001')
    srv.mode('retry', after='7', to='+905320000002')
    srv.mode('retry', after=http_date(120), to='+905320000003')
    srv.mode('status', code=400, to='+905320000004')
    srv.mode('status', code=503, to='+905320000005')
    res, _ = chsend(c, json_profile(c, srv), [sms(i) for i in range(1, 7)])
    eq(outcomes(res), ['tempfail', 'tempfail', 'tempfail', 'permfail', 'tempfail', 'sent'], 'outcomes')
    eq(res['results'][1]['retry_after'], 7, 'Retry-After in seconds')
    check(110 <= res['results'][2]['retry_after'] <= 121, 'Retry-After as a date: %d'
          % res['results'][2]['retry_after'])
    eq(res['results'][0]['retry_after'], 0, 'no Retry-After on 500')
    stop(c, srv)


@test
def sms_credentials_refused_is_down(c):
    srv = start(c, SmsServer())
    srv.mode('status', code=401)
    res, _ = chsend(c, json_profile(c, srv, concurrency=1), [sms(1), sms(2), sms(3)])
    eq(outcomes(res), ['down', 'down', 'down'], 'outcomes')
    eq(len(srv.requests), 1, 'stopped after the first refusal')
    stop(c, srv)


@test
def sms_timeout_is_tempfail(c):
    srv = start(c, SmsServer())
    srv.mode('delay', ms=2500, to='+905320000001')
    t0 = time.monotonic()
    res, _ = chsend(c, json_profile(c, srv, timeout='1s'), [sms(1), sms(2)])
    eq(outcomes(res), ['tempfail', 'sent'], 'outcomes')
    check('may have gone out' in res['results'][0]['detail'], res['results'][0]['detail'])
    check(time.monotonic() - t0 < 2.4, 'gave up after [sms] timeout')
    stop(c, srv)


@test
def sms_malformed_reply_and_closed_connection(c):
    srv = start(c, SmsServer())
    srv.mode('malformed', to='+905320000001')
    srv.mode('close', to='+905320000002')
    res, _ = chsend(c, json_profile(c, srv), [sms(1), sms(2), sms(3)])
    eq(outcomes(res), ['permfail', 'tempfail', 'sent'], 'outcomes')
    check('not JSON' in res['results'][0]['detail'], res['results'][0]['detail'])
    stop(c, srv)


@test
def sms_connection_refused_is_down(c):
    url = 'http://127.0.0.1:%d/v1/sms' % free_port()
    conf = sms_conf(url, 'auth = bearer\nsecret_file = %s\n' % c.secret['sms'])
    res, _ = chsend(c, conf, [sms(1), sms(2), sms(3)])
    eq(outcomes(res), ['down', 'down', 'down'], 'outcomes')


@test
def sms_https_verified_by_libcurl(c):
    ctx = c.ca.server_context(*c.cert)
    srv = start(c, SmsServer(tls_context=ctx))
    conf = json_profile(c, srv, 'ca_file = %s\n' % c.ca.ca_file).replace(
        srv.url('/v1/sms'), srv.url('/v1/sms', host='localhost'))
    res, _ = chsend(c, conf, [sms(1)])
    eq(outcomes(res), ['sent'], 'trusted certificate')
    stop(c, srv)
    srv = start(c, SmsServer(tls_context=c.ca.server_context(*c.wrong)))
    conf = json_profile(c, srv, 'ca_file = %s\n' % c.ca.ca_file).replace(
        srv.url('/v1/sms'), srv.url('/v1/sms', host='localhost'))
    res, _ = chsend(c, conf, [sms(1), sms(2)])
    eq(outcomes(res), ['down', 'down'], 'certificate for another host')
    eq(srv.requests, [], 'no request reached the server')
    stop(c, srv)
    srv = start(c, SmsServer(tls_context=c.other_ca.server_context(*c.untrusted)))
    conf = json_profile(c, srv, 'ca_file = %s\n' % c.ca.ca_file).replace(
        srv.url('/v1/sms'), srv.url('/v1/sms', host='localhost'))
    res, _ = chsend(c, conf, [sms(1)])
    eq(outcomes(res), ['down'], 'certificate from an unknown CA')
    stop(c, srv)


@test
def sms_plain_http_refused_for_remote_host(c):
    # 127.evil.example is a name, not a loopback address
    for url in ('http://sms.example.com/api', 'http://127.evil.example/api'):
        conf = sms_conf(url, 'auth = bearer\nsecret_file = %s\n' % c.secret['sms'])
        res, text = chsend(c, conf, [sms(1)])
        check('loopback' in res.get('open_error', ''), '%s: %r' % (url, res))
        no_secrets(text)


@test
def sms_too_long_is_permfail_without_request(c):
    srv = start(c, SmsServer())
    long = 'Çok uzun bir ileti. ' * 40
    res, _ = chsend(c, json_profile(c, srv, 'max_segments = 2\ntruncate = no\n'), [sms(1, body=long), sms(2)])
    eq(outcomes(res), ['permfail', 'sent'], 'outcomes')
    check('max_segments = 2' in res['results'][0]['detail'], res['results'][0]['detail'])
    eq([q.to for q in srv.wait_for(1)], ['+905320000002'], 'only the short one was sent')
    srv.reset()
    res, _ = chsend(c, json_profile(c, srv, 'max_segments = 2\ntruncate = yes\n'), [sms(1, body=long)])
    eq(outcomes(res), ['sent'], 'truncated')
    text = srv.wait_for(1)[0].json['text']
    check(text.endswith('...') and len(text) < len(long), 'cut with an ellipsis: %r' % text[-20:])
    stop(c, srv)


@test
def sms_concurrency_and_keepalive(c):
    srv = start(c, SmsServer())
    srv.mode('delay', ms=300)
    t0 = time.monotonic()
    res, _ = chsend(c, json_profile(c, srv, concurrency=4), [sms(i) for i in range(8)], ['-b', '4'])
    elapsed = time.monotonic() - t0
    eq(outcomes(res), ['sent'] * 8, 'outcomes')
    eq(srv.max_in_flight, 4, 'four requests at once')
    check(elapsed < 1.5, 'two waves of 300 ms, not eight: %.2fs' % elapsed)
    conns = {q.client for q in srv.requests}
    check(len(conns) <= 4, 'connections kept alive across batches: %d' % len(conns))
    stop(c, srv)


@test
def sms_rate_limit(c):
    srv = start(c, SmsServer())
    rate, n = 40, 121
    res, _ = chsend(c, json_profile(c, srv, rate=rate, concurrency=8), [sms(i) for i in range(n)],
                    ['-q', '-b', '50'])
    eq(res['counts']['sent'], n, 'all sent')
    starts = sorted(q.start for q in srv.wait_for(n))
    achieved = (n - 1) / (starts[-1] - starts[0])
    check(abs(achieved - rate) / rate <= 0.05, 'achieved %.2f/s for %d/s' % (achieved, rate))
    # no burst: no one second holds more than rate + 1 starts
    worst = max(sum(1 for s in starts if t <= s < t + 1.0) for t in starts)
    check(worst <= rate + 1, 'at most %d starts in any second, saw %d' % (rate + 1, worst))
    print('# rate: configured %d/s, achieved %.2f/s over %.2fs' % (rate, achieved, starts[-1] - starts[0]))
    stop(c, srv)


# ---------------------------------------------------------------- file

@test
def file_channel_writes_eml_and_jsonl(c):
    out = os.path.join(c.dir, 'out')
    conf = ('[smtp]\nchannel = file\nfrom = "E-İmza Birimi <eimza@example.edu.tr>"\n'
            '[sms]\nchannel = file\nencoding = gsm7-turkish\n[outbox]\nfile_dir = %s\n' % out)
    res, _ = chsend(c, conf, [mail(1), mail(2, to='not an address')])
    eq(outcomes(res), ['sent', 'permfail'], 'mail outcomes')
    path = os.path.join(out, 'mail', 'n0001.eml')
    eq(stat.S_IMODE(os.stat(path).st_mode), 0o600, 'eml mode')
    eq(stat.S_IMODE(os.stat(os.path.join(out, 'mail')).st_mode), 0o700, 'mail folder mode')
    import email
    import email.policy
    with open(path, 'rb') as f:
        raw = f.read()
    m = email.message_from_bytes(raw, policy=email.policy.default)
    eq(str(m['Subject']), TR_SUBJECT, 'subject')
    eq(m.get_body(('plain',)).get_content().replace('\r\n', '\n'), TR_BODY, 'body')
    check(b'\r\n' in raw and b'\n' not in raw.replace(b'\r\n', b''), 'CRLF line ends')
    res, _ = chsend(c, conf, [sms(1, body='Sayın Ayşe, ş ğ ı'), sms(2, body='ASCII only'),
                              sms(3, body='emoji 😀')], ['-m', 'sms'])
    eq(outcomes(res), ['sent', 'sent', 'sent'], 'sms outcomes')
    jpath = os.path.join(out, 'sms.jsonl')
    eq(stat.S_IMODE(os.stat(jpath).st_mode), 0o600, 'jsonl mode')
    with open(jpath, encoding='utf-8') as f:
        lines = [json.loads(x) for x in f]
    eq([(x['to'], x['text'], x['segments'], x['encoding'], x['id']) for x in lines],
       [('+905320000001', 'Sayın Ayşe, ş ğ ı', 1, 'gsm7-turkish', 's0001'),
        ('+905320000002', 'ASCII only', 1, 'gsm7', 's0002'),
        ('+905320000003', 'emoji 😀', 1, 'ucs2', 's0003')], 'jsonl lines')
    check(all(x['time'].endswith('Z') for x in lines), 'times in UTC')


if __name__ == '__main__':
    if not os.access(CHSEND, os.X_OK):
        print('1..1\nnot ok 1 - %s missing: run make unit' % CHSEND)
        sys.exit(1)
    run(setup=setup, teardown=teardown)
