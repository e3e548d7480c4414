/*
 * phone.h: mobile numbers and SMS text.
 *
 * Numbers are normalised to E.164 ("+905321234567"). With default country
 * TR, the usual ways of writing a Turkish mobile are accepted: 05xx xxx xx
 * xx, 5xxxxxxxxx, +90 5xx..., 0090 5xx..., with spaces, dashes, dots and
 * parentheses. Turkish landlines (area codes 2xx, 3xx, 4xx), 0850/0800
 * numbers and malformed input are refused with a reason. Numbers written
 * with another country code (+44...) are accepted as E.164 if they have
 * 8 to 15 digits, since an applicant may hold a foreign mobile.
 *
 * Ownership: returned strings are the caller's.
 */
#ifndef EIMZA_PHONE_H
#define EIMZA_PHONE_H

#include "config.h"

/* 0 and *out (E.164), or -1 with *err saying why the number is refused. */
int phone_normalize(const char *in, const char *default_country, char **out, char **err);

/* SMS encoding and length. */
struct sms_info {
	enum sms_encoding encoding;  /* what the text will be sent as */
	size_t units;                /* septets (GSM) or UTF-16 units (UCS-2) */
	int segments;                /* 1 if it fits one, else concatenated parts */
	size_t per_segment;          /* capacity of one part at that encoding */
};

/*
 * Work out how a text goes out under the configured encoding:
 *   SMS_ENC_GSM7_TR  GSM 03.38 7-bit with the Turkish national single
 *                    shift table (ş ğ ı İ Ş Ğ ç as 2 septets each, as
 *                    escapes), else UCS-2 if a character is outside it;
 *                    the single shift's UDH element (3 octets) is only
 *                    sent, and paid for, when a Turkish-only letter
 *                    needs it (otherwise plain GSM: info->encoding says
 *                    SMS_ENC_GSM7).
 *   SMS_ENC_GSM7     plain GSM 7-bit (default alphabet + extension table),
 *                    else UCS-2.
 *   SMS_ENC_UCS2     always UCS-2 (70 per single part, 67 per part).
 *   SMS_ENC_ASCII    transliterate Turkish letters to ASCII (ş->s, İ->I,
 *                    ı->i ...) and other non-GSM characters to '?' first;
 *                    out_text receives the transliterated text.
 * GSM 7-bit: 160 per single part, 153 per part of a concatenated message
 * (149 with the Turkish single shift's UDH in concatenated parts, 155 in
 * a single part; sms_encode.c shows the arithmetic). An escaped character
 * or a surrogate pair is never split across parts.
 * out_text (may be NULL) receives the text that will actually be sent.
 */
void sms_measure(const char *text, enum sms_encoding enc, struct sms_info *info, char **out_text);

/* Fit text into max_segments: 0 if it fits (out = the text to send);
 * if it does not, truncate (ending with "…" or "..." as the encoding
 * allows) when truncate is set, else -1 with *err. */
int sms_fit(const char *text, enum sms_encoding enc, int max_segments, bool truncate,
	    char **out, struct sms_info *info, char **err);

#endif
