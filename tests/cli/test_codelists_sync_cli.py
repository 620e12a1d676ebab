"""`ephyto codelists sync --from-hub`, run in-process as the command line runs it, against a
scripted hub client: what it writes, what it leaves alone, and that a failing or hostile
look-up writes nothing at all. (Against our real hub: tests/integration/test_hub_zeep.py.)
"""

from __future__ import annotations

import dataclasses
import re
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from node.cli import codelists_sync
from node.cli.main import main
from node.clock import FixedClock
from node.codelists.hub_lists import HUB_LOOKUPS, HubLookup
from node.directory.codelist_fetch import installed_lists
from node.identity.config import dump_config, load_config
from node.identity.store import init_node
from node.ippc import Condition, GetConditions, GetPesticides, GetTreatmentTypes
from node.transport import hub_client
from node.transport.hub_client import HubUnavailable
from registry.state import RegistryState
from tests.hub_records import HUB, records

TODAY = datetime(2026, 12, 7, 10, 0, tzinfo=UTC)
VERSION = "2026.12.07"
NAMES = sorted(lookup.name for lookup in HUB_LOOKUPS)


class ScriptedHub:
    """The node's hub client as the sync uses it: `call` answers from `answers`."""

    def __init__(self, answers: dict[type, Any]) -> None:
        self.answers = answers
        self.url = HUB

    async def __aenter__(self) -> ScriptedHub:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def call(self, request: Any, response_type: type) -> Any:
        answer = self.answers[type(request)]
        if isinstance(answer, Exception):
            raise answer
        return response_type(entries=tuple(answer))


@pytest.fixture
def answers(monkeypatch: pytest.MonkeyPatch) -> dict[type, Any]:
    """The look-ups' answers the sync gets (change them to script the hub), on TODAY."""
    script: dict[type, Any] = {lookup.request: records(lookup) for lookup in HUB_LOOKUPS}
    monkeypatch.setattr(hub_client, "node_hub_client", lambda *a, **k: ScriptedHub(script))
    monkeypatch.setattr(codelists_sync, "SystemClock", lambda: FixedClock(TODAY))
    return script


def _node(root: Path, *, hub_named: bool = True) -> Path:
    result = init_node(
        root / "nl", country="NL", name="NPPO NL", endpoint=None, now=TODAY - timedelta(hours=1)
    )
    if hub_named:  # the IPPC Hub, as an NPPO registered with it names it in node.toml
        config = load_config(result.config)
        shutil.copy(result.certificate, result.directory / "ippc-hub-ca.pem")
        named = dataclasses.replace(config, hub_url=HUB, hub_ca_file="ippc-hub-ca.pem")
        result.config.write_text(dump_config(named), encoding="utf-8")
    return result.directory


def _sync(node: Path, *more: str) -> int:
    return main(["codelists", "sync", "--from-hub", "--node-dir", str(node), *more])


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.glob("*.json"))}


def _lookup(request: type) -> HubLookup:
    return next(lookup for lookup in HUB_LOOKUPS if lookup.request is request)


def test_a_sync_writes_every_list_then_only_what_changed(
    tmp_path: Path, answers: dict[type, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    node = _node(tmp_path)
    assert _sync(node) == 0
    folder = node / "codelists"
    assert sorted(_files(folder)) == [f"{name}.json" for name in NAMES]
    printed = capsys.readouterr().out
    assert printed.startswith(f"code lists from {HUB}:\n")
    row = next(line.split() for line in printed.splitlines() if "treatment_types" in line)
    assert row[:6] == ["treatment_types", VERSION, "4", "codes", "en,", "es,"]
    assert "`ephyto registry codelists import" in printed
    lists = installed_lists(folder)  # what the node loads at its next start
    assert lists.get("treatment_types").version == VERSION
    assert lists.get("treatment_types").attributes["21"]["parentCode"] == "2"
    assert lists.get("hub_unit_measures").attributes["1"]["symbol"] == "kg"
    assert lists.get("units").version != VERSION  # the UN/ECE list validation uses stays

    before = _files(folder)
    assert _sync(node) == 0
    assert _files(folder) == before
    assert capsys.readouterr().out.count("unchanged") == len(NAMES)

    answers[GetConditions] = [
        *answers[GetConditions], Condition(active=True, code="77", lang="en", name="new"),
    ]  # fmt: skip
    assert _sync(node) == 0
    after = _files(folder)
    assert {n for n in after if after[n] != before[n]} == {"conditions.json"}
    assert installed_lists(folder).get("conditions").version == f"{VERSION}.1"


def test_out_writes_elsewhere_and_an_empty_answer_writes_no_list(
    tmp_path: Path, answers: dict[type, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    node = _node(tmp_path)
    answers[GetPesticides] = []
    assert _sync(node, "--out", str(tmp_path / "for-the-registry")) == 0
    written = _files(tmp_path / "for-the-registry")
    assert "pesticides.json" not in written and len(written) == len(NAMES) - 1
    assert not (node / "codelists").exists()
    assert "pesticides" in capsys.readouterr().out.split("the hub holds none")[0]


@pytest.mark.parametrize(
    ("request_type", "answer", "why"),
    [
        (GetPesticides, HubUnavailable(f"{HUB}: no answer to GetPesticides in time"),
         "GetPesticides: .*no answer to GetPesticides in time; no list written"),
        (GetConditions, [*records(_lookup(GetConditions)), records(_lookup(GetConditions))[1]],
         "GetConditions: entry 11: code '1' in language fr a second time; no list written"),
        (GetTreatmentTypes,
         [dataclasses.replace(r, lang=None) for r in records(_lookup(GetTreatmentTypes))],
         "GetTreatmentTypes: entry 1: no lang"),
        (GetConditions,
         [dataclasses.replace(r, name=None) for r in records(_lookup(GetConditions))],
         r"GetConditions: entry 1 \(1\): no name"),
    ],
)  # fmt: skip
def test_a_failing_or_hostile_look_up_writes_nothing(
    tmp_path: Path,
    answers: dict[type, Any],
    capsys: pytest.CaptureFixture[str],
    request_type: type,
    answer: Any,
    why: str,
) -> None:
    node = _node(tmp_path)
    assert _sync(node) == 0
    before = _files(node / "codelists")
    answers[GetTreatmentTypes] = [
        *answers[GetTreatmentTypes],
        dataclasses.replace(records(_lookup(GetTreatmentTypes))[0], code="3"),
    ]  # a change that would be written, were the answers whole
    answers[request_type] = answer
    capsys.readouterr()
    assert _sync(node) == 2
    error = capsys.readouterr().err
    assert error.startswith("ephyto: error: ") and len(error.splitlines()) == 1
    assert re.search(why, error), error
    assert _files(node / "codelists") == before


def test_a_node_without_a_directory_is_told_how_to_get_one(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    node = _node(tmp_path, hub_named=False)
    registry = RegistryState.init(
        tmp_path / "registry", maintainer="m", threshold=1, now=TODAY, actor="test"
    )
    shutil.copy(registry.root / "maintainers" / "maintainers.json", node / "maintainers.json")
    config = load_config(node / "node.toml")
    configured = dataclasses.replace(
        config, registry_url="http://127.0.0.1:9/directory.json", registry_anchor="maintainers.json"
    )
    (node / "node.toml").write_text(dump_config(configured), encoding="utf-8")
    assert _sync(node) == 2
    error = capsys.readouterr().err
    assert "the node has no directory yet, so no hub: start it (`ephyto node serve`)" in error
    assert not (node / "codelists").exists()
