"""Site configuration and S3 credentials: errors name the key, site or file at fault; keys never leak."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wxpipe.config import Config, SiteConfig, TransferConfig
from wxpipe.errors import WxpipeError
from wxpipe.smk_copies import site_args, site_location
from wxpipe.transfer import open_store, scheme_of
from wxpipe.transfer.credentials import s3_credentials


@pytest.mark.parametrize(
    "url", ["file:results/x", "file:///abs/x", "s3://bucket", "s3://bucket/a/b", "ssh://host/abs/x", "ssh://u@h:2222/x"]
)
def test_site_urls_accepted(url: str) -> None:
    assert SiteConfig(url=url).url == url


REFUSED = {
    "results/x": "site url",
    "http://x/y": "unsupported scheme 'http'",
    "s3:///nobucket": "site url",
    "ssh://host": "site url",
    "ssh:///path": "site url",
    "file:": "no path",
    "file://": "no path",
    "file:///": "no path",
    "file://elsewhere/x": "names no other host",
    "ssh://-oProxyCommand=touch%20x/abs/p": "may not begin with '-'",
    "ssh://-luser@host/abs/p": "may not begin with '-'",
}


@pytest.mark.parametrize("url", list(REFUSED))
def test_site_urls_refused(url: str) -> None:
    with pytest.raises(ValueError, match=REFUSED[url]):
        SiteConfig(url=url)


@pytest.mark.parametrize("url", [u for u in REFUSED if u != "results/x"])
def test_copy_refuses_the_urls_the_config_refuses(url: str) -> None:
    """``wxpipe copy SRC file:`` copied into the working directory; ``file:///`` meant ``/``."""
    with pytest.raises(WxpipeError, match=REFUSED[url].replace("site url", "use file:")):
        open_store(url)


def test_site_options_belong_to_their_scheme() -> None:
    with pytest.raises(ValueError, match="endpoint_url is for s3"):
        SiteConfig(url="ssh://h/x", endpoint_url="http://127.0.0.1:1")
    with pytest.raises(ValueError, match="ssh_config is for ssh"):
        SiteConfig(url="s3://b/x", ssh_config=Path("c"))
    with pytest.raises(ValueError, match="not a file: site"):
        _ = SiteConfig(url="s3://b/x").path


def test_transfer_is_a_dataset_a_layout_or_a_model() -> None:
    for given in ({}, {"dataset": "a", "layout": "b"}, {"model": "m", "dataset": "a"}):
        with pytest.raises(ValueError, match="one of dataset, layout or model"):
            TransferConfig.model_validate({"site": "s", **given})
    assert TransferConfig.model_validate({"site": "s", "model": "m"}).name == "models/m"


def _config(**extra: object) -> dict[str, object]:
    base: dict[str, object] = {
        "datasets": {"d": {"recipe": "r.yaml"}},
        "layouts": {"l": {"dataset": "d", "chunks": {"dates": 2, "values": 4}}},
        "sites": {
            "here": {"url": "file:sites/here"},
            "bucket": {"url": "s3://b/p", "endpoint_url": "http://127.0.0.1:9", "profile": "team"},
        },
        "transfers": [{"dataset": "d", "site": "here"}, {"layout": "l", "site": "bucket"}],
    }
    return {**base, **extra}


def test_config_references_are_checked() -> None:
    cfg = Config.model_validate(_config())
    assert site_location(cfg, "bucket", "l") == "s3://b/p/l.zarr"
    assert site_args(cfg, "bucket") == "--endpoint-url http://127.0.0.1:9 --profile team"
    with pytest.raises(ValueError, match=r"transfers.0.layout: no layout 'nope'"):
        Config.model_validate(_config(transfers=[{"layout": "nope", "site": "here"}]))
    with pytest.raises(ValueError, match="twice"):
        Config.model_validate(_config(transfers=[{"dataset": "d", "site": "here"}] * 2))
    run = {"dataset": "d", "train": {"start": "2020-01-01", "end": "2020-01-02"}}
    run |= {"validation": {"start": "2020-01-03", "end": "2020-01-04"}}
    evaluation = {"period": {"start": "2020-01-05", "end": "2020-01-06"}}
    with pytest.raises(ValueError, match=r"training\.t\.site: 'bucket' is not a file: site"):
        Config.model_validate(_config(training={"t": {**run, "site": "bucket"}}, evaluation=evaluation))
    ok = Config.model_validate(_config(training={"t": {**run, "site": "here"}}, evaluation=evaluation))
    assert ok.training["t"].site == "here"


def test_unknown_scheme_is_refused() -> None:
    with pytest.raises(WxpipeError, match="unsupported scheme 'gs'"):
        scheme_of("gs://bucket/x")


@pytest.fixture
def no_aws(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "credentials"
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(path))
    return path


def test_missing_credentials_name_the_site(no_aws: Path) -> None:
    with pytest.raises(WxpipeError, match=r"site s3://b/p: no S3 credentials"):
        s3_credentials("s3://b/p")
    with pytest.raises(WxpipeError, match=r"site s3://b/p: profile 'team' asked for but .* does not exist"):
        s3_credentials("s3://b/p", "team")


def test_open_credentials_file_is_refused(no_aws: Path) -> None:
    no_aws.write_text("[team]\naws_access_key_id = AKIAEXAMPLE\naws_secret_access_key = topsecret-value\n")
    no_aws.chmod(0o644)
    with pytest.raises(WxpipeError, match=r"readable by group or others \(mode 0644\); run `chmod 600") as err:
        s3_credentials("s3://b/p", "team")
    assert "topsecret" not in str(err.value)
    no_aws.chmod(0o600)
    creds = s3_credentials("s3://b/p", "team")
    assert creds.key_id == "AKIAEXAMPLE" and "topsecret" not in repr(creds)
    with pytest.raises(WxpipeError, match=r"no profile \[other\]"):
        s3_credentials("s3://b/p", "other")


def test_environment_keys_and_metadata_service_off(no_aws: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "envkey-1234")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "envsecret-5678")
    monkeypatch.delenv("AWS_EC2_METADATA_DISABLED", raising=False)
    store = open_store("s3://b/p", endpoint_url="http://127.0.0.1:9")
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
    assert store.url == "s3://b/p" and "envsecret" not in repr(store.__dict__.get("creds"))


def test_ssh_control_sockets_fit_a_unix_socket_path(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from wxpipe.transfer.ssh import control_dir

    monkeypatch.setenv("HOME", str(tmp_path / ("deep" * 20)))  # ~/.cache/wxpipe/ssh would be far too long
    monkeypatch.delenv("WXPIPE_SSH_CONTROL_DIR", raising=False)
    folder = control_dir()
    assert folder is not None and len(str(folder)) + 1 + 40 + 17 < 108
    assert folder.stat().st_mode & 0o077 == 0
    monkeypatch.setenv("WXPIPE_SSH_CONTROL_DIR", "none")
    assert control_dir() is None
