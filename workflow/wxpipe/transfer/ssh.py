"""``ssh://host/abs/path`` sites: rsync over ssh moves the files, a remote ``sha256sum`` checks them.

``host`` is resolved by ssh itself, so aliases, users, ports, keys and jump hosts come from the user's ssh
config; the site's ``ssh_config`` key (or ``WXPIPE_SSH_CONFIG``) names another config file (``ssh -F``).
ssh runs with ``BatchMode=yes`` and a connect timeout, so a missing key or an unreachable host fails fast.
Where no ssh config sets ``Ciphers``, AES-GCM is asked for before chacha20-poly1305 (OpenSSH's default first
choice) on CPUs with AES instructions: it costs ssh less CPU per byte (see :func:`cipher_options`).
rsync writes each file under a temporary name and renames it, so a file is never torn. The remote side
needs a POSIX shell, GNU find, xargs and sha256sum (any Linux login node).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import WxpipeError
from .base import MARKER, TEMP_TAG, Advance, Entry, Stat, Store, listed, parse_marker
from .local import LocalStore

SENTINEL = b"WXPIPE-MARKER"
# The remote hasher: Python's hashlib (OpenSSL, SHA-NI where the CPU has it) in threads is several times
# faster than coreutils' sha256sum, which is the fallback. Python 3.6-compatible; prints sha256sum -z lines.
REMOTE_SHA256 = r"""
import hashlib, sys, threading
from concurrent.futures import ThreadPoolExecutor
out, lock = sys.stdout.buffer, threading.Lock()
def one(name):
    h = hashlib.sha256()
    try:
        with open(name, "rb") as f:
            while True:
                block = f.read(1 << 20)
                if not block:
                    break
                h.update(block)
    except OSError:
        return
    with lock:
        out.write(h.hexdigest().encode() + b"  " + name + b"\0")
pool, rest = ThreadPoolExecutor(int(sys.argv[1])), b""
while True:  # names are hashed as they arrive: the caller sends a batch as soon as rsync has written it
    chunk = sys.stdin.buffer.read1(1 << 16)
    if not chunk:
        break
    *names, rest = (rest + chunk).split(b"\0")
    for name in names:
        if name:
            pool.submit(one, name)
pool.shutdown(wait=True)
out.flush()
"""


def control_dir() -> Path | None:
    """The private folder of wxpipe's ssh master sockets, or None when ``WXPIPE_SSH_CONTROL_DIR=none``.

    A copy opens about seven ssh sessions (listing, rsync batches, hasher, marker); multiplexing them
    over one connection saves a key exchange each, and the master lingers 60 s for the next copy to that host.
    """
    env = os.environ.get("WXPIPE_SSH_CONTROL_DIR", "")
    if env == "none":
        return None
    folder = Path(env) if env else Path.home() / ".cache" / "wxpipe" / "ssh"
    if len(str(folder)) > 40:  # a socket path has < 108 bytes; ssh adds "/" + 40 (%C) + a 17-byte temporary suffix
        folder = Path(f"/tmp/wxpipe-ssh-{os.getuid()}")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if folder.stat().st_uid != os.getuid():
            return None  # someone else's folder: no multiplexing rather than sockets in it
        folder.chmod(0o700)
    except OSError:
        return None
    return folder


AES_GCM = ("aes128-gcm@openssh.com", "aes256-gcm@openssh.com")
# OpenSSH's default cipher order (8.x and 9.x): what ``ssh -G`` prints when no config sets ``Ciphers``; another
# default (an older or later OpenSSH) is simply left as it is
OPENSSH_CIPHERS = (
    "chacha20-poly1305@openssh.com,aes128-ctr,aes192-ctr,aes256-ctr,aes128-gcm@openssh.com,aes256-gcm@openssh.com"
)


def _has_aes() -> bool:
    """Whether this CPU has AES instructions (x86 ``aes`` flag, arm64 ``aes`` feature)."""
    try:
        with open("/proc/cpuinfo", "rb") as f:
            head = f.read(1 << 15)
    except OSError:  # no /proc (macOS): its x86-64 and arm64 CPUs all have them
        return True
    return re.search(rb"^(flags|Features)\s*:.*\baes\b", head, re.M) is not None


def cipher_options(ssh: Sequence[str], host: str) -> list[str]:
    """``-o Ciphers=...`` putting AES-GCM first, when ssh would use OpenSSH's default order for ``host``.

    With AES instructions, aes128-gcm moves bytes through ssh for less CPU than chacha20-poly1305 (the
    default's first): 1 GiB cost the ssh client 2.4 against 4.3 CPU s here, and on a login node that CPU is
    the limit. Only the default's order changes (the same ciphers; the server still chooses among them): a
    ``Ciphers`` line in the user's or the system's ssh config (read with ``ssh -G``) is left as it is.
    """
    if not _has_aes():
        return []
    try:
        res = subprocess.run([*ssh, "-G", host], capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return []  # running ssh itself will report what is wrong
    if f"ciphers {OPENSSH_CIPHERS}" not in res.stdout.splitlines():
        return []
    rest = [c for c in OPENSSH_CIPHERS.split(",") if c not in AES_GCM]
    return ["-o", "Ciphers=" + ",".join([*AES_GCM, *rest])]


LIST = "find . -type f -printf '%P\\t%s\\t%T@\\0'"  # path, size, mtime (the stamp) of every file, NUL-ended
MARK = f"printf '{SENTINEL.decode()}\\0'"  # between a script's parts: no listing item or digest line equals it


def hash_script(folder: str, threads: int, python: bool = True, upload: bool = False) -> str:
    """The remote shell script that hashes the NUL-separated paths on its stdin (relative to ``folder``).

    ``upload``: the session that runs beside an upload's rsyncs creates the folder, and once its input ends
    (the last rsync has finished) prints the sentinel and a listing of the folder, which serves as the
    listing after the copy: two ssh sessions fewer, each of which runs the remote login shell.
    """
    n = max(1, threads)
    fast = f"if command -v python3 >/dev/null; then exec python3 -c {shlex.quote(REMOTE_SHA256)} {n}; fi; "
    # fallback: each parallel sha256sum writes its own file (outputs sharing a pipe could interleave)
    slow = (
        f"t=$(mktemp -d) && xargs -0 -r -P {n} -n 256 sh -c"
        """ 'sha256sum -z -- "$@" > "$0/$$"' "$t"; rc=$?; cat "$t"/* 2>/dev/null; rm -rf "$t"; exit $rc"""
    )
    q = shlex.quote(folder)
    hashing = f"({(fast if python else '') + slow})"
    if not upload:
        return f"cd {q} || exit 3; {hashing}"
    return f"mkdir -p {q} && cd {q} || exit 3; {hashing}; rc=$?; {MARK}; {LIST}; exit $rc"


def split_at_sentinel(out: bytes) -> tuple[list[bytes], list[bytes] | None]:
    """A script's NUL-separated output split at :data:`MARK`: the items before, and after (None: no sentinel)."""
    items = out.split(b"\0")
    if SENTINEL not in items:
        return items, None
    cut = items.index(SENTINEL)
    return items[:cut], items[cut + 1 :]


def parse_listing(items: Sequence[bytes]) -> dict[str, Stat]:
    """The content files of :data:`LIST`'s output (split at the NULs), sorted by path."""
    listing: dict[str, Stat] = {}
    for item in items:
        if item:
            name, size, stamp = item.decode().rsplit("\t", 2)
            if listed(name):
                listing[name] = Stat(int(size), stamp)
    return dict(sorted(listing.items()))


def parse_sums(out: bytes) -> dict[str, str]:
    """``sha256sum -z`` output (``<hex>  <name>\\0``...) as path → digest."""
    sums: dict[str, str] = {}
    for line in out.split(b"\0"):
        if line:
            digest, name = line.decode().split("  ", 1)
            sums[name] = digest
    return sums


class SSHStore(Store):
    hashes_in_flight = False

    def __init__(self, url: str, ssh_config: str | Path | None = None, transfers: int | None = None) -> None:
        parts = urlsplit(url)
        if parts.scheme != "ssh" or not parts.hostname or not parts.path.strip("/"):
            raise WxpipeError(f"{url!r} is not an ssh://host/absolute/path URL")
        if parts.netloc.startswith("-"):  # ssh would take it for an option
            raise WxpipeError(f"{url!r}: an ssh host may not begin with '-'")
        self.url = url.rstrip("/")
        self.host = parts.netloc.rsplit(":", 1)[0] if parts.port else parts.netloc
        self.path = parts.path.rstrip("/")
        self.transfers = transfers or 2
        config = ssh_config or os.environ.get("WXPIPE_SSH_CONFIG")
        self.ssh = ["ssh", "-o", "BatchMode=yes", "-o", "ConnectTimeout=10", "-o", "ServerAliveInterval=15"]
        if config:
            self.ssh += ["-F", str(Path(config).expanduser())]
        if parts.port:
            self.ssh += ["-p", str(parts.port)]
        self.ssh += cipher_options(self.ssh, self.host)
        if (sockets := control_dir()) is not None:  # one connection for the ~7 ssh sessions of a copy
            self.ssh += ["-o", "ControlMaster=auto", "-o", f"ControlPath={sockets}/%C", "-o", "ControlPersist=60"]
        self._marker: dict[str, Any] | None = None
        self._marker_known = False
        self._fresh: dict[str, str] = {}  # digests read remotely right after an upload wrote the files
        self._listed: dict[str, Stat] | None = None  # the listing the upload's hasher took after the last rsync

    def _run(self, script: str, what: str, stdin: bytes = b"", ok: Sequence[int] = (0,)) -> bytes:
        cmd = [*self.ssh, self.host, script]
        try:
            res = subprocess.run(cmd, input=stdin, capture_output=True, timeout=3600)
        except FileNotFoundError:
            raise WxpipeError(f"site {self.url}: ssh is not installed here") from None
        except subprocess.TimeoutExpired:
            raise WxpipeError(f"site {self.url}: {what} took over an hour; gave up") from None
        if res.returncode == 255:
            lines = res.stderr.decode(errors="replace").strip().splitlines()
            why = lines[-1] if lines else "no answer"
            raise WxpipeError(f"site {self.url}: cannot reach {self.host} over ssh: {why}")
        if res.returncode not in ok:
            err = res.stderr.decode(errors="replace").strip()[-400:]
            raise WxpipeError(f"site {self.url}: {what} failed on {self.host} (exit {res.returncode}): {err}")
        return res.stdout

    def snapshot(self) -> tuple[dict[str, Stat], dict[str, Any] | None]:
        q = shlex.quote(self.path)
        script = f"cd {q} 2>/dev/null || exit 0; {LIST}; {MARK}; cat {MARKER} 2>/dev/null; exit 0"
        files, marker = split_at_sentinel(self._run(script, "listing"))
        text = b"\0".join(marker or []).decode(errors="replace")
        self._marker, self._marker_known = parse_marker(text, self.url) if text.strip() else None, True
        return parse_listing(files), self._marker

    def listing(self) -> dict[str, Stat]:
        if self._listed is not None:  # taken by the upload's hasher after the last rsync: as fresh as a new one
            listing, self._listed = self._listed, None
            return listing
        return self.snapshot()[0]

    def read_marker(self) -> dict[str, Any] | None:
        return self._marker if self._marker_known else self.snapshot()[1]

    def write_marker(self, data: dict[str, Any]) -> None:
        q, tmp = shlex.quote(f"{self.path}/{MARKER}"), shlex.quote(f"{self.path}/{MARKER}{TEMP_TAG}")
        self._run(f"cat > {tmp} && mv -f {tmp} {q}", "writing the marker", (json.dumps(data, indent=1) + "\n").encode())
        self._marker, self._marker_known = data, True

    def remove_marker(self) -> None:
        self._run(f"rm -f {shlex.quote(f'{self.path}/{MARKER}')}", "removing the marker")
        self._marker, self._marker_known = None, True

    def delete(self, paths: Sequence[str]) -> None:
        """``rm`` the files, then ``rmdir -p`` their folders deepest first (up to the copy's own folder): a
        folder still holding files, or one an earlier ``rmdir -p`` removed, is no error."""
        if not paths:
            return
        q = shlex.quote(self.path)
        self._run(
            f"cd {q} || exit 3; xargs -0 -r rm -f --", "deleting files", b"".join(p.encode() + b"\0" for p in paths)
        )
        folders = sorted({p.rsplit("/", 1)[0] for p in paths if "/" in p}, key=lambda f: -f.count("/"))
        script = f"cd {q} || exit 3; xargs -0 -r rmdir -p --ignore-fail-on-non-empty -- 2>/dev/null; exit 0"
        self._run(script, "removing emptied folders", b"".join(f.encode() + b"\0" for f in folders))

    def hashes(self, paths: Sequence[str], threads: int) -> dict[str, str]:
        fresh = {p: self._fresh.pop(p) for p in paths if p in self._fresh}  # hashed just after this upload wrote it
        rest = [p for p in paths if p not in fresh]
        if not rest:
            return fresh
        names = b"\0".join(p.encode() for p in rest) + b"\0"
        return fresh | parse_sums(self._run(hash_script(self.path, threads), "sha256sum", names, ok=(0, 123)))

    def _rsync(self, args: list[str], groups: list[list[Entry]], advance: Advance, what: str, done: Any = None) -> None:
        """Run one rsync per group, ``transfers`` at a time; ``done(group)`` is called as each one completes."""
        sizes = {e.path: e.size for g in groups for e in g}
        rsh = shlex.join(self.ssh)

        def one(group: list[Entry]) -> None:
            # --ignore-times: we chose what to send, rsync must not skip a same-size, same-mtime corrupt file
            cmd = ["rsync", "-a", "--ignore-times", "--whole-file", "--from0", "--files-from=-", "--out-format=%n"]
            cmd += ["-e", rsh, *args]
            try:
                proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            except FileNotFoundError:
                raise WxpipeError(f"site {self.url}: rsync is not installed here") from None
            assert proc.stdin and proc.stdout and proc.stderr
            proc.stdin.write(b"\0".join(e.path.encode() for e in group) + b"\0")
            proc.stdin.close()
            for line in proc.stdout:
                name = line.decode(errors="replace").rstrip("\n")
                if name in sizes:
                    advance(sizes[name])
            err = proc.stderr.read().decode(errors="replace").strip()
            if proc.wait() != 0:
                raise WxpipeError(f"site {self.url}: {what} with rsync failed (exit {proc.returncode}): {err[-400:]}")
            if done is not None:
                done(group)

        with ThreadPoolExecutor(self.transfers) as pool:
            list(pool.map(one, groups))

    def _groups(self, entries: Sequence[Entry], n: int) -> list[list[Entry]]:
        n = max(1, min(n, len(entries)))
        groups: list[list[Entry]] = [[] for _ in range(n)]
        loads = [0] * n
        for e in sorted(entries, key=lambda e: -e.size):  # balance bytes over the rsync processes
            i = loads.index(min(loads))
            groups[i].append(e)
            loads[i] += e.size + 4096
        return [sorted(g, key=lambda e: e.path) for g in groups if g]

    def _rounds(self, entries: Sequence[Entry], first: float = 0.8) -> list[list[Entry]]:
        """A copy's batches: ``transfers`` rsyncs with the first ~80% of the bytes, then ``transfers`` with the rest.

        The first round's files are hashed at the destination while the second round moves (hashing is several
        times faster than ssh moves bytes), so what is left to hash after the last rsync is the small second
        round: with two equal rounds, half of the copy was hashed after the transfer had ended.
        """
        ordered = sorted(entries, key=lambda e: e.path)
        total, acc, cut = sum(e.size for e in ordered), 0, len(ordered)
        for i, e in enumerate(ordered):
            if acc >= first * total:
                cut = i
                break
            acc += e.size
        return self._groups(ordered[:cut], self.transfers) + self._groups(ordered[cut:], self.transfers)

    def upload(self, root: Path, entries: Sequence[Entry], threads: int, advance: Advance) -> dict[str, str]:
        """rsync in two rounds of batches (:meth:`_rounds`); each batch is hashed remotely (one ssh session for
        all) while later ones move; that session then lists the folder (the listing after the copy).

        The digests are of the bytes on the remote disk, read after rsync renamed them into place; the engine
        compares them with the manifest (they come back through :meth:`hashes`).
        """
        hasher = subprocess.Popen(
            [*self.ssh, self.host, hash_script(self.path, threads, upload=True)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert hasher.stdin and hasher.stdout and hasher.stderr
        lock = threading.Lock()

        def done(group: list[Entry]) -> None:
            with lock:
                assert hasher.stdin
                hasher.stdin.write(b"".join(e.path.encode() + b"\0" for e in group))
                hasher.stdin.flush()

        with ThreadPoolExecutor(2) as reader:
            output, errors = reader.submit(hasher.stdout.read), reader.submit(hasher.stderr.read)
            try:
                groups = self._rounds(entries)
                mkdir = f"mkdir -p {shlex.quote(self.path)} && rsync"  # the folder, in rsync's own session
                args = ["--rsync-path", mkdir, f"{root}/", f"{self.host}:{self.path}/"]
                self._rsync(args, groups, advance, "upload", done)
            finally:
                hasher.stdin.close()
                out = output.result()
                hasher.wait()
        if hasher.returncode not in (0, 123):
            err = errors.result().decode(errors="replace").strip()[-400:]
            raise WxpipeError(f"site {self.url}: sha256 of the sent files failed (exit {hasher.returncode}): {err}")
        sums, listing = split_at_sentinel(out)
        if listing is not None:  # the hasher ran to its end
            self._fresh.update(parse_sums(b"\0".join(sums)))
            self._listed = parse_listing(listing)
        return {}

    def download(self, entries: Sequence[Entry], root: Path, threads: int, advance: Advance) -> dict[str, str]:
        """rsync in two rounds of batches (:meth:`_rounds`); each finished batch is hashed here while later ones
        move. Returns the files whose bytes on disk match the manifest (the engine re-reads any other)."""
        root.mkdir(parents=True, exist_ok=True)
        local, want = LocalStore(root), {e.path: e.sha256 for e in entries}
        with ThreadPoolExecutor(1) as hasher:
            batches: list[Future[dict[str, str]]] = []

            def done(group: list[Entry]) -> None:
                batches.append(hasher.submit(local.hashes, [e.path for e in group], threads))

            self._rsync([f"{self.host}:{self.path}/", f"{root}/"], self._rounds(entries), advance, "download", done)
            got = {p: sha for batch in batches for p, sha in batch.result().items()}
        return {p: sha for p, sha in got.items() if sha == want[p]}
