"""A user's mistake is one or two lines naming the file (and line), never a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

WXPIPE = Path(sys.executable).parent / "wxpipe"
RECIPE = """\
dates:
  start: 2020-01-01T00:00
  end: 2020-01-02T00:00
  frequency: 6h
input:
  join:
    - grib: {path: "x/{date:strftime(%Y%m%d%H)}.grib", param: [2t]}
"""


def wxpipe(*args: str | Path) -> tuple[int, list[str]]:
    res = subprocess.run([WXPIPE, *args], capture_output=True, text=True, timeout=60)
    assert "Traceback" not in res.stderr, res.stderr
    return res.returncode, res.stderr.strip().splitlines()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "{f}: no such file"),
        (b"\x7fELF\x02\x01\x01\x00\x00\xff\xfe", "{f}: not a text file"),
        (RECIPE.replace("frequency: 6h", "frequency: [6h").encode(), "{f}:5:"),
        (b"a: &x [1, *x]\n", "{f}:1: a recursive alias"),
        (b"- 1\n- 2\n", "{f}: a {what} is a mapping of keys"),
        (b"dates: {start: 2020-13-01}\n", "{f}:1: '2020-13-01' is not a date"),
    ],
    ids=["missing", "binary", "yaml-syntax", "recursive-alias", "not-a-mapping", "impossible-date"],
)
@pytest.mark.parametrize("what", ["recipe", "config"])
def test_bad_files_are_one_or_two_lines(tmp_path: Path, what: str, content: bytes | None, expected: str) -> None:
    f = tmp_path / "mine.yaml"
    if content is not None:
        f.write_bytes(content)
    code, lines = wxpipe(what, "validate", f)
    assert code == 1 and 1 <= len(lines) <= 2, lines
    assert lines[0].startswith(f"wxpipe {what}: error: " + expected.format(f=f, what=what)), lines


def test_a_folder_is_not_a_recipe(tmp_path: Path) -> None:
    code, lines = wxpipe("recipe", "validate", tmp_path)
    assert code == 1 and lines == [f"wxpipe recipe: error: {tmp_path}: is a folder, not a file"]


def test_a_bad_date_names_key_and_format(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text(RECIPE.replace("end: 2020-01-02T00:00", "end: 2nd of January"))
    code, lines = wxpipe("recipe", "validate", f)
    assert code == 1 and len(lines) == 2, lines
    assert lines[1].startswith(f"  {f}:3: dates.end:") and "2020-01-01" in lines[1], lines


def test_version_and_nearest_command() -> None:
    res = subprocess.run([WXPIPE, "--version"], capture_output=True, text=True, check=True)
    assert res.stdout.startswith("wxpipe ") and res.stdout.split()[1][0].isdigit()
    code, lines = wxpipe("statistcs", "x")
    assert code == 2 and "invalid choice: 'statistcs' (did you mean 'statistics'?)" in lines[-1]
    code, lines = wxpipe("copy", "a", "b", "--verfy", "full")
    assert code == 2 and "unrecognized arguments: --verfy (did you mean --verify?), full" in lines[-1]
    code, lines = wxpipe("copy", "a", "b", "--verify", "ful")
    assert code == 2 and "(did you mean 'full'?)" in lines[-1]
