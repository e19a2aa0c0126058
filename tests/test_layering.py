"""The code's layering: `dsl` never imports `kb`; kb's packages import in one direction only;
no module imports a module that imports it back; no module takes another's private names.

Every import counts, at the top of a module or inside a function (a lazy import is still a
dependency), read from the source with `ast`.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# What each of kb's packages may import besides `dsl` and itself (its `__init__` says why).
# `kb.build` (the whole build) and `kb.cli` (the commands) sit on top and may import any.
KB_PACKAGES: dict[str, frozenset[str]] = {
    "kb.store": frozenset(),
    "kb.i18n": frozenset(),
    "kb.inputs": frozenset({"kb.store"}),
    "kb.screen": frozenset({"kb.store", "kb.inputs", "kb.i18n"}),
    "kb.publish": frozenset({"kb.store", "kb.inputs", "kb.screen", "kb.i18n"}),
    "kb.documents": frozenset({"kb.store"}),
}
TOP = frozenset({"kb", "kb.build", "kb.cli"})


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for top in ("dsl", "kb") for p in sorted((ROOT / top).rglob("*.py"))}


def imports(module: str) -> list[tuple[str, str, int]]:
    """(imported module, name taken from it or '', line) for each import of dsl or kb."""
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"))
    found: list[tuple[str, str, int]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, "", node.lineno) for a in node.names
                      if a.name.split(".")[0] in ("dsl", "kb")]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0 \
                and node.module.split(".")[0] in ("dsl", "kb"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                # `from kb.screen import bundle` imports the module kb.screen.bundle
                found.append((sub, "", node.lineno) if sub in MODULES
                             else (node.module, a.name, node.lineno))
    return found


def package_of(module: str) -> str:
    for package in KB_PACKAGES:
        if module == package or module.startswith(package + "."):
            return package
    return module


def test_every_module_is_seen() -> None:
    assert {"dsl.compile.rules", "dsl.check.names", "kb.screen.screener", "kb.cli",
            "kb.store.tables", "dsl.lsp"} <= set(MODULES)


def test_the_language_never_imports_the_knowledge_base() -> None:
    wrong = [f"{MODULES[m].relative_to(ROOT)}:{line} imports {target}"
             for m in MODULES if m.split(".")[0] == "dsl"
             for target, _, line in imports(m) if target.split(".")[0] == "kb"]
    assert not wrong, "dsl must not import kb:\n" + "\n".join(wrong)


def test_kb_packages_import_only_the_packages_below_them() -> None:
    graphlib.TopologicalSorter(KB_PACKAGES).prepare()  # the allowed directions have no circle
    wrong = []
    for m in MODULES:
        if m.split(".")[0] != "kb" or m in TOP:
            continue
        assert package_of(m) in KB_PACKAGES, f"{m} belongs to no package of kb"
        own = package_of(m)
        for target, _, line in imports(m):
            other = package_of(target)
            if target.split(".")[0] == "kb" and other != own and other not in KB_PACKAGES[own]:
                wrong.append(f"{MODULES[m].relative_to(ROOT)}:{line}: {own} imports {target}")
    assert not wrong, "an import against the packages' direction:\n" + "\n".join(wrong)


def test_no_module_imports_a_module_that_imports_it() -> None:
    graph = {m: {t for t, _, _ in imports(m) if t in MODULES and t != m} for m in MODULES}
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as e:
        pytest.fail(f"an import circle: {' -> '.join(e.args[1])}")


def test_no_module_takes_another_modules_private_names() -> None:
    wrong = [f"{MODULES[m].relative_to(ROOT)}:{line} takes {name} from {target}"
             for m in MODULES for target, name, line in imports(m)
             if name.startswith("_") and target != m]
    assert not wrong, "\n".join(wrong)


def test_kb_has_few_loose_modules_and_no_module_is_too_long() -> None:
    loose = sorted(p.name for p in (ROOT / "kb").glob("*.py"))
    assert loose == ["__init__.py", "build.py", "cli.py"]
    long = {m: n for m, p in MODULES.items()
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > 900}
    assert not long, f"modules over 900 lines (split them by stage): {long}"
