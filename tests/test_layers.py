"""The layer order of docs/ARCHITECTURE.md, checked on the source: every import points down or sideways.

Each module of ``humanseg/``, ``dataset_builder/``, ``app.py`` and ``examples/`` is read with ``ast`` (imports at
the top and inside functions alike: a lazy import is still a dependency) and placed in a layer by :data:`LAYERS`.
A module may import only from its own layer or below; no modules, and no units of the table (a package such as
``humanseg.segmenters`` counts as one), may import each other in a cycle; only the user interface imports
Gradio; and no module imports another module's private (``_name``) names.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = ("humanseg", "dataset_builder", "examples", "app")

#: Layer of each unit, lowest first (keep in sync with docs/ARCHITECTURE.md). ``name.*`` is a package and
#: everything under it; a plain name is that module only, and wins over a package entry.
LAYERS: dict[str, int] = {
    # 0 core: single-job modules that need nothing of the project
    "humanseg": 0,
    "humanseg.video": 0,
    "humanseg.metrics": 0,
    "humanseg.plate": 0,
    "humanseg.maintained_plate": 0,
    "humanseg.drift": 0,
    "humanseg.scale": 0,
    "humanseg.render": 0,
    "humanseg.plots": 0,
    "humanseg.model_files": 0,
    "humanseg.progress": 0,
    "humanseg.files": 0,
    "humanseg.sizes": 0,
    "humanseg.checks": 0,
    "humanseg.device": 0,
    "humanseg.distributed": 0,
    "humanseg.stages": 0,
    "humanseg.timing": 0,
    # 1 networks and their files
    "humanseg.models.*": 1,
    "humanseg.checkpoint": 1,
    # 2 every segmentation backend, the trained-model segmenter included
    "humanseg.segmenters.*": 2,
    # 3 running segmenters over clips
    "humanseg.evaluate": 3,
    "humanseg.segment": 3,
    "humanseg.export": 3,
    "humanseg.anonymise": 3,
    "humanseg.occupancy": 3,
    "humanseg.footage": 3,
    "humanseg.stream": 3,
    # 4 datasets (segmenters come in from the callers or from the registry)
    "dataset_builder.*": 4,
    # 5 training, validated with the evaluator users run
    "humanseg.trainset": 5,
    "humanseg.train": 5,
    "humanseg.run_folder": 5,
    "humanseg.validation": 5,
    # 6 the site: benchmark, workspace, the Gradio-free site API
    "humanseg.site_benchmark": 6,
    "humanseg.site_report": 6,
    "humanseg.workspace": 6,
    "humanseg.site": 6,
    "humanseg.training_job": 6,
    # 7 entry points
    "humanseg.__main__": 7,
    "humanseg.cli.*": 7,
    "humanseg.ui.*": 7,
    "dataset_builder.cli": 7,
    "dataset_builder.__main__": 7,
    "app": 7,
    "examples.*": 7,
}

#: Modules that may import Gradio: the user interface only.
GRADIO_UNITS = ("humanseg.ui.*", "app")


def _module_files() -> Iterator[tuple[str, Path]]:
    """(dotted module name, file) for every module the layer order covers."""
    yield "app", ROOT / "app.py"
    for top in ("humanseg", "dataset_builder", "examples"):
        for path in sorted((ROOT / top).rglob("*.py")):
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            yield ".".join(parts), path


MODULES: dict[str, Path] = dict(_module_files())


def unit_of(module: str) -> str | None:
    """The :data:`LAYERS` entry that holds ``module``: its own name, else its nearest package entry."""
    if module in LAYERS:
        return module
    parts = module.split(".")
    for n in range(len(parts), 0, -1):
        key = ".".join(parts[:n]) + ".*"
        if key in LAYERS:
            return key
    return None


def _is_package(module: str) -> bool:
    return MODULES[module].name == "__init__.py"


def imports_of(module: str) -> list[tuple[int, str, tuple[str, ...]]]:
    """(line, imported module, imported names) for every import statement in ``module``, at any depth.

    ``from pkg import name`` counts as an import of ``pkg.name`` when that is a module of the project.
    """
    tree = ast.parse(MODULES[module].read_text(encoding="utf-8"), filename=str(MODULES[module]))
    package = module if _is_package(module) else module.rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name, ()) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import: resolve against this module's package
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, base] if base else anchor)
            names = tuple(alias.name for alias in node.names)
            submodules = [f"{base}.{n}" for n in names if f"{base}.{n}" in MODULES]
            found.extend((node.lineno, sub, ()) for sub in submodules)
            rest = tuple(n for n in names if f"{base}.{n}" not in MODULES)
            if rest or not submodules:
                found.append((node.lineno, base, rest))
    return found


def _project_edges() -> dict[str, list[tuple[int, str, tuple[str, ...]]]]:
    edges = {}
    for module in MODULES:
        edges[module] = [
            (line, target, names)
            for line, target, names in imports_of(module)
            if target.split(".")[0] in PROJECT_PACKAGES and target in MODULES and target != module
        ]
    return edges


EDGES = _project_edges()


def _where(module: str, line: int) -> str:
    path = MODULES[module]
    return f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}:{line}"


def test_every_module_has_a_layer():
    missing = sorted(m for m in MODULES if unit_of(m) is None)
    assert not missing, (
        f"modules without a layer: {missing}; add each to LAYERS in tests/test_layers.py (and to the layer list "
        "in docs/ARCHITECTURE.md)"
    )


def test_every_layer_entry_names_a_module():
    stale = sorted(u for u in LAYERS if not any(unit_of(m) == u for m in MODULES))
    assert not stale, f"LAYERS entries without a module (moved or deleted?): {stale}; update tests/test_layers.py"


def test_imports_point_down_the_layers():
    upward = []
    for module, edges in EDGES.items():
        unit = unit_of(module)
        for line, target, _ in edges:
            target_unit = unit_of(target)
            if unit is None or target_unit is None:
                continue  # reported by test_every_module_has_a_layer
            if LAYERS[target_unit] > LAYERS[unit]:
                upward.append(
                    f"{_where(module, line)}: {module} (layer {LAYERS[unit]}) imports {target} "
                    f"(layer {LAYERS[target_unit]})"
                )
    assert not upward, "imports from a higher layer (pass the object in from the caller instead):\n" + "\n".join(
        upward
    )


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one node (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def _describe_cycle(component: list[str], edge_of: dict[tuple[str, str], str]) -> str:
    members = set(component)
    links = sorted(where for (a, b), where in edge_of.items() if a in members and b in members)
    return f"{' <-> '.join(component)}\n    " + "\n    ".join(links)


def test_no_import_cycle_between_modules():
    graph = {m: {t for _, t, _ in edges} for m, edges in EDGES.items()}
    edge_of = {(m, t): f"{_where(m, line)}: {m} imports {t}" for m, edges in EDGES.items() for line, t, _ in edges}
    cycles = _cycles(graph)
    assert not cycles, "import cycles:\n" + "\n".join(_describe_cycle(c, edge_of) for c in cycles)


def test_no_import_cycle_between_packages():
    graph: dict[str, set[str]] = {}
    edge_of: dict[tuple[str, str], str] = {}
    for module, edges in EDGES.items():
        unit = unit_of(module)
        for line, target, _ in edges:
            target_unit = unit_of(target)
            if unit and target_unit and target_unit != unit:
                graph.setdefault(unit, set()).add(target_unit)
                edge_of.setdefault((unit, target_unit), f"{_where(module, line)}: {module} imports {target}")
    cycles = _cycles(graph)
    assert not cycles, "import cycles between units of LAYERS:\n" + "\n".join(
        _describe_cycle(c, edge_of) for c in cycles
    )


def test_only_the_user_interface_imports_gradio():
    offenders = [
        f"{_where(module, line)}: {module} imports {target}"
        for module in MODULES
        if unit_of(module) not in GRADIO_UNITS
        for line, target, _ in imports_of(module)
        if target.split(".")[0] == "gradio"
    ]
    assert not offenders, "gradio outside humanseg/ui and app.py:\n" + "\n".join(offenders)


def test_private_names_stay_in_their_module():
    crossing = [
        f"{_where(module, line)}: {module} imports {name} from {target}"
        for module, edges in EDGES.items()
        for line, target, names in edges
        for name in names
        if name.startswith("_") and not name.startswith("__")
    ]
    assert not crossing, "private names used outside their module (make them public or move the code):\n" + "\n".join(
        crossing
    )


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("from humanseg.segmenters import plate_diff", "humanseg.segmenters.plate_diff"),
        ("from humanseg import plate as p", "humanseg.plate"),
        ("import humanseg.models.base", "humanseg.models.base"),
        ("from . import base", "humanseg.segmenters.base"),
        ("from .base import Segmenter", "humanseg.segmenters.base"),
        ("def f():\n    from humanseg.models import build_model\n", "humanseg.models"),
    ],
)
def test_the_walker_resolves_every_import_form(source, expected, tmp_path, monkeypatch):
    # A module inside humanseg.segmenters, so the relative forms have a package to resolve against.
    path = tmp_path / "probe.py"
    path.write_text(source, encoding="utf-8")
    monkeypatch.setitem(MODULES, "humanseg.segmenters.probe", path)
    assert expected in [target for _, target, _ in imports_of("humanseg.segmenters.probe")]


def test_a_lazy_upward_import_is_caught(tmp_path, monkeypatch):
    path = tmp_path / "probe.py"
    path.write_text("def f():\n    from humanseg.segment import segment_video\n", encoding="utf-8")
    monkeypatch.setitem(MODULES, "humanseg.models.probe", path)
    monkeypatch.setitem(EDGES, "humanseg.models.probe", _project_edges()["humanseg.models.probe"])
    with pytest.raises(AssertionError, match=r"humanseg.models.probe \(layer 1\) imports humanseg.segment \(layer 3\)"):
        test_imports_point_down_the_layers()


def test_the_cycle_finder_reports_each_cycle_once():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a", "d"}, "d": set(), "e": {"e", "d"}}
    assert _cycles(graph) == [["a", "b", "c"]]  # a self-import is not a cycle between modules
