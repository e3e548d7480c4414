"""The whole seed, for 10 applicants of 2 units, on real servers (Dovecot,
an SMTP server, the SMS API), with the clock set by `eimzad --once --now`
so weeks of process run in seconds. Each step appends the mail of that
moment (dated then), runs eimzad once, and asserts every notice that went
out (kind, medium, recipient, time) and that nothing else did:

  request letters -> decision by mail reply (one refused with a reason
  that reaches its unit) -> sent to KAMUSM -> KAMUSM's link mail ->
  reminders while taahhütnames are missing -> escalation -> commitment ->
  posted -> shipped -> activation (one refused: not shipped yet) -> an
  access password that expires, with the two-month alarm.

Every run of --once is a restart; one step is run twice to show that a
restart sends nothing again."""
import calendar
import email.utils
import json
import os
import time

from eimzad_env import (EBYS, ESIGN, Env, istanbul as local, kamusm_credentials, kamusm_info,
                        kamusm_shipped, mail, officer_reply, request_letter)
from tap import check, eq, run, test

HEAD = 'bidb.head@example.edu.tr'
FEN = 'fen.dekanlik@example.edu.tr'
MUH = 'muh.dekanlik@example.edu.tr'
YEAR = 2026
TAGS = ['EIMZA-%d-%04d' % (YEAR, i) for i in range(1, 11)]   # TAGS[0] is app 1


def tc(n):
    """A synthetic TC kimlik number that passes the checksum."""
    d = [int(c) for c in '%09d' % (200000000 + n)]
    d10 = ((d[0] + d[2] + d[4] + d[6] + d[8]) * 7 - (d[1] + d[3] + d[5] + d[7])) % 10
    d11 = (sum(d) + d10) % 10
    return ''.join(map(str, d)) + str(d10) + str(d11)


NAMES = ['Ayşe Fen', 'Bülent Fen', 'Cemile Fen', 'Doğan Fen', 'Eşref Fen',
         'Fadime Müh', 'Gökhan Müh', 'Hülya Müh', 'İsmail Müh', 'Jale Müh']
EMAILS = ['app%d@example.edu.tr' % i for i in range(1, 11)]
MOBILES = ['+9055500001%02d' % i for i in range(1, 11)]


def rows(first, last):
    return ['%s;%s;%s;0%s;Şef' % (NAMES[i], tc(i), EMAILS[i], MOBILES[i][3:])
            for i in range(first, last)]


class Scenario:
    def __init__(self):
        self.env = Env(extra='[sms]\nbody_template = {"to":"{{to}}","text":"{{text}}",'
                             '"id":"{{id}}"}\n')
        self.seen_mail = 0
        self.seen_sms = 0
        self.msgids = {}

    def put(self, raw, when):
        """APPEND mail dated `when`, arriving then (INTERNALDATE)."""
        self.env.dv.append('eimza', raw, date=local(when))

    def notice(self, nid):
        with open(os.path.join(self.env.dir, 'state', 'notices', nid + '.json')) as f:
            return json.load(f)

    def step(self, when, expected, what):
        """Run eimzad --once at `when`; the notices sent must be exactly
        `expected`, a list of (kind, medium, recipient)."""
        rc, out = self.env.once(when)
        eq(rc, 0, '%s: eimzad --once exit code (output: %s)' % (what, out[-800:]))
        time.sleep(0.2)
        mails = self.env.sink.messages[self.seen_mail:]
        smss = self.env.sms.requests[self.seen_sms:]
        self.seen_mail += len(mails)
        self.seen_sms += len(smss)
        got = []
        t0 = local(when)
        for m in mails:
            nid = m.headers['X-Eimza-Notice']
            n = self.notice(nid)
            eq(m.rcpt_tos, [n['to']], '%s: envelope recipient of %s' % (what, nid))
            got.append((n['kind'], 'mail', n['to']))
            self.msgids[nid] = m.headers['Message-ID'].strip('<>')
            self.check_time(n, t0, what)
        for r in smss:
            n = self.notice(r.json['id'])
            eq(r.json['to'], n['to'], '%s: SMS recipient' % what)
            got.append((n['kind'], 'sms', n['to']))
            self.check_time(n, t0, what)
        exp = sorted(expected)
        if sorted(got) != exp:
            raise AssertionError('%s: notices differ\n  expected %s\n  got      %s'
                                 % (what, exp, sorted(got)))
        return mails, smss

    @staticmethod
    def check_time(n, t0, what):
        done = calendar.timegm(time.strptime(n['done_at'], '%Y-%m-%dT%H:%M:%SZ'))
        check(t0 <= done <= t0 + 120, '%s: notice %s sent at %s, not at the step\'s time'
              % (what, n['id'], n['done_at']))

    def state(self, i):
        return self.env.app(TAGS[i - 1])['state']

    def msgid_of(self, mails, kind, tag):
        for m in mails:
            n = self.notice(m.headers['X-Eimza-Notice'])
            if n['kind'] == kind and tag in m.headers['Subject']:
                return m.headers['Message-ID'].strip('<>')
        raise AssertionError('no %s notice about %s' % (kind, tag))


def setup():
    return Scenario()


def teardown(s):
    if s:
        s.env.close()


S = {}


def officer(frm, first_line, when, subject='Re: bildirim', in_reply_to=None):
    return officer_reply(frm, subject, first_line, in_reply_to='<%s>' % in_reply_to
                         if in_reply_to else None,
                         date=email.utils.formatdate(local(when), localtime=True))


def dated(when):
    return email.utils.formatdate(local(when), localtime=True)


@test
def step1_request_letters_ask_for_decisions(s):
    s.put(request_letter('Fen Fakültesi Dekanlığı <%s>' % FEN, 'Fen Fakültesi', rows(0, 5),
                         date=dated('2026-03-02 09:40')), '2026-03-02 09:40')
    s.put(request_letter('Mühendislik Fakültesi Dekanlığı <%s>' % MUH, 'Mühendislik Fakültesi',
                         rows(5, 10), date=dated('2026-03-02 09:45')), '2026-03-02 09:45')
    mails, _ = s.step('2026-03-02 10:00', [('decision_request', 'mail', EBYS)] * 2, 'letters')
    S['decision_fen'] = s.msgid_of(mails, 'decision_request', TAGS[0])
    S['decision_muh'] = s.msgid_of(mails, 'decision_request', TAGS[5])
    for i in range(1, 11):
        eq(s.state(i), 'requested', 'app %d' % i)
    subj = [m.headers['Subject'] for m in mails]
    check(any(all('[%s]' % t in x for t in TAGS[:5]) for x in subj), 'Fen tags in a subject')


@test
def step2_decisions_by_reply_one_refused_with_reason(s):
    reason = 'görev tanımı e-imza gerektirmiyor; EBYS yazısı ayrıca gönderilecek'
    s.put(officer(EBYS, 'ONAY', '2026-03-02 10:50', in_reply_to=S['decision_fen']),
          '2026-03-02 10:50')
    s.put(officer(EBYS, 'RED %s: %s' % (TAGS[9], reason), '2026-03-02 10:52',
                  in_reply_to=S['decision_muh']), '2026-03-02 10:52')
    s.put(officer(EBYS, 'onay %s, %s %s,%s' % tuple(TAGS[5:9]), '2026-03-02 10:53',
                  in_reply_to=S['decision_muh']), '2026-03-02 10:53')
    mails, _ = s.step('2026-03-02 11:00',
                      [('approved', 'mail', ESIGN)] * 9 + [('rejected', 'mail', MUH)],
                      'decisions')
    for i in range(1, 10):
        eq(s.state(i), 'approved', 'app %d' % i)
    eq(s.state(10), 'rejected', 'app 10')
    body = [m.body() for m in mails if m.rcpt_tos == [MUH]][0]
    check(reason in body, 'the reason reaches the unit verbatim: %r' % body[:400])
    check(NAMES[9] in body, 'the refused applicant is named')


@test
def step3_sent_to_kamusm(s):
    s.put(mail('E-imza Sorumlusu <%s>' % ESIGN, '<eimza@example.edu.tr>', 'Gönderilenler',
               'GÖNDERİLDİ ' + ', '.join(TAGS[:9]) + '\n', date=dated('2026-03-02 11:55')),
          '2026-03-02 11:55')
    s.step('2026-03-02 12:00', [], 'submitted')
    for i in range(1, 10):
        eq(s.state(i), 'submitted', 'app %d' % i)


@test
def step4_kamusm_link_mail_reaches_applicants(s):
    for i in range(8):
        s.put(kamusm_credentials(EMAILS[i], code='SYNTH-%04d' % i,
                                 date=dated('2026-03-03 09:30')), '2026-03-03 09:30')
    s.put(kamusm_info(EMAILS[8], date=dated('2026-03-03 09:31')), '2026-03-03 09:31')
    exp = []
    for i in range(9):
        exp += [('credentials_issued', 'mail', EMAILS[i]), ('credentials_issued', 'sms', MOBILES[i]),
                ('unit_progress', 'mail', FEN if i < 5 else MUH)]
    _, smss = s.step('2026-03-03 10:00', exp, 'credentials')
    for i in range(1, 10):
        eq(s.state(i), 'credentials_issued', 'app %d' % i)
    for r in smss:
        check('SYNTH-' not in r.json['text'], 'no password in an SMS')


@test
def step5_commitments_handed_in(s):
    s.put(mail('EBYS <%s>' % EBYS, '<eimza@example.edu.tr>', 'Teslim',
               'TESLIM ' + ' '.join(TAGS[:7]) + '\n', date=dated('2026-03-04 10:55')),
          '2026-03-04 10:55')
    s.step('2026-03-04 11:00', [('commitment_received', 'mail', EMAILS[i]) for i in range(7)],
           'commitments')


@test
def step6_reminders_while_taahhutname_missing(s):
    exp = [('digest', 'mail', EMAILS[7]), ('digest', 'mail', EMAILS[8]),
           ('reminder_credentials', 'sms', MOBILES[7]), ('reminder_credentials', 'sms', MOBILES[8])]
    s.step('2026-03-05 14:00', exp, 'first reminders')
    # A restart at the same moment sends nothing again.
    s.step('2026-03-05 14:05', [], 'the same pass after a restart')


@test
def step7_posted(s):
    s.put(mail('EBYS <%s>' % EBYS, '<eimza@example.edu.tr>', 'Posta',
               'POSTA ' + ','.join(TAGS[:7]) + '\n', date=dated('2026-03-06 10:55')),
          '2026-03-06 10:55')
    s.step('2026-03-06 11:00', [('posted', 'mail', EMAILS[i]) for i in range(7)], 'posted')


@test
def step8_second_reminders_and_a_late_commitment(s):
    exp = [('digest', 'mail', EMAILS[7]), ('digest', 'mail', EMAILS[8]),
           ('reminder_credentials', 'sms', MOBILES[7]), ('reminder_credentials', 'sms', MOBILES[8])]
    s.step('2026-03-10 14:00', exp, 'second reminders')
    s.put(mail('EBYS <%s>' % EBYS, '<eimza@example.edu.tr>', 'Teslim', 'TESLIM %s\n' % TAGS[8],
               date=dated('2026-03-11 10:55')), '2026-03-11 10:55')
    s.step('2026-03-11 11:00', [('commitment_received', 'mail', EMAILS[8])], 'late commitment')


@test
def step9_third_reminder(s):
    s.step('2026-03-13 14:00', [('digest', 'mail', EMAILS[7]),
                                ('reminder_credentials', 'sms', MOBILES[7])], 'third reminder')


@test
def step10_shipments_and_the_weekly_posting_reminder(s):
    for i in range(3):
        s.put(kamusm_shipped(EMAILS[i], tracking='SYNTHTRK%03d' % i,
                             date=dated('2026-03-17 09:45')), '2026-03-17 09:45')
    exp = [('digest', 'mail', EBYS)]      # app 9's taahhütname waits for the post
    for i in range(3):
        exp += [('shipped', 'mail', EMAILS[i]), ('shipped', 'sms', MOBILES[i]),
                ('unit_progress', 'mail', FEN)]
    mails, smss = s.step('2026-03-17 10:00', exp, 'shipments')
    for i in range(1, 4):
        eq(s.state(i), 'shipped', 'app %d' % i)
    eq(s.env.app(TAGS[0])['tracking_no'], 'SYNTHTRK000', 'tracking number recorded')
    check(any('SYNTHTRK001' in r.json['text'] for r in smss), 'tracking number in the SMS')
    ebys = [m.body() for m in mails if m.rcpt_tos == [EBYS]][0]
    check(TAGS[8] in ebys, 'the posting reminder names app 9')


@test
def step11_fourth_reminder_becomes_an_escalation(s):
    # App 8's third reminder went on Friday 14:00; three working days later
    # the fourth is due: it goes to the officers and escalate_to instead,
    # copied to the applicant. App 9's posting reminder is weekly: not again.
    exp = [('digest', 'mail', EBYS), ('digest', 'mail', ESIGN), ('digest', 'mail', HEAD),
           ('digest', 'mail', EMAILS[7])]
    mails, _ = s.step('2026-03-18 14:00', exp, 'escalation')
    head = [m.body() for m in mails if m.rcpt_tos == [HEAD]][0]
    check(TAGS[7] in head, 'the escalation names the stuck application')
    check(TAGS[8] not in head, 'nothing else in it')


@test
def step12_activation_and_a_refused_one(s):
    s.put(mail('EBYS <%s>' % EBYS, '<eimza@example.edu.tr>', 'Aktif',
               'AKTIF %s %s %s\n' % (TAGS[0], TAGS[1], TAGS[3]), date=dated('2026-03-19 10:55')),
          '2026-03-19 10:55')
    mails, _ = s.step('2026-03-19 11:00',
                      [('activated', 'mail', EMAILS[0]), ('activated', 'mail', FEN),
                       ('activated', 'mail', EMAILS[1]), ('activated', 'mail', FEN),
                       ('command_refused', 'mail', EBYS)], 'activation')
    eq(s.state(1), 'activated', 'app 1')
    eq(s.state(4), 'posted', 'app 4 not activated before shipping')
    refusal = [m.body() for m in mails if m.rcpt_tos == [EBYS]][0]
    check('posted' in refusal, 'the refusal names the current state: %r' % refusal[:300])


@test
def step13_close_the_others_by_cli(s):
    for i in (3, 4, 5, 6, 7, 9):
        s.env.ctl('cancel', TAGS[i - 1], now='2026-03-19 12:00')
    exp = []
    for i in (3, 4, 5, 6, 7, 9):
        exp += [('cancelled', 'mail', EMAILS[i - 1]), ('cancelled', 'mail', FEN if i <= 5 else MUH)]
    s.step('2026-03-19 12:05', exp, 'cancellations')
    _, show = s.env.ctl('show', TAGS[2])
    check(any(h.get('actor', '').startswith('cli:') for h in show['app']['history']),
          'the CLI user is in the history')


@test
def step14_access_password_expires_with_the_alarm(s):
    exp = [('expired', 'mail', ESIGN),
           ('digest', 'mail', EBYS), ('digest', 'mail', ESIGN), ('digest', 'mail', HEAD)]
    mails, _ = s.step('2026-09-03 10:30', exp, 'expiry')
    eq(s.state(8), 'expired', 'app 8')
    alarm = [m.body() for m in mails if m.rcpt_tos == [HEAD]][0]
    check(TAGS[7] in alarm, 'the alarm names the application')
    _, st = s.env.ctl('status')
    eq(st['states']['expired'], 1, 'status: expired')
    eq(st['states']['activated'], 2, 'status: activated')
    eq(st['states']['cancelled'], 6, 'status: cancelled')
    eq(st['states']['rejected'], 1, 'status: rejected')


run(setup, teardown)
