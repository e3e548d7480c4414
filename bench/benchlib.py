"""Shared pieces of `make bench` (bench/run): figures, statistics, the
eimzad daemon under measurement, Postfix's smtp-sink, synthetic applicants.

Nothing here asserts: a benchmark reports what it measured, beside its
target and a peer measured in the same run, and the reader judges.

Clocks: every time compared across processes is CLOCK_MONOTONIC, which
all processes on one machine share (Python's time.monotonic() reads it;
eimzad -v logs it when an IDLE wait ends, lib/source_imap.c). Servers
stamp arrivals with it, clients stamp their own events with it.
"""
import json
import os
import pty
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get('EIMZA_BUILD', os.path.join(ROOT, 'build'))
OUT = os.path.join(ROOT, 'bench', 'out')
sys.path.insert(0, os.path.join(ROOT, 'tests', 'lib'))
from dovecot import free_port  # noqa: E402
from eimzad_env import AUTHSERV, EBYS, ESIGN, MAILBOX, secret  # noqa: E402

EIMZAD = os.path.join(BUILD, 'eimzad')
EIMZACTL = os.path.join(BUILD, 'eimzactl')
# A Monday in working time and SMS hours (Europe/Istanbul): eimzad runs
# with --now NOW so that its SMS go at once whenever the bench is run.
NOW = '2026-03-02 10:00'


# ---- figures ---------------------------------------------------------------

def loadavg():
    with open('/proc/loadavg') as f:
        return tuple(float(x) for x in f.read().split()[:3])


def dist(xs):
    """median, p90, min, max, n of a list of numbers (None if empty)."""
    xs = sorted(x for x in xs if x is not None)
    if not xs:
        return None
    p90 = xs[min(len(xs) - 1, max(0, int(round(0.9 * len(xs))) - 1))]
    return {'median': statistics.median(xs), 'p90': p90, 'min': xs[0], 'max': xs[-1],
            'n': len(xs)}


class Report:
    """The figures of one run: rows of (section, name, value, target,
    peer, ratio, note), printed as a summary and written to bench/out/."""

    def __init__(self):
        self.rows = []
        self.notes = []
        self.raw = {}

    def add(self, section, name, value, target='', peer='', ratio='', note=''):
        row = {'section': section, 'name': name, 'value': value, 'target': target,
               'peer': peer, 'ratio': ratio, 'note': note, 'load': loadavg()[0]}
        self.rows.append(row)
        print('  %-46s %s%s%s%s%s' % (name, value, ('  [target %s]' % target) if target else '',
                                      ('  [peer %s]' % peer) if peer else '',
                                      ('  [ratio %s]' % ratio) if ratio else '',
                                      ('  (%s)' % note) if note else ''), flush=True)
        return row

    def note(self, section, text):
        self.notes.append((section, text))
        print('  # %s' % text, flush=True)

    def keep(self, key, value):
        """Raw data kept in bench/out/figures.json for later reading."""
        self.raw[key] = value


def fmt_ms(x):
    return '%.2f ms' % x if x < 10 else '%.1f ms' % x if x < 100 else '%.0f ms' % x


def fmt_dist_ms(d):
    return 'median %s, p90 %s (min %s, max %s, n=%d)' % (
        fmt_ms(d['median']), fmt_ms(d['p90']), fmt_ms(d['min']), fmt_ms(d['max']), d['n'])


# ---- small helpers ---------------------------------------------------------

def wait_until(fn, timeout, what, step=0.01):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise TimeoutError('timed out after %.0fs waiting for %s' % (timeout, what))
        time.sleep(step)


def proc_status(pid):
    """VmRSS, VmHWM, RssAnon, RssFile (KiB) and Pss from smaps_rollup."""
    out = {}
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            k, _, v = line.partition(':')
            if k in ('VmRSS', 'VmHWM', 'RssAnon', 'RssFile', 'RssShmem', 'Threads'):
                out[k] = int(v.split()[0])
    try:
        with open('/proc/%d/smaps_rollup' % pid) as f:
            for line in f:
                if line.startswith('Pss:'):
                    out['Pss'] = int(line.split()[1])
    except OSError:
        pass
    return out


def cpu_seconds(pid):
    """User + system CPU time of a live process, from /proc/PID/stat."""
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    tick = os.sysconf('SC_CLK_TCK')
    return (int(fields[11]) + int(fields[12])) / tick


# ---- synthetic applicants --------------------------------------------------

def tc(n):
    """A synthetic TC kimlik number that passes the checksum."""
    d = [int(c) for c in '%09d' % (200000000 + n)]
    d10 = ((d[0] + d[2] + d[4] + d[6] + d[8]) * 7 - (d[1] + d[3] + d[5] + d[7])) % 10
    d11 = (sum(d) + d10) % 10
    return ''.join(map(str, d)) + str(d10) + str(d11)


def applicant(i):
    """(email, E.164 mobile) of synthetic applicant i."""
    return 'basvuru%06d@example.edu.tr' % i, '+90555%07d' % i


def applicants_csv(path, first, count, state='approved', since='2026-02-25'):
    """An `eimzactl import` file of applicants first..first+count-1."""
    with open(path, 'w', encoding='utf-8') as f:
        f.write('Ad Soyad;Kurumsal E-posta;Cep Telefonu;TC Kimlik No;Unvan;Birim;state;since\n')
        for i in range(first, first + count):
            email, mobile = applicant(i)
            f.write('Sentetik Kişi %d;%s;0%s;%s;Uzman;Birim %d;%s;%s\n'
                    % (i, email, mobile[3:], tc(i), i % 40, state, since))
    return path


# ---- an eimzad installation ------------------------------------------------

CONFIG = """\
[general]
state_dir = {state}
templates_dir = {root}/templates
rules_file = {root}/conf/rules.conf
holidays_file = {root}/conf/holidays.conf
institution_name = Test Üniversitesi
institution_domains = example.edu.tr
helpdesk = BİDB oda 112
[officers]
ebys = {ebys}
esign = {esign}
[trust]
authserv_id = {authserv}
[source]
type = imap
host = 127.0.0.1
port = {imap_port}
tls = {imap_tls}
ca_file = {imap_ca}
allow_plain_loopback = yes
user = {imap_user}
password_file = {dir}/imap.secret
folder = INBOX
backoff_max = 2s
poll_interval = 2s
fetch_batch = {fetch_batch}
[smtp]
channel = smtp
host = 127.0.0.1
port = {smtp_port}
tls = {smtp_tls}
{smtp_auth}from = "E-İmza Bildirim <{mailbox}>"
reply_to = {mailbox}
timeout = 10s
sessions = {smtp_sessions}
batch = {smtp_batch}
[sms]
channel = sms
profile = json
url = {sms_url}
auth = bearer
secret_file = {dir}/sms.secret
sender = EIMZA
rate = 0
concurrency = {sms_concurrency}
timeout = 5s
connect_timeout = 2s
[outbox]
retry_min = 1s
retry_max = 4s
"""


def write_config(path, d, **kw):
    """An eimzad.conf for an installation in folder d. kw: imap_port,
    imap_tls, imap_ca, imap_user, imap_password, smtp_port, smtp_tls,
    smtp_ca/smtp_user/smtp_password (optional), sms_url, and tuning."""
    secret(os.path.join(d, 'imap.secret'), kw['imap_password'])
    secret(os.path.join(d, 'sms.secret'), kw.get('sms_token', 'sms-token-secret'))
    auth = ''
    if kw.get('smtp_ca'):
        auth += 'ca_file = %s\n' % kw['smtp_ca']
    if kw.get('smtp_user'):
        secret(os.path.join(d, 'smtp.secret'), kw['smtp_password'])
        auth += 'user = %s\npassword_file = %s/smtp.secret\n' % (kw['smtp_user'], d)
    text = CONFIG.format(
        state=kw.get('state', os.path.join(d, 'state')), root=ROOT, dir=d, ebys=EBYS,
        esign=ESIGN, authserv=AUTHSERV, mailbox=MAILBOX, imap_port=kw['imap_port'],
        imap_tls=kw.get('imap_tls', 'tls'), imap_ca=kw['imap_ca'],
        imap_user=kw.get('imap_user', 'eimza'), fetch_batch=kw.get('fetch_batch', 500),
        smtp_port=kw['smtp_port'], smtp_tls=kw.get('smtp_tls', 'none'), smtp_auth=auth,
        smtp_sessions=kw.get('smtp_sessions', 2), smtp_batch=kw.get('smtp_batch', 100),
        sms_url=kw['sms_url'], sms_concurrency=kw.get('sms_concurrency', 8))
    with open(path, 'w') as f:
        f.write(text + kw.get('extra', ''))
    return path


def ctl(conf, *args, now=NOW, timeout=300):
    """eimzactl --json ARGS: (exit code, parsed answer or text, seconds)."""
    argv = [EIMZACTL, '-c', conf, '--json']
    if now:
        argv += ['--now', now]
    t0 = time.monotonic()
    p = subprocess.run(argv + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout)
    secs = time.monotonic() - t0
    out = p.stdout.decode('utf-8', 'replace')
    try:
        res = json.loads(out) if out.strip() else None
    except ValueError:
        res = out
    return p.returncode, res, secs


class Daemon:
    """eimzad in the background; every line it logs is kept with the
    monotonic time it was read (stderr is a pipe; eimzad writes each line
    with one write(2))."""

    def __init__(self, conf, args=(), now=NOW):
        argv = [EIMZAD, '-c', conf] + list(args)
        if now:
            argv += ['--now', now]
        self.lines = []              # (monotonic seconds, text)
        self._lock = threading.Lock()
        self.t_spawn = time.monotonic()
        self.proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     stdin=subprocess.DEVNULL)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.tracer = self._attach()

    # For looking into a figure: BENCH_ATTACH="perf record -g -o /tmp/p.{n}"
    # (or strace -f ...) is attached to every eimzad started (n counts
    # them), or only to the n-th with BENCH_ATTACH_ONLY=n; "-p PID" is
    # appended. It is stopped with SIGINT before eimzad is.
    _started = [0]

    def _attach(self):
        Daemon._started[0] += 1
        n = Daemon._started[0]
        cmd = os.environ.get('BENCH_ATTACH')
        only = os.environ.get('BENCH_ATTACH_ONLY')
        if not cmd or (only and int(only) != n):
            return None
        t = subprocess.Popen(cmd.format(n=n).split() + ['-p', str(self.proc.pid)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(0.3)
        return t

    def _read(self):
        for raw in self.proc.stderr:
            t = time.monotonic()
            with self._lock:
                self.lines.append((t, raw.decode('utf-8', 'replace').rstrip('\n')))

    def log(self):
        with self._lock:
            return list(self.lines)

    def find(self, pattern, start=0):
        """(time, match) of the first line at or after index start that
        matches, or None."""
        rx = re.compile(pattern)
        for t, line in self.log()[start:]:
            m = rx.search(line)
            if m:
                return t, m
        return None

    def findall(self, pattern):
        rx = re.compile(pattern)
        return [(t, m) for t, line in self.log() for m in [rx.search(line)] if m]

    def wait(self, pattern, timeout=30, start=0):
        def look():
            if self.proc.poll() is not None:
                raise RuntimeError('eimzad exited %s:\n%s' % (
                    self.proc.returncode, '\n'.join(l for _, l in self.log()[-30:])))
            return self.find(pattern, start)
        return wait_until(look, timeout, 'eimzad: /%s/' % pattern)

    def status(self):
        return proc_status(self.proc.pid)

    def cpu(self):
        return cpu_seconds(self.proc.pid)

    def stop(self, timeout=30):
        if self.tracer is not None and self.tracer.poll() is None:
            self.tracer.send_signal(signal.SIGINT)
            try:
                self.tracer.wait(30)
            except subprocess.TimeoutExpired:
                self.tracer.kill()
                self.tracer.wait()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._reader.join(5)
        logdir = os.environ.get('BENCH_LOGDIR')     # keep every daemon's log
        if logdir:
            os.makedirs(logdir, exist_ok=True)
            path = os.path.join(logdir, 'eimzad-%d.log' % self.proc.pid)
            with open(path, 'w') as f:
                f.writelines('%.6f %s\n' % (t, l) for t, l in self.log())
        return self.proc.returncode

    def tail(self, n=20):
        return '\n'.join(l for _, l in self.log()[-n:])


# ---- test servers in processes of their own (bench/servers.py) -----------

class ServerProc:
    """A server of bench/servers.py in its own process; arrivals by
    recipient, stamped by the server."""

    def __init__(self, *args):
        self.proc = subprocess.Popen([sys.executable, os.path.join(ROOT, 'bench', 'servers.py')]
                                     + list(args), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     text=True)
        self.info = json.loads(self.proc.stdout.readline())
        self.port = self.info['port']
        self.arrived = []                 # (recipient, monotonic time)
        self._lock = threading.Lock()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            a = json.loads(line)
            with self._lock:
                self.arrived.append((a['to'], a['t']))

    def first(self, to):
        with self._lock:
            return next((t for r, t in self.arrived if r == to), None)

    def count(self):
        with self._lock:
            return len(self.arrived)

    def times(self):
        with self._lock:
            return [t for _, t in self.arrived]

    def wait_for(self, n, timeout):
        return wait_until(lambda: self.count() >= n, timeout,
                          'server: %d arrivals (have %d)' % (n, self.count()))

    def stop(self):
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()



# ---- Postfix's smtp-sink ---------------------------------------------------

SMTP_SINK = '/usr/sbin/smtp-sink'


def have_smtp_sink():
    return os.access(SMTP_SINK, os.X_OK)


class PostfixSink:
    """Postfix's smtp-sink on 127.0.0.1: an event-driven SMTP server that
    accepts and discards, with PIPELINING, many sessions in one process.
    With -c it prints its counters ("mesg=N") after every message, on a
    terminal only (to a pipe they come out at exit), so it gets a pty; a
    reader thread stamps each new message count with the monotonic time,
    so that the arrival of the last of N messages is known to within a
    read. It offers no STARTTLS: clients use tls = none on loopback."""

    def __init__(self):
        self.port = free_port()
        argv = [SMTP_SINK, '-c', '-4', '-m', '512']
        if os.geteuid() == 0:
            argv += ['-u', 'nobody']          # it refuses to run as root otherwise
        argv += ['127.0.0.1:%d' % self.port, '256']
        self.times = []                       # monotonic time of message k+1
        self._lock = threading.Lock()
        master, slave = pty.openpty()
        self._master = master
        self.proc = subprocess.Popen(argv, stdout=slave, stderr=slave,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        os.close(slave)
        threading.Thread(target=self._read, daemon=True).start()
        wait_until(self._listening, 10, 'smtp-sink to listen')

    def _listening(self):
        if self.proc.poll() is not None:
            raise RuntimeError('smtp-sink exited %s' % self.proc.returncode)
        try:
            with socket.create_connection(('127.0.0.1', self.port), timeout=1) as s:
                s.recv(100)
                s.sendall(b'QUIT\r\n')
                return True
        except OSError:
            return False

    def _read(self):
        buf = b''
        while True:
            try:
                chunk = os.read(self._master, 4096)
            except OSError:                   # EIO: the sink has gone
                return
            if not chunk:
                return
            t = time.monotonic()
            buf += chunk
            *done, buf = re.split(rb'[\r\n]', buf)
            for rec in done:
                m = re.search(rb'mesg=(\d+)', rec)
                if m:
                    n = int(m.group(1))
                    with self._lock:
                        while len(self.times) < n:
                            self.times.append(t)

    def count(self):
        with self._lock:
            return len(self.times)

    def arrivals(self):
        with self._lock:
            return list(self.times)

    def wait_for(self, n, timeout):
        return wait_until(lambda: self.count() >= n, timeout,
                          'smtp-sink: %d messages (have %d)' % (n, self.count()))

    def stop(self):
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                try:
                    os.killpg(self.proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                self.proc.wait(5)
        try:
            os.close(self._master)
        except OSError:
            pass


def workdir(prefix):
    return tempfile.mkdtemp(prefix='eimza-bench-%s-' % prefix)
