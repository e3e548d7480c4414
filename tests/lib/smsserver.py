"""An HTTP server standing in for an SMS provider's API, for tests.

    from smsserver import SmsServer
    srv = SmsServer().start()              # 127.0.0.1, a free port
    url = srv.url('/v1/sms')               # http://127.0.0.1:PORT/v1/sms
    ... the program POSTs there ...
    reqs = srv.wait_for(3)                 # bounded wait for 3 requests
    reqs[0].json, reqs[0].headers['authorization'], reqs[0].to
    srv.mode('status', code=500, count=1)  # the next request gets 500
    srv.mode('delay', ms=3000, to='+905321112233')
    srv.stop()

A ThreadingHTTPServer speaking HTTP/1.1 with keep-alive (every reply has
a Content-Length), one thread per connection, and a handler with
disable_nagle_algorithm = True: without it Nagle's algorithm and the
client's delayed ACK hold every keep-alive reply ~40 ms.

Recording: each request becomes a Request with method, path, query
(dict of lists), headers (lower-cased names), body (bytes), json (parsed
if the body is JSON, else None), form (dict of first values if the body is
form-encoded, else None), to (the recipient found in the json "to", the
form "To", İleti Merkezi's request.order.message.receipents.number[0], or
the query "to"), client (the connection's address: count them to see
keep-alive at work) and start / end times (time.monotonic()). `requests` is
a thread-safe snapshot; max_in_flight is the largest number of requests
the server was handling at once.

Replies. By default 200 with {"id": "sms-<n>"}. ok_reply(status, fn)
changes the success reply: fn(request, n) returns the JSON object to send
(e.g. Twilio's 201 {"sid": ...} or İleti Merkezi's envelope).
mode(kind, count=None, to=None, **params) adds a rule; the first rule that
matches a request (by recipient if `to` is given) and still has count
left decides the reply:
  'ok'                       the success reply (to exempt some numbers)
  'status'    code=N, body=  reply N with body (default {"error": ...})
  'retry'     code=429, after='5' | an HTTP date    429 with Retry-After
  'delay'     ms=N           wait, then reply as if no rule matched; a
                             client that timed out meanwhile is ignored
  'malformed'                200 with a body that is not JSON
  'close'                    close the connection without replying
clear() removes the rules.

Ceiling (bench/channels.py on the shared 2-core development machine, load
3 to 5, tiny JSON replies): 2,900 to 5,100 requests/s to a keep-alive
libcurl client with 8 connections (which itself spends ~50 us of CPU a
request); 1,500 to 4,700/s to Python http.client clients (1 or 8
keep-alive connections, in another process). A figure of a few thousand
per second measures this server, not the client.
"""
import email.utils
import json
import socket
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Request:
    def __init__(self, method, path, query, headers, body, start, client=None):
        self.client = client          # (host, port): one per connection
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
        self.start = start
        self.end = None
        self.json = None
        self.form = None
        ctype = headers.get('content-type', '')
        if body:
            if 'json' in ctype:
                try:
                    self.json = json.loads(body.decode('utf-8'))
                except ValueError:
                    self.json = None
            elif 'x-www-form-urlencoded' in ctype:
                self.form = {k: v[0] for k, v in
                             urllib.parse.parse_qs(body.decode('utf-8'), keep_blank_values=True).items()}
        self.to = self._find_to()

    def _find_to(self):
        j = self.json
        if isinstance(j, dict):
            if 'to' in j:
                return j['to']
            try:
                return j['request']['order']['message']['receipents']['number'][0]
            except (KeyError, IndexError, TypeError):
                pass
        if self.form and 'To' in self.form:
            return self.form['To']
        if 'to' in self.query:
            return self.query['to'][0]
        return None

    def __repr__(self):
        return '<Request %s %s to=%s>' % (self.method, self.path, self.to)


class _Rule:
    def __init__(self, kind, count, to, params):
        self.kind, self.count, self.to, self.params = kind, count, to, params


class _Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    disable_nagle_algorithm = True
    server_version = 'eimzad-test-sms/1'

    def log_message(self, fmt, *args):     # quiet
        pass

    def _reply(self, code, body, headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode('utf-8')
        self.send_response(code)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Content-Length', str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def _handle(self):
        srv = self.server.sms
        start = time.monotonic()
        parsed = urllib.parse.urlsplit(self.path)
        n = int(self.headers.get('Content-Length') or 0)
        body = self.rfile.read(n) if n else b''
        req = Request(self.command, parsed.path, urllib.parse.parse_qs(parsed.query),
                      {k.lower(): v for k, v in self.headers.items()}, body, start,
                      self.client_address)
        srv._begin(req)
        try:
            self._respond(srv, req)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        finally:
            req.end = time.monotonic()
            srv._end()

    def _respond(self, srv, req):
        rule = srv._take(req)
        while rule is not None and rule.kind == 'delay':
            time.sleep(rule.params.get('ms', 0) / 1000.0)
            rule = srv._take(req, skip_delay=True)
        kind = rule.kind if rule else 'ok'
        if kind == 'ok':
            code, body = srv._ok(req)
            self._reply(code, body)
        elif kind == 'status':
            self._reply(rule.params['code'],
                        rule.params.get('body', {'error': 'test rule %d' % rule.params['code']}))
        elif kind == 'retry':
            self._reply(rule.params.get('code', 429), {'error': 'slow down'},
                        [('Retry-After', str(rule.params.get('after', '5')))])
        elif kind == 'malformed':
            self._reply(200, b'{"id": "unterminated')
        elif kind == 'close':
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)

    do_POST = do_GET = do_PUT = _handle


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):    # client went away: fine
        pass


class SmsServer:
    def __init__(self, tls_context=None):
        self._lock = threading.Lock()
        self._requests = []
        self._rules = []
        self._count = 0
        self._in_flight = 0
        self.max_in_flight = 0
        self._ok_status = 200
        self._ok_fn = lambda req, n: {'id': 'sms-%d' % n}
        self._httpd = _Server(('127.0.0.1', 0), _Handler)
        self._httpd.sms = self
        if tls_context is not None:
            self._httpd.socket = tls_context.wrap_socket(self._httpd.socket, server_side=True)
        self.scheme = 'https' if tls_context is not None else 'http'
        self.port = self._httpd.server_address[1]
        self._thread = None

    def url(self, path='/sms', host='127.0.0.1'):
        return '%s://%s:%d%s' % (self.scheme, host, self.port, path)

    def start(self):
        self._thread = threading.Thread(target=self._httpd.serve_forever,
                                        kwargs={'poll_interval': 0.05}, daemon=True)
        self._thread.start()
        return self

    def stop(self):
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join(5)
            self._thread = None
        self._httpd.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    # -- configuration --

    def ok_reply(self, status=200, fn=None):
        with self._lock:
            self._ok_status = status
            if fn is not None:
                self._ok_fn = fn

    def mode(self, kind, count=None, to=None, **params):
        if kind not in ('ok', 'status', 'retry', 'delay', 'malformed', 'close'):
            raise ValueError('unknown mode %r' % kind)
        with self._lock:
            self._rules.append(_Rule(kind, count, to, params))

    def clear(self):
        with self._lock:
            self._rules.clear()

    def reset(self):
        """Forget recorded requests (rules stay)."""
        with self._lock:
            self._requests.clear()
            self.max_in_flight = 0

    # -- records --

    @property
    def requests(self):
        with self._lock:
            return list(self._requests)

    def wait_for(self, n, timeout=10.0, finished=True):
        """Wait until n requests arrived (and, by default, were answered)."""
        end = time.monotonic() + timeout
        while True:
            reqs = self.requests
            done = [r for r in reqs if r.end is not None] if finished else reqs
            if len(done) >= n:
                return reqs
            if time.monotonic() > end:
                raise TimeoutError('smsserver: %d of %d requests after %.1fs'
                                   % (len(done), n, timeout))
            time.sleep(0.01)

    # -- internals (handler threads) --

    def _begin(self, req):
        with self._lock:
            self._requests.append(req)
            self._in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self._in_flight)

    def _end(self):
        with self._lock:
            self._in_flight -= 1

    def _take(self, req, skip_delay=False):
        with self._lock:
            for r in self._rules:
                if skip_delay and r.kind == 'delay':
                    continue
                if r.to is not None and r.to != req.to:
                    continue
                if r.count is not None:
                    if r.count <= 0:
                        continue
                    r.count -= 1
                return r
        return None

    def _ok(self, req):
        with self._lock:
            self._count += 1
            n = self._count
            status, fn = self._ok_status, self._ok_fn
        return status, fn(req, n)


def http_date(seconds_from_now):
    """An HTTP date (for Retry-After) that many seconds ahead."""
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


if __name__ == '__main__':
    with SmsServer() as s:
        print('listening on', s.url(), flush=True)
        try:
            while True:
                time.sleep(1)
        except KeyboardInterrupt:
            pass
