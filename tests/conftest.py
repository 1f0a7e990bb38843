"""Shared test set-up: real servers on 127.0.0.1 (S3 and sshd), started and stopped by the tests.

The servers are scripts in tests/services/ (usable by hand too). A missing sshd or rsync fails the tests
that need them, with the command that installs them: CI installs them, so a skip would hide a regression.
"""

import importlib.util
import os
import secrets
import socket
import sqlite3  # noqa: F401  # the system SQLite before ecCodes loads (see workflow/wxpipe/__init__.py)
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

SERVICES = Path(__file__).resolve().parent / "services"
UNIT_CONFTEST = Path(__file__).resolve().parent / "unit" / "conftest.py"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    key: str
    secret: str
    bucket: str
    data: Path  # where the server keeps the objects (rclone serve s3 stores plain files)

    def env(self) -> dict[str, str]:
        """The environment of a process that talks to this server (keys only ever travel this way)."""
        return {
            **os.environ,
            "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "AWS_ACCESS_KEY_ID": self.key,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_EC2_METADATA_DISABLED": "true",
        }


@dataclass(frozen=True)
class SSHServer:
    host: str
    config: Path


def _service(args: list[str], env: dict[str, str], what: str) -> None:
    res = subprocess.run([str(SERVICES / args[0]), *args[1:]], env=env, capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        pytest.fail(f"could not start {what}: {res.stdout}{res.stderr}")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    folder = tmp_path_factory.mktemp("s3")
    server = S3Server(
        f"http://127.0.0.1:{free_port()}",
        f"wxpipe-test-key-{secrets.token_hex(4)}",
        f"wxpipe-test-secret-{secrets.token_hex(12)}",
        "wxpipe",
        folder / "data",
    )
    port = server.endpoint.rsplit(":", 1)[1]
    os.environ["AWS_EC2_METADATA_DISABLED"] = "true"
    _service(["s3.sh", "start", "rclone", str(folder), port], server.env(), "the S3 server (rclone serve s3)")
    yield server
    subprocess.run([str(SERVICES / "s3.sh"), "stop", "rclone", str(folder), port], check=False)


@pytest.fixture(scope="session")
def ssh_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SSHServer]:
    folder = tmp_path_factory.mktemp("sshd")
    port = str(free_port())
    _service(["sshd.sh", "start", str(folder), port], dict(os.environ), "sshd (apt-get install openssh-server rsync)")
    yield SSHServer("wxpipe-test", folder / "ssh_config")
    subprocess.run([str(SERVICES / "sshd.sh"), "stop", str(folder), port], check=False)


@dataclass(frozen=True)
class MlflowServer:
    url: str
    home: Path  # its sqlite store, artefacts and log
    process: subprocess.Popen[bytes]

    def ready(self) -> str:
        """Its URL, once it answers (it starts while the test prepares the run)."""
        import urllib.request

        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"mlflow server exited with {self.process.returncode}:\n{self.log}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1):
                    return self.url
            except OSError:
                time.sleep(0.2)
        pytest.fail(f"mlflow server did not answer at {self.url} within 60 s:\n{self.log}")

    @property
    def log(self) -> str:
        return (self.home / "server.log").read_text()


@pytest.fixture(scope="module")
def mlflow_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
    """``mlflow server`` on 127.0.0.1 with a sqlite store and proxied artefacts in a temporary folder."""
    home = tmp_path_factory.mktemp("mlflow-server")
    port = free_port()
    command = [str(BIN / "mlflow"), "server", "--host", "127.0.0.1", "--port", str(port)]
    command += ["--backend-store-uri", f"sqlite:///{home}/mlflow.db", "--serve-artifacts"]
    command += ["--artifacts-destination", str(home / "artifacts"), "--workers", "1"]
    with open(home / "server.log", "w") as out:
        proc = subprocess.Popen(command, cwd=home, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield MlflowServer(f"http://127.0.0.1:{port}", home, proc)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.fixture(scope="session")
def unit_helpers() -> ModuleType:
    """The unit tests' tiny dataset and configs (tests/unit/conftest.py), for the integration tests that train
    in-process; loaded by path, whatever pytest's import mode."""
    spec = importlib.util.spec_from_file_location("wxpipe_unit_helpers", UNIT_CONFTEST)
    assert spec is not None and spec.loader is not None
    module = sys.modules.setdefault(spec.name, importlib.util.module_from_spec(spec))
    spec.loader.exec_module(module)
    return module
