#!/usr/bin/python3
"""One test server in a process of its own, for the latency figure.

    servers.py sms
    servers.py smtp CERT KEY USER PASSWORD      (STARTTLS + AUTH)

The SMS API (tests/lib/smsserver.py) and the SMTP server
(tests/lib/smtpsink.py, aiosmtpd) are Python: run in the benchmark's own
process they would share one interpreter lock with each other and with
the driver, so that an SMTP handshake (TLS in Python) held up the SMS
server's answer to a client that sends both at once (eimzad does; the
sequential peer does not). Each runs here alone instead.

Protocol on stdout, one JSON object a line: first {"port": N, "url": U},
then one line per arrival: {"to": recipient, "t": time.monotonic()} with
t the time the SMS request's headers were read, or the time the SMTP
DATA ended (both on the CLOCK_MONOTONIC every process shares). Arrivals
are printed by a thread polling every 10 ms, apart from the handlers.
The server stops at EOF on stdin.
"""
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                'tests', 'lib'))


def emit(obj):
    sys.stdout.write(json.dumps(obj) + '\n')
    sys.stdout.flush()


def watch(get, stop):
    seen = 0
    while not stop.is_set():
        items = get()
        for to, t in items[seen:]:
            if t is not None:
                emit({'to': to, 't': t})
        seen = len(items)
        stop.wait(0.01)


def main():
    stop = threading.Event()
    if sys.argv[1] == 'sms':
        from smsserver import SmsServer
        srv = SmsServer().start()
        emit({'port': srv.port, 'url': srv.url('/v1/sms')})
        get = lambda: [(r.to, r.start) for r in srv.requests]  # noqa: E731
    else:
        from smtpsink import SmtpSink
        cert, key, user, pw = sys.argv[2:6]
        srv = SmtpSink(tls=(cert, key), auth=(user, pw))
        stamps = []
        record = srv._record

        def stamped(envelope, session):
            t = time.monotonic()
            qid = record(envelope, session)
            stamps.extend((r, t) for r in envelope.rcpt_tos)
            return qid
        srv._record = stamped
        srv.start()
        emit({'port': srv.port})
        get = lambda: list(stamps)  # noqa: E731
    th = threading.Thread(target=watch, args=(get, stop), daemon=True)
    th.start()
    sys.stdin.read()                 # until the driver closes our stdin
    stop.set()
    th.join(1)
    srv.stop()


if __name__ == '__main__':
    main()
