"""The import graph keeps the layout of DESIGN.md section 3: arrows run one way.

Every .py under drctl/, components/ and bench/ is parsed with `ast` (nothing is imported, so this
runs anywhere and sees imports inside functions too). `from drctl.x import y` counts as an import of
the module drctl.x.y when y is one, of drctl.x otherwise; relative imports are resolved.
"""

from __future__ import annotations

import ast
from collections import deque
from dataclasses import dataclass, field
from itertools import pairwise
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]

# ---- The rules ------------------------------------------------------------------------------------
# A unit is one package of drctl (drctl.runbook is everything under drctl/runbook/), one module at the
# top of drctl/ (drctl is its __init__.py), or the whole of components/. A unit may always import
# itself, and only what its row lists besides: a unit without a row may import nothing.
ALLOWED_IMPORTS: dict[str, tuple[str, ...]] = {
    "drctl.cli":       ("drctl.runbook", "drctl.watch", "drctl.guard", "drctl.drill", "drctl.rehearsal",
                        "drctl.plan", "drctl.backup"),
    "drctl.__main__":  ("drctl.cli",),
    "drctl":           (),
    # The rehearsal reads a stack file through the program's own config model (components/config.py,
    # pydantic only), so it can never read a setting or a default differently from `pulumi up`.
    # `rehearse --automatic` runs guards with the lease and the log they share with the watchdog.
    "drctl.rehearsal": ("drctl.guard", "drctl.watch", "drctl.drill", "drctl.backup", "drctl.runbook", "drctl.mysql",
                        "drctl.cloud", "drctl.local", "drctl.stack", "components"),
    "drctl.drill":     ("drctl.runbook", "drctl.mysql", "drctl.cloud", "drctl.stack"),
    "drctl.runbook":   ("drctl.mysql", "drctl.cloud", "drctl.stack"),
    # Point-in-time recovery: the archiver reads servers through drctl.mysql and alerts through
    # drctl.watch's hooks; `drctl restore` starts its local target with the throwaway MariaDB of
    # drctl/local; `drctl drill --restore` writes the drill's orders through drctl.drill and reaches
    # the stack through drctl.runbook. Only cli and the rehearsal (its restore step) import it. A scratch
    # Linode's --dry-run names its monthly price from drctl.plan's price list.
    "drctl.backup":    ("drctl.drill", "drctl.runbook", "drctl.mysql", "drctl.cloud", "drctl.stack", "drctl.watch",
                        "drctl.local", "drctl.plan"),
    # The guard decides with the watchdog's probes and policy, keeps its lease and votes as the
    # watchdog keeps its lease, alerts and logs as it does, and promotes through the runbook.
    "drctl.guard":     ("drctl.watch", "drctl.runbook", "drctl.mysql", "drctl.cloud", "drctl.stack"),
    "drctl.watch":     ("drctl.cloud", "drctl.stack"),
    # `drctl prices --refresh` reads Linode's public price endpoints through drctl.cloud, the one door
    # to the Linode API (its SDK, DRCTL_LINODE_BASE_URL); `drctl plan` itself imports no cloud client.
    "drctl.plan":      ("drctl.cloud", "drctl.stack", "components"),
    "components":      ("drctl.mysql", "drctl.stack"),
    "drctl.mysql":     ("drctl.stack",),
    # Throwaway servers on loopback (MariaDB, HAProxy, an S3 server, the edge Worker under Node) for
    # the rehearsal and for `drctl restore`'s local target; they speak SQL through drctl.mysql.
    "drctl.local":     ("drctl.mysql", "drctl.stack"),
    "drctl.cloud":     ("drctl.stack",),
    "drctl.stack":     (),
}
# The only modules at the top of drctl/; everything else lives in the package that owns it.
DRCTL_TOP_LEVEL = ("__init__.py", "__main__.py", "cli.py")
# bench/ may import anything of drctl and components, and the suite's helpers in tests/support (the
# API fakes), but never a test module: a benchmark runs without the suite.
BENCH_MAY_IMPORT_FROM_TESTS = "tests.support"
# Also: no cycles between units or between modules, and no module uses another module's underscore
# names (`from drctl.x import _y`, `alias._y`): what is shared is public, in the package that owns it.
# ---------------------------------------------------------------------------------------------------

SCANNED = ("drctl", "components", "bench")
FIRST_PARTY = ("drctl", "components", "tests", "bench")


def unit_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "drctl" else parts[0]


def allowed_text(unit: str) -> str:
    allowed = ALLOWED_IMPORTS.get(unit)
    if allowed is None:
        return f"{unit} has no row in ALLOWED_IMPORTS, so it may import nothing"
    return f"{unit} → {', '.join(allowed) if allowed else 'nothing of drctl or components'}"


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


@dataclass(frozen=True)
class Import:
    path: str  # the importing file, relative to the root
    line: int
    source: str  # the importing module
    target: str  # the imported module
    nested: bool  # inside a function


@dataclass(frozen=True)
class PrivateUse:
    path: str
    line: int
    module: str  # the module whose underscore name is used
    name: str


@dataclass
class Module:
    name: str
    path: str
    file: Path
    imports: list[Import] = field(default_factory=list)
    private_uses: list[PrivateUse] = field(default_factory=list)


@dataclass
class Project:
    root: Path
    modules: dict[str, Module]

    def imports(self, *top: str) -> list[Import]:
        found = {i for m in self.modules.values() if m.name.split(".")[0] in top for i in m.imports}
        return sorted(found, key=lambda i: (i.path, i.line, i.target))  # one per line and module


def module_name(rel: Path) -> str:
    parts = list(rel.with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


class _Collector(ast.NodeVisitor):
    """Imports of first-party modules (at any depth) and uses of other modules' underscore names."""

    def __init__(self, project: Project, module: Module) -> None:
        self.project, self.module = project, module
        self.depth = 0
        self.bindings: dict[str, str] = {}  # local name -> the module it is bound to
        self.attributes: list[ast.Attribute] = []

    def _nest(self, node: ast.AST) -> None:
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = visit_Lambda = _nest

    def _add(self, node: ast.stmt, target: str) -> None:
        self.module.imports.append(Import(self.module.path, node.lineno, self.module.name, target, self.depth > 0))

    def _private(self, line: int, module: str, name: str) -> None:
        if module != self.module.name:
            self.module.private_uses.append(PrivateUse(self.module.path, line, module, name))

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            top = alias.name.split(".")[0]
            if top not in FIRST_PARTY:
                continue
            self._add(node, alias.name)
            if alias.asname:
                self.bindings[alias.asname] = alias.name
            else:
                self.bindings[top] = top
            for part in alias.name.split(".")[1:]:
                if is_private(part):
                    self._private(node.lineno, alias.name.rsplit(".", 1)[0], part)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            package = self.module.name.split(".")
            if self.module.file.name != "__init__.py":
                package.pop()
            package = package[: len(package) - (node.level - 1)]
            base = ".".join(package + ([node.module] if node.module else []))
        else:
            base = node.module or ""
        if base.split(".")[0] not in FIRST_PARTY:
            return
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            if submodule in self.project.modules:
                self._add(node, submodule)
                self.bindings[alias.asname or alias.name] = submodule
                # A private submodule is its own package's business.
                if is_private(alias.name) and not self.module.name.startswith(base + "."):
                    self._private(node.lineno, base, alias.name)
            else:
                self._add(node, base)
                if is_private(alias.name):
                    self._private(node.lineno, base, alias.name)

    def visit_Attribute(self, node: ast.Attribute) -> None:
        self.attributes.append(node)
        self.generic_visit(node)

    def resolve_attributes(self) -> None:
        """`alias._y` where alias (or alias.sub...) names an imported module; checked after the whole
        file is read, since a function may use a name imported further down."""
        for node in self.attributes:
            if not is_private(node.attr):
                continue
            chain, value = [], node.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if not isinstance(value, ast.Name) or value.id not in self.bindings:
                continue
            module = ".".join([self.bindings[value.id], *reversed(chain)])
            if module in self.project.modules:
                self._private(node.lineno, module, node.attr)


def scan(root: Path) -> Project:
    project = Project(root, {})
    for top in SCANNED:
        for file in sorted((root / top).rglob("*.py")):
            rel = file.relative_to(root)
            name = module_name(rel)
            project.modules[name] = Module(name, rel.as_posix(), file)
    for module in project.modules.values():
        collector = _Collector(project, module)
        collector.visit(ast.parse(module.file.read_text(encoding="utf-8"), filename=module.path))
        collector.resolve_attributes()
    return project


# ---- The checks: each returns one message per problem, naming file, imported module and rule -------
def direction_problems(project: Project) -> list[str]:
    problems = []
    for imp in project.imports("drctl", "components"):
        source, target = unit_of(imp.source), unit_of(imp.target)
        if source != target and target not in ALLOWED_IMPORTS.get(source, ()):
            problems.append(f'{imp.path}:{imp.line} imports {imp.target}: breaks the rule "{allowed_text(source)}"')
    return problems


def bench_problems(project: Project) -> list[str]:
    return [f'{imp.path}:{imp.line} imports {imp.target}: breaks the rule "bench → tests only through '
            f'{BENCH_MAY_IMPORT_FROM_TESTS}"'
            for imp in project.imports("bench") if unit_of(imp.target) == "tests"
            and not (imp.target + ".").startswith(BENCH_MAY_IMPORT_FROM_TESTS + ".")]


def top_level_problems(project: Project) -> list[str]:
    return [f'{m.path}: a module at the top of drctl/: breaks the rule "drctl/ holds only '
            f'{", ".join(DRCTL_TOP_LEVEL)} and packages"'
            for m in project.modules.values()
            if Path(m.path).parent == Path("drctl") and Path(m.path).name not in DRCTL_TOP_LEVEL]


def table_problems(project: Project) -> list[str]:
    units = {unit_of(name) for name in project.modules if name.split(".")[0] in ("drctl", "components")}
    packages = {unit_of(m.name) for m in project.modules.values() if len(Path(m.path).parts) > 2
                and m.path.startswith("drctl/")}
    problems = [f'drctl/{unit.split(".")[1]}/: no row in ALLOWED_IMPORTS: breaks the rule "every package of '
                'drctl has a row"' for unit in sorted(packages - set(ALLOWED_IMPORTS))]
    problems += [f'the row of {unit} in ALLOWED_IMPORTS names {target}, which is not here'
                 for unit, row in ALLOWED_IMPORTS.items() for target in row if target not in units]
    return problems


def private_problems(project: Project) -> list[str]:
    uses = sorted({use for m in project.modules.values() for use in m.private_uses},
                  key=lambda u: (u.path, u.line, u.module, u.name))
    return [f'{use.path}:{use.line} uses {use.module}.{use.name}: breaks the rule "no module uses another '
            f"module's underscore names\"" for use in uses]


def strongly_connected(graph: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's algorithm, iterative; the components of more than one node, each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in sorted(graph):
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, successors = work[-1]
            for succ in successors:
                if succ not in index:
                    index[succ] = low[succ] = len(index)
                    stack.append(succ)
                    on_stack.add(succ)
                    work.append((succ, iter(sorted(graph.get(succ, ())))))
                    break
                if succ in on_stack:
                    low[node] = min(low[node], index[succ])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[node])
                if low[node] == index[node]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == node:
                            break
                    if len(component) > 1:
                        found.append(sorted(component))
    return found


def shortest_cycle(graph: dict[str, set[str]], members: set[str], start: str) -> list[str]:
    """Breadth first: the shortest way from start back to itself inside a tangle, both ends included."""
    previous: dict[str, str] = {}
    queue, last = deque([start]), start
    while queue:
        last = queue.popleft()
        if start in graph[last]:
            break
        for succ in sorted(graph[last] & members):
            if succ not in previous and succ != start:
                previous[succ] = last
                queue.append(succ)
    path = [start]
    while last != start:
        path.insert(1, last)
        last = previous[last]
    return [*path, start]


def cycle_problems(project: Project, level: str) -> list[str]:
    """One cycle per tangle of `level` ("packages": units, "modules": modules), each edge with a file."""
    key = unit_of if level == "packages" else (lambda name: name)
    graph: dict[str, set[str]] = {}
    example: dict[tuple[str, str], Import] = {}
    for imp in project.imports("drctl", "components"):
        source, target = key(imp.source), key(imp.target)
        if source == target or (level == "modules" and target not in project.modules):
            continue
        graph.setdefault(source, set()).add(target)
        graph.setdefault(target, set())
        example.setdefault((source, target), imp)
    problems = []
    for component in strongly_connected(graph):
        path = min((shortest_cycle(graph, set(component), start) for start in component), key=len)
        cycle = " → ".join(path)
        edges = "; ".join(f"{e.path}:{e.line} imports {e.target}"
                          for e in (example[pair] for pair in pairwise(path)))
        problems.append(f'import cycle between {level} {cycle} ({edges}): breaks the rule "imports run one way"')
    return problems


def all_problems(root: Path) -> list[str]:
    project = scan(root)
    return (table_problems(project) + top_level_problems(project) + direction_problems(project)
            + cycle_problems(project, "packages") + cycle_problems(project, "modules")
            + private_problems(project) + bench_problems(project))


# ---- The tests on the code -------------------------------------------------------------------------
PROJECT = scan(REPO_ROOT)


def check(problems: list[str]) -> None:
    if problems:
        pytest.fail(f"{len(problems)} problem(s):\n" + "\n".join(problems), pytrace=False)


def test_the_scan_sees_the_code():
    count = {top: sum(1 for name in PROJECT.modules if name.split(".")[0] == top) for top in SCANNED}
    assert count["drctl"] >= 40, count
    assert count["components"] >= 10, count
    assert count["bench"] >= 1, count
    imports = PROJECT.imports(*SCANNED)
    assert len(imports) >= 100, len(imports)
    assert any(i.nested for i in imports), "no import inside a function was seen"
    # `from drctl.mysql import replication` is an import of the module, not of the package.
    assert any(i.target == "drctl.mysql.replication" for i in PROJECT.imports("components"))


def test_the_rules_table_matches_the_packages_and_has_no_cycle():
    check(table_problems(PROJECT))
    graph = {unit: set(row) for unit, row in ALLOWED_IMPORTS.items()}
    assert not strongly_connected(graph), strongly_connected(graph)


def test_drctl_has_only_its_entry_points_at_the_top():
    check(top_level_problems(PROJECT))


def test_imports_go_only_where_the_rules_allow():
    check(direction_problems(PROJECT))


def test_no_import_cycle_between_packages():
    check(cycle_problems(PROJECT, "packages"))


def test_no_import_cycle_between_modules():
    check(cycle_problems(PROJECT, "modules"))


def test_no_module_uses_another_modules_underscore_names():
    check(private_problems(PROJECT))


def test_bench_does_not_import_tests():
    check(bench_problems(PROJECT))


# ---- The checker itself, on made-up trees: it must find what it is for ----------------------------
def write_tree(root: Path, files: dict[str, str]) -> Path:
    base = {name: "" for name in ("drctl/__init__.py", "drctl/__main__.py", "drctl/cli.py", "components/__init__.py")}
    for package in ("stack", "mysql", "cloud", "runbook", "watch", "guard", "drill", "rehearsal", "plan", "backup", "local"):
        base[f"drctl/{package}/__init__.py"] = ""
    for rel, text in {**base, **files}.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
    return root


def test_a_clean_tree_has_no_problems(tmp_path):
    write_tree(tmp_path, {
        "drctl/stack/outputs.py": "",
        "drctl/mysql/replication.py": "from drctl.stack import outputs\n_x = 1\n",
        "drctl/runbook/promote.py": "from . import status\nfrom drctl.mysql import replication as r\nr.__name__\n",
        "drctl/runbook/status.py": "",
        "components/database.py": "from drctl.mysql import replication\n",
        "drctl/cli.py": "from drctl.runbook import promote\n",
        "bench/b.py": "from drctl.runbook import promote\n",
    })
    assert all_problems(tmp_path) == []


def test_the_checker_reports_a_forbidden_direction(tmp_path):
    write_tree(tmp_path, {
        "drctl/stack/x.py": "from drctl.runbook import y\n",
        "drctl/runbook/y.py": "",
        "drctl/watch/loop.py": "def f():\n    from ..runbook import y\n",  # relative, inside a function
        "components/mysql_cloud_init.py": "import drctl\n",
    })
    assert direction_problems(scan(tmp_path)) == [
        'components/mysql_cloud_init.py:1 imports drctl: breaks the rule "components → drctl.mysql, drctl.stack"',
        'drctl/stack/x.py:1 imports drctl.runbook.y: breaks the rule "drctl.stack → nothing of drctl or components"',
        'drctl/watch/loop.py:2 imports drctl.runbook.y: breaks the rule "drctl.watch → drctl.cloud, drctl.stack"',
    ]


def test_the_checker_reports_cycles(tmp_path):
    write_tree(tmp_path, {
        "drctl/mysql/a.py": "import drctl.cloud.b\n",
        "drctl/cloud/b.py": "from drctl.mysql import a\n",
        "drctl/runbook/p.py": "from drctl.runbook import q\n",
        "drctl/runbook/q.py": "\n\nfrom drctl.runbook.p import X\n",
    })
    project = scan(tmp_path)
    assert cycle_problems(project, "packages") == [
        "import cycle between packages drctl.cloud → drctl.mysql → drctl.cloud (drctl/cloud/b.py:1 imports "
        'drctl.mysql.a; drctl/mysql/a.py:1 imports drctl.cloud.b): breaks the rule "imports run one way"']
    assert cycle_problems(project, "modules") == [
        "import cycle between modules drctl.cloud.b → drctl.mysql.a → drctl.cloud.b (drctl/cloud/b.py:1 imports "
        'drctl.mysql.a; drctl/mysql/a.py:1 imports drctl.cloud.b): breaks the rule "imports run one way"',
        "import cycle between modules drctl.runbook.p → drctl.runbook.q → drctl.runbook.p (drctl/runbook/p.py:1 "
        'imports drctl.runbook.q; drctl/runbook/q.py:3 imports drctl.runbook.p): breaks the rule "imports run one way"',
    ]


def test_the_checker_reports_a_longer_cycle_in_order(tmp_path):
    write_tree(tmp_path, {
        "drctl/runbook/a.py": "from drctl.runbook import b\n",
        "drctl/runbook/b.py": "from drctl.runbook import c\n",
        "drctl/runbook/c.py": "from drctl.runbook import a\n",
    })
    [problem] = cycle_problems(scan(tmp_path), "modules")
    assert problem.startswith("import cycle between modules drctl.runbook.a → drctl.runbook.b → drctl.runbook.c → "
                              "drctl.runbook.a (drctl/runbook/a.py:1 imports drctl.runbook.b; ")


def test_the_checker_reports_a_stray_top_level_module_and_a_package_without_a_row(tmp_path):
    write_tree(tmp_path, {"drctl/helpers.py": "", "drctl/restore/__init__.py": ""})
    project = scan(tmp_path)
    assert top_level_problems(project) == [
        'drctl/helpers.py: a module at the top of drctl/: breaks the rule "drctl/ holds only __init__.py, '
        '__main__.py, cli.py and packages"']
    assert table_problems(project) == [
        'drctl/restore/: no row in ALLOWED_IMPORTS: breaks the rule "every package of drctl has a row"']


def test_the_checker_reports_underscore_names(tmp_path):
    write_tree(tmp_path, {
        "drctl/mysql/replication.py": "def _execute(): pass\n_quote_name = _execute\n",
        "drctl/mysql/bootstrap.py": (
            "from drctl.mysql import replication as r\n"
            "from drctl.mysql.replication import _quote_name\n"
            "import drctl.mysql.replication\n"
            "class A:\n"
            "    def f(self):\n"
            "        self._own()\n"
            "        r.__name__\n"
            "        drctl.mysql.replication._scalar\n"
            "        return r._execute()\n"
        ),
        "drctl/mysql/_sql.py": "",
        "drctl/mysql/errant.py": "from drctl.mysql import _sql\n",  # its own package's private module: fine
        "drctl/runbook/promote.py": "def f():\n    from drctl.mysql import _sql\n",
    })
    assert private_problems(scan(tmp_path)) == [
        "drctl/mysql/bootstrap.py:2 uses drctl.mysql.replication._quote_name: breaks the rule \"no module uses "
        "another module's underscore names\"",
        "drctl/mysql/bootstrap.py:8 uses drctl.mysql.replication._scalar: breaks the rule \"no module uses "
        "another module's underscore names\"",
        "drctl/mysql/bootstrap.py:9 uses drctl.mysql.replication._execute: breaks the rule \"no module uses "
        "another module's underscore names\"",
        "drctl/runbook/promote.py:2 uses drctl.mysql._sql: breaks the rule \"no module uses "
        "another module's underscore names\"",
    ]


def test_the_checker_reports_bench_importing_tests(tmp_path):
    write_tree(tmp_path, {"bench/watch.py": "import sys\nfrom tests.support.fake_cloudflare import FakeCloudflare\n"
                                            "from tests.drctl.watch.test_watch_cli import REPO\n"})
    assert bench_problems(scan(tmp_path)) == [
        'bench/watch.py:3 imports tests.drctl.watch.test_watch_cli: breaks the rule "bench → tests only through '
        'tests.support"']
