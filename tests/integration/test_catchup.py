"""Going live over a full mailbox, and SMS that wait for working hours:
- on a first start, mail that arrived more than the cut-off (30 days)
  before going live is recorded but sends no notice, and `eimzactl
  status` says what was caught up; recent mail is handled normally;
- an SMS deferred to working hours is dropped when its reason has passed
  (the application moved on before Monday), and the e-mail went at once."""
import json
import os
import time

from eimzad_env import EBYS, Env, istanbul as epoch, kamusm_credentials, mail
from tap import check, eq, run, test

GO_LIVE = '2026-03-02 10:00'       # Monday
SATURDAY = '2026-03-07 10:00'
MONDAY = '2026-03-09 09:30'


def setup():
    env = Env()
    env.import_csv(['Ad Soyad;Kurumsal E-posta;Cep Telefonu;Unvan',
                    'Eski Başvuru;eski@example.edu.tr;0555 000 20 01;Şef',
                    'Yeni Başvuru;yeni@example.edu.tr;0555 000 20 02;Şef',
                    'Hafta Sonu;haftasonu@example.edu.tr;0555 000 20 03;Şef'], now=GO_LIVE)
    return env


def teardown(env):
    if env:
        env.close()


@test
def old_mail_on_the_first_start_is_recorded_without_notices(env):
    old = '2026-01-20 10:00'          # 41 days before going live
    env.dv.append('eimza', kamusm_credentials('eski@example.edu.tr',
                                              date=time.strftime('%a, %d %b %Y %H:%M:%S +0300',
                                                                 time.gmtime(epoch(old) + 3 * 3600))),
                  date=epoch(old))
    env.dv.append('eimza', kamusm_credentials('yeni@example.edu.tr'), date=epoch('2026-02-27 10:00'))
    rc, out = env.once(GO_LIVE)
    eq(rc, 0, 'eimzad --once: %s' % out[-300:])
    eq(env.app('EIMZA-2026-0001')['state'], 'credentials_issued', 'old mail is recorded')
    eq(env.app('EIMZA-2026-0002')['state'], 'credentials_issued', 'recent mail too')
    to = [m.rcpt_tos[0] for m in env.sink.messages]
    eq(to, ['yeni@example.edu.tr'], 'only the recent mail sends a notice')
    eq([r.json['to'] for r in env.sms.requests], ['+905550002002'], 'and an SMS')
    _, st = env.ctl('status', now=GO_LIVE)
    eq(st['source']['catchup']['messages'], 1, 'status says one message was caught up')
    app = env.app('EIMZA-2026-0001')
    check(app['clock']['since'] >= '2026-03-02', 'its clock starts at going live: %s'
          % app['clock']['since'])


@test
def a_deferred_sms_is_dropped_when_its_reason_has_passed(env):
    env.dv.append('eimza', kamusm_credentials('haftasonu@example.edu.tr'), date=epoch(SATURDAY))
    before = len(env.sink.messages)
    rc, _ = env.once(SATURDAY)
    eq(rc, 0, 'Saturday run')
    new = [m.rcpt_tos[0] for m in env.sink.messages[before:]]
    check('haftasonu@example.edu.tr' in new, 'the e-mail goes at once: %s' % new)
    # (A reminder pass missed on Friday ran late too: its digests and SMS
    # also wait for working time.)
    eq(len(env.sms.requests), 1, 'no SMS at all on a Saturday')
    # On Sunday the officer already receives the signed taahhütname.
    env.dv.append('eimza', mail('EBYS <%s>' % EBYS, '<eimza@example.edu.tr>', 'Teslim',
                                'TESLIM EIMZA-2026-0003\n'), date=epoch('2026-03-08 12:00'))
    rc, _ = env.once('2026-03-08 12:00')
    eq(rc, 0, 'Sunday run')
    eq(env.app('EIMZA-2026-0003')['state'], 'commitment_received', 'state moved on')
    rc, _ = env.once(MONDAY)
    eq(rc, 0, 'Monday run')
    to = [r.json['to'] for r in env.sms.requests]
    check('+905550002003' not in to, 'the SMS about filling in the form is not sent any more')
    eq(sorted(to[1:]), ['+905550002001', '+905550002002'], 'the reminders held over the '
       'weekend go on Monday')
    notices = []
    for f in os.listdir(os.path.join(env.dir, 'state', 'notices')):
        with open(os.path.join(env.dir, 'state', 'notices', f)) as fp:
            n = json.load(fp)
        if n.get('app_id') == 'EIMZA-2026-0003' and n['medium'] == 'sms':
            notices.append(n)
    eq([n['state'] for n in notices], ['dropped'], 'recorded as dropped')


run(setup, teardown)
