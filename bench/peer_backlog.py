#!/usr/bin/python3
"""The peer of the backlog figure: a straightforward Python script.

    peer_backlog.py CONFIG.json

Sequential, standard library only, no durability: imaplib logs in
(implicit TLS), SELECTs INBOX and fetches every message with one
`UID FETCH 1:* BODY.PEEK[]`; the email package parses each one; KAMUSM's
link mail is recognised by its sender and a regular expression for the
https link; the recipient is looked up in the applicants' CSV; then, for
each such mail in turn, an SMS is POSTed to the provider's API
(http.client, one keep-alive connection) and an e-mail is sent with
smtplib (one SMTP session for all of them, as kind to the script as it
gets). Prints one JSON object: the seconds spent fetching, parsing and
sending, the total, and the counts.
Config: imap_port, ca_file, user, password, smtp_port, sms_url,
sms_token, applicants (CSV path).
"""
import email
import email.policy
import email.utils
import http.client
import imaplib
import json
import os
import smtplib
import ssl
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peer_idle import KAMUSM, LINK, load_applicants, notice_mail  # noqa: E402


def fetch_all(c):
    ctx = ssl.create_default_context(cafile=c['ca_file'])
    ctx.check_hostname = False
    m = imaplib.IMAP4_SSL('127.0.0.1', c['imap_port'], ssl_context=ctx, timeout=600)
    m.login(c['user'], c['password'])
    m.select('INBOX', readonly=True)
    typ, data = m.uid('FETCH', '1:*', '(BODY.PEEK[])')
    m.logout()
    return [item[1] for item in data if isinstance(item, tuple)]


def notices_of(raws, people):
    out = []
    for raw in raws:
        msg = email.message_from_bytes(raw, policy=email.policy.default)
        sender = email.utils.parseaddr(str(msg.get('From', '')))[1]
        if not KAMUSM.search(sender):
            continue
        body = msg.get_body(preferencelist=('plain', 'html'))
        text = body.get_content() if body is not None else ''
        to = email.utils.parseaddr(str(msg.get('To', '')))[1].lower()
        if LINK.search(text) and to in people:
            out.append((to,) + people[to])
    return out


def send_all(c, notices):
    url = urllib.parse.urlsplit(c['sms_url'])
    conn = http.client.HTTPConnection(url.hostname, url.port, timeout=30)
    smtp = smtplib.SMTP('127.0.0.1', c['smtp_port'], timeout=30)
    for to, name, mobile in notices:
        body = json.dumps({'to': mobile, 'from': 'EIMZA',
                           'text': 'Sayın %s, KAMUSM başvuru bağlantınız geldi. Formu doldurup '
                                   'imzalı taahhütnameyi BİDB\'ye teslim ediniz.' % name}).encode()
        conn.request('POST', url.path, body, {'Content-Type': 'application/json',
                                              'Authorization': 'Bearer %s' % c['sms_token']})
        r = conn.getresponse()
        r.read()
        smtp.send_message(notice_mail(to, name))
    smtp.quit()
    conn.close()


def main():
    with open(sys.argv[1]) as f:
        c = json.load(f)
    people = load_applicants(c['applicants'])
    t0 = time.monotonic()
    raws = fetch_all(c)
    t1 = time.monotonic()
    notices = notices_of(raws, people)
    t2 = time.monotonic()
    send_all(c, notices)
    t3 = time.monotonic()
    print(json.dumps({'start': t0, 'fetch': t1 - t0, 'parse': t2 - t1, 'send': t3 - t2,
                      'total': t3 - t0, 'messages': len(raws), 'bytes': sum(map(len, raws)),
                      'kamusm': len(notices)}))


if __name__ == '__main__':
    main()
