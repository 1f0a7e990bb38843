"""``wxpipe inspect``: the progress of an unfinished build, or the summary of a finished dataset."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .dataset import LOADED, Dataset, Part, array, read, write_unit
from .fsutil import tree_size
from .rechunk import DONE


def summary(path: str | Path, parts: int | None = None) -> str:
    ds = Dataset(path)
    size, files = tree_size(Path(path))
    n_dates, _, _, n_values = ds.data.shape
    lines = [
        f"dataset     {path}",
        f"uuid        {ds.uuid}",
        f"dates       {ds.attrs['start_date']} .. {ds.attrs['end_date']}, every {ds.attrs['frequency']} ({n_dates})",
        f"missing     {len(ds.missing_dates)}: {', '.join(str(d) for d in ds.missing_dates[:5])}",
        f"grid        {ds.attrs.get('resolution')} field shape {ds.attrs.get('field_shape')}, {n_values} points",
        f"shape       {ds.data.shape}, chunks {ds.data.chunks}"
        + (f", shards {ds.data.shards}" if ds.data.shards else ""),
        f"format      Zarr v{ds.root.metadata.zarr_format}, {ds.data.dtype}",
        f"on disk     {size / 1e6:.1f} MB in {files} files",
    ]
    if DONE in ds.root:  # a layout (wxpipe rechunk): target chunks, or shards, written so far
        flags = read(array(ds.root, DONE))
        state = "complete" if flags.all() else "UNFINISHED"
        unit = "shards" if ds.data.shards else "chunks"
        lines.append(f"layout      {state}: {int(flags.sum())}/{flags.size} {unit} written")
        lines.append(f"source      {ds.attrs.get('source_uuid')}")
    if not ds.attrs.get("build_complete", True) and LOADED in ds.root:
        done = read(array(ds.root, LOADED))
        chunk = write_unit(ds.data)
        chunks_done = sum(bool(done[i : i + chunk].all()) for i in range(0, n_dates, chunk))
        lines.append(
            f"build       UNFINISHED: {int(np.sum(done))}/{n_dates} dates loaded, "
            f"{chunks_done}/{-(-n_dates // chunk)} chunks"
        )
        if parts:
            finished = [
                f"{i}/{parts}" for i in range(1, parts + 1) if done[list(Part(i, parts).dates(n_dates, chunk))].all()
            ]
            lines.append(f"parts done  {len(finished)}/{parts}: {' '.join(finished) or '-'}")
        return "\n".join(lines)
    lines.append("build       complete")
    if "mean" in ds.root:
        st = ds.statistics()
        lines.append(f"statistics  {ds.attrs.get('statistics_start_date')} .. {ds.attrs.get('statistics_end_date')}")
    else:
        st, used = sample_statistics(ds)
        lines.append(f"statistics  none stored yet (`wxpipe statistics`); below: {used} dates sampled evenly")
    meta = ds.attrs.get("variables_metadata", {})
    lines.append(f"  {'variable':<14} {'minimum':>12} {'maximum':>12} {'mean':>12} {'stdev':>12}  units")
    for i, v in enumerate(ds.variables):
        row = " ".join(f"{st[k][i]:12.5g}" for k in ("minimum", "maximum", "mean", "stdev"))
        lines.append(f"  {v:<14} {row}  {meta.get(v, {}).get('units', '')}")
    return "\n".join(lines)


def sample_statistics(ds: Dataset, dates: int = 50) -> tuple[dict[str, np.ndarray], int]:
    """Per-variable statistics of up to ``dates`` evenly spaced dates (a glance, not the stored ones)."""
    from .statistics import Moments

    missing = set(ds.missing_dates)
    present = [i for i, d in enumerate(ds.dates) if d not in missing]
    pick = [present[int(k)] for k in np.linspace(0, len(present) - 1, min(dates, len(present)))]
    total = Moments.empty(len(ds.variables))
    for i in sorted(set(pick)):
        total = total.merge(Moments.of(read(ds.data, i).reshape(len(ds.variables), -1)))
    stats = {"minimum": total.minimum, "maximum": total.maximum, "mean": total.mean, "stdev": total.stdev}
    return stats, len(set(pick))
