"""The imports follow the layers the tree shows.

Every module under swarmai/ is parsed (module-level and function-level imports
alike, ``TYPE_CHECKING`` blocks included) and its imports of swarmai code are
mapped to *units*: the top-level modules and subpackages (``swarmai.spec``,
``swarmai.lifecycle``, ...) and, inside ``swarmai.incontainer``, its
subpackages and modules (``swarmai.incontainer.sync``, ...).  Then:

- only the CLI imports click; only the engine module imports docker or
  python-on-whales;
- the code that runs inside containers imports nothing host-side but
  ``swarmai.errors`` and ``swarmai.modeluri``, and nothing host-side imports it;
- cli -> promotion -> lifecycle -> (render, registry_client, engine, images,
  writer) -> (spec, assets) -> (modeluri, errors): nothing imports upward, and
  the renderers import nothing of their own layer (they stay pure: no engine);
- no two units import each other, directly or around a longer cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE = REPO / "swarmai"

# Each host-side unit's layer; a unit imports only from its own layer or below.
LAYERS: dict[str, int] = {
    "swarmai": 0,  # the package root: __version__
    "swarmai.errors": 0,
    "swarmai.modeluri": 0,
    "swarmai.files": 0,
    "swarmai.tlsca": 0,
    "swarmai.spec": 1,
    "swarmai.assets": 1,  # where the gateway/ and registry/ asset folders are
    "swarmai.render": 2,
    "swarmai.registry_client": 2,
    "swarmai.engine": 2,
    "swarmai.images": 2,
    "swarmai.writer": 2,
    "swarmai.lifecycle": 3,
    "swarmai.promotion": 4,
    "swarmai.cli": 5,
}
# Units that import nothing of their own layer: the renderers are pure.
PURE = {"swarmai.render"}
INCONTAINER = "swarmai.incontainer"
# What code inside containers may import of the host side.
SHARED = {"swarmai.errors", "swarmai.modeluri"}

CLI_ONLY = {"click"}
ENGINE_ONLY = {"docker", "python_on_whales"}
ENGINE_PACKAGE = "swarmai/engine/"


@cache
def modules() -> dict[str, Path]:
    """Dotted module name -> file, for every module of the package."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(REPO).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def is_package(name: str) -> bool:
    return modules()[name].name == "__init__.py"


def imports(name: str) -> Iterator[tuple[str, int]]:
    """(imported module, line) for every import statement in module ``name``."""
    tree = ast.parse(modules()[name].read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, node.lineno
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the module's own package
                package = name.split(".") if is_package(name) else name.split(".")[:-1]
                anchor = ".".join(package[: len(package) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            for alias in node.names:
                # `from swarmai import engine` imports the module swarmai.engine.
                submodule = f"{base}.{alias.name}"
                yield (submodule if submodule in modules() else base), node.lineno


def unit(module: str) -> str:
    """The unit a swarmai module belongs to."""
    parts = module.split(".")
    if len(parts) > 2 and parts[1] == "incontainer":
        return ".".join(parts[:3])
    return ".".join(parts[:2])


def edges() -> Iterator[tuple[str, str, str]]:
    """(importing module, imported swarmai module, "file:line") for every import of swarmai."""
    for name, path in modules().items():
        for imported, line in imports(name):
            if imported == "swarmai" or imported.startswith("swarmai."):
                yield name, imported, f"{path.relative_to(REPO)}:{line}"


def third_party(roots: set[str]) -> Iterator[tuple[str, str]]:
    """("file:line", module) for every import of a top-level package in ``roots``."""
    for name, path in modules().items():
        for imported, line in imports(name):
            if imported.split(".")[0] in roots:
                yield f"{path.relative_to(REPO)}:{line}", imported


def test_only_the_cli_imports_click() -> None:
    wrong = [f"{where}: {module}" for where, module in third_party(CLI_ONLY)
             if not where.startswith("swarmai/cli/")]
    assert not wrong, "click outside swarmai/cli:\n" + "\n".join(wrong)


def test_only_the_engine_module_imports_docker_clients() -> None:
    wrong = [f"{where}: {module}" for where, module in third_party(ENGINE_ONLY)
             if not where.startswith(ENGINE_PACKAGE)]
    assert not wrong, "docker / python_on_whales outside swarmai/engine/:\n" + "\n".join(wrong)


def test_incontainer_code_imports_nothing_host_side() -> None:
    wrong = [f"{where}: {imported}" for name, imported, where in edges()
             if name.startswith(f"{INCONTAINER}.") or name == INCONTAINER
             if not (imported.startswith(f"{INCONTAINER}.") or imported in SHARED)]
    assert not wrong, "in-container code importing host-side code:\n" + "\n".join(wrong)


def test_host_code_never_imports_incontainer_code() -> None:
    wrong = [f"{where}: {imported}" for name, imported, where in edges()
             if not (name.startswith(f"{INCONTAINER}.") or name == INCONTAINER)
             if imported.startswith(f"{INCONTAINER}.") or imported == INCONTAINER]
    assert not wrong, "host-side code importing in-container code:\n" + "\n".join(wrong)


def test_every_host_unit_has_a_layer() -> None:
    units = {unit(name) for name in modules()}
    unknown = sorted(u for u in units if u not in LAYERS and not u.startswith(INCONTAINER))
    assert not unknown, f"units without a layer (add them to LAYERS): {unknown}"


def test_nothing_imports_upward() -> None:
    wrong = []
    for name, imported, where in edges():
        source, target = unit(name), unit(imported)
        if source == target or source not in LAYERS or target not in LAYERS:
            continue
        if LAYERS[target] > LAYERS[source]:
            wrong.append(f"{where}: {source} (layer {LAYERS[source]}) imports {imported} "
                         f"(layer {LAYERS[target]})")
        elif LAYERS[target] == LAYERS[source] and source in PURE:
            wrong.append(f"{where}: {source} must stay pure, yet imports {imported}")
    assert not wrong, "imports against the layers:\n" + "\n".join(wrong)


def test_no_import_cycle_between_units() -> None:
    graph: dict[str, set[str]] = {}
    for name, imported, _where in edges():
        source, target = unit(name), unit(imported)
        if source != target and source != "swarmai" and target != "swarmai":
            graph.setdefault(source, set()).add(target)
    cycles = _cycles(graph)
    assert not cycles, "units that import each other (around a cycle):\n" + "\n".join(
        ", ".join(cycle) for cycle in cycles)


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The members of each import cycle: strongly connected components (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for successor in sorted(graph.get(node, ())):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found
