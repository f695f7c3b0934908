"""The layout's rules: nightshift never imports nightshift_dev (save the CLI's commands), and modules and functions stay small."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[2]
PRODUCT = PROJECT / "include" / "nightshift"
TOOLING = PROJECT / "include" / "nightshift_dev"
CLI_DISPATCH = {"cmd_simulate", "cmd_demo", "cmd_examples_land", "cmd_bench", "build_parser"}
"""The CLI functions that may import the tooling (inside themselves), to run `simulate`, `demo`, `examples land`
and `bench`."""


def imported_modules(node: ast.AST) -> Iterator[tuple[ast.stmt, str]]:
    """Every module an import statement under `node` names (for `from a import b`, both `a` and `a.b`)."""
    for found in ast.walk(node):
        if isinstance(found, ast.Import):
            for alias in found.names:
                yield found, alias.name
        elif isinstance(found, ast.ImportFrom) and found.module and not found.level:
            yield found, found.module
            for alias in found.names:
                yield found, f"{found.module}.{alias.name}"


def is_tooling(module: str) -> bool:
    return module == "nightshift_dev" or module.startswith("nightshift_dev.")


def enclosing_functions(tree: ast.Module) -> dict[ast.stmt, str]:
    """Each import statement inside a top-level function, mapped to that function's name."""
    found: dict[ast.stmt, str] = {}
    for top in tree.body:
        if isinstance(top, ast.FunctionDef):
            for statement, _ in imported_modules(top):
                found[statement] = top.name
    return found


def test_the_product_never_imports_the_tooling():
    offenders = []
    for path in sorted(PRODUCT.rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        inside = enclosing_functions(tree) if path.name == "cli.py" and path.parent == PRODUCT else {}
        for statement, module in imported_modules(tree):
            if is_tooling(module) and inside.get(statement) not in CLI_DISPATCH:
                offenders.append(f"{path.relative_to(PROJECT)}:{statement.lineno} imports {module}")
    assert offenders == []


def test_the_cli_imports_the_tooling_only_inside_its_commands():
    tree = ast.parse((PRODUCT / "cli.py").read_text())
    top_level = [
        module for top in tree.body for _, module in imported_modules(top) if not isinstance(top, ast.FunctionDef)
    ]
    assert not [module for module in top_level if is_tooling(module)]
    users = {
        name
        for statement, name in enclosing_functions(tree).items()
        if any(is_tooling(m) for _, m in imported_modules(statement))
    }
    assert users and users <= CLI_DISPATCH


def test_dags_and_plugins_never_import_the_tooling():
    offenders = [
        f"{path.relative_to(PROJECT)}:{statement.lineno} imports {module}"
        for folder in ("dags", "plugins")
        for path in sorted((PROJECT / folder).rglob("*.py"))
        for statement, module in imported_modules(ast.parse(path.read_text(), filename=str(path)))
        if is_tooling(module)
    ]
    assert offenders == []


def _private_uses(path: Path) -> list[str]:
    """Private nightshift names a tooling module imports or reads through an imported nightshift module."""
    tree = ast.parse(path.read_text(), filename=str(path))
    offenders, modules = [], set()
    for statement in ast.walk(tree):
        if isinstance(statement, ast.ImportFrom) and (statement.module or "").split(".")[0] == "nightshift":
            offenders += [
                f"{path.name}:{statement.lineno} imports {statement.module}.{alias.name}"
                for alias in statement.names
                if alias.name.startswith("_")
            ]
            if statement.module == "nightshift":
                modules |= {alias.asname or alias.name for alias in statement.names}
        elif isinstance(statement, ast.Import):
            modules |= {a.asname for a in statement.names if a.name.split(".")[0] == "nightshift" and a.asname}
    offenders += [
        f"{path.name}:{node.lineno} uses {node.value.id}.{node.attr}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id in modules
        and node.attr.startswith("_")
    ]
    return offenders


def test_the_tooling_calls_the_product_only_through_public_names():
    offenders = [offender for path in sorted(TOOLING.rglob("*.py")) for offender in _private_uses(path)]
    assert offenders == []


MODULE_LINES = 600
FUNCTION_LINES = 60
SIZED = [PRODUCT, TOOLING, PROJECT / "dags", PROJECT / "plugins"]
"""The folders whose modules and functions are held to the sizes issue 10 set (complexity is ruff's C901)."""


def _sources() -> Iterator[Path]:
    for folder in SIZED:
        yield from sorted(folder.rglob("*.py"))


def test_no_module_is_over_600_lines():
    long = [
        f"{path.relative_to(PROJECT)}: {lines} lines"
        for path in _sources()
        if (lines := len(path.read_text().splitlines())) > MODULE_LINES
    ]
    assert long == []


def test_no_function_is_over_60_lines():
    long = [
        f"{path.relative_to(PROJECT)}:{node.lineno} {node.name}: {size} lines"
        for path in _sources()
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path)))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and (size := (node.end_lineno or node.lineno) - node.lineno + 1) > FUNCTION_LINES
    ]
    assert long == []


FOUNDATIONS = ("config", "runs", "reasons", "schedule", "kinds", "readers", "pages", "notifiers")
ORCHESTRATION = ("nightshift.stages.night", "nightshift.stages.decision", "nightshift.lifecycle.tasks")


def _product_imports(path: Path) -> set[str]:
    return {module for _, module in imported_modules(ast.parse(path.read_text())) if module.startswith("nightshift.")}


def _below(package: str) -> list[Path]:
    folder = PRODUCT / package
    return sorted(folder.rglob("*.py")) if folder.is_dir() else [folder.with_suffix(".py")]


def _orchestration(module: str) -> bool:
    return module.startswith(ORCHESTRATION) or (module.startswith("nightshift.stages.") and module.endswith(".tasks"))


def test_the_stores_know_nothing_of_stages_or_the_lifecycle():
    offenders = [
        f"{path.relative_to(PROJECT)} imports {module}"
        for path in _below("stores")
        for module in _product_imports(path)
        if module.startswith(("nightshift.stages", "nightshift.lifecycle"))
    ]
    assert offenders == []


def test_the_foundations_import_no_stage_store_or_lifecycle():
    offenders = [
        f"{path.relative_to(PROJECT)} imports {module}"
        for package in FOUNDATIONS
        for path in _below(package)
        for module in _product_imports(path)
        if module.startswith(("nightshift.stages", "nightshift.stores", "nightshift.lifecycle"))
    ]
    assert offenders == []


def test_a_stage_s_rules_never_import_orchestration():
    """Each stage's pure modules (all but its `tasks`) never reach up to the tasks, the night or the decision."""
    offenders = [
        f"{path.relative_to(PROJECT)} imports {module}"
        for path in sorted((PRODUCT / "stages").glob("*/*.py"))
        if path.name != "tasks.py"
        for module in _product_imports(path)
        if _orchestration(module)
    ]
    assert offenders == []
