"""The corpus of anemoi recipes (tests/recipes/anemoi): the valid ones validate, the others are refused.

Each file's header says which anemoi-datasets page or test it comes from and its verdict:
``identical`` (anemoi-datasets builds the same data, checked by ``make compat``) or
``refused: <key>: not supported by wxpipe: <feature>``. Validation only: no GRIB is read.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from wxpipe.errors import WxpipeError
from wxpipe.recipe import load_recipe

CORPUS = Path(__file__).resolve().parents[1] / "recipes" / "anemoi"
RECIPES = sorted(CORPUS.glob("*.yaml"))
_VERDICT = re.compile(r"^# verdict: (identical|refused: (.*))$", re.MULTILINE)
# the forms of issue 13 and a recipe of the corpus that holds each (a regex on its text)
FORMS = {
    "one source under input, without join": r"^input:\n  (grib|netcdf|forcings):",
    "a single value where anemoi takes a list": r"^ +(param|number|levelist): [\w.]+$",
    "a list where anemoi takes a single value": r"^ +(param|number|levelist): \[",
    "dates with a space": r"^  start: \d{4}-\d\d-\d\d \d\d:",
    "dates with Z": r"^  start: \S+Z$",
    "a date without time": r"^  start: \d{4}-\d\d-\d\d$",
    "an ISO 8601 frequency": r"^  frequency: P",
    "missing dates as strings": r"^  missing: \['",
    "missing date ranges": r"^    - start: ",
    "statistics end as a year": r"^  end: \d{4}$",
    "forcings with a template": r"template: \$\{input\.",
    "member subset with number": r"^ +number: ",
    "concat": r"^  concat:",
    "pipe with rename": r"- rename:",
}


def _verdict(path: Path) -> tuple[bool, str]:
    m = _VERDICT.search(path.read_text())
    assert m, f"{path.name}: no '# verdict:' line"
    return m.group(1) == "identical", m.group(2) or ""


VALID = [p for p in RECIPES if _verdict(p)[0]]
REFUSED = [p for p in RECIPES if not _verdict(p)[0]]


def test_the_corpus_is_large_enough_and_says_where_each_recipe_comes_from() -> None:
    assert len(RECIPES) >= 12 and len(VALID) >= 8
    for path in RECIPES:
        head = path.read_text().splitlines()[0]
        assert head.startswith("# ") and "anemoi-datasets" in head, path.name


@pytest.mark.parametrize("path", VALID, ids=[p.stem for p in VALID])
def test_valid_recipes_validate(path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe.variables() and len(recipe.dates.all()) > 1


@pytest.mark.parametrize("path", REFUSED, ids=[p.stem for p in REFUSED])
def test_unsupported_recipes_are_refused_as_such(path: Path) -> None:
    expected = _verdict(path)[1]
    assert "not supported by wxpipe: " in expected
    with pytest.raises(WxpipeError) as err:
        load_recipe(path)
    message = str(err.value)
    assert expected in message and "misspelled" not in message
    last = expected.split(":")[0].split(".")[-1]  # the key at fault, whose line the message names
    lines = path.read_text().splitlines()
    line = next(i + 1 for i, t in enumerate(lines) if t.lstrip(" -").startswith(last + ":"))
    assert f"{path}:{line}: {expected}" in message


@pytest.mark.parametrize("form", FORMS)
def test_every_form_of_the_issue_is_in_a_valid_recipe(form: str) -> None:
    pattern = re.compile(FORMS[form], re.MULTILINE)
    assert any(pattern.search(p.read_text()) for p in VALID), form


def _gribs(node: object) -> list[dict[str, object]]:
    """Every grib source of a recipe, wherever it sits in the input tree."""
    if isinstance(node, list):
        return [g for item in node for g in _gribs(item)]
    if not isinstance(node, dict):
        return []
    own = [node["grib"]] if isinstance(node.get("grib"), dict) else []
    return own + [g for k, v in node.items() if k != "grib" for g in _gribs(v)]


def test_levelist_without_levtype_is_in_a_valid_recipe() -> None:
    gribs = [g for p in VALID for g in _gribs(yaml.safe_load(p.read_text()))]
    assert any("levelist" in g and "levtype" not in g for g in gribs)
