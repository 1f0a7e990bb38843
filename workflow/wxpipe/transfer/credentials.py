"""S3 credentials from where AWS tools keep them, never from the workflow config.

Order: the site's ``profile`` in the shared credentials file; else ``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY`` (and ``AWS_SESSION_TOKEN``); else ``AWS_PROFILE`` (or ``default``) in the file.
The file is ``AWS_SHARED_CREDENTIALS_FILE`` or ``~/.aws/credentials`` and must not be readable by group or
others. Nothing here ever logs or returns a key in a message.
"""

from __future__ import annotations

import configparser
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import WxpipeError


@dataclass(frozen=True)
class Credentials:
    key_id: str
    secret: str = field(repr=False)
    token: str | None = field(default=None, repr=False)

    def scrub(self, text: str) -> str:
        """``text`` with every credential replaced, for error messages built from server answers."""
        for s in (self.key_id, self.secret, self.token):
            if s and len(s) >= 4:
                text = text.replace(s, "***")
        return text


def credentials_file() -> Path:
    return Path(os.environ.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials")


def _from_file(path: Path, profile: str, site: str) -> Credentials:
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise WxpipeError(f"site {site}: profile {profile!r} asked for but {path} does not exist") from None
    if mode & 0o077:
        raise WxpipeError(
            f"site {site}: credentials file {path} is readable by group or others (mode {stat.S_IMODE(mode):04o});"
            f" run `chmod 600 {path}`"
        )
    parser = configparser.RawConfigParser()
    try:
        parser.read(path)
    except configparser.Error as exc:
        raise WxpipeError(f"site {site}: credentials file {path} is not valid INI ({type(exc).__name__})") from None
    if not parser.has_section(profile):
        raise WxpipeError(f"site {site}: no profile [{profile}] in {path}")
    sec = parser[profile]
    key, secret = sec.get("aws_access_key_id"), sec.get("aws_secret_access_key")
    if not key or not secret:
        raise WxpipeError(f"site {site}: profile [{profile}] in {path} lacks aws_access_key_id/aws_secret_access_key")
    return Credentials(key.strip(), secret.strip(), (sec.get("aws_session_token") or "").strip() or None)


def s3_credentials(site: str, profile: str | None = None) -> Credentials:
    """The keys for an S3 site, or an error naming the site and where keys were looked for."""
    if profile:
        return _from_file(credentials_file(), profile, site)
    key, secret = os.environ.get("AWS_ACCESS_KEY_ID"), os.environ.get("AWS_SECRET_ACCESS_KEY")
    if key and secret:
        return Credentials(key, secret, os.environ.get("AWS_SESSION_TOKEN") or None)
    path = credentials_file()
    if path.exists():
        return _from_file(path, os.environ.get("AWS_PROFILE") or "default", site)
    raise WxpipeError(
        f"site {site}: no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write {path}"
        " (mode 600) and name its profile with the site's `profile:` key"
    )
