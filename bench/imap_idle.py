#!/usr/bin/python3
"""IDLE latency: from the server's notification to the new message in memory.

    bench/imap_idle.py [--count 20] [--tls tls|none]

Starts a throwaway Dovecot, then --count times APPENDs one synthetic
message while a client waits in IDLE, and measures, on the client, the time
from the IDLE socket turning readable (Dovecot's notification, which it
sends ~500 ms after the APPEND by design) to the message's bytes being in
memory: wait_done (DONE and its answer) + fetch().
  - eimzad: bench/srcbench idle (lib/source_imap.c); wall time and the
    process's CPU time for that span;
  - python: the same steps written plainly over imaplib's socket (IDLE,
    select(), DONE, UID FETCH <next>:* (UID BODY.PEEK[])), for comparison.
SRCBENCH_WRAP="strace -c -o /tmp/x" runs srcbench under a profiler.
Both include Dovecot's own work for those commands (two round trips for
eimzad's fast path, two for the Python script); the CPU figure is ours alone.
"""
import argparse
import json
import os
import re
import select
import ssl
import socket
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'tests', 'lib'))
from imap_fetch import PASSWORD, SRCBENCH, build_srcbench, write_conf  # noqa: E402
from dovecot import Dovecot  # noqa: E402
from eimzad_env import secret  # noqa: E402

MSG = ('X-Synthetic: yes\r\nFrom: bilgilendirme@kamusm.example\r\nSubject: idle %d\r\n'
       'Message-ID: <idle%d@example.edu.tr>\r\n\r\n' + 'Başvuru bağlantısı hazır.\r\n' * 600)


def summary(name, xs):
    xs = sorted(xs)
    return '%s median %.0f us, p90 %.0f us, min %.0f us' % (
        name, statistics.median(xs), xs[int(len(xs) * 0.9) - 1] if len(xs) >= 10 else xs[-1],
        xs[0])


def eimzad_run(dv, conf, count):
    wrap = os.environ.get('SRCBENCH_WRAP', '').split()     # e.g. "strace -c"
    p = subprocess.Popen(wrap + [SRCBENCH, 'idle', '-c', conf, '-n', str(count)],
                         stdout=subprocess.PIPE, text=True)
    walls, cpus, users, syss = [], [], [], []
    try:
        for i in range(count):
            line = json.loads(p.stdout.readline())
            if 'waiting' not in line:
                raise RuntimeError(line)
            time.sleep(0.05)
            dv.append('bench', (MSG % (i, i)).encode())
            line = json.loads(p.stdout.readline())
            if 'wall_us' not in line or line['msgs'] != 1:
                raise RuntimeError(line)
            walls.append(line['wall_us'])
            cpus.append(line['cpu_us'])
            users.append(line['user_us'])
            syss.append(line['sys_us'])
        p.wait(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    return walls, cpus, users, syss


class PyIdle:
    """A plain Python IDLE client: the comparison baseline."""

    def __init__(self, dv, tls):
        raw = socket.create_connection(('127.0.0.1', dv.imaps_port if tls == 'tls' else dv.port))
        if tls == 'tls':
            ctx = ssl.create_default_context(cafile=dv.ca_file)
            raw = ctx.wrap_socket(raw, server_hostname='127.0.0.1')
        self.s = raw
        self.f = raw.makefile('rb')
        self.tag = 0
        self.f.readline()
        self.cmd('LOGIN bench %s' % PASSWORD)
        out = self.cmd('SELECT INBOX')
        self.next = int(re.search(rb'UIDNEXT (\d+)', b''.join(out)).group(1))

    def send(self, line):
        self.s.sendall(line.encode() + b'\r\n')

    def cmd(self, text):
        self.tag += 1
        t = 'a%d' % self.tag
        self.send('%s %s' % (t, text))
        return self.read_until(t.encode())

    def read_until(self, tag):
        out = []
        while True:
            line = self.f.readline()
            m = re.search(rb'\{(\d+)\}\r\n$', line)
            if m:
                line += self.f.read(int(m.group(1)))
                line += self.f.readline()
            out.append(line)
            if line.startswith(tag + b' '):
                return out

    def wait_one(self, dv, i):
        self.tag += 1
        t = 'a%d' % self.tag
        self.send('%s IDLE' % t)
        self.f.readline()                       # + idling
        time.sleep(0.05)
        dv.append('bench', (MSG % (i, i)).encode())
        select.select([self.s], [], [], 10)
        t0 = time.monotonic()
        self.send('DONE')
        self.read_until(t.encode())
        out = self.cmd('UID FETCH %d:* (UID BODY.PEEK[])' % self.next)
        t1 = time.monotonic()
        uids = [int(x) for x in re.findall(rb'UID (\d+)', b''.join(l[:80] for l in out))]
        self.next = max(uids + [self.next - 1]) + 1
        return (t1 - t0) * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--count', type=int, default=20)
    ap.add_argument('--tls', default='tls')
    args = ap.parse_args()
    build_srcbench()
    dv = Dovecot(users={'bench': PASSWORD})
    try:
        pwfile = secret(os.path.join(dv.dir, 'bench.pw'), PASSWORD)
        for i in range(20):
            dv.append('bench', (MSG % (1000 + i, 1000 + i)).encode())
        conf = write_conf(dv, args.tls, os.path.join(dv.dir, 'idle.conf'), pwfile, 500)
        walls, cpus, users, syss = eimzad_run(dv, conf, args.count)
        py = PyIdle(dv, args.tls)
        pys = [py.wait_one(dv, 5000 + i) for i in range(args.count)]
        # (srcbench also prints getrusage's user/system split per wake-up;
        # it is tick-based here, so only the precise total is summed up.)
        print('idle %s: eimzad wake-up to message in memory: %s; our CPU: %s'
              % (args.tls, summary('wall', walls), summary('cpu', cpus)))
        print('idle %s: python, same steps: %s' % (args.tls, summary('wall', pys)))
    finally:
        dv.stop()


if __name__ == '__main__':
    main()
