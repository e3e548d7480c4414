"""An SMTP server for tests: records what it is sent, fails on request.

    from smtpsink import SmtpSink
    sink = SmtpSink(tls=(cert, key), auth=('eimza', 's3cret'))
    sink = SmtpSink(tls=(cert, key), implicit_tls=True)   # TLS from the start (465)
    sink.start()                      # 127.0.0.1, a free port: sink.port
    ... point the program at 127.0.0.1:sink.port ...
    msgs = sink.wait_for(2)           # bounded wait for 2 accepted messages
    msgs[0].headers['Subject']        # decoded (email.policy.default)
    msgs[0].body()                    # decoded text/plain part
    sink.fail('rcpt', code=550, match='bad@')   # refuse some recipients
    sink.fail('data', code=451, count=1)        # the next DATA gets 451
    sink.stop()

Built on aiosmtpd's Controller, running its asyncio loop in a thread.

Recording: every accepted message becomes a Message with the envelope
(mail_from, rcpt_tos), the raw bytes as received (CRLF line ends), the
parsed email.message.EmailMessage (policy=default: headers decoded from
RFC 2047), the arrival time (time.time()), and the session's facts: tls
(STARTTLS was done, or the connection was TLS from the start), auth_user
(the login that succeeded, else None) and peer. `messages` is a
snapshot list, thread-safe; wait_for(n, timeout) polls it with a bound.
`auth_attempts` lists (mechanism, login, ok) and `sni` the server names
clients asked for in their TLS handshakes.

Options:
  tls=(cert, key)      offer STARTTLS with this certificate (see testca.py)
  implicit_tls=True    with tls: no STARTTLS; every connection is TLS from its
                       first byte (implicit TLS, as on port 465), and AUTH
                       is offered at once; `sni` then lists only clients'
                       names (not the start-up probe's)
  require_tls=True     refuse MAIL before STARTTLS (530)
  auth=(user, pw)      offer AUTH PLAIN and LOGIN; only this pair succeeds;
                       MAIL without a successful AUTH gets 530
  auth_require_tls     offer AUTH only after STARTTLS (default: True if
                       tls is given)
  hostname             the name in the greeting (default "sink.test"; the
                       default of aiosmtpd would do a DNS lookup)

Failure modes, settable while running with fail(stage, ...):
  stage 'mail' | 'rcpt' | 'data'   reply `code` (451, 550, ...) instead
                                   of accepting
  stage 'greeting'                 reply `code` (421) to the connection
                                   and close it
  stage 'drop_data'                answer DATA with 354, then close the
                                   connection before the data is in
  count=K                          apply to the next K matching commands
                                   (default: until clear())
  match='text'                     only recipients containing text
                                   (rcpt), or the envelope's recipients
                                   (data, drop_data)
  delay=seconds                    wait this long before replying (with
                                   code=None the command then succeeds)
clear() removes every rule. Accepted messages get
"250 2.0.0 Ok: queued as Q<n>" so clients can record a queue id.

Speed (bench/channels.py on the shared 2-core development machine, load
3 to 5): one session of 1,000 small messages arrives at 280 to 560
messages/s from libesmtp (aiosmtpd offers no PIPELINING: four round trips
a message), 230 to 380/s from Python's smtplib. The client spends about
140 us of CPU a message, so these figures are the sink's ceiling, not the
client's.
"""
import asyncio
import email
import email.policy
import logging
import socket
import threading
import time
import warnings

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, LoginPassword


# aiosmtpd logs every client's TLS or protocol error with a traceback on
# 'mail.log'; tests provoke those on purpose. Set EIMZA_SINK_LOG=1 to see them.
import os as _os
if not _os.environ.get('EIMZA_SINK_LOG'):
    logging.getLogger('mail.log').setLevel(logging.CRITICAL)
# aiosmtpd 1.4 warns about its own use of Session.login_data.
warnings.filterwarnings('ignore', message='Session.login_data is deprecated')


def free_port():
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Message:
    def __init__(self, mail_from, rcpt_tos, raw, tls, auth_user, peer):
        self.mail_from = mail_from
        self.rcpt_tos = list(rcpt_tos)
        self.raw = raw
        self.time = time.time()
        self.tls = tls
        self.auth_user = auth_user
        self.peer = peer
        self.msg = email.message_from_bytes(raw, policy=email.policy.default)

    @property
    def headers(self):
        return self.msg

    def body(self, subtype='plain'):
        part = self.msg.get_body(preferencelist=(subtype,))
        return part.get_content() if part is not None else None

    def __repr__(self):
        return '<Message from %s to %s: %r>' % (self.mail_from, self.rcpt_tos,
                                                 self.msg.get('Subject'))


class _Rule:
    def __init__(self, stage, code, count, match, delay):
        self.stage, self.code, self.count, self.match, self.delay = stage, code, count, match, delay


def _session_tls(session):
    return session.ssl is not None or getattr(session, '_sink_tls', False)


class _Handler:
    """aiosmtpd hooks; every decision goes through the sink's rules."""

    def __init__(self, sink):
        self.sink = sink

    async def _apply(self, stage, subject):
        rule = self.sink._take(stage, subject)
        if rule is None:
            return None
        if rule.delay:
            await asyncio.sleep(rule.delay)
        return ('%d %s' % (rule.code, 'Rejected by test rule')) if rule.code else None

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        # Without auth=..., offer no AUTH at all (aiosmtpd would offer
        # mechanisms that always fail).
        session.host_name = hostname
        if not self.sink.auth:
            responses = [r for r in responses if not r.startswith('250-AUTH')]
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        if self.sink.auth and not session.authenticated:
            return '530 5.7.0 Authentication required'
        if self.sink.require_tls and not _session_tls(session):
            return '530 5.7.0 Must issue a STARTTLS command first'
        reply = await self._apply('mail', address)
        if reply:
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return '250 OK'

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        reply = await self._apply('rcpt', address)
        if reply:
            return reply
        envelope.rcpt_tos.append(address)
        return '250 OK'

    async def handle_DATA(self, server, session, envelope):
        reply = await self._apply('data', ' '.join(envelope.rcpt_tos))
        if reply:
            return reply
        qid = self.sink._record(envelope, session)
        return '250 2.0.0 Ok: queued as %s' % qid


class _SinkSMTP(SMTP):
    """aiosmtpd's server with two extra failure modes: a refusing greeting
    and a connection dropped in the middle of DATA."""

    def __init__(self, sink, *args, **kwargs):
        self._sink = sink
        super().__init__(*args, **kwargs)

    def connection_made(self, transport):
        first = self.transport is None   # not the switch after STARTTLS
        super().connection_made(transport)
        if first:
            # implicit TLS: the transport is TLS before the first byte
            self.session._sink_tls = transport.get_extra_info('ssl_object') is not None

    async def _handle_client(self):
        rule = self._sink._take('greeting', '')
        if rule is not None:
            if rule.delay:
                await asyncio.sleep(rule.delay)
            if rule.code:
                await self.push('%d sink.test Service not available, closing' % rule.code)
                self.transport.close()
                return
        await super()._handle_client()

    async def smtp_DATA(self, arg):
        rcpts = ' '.join(self.envelope.rcpt_tos) if self.envelope else ''
        if self.envelope and self.envelope.rcpt_tos:
            rule = self._sink._take('drop_data', rcpts)
            if rule is not None:
                await self.push('354 End data with <CR><LF>.<CR><LF>')
                await asyncio.sleep(rule.delay or 0.05)
                self.transport.close()
                return
        await super().smtp_DATA(arg)


class _Controller(Controller):
    def __init__(self, sink, *args, **kwargs):
        self._sink = sink
        super().__init__(*args, **kwargs)

    def factory(self):
        return _SinkSMTP(self._sink, self.handler, **self.SMTP_kwargs)


class SmtpSink:
    def __init__(self, tls=None, require_tls=False, auth=None, auth_require_tls=None,
                 hostname='sink.test', implicit_tls=False):
        if implicit_tls and not tls:
            raise ValueError('implicit_tls needs tls=(cert, key)')
        self.tls = tls
        self.implicit_tls = implicit_tls
        self.require_tls = require_tls
        self.auth = auth
        self.sni = []
        self.auth_attempts = []
        self._lock = threading.Lock()
        self._messages = []
        self._rules = []
        self._qid = 0
        self.port = None
        kwargs = dict(server_hostname=hostname, ident='eimzad test sink',
                      data_size_limit=10 * 1024 * 1024)
        self._ssl_context = None    # implicit TLS: the listener's own context
        if tls:
            import ssl
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(tls[0], tls[1])
            ctx.sni_callback = self._on_sni
            if implicit_tls:
                # aiosmtpd requires TLS for AUTH only after STARTTLS
                self._ssl_context = ctx
                auth_require_tls = False
            else:
                kwargs['tls_context'] = ctx
        if auth:
            kwargs['authenticator'] = self._authenticate
            kwargs['auth_require_tls'] = bool(tls) if auth_require_tls is None else auth_require_tls
        else:
            kwargs['auth_require_tls'] = False
        self._kwargs = kwargs
        self._controller = None

    # -- lifecycle --

    def start(self):
        last = None
        for _ in range(5):         # the free port may be taken meanwhile
            port = free_port()
            c = _Controller(self, _Handler(self), hostname='127.0.0.1', port=port,
                            ready_timeout=10, ssl_context=self._ssl_context, **self._kwargs)
            try:
                c.start()
            except Exception as e:  # pragma: no cover - a port race
                last = e
                continue
            self._controller, self.port = c, port
            if self.implicit_tls:
                with self._lock:
                    self.sni.clear()    # the controller's own start-up probe
            return self
        raise RuntimeError('smtpsink: cannot start: %s' % last)

    def stop(self):
        if self._controller is not None:
            try:
                self._controller.stop()
            finally:
                self._controller = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- records --

    @property
    def messages(self):
        with self._lock:
            return list(self._messages)

    def wait_for(self, n, timeout=10.0):
        end = time.monotonic() + timeout
        while True:
            msgs = self.messages
            if len(msgs) >= n:
                return msgs
            if time.monotonic() > end:
                raise TimeoutError('smtpsink: %d of %d messages after %.1fs'
                                   % (len(msgs), n, timeout))
            time.sleep(0.01)

    def reset(self):
        """Forget recorded messages and attempts (rules stay)."""
        with self._lock:
            self._messages.clear()
            self.auth_attempts.clear()
            self.sni.clear()

    # -- failure modes --

    def fail(self, stage, code=None, count=None, match=None, delay=0.0):
        if stage not in ('mail', 'rcpt', 'data', 'greeting', 'drop_data'):
            raise ValueError('unknown stage %r' % stage)
        with self._lock:
            self._rules.append(_Rule(stage, code, count, match, delay))

    def clear(self):
        with self._lock:
            self._rules.clear()

    # -- internals (called on the server's loop thread) --

    def _take(self, stage, subject):
        with self._lock:
            for r in self._rules:
                if r.stage != stage or (r.match and r.match not in subject):
                    continue
                if r.count is not None:
                    if r.count <= 0:
                        continue
                    r.count -= 1
                return r
        return None

    def _record(self, envelope, session):
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode('utf-8', 'surrogateescape')
        m = Message(envelope.mail_from, envelope.rcpt_tos, raw, _session_tls(session),
                    getattr(session, '_sink_user', None), session.peer)
        with self._lock:
            self._qid += 1
            self._messages.append(m)
            return 'Q%05X' % self._qid

    def _authenticate(self, server, session, envelope, mechanism, auth_data):
        ok = False
        login = None
        if isinstance(auth_data, LoginPassword):
            login = auth_data.login.decode('utf-8', 'replace')
            ok = (login, auth_data.password.decode('utf-8', 'replace')) == tuple(self.auth)
        with self._lock:
            self.auth_attempts.append((mechanism, login, ok))
        if ok:
            session._sink_user = login
        # handled=False: let aiosmtpd send 535 itself on failure
        return AuthResult(success=ok, handled=False)

    def _on_sni(self, sslobj, server_name, ctx):
        with self._lock:
            self.sni.append(server_name)
        return None


if __name__ == '__main__':
    # A quick manual run: print what arrives until interrupted.
    with SmtpSink() as s:
        print('listening on 127.0.0.1:%d' % s.port, flush=True)
        seen = 0
        try:
            while True:
                msgs = s.messages
                for m in msgs[seen:]:
                    print(m, flush=True)
                seen = len(msgs)
                time.sleep(0.2)
        except KeyboardInterrupt:
            pass
