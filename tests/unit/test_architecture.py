"""The package's shape: layers import only downwards (import-linter's contracts in pyproject.toml), no
module takes part in an import cycle or imports the package root, and the configs ship inside the package."""

import subprocess
import sys

import grimp

from tests.helpers import CONF, ROOT


def test_layer_contracts_hold():
    # in its own process: import-linter reconfigures logging
    config = str(ROOT / "pyproject.toml")
    check = ("import sys; from importlinter.cli import lint_imports; "
             f"sys.exit(lint_imports({config!r}, no_cache=True, no_logo=True))")
    proc = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "Contracts: 2 kept, 0 broken." in proc.stdout


def import_cycle(graph) -> list[str] | None:
    """One cycle of direct imports among the graph's modules (function-level imports included), or None."""
    state, stack = {}, []

    def visit(module):
        state[module], _ = "open", stack.append(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if state.get(imported) == "open":
                return stack[stack.index(imported):] + [imported]
            if imported not in state and (found := visit(imported)):
                return found
        state[module], _ = "done", stack.pop()
        return None

    for module in sorted(graph.modules):
        if module not in state and (found := visit(module)):
            return found
    return None


def test_no_module_is_part_of_an_import_cycle():
    assert import_cycle(grimp.build_graph("prunelab")) is None


def test_no_module_imports_the_package_root():
    # the root re-exports the API, the top layer; the version lives in `prunelab.version`
    graph = grimp.build_graph("prunelab")
    assert [m for m in sorted(graph.modules) if "prunelab" in graph.find_modules_directly_imported_by(m)] == []


def test_the_cycle_check_finds_a_cycle():
    class Graph:
        modules = {"a", "b", "c"}
        edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}}

        def find_modules_directly_imported_by(self, m):
            return self.edges[m]

    assert import_cycle(Graph()) == ["a", "b", "c", "a"]


def test_the_configs_live_in_the_package():
    assert CONF.parent.name == "prunelab" and (CONF / "config.yaml").is_file()
