"""``python -m tests.mutation [GROUP ...]``: mutmut over the security-critical modules.

Each group mutates a few modules and runs their mutants against a focused, fast set of tests
(mutmut then narrows each mutant to the tests that call the mutated function). A group runs
in its own scratch copy of the checkout (``--workdir``, default ``.kvault/mutation``), laid
out as mutmut expects (``src/kvault``, ``tests``, a ``pyproject.toml`` with ``[tool.mutmut]``),
so nothing in the checkout is touched and others may keep editing it meanwhile. Subprocesses
that the tests start (``python -m kvault.cli.main``) import the mutated copy too.

The report (per-module table and every surviving mutant's diff) is printed and written to
``WORKDIR/report.md``; docs/mutation.md holds the committed one, with why each survivor is
equivalent or not worth a test. Exit status 1 if a group's kill rate is below ``--goal``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator" / "kvault"


@dataclass(frozen=True)
class Group:
    modules: tuple[str, ...]  # below operator/kvault/
    tests: tuple[str, ...]  # pytest arguments: files or node ids


GROUPS: dict[str, Group] = {
    "rbac": Group(
        ("identity/rbac.py",),
        (
            "tests/identity/test_rbac.py",
            "tests/vault/test_access.py",
            "tests/vault/test_boundaries.py",
        ),
    ),
    "lifecycle": Group(
        ("vault/items/lifecycle.py",),
        (
            "tests/vault/test_lifecycle.py",
            "tests/vault/test_boundaries.py",
            "tests/vault/test_secrets.py",
            "tests/vault/test_expiry.py",
        ),
    ),
    "audit": Group(
        ("audit/chain.py", "audit/verify.py"),
        ("tests/audit/test_chain.py", "tests/audit/test_audit.py"),
    ),
    "barrier": Group(
        ("barrier/barrier.py", "barrier/envelope.py", "barrier/memo.py"),
        (
            "tests/barrier",
            "tests/vault/test_tamper.py",
            "tests/vault/test_memo.py",
            "tests/vault/test_rotation.py",
            "tests/vault/test_format.py",
        ),
    ),
    "tokens": Group(
        ("identity/tokens.py", "identity/jws.py"),
        (
            "tests/identity/test_tokens.py",
            "tests/identity/test_token_boundaries.py",
            "tests/identity/test_jws.py",
            "tests/identity/test_signing.py",
            "tests/identity/test_exchange.py",
            "tests/identity/test_refusal_reasons.py",
        ),
    ),
}

#: Run only when named: vault/vaults.py (vault create/update/delete/purge) is being reworked;
#: its retention and purge rules are held by tests/vault/test_boundaries.py meanwhile.
OPTIONAL: dict[str, Group] = {
    "vaults": Group(
        ("vault/vaults.py",),
        (
            "tests/vault/test_boundaries.py",
            "tests/vault/test_expiry.py",
            "tests/vault/test_rotation.py",
            "tests/vault/test_secrets.py",
        ),
    ),
}

#: mutmut's exit codes of a mutant's test run -> the report's columns.
KILLED = {1, 3, 37}  # tests failed (3: pytest internal error); 37: the type checker refused
TIMEOUT = {24, -24, 36, 152, 255}
SURVIVED = {0}
NO_TESTS = {5, 33}


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise TypeError(value)


def _pyproject(group: Group, work: Path) -> str:
    """The scratch copy's pyproject.toml: pytest's settings of the checkout, and mutmut's."""
    pytest_options = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"][
        "ini_options"
    ]
    tests = [t for t in group.tests if (work / t.split("::")[0]).exists()]
    mutmut = {
        "source_paths": ["src/kvault"],
        "only_mutate": [f"src/kvault/{m}" for m in group.modules],
        "pytest_add_cli_args_test_selection": tests,
        # Mutants run against the software HSM (pkcs11 variants check the same code paths
        # in the barrier and above, at twice the time); no cache files in the copy.
        "pytest_add_cli_args": ["-p", "no:cacheprovider", "-k", "not pkcs11"],
        "use_git_change_detection": False,
    }
    lines = ["[tool.pytest.ini_options]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in pytest_options.items()]
    lines += ["", "[tool.mutmut]"]
    lines += [f"{k} = {_toml_value(v)}" for k, v in mutmut.items()]
    return "\n".join(lines) + "\n"


def prepare(name: str, group: Group, work: Path) -> None:
    """A fresh scratch copy: the package as ``src/kvault``, the tests, the configuration."""
    if work.exists():
        shutil.rmtree(work)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(PACKAGE, work / "src" / "kvault", ignore=ignore)
    shutil.copytree(ROOT / "tests", work / "tests", ignore=ignore)
    for module in group.modules:
        assert (work / "src" / "kvault" / module).is_file(), f"{name}: no module {module}"
    (work / "pyproject.toml").write_text(_pyproject(group, work))
    # Made now, not by mutmut: a directory on PYTHONPATH that is missing when the
    # interpreter starts is remembered as missing, and the original package would be used.
    (work / "mutants" / "src").mkdir(parents=True)


def run_mutmut(work: Path, max_children: int, log: Path) -> int:
    env = dict(os.environ)
    # Subprocesses of the tests import the mutated copy (mutmut's own process and its
    # forked workers put mutants/src first on sys.path themselves).
    env["PYTHONPATH"] = str(work / "mutants" / "src")
    env.pop("MUTANT_UNDER_TEST", None)
    mutmut = Path(sys.executable).with_name("mutmut")
    with log.open("w") as out:
        done = subprocess.run(
            [str(mutmut), "run", "--max-children", str(max_children)],
            cwd=work,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
        )
    return done.returncode


@dataclass
class Row:
    module: str
    counts: Counter[str]

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def score(self) -> float:
        """Killed (timeouts included: the mutant hung the tests) of all mutants."""
        return 100.0 * (self.counts["killed"] + self.counts["timeout"]) / max(1, self.total)


def _status(code: int | None) -> str:
    if code in KILLED:
        return "killed"
    if code in TIMEOUT:
        return "timeout"
    if code in SURVIVED:
        return "survived"
    if code in NO_TESTS:
        return "no tests"
    return "not run" if code is None else f"other ({code})"


def results(group: Group, work: Path) -> tuple[list[Row], list[tuple[str, str]]]:
    rows, survivors = [], []
    for module in group.modules:
        meta = work / "mutants" / "src" / "kvault" / (module + ".meta")
        codes = json.loads(meta.read_text())["exit_code_by_key"] if meta.exists() else {}
        counts: Counter[str] = Counter(_status(code) for code in codes.values())
        rows.append(Row(module, counts))
        survivors += sorted(
            (module, k) for k, code in codes.items() if _status(code) not in ("killed", "timeout")
        )
    return rows, survivors


def show(work: Path, module: str, mutant: str) -> str:
    """The mutant's diff (``mutmut show``, in this process: one interpreter, not one each)."""
    from mutmut.mutation.diff_apply import get_diff_for_mutant

    with contextlib.chdir(work):
        return f"# {mutant}\n" + get_diff_for_mutant(mutant, path=f"src/kvault/{module}").strip()


def table(rows: list[tuple[str, Row]]) -> str:
    out = [
        "| group | module | mutants | killed | survived | timeout | no tests | killed % |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, row in rows:
        c = row.counts
        out.append(
            f"| {name} | `{row.module}` | {row.total} | {c['killed']} | {c['survived']} | "
            f"{c['timeout']} | {c['no tests']} | {row.score:.1f} |"
        )
    return "\n".join(out)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.mutation", description=__doc__)
    parser.add_argument(
        "groups",
        nargs="*",
        help=f"of {', '.join(GROUPS | OPTIONAL)} (default: {', '.join(GROUPS)})",
    )
    parser.add_argument("--workdir", type=Path, default=ROOT / ".kvault" / "mutation")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--goal", type=float, default=90.0, help="killed %% per group")
    parser.add_argument(
        "--report-only", action="store_true", help="report the last run; run nothing"
    )
    args = parser.parse_args()
    groups = GROUPS | OPTIONAL
    names = args.groups or list(GROUPS)
    unknown = sorted(set(names) - set(groups))
    if unknown:
        parser.error(f"unknown group {', '.join(unknown)}; groups: {', '.join(groups)}")
    args.workdir.mkdir(parents=True, exist_ok=True)
    all_rows: list[tuple[str, Row]] = []
    sections, failed = [], []
    for name in names:
        group, work = groups[name], args.workdir / name
        started = time.monotonic()
        if not args.report_only:
            prepare(name, group, work)
            code = run_mutmut(work, args.max_children, args.workdir / f"{name}.log")
            took = time.monotonic() - started
            print(f"{name}: mutmut exited {code} after {took:.0f} s", flush=True)
            if code != 0:
                print((args.workdir / f"{name}.log").read_text()[-3000:])
                failed.append(name)
                continue
        rows, survivors = results(group, work)
        all_rows += [(name, r) for r in rows]
        killed = sum(r.counts["killed"] + r.counts["timeout"] for r in rows)
        total = sum(r.total for r in rows)
        score = 100.0 * killed / max(1, total)
        if score < args.goal:
            failed.append(name)
        diffs = "\n\n".join(f"```diff\n{show(work, m, s)}\n```" for m, s in survivors)
        sections.append(f"## {name}: {killed}/{total} killed ({score:.1f} %)\n\n{diffs}")
    report = "\n\n".join(["# mutation report", table(all_rows), *sections]) + "\n"
    (args.workdir / "report.md").write_text(report)
    print(table(all_rows))
    print(f"report: {args.workdir / 'report.md'}")
    if failed:
        print(f"below {args.goal:.0f} % killed or failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
