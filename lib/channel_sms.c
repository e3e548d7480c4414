/*
 * channel_sms.c: SMS through a provider's HTTP API, with libcurl's multi
 * interface. A batch goes out concurrently through one CURLM with up to
 * [sms] concurrency transfers; the easy handles and the multi handle (and
 * so the connection cache: HTTP keep-alive) live in priv and are reused
 * from batch to batch (https, or plain http towards a loopback host only).
 * Requests start no faster than [sms] rate per second
 * (a token bucket of at most one and a half tokens, so starts are evenly
 * spaced and the rate holds over any one-second window to within one
 * request; 0 = unlimited). Redirects are not followed;
 * TLS is verified by libcurl (peer and host name) against [sms] ca_file or
 * the system store. One worker drives a channel at a time (outbox.h):
 * send() is not reentrant.
 *
 * Profiles ([sms] profile) decide how a request looks:
 *   json         the generic one: [sms] url, method, content_type and
 *                body_template with {{to}} {{text}} {{sender}} {{id}} (the
 *                notice id, usable as an idempotency key) and {{user}}
 *                {{secret}} for providers that want credentials in the
 *                body. Values are JSON-escaped for a JSON content type,
 *                URL-encoded for a form, and for method GET the rendered
 *                template is the query string.
 *   twilio       form POST (To, From, Body) to [sms] url (e.g.
 *                https://api.twilio.com/2010-04-01/Accounts/{sid}/Messages.json;
 *                "{sid}" is replaced by [sms] user), HTTP Basic with
 *                [sms] user = account SID and the secret file = auth token;
 *                success is 201, the id is the reply's "sid".
 *   iletimerkezi İleti Merkezi's JSON API (POST
 *                https://api.iletimerkezi.com/v1/send-sms/json), following
 *                its public documentation at
 *                https://www.iletimerkezi.com/en/docs/api/send-sms (with
 *                .../authentication and .../error-codes): the API key
 *                ([sms] user) and hash (the secret file) travel in the body
 *                under request.authentication; order.sender is the
 *                approved header, order.iys "0" marks the message as
 *                transactional (no İYS consent lookup), the number goes in
 *                order.message.receipents.number (sic); success is
 *                response.status.code 200 and the id response.order.id.
 *   Options a profile fixes are ignored; id_field / success_field left
 *   empty take the profile's.
 *
 * Auth ([sms] auth): none, basic ([sms] user + secret), bearer
 * ("Authorization: Bearer <secret>"), header ("<auth_header>: <secret>").
 * Secrets are read with secret_read() at open() and appear in no log line
 * or detail: bodies and URLs are never logged, replies quoted in details
 * have the secret masked, and the debug trace (CURLOPT_VERBOSE, only at
 * log level debug) shows headers with credentials replaced by
 * "[redacted]" and never bodies.
 *
 * Outcomes:
 *   status in [sms] success_status (and [sms] success_field holds) -> SENT,
 *       provider id from [sms] id_field (a dotted JSON path; numbers index
 *       arrays);
 *   success status but success_field fails, or the reply is not the JSON
 *       needed to check it or to read the id -> PERMFAIL: the provider
 *       answered "accepted" at the HTTP level, so a retry would likely
 *       send a duplicate; the detail says the SMS may have gone out, and
 *       the dead letter brings it to an officer;
 *   429 -> TEMPFAIL, retry_after from Retry-After (seconds or HTTP date);
 *   5xx, 408 -> TEMPFAIL (503 honours Retry-After too);
 *   401, 402, 403, 407 -> DOWN (our credentials or our balance: every
 *       notice would fail the same way until someone acts);
 *   3xx -> DOWN (redirects are not followed: [sms] url needs fixing);
 *   other 4xx, and a 2xx outside success_status -> PERMFAIL;
 *   timeout after connecting, connection reset, empty reply -> TEMPFAIL
 *       (the provider may have sent it: at least once);
 *   connection refused, DNS, TLS, connect timeout -> DOWN, and the rest of
 *       the batch is not attempted;
 *   text too long for max_segments without truncate, or a number that is
 *       not E.164 -> PERMFAIL before any request.
 */
#include "channel_p.h"
#include "log.h"
#include "phone.h"

#include <ctype.h>
#include <curl/curl.h>
#include <json-c/json.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define MAX_REPLY (64 * 1024)

enum body_kind { BODY_TEMPLATE, BODY_TWILIO };
enum escape_kind { ESC_JSON, ESC_FORM, ESC_NONE };

struct sms_profile {
	const char *name;
	enum body_kind body;
	const char *template;         /* NULL: [sms] body_template */
	const char *content_type;     /* NULL: [sms] content_type */
	const char *method;           /* NULL: [sms] method */
	const char *id_field;         /* used when [sms] id_field is empty */
	const char *success_field;    /* used when [sms] success_field is empty */
	bool auth_fixed;              /* the profile decides auth */
	enum sms_auth auth;
};

static const struct sms_profile profiles[] = {
	{ .name = "json", .body = BODY_TEMPLATE },
	{ .name = "twilio", .body = BODY_TWILIO, .content_type = "application/x-www-form-urlencoded",
	  .method = "POST", .id_field = "sid", .auth_fixed = true, .auth = SMS_AUTH_BASIC },
	{ .name = "iletimerkezi", .body = BODY_TEMPLATE, .content_type = "application/json",
	  .method = "POST",
	  .template = "{\"request\":{\"authentication\":{\"key\":\"{{user}}\",\"hash\":\"{{secret}}\"},"
		      "\"order\":{\"sender\":\"{{sender}}\",\"sendDateTime\":[],\"iys\":\"0\","
		      "\"message\":{\"text\":\"{{text}}\",\"receipents\":{\"number\":[\"{{to}}\"]}}}}}",
	  .id_field = "response.order.id", .success_field = "response.status.code=200",
	  .auth_fixed = true, .auth = SMS_AUTH_NONE },
};

struct xfer {
	CURL *h;
	bool busy;
	size_t idx;                   /* into the batch */
	struct buf reply;
	char *body;
	char *url;                    /* GET: url + query */
	char errbuf[CURL_ERROR_SIZE];
	struct sms_priv *p;
};

struct sms_priv {
	const struct config *conf;
	const struct sms_profile *prof;
	char *url;                    /* with {sid} replaced */
	char *method;
	char *template;
	enum escape_kind esc;
	char *user;
	char *secret;
	char *auth_header;            /* header name, for redaction */
	char *id_field;
	char *success_path, *success_value;
	int status_class[10];         /* "2xx": status_class[2] = 1 */
	long *status_list;            /* explicit codes, 0-terminated */
	struct curl_slist *headers;
	CURLM *multi;
	struct xfer *x;
	int nx;
	double rate, tokens;
	int64_t last_refill;
};

/* ---- small helpers ---- */

static const struct sms_profile *find_profile(const char *name)
{
	for (size_t i = 0; i < ARRAY_LEN(profiles); i++)
		if (str_ieq(name, profiles[i].name))
			return &profiles[i];
	return NULL;
}

static void json_escape(struct buf *b, const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': buf_adds(b, "\\\""); break;
		case '\\': buf_adds(b, "\\\\"); break;
		case '\n': buf_adds(b, "\\n"); break;
		case '\r': buf_adds(b, "\\r"); break;
		case '\t': buf_adds(b, "\\t"); break;
		default:
			if (*p < 0x20 || *p == 0x7F)
				buf_printf(b, "\\u%04x", *p);
			else
				buf_addc(b, (char)*p);
		}
	}
}

static void form_escape(struct buf *b, const char *s)
{
	static const char hex[] = "0123456789ABCDEF";
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
		    *p == '-' || *p == '.' || *p == '_' || *p == '~') {
			buf_addc(b, (char)*p);
		} else {
			char e[3] = { '%', hex[*p >> 4], hex[*p & 15] };
			buf_add(b, e, 3);
		}
	}
}

static void put_value(struct buf *b, enum escape_kind esc, const char *v)
{
	if (esc == ESC_JSON)
		json_escape(b, v ? v : "");
	else if (esc == ESC_FORM)
		form_escape(b, v ? v : "");
	else
		buf_adds(b, v ? v : "");
}

struct tvars {
	const char *to, *text, *sender, *id, *user, *secret;
};

/* Expand {{name}} placeholders; unknown names are kept as they are. */
static char *render_template(const char *tpl, enum escape_kind esc, const struct tvars *v)
{
	const struct { const char *name; const char *val; } vars[] = {
		{ "to", v->to }, { "text", v->text }, { "sender", v->sender },
		{ "id", v->id }, { "user", v->user }, { "secret", v->secret },
	};
	struct buf b = BUF_INIT;
	const char *p = tpl;
	while (*p) {
		const char *open = strstr(p, "{{");
		if (open == NULL) {
			buf_adds(&b, p);
			break;
		}
		buf_add(&b, p, (size_t)(open - p));
		const char *close = strstr(open + 2, "}}");
		size_t k = 0, nlen = close ? (size_t)(close - open - 2) : 0;
		for (; close && k < ARRAY_LEN(vars); k++)
			if (strlen(vars[k].name) == nlen && strncmp(open + 2, vars[k].name, nlen) == 0)
				break;
		if (close == NULL || k == ARRAY_LEN(vars)) {
			buf_add(&b, open, 2);
			p = open + 2;
			continue;
		}
		put_value(&b, esc, vars[k].val);
		p = close + 2;
	}
	return b.p ? buf_steal(&b) : xstrdup("");
}

/* ---- configuration checks at open ---- */

static int parse_success_status(struct sms_priv *p, const char *spec, char **err)
{
	char *copy = xstrdup(spec), *save = NULL;
	size_t n = 0;
	p->status_list = xcalloc(strlen(spec) + 1, sizeof(long));
	for (char *t = strtok_r(copy, " ,", &save); t; t = strtok_r(NULL, " ,", &save)) {
		char *end;
		if (strlen(t) == 3 && t[0] >= '1' && t[0] <= '5' && str_ieq(t + 1, "xx")) {
			p->status_class[t[0] - '0'] = 1;
			continue;
		}
		long v = strtol(t, &end, 10);
		if (*end || v < 100 || v > 599) {
			free(copy);
			return seterr(err, "[sms] success_status: '%s' is not a status code or class like 2xx", t);
		}
		p->status_list[n++] = v;
	}
	free(copy);
	if (n == 0 && !p->status_class[1] && !p->status_class[2] && !p->status_class[3] &&
	    !p->status_class[4] && !p->status_class[5])
		return seterr(err, "[sms] success_status is empty");
	return 0;
}

static bool status_ok(const struct sms_priv *p, long code)
{
	if (code >= 100 && code < 600 && p->status_class[code / 100])
		return true;
	for (const long *c = p->status_list; *c; c++)
		if (*c == code)
			return true;
	return false;
}

static bool header_name_ok(const char *s)
{
	if (str_empty(s))
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_'))
			return false;
	return true;
}

static int read_secret(struct sms_priv *p, const struct conf_sms *s, enum sms_auth auth, char **err)
{
	bool body_secret = p->template && strstr(p->template, "{{secret}}") != NULL;
	if (auth == SMS_AUTH_NONE && !body_secret)
		return 0;
	if (str_empty(s->secret_file))
		return seterr(err, "[sms] secret_file is required for this profile / auth");
	char *e = NULL;
	if (secret_read(s->secret_file, &p->secret, &e) < 0) {
		seterr(err, "[sms] secret_file: %s", e);
		free(e);
		return -1;
	}
	if ((auth == SMS_AUTH_BASIC || body_secret) && str_empty(s->user))
		return seterr(err, "[sms] user is required for this profile / auth");
	return 0;
}

static void add_header(struct sms_priv *p, const char *fmt, ...) PRINTF_LIKE(2, 3);
static void add_header(struct sms_priv *p, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *h = xvasprintf(fmt, ap);
	va_end(ap);
	p->headers = curl_slist_append(p->headers, h);
	if (p->headers == NULL)
		fatalx("sms: out of memory");
	secure_free(h);
}

static int setup_auth_headers(struct sms_priv *p, const struct conf_sms *s, enum sms_auth auth,
			      char **err)
{
	const char *ct = p->prof->content_type ? p->prof->content_type : s->content_type;
	if (strcmp(p->method, "GET") != 0 && !str_empty(ct))
		add_header(p, "Content-Type: %s", ct);
	add_header(p, "Accept: application/json");
	add_header(p, "Expect:");
	if (auth == SMS_AUTH_BEARER) {
		add_header(p, "Authorization: Bearer %s", p->secret);
	} else if (auth == SMS_AUTH_HEADER) {
		if (!header_name_ok(s->auth_header))
			return seterr(err, "[sms] auth_header: '%s' is not a header name", s->auth_header);
		p->auth_header = xstrdup(s->auth_header);
		add_header(p, "%s: %s", s->auth_header, p->secret);
	}
	return 0;
}

static int parse_fields(struct sms_priv *p, const struct conf_sms *s, char **err)
{
	const char *idf = !str_empty(s->id_field) ? s->id_field : p->prof->id_field;
	const char *sf = !str_empty(s->success_field) ? s->success_field : p->prof->success_field;
	p->id_field = str_empty(idf) ? NULL : xstrdup(idf);
	if (!str_empty(sf)) {
		const char *eq = strchr(sf, '=');
		if (eq == NULL || eq == sf)
			return seterr(err, "[sms] success_field: '%s' is not path=value", sf);
		p->success_path = xstrndup(sf, (size_t)(eq - sf));
		p->success_value = xstrdup(eq + 1);
	}
	return 0;
}

/* https anywhere; plain http only to this machine (tests, a local relay):
 * the credentials and the texts would otherwise cross the network in
 * clear. */
static int check_url(const char *url, char **err)
{
	if (str_startswith(url, "https://"))
		return 0;
	if (!str_startswith(url, "http://"))
		return seterr(err, "[sms] url: an https:// URL is required");
	CURLU *u = curl_url();
	char *host = NULL;
	bool loop = false;
	if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
	    curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK)
		loop = host_is_loopback(host);
	curl_free(host);
	curl_url_cleanup(u);
	if (!loop)
		return seterr(err, "[sms] url: plain http is allowed only towards a loopback host; "
			      "use https://");
	return 0;
}

static void priv_free(struct sms_priv *p);
static int open_handles(struct sms_priv *p, const struct conf_sms *s, enum sms_auth auth,
			char **err);

static int sms_open(struct channel *ch, char **err)
{
	const struct conf_sms *s = &ch->conf->sms;
	const struct sms_profile *prof = find_profile(s->profile);
	if (prof == NULL)
		return seterr(err, "[sms] profile: '%s' is unknown (json, twilio, iletimerkezi)", s->profile);
	if (str_empty(s->url))
		return seterr(err, "[sms] url is required");
	if (check_url(s->url, err) < 0)
		return -1;
	/* Reference-counted; thread-safe in libcurl >= 7.84. */
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return seterr(err, "sms: libcurl initialisation failed");
	struct sms_priv *p = xcalloc(1, sizeof(*p));
	p->conf = ch->conf;
	p->prof = prof;
	p->method = xstrdup(prof->method ? prof->method : s->method);
	for (char *m = p->method; *m; m++)
		*m = (char)toupper((unsigned char)*m);
	p->template = prof->body == BODY_TEMPLATE ? xstrdup(prof->template ? prof->template : s->body_template) : NULL;
	const char *ct = prof->content_type ? prof->content_type : s->content_type;
	p->esc = strcmp(p->method, "GET") == 0 || strcasestr(ct, "x-www-form-urlencoded") ? ESC_FORM :
		strcasestr(ct, "json") ? ESC_JSON : ESC_NONE;
	enum sms_auth auth = prof->auth_fixed ? prof->auth : s->auth;
	p->user = str_empty(s->user) ? NULL : xstrdup(s->user);
	p->rate = s->rate;
	p->tokens = 1;
	p->last_refill = mono_ms();
	/* {sid} in a Twilio URL is the account SID ([sms] user). */
	const char *sid = strstr(s->url, "{sid}");
	p->url = sid && p->user ? xasprintf("%.*s%s%s", (int)(sid - s->url), s->url, p->user, sid + 5)
				: xstrdup(s->url);
	if (read_secret(p, s, auth, err) < 0 || setup_auth_headers(p, s, auth, err) < 0 ||
	    parse_fields(p, s, err) < 0 || parse_success_status(p, s->success_status, err) < 0 ||
	    open_handles(p, s, auth, err) < 0) {
		priv_free(p);
		return -1;
	}
	ch->priv = p;
	return 0;
}

/* ---- curl handles ---- */

static size_t write_cb(char *data, size_t size, size_t nmemb, void *arg)
{
	struct xfer *x = arg;
	size_t n = size * nmemb;
	if (x->reply.len + n > MAX_REPLY)
		return 0;     /* a reply this large is not an SMS API's: abort */
	buf_add(&x->reply, data, n);
	return n;
}

/* The debug trace: header lines only, credentials and query strings
 * removed; bodies never. */
static int debug_cb(CURL *h, curl_infotype type, char *data, size_t size, void *arg)
{
	struct sms_priv *p = arg;
	if (type != CURLINFO_TEXT && type != CURLINFO_HEADER_IN && type != CURLINFO_HEADER_OUT)
		return 0;
	const char *dir = type == CURLINFO_HEADER_OUT ? "> " : type == CURLINFO_HEADER_IN ? "< " : "* ";
	char *copy = xstrndup(data, size);
	char *save = NULL;
	for (char *l = strtok_r(copy, "\r\n", &save); l; l = strtok_r(NULL, "\r\n", &save)) {
		char *colon = strchr(l, ':');
		bool cred = colon && (strncasecmp(l, "Authorization:", 14) == 0 ||
				      strncasecmp(l, "Proxy-Authorization:", 20) == 0 ||
				      (p->auth_header && (size_t)(colon - l) == strlen(p->auth_header) &&
				       strncasecmp(l, p->auth_header, (size_t)(colon - l)) == 0));
		char *q = type == CURLINFO_HEADER_OUT ? strchr(l, '?') : NULL;
		if (cred)
			log_debug("sms: curl: %s%.*s: [redacted]", dir, (int)(colon - l), l);
		else if (q && (str_startswith(l, "GET ") || str_startswith(l, "POST ") || str_startswith(l, "PUT ")))
			log_debug("sms: curl: %s%.*s?[query redacted]", dir, (int)(q - l), l);
		else if (p->secret && strstr(l, p->secret))
			log_debug("sms: curl: %s[line with a secret redacted]", dir);
		else
			log_debug("sms: curl: %s%s", dir, l);
	}
	free(copy);
	return 0;
}

static int xfer_init(struct sms_priv *p, struct xfer *x, const struct conf_sms *s, enum sms_auth auth)
{
	x->p = p;
	x->h = curl_easy_init();
	if (x->h == NULL)
		return -1;
	CURL *h = x->h;
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)s->connect_timeout.n * 1000);
	curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)s->timeout.n * 1000);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_cb);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(h, CURLOPT_PRIVATE, x);
	curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, p->headers);
	curl_easy_setopt(h, CURLOPT_USERAGENT, "eimzad/1");
	curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (!str_empty(s->ca_file))
		curl_easy_setopt(h, CURLOPT_CAINFO, s->ca_file);
	if (auth == SMS_AUTH_BASIC) {
		curl_easy_setopt(h, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
		curl_easy_setopt(h, CURLOPT_USERNAME, p->user);
		curl_easy_setopt(h, CURLOPT_PASSWORD, p->secret);
	}
	if (strcmp(p->method, "GET") == 0)
		curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	else if (strcmp(p->method, "POST") != 0)
		curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, p->method);
	if (strcmp(p->method, "GET") != 0)
		curl_easy_setopt(h, CURLOPT_URL, p->url);
	if (log_getlevel() >= LOG_LVL_DEBUG) {
		curl_easy_setopt(h, CURLOPT_DEBUGFUNCTION, debug_cb);
		curl_easy_setopt(h, CURLOPT_DEBUGDATA, p);
		curl_easy_setopt(h, CURLOPT_VERBOSE, 1L);
	}
	return 0;
}

static int open_handles(struct sms_priv *p, const struct conf_sms *s, enum sms_auth auth,
			char **err)
{
	p->multi = curl_multi_init();
	if (p->multi == NULL)
		return seterr(err, "sms: cannot create a curl multi handle");
	p->nx = s->concurrency > 0 ? s->concurrency : 1;
	curl_multi_setopt(p->multi, CURLMOPT_MAXCONNECTS, (long)p->nx);
	curl_multi_setopt(p->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)p->nx);
	p->x = xcalloc((size_t)p->nx, sizeof(*p->x));
	for (int i = 0; i < p->nx; i++)
		if (xfer_init(p, &p->x[i], s, auth) < 0)
			return seterr(err, "sms: cannot create a curl handle");
	return 0;
}

static void priv_free(struct sms_priv *p)
{
	if (p == NULL)
		return;
	for (int i = 0; p->x && i < p->nx; i++) {
		if (p->x[i].busy)
			curl_multi_remove_handle(p->multi, p->x[i].h);
		if (p->x[i].h)
			curl_easy_cleanup(p->x[i].h);
		buf_free(&p->x[i].reply);
		secure_free(p->x[i].body);
		secure_free(p->x[i].url);
	}
	free(p->x);
	if (p->multi)
		curl_multi_cleanup(p->multi);
	/* the header list holds the secret in bearer / header auth */
	for (struct curl_slist *l = p->headers; l; l = l->next)
		explicit_bzero(l->data, strlen(l->data));
	curl_slist_free_all(p->headers);
	free(p->url);
	free(p->method);
	free(p->template);
	free(p->user);
	secure_free(p->secret);
	free(p->auth_header);
	free(p->id_field);
	free(p->success_path);
	free(p->success_value);
	free(p->status_list);
	free(p);
	curl_global_cleanup();
}

static void sms_close(struct channel *ch)
{
	priv_free(ch->priv);
	ch->priv = NULL;
}

/* ---- one request ---- */

static bool e164_ok(const char *to)
{
	if (to == NULL || to[0] != '+')
		return false;
	size_t n = 0;
	for (const char *s = to + 1; *s; s++, n++)
		if (*s < '0' || *s > '9')
			return false;
	return n >= 8 && n <= 15;
}

static char *twilio_body(const struct sms_priv *p, const char *to, const char *text)
{
	struct buf b = BUF_INIT;
	buf_adds(&b, "To=");
	form_escape(&b, to);
	buf_adds(&b, "&From=");
	form_escape(&b, p->conf->sms.sender ? p->conf->sms.sender : "");
	buf_adds(&b, "&Body=");
	form_escape(&b, text);
	return buf_steal(&b);
}

/* Fit the text and build the request on x. -1 with d set (PERMFAIL). */
static int prepare(struct sms_priv *p, struct xfer *x, const struct notice *n, struct delivery *d)
{
	const struct conf_sms *s = &p->conf->sms;
	if (!e164_ok(n->to)) {
		delivery_set(d, DLV_PERMFAIL, 0, "recipient is not an E.164 number");
		return -1;
	}
	struct sms_info info;
	char *text = channel_sms_text(p->conf, n, &info, d);
	if (text == NULL)
		return -1;
	/* bodies and GET URLs may carry {{secret}} */
	secure_free(x->body);
	secure_free(x->url);
	x->body = x->url = NULL;
	buf_reset(&x->reply);
	x->errbuf[0] = '\0';
	if (p->prof->body == BODY_TWILIO) {
		x->body = twilio_body(p, n->to, text);
	} else {
		struct tvars v = { .to = n->to, .text = text, .sender = s->sender, .id = n->id,
				   .user = p->user, .secret = p->secret };
		x->body = render_template(p->template, p->esc, &v);
	}
	if (strcmp(p->method, "GET") == 0) {
		x->url = xasprintf("%s%s%s", p->url, strchr(p->url, '?') ? "&" : "?", x->body);
		curl_easy_setopt(x->h, CURLOPT_URL, x->url);
	} else {
		curl_easy_setopt(x->h, CURLOPT_POSTFIELDS, x->body);
		curl_easy_setopt(x->h, CURLOPT_POSTFIELDSIZE, (long)strlen(x->body));
	}
	secure_free(text);
	return 0;
}

/* ---- the reply ---- */

/* The value at a dotted path ("response.order.id", "messages.0.id"). */
static json_object *json_path(json_object *o, const char *path)
{
	char *copy = xstrdup(path), *save = NULL;
	for (char *seg = strtok_r(copy, ".", &save); seg && o; seg = strtok_r(NULL, ".", &save)) {
		char *end;
		long i = strtol(seg, &end, 10);
		if (json_object_is_type(o, json_type_array) && *end == '\0')
			o = i >= 0 && (size_t)i < json_object_array_length(o) ? json_object_array_get_idx(o, (size_t)i) : NULL;
		else if (!json_object_object_get_ex(o, seg, &o))
			o = NULL;
	}
	free(copy);
	return o;
}

static char *reply_excerpt(const struct sms_priv *p, const struct xfer *x)
{
	return detail_text(x->reply.p, x->reply.len, 200, p->secret);
}

/* A 2xx in success_status: check success_field, read the id. */
static void judge_success(struct sms_priv *p, struct xfer *x, long code, struct delivery *d)
{
	if (p->success_path == NULL && p->id_field == NULL) {
		delivery_set(d, DLV_SENT, 0, "HTTP %ld", code);
		return;
	}
	char *ex = reply_excerpt(p, x);
	json_object *doc = x->reply.len ? json_tokener_parse(x->reply.p) : NULL;
	json_object *sv = doc && p->success_path ? json_path(doc, p->success_path) : NULL;
	json_object *iv = doc && p->id_field ? json_path(doc, p->id_field) : NULL;
	if (doc == NULL) {
		delivery_set(d, DLV_PERMFAIL, 0, "HTTP %ld but the reply is not JSON (the SMS may "
			     "have gone out; not retried): %s", code, ex);
	} else if (p->success_path && (sv == NULL || strcmp(json_object_get_string(sv), p->success_value) != 0)) {
		delivery_set(d, DLV_PERMFAIL, 0, "HTTP %ld but %s is %s, not %s: %s", code,
			     p->success_path, sv ? json_object_get_string(sv) : "missing",
			     p->success_value, ex);
	} else if (p->id_field && (iv == NULL || json_object_is_type(iv, json_type_null))) {
		delivery_set(d, DLV_PERMFAIL, 0, "HTTP %ld but the reply has no %s (the SMS may "
			     "have gone out; not retried): %s", code, p->id_field, ex);
	} else {
		delivery_set(d, DLV_SENT, 0, "HTTP %ld", code);
		if (iv)
			d->provider_id = detail_text(json_object_get_string(iv),
						     strlen(json_object_get_string(iv)), 128, NULL);
	}
	json_object_put(doc);
	free(ex);
}

static int retry_after(CURL *h)
{
	curl_off_t ra = 0;
	if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra) != CURLE_OK || ra < 0)
		return 0;
	return ra > 86400 ? 86400 : (int)ra;
}

static void judge_status(struct sms_priv *p, struct xfer *x, long code, struct delivery *d)
{
	if (status_ok(p, code)) {
		judge_success(p, x, code, d);
		return;
	}
	char *ex = reply_excerpt(p, x);
	if (code == 429 || code == 503)
		delivery_set(d, DLV_TEMPFAIL, retry_after(x->h), "HTTP %ld: %s", code, ex);
	else if (code >= 500 || code == 408)
		delivery_set(d, DLV_TEMPFAIL, 0, "HTTP %ld: %s", code, ex);
	else if (code == 401 || code == 402 || code == 403 || code == 407)
		delivery_set(d, DLV_DOWN, 0, "HTTP %ld: the provider refused our account "
			     "(credentials, balance): %s", code, ex);
	else if (code >= 300 && code < 400)
		delivery_set(d, DLV_DOWN, 0, "HTTP %ld: redirect not followed; check [sms] url", code);
	else if (code >= 200 && code < 300)
		delivery_set(d, DLV_PERMFAIL, 0, "HTTP %ld is not in [sms] success_status (the SMS "
			     "may have gone out; not retried): %s", code, ex);
	else if (code >= 400)
		delivery_set(d, DLV_PERMFAIL, 0, "HTTP %ld: %s", code, ex);
	else
		delivery_set(d, DLV_TEMPFAIL, 0, "HTTP %ld: unexpected status", code);
	free(ex);
}

/* A transfer that ended without an HTTP reply. */
static void judge_error(struct xfer *x, CURLcode rc, struct delivery *d)
{
	const char *msg = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
	curl_off_t connected = 0;
	curl_easy_getinfo(x->h, CURLINFO_CONNECT_TIME_T, &connected);
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_SSL_CONNECT_ERROR:
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_UNSUPPORTED_PROTOCOL:
	case CURLE_URL_MALFORMAT:
		delivery_set(d, DLV_DOWN, 0, "%s", msg);
		break;
	case CURLE_OPERATION_TIMEDOUT:
		if (connected == 0)
			delivery_set(d, DLV_DOWN, 0, "%s", msg);
		else
			delivery_set(d, DLV_TEMPFAIL, 0, "%s (the SMS may have gone out)", msg);
		break;
	default:
		delivery_set(d, DLV_TEMPFAIL, 0, "%s (the SMS may have gone out)", msg);
		break;
	}
}

/* ---- the batch loop ---- */

struct batch_state {
	struct notice *const *batch;
	size_t n, next, active;
	struct delivery *out;
	char *down;                   /* why the channel is down, once it is */
};

/* Milliseconds until a token is available (0: one is). */
static long bucket_wait(struct sms_priv *p)
{
	if (p->rate <= 0)
		return 0;
	int64_t now = mono_ms();
	p->tokens += (double)(now - p->last_refill) * p->rate / 1000.0;
	p->last_refill = now;
	/* At most one and a half tokens: a wake-up that comes late (the
	 * poll's millisecond granularity, a busy machine) by up to half an
	 * interval is made up by the next start instead of being lost, yet a
	 * one-second window never holds more than rate + 1 starts. */
	if (p->tokens > 1.5)
		p->tokens = 1.5;
	if (p->tokens >= 1)
		return 0;
	return (long)ceil((1 - p->tokens) * 1000.0 / p->rate);
}

static struct xfer *free_xfer(struct sms_priv *p)
{
	for (int i = 0; i < p->nx; i++)
		if (!p->x[i].busy)
			return &p->x[i];
	return NULL;
}

/* Start what may start now. Returns how long the loop may sleep: until
 * the next token if one is missing, else up to a second (curl wakes the
 * loop when a transfer needs it). */
static long start_more(struct sms_priv *p, struct batch_state *b)
{
	while (b->next < b->n && b->down == NULL) {
		struct xfer *x = free_xfer(p);
		if (x == NULL)
			return 1000;
		long wait = bucket_wait(p);
		if (wait > 0)
			return wait;
		size_t i = b->next++;
		if (prepare(p, x, b->batch[i], &b->out[i]) < 0)
			continue;
		if (p->rate > 0)
			p->tokens -= 1;
		x->busy = true;
		x->idx = i;
		curl_multi_add_handle(p->multi, x->h);
		b->active++;
	}
	return 1000;
}

/* Judge finished transfers and free their handles; returns how many. */
static int collect_done(struct sms_priv *p, struct batch_state *b)
{
	CURLMsg *m;
	int left, done = 0;
	while ((m = curl_multi_info_read(p->multi, &left)) != NULL) {
		if (m->msg != CURLMSG_DONE)
			continue;
		struct xfer *x = NULL;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
		CURLcode rc = m->data.result;
		struct delivery *d = &b->out[x->idx];
		long code = 0;
		if (rc == CURLE_OK) {
			curl_easy_getinfo(x->h, CURLINFO_RESPONSE_CODE, &code);
			judge_status(p, x, code, d);
		} else {
			judge_error(x, rc, d);
		}
		if (d->outcome == DLV_DOWN && b->down == NULL)
			b->down = xstrdup(d->detail);
		curl_multi_remove_handle(p->multi, x->h);
		x->busy = false;
		b->active--;
		done++;
	}
	return done;
}

static void sms_send(struct channel *ch, struct notice *const *batch, size_t n,
		     struct delivery *out)
{
	struct sms_priv *p = ch->priv;
	struct batch_state b = { .batch = batch, .n = n, .out = out };
	for (size_t i = 0; i < n; i++)
		memset(&out[i], 0, sizeof(out[i]));
	struct sigpipe_guard g;
	sigpipe_block(&g);
	for (;;) {
		long wait = start_more(p, &b);
		if (b.down != NULL)
			for (; b.next < b.n; b.next++)
				delivery_set(&out[b.next], DLV_DOWN, 0, "not attempted: %s", b.down);
		int running = 0;
		curl_multi_perform(p->multi, &running);
		int done = collect_done(p, &b);
		if (b.next >= b.n && b.active == 0)
			break;
		if (done > 0)
			continue;      /* handles came free: start more first */
		curl_multi_poll(p->multi, NULL, 0, (int)wait, NULL);
	}
	sigpipe_restore(&g);
	if (b.down)
		log_warnx("sms: provider unavailable: %s", b.down);
	free(b.down);
}

const struct channel_ops channel_sms_ops = {
	.name = "sms",
	.open = sms_open,
	.send = sms_send,
	.close = sms_close,
};
