"""The package's shape: layers import only downwards (import-linter's contracts in pyproject.toml), no
module takes part in an import cycle or imports the package root, and the configs (the top-level conf/) ship as
the package `prunelab.conf`."""

import subprocess
import sys
from distutils.core import run_setup  # setuptools' copy of distutils, which its setup() runs on

import grimp
import yaml

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


def test_every_yaml_under_conf_goes_into_the_wheel_as_prunelab_conf(monkeypatch, tmp_path):
    # the file list setuptools' build_py copies into the wheel, from setup.py and pyproject.toml
    monkeypatch.chdir(ROOT)
    dist = run_setup("setup.py", stop_after="config")
    dist.get_command_obj("egg_info").egg_base = str(tmp_path)  # its metadata out of the checkout
    build_py = dist.get_command_obj("build_py")
    build_py.ensure_finalized()
    shipped = {(package, src, name) for package, src, _, names in build_py.data_files for name in names}
    assert shipped == {("prunelab.conf", "conf", p.relative_to(ROOT / "conf").as_posix())
                       for p in (ROOT / "conf").rglob("*.yaml")}


def test_the_package_finds_config_yaml_and_every_default_group():
    defaults = yaml.safe_load((CONF / "config.yaml").read_text())["defaults"]
    options = [f"{group.removeprefix('override ')}/{option}.yaml" for entry in defaults if isinstance(entry, dict)
               for group, option in entry.items()]  # `override hydra/<group>`: prunelab's option of Hydra's group
    assert options and all((CONF / option).is_file() for option in options), options
