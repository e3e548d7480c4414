#!/usr/bin/python3
"""The peer of the latency figure: a plain Python IDLE script.

    peer_idle.py CONFIG.json

What someone would write in an afternoon, with the standard library only
and no durability at all: imaplib logs in (implicit TLS) and waits in
IDLE; when the server says something, it sends DONE, fetches what is new
by UID, parses each message with the email package, takes KAMUSM's mail
(sender, an https link on kamusm.gov.tr, a regular expression), looks the
recipient up in the applicants' CSV, POSTs an SMS to the provider's API
(http.client, one keep-alive connection, Bearer token) and sends an
e-mail with smtplib (a session per notice: STARTTLS, AUTH, one message,
QUIT). Nothing is written to disk.

Driven by bench/latency.py over stdin/stdout, one JSON object a line:
it prints {"idle": n} each time it is waiting in IDLE, and after handling
what a notification brought {"woke": t, "uid": u, "sent": k} with t the
time.monotonic() at which the IDLE socket became readable (the shared
CLOCK_MONOTONIC: the servers stamp arrivals on the same clock). It stops
after `count` notifications with messages, or at EOF on stdin.
The config names: imap_port, ca_file, user, password, smtp_port,
smtp_ca, smtp_user, smtp_password, sms_url, sms_token, applicants (CSV path),
count.
"""
import csv
import email
import email.policy
import email.utils
import http.client
import imaplib
import json
import re
import select
import smtplib
import ssl
import sys
import time
import urllib.parse
from email.message import EmailMessage

KAMUSM = re.compile(r'@kamusm\.gov\.tr>?$', re.I)
LINK = re.compile(r'https://[A-Za-z0-9.-]+\.kamusm\.gov\.tr(?:/\S*)?')


def load_applicants(path):
    """e-mail (lowercased) -> (name, mobile in E.164)."""
    out = {}
    with open(path, encoding='utf-8') as f:
        for row in csv.DictReader(f, delimiter=';'):
            mobile = '+9' + row['Cep Telefonu'].replace(' ', '')
            out[row['Kurumsal E-posta'].lower()] = (row['Ad Soyad'], mobile)
    return out


def notice_mail(to, name):
    """The peer's e-mail notice to an applicant whose KAMUSM link came."""
    m = EmailMessage()
    m['From'] = 'E-İmza Bildirim <eimza@example.edu.tr>'
    m['To'] = to
    m['Subject'] = 'E-imza başvurunuz: KAMUSM bağlantısı geldi'
    m.set_content('Sayın %s,\n\nKAMUSM başvuru bağlantınız e-posta kutunuza geldi. Formu '
                  'doldurun, yazdırıp imzalayın ve taahhütnameyi BİDB\'ye teslim edin.\n'
                  % name)
    return m


class Peer:
    def __init__(self, c):
        self.c = c
        self.people = load_applicants(c['applicants'])
        self.ctx = ssl.create_default_context(cafile=c['ca_file'])
        self.ctx.check_hostname = False       # the test certificate names localhost
        self.smtp_ctx = ssl.create_default_context(cafile=c['smtp_ca'])
        self.smtp_ctx.check_hostname = False
        self.imap = imaplib.IMAP4_SSL('127.0.0.1', c['imap_port'], ssl_context=self.ctx)
        self.imap.login(c['user'], c['password'])
        typ, data = self.imap.select('INBOX')
        typ, data = self.imap.response('UIDNEXT')
        self.next_uid = int(data[0]) if data and data[0] else 1
        url = urllib.parse.urlsplit(c['sms_url'])
        self.sms_path = url.path
        self.http = http.client.HTTPConnection(url.hostname, url.port, timeout=10)

    # -- waiting --

    def idle_wait(self, n):
        tag = self.imap._new_tag()
        self.imap.send(tag + b' IDLE\r\n')
        line = self.imap.readline()
        if not line.startswith(b'+'):
            raise RuntimeError('IDLE refused: %r' % line)
        print(json.dumps({'idle': n}), flush=True)
        r, _, _ = select.select([self.imap.sock, sys.stdin], [], [], 60)
        woke = time.monotonic()
        if sys.stdin in r and not sys.stdin.readline():
            return None, tag
        return woke, tag

    def idle_done(self, tag):
        self.imap.send(b'DONE\r\n')
        while True:
            line = self.imap.readline()
            if not line or line.startswith(tag):
                return

    # -- handling --

    def fetch_new(self):
        typ, data = self.imap.uid('FETCH', '%d:*' % self.next_uid, '(UID BODY.PEEK[])')
        out = []
        for item in data:
            if isinstance(item, tuple):
                uid = int(re.search(rb'UID (\d+)', item[0]).group(1))
                if uid >= self.next_uid:
                    out.append((uid, item[1]))
        for uid, _ in out:
            self.next_uid = max(self.next_uid, uid + 1)
        return out

    def handle(self, raw):
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        sender = email.utils.parseaddr(str(msg.get('From', '')))[1]
        if not KAMUSM.search(sender):
            return 0
        body = msg.get_body(preferencelist=('plain', 'html'))
        text = body.get_content() if body is not None else ''
        link = LINK.search(text)
        to = email.utils.parseaddr(str(msg.get('To', '')))[1].lower()
        if not link or to not in self.people:
            return 0
        name, mobile = self.people[to]
        self.send_sms(mobile, 'Sayın %s, KAMUSM başvuru bağlantınız geldi. Formu doldurup '
                              'imzalı taahhütnameyi BİDB\'ye teslim ediniz.' % name)
        self.send_mail(to, name)
        return 2

    def send_sms(self, to, text):
        body = json.dumps({'to': to, 'from': 'EIMZA', 'text': text}).encode()
        self.http.request('POST', self.sms_path, body,
                          {'Content-Type': 'application/json',
                           'Authorization': 'Bearer %s' % self.c['sms_token']})
        r = self.http.getresponse()
        r.read()
        if r.status // 100 != 2:
            raise RuntimeError('SMS: HTTP %d' % r.status)

    def send_mail(self, to, name):
        m = notice_mail(to, name)
        with smtplib.SMTP('127.0.0.1', self.c['smtp_port'], timeout=10) as s:
            s.starttls(context=self.smtp_ctx)
            s.login(self.c['smtp_user'], self.c['smtp_password'])
            s.send_message(m)

    def run(self):
        handled = 0
        n = 0
        while handled < self.c['count']:
            woke, tag = self.idle_wait(n)
            n += 1
            self.idle_done(tag)
            if woke is None:
                return
            sent = 0
            uid = None
            for uid, raw in self.fetch_new():
                sent += self.handle(raw)
            if uid is not None:
                handled += 1
                print(json.dumps({'woke': woke, 'uid': uid, 'sent': sent}), flush=True)
        self.imap.logout()


def main():
    with open(sys.argv[1]) as f:
        c = json.load(f)
    Peer(c).run()


if __name__ == '__main__':
    main()
