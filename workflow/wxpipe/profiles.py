"""``wxpipe profiles install``: make ``snakemake --profile lumi`` work, as Snakemake users type it.

Snakemake looks a profile name up in the working directory and in the user's and the site's
Snakemake config directories, never in ``profiles/``. Top-level ``lumi/`` folders would clutter the
project, so the install step links ``profiles/<site>`` into the user's directory instead
(``$XDG_CONFIG_HOME/snakemake``, else ``~/.config/snakemake``). A user's own profile of the same
name is never replaced: it is kept, and said so.
"""

from __future__ import annotations

import os
from pathlib import Path

SITES = ("lumi", "leonardo", "marenostrum5", "jupiter")


def config_home() -> Path:
    """Snakemake's user config directory (platformdirs' rule on Linux: ``$XDG_CONFIG_HOME/snakemake``)."""
    base = os.environ.get("XDG_CONFIG_HOME", "").strip()
    return (Path(base) if base else Path.home() / ".config") / "snakemake"


def _ours(link: Path, target: Path) -> bool:
    """Whether ``link`` is a link that wxpipe may (re)place: to ``target``, or dangling into a removed
    checkout's ``profiles/<site>`` (a user's own profile is a folder, or a link that resolves)."""
    if not link.is_symlink():
        return False
    pointed = Path(os.readlink(link))
    if link.resolve() == target.resolve():
        return True
    return not link.exists() and pointed.parent.name == "profiles" and pointed.name == target.name


def install(source: Path, home: Path | None = None, sites: tuple[str, ...] = SITES) -> list[str]:
    """Link each site's profile folder under ``source`` into ``home``; one line per site says what happened."""
    home = home or config_home()
    home.mkdir(parents=True, exist_ok=True)
    lines = []
    for site in sites:
        target = (source / site).resolve()
        if not (target / "config.yaml").is_file():
            raise FileNotFoundError(f"{source / site}/config.yaml: no such profile")
        link = home / site
        if link.exists() or link.is_symlink():
            if not _ours(link, target):
                lines.append(f"{link}: kept (your own profile of that name); use --profile {source / site}")
                continue
            if link.resolve() == target:
                lines.append(f"{link} -> {target}: already there")
                continue
            link.unlink()
        link.symlink_to(target, target_is_directory=True)
        lines.append(f"{link} -> {target}: linked (snakemake --profile {site})")
    return lines
