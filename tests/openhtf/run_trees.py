"""Runs test trees in OpenHTF 1.6.3 for tofu's differential test (tests/tests/it/differential/).

Reads the trees (JSON, the format of `differential/tree.rs`) from the file named by
$TOFU_DIFF_IN and writes one JSON line per tree to the file named by $TOFU_DIFF_OUT:
`{"id": N, "json": SUMMARY, "mem": SUMMARY}`. `json` is what OpenHTF's JSON output writes;
`mem` is the same record read from OpenHTF's objects in memory, which differ where OpenHTF's
JSON keeps a stale outcome (semantics.md §5). A SUMMARY has the shape the Rust side builds
from tofu's record (`normalize` in `differential/compare.rs`).

Paths come from the environment: `Test.configure` parses sys.argv.
"""

import json
import logging
import os
import sys

import openhtf as htf
from openhtf.util import data, units, validators

RESULTS = {
    "continue": htf.PhaseResult.CONTINUE,
    "fail_and_continue": htf.PhaseResult.FAIL_AND_CONTINUE,
    "repeat": htf.PhaseResult.REPEAT,
    "skip": htf.PhaseResult.SKIP,
    "stop": htf.PhaseResult.STOP,
    "fail_subtest": htf.PhaseResult.FAIL_SUBTEST,
}


class RuntimeError_(Exception):
    """A phase's error: tofu's phases return `Err(RuntimeError)`."""


RuntimeError_.__name__ = "RuntimeError"
RuntimeError_.__qualname__ = "RuntimeError"


class Panic(Exception):
    """A phase's panic: tofu records the code `Panic`."""


def number(v):
    """A number of the tree: a float, or "nan", "inf", "-inf"."""
    return float(v)


def range_validator(v):
    return validators.InRange(
        minimum=v.get("min"),
        maximum=v.get("max"),
        marginal_minimum=v.get("mmin"),
        marginal_maximum=v.get("mmax"),
    )


def number_validator(v):
    if "in_range" in v:
        return range_validator(v["in_range"])
    if "within_percent" in v:
        w = v["within_percent"]
        return validators.WithinPercent(w["expected"], w["percent"], w.get("marginal"))
    if "equals" in v:
        return validators.equals(v["equals"])
    raise ValueError(f"not a number validator: {v}")


def measurement(spec):
    m = htf.Measurement(spec["name"], allow_fail=spec["allow_fail"])
    kind = spec["kind"]
    if kind == "number":
        m = m.with_units(units.VOLT)
        for v in spec["validators"]:
            m = m.with_validator(number_validator(v))
        if spec.get("precision") is not None:
            m = m.with_precision(spec["precision"])
    elif kind == "text":
        for v in spec["validators"]:
            if "equals" in v:
                m = m.equals(v["equals"])
            else:
                m = m.matches_regex(v["regex"])
    elif kind in ("bool", "json"):
        for v in spec["validators"]:
            m = m.equals(v["equals"])
    elif kind == "sweep":
        dims = [units.SECOND, units.VOLT][: spec["dims"]]
        m = m.with_dimensions(*dims).with_units(units.OHM)
        for v in spec["validators"]:
            m = m.with_validator(validators.dimension_pivot_validate(number_validator(v)))
    else:
        raise ValueError(f"unknown kind {kind}")
    return m


def set_value(test, spec, value):
    name = spec["name"]
    kind = spec["kind"]
    if kind == "number":
        test.measurements[name] = number(value)
    elif kind == "sweep":
        sweep = test.measurements[name]
        for row in value:
            coordinates = [number(c) for c in row[:-1]]
            key = coordinates[0] if len(coordinates) == 1 else tuple(coordinates)
            sweep[key] = number(row[-1])
    else:
        test.measurements[name] = value


def phase(spec):
    attempts = spec["attempts"]
    by_name = {m["name"]: m for m in spec["measurements"]}
    state = {"attempt": 0}

    def body(test):
        script = attempts[min(state["attempt"], len(attempts) - 1)]
        state["attempt"] += 1
        for s in script["sets"]:
            set_value(test, by_name[s["m"]], s["v"])
        end = script["end"]
        if end == "error":
            raise RuntimeError_("boom")
        if end == "panic":
            raise Panic("boom")
        return RESULTS[end]

    body.__name__ = spec["name"]
    options = htf.PhaseOptions(
        name=spec["name"],
        repeat_limit=spec.get("repeat_limit"),
        repeat_on_measurement_fail=spec["repeat_on_measurement_fail"],
        stop_on_measurement_fail=spec["stop_on_measurement_fail"],
    )
    described = htf.measures(*[measurement(m) for m in spec["measurements"]])(body)
    return options(described)


def node(n):
    if "phase" in n:
        return phase(n["phase"])
    if "group" in n:
        g = n["group"]
        return htf.PhaseGroup(
            setup=[node(x) for x in g["setup"]],
            main=[node(x) for x in g["main"]],
            teardown=[node(x) for x in g["teardown"]],
            name=g["name"],
        )
    if "subtest" in n:
        s = n["subtest"]
        return htf.Subtest(s["name"], *[node(x) for x in s["nodes"]])
    raise ValueError(f"unknown node {n}")


def result_name(result):
    """The phase's result: a PhaseResult name, EXCEPTION:<type>, TIMEOUT or ABORTED."""
    if result is None:
        return "TIMEOUT"
    if isinstance(result, str):
        return result or "ABORTED"
    if isinstance(result, dict):
        exc_type = result["exc_type"]  # "<class 'module.Name'>"
        name = exc_type.rsplit(".", 1)[-1].rsplit("'", 1)[0].split("'")[-1]
        return "EXCEPTION:" + name
    return str(result)


def summary_from_json(record):
    phases = []
    for p in record["phases"]:
        phases.append(
            {
                "name": p["name"],
                "result": result_name(p["result"]["phase_result"]),
                "measurements": [
                    {
                        "name": name,
                        "outcome": m["outcome"],
                        **({"value": m["measured_value"]} if "measured_value" in m else {}),
                    }
                    for name, m in p["measurements"].items()
                ],
                "outcome": p["outcome"],
                "marginal": p["marginal"],
            }
        )
    return {
        "phases": phases,
        "subtests": [{"name": s["name"], "outcome": s["outcome"]} for s in record["subtests"]],
        "outcome": record["outcome"],
        "details": [
            {"code": d["code"], "description": d["description"]} for d in record["outcome_details"]
        ],
        "marginal": record["marginal"],
    }


def summary_from_memory(record, from_json):
    """The JSON summary with the outcomes OpenHTF holds in memory."""
    mem = json.loads(json.dumps(from_json))
    for p, phase_record in zip(mem["phases"], record.phases):
        p["outcome"] = phase_record.outcome.name
        p["marginal"] = phase_record.marginal
        for m in p["measurements"]:
            m["outcome"] = phase_record.measurements[m["name"]].outcome.name
    return mem


def run(tree):
    htf_test = htf.Test(*[node(n) for n in tree["nodes"]])
    htf_test.configure(stop_on_first_failure=tree["stop_on_first_failure"])
    captured = []
    htf_test.add_output_callbacks(captured.append)
    htf_test.execute()
    record = captured[0]
    as_json = data.convert_to_base_types(record, json_safe=True)
    # Through the JSON text, as OutputToJSON writes it.
    as_json = json.loads(json.dumps(as_json))
    from_json = summary_from_json(as_json)
    return {"id": tree["id"], "json": from_json, "mem": summary_from_memory(record, from_json)}


def main():
    # OpenHTF logs every phase at DEBUG to the console; keep the test's output readable.
    logging.disable(logging.CRITICAL)
    with open(os.environ["TOFU_DIFF_IN"], encoding="utf-8") as f:
        trees = json.load(f)
    with open(os.environ["TOFU_DIFF_OUT"], "w", encoding="utf-8") as out:
        for tree in trees:
            out.write(json.dumps(run(tree)) + "\n")
            out.flush()


if __name__ == "__main__":
    # The outcome banner goes to stdout; the caller reads only $TOFU_DIFF_OUT.
    sys.exit(main())
