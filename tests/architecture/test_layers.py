"""The architecture rules of DESIGN.md, kept true by tests."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import celeriac
import celeriac.errors as errors_module

SRC = Path(celeriac.__file__).resolve().parent
ROOT = SRC.parents[1]

#: Celery wire literals that may only appear in celeriac/protocol/.
WIRE_LITERALS = ("celery-task-meta-", "celery-taskset-meta-", "argsrepr", "kwargsrepr",
                 "_kombu.binding", "celeryev", ".pidbox", "\\x06\\x16", "\x06\x16")


def test_imports_point_down_only() -> None:
    proc = subprocess.run([sys.executable, "-m", "importlinter.cli", "--config",
                           str(ROOT / "pyproject.toml")], capture_output=True, text=True,
                          cwd=ROOT, timeout=300)
    if proc.returncode != 0 and "No module named" in proc.stderr:
        proc = subprocess.run([str(Path(sys.executable).with_name("lint-imports")), "--config",
                               str(ROOT / "pyproject.toml")], capture_output=True, text=True,
                              cwd=ROOT, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_wire_literals_live_only_in_protocol() -> None:
    offenders = []
    for path in SRC.rglob("*.py"):
        if "protocol" in path.relative_to(SRC).parts:
            continue
        strings = [
            node.value for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Constant) and isinstance(node.value, str)
        ]
        for literal in WIRE_LITERALS:
            if any(literal in s for s in strings):
                offenders.append(f"{path.relative_to(SRC)}: {literal!r}")
    assert not offenders, "wire literals outside celeriac/protocol/:\n" + "\n".join(offenders)


def test_modules_stay_readable_in_one_sitting() -> None:
    too_long = [
        f"{p.relative_to(SRC)}: {n} lines"
        for p in SRC.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 800
    ]
    assert not too_long, too_long


def test_public_api_is_exported_and_documented() -> None:
    for name in celeriac.__all__:
        obj = getattr(celeriac, name)
        if callable(obj):
            assert obj.__doc__, f"celeriac.{name} has no docstring"
    for name in ("Celery", "Celeriac", "shared_task", "Task", "AsyncResult", "GroupResult",
                 "Queue", "Exchange", "states"):
        assert name in celeriac.__all__, name


def test_exception_tree_docstring_matches_the_classes() -> None:
    doc = errors_module.__doc__ or ""
    drawn: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        m = re.match(r"^(\s*)(?:[│ ]*)(?:[├└]── )?([A-Z][A-Za-z]+)", line)
        if not m or ("──" not in line and line.strip() != "CeleriacError"):
            continue
        depth = line.find(m.group(2))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        drawn[m.group(2)] = stack[-1][1] if stack else None
        stack.append((depth, m.group(2)))
    for name, parent in drawn.items():
        cls = getattr(errors_module, name)
        if parent is not None:
            assert issubclass(cls, getattr(errors_module, parent)), f"{name} !< {parent}"
    classes = {n for n, v in vars(errors_module).items()
               if isinstance(v, type) and issubclass(v, errors_module.CeleriacError)}
    assert classes <= set(drawn), f"not drawn in errors.py's tree: {classes - set(drawn)}"


def test_every_package_init_says_what_it_holds() -> None:
    for init in SRC.rglob("__init__.py"):
        tree = ast.parse(init.read_text())
        doc = ast.get_docstring(tree)
        assert doc and len(doc) > 20, f"{init.relative_to(SRC)} needs a docstring"
