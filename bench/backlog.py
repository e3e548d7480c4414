"""Figure 2, backlog: a first start on a full mailbox.

The mailbox (bench/mailgen.py): 10,000 messages, 185 MB, of which 1,500
are KAMUSM link mails for 1,500 applicants imported beforehand (state
submitted), dated in the days before --now so that the catch-up cut-off
does not hold their notices back: 1,500 e-mails and 1,500 SMS result.
It is written straight into Dovecot's Maildir (dovecot.py populate()),
with each file's mtime (Dovecot's INTERNALDATE) set to its Date.

Servers: Dovecot over implicit TLS; Postfix's smtp-sink (tls = none on
loopback: it has no STARTTLS), because aiosmtpd takes only 300-500
messages/s a session; the SMS API of tests/lib/smsserver.py in a process
of its own. Each server's ceiling is measured first with tests/tools/chsend
(the channels eimzad uses, without the daemon around them).

Measured, in order, on the same mailbox:
  fetch     a bare `UID FETCH 1:* BODY.PEEK[]` with imaplib, beside
            bench/srcbench (lib/source_imap.c alone), alternating
            (after one untimed fetch that builds Dovecot's index and
            fills the page cache);
  first     eimzad's first start with everything live: classification
            (connected -> the batch holding the last UID recorded) and
            end to end (start -> the last notice at its server);
  delivery  the 3,000 notices alone: eimzad ingests the mailbox with both
            servers unreachable (the channels are DOWN, the notices stay
            queued), stops, and starts again with the servers up; timed
            from that start to the last notice at its server;
  peer      bench/peer_backlog.py: fetch, parse and send sequentially.
"""
import json
import os
import re
import subprocess
import sys
import time

import benchlib as B
import mailgen
from dovecot import Dovecot
import imap_fetch

SECTION = 'backlog'
USER, PASSWORD = 'bench', imap_fetch.PASSWORD


def populate(dv, mb):
    """Messages straight into new/, each file dated as its Date."""
    dv.populate(USER, (raw for raw, _ in mb))
    new = os.path.join(dv.maildir(USER), 'new')
    for name in os.listdir(new):
        m = re.search(r'\.M(\d+)P', name)
        if m:
            t = mb[int(m.group(1))][1]
            os.utime(os.path.join(new, name), (t, t))


def chsend(conf_text, notices, args, d):
    cpath, npath = os.path.join(d, 'chsend.conf'), os.path.join(d, 'notices.json')
    with open(cpath, 'w') as f:
        f.write(conf_text)
    with open(npath, 'w') as f:
        json.dump(notices, f, ensure_ascii=False)
    p = subprocess.run([os.path.join(B.BUILD, 'tests', 'tools', 'chsend'), '-q'] + args
                       + [cpath, npath], capture_output=True, text=True, timeout=300)
    if p.returncode != 0:
        raise RuntimeError('chsend: %s %s' % (p.stdout[-300:], p.stderr[-300:]))
    return json.loads(p.stdout)


def ceilings(report, sink, sms, d, n=3000):
    """What each server takes from the C channels at full speed."""
    body = ('Sayın Sentetik Kişi,\n\nKAMUSM başvuru bağlantınız geldi. Formu doldurun, yazdırıp '
            'imzalayın ve taahhütnameyi BİDB\'ye teslim edin.\n\n' * 12)
    mails = [{'id': 'c%06d' % i, 'medium': 'mail', 'to': 'kisi%d@example.edu.tr' % i,
              'subject': 'E-imza başvurunuz [EIMZA-2026-%04d]' % i, 'body': body,
              'created': 1772434800} for i in range(n)]
    conf = ('[smtp]\nhost = 127.0.0.1\nport = %d\ntls = none\nfrom = "E-İmza Bildirim '
            '<eimza@example.edu.tr>"\ntimeout = 30s\n' % sink.port)
    r = chsend(conf, mails, ['-t', '4'], d)
    mrate = r['counts']['sent'] / (r['elapsed_ms'] / 1000.0)
    smss = [{'id': 's%06d' % i, 'medium': 'sms', 'to': '+90532%07d' % i,
             'body': 'Sayın Sentetik Kişi, KAMUSM başvuru bağlantınız geldi. [EIMZA-2026-%04d]' % i}
            for i in range(n)]
    conf = ('[sms]\nurl = %s\nsender = EIMZA\nrate = 0\nconcurrency = 8\nid_field = id\n'
            'timeout = 10s\n' % sms.info['url'])
    r2 = chsend(conf, smss, ['-b', '500'], d)
    srate = r2['counts']['sent'] / (r2['elapsed_ms'] / 1000.0)
    report.add(SECTION, 'ceiling: smtp-sink, chsend, 4 sessions',
               '%.0f mails/s (%d of %d sent, %d-byte bodies)' % (mrate, r['counts']['sent'], n,
                                                                 len(body.encode())))
    report.add(SECTION, 'ceiling: SMS API (Python), chsend, concurrency 8',
               '%.0f requests/s (%d of %d sent)' % (srate, r2['counts']['sent'], n))
    return mrate, srate


def fetch_figures(report, dv, d, runs):
    imap_fetch.python_fetch(dv, 'none')                  # index + page cache, untimed
    pwfile = B.secret(os.path.join(d, 'bench.pw'), PASSWORD)
    conf = imap_fetch.write_conf(dv, 'tls', os.path.join(d, 'src.conf'), pwfile, 500)
    py, ez, last = [], [], None
    for _ in range(runs):
        secs, nbytes = imap_fetch.python_fetch(dv, 'tls')
        py.append(secs)
        last = imap_fetch.eimzad_fetch(conf, 500)
        ez.append(last['secs'])
    mp, me = B.dist(py)['median'], B.dist(ez)['median']
    report.add(SECTION, 'bare UID FETCH 1:* BODY.PEEK[] (imaplib, TLS)',
               '%.2f s median of %d (%s); %.0f MB, %.0f MB/s'
               % (mp, runs, ', '.join('%.2f' % x for x in py), nbytes / 1e6, nbytes / 1e6 / mp))
    report.add(SECTION, 'source_imap fetch alone (srcbench, batches of 500)',
               '%.2f s median of %d (%s); peak RSS %.1f MiB'
               % (me, runs, ', '.join('%.2f' % x for x in ez), last['peak_rss_kib'] / 1024),
               target='1.0-1.2x bare fetch (module author)', peer='%.2f s' % mp,
               ratio='%.2f' % (me / mp))
    return mp, nbytes


def installation(d, name, dv, smtp_port, sms_url, kamusm):
    """A config and a state with the applicants imported."""
    sub = os.path.join(d, name)
    os.makedirs(sub)
    conf = B.write_config(os.path.join(sub, 'eimzad.conf'), sub, imap_port=dv.imaps_port,
                          imap_tls='tls', imap_ca=dv.ca_file, imap_user=USER,
                          imap_password=PASSWORD, smtp_port=smtp_port, smtp_tls='none',
                          sms_url=sms_url, smtp_sessions=4, smtp_batch=100, sms_concurrency=8,
                          fetch_batch=500)
    csv = B.applicants_csv(os.path.join(sub, 'applicants.csv'), 1, kamusm, 'submitted')
    rc, res, secs = B.ctl(conf, 'import', csv)
    if rc != 0:
        raise RuntimeError('import: %s' % str(res)[:300])
    return sub, conf


def rewrite_ports(conf, smtp_port, sms_url):
    with open(conf) as f:
        text = f.read()
    text = re.sub(r'(\[smtp\][^\[]*?\nport = )\d+', r'\g<1>%d' % smtp_port, text)
    text = re.sub(r'\nurl = \S+', '\nurl = %s' % sms_url, text)
    with open(conf, 'w') as f:
        f.write(text)


def wait_delivered(sink, sms, base_m, base_s, n, timeout):
    sink.wait_for(base_m + n, timeout)
    sms.wait_for(base_s + n, timeout)
    return max(sink.arrivals()[base_m + n - 1], sorted(sms.times())[base_s + n - 1])


def first_start(report, dv, sink, sms, d, kamusm, maxuid, t_fetch):
    sub, conf = installation(d, 'first', dv, sink.port, sms.info['url'], kamusm)
    base_m, base_s = sink.count(), sms.count()
    dmn = B.Daemon(conf)
    try:
        t_conn = dmn.wait('source: connected', 60)[0]
        t_done = dmn.wait(r'up to uid %d$' % maxuid, 600)[0]
        cpu_class = dmn.cpu()
        t_last = wait_delivered(sink, sms, base_m, base_s, kamusm, 300)
        first = min(sink.arrivals()[base_m], sorted(sms.times())[base_s])
        time.sleep(1.0)
        extra = (sink.count() - base_m - kamusm, sms.count() - base_s - kamusm)
        st, cpu = dmn.status(), dmn.cpu()
    finally:
        dmn.stop()
    batches = len(dmn.findall(r'message\(s\) handled'))
    t_class = t_done - t_conn
    report.add(SECTION, 'first start: classification (fetch + handle all)',
               '%.2f s for %d messages in %d batches (connected -> last batch recorded); '
               'eimzad CPU %.1f s by then' % (t_class, maxuid, batches, cpu_class),
               target='<= 1.5x bare fetch', peer='bare fetch %.2f s' % t_fetch,
               ratio='%.2f' % (t_class / t_fetch))
    report.add(SECTION, 'first start: end to end',
               '%.2f s from start to the last of %d notices (first at %.2f s); CPU %.1f s, '
               'peak RSS %.1f MiB' % (t_last - dmn.t_spawn, 2 * kamusm, first - dmn.t_spawn, cpu,
                                      st['VmHWM'] / 1024))
    if extra != (0, 0):
        report.note(SECTION, 'first start: unexpected extra notices (mail, sms): %s' % (extra,))
    return t_last - dmn.t_spawn


def delivery_only(report, dv, sink, sms, d, kamusm, maxuid, t_fetch):
    dead_smtp, dead_sms = B.free_port(), 'http://127.0.0.1:%d/v1/sms' % B.free_port()
    sub, conf = installation(d, 'drain', dv, dead_smtp, dead_sms, kamusm)
    dmn = B.Daemon(conf)
    try:
        t_conn = dmn.wait('source: connected', 60)[0]
        t_done = dmn.wait(r'up to uid %d$' % maxuid, 600)[0]
        cpu = dmn.cpu()
        time.sleep(0.5)
    finally:
        dmn.stop()
    report.add(SECTION, 'classification alone (both channels down)',
               '%.2f s for %d messages; eimzad CPU %.1f s' % (t_done - t_conn, maxuid, cpu),
               target='<= 1.5x bare fetch', peer='bare fetch %.2f s' % t_fetch,
               ratio='%.2f' % ((t_done - t_conn) / t_fetch),
               note='no delivery outcomes to record meanwhile')
    rc, res, _ = B.ctl(conf, 'status')
    rewrite_ports(conf, sink.port, sms.info['url'])
    base_m, base_s = sink.count(), sms.count()
    # --now sets the clock at each start: start later than the notices
    # were made (10:00 and a few seconds), or they are not yet due.
    dmn = B.Daemon(conf, args=os.environ.get('BENCH_DRAIN_ARGS', '').split(),
                   now='2026-03-02 10:05')
    try:
        t_last = wait_delivered(sink, sms, base_m, base_s, kamusm, 300)
        first = min(sink.arrivals()[base_m], sorted(sms.times())[base_s])
        mail_last = sink.arrivals()[base_m + kamusm - 1]
        sms_last = sorted(sms.times())[base_s + kamusm - 1]
        st = dmn.status()
        cpu = dmn.cpu()
    finally:
        dmn.stop()
    total = t_last - dmn.t_spawn
    report.add(SECTION, 'delivery: %d queued notices after a restart' % (2 * kamusm),
               '%.2f s from start to the last (%.0f notices/s); first at %.2f s; mail done at '
               '%.2f s, SMS at %.2f s; CPU %.2f s, RSS %.1f MiB'
               % (total, 2 * kamusm / total, first - dmn.t_spawn, mail_last - dmn.t_spawn,
                  sms_last - dmn.t_spawn, cpu, st['VmRSS'] / 1024))
    report.keep('backlog.drain_status', res)
    return total


def peer(report, dv, sink, sms, d, kamusm):
    csv = B.applicants_csv(os.path.join(d, 'peer.csv'), 1, kamusm, 'submitted')
    cfg = os.path.join(d, 'peer_backlog.json')
    with open(cfg, 'w') as f:
        json.dump({'imap_port': dv.imaps_port, 'ca_file': dv.ca_file, 'user': USER,
                   'password': PASSWORD, 'smtp_port': sink.port, 'sms_url': sms.info['url'],
                   'sms_token': 'sms-token-secret', 'applicants': csv}, f)
    base_m, base_s = sink.count(), sms.count()
    p = subprocess.run([sys.executable, os.path.join(B.ROOT, 'bench', 'peer_backlog.py'), cfg],
                       capture_output=True, text=True, timeout=900)
    if p.returncode != 0:
        raise RuntimeError('peer: %s' % p.stderr[-1000:])
    r = json.loads(p.stdout)
    got = (sink.count() - base_m, sms.count() - base_s)
    report.add(SECTION, 'peer: straightforward Python script',
               '%.1f s in all: fetch %.1f s, parse %.1f s, send %.1f s (%d mails, %d SMS '
               'arrived)' % (r['total'], r['fetch'], r['parse'], r['send'], got[0], got[1]),
               target='DESIGN quotes ~25 s')
    return r


def run(report, messages=10000, kamusm=1500, total_bytes=185_000_000, runs=2):
    d = B.workdir('backlog')
    dv = Dovecot(users={USER: PASSWORD})
    sink = B.PostfixSink() if B.have_smtp_sink() else None
    sms = B.ServerProc('sms')
    try:
        if sink is None:
            report.note(SECTION, 'Postfix smtp-sink is missing (Debian package postfix): '
                        'skipped; `make bench` installs it')
            return
        # Dated from Friday 10:00 to Monday 09:50 before NOW (2026-03-02
        # 10:00 +03): recent for the catch-up cut-off, and too recent for
        # any reminder to be due (credentials_issued: 2 working days).
        start, end = 1772175600, 1772434800 - 600
        t0 = time.monotonic()
        mb = mailgen.mailbox(messages, kamusm, total_bytes, start, end)
        size = sum(len(r) for r, _ in mb)
        populate(dv, mb)
        del mb
        report.add(SECTION, 'mailbox', '%d messages, %.1f MB (%d KAMUSM link mails), made in '
                   '%.1f s' % (messages, size / 1e6, kamusm, time.monotonic() - t0))
        ceilings(report, sink, sms, d)
        t_fetch, nbytes = fetch_figures(report, dv, d, runs)
        maxuid = max(dv.uids(USER))
        e2e = first_start(report, dv, sink, sms, d, kamusm, maxuid, t_fetch)
        drain = delivery_only(report, dv, sink, sms, d, kamusm, maxuid, t_fetch)
        r = peer(report, dv, sink, sms, d, kamusm)
        report.add(SECTION, 'delivery: eimzad vs the peer\'s sending',
                   'eimzad %.2f s, peer %.1f s' % (drain, r['send']),
                   target='>= 10x faster', ratio='%.1fx faster' % (r['send'] / drain))
        report.add(SECTION, 'first start end to end: eimzad vs the peer',
                   'eimzad %.2f s, peer %.1f s' % (e2e, r['total']),
                   target='>= 10x faster than ~25 s', ratio='%.1fx faster' % (r['total'] / e2e))
    finally:
        for s in (sms, sink, dv):
            if s is not None:
                try:
                    s.stop()
                except Exception:
                    pass
        if not os.environ.get('EIMZA_KEEP_TMP'):
            subprocess.run(['rm', '-rf', d])
