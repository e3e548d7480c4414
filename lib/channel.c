/* channel.c: the channel factory and the helpers the channels share
 * (see channel.h and channel_p.h). */
#include "channel_p.h"
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

const char *dlv_outcome_name(enum dlv_outcome o)
{
	static const char *const names[] = { "sent", "tempfail", "permfail", "down" };
	return (unsigned)o < ARRAY_LEN(names) ? names[o] : "?";
}

void delivery_clear(struct delivery *d)
{
	if (d == NULL)
		return;
	free(d->detail);
	free(d->provider_id);
	memset(d, 0, sizeof(*d));
}

void delivery_set(struct delivery *d, enum dlv_outcome o, int retry_after, const char *fmt, ...)
{
	delivery_clear(d);
	d->outcome = o;
	d->retry_after = retry_after;
	va_list ap;
	va_start(ap, fmt);
	d->detail = xvasprintf(fmt, ap);
	va_end(ap);
}

void sigpipe_block(struct sigpipe_guard *g)
{
	sigset_t set, pending;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	sigpending(&pending);
	g->was_pending = sigismember(&pending, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &set, &g->old);
}

void sigpipe_restore(struct sigpipe_guard *g)
{
	sigset_t set, pending;
	sigemptyset(&set);
	sigaddset(&set, SIGPIPE);
	/* Discard a SIGPIPE that our own writes raised (one that was
	 * already pending before belongs to someone else: leave it). */
	if (!g->was_pending) {
		sigpending(&pending);
		if (sigismember(&pending, SIGPIPE)) {
			struct timespec zero = { 0, 0 };
			while (sigtimedwait(&set, NULL, &zero) < 0 && errno == EINTR)
				;
		}
	}
	pthread_sigmask(SIG_SETMASK, &g->old, NULL);
}

char *detail_text(const char *s, size_t len, size_t max, const char *secret)
{
	if (s == NULL)
		return xstrdup("");
	if (len > max) {
		len = max;
		while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
			len--;
	}
	char *c = xstrndup(s, len);
	for (char *p = c; *p; p++)
		if ((unsigned char)*p < 0x20 || *p == 0x7F)
			*p = ' ';
	if (secret == NULL || *secret == '\0')
		return c;
	struct buf b = BUF_INIT;
	size_t sl = strlen(secret);
	const char *p = c, *hit;
	while ((hit = strstr(p, secret)) != NULL) {
		buf_add(&b, p, (size_t)(hit - p));
		buf_adds(&b, "***");
		p = hit + sl;
	}
	buf_adds(&b, p);
	free(c);
	return buf_steal(&b);
}

/* Which implementation serves a medium, by its configured kind. */
static int pick_ops(const struct config *c, enum medium m, const struct channel_ops **ops,
		    char **err)
{
	enum channel_kind k = m == MEDIUM_MAIL ? c->smtp.mail_channel : c->sms.sms_channel;
	static const struct {
		enum medium m;
		enum channel_kind k;
		const struct channel_ops *ops;
	} table[] = {
		{ MEDIUM_MAIL, CHANNEL_SMTP, &channel_smtp_ops },
		{ MEDIUM_MAIL, CHANNEL_FILE, &channel_file_ops },
		{ MEDIUM_SMS, CHANNEL_SMS, &channel_sms_ops },
		{ MEDIUM_SMS, CHANNEL_FILE, &channel_file_ops },
	};
	*ops = NULL;
	if (k == CHANNEL_NONE)
		return 0;
	for (size_t i = 0; i < ARRAY_LEN(table); i++)
		if (table[i].m == m && table[i].k == k) {
			*ops = table[i].ops;
			return 0;
		}
	return seterr(err, "[%s] channel: '%s' cannot carry %s notices",
		      m == MEDIUM_MAIL ? "smtp" : "sms", k == CHANNEL_SMTP ? "smtp" : "sms",
		      m == MEDIUM_MAIL ? "mail" : "SMS");
}

int channel_create(const struct config *c, enum medium m, struct channel **out, char **err)
{
	const struct channel_ops *ops;
	*out = NULL;
	if (pick_ops(c, m, &ops, err) < 0)
		return -1;
	if (ops == NULL)
		return 0;
	struct channel *ch = xcalloc(1, sizeof(*ch));
	ch->ops = ops;
	ch->conf = c;
	ch->medium = m;
	if (ops->open(ch, err) < 0) {
		free(ch);
		return -1;
	}
	*out = ch;
	return 0;
}

void channel_destroy(struct channel *ch)
{
	if (ch == NULL)
		return;
	ch->ops->close(ch);
	free(ch);
}

char *channel_sms_text(const struct config *c, const struct notice *n, struct sms_info *info,
		       struct delivery *d)
{
	const struct conf_sms *s = &c->sms;
	char *text = NULL, *err = NULL;
	if (sms_fit(n->body ? n->body : "", s->encoding, s->max_segments, s->truncate, &text, info,
		    &err) < 0) {
		delivery_set(d, DLV_PERMFAIL, 0, "%s", err);
		free(err);
		return NULL;
	}
	return text;
}
