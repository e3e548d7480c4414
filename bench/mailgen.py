"""A synthetic institutional mailbox for the backlog figure (all mail
labelled X-Synthetic: yes).

mailbox(total, kamusm, total_bytes, start, end) returns a list of
(raw bytes, arrival time) in arrival order: `kamusm` KAMUSM link mails
(alternately the older password flow and the newer Online İşlemler
information mail) for applicants 1..kamusm (benchlib.applicant), spread
evenly through `total - kamusm` ordinary messages (plain Turkish text,
text + HTML alternatives in windows-1254 or ISO-8859-9 quoted-printable,
HTML-only mail with an inline image, letters with PDF, spreadsheet or
document attachments in base64), dated between start and end (Unix
times). Attachment sizes are drawn from a log-normal law and scaled so
that the whole mailbox comes to total_bytes (LF line ends, as stored).
Deterministic: the same arguments give the same mailbox.
"""
import base64
import binascii
import email.header
import email.utils
import math
import random

import benchlib as B
from eimzad_env import kamusm_credentials, kamusm_info

WORDS = ('toplantı rapor bütçe yazı ek dosya bilgi talep birim fakülte rektörlük daire '
         'başkanlığı personel izin görevlendirme satın alma teklif fatura sözleşme proje '
         'öğrenci ders sınav takvim duyuru etkinlik kurul karar tutanak imza onay '
         'gönderilmiştir iletilmiştir rica ederim saygılarımla bilgilerinize arz ederim').split()
SENDERS = ['Satın Alma <satinalma@example.edu.tr>', 'Fen Fakültesi <fen@example.edu.tr>',
           'Öğrenci İşleri <oidb@example.edu.tr>', 'Kırtasiye Ltd. <satis@vendor.example>',
           'Bülten <haber@bulten.example>', 'Personel Daire Bşk. <pdb@example.edu.tr>',
           'Yazılım A.Ş. <destek@yazilim.example>']
ATTACH = [('application/pdf', 'yazi-%d.pdf'), ('application/pdf', 'rapor-%d.pdf'),
          ('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', 'liste-%d.xlsx'),
          ('application/vnd.openxmlformats-officedocument.wordprocessingml.document',
           'tutanak-%d.docx')]


def sentence(rng, n):
    w = [rng.choice(WORDS) for _ in range(n)]
    return ' '.join(w).capitalize() + '.'


def paragraph(rng, lines):
    return '\n'.join(sentence(rng, rng.randint(8, 14)) for _ in range(lines))


def qp(text, charset):
    return binascii.b2a_qp(text.encode(charset, 'replace')).decode('ascii')


def head(frm, subject, date, msgid, ctype, extra=''):
    subj = email.header.Header(subject, 'utf-8').encode()
    return ('From: %s\nTo: eimza@example.edu.tr\nSubject: %s\nDate: %s\nMessage-ID: <%s>\n'
            'X-Synthetic: yes\nMIME-Version: 1.0\n%sContent-Type: %s\n'
            % (frm, subj, date, msgid, extra, ctype))


def b64(rng, n):
    return base64.encodebytes(rng.randbytes(n)).decode()


def ordinary(rng, i, date, attach_bytes):
    """One ordinary message; attach_bytes is 0 for none."""
    frm = rng.choice(SENDERS)
    msgid = 'ordinary.%d@bench.invalid' % i
    subject = sentence(rng, rng.randint(3, 6))[:-1]
    kind = rng.random()
    text = 'Sayın ilgili,\n\n%s\n\nSaygılarımla.\n' % paragraph(rng, rng.randint(4, 25))
    if attach_bytes == 0 and kind < 0.5:
        return head(frm, subject, date, msgid, 'text/plain; charset=utf-8',
                    'Content-Transfer-Encoding: 8bit\n') + '\n' + text
    parts = []
    if kind < 0.75:
        cs = rng.choice(['windows-1254', 'iso-8859-9'])
        html = '<html><body><p>%s</p></body></html>' % text.replace('\n', '<br>\n')
        parts.append('Content-Type: multipart/alternative; boundary="alt%d"\n\n'
                     '--alt%d\nContent-Type: text/plain; charset=%s\n'
                     'Content-Transfer-Encoding: quoted-printable\n\n%s\n'
                     '--alt%d\nContent-Type: text/html; charset=%s\n'
                     'Content-Transfer-Encoding: quoted-printable\n\n%s\n--alt%d--\n'
                     % (i, i, cs, qp(text, cs), i, cs, qp(html, cs), i))
    else:
        html = ('<html><body><p>%s</p><img src="cid:logo%d"></body></html>'
                % (text.replace('\n', '<br>\n'), i))
        parts.append('Content-Type: text/html; charset=utf-8\n'
                     'Content-Transfer-Encoding: base64\n\n%s'
                     % base64.encodebytes(html.encode()).decode())
        parts.append('Content-Type: image/png\nContent-ID: <logo%d>\n'
                     'Content-Disposition: inline; filename="logo.png"\n'
                     'Content-Transfer-Encoding: base64\n\n%s' % (i, b64(rng, 600)))
    if attach_bytes:
        ctype, name = rng.choice(ATTACH)
        name = name % i
        parts.append('Content-Type: %s; name="%s"\nContent-Disposition: attachment; '
                     'filename="%s"\nContent-Transfer-Encoding: base64\n\n%s'
                     % (ctype, name, name, b64(rng, attach_bytes)))
    body = ''.join('--mix%d\n%s\n' % (i, p) for p in parts) + '--mix%d--\n' % i
    return head(frm, subject, date, msgid, 'multipart/mixed; boundary="mix%d"' % i) + '\n' + body


def kamusm_mail(k, date):
    email_addr, _ = B.applicant(k)
    if k % 2:
        raw = kamusm_credentials(email_addr, code='SYNTH-BL-%06d' % k, date=date,
                                 msgid='<kamusm.%d@bench.invalid>' % k)
    else:
        raw = kamusm_info(email_addr, date=date, msgid='<kamusm.%d@bench.invalid>' % k)
    return raw.replace(b'\r\n', b'\n').decode('utf-8')


def mailbox(total, kamusm, total_bytes, start, end, seed=4711):
    rng = random.Random(seed)
    n_ord = total - kamusm
    every = total / kamusm if kamusm else total + 1
    kam_at = {int(round(j * every + every / 2)) for j in range(kamusm)}
    dates = [start + (end - start) * i / total for i in range(total)]
    # Attachment sizes: ~80% of ordinary mail carries one, log-normal,
    # scaled below so that the mailbox comes to total_bytes.
    draws = [math.exp(rng.gauss(9.6, 0.9)) if rng.random() < 0.8 else 0 for _ in range(n_ord)]
    out, k, o = [], 0, 0
    sample = []
    for i in range(min(total, 400)):          # measure the non-attachment overhead
        r = random.Random(i)
        sample.append(len(ordinary(r, i, 'x', 1 if r.random() < 0.8 else 0).encode()))
    base = sum(sample) / max(1, len(sample))
    kam_bytes = kamusm * len(kamusm_mail(1, email.utils.formatdate(start, localtime=True)).encode())
    want_attach = max(0, total_bytes - kam_bytes - n_ord * base)
    scale = want_attach / (sum(draws) * 4 / 3 * 77 / 76) if sum(draws) else 0
    for i in range(total):
        date = email.utils.formatdate(dates[i], localtime=True)
        if i in kam_at and k < kamusm:
            k += 1
            out.append((kamusm_mail(k, date).encode(), dates[i]))
        else:
            size = int(draws[o] * scale) if o < len(draws) else 0
            o += 1
            out.append((ordinary(rng, i, date, size).encode(), dates[i]))
    return out
