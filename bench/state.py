"""Figure 3, state: a transition costs the same with 100 or 100,000
applications, and an idle daemon stays small.

Three installations side by side on one Dovecot (a user each), the
latency figure's SMTP and SMS servers, with 100, 1,000 and 100,000
applications imported (`eimzactl import` of a CSV, state approved, dated
today so that no reminder is due). The three daemons run at once:
  - idle RSS: VmRSS (and its shared-library part, RssFile, and Pss) of
    each daemon 2 s after it connected, with nothing to do;
  - a transition through the workflow, by command: `eimzactl mark ID
    submitted` through the control socket of the running daemon (the
    transition, its history and one commit), beside `eimzactl show ID`
    (the same round trip without a change), alternating between the
    100 and the 100,000 installation so that the machine's noise falls
    on both alike;
  - a transition by mail: a KAMUSM link mail ingested in IDLE, from the
    notification to the SMS request and the end of DATA (as in the
    latency figure), alternating likewise.
bench/store_bench.c measures the store alone (see bench/run).
"""
import os
import subprocess
import time

import benchlib as B
import latency

SECTION = 'state'
SIZES = (('small', 100, 200001), ('mid', 1000, 300001), ('big', 100000, 1))


def installation(d, srv, name, count, first):
    sub = os.path.join(d, name)
    os.makedirs(sub)
    conf = B.write_config(os.path.join(sub, 'eimzad.conf'), sub, imap_port=srv.dv.imaps_port,
                          imap_tls='tls', imap_ca=srv.dv.ca_file, imap_user=name,
                          imap_password='imap-pw', smtp_port=srv.sink.port, smtp_tls='starttls',
                          smtp_ca=srv.ca.cert, smtp_user='eimza', smtp_password='smtp-pw',
                          sms_url=srv.sms_url)
    csv = B.applicants_csv(os.path.join(sub, 'applicants.csv'), first, count, 'approved',
                           since='2026-03-02')
    rc, res, secs = B.ctl(conf, 'import', csv, timeout=900)
    if rc != 0:
        raise RuntimeError('import %s: %s' % (name, str(res)[:300]))
    return conf, secs


def mark_rounds(confs, rounds):
    """{name: ([mark ms], [show ms])}, alternating between installations."""
    out = {name: ([], []) for name in confs}
    for k in range(rounds):
        tag = 'EIMZA-2026-%04d' % (k + 1)
        for name, conf in confs.items():
            rc, res, secs = B.ctl(conf, 'show', tag)
            out[name][1].append(secs * 1000)
            rc, res, secs = B.ctl(conf, 'mark', tag, 'submitted')
            if rc != 0:
                raise RuntimeError('mark %s %s: %s' % (name, tag, str(res)[:200]))
            out[name][0].append(secs * 1000)
    return out


def run(report, rounds=20, ingest_rounds=10):
    d = B.workdir('state')
    srv = latency.Servers(d, users=[n for n, _, _ in SIZES])
    daemons = {}
    try:
        confs, firsts = {}, {}
        for name, count, first in SIZES:
            confs[name], secs = installation(d, srv, name, count, first)
            firsts[name] = first
            report.add(SECTION, 'import of %d applications' % count,
                       '%.1f s (eimzactl import, one transaction)' % secs)
        starts = {}
        for name, conf in confs.items():
            daemons[name] = B.Daemon(conf, args=('-v',))
            starts[name] = daemons[name].wait('source: connected', 120)[0] - daemons[name].t_spawn
        time.sleep(2.0)
        rss = {name: dm.status() for name, dm in daemons.items()}
        report_rss(report, rss, starts)
        pair = {n: confs[n] for n in ('small', 'big')}
        marks = mark_rounds(pair, rounds)
        ingest = {n: [] for n in pair}
        for k in range(ingest_rounds):
            for n in pair:
                ingest[n] += latency.rounds_on(daemons[n], srv, firsts[n] + 20 + k, 1, user=n)
        report_transitions(report, marks, ingest)
    finally:
        for dm in daemons.values():
            dm.stop()
        srv.stop()
        if not os.environ.get('EIMZA_KEEP_TMP'):
            subprocess.run(['rm', '-rf', d])


def report_rss(report, rss, starts):
    targets = {'mid': '~8 MiB', 'big': '~64 MiB'}
    for name, count, _ in SIZES:
        st = rss[name]
        report.add(SECTION, 'idle RSS, %d applications' % count,
                   '%.1f MiB VmRSS = %.1f MiB private (RssAnon) + %.1f MiB shared libraries '
                   '(RssFile); Pss %.1f MiB' % (st['VmRSS'] / 1024, st['RssAnon'] / 1024,
                                                st['RssFile'] / 1024, st.get('Pss', 0) / 1024),
                   target=targets.get(name, ''),
                   note='start to mailbox connected: %.2f s' % starts[name])


def report_transitions(report, marks, ingest):
    (ms, ss), (mb, sb) = marks['small'], marks['big']
    dms, dmb = B.dist(ms), B.dist(mb)
    report.add(SECTION, 'eimzactl mark (daemon running), 100 apps', B.fmt_dist_ms(dms),
               note='show (no change): %s' % B.fmt_ms(B.dist(ss)['median']))
    report.add(SECTION, 'eimzactl mark (daemon running), 100,000 apps', B.fmt_dist_ms(dmb),
               target='the same as with 100', peer='100 apps: %s' % B.fmt_ms(dms['median']),
               ratio='%.2f (medians)' % (dmb['median'] / dms['median']),
               note='show (no change): %s' % B.fmt_ms(B.dist(sb)['median']))
    for what, idx in (('SMS request', 2), ('end of DATA', 3)):
        small = B.dist([(r[idx] - r[1]) * 1000 for r in ingest['small'] if r[1]])
        big = B.dist([(r[idx] - r[1]) * 1000 for r in ingest['big'] if r[1]])
        if small and big:
            report.add(SECTION, 'KAMUSM mail in IDLE -> %s, 100,000 apps' % what,
                       B.fmt_dist_ms(big), target='the same as with 100',
                       peer='100 apps: %s' % B.fmt_dist_ms(small),
                       ratio='%.2f (medians)' % (big['median'] / small['median']))
