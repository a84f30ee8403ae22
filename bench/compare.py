#!/usr/bin/env python3
"""Runs OpenHTF's benchmark script and tofu's `bench` example on the same workloads and prints
the medians side by side, as Markdown. Called by `bench/compare.sh`, which prepares both.

Each workload is run R times per program, alternating (OpenHTF, tofu, OpenHTF, tofu…), each
run under `/usr/bin/time -v` for its peak RSS, after `sync`. Timings are the ones each program measures
inside its process (`TIMING` line): execute = `Test.execute`, json = writing the record.
"""

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Where tofu's record is also written, for a few workloads, to show what the disk flush costs
# (tofu syncs the record to disk before linking it into place; OpenHTF doesn't sync).
TMPFS = "/dev/shm"
TMPFS_WORKLOADS = ("1000×10", "1×1 + 1M points")

WORKLOADS = [
    # (label, phases, measurements per phase, points)
    ("100×10", 100, 10, 0),
    ("1000×10", 1000, 10, 0),
    ("1000×0", 1000, 0, 0),
    ("1×10000", 1, 10000, 0),
    ("1×1 + 100k points", 1, 1, 100_000),
    ("1×1 + 1M points", 1, 1, 1_000_000),
]

# Start-up of OpenHTF to its first phase (its phase prints the wall clock when it starts).
OPENHTF_FIRST_PHASE = Path(__file__).resolve().parent / "openhtf_first_phase.py"

# The floor for 1M points on the machine the targets were set on (execute+json s, peak MiB).
FLOOR_1M = (0.16, 33.0)


def log(message):
    print(message, file=sys.stderr, flush=True)


def fail(message):
    print(f"compare.py: {message}", file=sys.stderr)
    sys.exit(1)


def run(cmd, what):
    """Runs `cmd`; returns (stdout, stderr, wall seconds, spawn time in Unix ns).

    Dirty pages of earlier runs are written out first, so that no run's file sync pays for the
    files an earlier run left unsynced (OpenHTF doesn't sync its records; tofu does)."""
    os.sync()
    spawn_ns = time.time_ns()
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        fail(f"{what} failed (exit {p.returncode}): {' '.join(cmd)}\n"
             f"--- stdout\n{p.stdout}--- stderr\n{p.stderr}")
    return p.stdout, p.stderr, wall, spawn_ns


def fields(stdout, tag):
    """The key=value pairs of the line starting with `tag`."""
    for line in stdout.splitlines():
        if line.startswith(tag + " "):
            return dict(kv.split("=", 1) for kv in line.split()[1:] if "=" in kv)
    return None


def bench_run(cmd, what):
    """One run under /usr/bin/time -v: the RESULT and TIMING fields, and peak RSS in MiB."""
    stdout, stderr, _, _ = run(["/usr/bin/time", "-v"] + cmd, what)
    result, timing = fields(stdout, "RESULT"), fields(stdout, "TIMING")
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", stderr)
    if result is None or timing is None or rss is None:
        fail(f"{what}: no RESULT/TIMING line or peak RSS in its output\n"
             f"--- stdout\n{stdout}--- stderr\n{stderr}")
    if result.get("passed") != "True" or result.get("outcome") != "PASS":
        fail(f"{what} did not pass: {result}")
    return {
        "execute_s": float(timing["execute_s"]),
        "json_s": float(timing["json_s"]),
        "build_s": float(timing["build_s"]),
        "total_s": float(timing["execute_s"]) + float(timing["json_s"]),
        "rss_mib": int(rss.group(1)) / 1024,
        "phase_records": int(result["phase_records"]),
        "measurements_total": int(result["measurements_total"]),
        "log_records": int(result["log_records"]),
        "json_bytes": int(result["json_bytes"]),
    }


def median(runs, key):
    return statistics.median(r[key] for r in runs)


def fmt_s(x):
    """Seconds, with at least 3 decimals and 3 significant digits (tofu's timings)."""
    if x < 0:
        return "-" + fmt_s(-x)
    if x == 0:
        return "0"
    decimals = max(3, 2 - math.floor(math.log10(x)))
    return f"{x:.{decimals}f}"


def fmt_s3(x):
    """Seconds as OpenHTF's script measures them: 3 decimals."""
    return f"{x:.3f}"


def fmt_ratio(a, b):
    if b <= 0:
        return "∞"
    r = a / b
    return f"{r:,.0f}×" if r >= 10 else f"{r:.1f}×"


def table(header, rows):
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows)]
    line = lambda cells: "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths)) + " |"
    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(r) for r in rows]
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--startup-runs", type=int, default=10)
    parser.add_argument("--tofu", required=True, help="the bench example's executable")
    parser.add_argument("--python", required=True, help="the Python that has openhtf 1.6.3")
    parser.add_argument("--reference", required=True, help="bench_openhtf.py")
    parser.add_argument("--results", required=True, help="folder for the raw results")
    args = parser.parse_args()
    if args.runs < 1 or args.startup_runs < 1:
        fail("--runs and --startup-runs must be ≥ 1")

    results = {"runs": args.runs, "startup_runs": args.startup_runs, "workloads": {},
               "loadavg_before": Path("/proc/loadavg").read_text().split()[:3]}
    use_tmpfs = os.path.isdir(TMPFS) and os.access(TMPFS, os.W_OK)
    with tempfile.TemporaryDirectory(prefix="tofu-bench-") as work:
        out_openhtf = os.path.join(work, "openhtf.json")
        out_tofu = os.path.join(work, "tofu.json")

        for label, phases, meas, points in WORKLOADS:
            flags = ["--phases", str(phases), "--measurements", str(meas), "--points", str(points)]
            runs = {"openhtf": [], "tofu": []}
            for i in range(args.runs):
                log(f"== {label}: run {i + 1}/{args.runs}")
                runs["openhtf"].append(bench_run(
                    [args.python, args.reference, *flags, "--out", out_openhtf],
                    f"OpenHTF {label}"))
                runs["tofu"].append(bench_run(
                    [args.tofu, *flags, "--out", out_tofu, "--timing-decimals", "6"],
                    f"tofu {label}"))
                for f in (out_openhtf, out_tofu):
                    os.remove(f)
                if use_tmpfs and label in TMPFS_WORKLOADS:
                    out_tmpfs = os.path.join(TMPFS, f"tofu-bench-{os.getpid()}.json")
                    runs.setdefault("tofu_tmpfs", []).append(bench_run(
                        [args.tofu, *flags, "--out", out_tmpfs, "--timing-decimals", "6"],
                        f"tofu {label} on {TMPFS}"))
                    os.remove(out_tmpfs)
                o, t = runs["openhtf"][-1], runs["tofu"][-1]
                log(f"   OpenHTF execute {o['execute_s']:.3f} s json {o['json_s']:.3f} s "
                    f"rss {o['rss_mib']:.1f} MiB | tofu execute {t['execute_s']:.6f} s "
                    f"json {t['json_s']:.6f} s rss {t['rss_mib']:.1f} MiB")
            results["workloads"][label] = runs

        log("== start-up")
        startup = {k: [] for k in ("python_pass", "python_import_openhtf", "openhtf_empty_test",
                                   "openhtf_import_s", "openhtf_first_phase", "tofu_empty_test",
                                   "tofu_first_phase", "tofu_main_to_first_phase")}
        for _ in range(args.startup_runs):
            startup["python_pass"].append(run([args.python, "-c", "pass"], "python -c pass")[2])
            startup["python_import_openhtf"].append(
                run([args.python, "-c", "import openhtf"], "python -c 'import openhtf'")[2])
            stdout, _, wall, _ = run([args.python, args.reference, "--phases", "0",
                                      "--measurements", "0", "--out", out_openhtf],
                                     "OpenHTF empty test")
            startup["openhtf_empty_test"].append(wall)
            startup["openhtf_import_s"].append(float(fields(stdout, "TIMING")["import_s"]))
            stdout, _, _, spawn_ns = run([args.python, str(OPENHTF_FIRST_PHASE)],
                                         "OpenHTF first phase")
            stamp = re.search(r"FIRST_PHASE_UNIX_NS=(\d+)", stdout)
            if stamp is None:
                fail(f"OpenHTF first phase: no stamp in its output:\n{stdout}")
            startup["openhtf_first_phase"].append((int(stamp.group(1)) - spawn_ns) / 1e9)

            startup["tofu_empty_test"].append(
                run([args.tofu, "--phases", "0", "--measurements", "0", "--out", out_tofu],
                    "tofu empty test")[2])
            stdout, _, _, spawn_ns = run([args.tofu, "--phases", "1", "--measurements", "0",
                                          "--out", out_tofu, "--first-phase-stamp"],
                                         "tofu first phase")
            stamp = fields(stdout, "STARTUP")
            if stamp is None or "first_phase_unix_ns" not in stamp:
                fail(f"tofu first phase: no stamp in its output:\n{stdout}")
            startup["tofu_first_phase"].append((int(stamp["first_phase_unix_ns"]) - spawn_ns) / 1e9)
            startup["tofu_main_to_first_phase"].append(float(stamp["main_to_first_phase_s"]))
        results["startup"] = startup
    results["loadavg_after"] = Path("/proc/loadavg").read_text().split()[:3]

    # The tables.
    w = results["workloads"]
    rows = []
    for label, *_ in WORKLOADS:
        o, t = w[label]["openhtf"], w[label]["tofu"]
        row = [label]
        for key in ("execute_s", "json_s", "total_s"):
            row += [fmt_s3(median(o, key)), fmt_s(median(t, key)),
                    fmt_ratio(median(o, key), median(t, key))]
        row += [f"{median(o, 'rss_mib'):.1f}", f"{median(t, 'rss_mib'):.1f}",
                fmt_ratio(median(o, "rss_mib"), median(t, "rss_mib"))]
        rows.append(row)
    main_table = table(
        ["workload",
         "execute s OpenHTF", "tofu", "ratio",
         "json s OpenHTF", "tofu", "ratio",
         "execute+json s OpenHTF", "tofu", "ratio",
         "peak RSS MiB OpenHTF", "tofu", "ratio"],
        rows)

    record_rows = []
    for label, *_ in WORKLOADS:
        o, t = w[label]["openhtf"][-1], w[label]["tofu"][-1]
        record_rows.append([
            label, o["phase_records"], t["phase_records"], o["measurements_total"],
            t["measurements_total"], o["log_records"], t["log_records"],
            f"{o['json_bytes']:,}", f"{t['json_bytes']:,}",
            fmt_s3(median(w[label]["openhtf"], "build_s")), fmt_s(median(w[label]["tofu"], "build_s"))])
    records_table = table(
        ["workload", "phase records OpenHTF", "tofu", "measurements OpenHTF", "tofu",
         "log records OpenHTF", "tofu", "JSON bytes OpenHTF", "tofu", "build s OpenHTF", "tofu"],
        record_rows)

    s = {k: statistics.median(v) for k, v in startup.items()}
    per_phase_o = median(w["1000×0"]["openhtf"], "execute_s") / 1000
    per_phase_t = median(w["1000×0"]["tofu"], "execute_s") / 1000
    startup_table = table(
        ["start-up (median of %d)" % args.startup_runs, "OpenHTF", "tofu", "ratio"],
        [
            ["interpreter alone (`python -c pass`), wall", f"{s['python_pass'] * 1e3:.1f} ms", "—", "—"],
            ["`python -c \"import openhtf\"`, wall", f"{s['python_import_openhtf'] * 1e3:.1f} ms", "—", "—"],
            ["import of openhtf, in process (`import_s`)", f"{s['openhtf_import_s'] * 1e3:.0f} ms", "0 ms", "—"],
            ["empty test (0 phases), spawn to exit, wall",
             f"{s['openhtf_empty_test'] * 1e3:.1f} ms", f"{s['tofu_empty_test'] * 1e3:.1f} ms",
             fmt_ratio(s["openhtf_empty_test"], s["tofu_empty_test"])],
            ["spawn to start of first phase",
             f"{s['openhtf_first_phase'] * 1e3:.1f} ms", f"{s['tofu_first_phase'] * 1e3:.2f} ms",
             fmt_ratio(s["openhtf_first_phase"], s["tofu_first_phase"])],
            ["`main` to start of first phase, in process", "—",
             f"{s['tofu_main_to_first_phase'] * 1e6:.0f} µs", "—"],
            ["per-phase overhead (execute of 1000×0 / 1000)",
             f"{per_phase_o * 1e3:.3f} ms", f"{per_phase_t * 1e6:.2f} µs",
             fmt_ratio(per_phase_o, per_phase_t)],
        ])

    def ratio(label, key):
        return median(w[label]["openhtf"], key) / max(median(w[label]["tofu"], key), 1e-9)

    t1m = median(w["1×1 + 1M points"]["tofu"], "total_s")
    rss1m = median(w["1×1 + 1M points"]["tofu"], "rss_mib")
    verdict = lambda ok: "holds" if ok else "**missed**"
    targets = [
        ("per-phase overhead ≥ 100× lower", f"{per_phase_o / max(per_phase_t, 1e-12):,.0f}×",
         verdict(per_phase_o >= 100 * per_phase_t)),
        ("1000×10 execute+json ≥ 100× faster", f"{ratio('1000×10', 'total_s'):,.0f}×",
         verdict(ratio("1000×10", "total_s") >= 100)),
        ("1M points execute+json ≥ 60× faster", f"{ratio('1×1 + 1M points', 'total_s'):,.0f}×",
         verdict(ratio("1×1 + 1M points", "total_s") >= 60)),
        ("1M points peak memory ≥ 5× lower", f"{ratio('1×1 + 1M points', 'rss_mib'):.1f}×",
         verdict(ratio("1×1 + 1M points", "rss_mib") >= 5)),
        (f"1M points within 2× of the floor ({FLOOR_1M[0]} s, {FLOOR_1M[1]:.0f} MB)",
         f"{t1m:.3f} s ({t1m / FLOOR_1M[0]:.1f}×), {rss1m:.1f} MiB ({rss1m / FLOOR_1M[1]:.1f}×)",
         verdict(t1m <= 2 * FLOOR_1M[0] and rss1m <= 2 * FLOOR_1M[1])),
        ("start-up to first phase < 10 ms", f"{s['tofu_first_phase'] * 1e3:.2f} ms",
         verdict(s["tofu_first_phase"] < 0.010)),
    ]
    targets_table = table(["target", "measured", "verdict"], [list(t) for t in targets])

    cpus = os.cpu_count() or 1
    busiest = max(float(x) for x in results["loadavg_before"][:1] + results["loadavg_after"][:1])
    busy = (f" **The machine was busy (load average up to {busiest:.1f} on {cpus} CPUs): "
            "timings are noisy.**" if busiest > cpus / 2 else "")
    parts = [
        f"Medians of {args.runs} run(s) per workload and program (start-up: {args.startup_runs}); "
        f"load average {' '.join(results['loadavg_before'])} before, "
        f"{' '.join(results['loadavg_after'])} after.{busy}",
        main_table, startup_table, targets_table,
        "Records written (last run) and build times (median):", records_table,
    ]
    if use_tmpfs:
        tmpfs_rows = []
        for label in TMPFS_WORKLOADS:
            disk, mem = w[label]["tofu"], w[label]["tofu_tmpfs"]
            tmpfs_rows.append([
                label, fmt_s(median(disk, "json_s")), fmt_s(median(mem, "json_s")),
                fmt_s(median(disk, "json_s") - median(mem, "json_s")),
                fmt_s(median(mem, "total_s")),
                fmt_ratio(median(w[label]["openhtf"], "total_s"), median(mem, "total_s"))])
        parts += [
            f"tofu's JSON write to disk (as above) and to {TMPFS} (tmpfs: the fsync costs "
            "nothing), medians:",
            table(["workload", "json s, disk", f"json s, {TMPFS}", "difference (disk flush)",
                   f"execute+json s, {TMPFS}", "OpenHTF (disk) / tofu (tmpfs)"], tmpfs_rows)]
    markdown = "\n\n".join(parts) + "\n"
    print(markdown)

    Path(args.results).mkdir(parents=True, exist_ok=True)
    (Path(args.results) / "latest.json").write_text(json.dumps(results, indent=1) + "\n")
    (Path(args.results) / "latest.md").write_text(markdown)
    log(f"== raw results in {args.results}/latest.json, tables in {args.results}/latest.md")


if __name__ == "__main__":
    main()
