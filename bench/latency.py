"""Figure 1, latency: from the IMAP server's IDLE notification to the SMS
request and to the end of SMTP DATA, eimzad beside a plain Python IDLE
script (bench/peer_idle.py), on the same servers in the same run.

The installation: Dovecot (implicit TLS, tests/lib/dovecot.py), an SMTP
server with STARTTLS and AUTH (tests/lib/smtpsink.py, aiosmtpd; each
message stamped with the monotonic time its DATA ended), an SMS API
(tests/lib/smsserver.py; each request stamped when its headers were
read). eimzad runs with -v, so that lib/source_imap.c logs the monotonic
time at which an IDLE wait ended; the peer prints the time its IDLE
socket became readable. Each round APPENDs one KAMUSM link mail for a
new applicant while the client waits in IDLE; Dovecot announces it
~500 ms later (its own fixed delay, not ours: it is reported apart).

Measured per round: SMS request - notification, end of DATA -
notification. eimzad records the state change and both notices durably
(one commit with fsync) before sending; the peer records nothing.
"""
import json
import os
import subprocess
import sys
import time

import benchlib as B
from dovecot import Dovecot
from eimzad_env import kamusm_credentials
from testca import TestCA

SECTION = 'latency'
WAKE = r'imap: idle: wait ended at monotonic ([0-9.]+) ms'
# The workflow's log line for the transition, logged before the commit
# (stamped when the benchmark read it from eimzad's stderr pipe).
MOVED = r'workflow: EIMZA-\S+: \w+ -> credentials_issued'


class Servers:
    def __init__(self, d, users=('eimza',)):
        self.dv = Dovecot(users={u: 'imap-pw' for u in users})
        self.ca = TestCA(os.path.join(d, 'ca'))
        cert, key = self.ca.issue('smtp', ['127.0.0.1', 'localhost'])
        self.sink = B.ServerProc('smtp', cert, key, 'eimza', 'smtp-pw')
        self.sms = B.ServerProc('sms')
        self.sms_url = self.sms.info['url']

    def stop(self):
        for s in (self.sink, self.sms, self.dv):
            try:
                s.stop()
            except Exception:
                pass

    def arrivals(self, email, mobile, timeout=15):
        """(SMS request start, end of DATA) for this applicant's notices."""
        def look():
            sms, mail = self.sms.first(mobile), self.sink.first(email)
            return (sms, mail) if sms is not None and mail is not None else None
        return B.wait_until(look, timeout, 'notices for %s' % email)


def rounds_on(d, srv, first, rounds, user='eimza'):
    """Rounds on a running eimzad (-v) that watches `user`'s INBOX:
    [(append, wake, sms, data_end)]."""
    out = []
    for k in range(rounds):
        email, mobile = B.applicant(first + k)
        t_app = time.monotonic()
        srv.dv.append(user, kamusm_credentials(email, code='SYNTH-LAT-%04d' % k))
        t_sms, t_mail = srv.arrivals(email, mobile)
        woke = [float(m.group(1)) / 1000 for t, m in d.findall(WAKE) if t >= t_app]
        woke = [w for w in woke if t_app <= w <= t_sms]
        moved = [t for t, m in d.findall(MOVED)
                 if t >= t_app]
        out.append((t_app, woke[-1] if woke else None, t_sms, t_mail,
                    moved[0] if moved else None))
        time.sleep(0.3)                      # outcomes recorded, back in IDLE
    return out


def eimzad_rounds(srv, conf, first, rounds, args=('-v',)):
    """Rounds with eimzad; returns [(append, wake, sms, data_end)], the
    daemon's status when idle, and the daemon."""
    d = B.Daemon(conf, args=args)
    try:
        d.wait('source: connected', 30)
        time.sleep(0.5)                      # into IDLE
        out = rounds_on(d, srv, first, rounds)
        status = d.status()
    finally:
        d.stop()
    return out, status, d


def peer_rounds(srv, d, csv_path, first, rounds):
    """Rounds with the Python peer; returns [(append, wake, sms, data_end)]
    and the peer's memory while it waited in IDLE."""
    cfg = os.path.join(d, 'peer.json')
    with open(cfg, 'w') as f:
        json.dump({'imap_port': srv.dv.imaps_port, 'ca_file': srv.dv.ca_file,
                   'smtp_ca': srv.ca.cert, 'user': 'eimza', 'password': 'imap-pw',
                   'smtp_port': srv.sink.port, 'smtp_user': 'eimza', 'smtp_password': 'smtp-pw',
                   'sms_url': srv.sms_url, 'sms_token': 'sms-token-secret',
                   'applicants': csv_path, 'count': rounds}, f)
    p = subprocess.Popen([sys.executable, os.path.join(B.ROOT, 'bench', 'peer_idle.py'), cfg],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    out, status = [], None
    try:
        for k in range(rounds):
            line = json.loads(p.stdout.readline() or 'null')
            if not line or 'idle' not in line:
                raise RuntimeError('peer: %r' % line)
            if status is None:
                time.sleep(0.2)
                status = B.proc_status(p.pid)
            time.sleep(0.05)
            email, mobile = B.applicant(first + k)
            t_app = time.monotonic()
            srv.dv.append('eimza', kamusm_credentials(email, code='SYNTH-LAT-P%04d' % k))
            line = json.loads(p.stdout.readline() or 'null')
            if not line or 'woke' not in line:
                raise RuntimeError('peer: %r' % line)
            t_sms, t_mail = srv.arrivals(email, mobile)
            out.append((t_app, line['woke'], t_sms, t_mail))
        p.wait(30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return out, status


def summarise(rounds):
    sms = [(r[2] - r[1]) * 1000 for r in rounds if r[1] is not None]
    mail = [(r[3] - r[1]) * 1000 for r in rounds if r[1] is not None]
    delay = [(r[1] - r[0]) * 1000 for r in rounds if r[1] is not None]
    return B.dist(sms), B.dist(mail), B.dist(delay)


def run(report, rounds=20):
    d = B.workdir('latency')
    srv = Servers(d)
    try:
        first_ez, first_peer = 1, 1001
        conf = B.write_config(os.path.join(d, 'eimzad.conf'), d, imap_port=srv.dv.imaps_port,
                              imap_tls='tls', imap_ca=srv.dv.ca_file, imap_password='imap-pw',
                              smtp_port=srv.sink.port, smtp_tls='starttls', smtp_ca=srv.ca.cert,
                              smtp_user='eimza', smtp_password='smtp-pw',
                              sms_url=srv.sms_url)
        csv_ez = B.applicants_csv(os.path.join(d, 'eimzad.csv'), first_ez, rounds, 'submitted')
        csv_peer = B.applicants_csv(os.path.join(d, 'peer.csv'), first_peer, rounds, 'submitted')
        rc, res, _ = B.ctl(conf, 'import', csv_ez)
        if rc != 0:
            raise RuntimeError('import: %s' % res)
        ez, ez_status, daemon = eimzad_rounds(srv, conf, first_ez, rounds)
        peer, peer_status = peer_rounds(srv, d, csv_peer, first_peer, rounds)
        report_figures(report, ez, peer, ez_status, peer_status, srv)
    finally:
        srv.stop()
        if not os.environ.get('EIMZA_KEEP_TMP'):
            subprocess.run(['rm', '-rf', d])


def report_figures(report, ez, peer, ez_status, peer_status, srv):
    e_sms, e_mail, e_delay = summarise(ez)
    p_sms, p_mail, p_delay = summarise(peer)
    report.keep('latency.eimzad_rounds', ez)
    report.keep('latency.peer_rounds', peer)
    if not (e_sms and p_sms):
        report.note(SECTION, 'no complete rounds: eimzad %s, peer %s' % (e_sms, p_sms))
        return
    report.add(SECTION, 'notification -> SMS request, eimzad', B.fmt_dist_ms(e_sms),
               target='< peer (DESIGN quotes ~3 ms)', peer=B.fmt_dist_ms(p_sms),
               ratio='%.2f (medians, eimzad/peer)' % (e_sms['median'] / p_sms['median']))
    report.add(SECTION, 'notification -> end of DATA, eimzad', B.fmt_dist_ms(e_mail),
               target='< peer (DESIGN quotes ~6 ms)', peer=B.fmt_dist_ms(p_mail),
               ratio='%.2f (medians, eimzad/peer)' % (e_mail['median'] / p_mail['median']))
    moved = B.dist([(r[4] - r[1]) * 1000 for r in ez if r[1] is not None and len(r) > 4
                    and r[4] is not None])
    if moved:
        report.add(SECTION, 'eimzad: notification -> transition logged',
                   B.fmt_dist_ms(moved), note='IDLE DONE, FETCH, parse, classify, workflow; '
                   'the rest up to the SMS request is the commit (a journal append and its '
                   'fdatasync), the hand-off to the worker and the HTTP request')
    report.add(SECTION, 'APPEND -> IDLE notification (Dovecot, not ours)',
               'eimzad %s; peer %s' % (B.fmt_ms(e_delay['median']), B.fmt_ms(p_delay['median'])))
    report.add(SECTION, 'idle RSS of the two clients',
               'eimzad %.1f MiB (Pss %.1f MiB)' % (ez_status['VmRSS'] / 1024,
                                                   ez_status.get('Pss', 0) / 1024),
               peer='%.1f MiB (Pss %.1f MiB)' % (peer_status['VmRSS'] / 1024,
                                                 peer_status.get('Pss', 0) / 1024))
    report.note(SECTION, 'eimzad ran with -v (debug log: the wake-up stamp, and libcurl\'s '
                'redacted trace); each server in a process of its own (bench/servers.py)')
