"""A throwaway Dovecot IMAP server for integration tests and benchmarks.

    from dovecot import Dovecot
    dv = Dovecot(users={'kamu': 'pw'})      # started; always stopped (atexit too)
    dv.port            # IMAP with STARTTLS offered (127.0.0.1 only)
    dv.imaps_port      # implicit TLS
    dv.ca_file         # the test CA that signed the served certificate
    uid = dv.append('kamu', raw_bytes)        # APPEND through IMAP, like an MTA would
    dv.uids('kamu')                           # [1, 2, ...] in INBOX
    dv.flags('kamu', uid)                     # ['\\Seen', ...]
    dv.folder_messages('kamu', 'Diger')       # [(uid, raw bytes), ...]
    dv.set_cert('wronghost')                  # serve another certificate (reload)
    dv.kill(); dv.start()                     # crash and restart, same ports and mail
    dv.stop()

What it starts: `/usr/sbin/dovecot -F -c <tmp>/dovecot.conf`, never the
system instance: every path (base_dir, state_dir, logs, mail) is under a
fresh temp folder, and it listens on 127.0.0.1 only, on free ports chosen
at start. Users come from a passwd-file with plain passwords; no PAM, no
system users are consulted. Mail is Maildir under <tmp>/mail/<user>. The log
is <tmp>/dovecot.log (dv.log_tail() returns its end; it is printed when
starting fails).

TLS: certificates come from tests/lib/testca.py. cert='good' (default)
serves one for localhost and 127.0.0.1 signed by dv.ca_file; 'wronghost'
one for not-this-host.example signed by the same CA; 'untrusted' one for
the right names signed by another CA that nothing trusts. ssl=False runs
without TLS at all: no STARTTLS in the capabilities, no imaps port.
ssl_min_protocol is left at Dovecot's default.

Running as root (CI, containers): Dovecot refuses mail processes with uid
0 ("userdb returned 0 as uid"), so mail is owned by `nobody` (uid/gid from
the system), the temp folder is made traversable (0711) and the mail
folder is given to that user; Dovecot's own processes use its packaged
users (default_internal_user = dovecot, default_login_user = dovenull).
Running as another user: everything runs as that user.

Speed-related settings (documented because tests depend on them):
- Dovecot delays IDLE notifications by a fixed 500 ms (NOTIFY_DELAY_MSECS
  in its mailbox-watch.c, not a setting), so a test waiting for an IDLE
  wake-up must allow ~0.5 s plus margin. mailbox_idle_check_interval is set
  to 1 s so that even without inotify the delay stays short.
- mail_fsync = never: the test mail store need not survive a power cut,
  and fsync per APPEND would make 10,000 APPENDs take minutes.
- auth_failure_delay = 0 and no anvil-auth-penalty listener: a wrong
  password is answered at once, and does not slow down the logins from
  127.0.0.1 that follow it (Dovecot's brute-force penalty, 2-15 s).
- drop_caps=['MOVE', 'IDLE', ...] removes capabilities from what Dovecot
  advertises after login (imap_capability), to exercise client fallbacks.

Every wait is bounded; stop() is idempotent, kills the whole process group
if SIGTERM is not enough, and removes the temp folder (keep it with
EIMZA_KEEP_TMP=1). The master also gets SIGTERM if the test process dies
without running atexit (PR_SET_PDEATHSIG), e.g. when the runner kills it.
"""
import atexit
import imaplib
import os
import pwd
import re
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

from testca import TestCA

DOVECOT = '/usr/sbin/dovecot'

# What Dovecot 2.3 advertises after login, for drop_caps.
DEFAULT_CAPS = ('IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE SORT SORT=DISPLAY '
                'THREAD=REFERENCES THREAD=REFS THREAD=ORDEREDSUBJECT MULTIAPPEND URL-PARTIAL '
                'CATENATE UNSELECT CHILDREN NAMESPACE UIDPLUS LIST-EXTENDED I18NLEVEL=1 '
                'CONDSTORE QRESYNC ESEARCH ESORT SEARCHRES WITHIN CONTEXT=SEARCH LIST-STATUS '
                'BINARY MOVE SNIPPET=FUZZY PREVIEW=FUZZY PREVIEW STATUS=SIZE SAVEDATE '
                'LITERAL+ NOTIFY SPECIAL-USE')


def _die_with_parent():
    """In the child before exec: get SIGTERM when the test process dies, so
    a test killed by a timeout (no atexit) leaves no Dovecot behind."""
    try:
        import ctypes
        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except Exception:
        pass


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


class DovecotError(Exception):
    pass


class Dovecot:
    def __init__(self, users=None, cert='good', ssl=True, drop_caps=(), extra_conf='',
                 start=True):
        self.users = dict(users or {'test': 'test-password'})
        self.cert_kind = cert
        self.ssl = ssl
        self.drop_caps = tuple(drop_caps)
        self.extra_conf = extra_conf
        self.dir = tempfile.mkdtemp(prefix='eimza-dovecot-')
        self.port = free_port()
        self.imaps_port = free_port() if ssl else None
        self.proc = None
        self._clients = {}
        self._stopped = False
        self._setup_identity()
        self._make_certs()
        self._write_passwd()
        self._write_conf()
        atexit.register(self.stop)
        if start:
            self.start()

    # ---- setup ------------------------------------------------------------

    def _setup_identity(self):
        self.root = os.geteuid() == 0
        self.maildir_root = os.path.join(self.dir, 'mail')
        os.makedirs(self.maildir_root)
        if self.root:
            nobody = pwd.getpwnam('nobody')
            self.mail_uid, self.mail_gid = nobody.pw_uid, nobody.pw_gid
            os.chmod(self.dir, 0o711)
            os.chown(self.maildir_root, self.mail_uid, self.mail_gid)
            os.chmod(self.maildir_root, 0o700)
            self.internal_user, self.login_user = 'dovecot', 'dovenull'
        else:
            self.mail_uid, self.mail_gid = os.geteuid(), os.getegid()
            me = pwd.getpwuid(self.mail_uid).pw_name
            self.internal_user = self.login_user = me

    def _make_certs(self):
        self.ca = TestCA(os.path.join(self.dir, 'ca'))
        self.ca_file = self.ca.cert
        self.certs = {
            'good': self.ca.issue('imap', ['localhost', '127.0.0.1']),
            'wronghost': self.ca.issue('wrong', ['not-this-host.example']),
        }
        other = TestCA(os.path.join(self.dir, 'otherca'), name='untrusted test CA')
        self.untrusted_ca_file = other.cert
        self.certs['untrusted'] = other.issue('imap', ['localhost', '127.0.0.1'])

    def _write_passwd(self):
        self.passwd = os.path.join(self.dir, 'passwd')
        with open(self.passwd, 'w') as f:
            for user, pw in self.users.items():
                f.write('%s:{PLAIN}%s::::::\n' % (user, pw))
        os.chmod(self.passwd, 0o600)
        if self.root:            # the auth process reads it as the internal user
            pw = pwd.getpwnam(self.internal_user)
            os.chown(self.passwd, pw.pw_uid, pw.pw_gid)

    def _ssl_conf(self):
        if not self.ssl:
            return 'ssl = no\n'
        crt, key = self.certs[self.cert_kind]
        return 'ssl = yes\nssl_cert = <%s\nssl_key = <%s\n' % (crt, key)

    def _listeners(self):
        out = ('service imap-login {\n  chroot =\n'
               '  inet_listener imap {\n    address = 127.0.0.1\n    port = %d\n  }\n'
               % self.port)
        if self.ssl:
            out += ('  inet_listener imaps {\n    address = 127.0.0.1\n    port = %d\n'
                    '    ssl = yes\n  }\n' % self.imaps_port)
        else:
            out += '  inet_listener imaps {\n    port = 0\n  }\n'
        return out + '}\n'

    def _write_conf(self):
        d = self.dir
        caps = ''
        if self.drop_caps:
            drop = {c.upper() for c in self.drop_caps}
            caps = 'imap_capability = %s\n' % ' '.join(
                c for c in DEFAULT_CAPS.split() if c.upper() not in drop)
        conf = f"""# generated by tests/lib/dovecot.py: a throwaway test instance
protocols = imap
listen = 127.0.0.1
base_dir = {d}/run
state_dir = {d}/state
instance_name = eimza-test-{os.path.basename(d)}
log_path = {d}/dovecot.log
info_log_path = {d}/dovecot.log
debug_log_path = {d}/dovecot.log
{self._ssl_conf()}
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.passwd}
}}
userdb {{
  driver = static
  args = uid={self.mail_uid} gid={self.mail_gid} home={self.maildir_root}/%u
}}
first_valid_uid = 1
first_valid_gid = 1
mail_location = maildir:~/Maildir
mail_fsync = never
default_internal_user = {self.internal_user}
default_login_user = {self.login_user}
mailbox_idle_check_interval = 1 secs
{caps}{self._listeners()}service anvil {{
  chroot =
  unix_listener anvil-auth-penalty {{
    mode = 0
  }}
}}
{self.extra_conf}
"""
        self.conf = os.path.join(d, 'dovecot.conf')
        with open(self.conf, 'w') as f:
            f.write(conf)
        os.makedirs(os.path.join(d, 'run'), exist_ok=True)
        os.makedirs(os.path.join(d, 'state'), exist_ok=True)

    # ---- life cycle -------------------------------------------------------

    def start(self, timeout=10.0):
        """Start (or restart after kill()) and wait until it greets."""
        if self.proc is not None and self.proc.poll() is None:
            return
        self._stopped = False
        logf = open(os.path.join(self.dir, 'master.out'), 'ab')
        self.proc = subprocess.Popen([DOVECOT, '-F', '-c', self.conf], stdin=subprocess.DEVNULL,
                                     stdout=logf, stderr=subprocess.STDOUT,
                                     start_new_session=True, preexec_fn=_die_with_parent)
        logf.close()
        end = time.monotonic() + timeout
        while True:
            if self.proc.poll() is not None:
                raise DovecotError('dovecot exited with %s at start:\n%s'
                                   % (self.proc.returncode, self.log_tail()))
            if self._greets():
                return
            if time.monotonic() > end:
                self.kill()
                raise DovecotError('dovecot did not answer within %.0fs:\n%s'
                                   % (timeout, self.log_tail()))
            time.sleep(0.05)

    def _greets(self):
        try:
            with socket.create_connection(('127.0.0.1', self.port), timeout=1) as s:
                return s.recv(100).startswith(b'* OK')
        except OSError:
            return False

    def _drop_clients(self):
        for m in self._clients.values():
            try:
                m.shutdown()
            except Exception:
                pass
        self._clients = {}

    def kill(self):
        """Crash it: SIGKILL the master and every child (its process group)."""
        self._drop_clients()
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        self._wait_group_gone(self.proc.pid, 5)

    @staticmethod
    def _wait_group_gone(pgid, timeout):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            try:
                os.killpg(pgid, 0)
            except ProcessLookupError:
                return
            time.sleep(0.02)

    def stop(self):
        """Stop it (SIGTERM, then SIGKILL after 5 s) and remove its folder."""
        if self._stopped:
            return
        self._stopped = True
        self._drop_clients()
        if self.proc is not None and self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGTERM)
                self.proc.wait(timeout=5)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                pass
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self._wait_group_gone(self.proc.pid, 5)
        if not os.environ.get('EIMZA_KEEP_TMP'):
            shutil.rmtree(self.dir, ignore_errors=True)

    def reload(self):
        """Rewrite the config and make Dovecot read it again (SIGHUP)."""
        self._write_conf()
        self._drop_clients()
        os.kill(self.proc.pid, signal.SIGHUP)

    def set_cert(self, kind, timeout=10.0):
        """Serve another certificate ('good', 'wronghost', 'untrusted')."""
        self.cert_kind = kind
        want = open(self.certs[kind][0], 'rb').read()
        want_der = ssl.PEM_cert_to_DER_cert(want.decode())
        self.reload()
        end = time.monotonic() + timeout
        while self._served_cert() != want_der:
            if time.monotonic() > end:
                raise DovecotError('dovecot still serves the old certificate')
            time.sleep(0.05)

    def _served_cert(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        try:
            with socket.create_connection(('127.0.0.1', self.imaps_port), timeout=2) as s:
                with ctx.wrap_socket(s) as t:
                    return t.getpeercert(binary_form=True)
        except OSError:
            return None

    def log_tail(self, n=40):
        try:
            with open(os.path.join(self.dir, 'dovecot.log'), errors='replace') as f:
                lines = f.readlines()
        except OSError:
            lines = []
        try:
            with open(os.path.join(self.dir, 'master.out'), errors='replace') as f:
                lines += f.readlines()
        except OSError:
            pass
        return ''.join(lines[-n:])

    def maildir(self, user, folder='INBOX'):
        base = os.path.join(self.maildir_root, user, 'Maildir')
        return base if folder == 'INBOX' else os.path.join(base, '.' + folder)

    # ---- an IMAP client for the test's side -------------------------------

    def client(self, user, password=None):
        """A fresh logged-in imaplib connection (STARTTLS when ssl is on)."""
        m = imaplib.IMAP4('127.0.0.1', self.port, timeout=15)
        if self.ssl:
            ctx = ssl.create_default_context(cafile=self.ca_file)
            ctx.check_hostname = False          # any served cert: we test the server side
            ctx.verify_mode = ssl.CERT_NONE
            m.starttls(ssl_context=ctx)
        m.login(user, password if password is not None else self.users[user])
        return m

    def _cached(self, user):
        m = self._clients.get(user)
        if m is not None:
            try:
                m.noop()
                return m
            except Exception:
                self._clients.pop(user, None)
        m = self.client(user)
        self._clients[user] = m
        return m

    def _do(self, user, fn):
        """Run fn(conn) on the cached connection; reconnect once if it broke."""
        try:
            return fn(self._cached(user))
        except (imaplib.IMAP4.abort, OSError):
            self._clients.pop(user, None)
            return fn(self._cached(user))

    def append(self, user, raw, flags=None, folder='INBOX', date=None):
        """APPEND raw (bytes) to folder; returns the new UID."""
        if isinstance(raw, str):
            raw = raw.encode()
        raw = raw.replace(b'\r\n', b'\n').replace(b'\n', b'\r\n')

        def go(m):
            typ, data = m.append(folder, flags, date if date is not None else time.time(), raw)
            if typ != 'OK':
                raise DovecotError('APPEND: %r' % (data,))
            mt = re.search(rb'APPENDUID \d+ (\d+)', data[0] or b'')
            return int(mt.group(1)) if mt else None
        return self._do(user, go)

    def create(self, user, folder):
        self._do(user, lambda m: m.create(folder))

    def delete(self, user, folder):
        self._do(user, lambda m: m.delete(folder))

    def recreate(self, user, folder):
        """Delete and create folder again: it gets a new UIDVALIDITY."""
        def go(m):
            m.unselect() if m.state == 'SELECTED' else None
            m.delete(folder)
            m.create(folder)
        self._do(user, go)

    def clear(self, user, folder='INBOX'):
        """Expunge every message of a folder (INBOX cannot be deleted)."""
        def go(m):
            typ, data = m.select(folder)
            if typ != 'OK':
                raise DovecotError('SELECT %s failed' % folder)
            if int(data[0] or 0) > 0:           # an empty folder has no 1:*
                m.store('1:*', '+FLAGS.SILENT', '(\\Deleted)')
                m.expunge()
            m.unselect()
        self._do(user, go)

    def _examine(self, m, folder):
        typ, data = m.select(folder, readonly=True)
        if typ != 'OK':
            return False
        return True

    def uidvalidity(self, user, folder='INBOX'):
        def go(m):
            typ, data = m.status(folder, '(UIDVALIDITY)')
            return int(re.search(rb'UIDVALIDITY (\d+)', data[0]).group(1))
        return self._do(user, go)

    def uids(self, user, folder='INBOX'):
        """UIDs in folder, ascending ([] if the folder does not exist)."""
        def go(m):
            if not self._examine(m, folder):
                return []
            typ, data = m.uid('SEARCH', 'ALL')
            return sorted(int(x) for x in (data[0] or b'').split())
        return self._do(user, go)

    def flags(self, user, uid, folder='INBOX'):
        """The flags of one message, e.g. ['\\Seen'] (None if it is gone)."""
        def go(m):
            if not self._examine(m, folder):
                return None
            typ, data = m.uid('FETCH', str(uid), '(FLAGS)')
            for item in data:
                if isinstance(item, bytes):
                    mt = re.search(rb'UID %d\b.*FLAGS \(([^)]*)\)' % uid, item) or \
                        re.search(rb'FLAGS \(([^)]*)\).*UID %d\b' % uid, item)
                    if mt:
                        return mt.group(1).decode().split()
            return None
        return self._do(user, go)

    def folder_messages(self, user, folder):
        """[(uid, raw bytes)] of folder, by UID ([] if it does not exist)."""
        def go(m):
            if not self._examine(m, folder):
                return []
            typ, data = m.uid('FETCH', '1:*', '(UID BODY.PEEK[])')
            out = []
            for item in data:
                if isinstance(item, tuple):
                    mt = re.search(rb'UID (\d+)', item[0])
                    out.append((int(mt.group(1)), item[1]))
            return sorted(out)
        return self._do(user, go)

    def populate(self, user, messages, folder='INBOX'):
        """Put messages straight into the Maildir's new/ (no IMAP, no IDLE
        notification): for filling big mailboxes fast in benchmarks."""
        base = self.maildir(user, folder)
        for sub in ('tmp', 'new', 'cur'):
            os.makedirs(os.path.join(base, sub), exist_ok=True)
        now = int(time.time())
        for i, raw in enumerate(messages):
            if isinstance(raw, str):
                raw = raw.encode()
            raw = raw.replace(b'\r\n', b'\n')
            name = '%d.M%dP%d.eimza-test,S=%d' % (now, i, os.getpid(), len(raw))
            tmp = os.path.join(base, 'tmp', name)
            with open(tmp, 'wb') as f:
                f.write(raw)
            os.rename(tmp, os.path.join(base, 'new', name))
        if self.root:
            for dirpath, dirnames, filenames in os.walk(os.path.join(self.maildir_root, user)):
                for n in dirnames + filenames:
                    os.chown(os.path.join(dirpath, n), self.mail_uid, self.mail_gid)
            os.chown(os.path.join(self.maildir_root, user), self.mail_uid, self.mail_gid)
