"""The import graph: no module imports, however indirectly, a module that imports it back,
and the light modules stay light.

A circle makes the import order matter and hides the layering (grammar -> core -> webhooks
and dashboard): the first ``smsgate.cli`` imported by a sub-command group, or a service
reaching back into the one that calls it. grimp (import-linter's graph) reads every import
statement, function-level ones included, so an import deferred into a function to dodge
the circle still counts; only imports under ``if TYPE_CHECKING:`` are left out, since they
never run.
"""

from __future__ import annotations

import json
import subprocess
import sys

import grimp

PACKAGES = ("grammar", "webhooks", "smsgate")


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """One shortest circle through each direct import that closes one, sorted."""
    cycles = set()
    for importer in graph.modules:
        for imported in graph.find_modules_directly_imported_by(importer):
            back = graph.find_shortest_chain(importer=imported, imported=importer)
            if back:
                circle = (importer, *back)
                start = circle.index(min(circle[:-1]))  # the same circle, whichever edge found it
                cycles.add(circle[start:-1] + circle[:start] + (circle[start],))
    return sorted(list(cycle) for cycle in cycles)


def test_the_import_graph_has_no_cycles():
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True, cache_dir=None)
    assert import_cycles(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for module in ("a", "a.b", "a.c", "a.d"):
        graph.add_module(module)
    graph.add_import(importer="a.b", imported="a.c")
    graph.add_import(importer="a.c", imported="a.d")
    graph.add_import(importer="a.d", imported="a.b")
    graph.add_import(importer="a", imported="a.b")
    assert import_cycles(graph) == [["a.b", "a.c", "a.d", "a.b"]]


HEAVY = ("flask", "sqlalchemy", "smsgate.app", "smsgate.dashboard", "webhooks.twilio", "pyparsing")


def loaded_by(module: str) -> list[str]:
    """The heavy modules that ``import module`` loads, in a fresh interpreter."""
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    modules = set(json.loads(output.stdout))
    return [name for name in HEAVY if name in modules]


def test_configuration_and_the_neutral_message_load_no_framework():
    """Every webhook imports ``smsgate.inbound``; the CLI and the worker read ``smsgate.config``.
    Neither may drag in Flask, SQLAlchemy, the app factory, the dashboard or the parser."""
    assert loaded_by("smsgate") == []
    assert loaded_by("smsgate.config") == []
    assert loaded_by("smsgate.inbound") == []


def test_the_grammar_imports_nothing_of_ours_nor_flask():
    assert loaded_by("grammar") == ["pyparsing"]
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    ours = {m for m in graph.modules if not m.startswith("grammar")}
    for module in graph.find_descendants("grammar") | {"grammar"}:
        imported = graph.find_modules_directly_imported_by(module)
        assert not imported & ours, module
