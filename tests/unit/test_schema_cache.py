"""The schema cache: a `_target_`'s schema read once is read back without importing its module; editing the
module (or a module its annotations come from) makes the entry stale; a corrupt entry or a cache that cannot
be written changes no answer. And the annotations' choices and bounds as plain JSON, judged as before."""

import json
import sys
from typing import Annotated, Literal

import pytest
from annotated_types import Ge, Interval

from prunelab import hints
from prunelab.errors import ConfigError
from prunelab.runs import schemas

CHOICES = 'from typing import Literal\nColour = Literal["red", "blue"]\n'
PLUGIN = '''from typing import Annotated
from annotated_types import Ge
from cache_choices import Colour


class Crit:
    def __init__(self, colour: Colour = "red", power: Annotated[int, Ge({low})] = 2):
        self.colour, self.power = colour, power
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    """A plugin module whose annotations come from a second module, both beside the configs; a fresh cache."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "code").mkdir()
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    (tmp_path / "code" / "cache_choices.py").write_text(CHOICES)
    (tmp_path / "code" / "cache_plugin.py").write_text(PLUGIN.format(low=1))
    yield tmp_path / "code"
    for name in ("cache_plugin", "cache_choices"):
        sys.modules.pop(name, None)


def check(**settings) -> None:
    schemas.check_node("pruning.criterion", {"_target_": "cache_plugin.Crit", **settings})


def forget() -> None:
    """Unload the plugin, as a new command starts without it."""
    for name in ("cache_plugin", "cache_choices"):
        sys.modules.pop(name, None)


def problem(**settings) -> str:
    with pytest.raises(ConfigError) as err:
        check(**settings)
    return str(err.value)


def test_a_cached_schema_answers_without_importing_the_module(plugin):
    check(power=3)
    forget()
    assert "must be >= 1, got 0" in problem(power=0) and "unknown colour 'green'" in problem(colour="green")
    check(power=3, colour="blue")
    assert "cache_plugin" not in sys.modules and "cache_choices" not in sys.modules


@pytest.mark.parametrize("edit", ["cache_plugin.py", "cache_choices.py"])
def test_editing_the_module_or_where_its_annotations_come_from_makes_the_entry_stale(plugin, edit):
    check(power=1, colour="blue")
    forget()
    if edit == "cache_plugin.py":
        (plugin / edit).write_text(PLUGIN.format(low=10))
        assert "must be >= 10, got 1" in problem(power=1)
    else:
        (plugin / edit).write_text(CHOICES.replace('"blue"', '"green"'))
        assert "unknown colour 'blue'" in problem(colour="blue")
    assert "cache_plugin" in sys.modules, "a stale entry is read again from the module"


def test_a_corrupt_entry_is_ignored_and_replaced(plugin, tmp_path):
    check()
    entries = list((tmp_path / "cache" / "prunelab" / "schemas").glob("*.json"))
    assert len(entries) == 1
    for text in ("{not json", json.dumps({"target": "cache_plugin.Crit", "stamps": {}, "schema": {"params": {}}}),
                 json.dumps([1, 2])):
        entries[0].write_text(text)
        forget()
        assert "must be >= 1, got 0" in problem(power=0) and "cache_plugin" in sys.modules
    assert json.loads(entries[0].read_text())["schema"]["params"]["power"]["hint"] == {"bounded": "int", "ge": 1}


def test_a_cache_that_cannot_be_written_only_means_the_import(plugin, tmp_path, monkeypatch):
    (tmp_path / "a_file").write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "a_file"))
    for _ in range(2):
        forget()
        assert "must be >= 1, got 0" in problem(power=0) and "cache_plugin" in sys.modules


@pytest.mark.parametrize("hint, value, says", [
    (Annotated[int, Ge(1)], 0, "must be >= 1, got 0"),
    (Annotated[int, Ge(1)], 1.5, "1.5 is not an integer >= 1"),
    (Annotated[int, Ge(1)] | None, 0, "must be >= 1, got 0"),
    (Annotated[float, Interval(gt=0, lt=1)], 1.0, "must be > 0 and < 1, got 1.0"),
    (Literal["a", "b"], "c", "unknown x 'c'"),
    (bool | Literal["state"], "maybe", "'maybe' is not one of ['state'] or true or false"),
    (list[Annotated[int, Ge(0)]], [1, -1], "[1, -1] is not a list of values"),
])
def test_choices_and_bounds_survive_json_and_are_judged(hint, value, says):
    encoded = json.loads(json.dumps(hints.encode(hint)))
    assert encoded == hints.encode(hint)
    assert says in hints.misfit("node.x", value, encoded)[0]
    with pytest.raises(ConfigError, match="Fix: "):
        hints.check("node.x", value, hint)
