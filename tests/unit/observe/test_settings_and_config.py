"""The observability settings: `[metrics] listen` and `[log] format` in node.toml and
hub.toml, parsed strictly (hostile values refused, naming the file and the key)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from node.errors import ConfigError, InputError
from node.hub.config import dump_hub_config, load_hub_config, new_hub_config
from node.identity.config import dump_config, new_config, parse_config
from node.observe.settings import ListenAddress, parse_listen, parse_log_format


@pytest.mark.parametrize(
    ("text", "host", "port"),
    [
        ("127.0.0.1:9464", "127.0.0.1", 9464),
        ("localhost:0", "localhost", 0),
        ("[::1]:9464", "::1", 9464),
        ("0.0.0.0:65535", "0.0.0.0", 65535),
    ],
)
def test_listen_addresses_parse_and_print_back(text: str, host: str, port: int) -> None:
    address = parse_listen(text)
    assert address == ListenAddress(host, port)
    assert parse_listen(str(address)) == address


@pytest.mark.parametrize(
    "text",
    [
        "", ":", "9464", "127.0.0.1", "127.0.0.1:", ":9464", "127.0.0.1:65536",
        "127.0.0.1:-1", "127.0.0.1:+1", "127.0.0.1: 1", "127.0.0.1:1x", "127.0.0.1:\u0661",
        "::1:9464", "[::1:9464", "[]:1", "a b:1", "host/x:1", "user@host:1", "h\x00:1",
        "x" * 400 + ":1",
    ],
)  # fmt: skip
def test_hostile_listen_addresses_are_refused_in_one_line(text: str) -> None:
    with pytest.raises(InputError) as refused:
        parse_listen(text)
    assert "\n" not in str(refused.value)


def test_log_formats() -> None:
    assert parse_log_format("json") == "json"
    assert parse_log_format("text") == "text"
    for bad in ("JSON", "", "xml", "json "):
        with pytest.raises(InputError, match="is not one of text, json"):
            parse_log_format(bad)


def _node_toml(tmp_path: Path) -> str:
    config = new_config(
        tmp_path, country="NL", name="NVWA", endpoint="https://127.0.0.1:9443", api_token="t" * 43
    )
    return dump_config(config)


def test_node_config_round_trips_metrics_and_log(tmp_path: Path) -> None:
    config = parse_config(_node_toml(tmp_path), source="node.toml", directory=tmp_path)
    assert config.metrics_listen is None and config.log_format == "text"  # the defaults
    changed = dataclasses.replace(
        config, metrics_listen=ListenAddress("127.0.0.1", 9464), log_format="json"
    )
    text = dump_config(changed)
    assert '[metrics]\nlisten = "127.0.0.1:9464"' in text
    assert '[log]\nformat = "json"' in text
    assert parse_config(text, source="node.toml", directory=tmp_path) == changed


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("[metrics]\nlisten = 9464\n", "metrics.listen: expected a string"),
        ('[metrics]\nlisten = "nowhere"\n', "metrics.listen: 'nowhere' is not HOST:PORT"),
        ('[metrics]\nlisten = "127.0.0.1:70000"\n', "metrics.listen: '127.0.0.1:70000': port"),
        ('[metrics]\nlisten = "127.0.0.1:1"\nport = 2\n', "metrics.port: unknown key"),
        ('[log]\nformat = "yaml"\n', "log.format: 'yaml' is not one of text, json"),
        ('[log]\nformat = ["json"]\n', "log.format: expected a string"),
        ("metrics = 1\n", "metrics: expected a table"),
    ],
)
def test_node_config_refuses_bad_metrics_and_log(tmp_path: Path, table: str, message: str) -> None:
    text = (
        _node_toml(tmp_path) + "\n" + table
        if table.startswith("[")
        else table + _node_toml(tmp_path)
    )
    with pytest.raises(ConfigError) as refused:
        parse_config(text, source="/n/node.toml", directory=tmp_path)
    assert str(refused.value).startswith("/n/node.toml: ")
    assert message in str(refused.value)


def test_hub_config_takes_metrics_and_log(tmp_path: Path) -> None:
    config = new_hub_config(tmp_path, name="Hub", endpoint="https://127.0.0.1:9500")
    path = tmp_path / "hub.toml"
    path.write_text(dump_hub_config(config))
    assert load_hub_config(path).metrics_listen is None
    changed = dataclasses.replace(config, metrics_listen=ListenAddress("::1", 0), log_format="json")
    path.write_text(dump_hub_config(changed))
    assert load_hub_config(path) == changed
    path.write_text(dump_hub_config(config) + '\n[metrics]\nlisten = "[::1]"\n')
    with pytest.raises(ConfigError, match=r"hub.toml: metrics.listen: '\[::1\]' is not HOST:PORT"):
        load_hub_config(path)
