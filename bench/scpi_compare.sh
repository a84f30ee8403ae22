#!/usr/bin/env bash
# SCPI speed, tofu-instruments against pyvisa-py, on the same simulated instrument: the
# `tofu-sim` process serving its DMM on a loopback port. Measures `*IDN?` round trips per second
# and the median time to read a 1 MiB definite-length block (`TRAC:DATA?`), then prints the
# ratios.
#
#   bash bench/scpi_compare.sh [QUERIES] [BLOCKS]     (defaults: 10000 queries, 20 blocks)
#
# Needs python3 (with venv), a Rust toolchain, and PyPI the first time: pyvisa and pyvisa-py
# are installed into target/scpi-bench-venv (created here, outside the sources).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
queries="${1:-10000}"
blocks="${2:-20}"
for n in "$queries" "$blocks"; do
    case "$n" in ''|*[!0-9]*|0) echo "scpi_compare.sh: \`$n\` is not a whole number ≥ 1" >&2; exit 2 ;; esac
done

venv="$root/target/scpi-bench-venv"
if [ ! -x "$venv/bin/python" ]; then
    echo "== creating $venv (pyvisa, pyvisa-py)"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check pyvisa pyvisa-py
fi

echo "== building tofu-sim and the tofu client (release)"
cargo build --quiet --release --manifest-path "$root/Cargo.toml" -p tofu-sim -p tofu-instruments --bin tofu-sim --example scpi_rate

sim_out="$(mktemp)"
"$root/target/release/tofu-sim" --listen 127.0.0.1:0 >"$sim_out" &
sim_pid=$!
trap 'kill "$sim_pid" 2>/dev/null || true; rm -f "$sim_out"' EXIT
for _ in $(seq 100); do
    [ -s "$sim_out" ] && break
    sleep 0.05
done
address="$(awk '{print $2}' "$sim_out")"
[ -n "$address" ] || { echo "scpi_compare.sh: tofu-sim printed no address" >&2; exit 1; }
echo "== simulator: $address (pid $sim_pid); $queries queries, $blocks block reads each"

tofu="$("$root/target/release/examples/scpi_rate" "$address" "$queries" "$blocks")"
py="$("$venv/bin/python" "$here/scpi_rate.py" "$address" "$queries" "$blocks")"
echo "tofu:      $tofu"
echo "pyvisa-py: $py"

python3 - "$tofu" "$py" <<'PY'
import json, sys
t, p = json.loads(sys.argv[1]), json.loads(sys.argv[2])
print()
print("| measure | pyvisa-py %s | tofu | ratio |" % p["pyvisa"])
print("|---|---|---|---|")
print("| `*IDN?` round trips/s | %.0f | %.0f | %.1f× |" % (p["query_rate"], t["query_rate"], t["query_rate"] / p["query_rate"]))
print("| `*IDN?` round trips/s, tofu reading `SYST:ERR?` after each | %.0f | %.0f | %.1f× |" % (p["query_rate"], t["checked_query_rate"], t["checked_query_rate"] / p["query_rate"]))
print("| `*IDN?` round trips/s, a plain Python socket loop (no VISA layer) | %.0f | | |" % p["plain_socket_query_rate"])
print("| 1 MiB block read (`TRAC:DATA?`), median ms | %.2f | %.2f | %.1f× |" % (p["block_median_s"] * 1e3, t["block_median_s"] * 1e3, p["block_median_s"] / t["block_median_s"]))
assert t["block_bytes"] == p["block_bytes"] == 1048576, (t, p)
PY
echo
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
