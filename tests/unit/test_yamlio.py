"""YAML as anemoi recipes write it: anchors, aliases and merge keys, with the line of every key."""

from __future__ import annotations

from pathlib import Path

from wxpipe.yamlio import load_with_lines

TEXT = """\
common:
  sfc: &sfc
    path: a.grib
    levtype: sfc
  members: &members
    number: [1, 2]
    param: [2t]
input:
  grib:
    <<: [*sfc, *members]
    param: [msl]
"""


def test_merge_keys_fill_in_what_the_mapping_does_not_say(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text(TEXT)
    data, lines = load_with_lines(f)
    assert data["input"]["grib"] == {"param": ["msl"], "path": "a.grib", "levtype": "sfc", "number": [1, 2]}
    assert lines[("input", "grib", "param")] == 11 and lines[("input", "grib", "path")] == 10
