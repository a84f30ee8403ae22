#!/usr/bin/env python3
"""Generates tofu-core/src/unit/table.rs from OpenHTF's units table.

Usage (from the workspace root):

    python3 -m venv /tmp/openhtf-venv
    /tmp/openhtf-venv/bin/pip install openhtf==1.6.3
    . /tmp/openhtf-venv/bin/activate
    python3 tools/gen_units.py > tofu-core/src/unit/table.rs

What it writes:

* one `pub const NAME: Unit` per module-level `UnitDescriptor` constant of
  `openhtf.util.units`, in source order, under OpenHTF's own UPPER_SNAKE name.
  A constant whose (name, code, suffix) equals an earlier one's (OpenHTF's
  convenience aliases `MINUTE` and `SECOND`) is written as an alias of it;
* `ALL`, every distinct unit of OpenHTF's table once, in source order. OpenHTF's
  table (`ALL_UNITS`, seen through `UNITS_BY_NAME`) leaves out `NONE`, so `ALL`
  does too; `NONE` is still a constant.

Values are copied as OpenHTF has them: an empty suffix stays `Some("")` and
trailing spaces in suffixes are kept.

The output is piped through `rustfmt --edition 2024` when rustfmt is on PATH
(pass --no-rustfmt to skip that). A summary goes to stderr.
"""

import ast
import importlib.metadata
import inspect
import re
import shutil
import subprocess
import sys

from openhtf.util import units

EXPECTED_OPENHTF_VERSION = "1.6.3"

# Rust strict, reserved and weak keywords (2024 edition). OpenHTF's names are
# UPPER_SNAKE so none should clash, but check anyway.
RUST_KEYWORDS = {
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else",
    "enum", "extern", "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop",
    "match", "mod", "move", "mut", "pub", "ref", "return", "self", "Self", "static",
    "struct", "super", "trait", "true", "type", "unsafe", "use", "where", "while",
    "abstract", "become", "box", "do", "final", "macro", "override", "priv", "try",
    "typeof", "unsized", "virtual", "yield", "union", "macro_rules", "raw", "safe",
    "_",
}
# Names the generated module itself uses (or imports).
RESERVED_NAMES = {"ALL", "Unit"}

IDENT_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def rust_ident(name):
    """Returns a valid Rust identifier for an OpenHTF constant name."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name)
    if not ident or ident[0].isdigit() or ident in RUST_KEYWORDS or ident in RESERVED_NAMES:
        ident = "U_" + ident
    assert IDENT_RE.match(ident), ident
    return ident


def rust_str(s):
    """A Rust string literal for s. Printable non-ASCII stays as UTF-8."""
    out = []
    for ch in s:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\t":
            out.append("\\t")
        elif not ch.isprintable():
            out.append("\\u{%x}" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def rust_opt(s):
    return "None" if s is None else "Some(%s)" % rust_str(s)


def code_span(s):
    """A Markdown code span holding s verbatim (so rustdoc sees no links or HTML)."""
    s = s.replace("\n", " ").replace("\r", " ")
    longest = max((len(run) for run in re.findall(r"`+", s)), default=0)
    fence = "`" * (longest + 1)
    if longest or s.startswith("`") or s.endswith("`"):
        return "%s %s %s" % (fence, s, fence)
    return fence + s + fence


def describe(unit):
    code = "no code" if unit.code is None else code_span(unit.code)
    if unit.suffix is None:
        suffix = "no suffix"
    elif unit.suffix == "":
        suffix = "empty suffix"
    else:
        suffix = code_span(unit.suffix)
    return "%s (%s, %s)" % (code_span(unit.name), code, suffix)


def shadowed_definitions():
    """Constants that units.py assigns a UnitDescriptor more than once (last one wins)."""
    try:
        tree = ast.parse(inspect.getsource(units))
    except (OSError, TypeError, SyntaxError):
        return {}
    seen = {}
    for node in tree.body:
        if (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call)
                and getattr(node.value.func, "id", None) == "UnitDescriptor"):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    seen.setdefault(target.id, []).append(ast.literal_eval(node.value.args[2]))
    return {name: suffixes for name, suffixes in seen.items() if len(suffixes) > 1}


def generate():
    version = importlib.metadata.version("openhtf")
    if version != EXPECTED_OPENHTF_VERSION:
        print("warning: openhtf %s installed, expected %s" % (version, EXPECTED_OPENHTF_VERSION),
              file=sys.stderr)

    # Module dict order is the order of first binding, i.e. source order.
    constants = [(name, value) for name, value in vars(units).items()
                 if isinstance(value, units.UnitDescriptor)]

    # OpenHTF's table proper: ALL_UNITS is deleted at import, UNITS_BY_NAME keeps its units.
    table = {tuple(u) for u in units.UNITS_BY_NAME.values()}

    renamed = {}
    idents = set()
    canonical = {}  # (name, code, suffix) -> Rust ident of its first constant
    all_idents = []
    lines = [
        "//! OpenHTF %s's UNECE Rec. 20 unit table. Generated by tools/gen_units.py; do not edit."
        % version,
        "",
        "use super::Unit;",
        "",
    ]
    aliases = 0
    for name, value in constants:
        ident = rust_ident(name)
        if ident != name:
            renamed[name] = ident
        if ident in idents:
            sys.exit("error: two constants map to the Rust name %s" % ident)
        idents.add(ident)
        key = tuple(value)
        if key in canonical:
            target = canonical[key]
            aliases += 1
            lines.append("/// Alias of [`%s`]: %s." % (target, describe(value)))
            lines.append("pub const %s: Unit = %s;" % (ident, target))
        else:
            canonical[key] = ident
            lines.append("/// %s" % describe(value))
            lines.append("pub const %s: Unit = Unit::new(%s, %s, %s);"
                         % (ident, rust_str(value.name), rust_opt(value.code), rust_opt(value.suffix)))
            if key in table:
                all_idents.append(ident)
        lines.append("")

    missing = table - {tuple(u) for u in (dict(constants).values())}
    if missing:
        sys.exit("error: units of OpenHTF's table with no constant: %r" % sorted(missing))
    if len(all_idents) != len(table):
        sys.exit("error: ALL has %d units, OpenHTF's table %d" % (len(all_idents), len(table)))
    left_out = [canonical[k] for k in canonical if k not in table]

    lines.append("/// Every unit of the table, one entry per distinct unit (aliases listed once), in table order.")
    if left_out:
        lines.append("///")
        lines.append("/// As in OpenHTF's own table, %s %s not in it."
                     % (", ".join("[`%s`]" % i for i in left_out), "is" if len(left_out) == 1 else "are"))
    lines.append("pub static ALL: &[Unit] = &[%s];" % ", ".join(all_idents))
    source = "\n".join(lines) + "\n"

    summary = {
        "constants": len(constants),
        "distinct": len(canonical),
        "aliases": aliases,
        "all": len(all_idents),
        "left_out": left_out,
        "renamed": renamed,
    }
    return source, summary


def rustfmt(source):
    exe = shutil.which("rustfmt")
    if exe is None:
        print("warning: rustfmt not found; output is not formatted", file=sys.stderr)
        return source
    done = subprocess.run([exe, "--edition", "2024", "--emit", "stdout"], input=source.encode("utf-8"),
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr.decode("utf-8", "replace"))
        sys.exit("error: rustfmt failed")
    return done.stdout.decode("utf-8")


def main():
    source, summary = generate()
    if "--no-rustfmt" not in sys.argv[1:]:
        source = rustfmt(source)
    sys.stdout.buffer.write(source.encode("utf-8"))
    sys.stdout.flush()

    print("wrote %d constants, %d distinct units (%d aliases); ALL holds %d units"
          % (summary["constants"], summary["distinct"], summary["aliases"], summary["all"]),
          file=sys.stderr)
    if summary["left_out"]:
        print("left out of ALL (not in OpenHTF's table): %s" % ", ".join(summary["left_out"]),
              file=sys.stderr)
    if summary["renamed"]:
        print("renamed: %s" % ", ".join("%s -> %s" % kv for kv in summary["renamed"].items()),
              file=sys.stderr)
    else:
        print("renamed: none", file=sys.stderr)
    shadowed = shadowed_definitions()
    if shadowed:
        print("note: units.py defines these twice; the constant keeps the last suffix, the earlier one "
              "is only reachable by suffix lookup in OpenHTF: %s"
              % "; ".join("%s %r" % (n, s) for n, s in shadowed.items()), file=sys.stderr)


if __name__ == "__main__":
    main()
