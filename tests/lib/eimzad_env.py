"""A whole eimzad installation for integration tests, on real servers.

    from eimzad_env import Env
    env = Env()                      # Dovecot, an SMTP sink with STARTTLS+AUTH,
                                     # an SMS HTTP server; a config and state dir
    env.import_csv(rows)             # eimzactl import (the daemon not running)
    env.start(now='2026-03-02 10:00')  # eimzad in the background, clock set
    env.append(kamusm_mail(...))     # APPEND to the watched mailbox
    env.sink.wait_for(1); env.sms.wait_for(1)
    env.ctl('show', 'EIMZA-2026-0001')   # eimzactl --json, parsed
    env.stop(); env.close()

Every server listens on 127.0.0.1 on a free port and is stopped by
close() (and at exit). The daemon's stderr goes to env.log_path;
env.log() reads it. Secrets are files of mode 0600. Mail made here is
synthetic (X-Synthetic: yes) and carries Authentication-Results from the
test's authserv-id unless told otherwise.
"""
import atexit
import calendar
import email.header
import email.utils
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

from dovecot import Dovecot
from smsserver import SmsServer
from smtpsink import SmtpSink
from tap import Failure, wait_for

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get('EIMZA_BUILD', os.path.join(ROOT, 'build'))
AUTHSERV = 'mx.example.edu.tr'
EBYS = 'ebys.officer@example.edu.tr'
ESIGN = 'esign.officer@example.edu.tr'
MAILBOX = 'eimza@example.edu.tr'

CONFIG = """\
[general]
state_dir = {dir}/state
templates_dir = {root}/templates
rules_file = {root}/conf/rules.conf
holidays_file = {root}/conf/holidays.conf
institution_name = Test Üniversitesi
institution_domains = example.edu.tr
helpdesk = BİDB oda 112
[officers]
ebys = {ebys}
esign = {esign}
escalate_to = bidb.head@example.edu.tr
[trust]
authserv_id = {authserv}
[source]
type = imap
host = 127.0.0.1
port = {imaps}
tls = tls
ca_file = {ca}
user = eimza
password_file = {dir}/imap.secret
folder = INBOX
backoff_max = 2s
poll_interval = 2s
fetch_batch = {fetch_batch}
[smtp]
channel = smtp
host = 127.0.0.1
port = {smtp}
tls = starttls
ca_file = {smtp_ca}
user = eimza
password_file = {dir}/smtp.secret
from = "E-İmza Bildirim <{mailbox}>"
reply_to = {mailbox}
timeout = 10s
[sms]
channel = sms
profile = json
url = {sms_url}
auth = bearer
secret_file = {dir}/sms.secret
sender = EIMZA
rate = 0
concurrency = 8
timeout = 5s
connect_timeout = 2s
[outbox]
retry_min = 1s
retry_max = 4s
{extra}
"""


def secret(path, value):
    """Write a secret file of mode 0600; returns its path."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, 'w') as f:
        f.write(value + '\n')
    return path


class Env:
    def __init__(self, extra='', fetch_batch=500, dovecot_kw=None):
        self.dir = tempfile.mkdtemp(prefix='eimza-it-')
        self.proc = None
        self.log_path = os.path.join(self.dir, 'eimzad.log')
        self.dv = Dovecot(users={'eimza': 'imap-pw'}, **(dovecot_kw or {}))
        from testca import TestCA
        self.ca = TestCA(os.path.join(self.dir, 'ca'))
        cert, key = self.ca.issue('smtp', ['127.0.0.1', 'localhost'])
        self.sink = SmtpSink(tls=(cert, key), auth=('eimza', 'smtp-pw'))
        self.sink.start()
        self.sms = SmsServer().start()
        secret(os.path.join(self.dir, 'imap.secret'), 'imap-pw')
        secret(os.path.join(self.dir, 'smtp.secret'), 'smtp-pw')
        secret(os.path.join(self.dir, 'sms.secret'), 'sms-token-secret')
        self.conf = os.path.join(self.dir, 'eimzad.conf')
        self.write_config(extra, fetch_batch)
        atexit.register(self.close)

    def write_config(self, extra='', fetch_batch=500):
        with open(self.conf, 'w') as f:
            f.write(CONFIG.format(dir=self.dir, root=ROOT, ebys=EBYS, esign=ESIGN,
                                  authserv=AUTHSERV, imaps=self.dv.imaps_port,
                                  ca=self.dv.ca_file, smtp=self.sink.port,
                                  smtp_ca=self.ca.cert, mailbox=MAILBOX,
                                  sms_url=self.sms.url('/v1/sms'), extra=extra,
                                  fetch_batch=fetch_batch))

    # ---- the daemon ----

    def start(self, now=None, args=()):
        argv = [os.path.join(BUILD, 'eimzad'), '-c', self.conf] + list(args)
        if now:
            argv += ['--now', now]
        if self.proc is not None and self.proc.poll() is None:
            raise Failure('eimzad is already running (pid %d)' % self.proc.pid)
        start = len(self.log())
        self.logf = open(self.log_path, 'a')
        self.proc = subprocess.Popen(argv, stdout=self.logf, stderr=subprocess.STDOUT)
        wait_for(lambda: 'source: connected' in self.log()[start:] or self.proc.poll() is not None,
                 timeout=20, what='eimzad to connect')
        if self.proc.poll() is not None:
            raise Failure('eimzad exited %d:\n%s' % (self.proc.returncode, self.log()[-3000:]))
        return self.proc

    def once(self, now, timeout=120):
        """eimzad --once --now NOW; returns (exit code, output)."""
        argv = [os.path.join(BUILD, 'eimzad'), '-c', self.conf, '--once', '--now', now]
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout)
        out = p.stdout.decode('utf-8', 'replace')
        with open(self.log_path, 'a') as f:
            f.write(out)
        return p.returncode, out

    def stop(self, sig=signal.SIGTERM, timeout=20):
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
                raise Failure('eimzad did not stop within %ds' % timeout)
        rc = self.proc.returncode
        self.proc = None
        self.logf.close()
        return rc

    def log(self):
        try:
            with open(self.log_path, encoding='utf-8', errors='replace') as f:
                return f.read()
        except FileNotFoundError:
            return ''

    def ctl(self, *args, now=None, check=True):
        """eimzactl --json ARGS; returns (exit code, parsed answer or text)."""
        argv = [os.path.join(BUILD, 'eimzactl'), '-c', self.conf, '--json']
        if now:
            argv += ['--now', now]
        p = subprocess.run(argv + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=60)
        out = p.stdout.decode('utf-8', 'replace')
        try:
            res = json.loads(out) if out.strip() else None
        except ValueError:
            res = out
        if check and p.returncode != 0:
            raise Failure('eimzactl %s: exit %d: %s %s' % (' '.join(args), p.returncode, out,
                                                           p.stderr.decode()))
        return p.returncode, res

    def import_csv(self, rows, now=None):
        path = os.path.join(self.dir, 'import-%d.csv' % time.monotonic_ns())
        with open(path, 'w', encoding='utf-8') as f:
            f.write('\n'.join(rows) + '\n')
        return self.ctl('import', path, now=now)

    def app(self, tag):
        """The application's document as on disk (what jq would read)."""
        with open(os.path.join(self.dir, 'state', 'apps', tag + '.json')) as f:
            return json.load(f)

    def append(self, raw):
        return self.dv.append('eimza', raw if isinstance(raw, bytes) else raw.encode())

    def close(self):
        try:
            if self.proc is not None:
                self.stop(signal.SIGKILL)
        except Exception:
            pass
        for s in (self.sink, self.sms, self.dv):
            try:
                s.stop()
            except Exception:
                pass
        if os.environ.get('EIMZA_KEEP_TMP') != '1':
            shutil.rmtree(self.dir, ignore_errors=True)


def istanbul(when):
    """'YYYY-MM-DD HH:MM' Istanbul local time (UTC+3 all year) as a Unix time."""
    return calendar.timegm(time.strptime(when, '%Y-%m-%d %H:%M')) - 3 * 3600


# ---- synthetic mail ----

_seq = [0]


def _msgid():
    _seq[0] += 1
    return '<synthetic.%d.%d@test.invalid>' % (os.getpid(), _seq[0])


def _ar(domain, sender):
    return ('Authentication-Results: %s;\r\n\tdkim=pass (synthetic) header.d=%s;\r\n'
            '\tspf=pass smtp.mailfrom=%s\r\n' % (AUTHSERV, domain, sender))


def mail(frm, to, subject, body, date=None, auth=True, headers='', msgid=None):
    """A synthetic text/plain UTF-8 message (bytes, CRLF)."""
    sender = frm.split('<')[-1].rstrip('>') if '<' in frm else frm
    domain = sender.split('@')[-1]
    date = date or email.utils.formatdate(localtime=True)
    head = (_ar(domain, sender) if auth else '') + (
        'From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: %s\r\n'
        'X-Synthetic: yes\r\nMIME-Version: 1.0\r\n'
        'Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n%s\r\n'
        % (frm, to, email.header.Header(subject, 'utf-8').encode(), date, msgid or _msgid(),
           headers))
    return (head + body.replace('\n', '\r\n')).encode('utf-8')


def kamusm_credentials(to, code='SYNTH-TEST-0001', host='basvuru.kamusm.gov.tr', **kw):
    return mail('KAMUSM (sentetik) <bilgi@kamusm.gov.tr>', '<%s>' % to,
                'KamuSM Başvuru Parolası (sentetik)',
                'Sayın başvuru sahibi,\n\n(Sentetik test iletisi.)\n\n'
                'Başvuru formu erişim linki: https://%s/synthetic/form?ref=1\n'
                'Başvuru Formu Erişim Parolası: %s\n' % (host, code), **kw)


def kamusm_info(to, **kw):
    return mail('Kamu SM Bilgilendirme (sentetik) <bilgilendirme@kamusm.gov.tr>', '<%s>' % to,
                'Nitelikli Elektronik Sertifika Başvurusu Bilgilendirme (sentetik)',
                'Sayın başvuru sahibi,\n\n(Sentetik test iletisi.)\n\nÖn başvurunuzu '
                'tamamlamak için e-Devlet ile Online İşlemler sayfasına giriş yapıp '
                'Başvurularım bölümünden formu doldurunuz: '
                'https://onlineislemler.kamusm.gov.tr/landing\n', **kw)


def kamusm_shipped(to, tracking='SYNTH123456', **kw):
    return mail('KAMUSM (sentetik) <bilgi@kamusm.gov.tr>', '<%s>' % to,
                'Sertifikanız kargoya verildi (sentetik)',
                '(Sentetik test iletisi.)\n\nE-imza kartınız kurye ile gönderilmiştir. '
                'Gönderi numarası: %s\n' % tracking, **kw)


def officer_reply(frm, subject, first_line, in_reply_to=None, **kw):
    headers = 'In-Reply-To: %s\r\nReferences: %s\r\n' % (in_reply_to, in_reply_to) \
        if in_reply_to else ''
    return mail(frm, MAILBOX, subject, first_line + '\n\n> (alıntı)\n', headers=headers, **kw)


def request_letter(frm, unit, rows, subject='E-imza talebi hk. (sentetik)', **kw):
    """A unit's letter with the applicants as a CSV attachment."""
    sender = frm.split('<')[-1].rstrip('>') if '<' in frm else frm
    domain = sender.split('@')[-1]
    csv = '\r\n'.join(['Ad Soyad;TC Kimlik No;Kurumsal E-posta;Cep Telefonu;Unvan'] + rows)
    date = email.utils.formatdate(localtime=True)
    raw = (_ar(domain, sender) +
           'From: %s\r\nTo: %s\r\nSubject: %s\r\nDate: %s\r\nMessage-ID: %s\r\n'
           'X-Synthetic: yes\r\nMIME-Version: 1.0\r\n'
           'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n'
           '--b1\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n'
           'Birim: %s\r\n\r\nPersonelimiz için elektronik imza talebimizi sunarız. (Sentetik.)\r\n'
           '--b1\r\nContent-Type: text/csv; charset=utf-8; name="liste.csv"\r\n'
           'Content-Disposition: attachment; filename="liste.csv"\r\n'
           'Content-Transfer-Encoding: 8bit\r\n\r\n%s\r\n--b1--\r\n'
           % (frm, MAILBOX, email.header.Header(subject, 'utf-8').encode(), date, _msgid(),
              unit, csv))
    return raw.encode('utf-8')

