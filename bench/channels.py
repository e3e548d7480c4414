#!/usr/bin/python3
"""Throughput of the delivery channels against the local test servers.

    /usr/bin/python3 bench/channels.py [--build build] [--sms N] [--mail N]

Prints, for each figure, the peer it should be read beside:
  sms server ceiling   requests/s the test server (tests/lib/smsserver.py)
                       answers to keep-alive Python clients (1 and 8
                       connections), so that no figure below is read as
                       the client's when it is the server's;
  sms unthrottled      chsend (channel_sms.c, concurrency 8, rate 0) sending
                       N notices in batches of 500, and a straightforward
                       Python peer (http.client, 8 threads, keep-alive);
  sms rate-limited     achieved rate at the server for a configured rate;
  smtp one session     chsend (channel_smtp.c, libesmtp) sending N mails in
                       one session to tests/lib/smtpsink.py, plain and with
                       STARTTLS + AUTH, and Python's smtplib in one session
                       as the peer.
Numbers vary with what else the machine runs; run it more than once.
"""
import argparse
import http.client
import json
import os
import resource
import smtplib
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'lib'))

from smsserver import SmsServer  # noqa: E402
from smtpsink import SmtpSink  # noqa: E402
from testca import TestCA  # noqa: E402


def chsend(build, workdir, conf, notices, args):
    cpath = os.path.join(workdir, 'c.conf')
    npath = os.path.join(workdir, 'n.json')
    with open(cpath, 'w') as f:
        f.write(conf)
    with open(npath, 'w') as f:
        json.dump(notices, f, ensure_ascii=False)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    p = subprocess.run([os.path.join(build, 'tests', 'tools', 'chsend'), '-q'] + args + [cpath, npath],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode != 0:
        raise RuntimeError(p.stderr.decode())
    res = json.loads(p.stdout)
    # CPU the client itself used: what the server's speed cannot hide
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    res['cpu_us_per_notice'] = cpu * 1e6 / max(1, res['notices'])
    return res


def sms_notices(n):
    return [{'id': 's%06d' % i, 'medium': 'sms', 'to': '+90532%07d' % i,
             'body': 'Sayın Ayşe Yılmaz, KAMUSM başvuru bağlantınız geldi. [EIMZA-2026-%04d]' % i}
            for i in range(n)]


def mail_notices(n):
    body = ('Sayın Ayşe Yılmaz,\n\nKAMUSM başvuru bağlantınız geldi. Formu doldurup imzalayın ve '
            'taahhütnameyi Bilgi İşlem Daire Başkanlığına teslim edin.\n\nE-İmza Birimi\n')
    return [{'id': 'n%06d' % i, 'medium': 'mail', 'to': 'kisi%d@example.edu.tr' % i,
             'subject': 'E-imza başvurunuz: bağlantı geldi [EIMZA-2026-%04d]' % i, 'body': body,
             'created': 1795000000} for i in range(n)]


def py_http_clients(port, conns, seconds):
    """Requests/s from `conns` keep-alive http.client threads (peer/ceiling)."""
    body = json.dumps({'to': '+905320000000', 'text': 'x'}).encode()
    stop = time.monotonic() + seconds
    counts = [0] * conns

    def worker(k):
        c = http.client.HTTPConnection('127.0.0.1', port)
        while time.monotonic() < stop:
            c.request('POST', '/sms', body, {'Content-Type': 'application/json'})
            c.getresponse().read()
            counts[k] += 1
        c.close()
    t0 = time.monotonic()
    ts = [threading.Thread(target=worker, args=(k,)) for k in range(conns)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return sum(counts) / (time.monotonic() - t0)


def in_subprocess(fn_name, *args):
    """Run a client in its own process, so it does not share the server's GIL."""
    code = ('import sys; sys.path.insert(0, %r); import channels as b; print(b.%s(*%r))'
            % (os.path.dirname(os.path.abspath(__file__)), fn_name, args))
    p = subprocess.run([sys.executable, '-c', code], stdout=subprocess.PIPE, timeout=600, check=True)
    return float(p.stdout)


def py_smtp_session(port, n):
    """Seconds for smtplib to send n messages in one session (the peer)."""
    from email.message import EmailMessage
    t0 = time.monotonic()
    with smtplib.SMTP('127.0.0.1', port) as s:
        for i in range(n):
            m = EmailMessage()
            m['From'] = 'E-İmza Birimi <eimza@example.edu.tr>'
            m['To'] = 'kisi%d@example.edu.tr' % i
            m['Subject'] = 'E-imza başvurunuz: bağlantı geldi [EIMZA-2026-%04d]' % i
            m.set_content('Sayın Ayşe Yılmaz,\n\nKAMUSM başvuru bağlantınız geldi.\n', cte='quoted-printable')
            s.send_message(m)
    return time.monotonic() - t0


def bench_sms(build, work, n):
    out = []
    with SmsServer() as srv:
        out.append(('sms server ceiling, 1 Python keep-alive connection', '%.0f req/s'
                    % in_subprocess('py_http_clients', srv.port, 1, 2.0)))
        out.append(('sms server ceiling, 8 Python keep-alive connections', '%.0f req/s'
                    % in_subprocess('py_http_clients', srv.port, 8, 2.0)))
        srv.reset()
        conf = ('[sms]\nurl = %s\nsender = EIMZA\nrate = 0\nconcurrency = 8\nid_field = id\n'
                'timeout = 10s\n' % srv.url('/sms'))
        res = chsend(build, work, conf, sms_notices(n), ['-b', '500'])
        rate = res['counts']['sent'] / (res['elapsed_ms'] / 1000.0)
        out.append(('sms chsend unthrottled, concurrency 8, %d notices' % n,
                    '%.0f notices/s (%d sent, %d ms; client CPU %.0f us/notice)'
                    % (rate, res['counts']['sent'], res['elapsed_ms'], res['cpu_us_per_notice'])))
        conns = len({q.client for q in srv.requests})
        out.append(('  connections used for %d requests' % len(srv.requests), str(conns)))
        srv.reset()
        for want, m in ((50, 200), (200, 800)):
            conf2 = conf.replace('rate = 0', 'rate = %d' % want)
            res = chsend(build, work, conf2, sms_notices(m), ['-b', '100'])
            starts = sorted(q.start for q in srv.requests)
            got = (len(starts) - 1) / (starts[-1] - starts[0])
            out.append(('sms rate-limited, %d notices at %d/s' % (m, want),
                        'achieved %.1f/s (%+.1f%%)' % (got, (got - want) * 100.0 / want)))
            srv.reset()
    return out


def bench_smtp(build, work, n):
    out = []
    with SmtpSink() as sink:
        conf = ('[smtp]\nhost = 127.0.0.1\nport = %d\ntls = none\nfrom = "E-İmza Birimi '
                '<eimza@example.edu.tr>"\ntimeout = 30s\n' % sink.port)
        res = chsend(build, work, conf, mail_notices(n), [])
        out.append(('smtp chsend, one session, plain, %d mails' % n,
                    '%.0f mails/s (%d sent; client CPU %.0f us/mail)'
                    % (res['counts']['sent'] / (res['elapsed_ms'] / 1000.0), res['counts']['sent'],
                       res['cpu_us_per_notice'])))
        secs = in_subprocess('py_smtp_session', sink.port, n)
        out.append(('smtp peer: smtplib, one session, plain, %d mails' % n, '%.0f mails/s' % (n / secs)))
    ca = TestCA()
    try:
        cert = ca.server_cert(['localhost'])
        pw = os.path.join(work, 'pw')
        with open(pw, 'w') as f:
            f.write('bench-pass\n')
        os.chmod(pw, 0o600)
        with SmtpSink(tls=cert, require_tls=True, auth=('eimza', 'bench-pass')) as sink:
            conf = ('[smtp]\nhost = localhost\nport = %d\ntls = starttls\nca_file = %s\nuser = eimza\n'
                    'password_file = %s\nfrom = "E-İmza Birimi <eimza@example.edu.tr>"\ntimeout = 30s\n'
                    % (sink.port, ca.ca_file, pw))
            res = chsend(build, work, conf, mail_notices(n), [])
            out.append(('smtp chsend, one session, STARTTLS + AUTH, %d mails' % n,
                        '%.0f mails/s (%d sent; client CPU %.0f us/mail)'
                        % (res['counts']['sent'] / (res['elapsed_ms'] / 1000.0), res['counts']['sent'],
                           res['cpu_us_per_notice'])))
    finally:
        ca.cleanup()
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--build', default=os.path.join(ROOT, 'build'))
    ap.add_argument('--sms', type=int, default=10000)
    ap.add_argument('--mail', type=int, default=1000)
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix='eimza-bench-')
    rows = bench_sms(a.build, work, a.sms) + bench_smtp(a.build, work, a.mail)
    w = max(len(r[0]) for r in rows)
    for name, value in rows:
        print('%-*s  %s' % (w, name, value))


if __name__ == '__main__':
    main()
