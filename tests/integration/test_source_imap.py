"""The IMAP source (lib/source_imap.c) against a real Dovecot, through
tests/tools/srcpeek. Two throwaway servers: `dv` with TLS (implicit and
STARTTLS, certificates from a test CA), and `plain` without TLS at all and
without MOVE and IDLE in its capabilities (for the refusal of a STARTTLS-less server,
plain IMAP on loopback, the COPY + EXPUNGE fallback, polling without IDLE)."""
import json
import os
import select
import subprocess
import sys
import time

from tap import check, eq, run, test, wait_for
from dovecot import Dovecot

BUILD = os.environ.get('EIMZA_BUILD', 'build')
SRCPEEK = os.path.join(BUILD, 'tests/tools/srcpeek')
PASSWORD = 'Gizli-parola-4711'


def msg(n, subject=None, size=0):
    body = 'Satır %d\n' % n + ('x' * 70 + '\n') * (size // 71)
    return ('X-Synthetic: yes\nFrom: test@example.edu.tr\nSubject: %s\n'
            'Message-ID: <t%d@example.edu.tr>\n\n%s' % (subject or 'test %d' % n, n, body))


class Ctx:
    pass


def write_conf(ctx, name, server, tls='tls', user='kamu', **extra):
    port = server.imaps_port if tls == 'tls' else server.port
    ca_file = extra.pop('ca_file', server.ca_file)
    lines = ['[source]', 'type = imap', 'host = %s' % extra.pop('host', '127.0.0.1'),
             'port = %d' % port, 'tls = %s' % tls,
             'user = %s' % user, 'password_file = %s' % extra.pop('password_file', ctx.pwfile)]
    if ca_file:
        lines.append('ca_file = %s' % ca_file)
    lines += ['%s = %s' % kv for kv in extra.items()]
    path = os.path.join(ctx.dir, name + '.conf')
    with open(path, 'w') as f:
        f.write('\n'.join(lines) + '\n')
    return path


def peek(conf, *args, timeout=60):
    """Run srcpeek; (exit code, [json lines], stderr)."""
    p = subprocess.run([SRCPEEK, '-c', conf] + [str(a) for a in args],
                       capture_output=True, text=True, timeout=timeout)
    out = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
    return p.returncode, out, p.stderr


def msgs_of(out):
    return [o for o in out if 'uid' in o]


def error_of(out):
    errs = [o['error'] for o in out if 'error' in o]
    return errs[0] if errs else None


def setup():
    ctx = Ctx()
    users = {'kamu': PASSWORD, 'bulk': PASSWORD, 'empty': PASSWORD, 'early': PASSWORD}
    ctx.dv = Dovecot(users=users)
    ctx.plain = Dovecot(users=users, ssl=False, drop_caps=['MOVE', 'IDLE'])
    ctx.dir = ctx.dv.dir
    ctx.pwfile = os.path.join(ctx.dir, 'imap.pw')
    with open(ctx.pwfile, 'w') as f:
        f.write(PASSWORD + '\n')
    os.chmod(ctx.pwfile, 0o600)
    ctx.uids = [ctx.dv.append('kamu', msg(i)) for i in range(1, 6)]
    return ctx


def teardown(ctx):
    if ctx is None:
        return
    ctx.dv.stop()
    ctx.plain.stop()


@test
def implicit_tls_with_test_ca(ctx):
    rc, out, err = peek(write_conf(ctx, 'tls', ctx.dv))
    eq(rc, 0, 'exit code (%s)' % error_of(out))
    check(out[0]['uidvalidity'] > 0, 'uidvalidity reported')
    eq(out[0]['uidnext'], ctx.uids[-1] + 1, 'uidnext')
    got = msgs_of(out)
    eq([m['uid'] for m in got], ctx.uids, 'uids')
    eq(got[0]['first'], 'X-Synthetic: yes', 'first line')
    check(all(m['len'] == m['size'] and m['arrival'] > 0 for m in got), 'size and arrival')


@test
def starttls_with_test_ca(ctx):
    rc, out, err = peek(write_conf(ctx, 'starttls', ctx.dv, tls='starttls'))
    eq(rc, 0, 'exit code (%s)' % error_of(out))
    eq([m['uid'] for m in msgs_of(out)], ctx.uids, 'uids')


@test
def wrong_host_certificate_refused(ctx):
    ctx.dv.set_cert('wronghost')
    try:
        for tls in ('tls', 'starttls'):
            rc, out, err = peek(write_conf(ctx, 'wh', ctx.dv, tls=tls))
            eq(rc, 1, 'exit code')
            e = error_of(out) or ''
            check('does not match host 127.0.0.1' in e and 'not-this-host.example' in e,
                  'error names the hosts: %r' % e)
            check(not msgs_of(out), 'no message read')
    finally:
        ctx.dv.set_cert('good')


@test
def untrusted_ca_refused(ctx):
    ctx.dv.set_cert('untrusted')
    try:
        for tls in ('tls', 'starttls'):
            rc, out, err = peek(write_conf(ctx, 'ut', ctx.dv, tls=tls))
            eq(rc, 1, 'exit code')
            e = error_of(out) or ''
            check('certificate for 127.0.0.1 is not trusted: signer not found' in e,
                  'error says why: %r' % e)
    finally:
        ctx.dv.set_cert('good')


@test
def system_store_does_not_trust_test_ca(ctx):
    conf = write_conf(ctx, 'sys', ctx.dv, ca_file=None)
    rc, out, err = peek(conf)
    eq(rc, 1, 'exit code')
    check('not trusted' in (error_of(out) or ''), 'refused: %r' % error_of(out))


@test
def server_without_starttls_refused(ctx):
    rc, out, err = peek(write_conf(ctx, 'nostarttls', ctx.plain, tls='starttls'))
    eq(rc, 1, 'exit code')
    e = error_of(out) or ''
    check('offers no STARTTLS' in e and 'refusing' in e, 'error: %r' % e)


@test
def plain_only_on_loopback_when_allowed(ctx):
    ctx.plain.append('kamu', msg(1))
    rc, out, err = peek(write_conf(ctx, 'p1', ctx.plain, tls='none'))
    eq(rc, 1, 'refused without allow_plain_loopback')
    check('allow_plain_loopback' in (error_of(out) or ''), 'error: %r' % error_of(out))
    rc, out, err = peek(write_conf(ctx, 'p2', ctx.plain, tls='none',
                                   host='mail.example.invalid', allow_plain_loopback='yes'))
    eq(rc, 1, 'refused for a host that is not loopback')
    check('loopback' in (error_of(out) or ''), 'error: %r' % error_of(out))
    for host in ('127.0.0.1', 'localhost'):
        rc, out, err = peek(write_conf(ctx, 'p3', ctx.plain, tls='none', host=host,
                                       allow_plain_loopback='yes'))
        eq(rc, 0, 'plain on %s allowed (%s)' % (host, error_of(out)))
        check(len(msgs_of(out)) >= 1, 'message read')


@test
def wrong_password_fails_without_showing_it(ctx):
    bad = os.path.join(ctx.dir, 'bad.pw')
    secret = 'Yanlis-Parola-9'
    with open(bad, 'w') as f:
        f.write(secret + '\n')
    os.chmod(bad, 0o600)
    conf = write_conf(ctx, 'badpw', ctx.dv, password_file=bad)
    rc, out, err = peek(conf)
    eq(rc, 1, 'exit code')
    e = error_of(out) or ''
    check('LOGIN as kamu' in e, 'error names the step: %r' % e)
    blob = json.dumps(out) + err + ctx.dv.log_tail(200)
    check(secret not in blob and PASSWORD not in blob, 'password not shown anywhere')


@test
def password_file_readable_by_others_refused(ctx):
    loose = os.path.join(ctx.dir, 'loose.pw')
    with open(loose, 'w') as f:
        f.write(PASSWORD + '\n')
    os.chmod(loose, 0o644)
    conf = write_conf(ctx, 'loose', ctx.dv, password_file=loose)
    rc, out, err = peek(conf)
    eq(rc, 1, 'exit code')
    check('readable by others' in (error_of(out) or ''), 'error: %r' % error_of(out))


@test
def fetch_in_ranges(ctx):
    ctx.dv.populate('bulk', [msg(i) for i in range(1000)])   # straight into the Maildir
    want = ctx.dv.uids('bulk')
    eq(len(want), 1000, 'appended')
    conf = write_conf(ctx, 'bulk', ctx.dv, user='bulk')
    rc, out, err = peek(conf, '-b', 100, '-R')
    eq(rc, 0, 'exit code (%s)' % error_of(out))
    eq([x['uid'] for x in msgs_of(out)], want, 'every UID once, in order')
    same = [o['same'] for o in out if 'same' in o]
    check(len(same) == 11 and all(same), 'the same `after` again gives the same batch')
    rc, out, err = peek(conf, '-b', 100, '-a', want[499], '-n', 250)
    eq([x['uid'] for x in msgs_of(out)], want[500:750], 'from the middle, bounded')


@test
def after_filters_the_n_star_trap(ctx):
    conf = write_conf(ctx, 'after', ctx.dv)
    last = ctx.uids[-1]
    rc, out, err = peek(conf, '-a', last)
    eq(rc, 0, 'exit code')
    eq(msgs_of(out), [], 'nothing above the last UID (n:* returns the last message)')
    rc, out, err = peek(conf, '-a', last + 1000)
    eq(msgs_of(out), [], 'nothing far above it either')
    rc, out, err = peek(conf, '-a', last - 1)
    eq([x['uid'] for x in msgs_of(out)], [last], 'just the last one')


@test
def empty_mailbox(ctx):
    rc, out, err = peek(write_conf(ctx, 'empty', ctx.dv, user='empty'))
    eq(rc, 0, 'exit code (%s)' % error_of(out))
    eq(msgs_of(out), [], 'nothing')
    eq(out[0]['uidnext'], 1, 'uidnext')


def start_waiting(conf, *args):
    p = subprocess.Popen([SRCPEEK, '-c', conf] + [str(a) for a in args],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return p


def read_json_line(p, timeout):
    r, _, _ = select.select([p.stdout], [], [], timeout)
    if not r:
        raise AssertionError('srcpeek said nothing for %.0fs' % timeout)
    line = p.stdout.readline()
    if not line:
        raise AssertionError('srcpeek ended: %s' % p.stderr.read())
    return json.loads(line)


def read_until(p, key, timeout=15):
    end = time.monotonic() + timeout
    seen = []
    while time.monotonic() < end:
        o = read_json_line(p, end - time.monotonic())
        seen.append(o)
        if key in o:
            return o, seen
    raise AssertionError('no %r from srcpeek; saw %r' % (key, seen))


@test
def idle_wakes_on_append(ctx):
    conf = write_conf(ctx, 'idle', ctx.dv)
    p = start_waiting(conf, '-w', 30)
    try:
        o, seen = read_until(p, 'waiting')
        check(o['waiting'] >= 0, 'IDLE gives an fd')
        time.sleep(0.1)
        t0 = time.time()
        uid = ctx.dv.append('kamu', msg(99, 'idle test'))
        ctx.uids.append(uid)
        woke, _ = read_until(p, 'woke_at', timeout=30)
        got = read_json_line(p, 5)
        eq(got['uid'], uid, 'the new message fetched after the wake-up')
        check(woke['maybe_new'], 'wait_done says new mail')
        print('# IDLE: APPEND to wake-up %.0f ms (Dovecot delays ~500 ms); '
              'wake-up to message in memory %d us wall, %d us CPU'
              % ((woke['woke_at'] - t0) * 1000, woke['ours_us'], woke['cpu_us']))
        eq(p.wait(timeout=40), 0, 'exit code')
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@test
def mail_announced_before_idle_wakes_at_once(ctx):
    # Mail that arrives while the client is busy is announced in the answer
    # to its next command (here a STORE); IDLE will not announce it again.
    first = ctx.dv.append('early', msg(1))
    conf = write_conf(ctx, 'early', ctx.dv, user='early')
    p = start_waiting(conf, '-S', 1, '-W', 3)
    try:
        read_until(p, 'sleeping')
        uid = ctx.dv.append('early', msg(2, 'while busy'))
        o, _ = read_until(p, 'remarked')
        eq(o['remarked'], first, 'remarked the first message')
        seen = []
        while True:
            o = read_json_line(p, 10)
            seen.append(o)
            if 'timeout' in o or 'uid' in o or 'error' in o:
                break
        check('timeout' not in o, 'woke without a new IDLE notification: %r' % seen)
        eq(o.get('uid'), uid, 'and fetched the message: %r' % seen)
        eq(p.wait(timeout=10), 0, 'exit code')
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


@test
def no_idle_means_polling(ctx):
    confs = [write_conf(ctx, 'noidle1', ctx.dv, idle='no'),
             write_conf(ctx, 'noidle2', ctx.plain, tls='none', allow_plain_loopback='yes')]
    for conf in confs:
        rc, out, err = peek(conf, '-a', 1000000, '-W', 1)
        eq(rc, 0, 'exit code (%s)' % error_of(out))
        w = [o['waiting'] for o in out if 'waiting' in o]
        eq(w, [-1], 'no fd to wait on: the caller polls')
        check(any(o.get('maybe_new') is True for o in out), 'wait_done says: look')


@test
def mark_handled_sets_seen(ctx):
    conf = write_conf(ctx, 'mark', ctx.dv)
    first = ctx.uids[0]
    rc, out, err = peek(conf, '-a', first - 1, '-n', 2, '-b', 2, '-m', 'handled')
    eq(rc, 0, 'exit code (%s)' % error_of(out))
    eq([o['marked'] for o in out if 'marked' in o], [2], 'one mark_many of 2')
    for uid in ctx.uids[:2]:
        check('\\Seen' in ctx.dv.flags('kamu', uid), 'UID %d is \\Seen' % uid)
    check('\\Seen' not in ctx.dv.flags('kamu', ctx.uids[2]), 'the next one is not')


def check_move_other(ctx, server, name, folder, imap_name):
    user = 'kamu'
    uids = [server.append(user, msg(200 + i, 'other %d' % i)) for i in range(3)]
    conf = write_conf(ctx, name, server, tls='none' if not server.ssl else 'tls',
                      allow_plain_loopback='yes', other_folder=folder)
    rc, out, err = peek(conf, '-a', uids[0] - 1, '-m', 'other')
    eq(rc, 0, 'exit code (%s)' % error_of(out))
    left = server.uids(user)
    check(not set(uids) & set(left), 'moved out of INBOX: %r' % left)
    moved = server.folder_messages(user, imap_name)
    subjects = [b'Subject: other %d' % i for i in range(3)]
    check(all(any(s in raw for _, raw in moved) for s in subjects),
          'all three in %s (created)' % imap_name)


@test
def mark_other_moves_to_other_folder(ctx):
    # A Turkish folder name goes to the server in modified UTF-7.
    check_move_other(ctx, ctx.dv, 'other', 'Diğer', 'Di&AR8-er')


@test
def mark_other_without_move_capability(ctx):
    check_move_other(ctx, ctx.plain, 'other-nomove', 'Diger', 'Diger')


@test
def mark_other_without_other_folder_leaves_it(ctx):
    uid = ctx.dv.append('kamu', msg(300))
    conf = write_conf(ctx, 'noother', ctx.dv)
    rc, out, err = peek(conf, '-a', uid - 1, '-m', 'other')
    eq(rc, 0, 'exit code')
    check(uid in ctx.dv.uids('kamu'), 'still in INBOX')
    check('\\Seen' not in ctx.dv.flags('kamu', uid), 'and untouched')


@test
def uidvalidity_change_is_visible(ctx):
    ctx.dv.create('kamu', 'Watched')
    ctx.dv.append('kamu', msg(1), folder='Watched')
    conf = write_conf(ctx, 'watched', ctx.dv, folder='Watched')
    rc, out, err = peek(conf)
    eq(rc, 0, 'exit code (%s)' % error_of(out))
    before = out[0]['uidvalidity']
    time.sleep(1.1)          # Dovecot's UIDVALIDITY is a time stamp
    ctx.dv.recreate('kamu', 'Watched')
    ctx.dv.append('kamu', msg(2), folder='Watched')
    rc, out, err = peek(conf)
    eq(rc, 0, 'exit code')
    check(out[0]['uidvalidity'] != before, 'UIDVALIDITY changed (%d)' % before)
    eq([m['uid'] for m in msgs_of(out)], [1], 'UIDs start again')


@test
def oversize_message_returned_without_body(ctx):
    small1 = ctx.dv.append('kamu', msg(400))
    big = ctx.dv.append('kamu', msg(401, size=6000))
    small2 = ctx.dv.append('kamu', msg(402))
    conf = write_conf(ctx, 'oversize', ctx.dv, max_message_size='2k')
    rc, out, err = peek(conf, '-a', small1 - 1)
    eq(rc, 0, 'exit code (%s)' % error_of(out))
    got = {m['uid']: m for m in msgs_of(out)}
    eq(sorted(got), [small1, big, small2], 'all three returned, in order')
    check(got[big]['oversize'] and got[big]['len'] == 0 and got[big]['size'] > 6000,
          'the big one has no body and its size: %r' % got[big])
    check(not got[small1]['oversize'] and got[small1]['len'] > 0, 'small ones read')
    check('over max_message_size' in err, 'logged: %r' % err)


@test
def server_killed_then_back(ctx):
    conf = write_conf(ctx, 'kill', ctx.dv)
    last = ctx.uids[-1]
    p = start_waiting(conf, '-a', last, '-w', 40, '-k', 40)
    try:
        read_until(p, 'waiting')
        ctx.dv.kill()
        o, _ = read_until(p, 'error', timeout=30)
        check('wait' in o['error'], 'wait fails when the server dies: %r' % o)
        ctx.dv.start()
        o, _ = read_until(p, 'reconnected', timeout=40)
        check(o['uidvalidity'] > 0, 'reconnected and selected')
        eq(p.wait(timeout=10), 0, 'exit code')
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    rc, out, err = peek(conf, '-a', last - 1)
    eq(rc, 0, 'a new connection works too (%s)' % error_of(out))


if __name__ == '__main__':
    if not os.access(SRCPEEK, os.X_OK):
        print('1..0 # SKIP %s not built' % SRCPEEK)
        sys.exit(0)
    run(setup=setup, teardown=teardown)
