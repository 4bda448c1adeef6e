"""The tree keeps the shape docs/architecture.md describes: each folder imports only the layers below it, no module
imports itself back through others, the core never imports the Slack wiring, tests share code only through
tests/support, and the command line starts without the heavy libraries.

Imports are read from the source with `ast` (function-level imports included, `if TYPE_CHECKING:` blocks left
out: they never run).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FOUNDATIONS = {"bot.errors", "bot.text", "bot.schema", "bot.models", "bot.pii", "bot.retry", "bot.pacing",
               "bot.workers"}
# What each part of the core may import besides itself and the foundations. Anything else is an upward import.
ALLOWED: dict[str, set[str]] = {
    "bot.policy": set(),
    "bot.engine": set(),
    "bot.store": set(),
    # A helpdesk folder's importer writes ticket JSONL with the shared offline helpers.
    "bot.helpdesk": {"bot.offline.importers"},
    "bot.slack": {"bot.store"},
    "bot.config": {"bot.policy", "bot.helpdesk"},
    "bot.flows": {"bot.config", "bot.policy", "bot.engine", "bot.helpdesk", "bot.store", "bot.slack"},
    "bot.jobs": {"bot.store", "bot.helpdesk"},
    "bot.offline": {"bot.policy", "bot.engine"},
    "bot.services": {"bot.config", "bot.policy", "bot.engine", "bot.helpdesk", "bot.store", "bot.slack",
                     "bot.flows", "bot.jobs"},
    "bot.cli": {"bot"},
    "bot.__main__": {"bot.cli"},
}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def parsed(path: Path) -> ast.Module:
    """The module's syntax tree. CPython 3.11's `ast.parse` can fail with "SystemError: AST constructor recursion
    depth mismatch" while another thread compiles (python/cpython#106905; other tests leave server threads that
    import lazily): a second parse of the same text is then the answer, and a real syntax error fails both."""
    text = path.read_text(encoding="utf-8")
    try:
        return ast.parse(text)
    except SystemError:
        return ast.parse(text)


def imports(path: Path) -> set[str]:
    """Every module `path` imports when it runs (absolute names; `from x import y` counts x and x.y)."""
    tree = parsed(path)
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for p in sources("bot") + sources("handlers")}
    return {name: {m for m in imports(path) if m in modules} for name, path in modules.items()}


def part_of(module: str) -> str:
    """The entry of ALLOWED (or FOUNDATIONS) a module belongs to: its longest matching prefix."""
    for prefix in sorted(ALLOWED.keys() | FOUNDATIONS, key=len, reverse=True):
        if module == prefix or module.startswith(prefix + "."):
            return prefix
    return module


def test_every_core_module_belongs_to_a_known_part():
    unknown = [m for m in graph() if m.startswith("bot.") and part_of(m) not in ALLOWED.keys() | FOUNDATIONS]
    assert not unknown, f"add these to ALLOWED (and docs/architecture.md): {unknown}"


def test_no_part_of_the_core_imports_a_layer_above_it():
    upward = []
    for module, targets in graph().items():
        if not module.startswith("bot.") or module == "bot":
            continue
        own = part_of(module)
        allowed = ALLOWED.get(own, set()) | FOUNDATIONS | {own}
        for target in targets:
            if target == "bot" or part_of(target) == own:
                continue
            if not any(target == a or target.startswith(a + ".") for a in allowed):
                upward.append(f"{module} imports {target}")
    assert not upward, "\n".join(upward)


def test_the_foundations_import_only_each_other():
    bad = [f"{m} imports {t}" for m, targets in graph().items() if part_of(m) in FOUNDATIONS
           for t in targets if part_of(t) not in FOUNDATIONS]
    assert not bad, bad


def test_there_is_no_import_cycle():
    edges = graph()
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[list[str]] = []

    def strongconnect(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in edges.get(node, ()):
            if target not in index:
                strongconnect(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for node in sorted(edges):
        if node not in index:
            strongconnect(node)
    # A package importing its own submodules from __init__ while they import the package's siblings is not a
    # cycle anyone can trip over; any other strongly connected group is.
    assert not cycles, cycles


@pytest.mark.parametrize("path", sources("bot"), ids=lambda p: str(p.relative_to(ROOT)))
def test_the_core_never_imports_the_slack_wiring(path: Path):
    tree = parsed(path)
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    names |= {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    assert not {n for n in names if n.split(".")[0] in ("handlers", "slack_bolt")}


@pytest.mark.parametrize("path", sources("tests") + sources("bench"), ids=lambda p: str(p.relative_to(ROOT)))
def test_tests_and_benchmarks_share_code_only_through_tests_support(path: Path):
    bad = {m for m in imports(path) if m.startswith(("tests.test_", "tests.conftest", "tests.contract.test_"))}
    assert not bad
    text = path.read_text(encoding="utf-8")
    assert "sys.path.insert" not in text and "sys.path.append" not in text or path.name == "test_architecture.py"


@pytest.mark.parametrize("path", sources("bot") + sources("handlers"), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_module_says_what_lives_there(path: Path):
    assert ast.get_docstring(parsed(path)), f"{path} needs a module docstring"


def test_the_command_line_starts_without_the_heavy_libraries():
    """`python -m bot --help` must answer at once: scikit-learn, the OpenAI SDK, Flask and Bolt load only for the
    commands that use them."""
    probe = ("import sys, runpy; sys.argv = ['bot', '--help']\n"
             "try:\n    runpy.run_module('bot', run_name='__main__')\nexcept SystemExit:\n    pass\n"
             "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'sklearn', 'openai', 'flask', 'slack_bolt',"
             " 'matplotlib', 'numpy', 'vaderSentiment'})\nprint('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert "HEAVY []" in out.stdout, out.stdout + out.stderr
