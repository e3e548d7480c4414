#!/usr/bin/python3
"""Backlog fetch: the IMAP source against a bare Python imaplib fetch.

    bench/imap_fetch.py [--messages 10000] [--size 18500] [--batch 500] [--runs 3]

Starts a throwaway Dovecot (tests/lib/dovecot.py), fills INBOX with
--messages synthetic mails of about --size bytes (185 MB by default), warms
Dovecot's index and the page cache with one untimed fetch, then alternates,
--runs times, over implicit TLS and over plain loopback:
  - python: imaplib, SELECT, then one `UID FETCH 1:* BODY.PEEK[]` (timed);
  - eimzad: bench/srcbench backlog (lib/source_imap.c), fetch() in batches
    of --batch until empty (timed from the first fetch() to the empty one).
Prints the median times, their ratio (eimzad / python; the target is
1.0-1.2), throughput, and srcbench's memory figures (peak RSS, the largest
batch). Run with Debian's /usr/bin/python3 from the source tree.
"""
import argparse
import imaplib
import json
import os
import random
import ssl
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, 'tests', 'lib'))
from dovecot import Dovecot  # noqa: E402
from eimzad_env import secret  # noqa: E402

BUILD = os.path.join(ROOT, 'build')
SRCBENCH = os.path.join(BUILD, 'bench', 'srcbench')
PASSWORD = 'bench-password-1'
WORDS = ('başvuru imza kart nitelikli elektronik sertifika kurum personel '
         'birim onay talep form taahhütname kargo aktivasyon şifre bağlantı '
         'application certificate signature officer request').split()


def build_srcbench():
    """Build bench/srcbench against build/libeimza.a (the Makefile's flags)."""
    subprocess.run(['make', '-s', '-C', ROOT, '-j2', 'build/libeimza.a',
                    'build/bench/srcbench.o'], check=True)
    pkgs = 'libetpan libesmtp-1.0 libcurl json-c gnutls libsystemd openssl'.split()
    libs = subprocess.run(['pkg-config', '--libs'] + pkgs, check=True,
                          capture_output=True, text=True).stdout.split()
    libs = [x for x in libs if not x.startswith('-specs=')]
    subprocess.run(['cc', '-pthread', '-o', SRCBENCH, os.path.join(BUILD, 'bench', 'srcbench.o'),
                    os.path.join(BUILD, 'libeimza.a')] + libs + ['-lm'], check=True)


def make_message(i, size, rng):
    head = ('X-Synthetic: yes\nFrom: "KAMU SM" <bilgilendirme@kamusm.example>\n'
            'To: eimza@example.edu.tr\nSubject: =?UTF-8?B?QmHFn3Z1cnU=?= %d\n'
            'Date: Tue, 24 Nov 2026 10:%02d:%02d +0300\nMessage-ID: <bench%d@example.edu.tr>\n'
            'MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n'
            'Content-Transfer-Encoding: 8bit\n\n' % (i, (i // 60) % 60, i % 60, i))
    target = max(200, int(rng.gauss(size, size * 0.15)))
    lines = []
    n = len(head.encode())
    while n < target:
        line = ' '.join(rng.choice(WORDS) for _ in range(10))
        lines.append(line)
        n += len(line.encode()) + 1
    return head + '\n'.join(lines) + '\n'


def write_conf(dv, tls, path, pwfile, batch):
    port = dv.imaps_port if tls == 'tls' else dv.port
    with open(path, 'w') as f:
        f.write('[source]\ntype = imap\nhost = 127.0.0.1\nport = %d\ntls = %s\n'
                'ca_file = %s\nuser = bench\npassword_file = %s\n'
                'allow_plain_loopback = yes\nfetch_batch = %d\n'
                % (port, tls, dv.ca_file, pwfile, batch))
    return path


def python_fetch(dv, tls):
    """Seconds for one bare UID FETCH 1:* BODY.PEEK[] with imaplib; bytes."""
    if tls == 'tls':
        ctx = ssl.create_default_context(cafile=dv.ca_file)
        m = imaplib.IMAP4_SSL('127.0.0.1', dv.imaps_port, ssl_context=ctx, timeout=300)
    else:
        m = imaplib.IMAP4('127.0.0.1', dv.port, timeout=300)
    m.login('bench', PASSWORD)
    m.select('INBOX', readonly=True)
    t0 = time.monotonic()
    typ, data = m.uid('FETCH', '1:*', '(BODY.PEEK[])')
    secs = time.monotonic() - t0
    nbytes = sum(len(x[1]) for x in data if isinstance(x, tuple))
    m.logout()
    return secs, nbytes


def eimzad_fetch(conf, batch):
    p = subprocess.run([SRCBENCH, 'backlog', '-c', conf, '-b', str(batch)],
                       capture_output=True, text=True, timeout=600)
    out = json.loads(p.stdout.strip().splitlines()[-1])
    if 'error' in out:
        raise RuntimeError(out['error'])
    return out


def fill(dv, count, size):
    rng = random.Random(4711)
    t0 = time.monotonic()
    chunk = 1000
    for start in range(0, count, chunk):
        dv.populate('bench', [make_message(i, size, rng)
                              for i in range(start, min(count, start + chunk))])
    print('# filled %d messages in %.1fs' % (count, time.monotonic() - t0), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--messages', type=int, default=10000)
    ap.add_argument('--size', type=int, default=18500)
    ap.add_argument('--batch', type=int, default=500)
    ap.add_argument('--runs', type=int, default=3)
    ap.add_argument('--transports', default='tls,none')
    args = ap.parse_args()
    build_srcbench()
    dv = Dovecot(users={'bench': PASSWORD})
    try:
        pwfile = secret(os.path.join(dv.dir, 'bench.pw'), PASSWORD)
        fill(dv, args.messages, args.size)
        secs, nbytes = python_fetch(dv, 'none')         # index + page cache, untimed
        print('# warm-up fetch: %d bytes in %.2fs' % (nbytes, secs), flush=True)
        for tls in args.transports.split(','):
            conf = write_conf(dv, tls, os.path.join(dv.dir, 'src-%s.conf' % tls), pwfile,
                              args.batch)
            run_transport(dv, tls, conf, args)
    finally:
        dv.stop()


def run_transport(dv, tls, conf, args):
    py, ez, last = [], [], None
    for _ in range(args.runs):
        s, nbytes = python_fetch(dv, tls)
        py.append(s)
        last = eimzad_fetch(conf, args.batch)
        ez.append(last['secs'])
        if last['msgs'] != args.messages or last['bytes'] != nbytes:
            print('# MISMATCH: eimzad %d msgs %d bytes, python %d bytes'
                  % (last['msgs'], last['bytes'], nbytes))
    mp, me = statistics.median(py), statistics.median(ez)
    mb = last['bytes'] / 1e6
    print('backlog %-4s python %.3fs (%.0f MB/s)  eimzad %.3fs (%.0f MB/s)  ratio %.2f  '
          'runs py=%s ez=%s' % (tls, mp, mb / mp, me, mb / me, me / mp,
                                ','.join('%.3f' % x for x in py),
                                ','.join('%.3f' % x for x in ez)))
    print('memory %-4s batch %d: largest batch %.1f MB, peak RSS %.1f MB (%.1f MB before '
          'fetching)' % (tls, args.batch, last['max_batch_bytes'] / 1e6,
                         last['peak_rss_kib'] / 1024, last['rss_before_kib'] / 1024), flush=True)


if __name__ == '__main__':
    main()
