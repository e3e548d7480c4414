/* Unit tests of the TLS tunnel's own parts, on loopback: it takes only a
 * connection that comes from this process (one from another process, a
 * forked child that runs this binary again with --connect, is closed, and
 * the server is dialled for nobody but us), exactly one, and
 * it reports connect failures and stops promptly. Handshakes, the relay
 * and certificate checks are tested against a real server through the
 * SMTP channel (tests/integration/test_channels.py). */
#include "testutil.h"

#include "tls_tunnel.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* A plain TCP listener on 127.0.0.1 standing in for the SMTP server. */
static int listen_local(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);
	assert_true(fd >= 0);
	assert_int_equal(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(fd, 4), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	*port = ntohs(a.sin_port);
	return fd;
}

/* A port nobody listens on (bound, then closed). */
static int closed_port(void)
{
	int port;
	close(listen_local(&port));
	return port;
}

/* A blocking connection to 127.0.0.1:port, or -1. */
static int connect_local(int port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

static bool readable(int fd, int ms)
{
	struct pollfd pf = { .fd = fd, .events = POLLIN };
	return poll(&pf, 1, ms) == 1;
}

/* Does the peer close fd within ms (EOF or reset, no data)? */
static bool closed_by_peer(int fd, int ms)
{
	char c;
	if (!readable(fd, ms))
		return false;
	ssize_t n = read(fd, &c, 1);
	return n == 0 || (n < 0 && errno == ECONNRESET);
}

static struct tls_tunnel *open_tunnel(int port, long timeout_ms)
{
	X509_STORE *store = X509_STORE_new();
	struct tls_tunnel_conf tc = { .host = "127.0.0.1", .port = port, .store = store,
				      .timeout_ms = timeout_ms, .log_prefix = "test: tunnel" };
	struct tls_tunnel *t = NULL;
	char *err = NULL;
	assert_int_equal(tls_tunnel_open(&tc, &t, &err), 0);
	assert_null(err);
	X509_STORE_free(store);    /* the tunnel keeps its own reference */
	assert_true(tls_tunnel_port(t) > 0);
	return t;
}

/* The other process: connect, and exit 0 if the tunnel closes the
 * connection, 3 if it keeps it. (It runs exec()ed, not as a bare fork:
 * then it owns nothing of ours, and valgrind and the sanitizers look at
 * it as the separate program it is.) */
static int foreign_main(const char *port)
{
	int fd = connect_local(atoi(port));
	return fd < 0 ? 2 : closed_by_peer(fd, 4000) ? 0 : 3;
}

/* Another process connects first: refused, and the server is not dialled
 * for it; then our own connection is taken, the server dialled, and the
 * listener closed. */
static void test_foreign_connection_refused(void **state)
{
	const char *self = *state;
	int sport;
	int server = listen_local(&sport);
	struct tls_tunnel *t = open_tunnel(sport, 5000);
	char port[16];
	snprintf(port, sizeof(port), "%d", tls_tunnel_port(t));
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		execl(self, self, "--connect", port, (char *)NULL);
		_exit(127);
	}
	int status = 0;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);       /* 3: the tunnel kept it */
	assert_false(readable(server, 300));            /* nobody dialled out */

	int own = connect_local(atoi(port));
	assert_true(own >= 0);
	assert_true(readable(server, 5000));            /* dialled for us */
	int s = accept(server, NULL, NULL);
	assert_true(s >= 0);
	assert_int_equal(connect_local(atoi(port)), -1);  /* one connection only */
	assert_int_equal(errno, ECONNREFUSED);

	close(s);                                       /* no TLS: the handshake fails */
	assert_true(closed_by_peer(own, 5000));
	char *failure = NULL;
	tls_tunnel_close(t, &failure);
	assert_non_null(failure);
	assert_non_null(strstr(failure, "TLS handshake with 127.0.0.1:"));
	free(failure);
	close(own);
	close(server);
}

static void test_connect_refused(void **state)
{
	int sport = closed_port();
	struct tls_tunnel *t = open_tunnel(sport, 5000);
	int own = connect_local(tls_tunnel_port(t));
	assert_true(own >= 0);
	assert_true(closed_by_peer(own, 5000));
	char *failure = NULL, *want = xasprintf("connect to 127.0.0.1:%d: Connection refused", sport);
	tls_tunnel_close(t, &failure);
	assert_non_null(failure);
	assert_string_equal(failure, want);
	free(want);
	free(failure);
	close(own);
}

/* Closing a tunnel nobody connected to returns at once, without a
 * failure; one left to its timeout says so. */
static void test_stop_and_accept_timeout(void **state)
{
	int sport;
	int server = listen_local(&sport);
	struct tls_tunnel *t = open_tunnel(sport, 10000);
	int64_t t0 = mono_ms();
	char *failure = (char *)"unset";
	tls_tunnel_close(t, &failure);
	assert_null(failure);
	assert_true(mono_ms() - t0 < 1000);

	t = open_tunnel(sport, 100);
	usleep(300 * 1000);
	tls_tunnel_close(t, &failure);
	assert_non_null(failure);
	assert_string_equal(failure, "nobody connected to the tunnel within 100 ms");
	free(failure);
	assert_false(readable(server, 0));
	tls_tunnel_close(NULL, &failure);
	assert_null(failure);
	close(server);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--connect") == 0)
		return foreign_main(argv[2]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_prestate(test_foreign_connection_refused, argv[0]),
		cmocka_unit_test(test_connect_refused),
		cmocka_unit_test(test_stop_and_accept_timeout),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
