#!/usr/bin/env bash
# The message fuzzer (libFuzzer + ASan + UBSan, tests/fuzz/run) for a
# bounded time: hostile mail must never crash, hang or leak. `make fuzz`
# runs it longer.
set -u
cd "$(dirname "$0")/../.."
echo "1..1"
secs=${EIMZA_FUZZ_SECONDS:-45}
if out=$(tests/fuzz/run --seconds "$secs" 2>&1); then
	echo "$out" | grep -E '^#[0-9]+.*DONE|stat::number_of_executed_units' | tail -1 | sed 's/^/# /'
	echo "ok 1 - message fuzzer ran ${secs}s without a crash, leak or hang"
else
	echo "$out" | tail -40 | sed 's/^/# /'
	echo "not ok 1 - message fuzzer found a problem (reproducer in build/fuzz/)"
fi
