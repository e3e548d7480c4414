# eimzad: build, run, test, install.
#
#   make deps      install the Debian packages the build and tests need
#   make           build daemon/eimzad and daemon/eimzactl into build/
#   make run       deps + build + the local demo (no servers needed)
#   make test      deps + a sanitizer build + unit and integration tests
#   make bench     benchmarks (see bench/README.md)
#   make fuzz      the message fuzzer, for longer than make test runs it
#   make install   PREFIX, DESTDIR, SYSCONFDIR, LOCALSTATEDIR apply

PREFIX        ?= /usr/local
SYSCONFDIR    ?= /etc
LOCALSTATEDIR ?= /var
BINDIR        ?= $(PREFIX)/bin
SBINDIR       ?= $(PREFIX)/sbin
DATADIR       ?= $(PREFIX)/share
MANDIR        ?= $(DATADIR)/man
UNITDIR       ?= /lib/systemd/system
DESTDIR       ?=

CC      ?= cc
# V=1 shows the commands; by default each step prints one short line.
V       ?= 0
ifeq ($(V),0)
say      = @printf '  %-5s %s\n' $(1) $(2);
endif
BUILD   ?= build
WERROR  ?= 0
SAN     ?=

PKGS := libetpan libesmtp-1.0 libcurl json-c gnutls libsystemd openssl

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wformat=2 -Wmissing-prototypes \
        -Wno-unused-parameter -Wpointer-arith -Wvla
ifeq ($(WERROR),1)
WARN += -Werror
endif

ifeq ($(SAN),1)
OPT := -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=undefined
SANLD := -fsanitize=address,undefined
else ifeq ($(SAN),thread)
# The threads (ingest workers, outbox workers) under ThreadSanitizer:
#   make BUILD=build/tsan SAN=thread unit
#   setarch -R tests/run --build build/tsan --only test_backlog
# (setarch -R: TSan needs the address layout ASLR moves on newer kernels.)
OPT := -O1 -g -fsanitize=thread
SANLD := -fsanitize=thread
else
OPT := -O2 -g
SANLD :=
endif

PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libetpan's .pc drags in a dpkg link spec that breaks sanitizer and
# fuzzer links; it is not needed.
PKG_LIBS   = $(filter-out -specs=%,$(shell pkg-config --libs $(PKGS) 2>/dev/null))

CPPFLAGS += -Ilib -D_GNU_SOURCE \
            -DSYSCONFDIR='"$(SYSCONFDIR)"' -DLOCALSTATEDIR='"$(LOCALSTATEDIR)"' \
            -DDATADIR='"$(DATADIR)"'
CFLAGS   += -std=c11 $(OPT) $(WARN) $(PKG_CFLAGS) -pthread
LDFLAGS  += $(SANLD) -pthread
LDLIBS   += $(PKG_LIBS) -lm

LIB_SRC  := $(sort $(wildcard lib/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:%.c=$(BUILD)/%)
TEST_HELPERS := $(sort $(wildcard tests/unit/helpers/*.c))
TEST_HELPER_OBJ := $(TEST_HELPERS:%.c=$(BUILD)/%.o)
# Helper programs that integration tests drive, and benchmark programs.
TOOL_SRC := $(sort $(wildcard tests/tools/*.c) $(wildcard bench/*.c))
TOOL_BIN := $(TOOL_SRC:%.c=$(BUILD)/%)

BINS := $(BUILD)/eimzad $(BUILD)/eimzactl

.SECONDARY:
.PHONY: all deps run test unit check bench fuzz install uninstall clean distclean
.DEFAULT_GOAL := all

all: $(BINS)

$(BUILD)/%.o: %.c $(wildcard lib/*.h) | $(BUILD)
	@mkdir -p $(dir $@)
	$(call say,CC,$<)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(BUILD):
	@mkdir -p $(BUILD)

$(BUILD)/libeimza.a: $(LIB_OBJ)
	@rm -f $@
	$(call say,AR,$@)ar rcs $@ $^

$(BUILD)/eimzad: $(BUILD)/daemon/eimzad.o $(BUILD)/libeimza.a
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/eimzactl: $(BUILD)/daemon/eimzactl.o $(BUILD)/libeimza.a
	$(call say,LD,$@)$(CC) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/unit/test_%: tests/unit/test_%.c $(BUILD)/libeimza.a $(TEST_HELPER_OBJ) $(wildcard lib/*.h)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(CPPFLAGS) -Itests/unit/helpers $(CFLAGS) $(LDFLAGS) -o $@ $< $(TEST_HELPER_OBJ) \
	    $(BUILD)/libeimza.a $(LDLIBS) -lcmocka

$(TOOL_BIN): $(BUILD)/%: %.c $(BUILD)/libeimza.a $(wildcard lib/*.h)
	@mkdir -p $(dir $@)
	$(call say,LD,$@)$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< $(BUILD)/libeimza.a $(LDLIBS)

unit: $(BINS) $(UNIT_BIN) $(TOOL_BIN)

# The packages the build, the tests and the demo need (Debian 12 names).
DEPS := build-essential pkg-config libetpan-dev libesmtp-dev libcurl4-gnutls-dev \
        libjson-c-dev libgnutls28-dev libssl-dev libsystemd-dev libcmocka-dev \
        dovecot-imapd python3 python3-aiosmtpd openssl ca-certificates \
        clang libclang-rt-14-dev valgrind

deps:
	@missing=$$(for p in $(DEPS); do \
	    dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; \
	  done); \
	if [ -n "$$missing" ]; then \
	  echo "deps: installing:" $$missing; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  $$SUDO apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	fi

run: deps all
	@tests/demo/run-demo

# make test: everything under the sanitizers, into build/test.
test: deps
	@$(MAKE) --no-print-directory BUILD=build/test SAN=1 unit
	@tests/run --build build/test

check: unit
	@tests/run --build $(BUILD) --unit-only

# make bench also needs Postfix's smtp-sink, an SMTP server fast enough not
# to be what the backlog figure measures. It is installed apart from DEPS
# (make test has no use for an MTA): with debconf's "No configuration", so
# no main.cf is written and the postfix service is never set up or started,
# and with --no-remove, so it never replaces another MTA (the backlog
# figure is then skipped, and says why).
BENCH_DEPS := postfix

bench: deps all $(TOOL_BIN)
	@dpkg-query -W -f='$${Status}\n' $(BENCH_DEPS) 2>/dev/null | grep -q 'install ok installed' || { \
	  echo "bench: installing $(BENCH_DEPS) (for smtp-sink; not configured, not started)"; \
	  SUDO=; [ "$$(id -u)" = 0 ] || SUDO=sudo; \
	  echo 'postfix postfix/main_mailer_type select No configuration' | $$SUDO debconf-set-selections; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq --no-install-recommends \
	    --no-remove $(BENCH_DEPS) >/dev/null || echo "bench: $(BENCH_DEPS) not installed"; }
	@bench/run

fuzz: deps
	@tests/fuzz/run --seconds $${FUZZ_SECONDS:-600}

install: all
	install -d $(DESTDIR)$(SBINDIR) $(DESTDIR)$(BINDIR) $(DESTDIR)$(SYSCONFDIR)/eimzad \
	    $(DESTDIR)$(DATADIR)/eimzad/templates/tr $(DESTDIR)$(DATADIR)/eimzad/templates/en \
	    $(DESTDIR)$(UNITDIR) $(DESTDIR)$(MANDIR)/man8
	install -m 0755 $(BUILD)/eimzad $(DESTDIR)$(SBINDIR)/eimzad
	install -m 0755 $(BUILD)/eimzactl $(DESTDIR)$(BINDIR)/eimzactl
	install -m 0644 templates/tr/* $(DESTDIR)$(DATADIR)/eimzad/templates/tr/
	install -m 0644 templates/en/* $(DESTDIR)$(DATADIR)/eimzad/templates/en/
	for f in rules.conf holidays.conf; do \
	  [ -e $(DESTDIR)$(SYSCONFDIR)/eimzad/$$f ] || \
	    install -m 0640 conf/$$f $(DESTDIR)$(SYSCONFDIR)/eimzad/$$f; \
	done
	[ -e $(DESTDIR)$(SYSCONFDIR)/eimzad/eimzad.conf ] || \
	  sed -e 's|^templates_dir = .*|templates_dir = $(DATADIR)/eimzad/templates|' \
	      -e 's|^state_dir = .*|state_dir = $(LOCALSTATEDIR)/lib/eimzad|' \
	      -e 's|/etc/eimzad/|$(SYSCONFDIR)/eimzad/|g' conf/eimzad.conf \
	      > $(DESTDIR)$(SYSCONFDIR)/eimzad/eimzad.conf
	chmod 0640 $(DESTDIR)$(SYSCONFDIR)/eimzad/eimzad.conf
	for u in eimzad.service eimzad-purge.service; do \
	  sed -e 's|@SBINDIR@|$(SBINDIR)|g' -e 's|@BINDIR@|$(BINDIR)|g' \
	      -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' -e 's|@LOCALSTATEDIR@|$(LOCALSTATEDIR)|g' \
	      systemd/$$u.in > $(DESTDIR)$(UNITDIR)/$$u; \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$u; \
	done
	install -m 0644 systemd/eimzad-purge.timer $(DESTDIR)$(UNITDIR)/
	install -m 0644 daemon/eimzad.8 daemon/eimzactl.8 $(DESTDIR)$(MANDIR)/man8/

uninstall:
	rm -f $(DESTDIR)$(SBINDIR)/eimzad $(DESTDIR)$(BINDIR)/eimzactl \
	    $(DESTDIR)$(UNITDIR)/eimzad.service $(DESTDIR)$(UNITDIR)/eimzad-purge.service \
	    $(DESTDIR)$(UNITDIR)/eimzad-purge.timer $(DESTDIR)$(MANDIR)/man8/eimzad.8 \
	    $(DESTDIR)$(MANDIR)/man8/eimzactl.8
	rm -rf $(DESTDIR)$(DATADIR)/eimzad

clean:
	rm -rf build

distclean: clean
	rm -rf local
