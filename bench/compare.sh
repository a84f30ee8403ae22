#!/usr/bin/env bash
# Runs the same benchmark tests on OpenHTF 1.6.3 and on tofu, one after the other, and prints a
# table of medians (execute, JSON, execute+JSON, peak RSS, start-up) with OpenHTF/tofu ratios.
#
#   bash bench/compare.sh [--runs R]      (R runs of each workload per program; 3 by default)
#
# Needs python3 (with venv), a Rust toolchain, network access to PyPI the first time, and
# OpenHTF's benchmark script (fixtures/openhtf/bench_openhtf.py). OpenHTF is installed into
# bench/.venv. Raw results go to bench/results/.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
runs=3

usage() { echo "usage: bash bench/compare.sh [--runs R]"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) [ $# -ge 2 ] || { echo "compare.sh: --runs needs a value" >&2; usage >&2; exit 2; }
                runs="$2"; shift 2 ;;
        --runs=*) runs="${1#--runs=}"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "compare.sh: unknown argument \`$1\`" >&2; usage >&2; exit 2 ;;
    esac
done
case "$runs" in
    ''|*[!0-9]*|0) echo "compare.sh: --runs: \`$runs\` is not a whole number ≥ 1" >&2; exit 2 ;;
esac

reference="$root/fixtures/openhtf/bench_openhtf.py"
if [ ! -f "$reference" ]; then
    echo "compare.sh: OpenHTF's benchmark script is missing: expected $reference" >&2
    exit 1
fi
reference="$(cd "$(dirname "$reference")" && pwd)/$(basename "$reference")"

# GNU time, for peak RSS.
if [ ! -x /usr/bin/time ]; then
    echo "== /usr/bin/time is missing: installing GNU time"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo="sudo"
    $sudo apt-get update -qq && $sudo apt-get install -y -qq time
fi

# OpenHTF 1.6.3 in a local virtual environment.
venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
    echo "== creating $venv"
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c 'import importlib.metadata as m, sys; sys.exit(m.version("openhtf") != "1.6.3")' 2>/dev/null; then
    echo "== installing openhtf==1.6.3 into $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check openhtf==1.6.3
fi

echo "== building the tofu benchmark (release)"
(cd "$root" && cargo build --quiet --release -p examples --example bench)
target_dir="$(cd "$root" && cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
tofu="$target_dir/release/examples/bench"
[ -x "$tofu" ] || { echo "compare.sh: the build made no $tofu" >&2; exit 1; }

exec python3 "$here/compare.py" --runs "$runs" --tofu "$tofu" --python "$venv/bin/python" \
    --reference "$reference" --results "$here/results"
