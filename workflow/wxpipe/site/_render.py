"""Pages from templates: a jinja2 environment with autoescape, links relative to the page that holds them
(so the site works from ``file://`` and moves as one folder with the project), and the graph as inline SVG.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

import jinja2

from ..fsutil import atomic_write_text

log = logging.getLogger(__name__)

STYLE = "style.css"


def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("wxpipe.site", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["size"] = human_size
    env.filters["number"] = number
    return env


def human_size(value: Any) -> str:
    """Bytes as anemoi-catalogue shows them (1024-based, one decimal); a dash when unknown."""
    if value is None:
        return "-"
    size = float(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def number(value: Any, digits: int = 4) -> str:
    if isinstance(value, bool) or value is None:
        return "-" if value is None else ("yes" if value else "no")
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return str(value)


PICTURES = "pictures"  # the site's own copies of the project's pictures


def linkers(out: Path, page: str, root: Path) -> dict[str, Callable[[str], str]]:
    """``href(target)`` for a page of the site, ``fhref(path)`` for a project file, both relative to ``page``;
    ``picture(path)`` for a picture, copied into the site so that it shows wherever the site goes (a
    ``--report`` zip, a web server), not only beside the project."""
    here = (out / page).parent.resolve()

    def href(target: str) -> str:
        return Path(os.path.relpath(out.resolve() / target, here)).as_posix()

    def fhref(path: str) -> str:
        p = Path(path)
        return Path(os.path.relpath(p if p.is_absolute() else (root / p).resolve(), here)).as_posix()

    def picture(path: str) -> str:
        src = (root / path).resolve()
        rel = Path(os.path.relpath(src, root.resolve()))
        if rel.parts[:1] == ("..",) or not src.is_file():
            return fhref(path)
        dst = out / PICTURES / rel
        if not dst.is_file() or dst.stat().st_size != src.stat().st_size or dst.stat().st_mtime < src.stat().st_mtime:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
        return href(f"{PICTURES}/{rel.as_posix()}")

    return {"href": href, "fhref": fhref, "picture": picture}


def write_page(env: jinja2.Environment, out: Path, page: str, template: str, root: Path, **context: Any) -> Path:
    html = env.get_template(template).render(page=page, **linkers(out, page, root), **context)
    atomic_write_text(out / page, html)
    return out / page


def copy_style(out: Path) -> None:
    atomic_write_text(out / STYLE, resources.files("wxpipe.site").joinpath("templates", STYLE).read_text())


def graph_svg(dot: str) -> str | None:
    """The graph drawn by Graphviz, as an ``<svg>`` element to inline; None where ``dot`` is missing or fails."""
    exe = shutil.which("dot")
    if exe is None:
        log.warning("graphviz's dot is not installed: the lineage graph is listed, not drawn")
        return None
    try:
        res = subprocess.run([exe, "-Tsvg"], input=dot, capture_output=True, text=True, check=True, timeout=120)
    except (subprocess.SubprocessError, OSError) as exc:
        log.warning("dot -Tsvg failed: %s", exc)
        return None
    start = res.stdout.find("<svg")
    return res.stdout[start:] if start >= 0 else None
