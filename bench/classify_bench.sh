#!/bin/sh
# classify_bench.sh: how much classification and extraction add to parsing.
#
#   bench/classify_bench.sh [ROUNDS]
#
# Builds bench/classify_bench against build/libeimza.a (run `make` first),
# then over the synthetic corpus in tests/fixtures/mail:
#   1. messages/s through classify_raw(), message_parse() alone and
#      classify() alone (wall clock, ROUNDS passes, default 200);
#   2. callgrind instruction counts per message: message_parse and classify
#      inclusive, from one classify_raw() pass (deterministic: no timing
#      noise from the other work on the machine).
# The target: classify (without parse) costs no more than the parse.
set -eu
cd "$(dirname "$0")/.."
rounds=${1:-200}
build=${BUILD:-build}
bin=$build/classify_bench
[ -f "$build/libeimza.a" ] || { echo "run make first" >&2; exit 1; }
pkgs="libetpan libesmtp-1.0 libcurl json-c gnutls libsystemd openssl"
# shellcheck disable=SC2046
cc -Ilib -D_GNU_SOURCE -std=c11 -O2 -g -Wall -Wextra $(pkg-config --cflags $pkgs) \
    -o "$bin" bench/classify_bench.c "$build/libeimza.a" \
    $(pkg-config --libs $pkgs | sed 's/-specs=[^ ]*//g') -lm -pthread
files=$(ls tests/fixtures/mail/*.eml)
n=$(echo "$files" | wc -l)

echo "== wall clock ($rounds rounds)"
# shellcheck disable=SC2086
"$bin" -n "$rounds" $files

# One callgrind run over a set of files; prints the per-message figures.
callgrind() {
    label=$1
    shift
    cnt=$#
    out=$(mktemp /tmp/classify-callgrind.XXXXXX)
    valgrind --tool=callgrind --callgrind-out-file="$out" "$bin" --raw-once "$@" >/dev/null 2>&1
    ann=$(callgrind_annotate --inclusive=yes "$out" 2>/dev/null)
    parse=$(echo "$ann" | awk '/:message_parse \[/ { gsub(",", "", $1); print $1; exit }')
    cls=$(echo "$ann" | awk '/:classify \[/ { gsub(",", "", $1); print $1; exit }')
    rm -f "$out"
    echo "== callgrind: $label ($cnt messages, one classify_raw each)"
    echo "message_parse:       $((parse / cnt)) Ir/msg"
    echo "classify (no parse): $((cls / cnt)) Ir/msg"
    echo "classify / parse:    $(awk -v a="$cls" -v b="$parse" 'BEGIN { printf "%.2f", a / b }')"
}

if command -v valgrind >/dev/null 2>&1 && command -v callgrind_annotate >/dev/null 2>&1; then
    # shellcheck disable=SC2086
    callgrind "the whole corpus" $files
    # shellcheck disable=SC2046
    callgrind "without the hostile ones" $(echo "$files" | grep -v hostile)
fi
