"""`ephyto registry codelists import` of many lists at once (a sync's folder): all or none,
lists kept already passed over, new list names welcome (registry/codelists.py)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node.cli.main import main
from node.codelists.hub_lists import HUB_LOOKUPS
from node.errors import InputError
from node.fileio import write_exclusive
from registry import codelists as registry_codelists
from registry.codelists import import_code_lists, kept_lists
from registry.state import RegistryState
from tests.hub_records import hub_lists

NOW = datetime(2026, 12, 7, tzinfo=UTC)


@pytest.fixture
def state(tmp_path: Path) -> RegistryState:
    return RegistryState.init(tmp_path / "reg", maintainer="m1", threshold=1, now=NOW, actor="test")


def _files() -> list[tuple[str, bytes]]:
    return [(f"{c.name}.json", c.to_json_bytes()) for c in hub_lists()]


def _kept_files(state: RegistryState) -> list[Path]:
    return sorted((state.root / "codelists").glob("*/*.json"))


def test_a_sync_folder_is_kept_whole_with_its_new_list_names(state: RegistryState) -> None:
    before = len(state.audit_entries())
    imported = import_code_lists(state, _files(), NOW, "test")
    assert sorted(k.code_list.name for k in imported.kept) == sorted(
        lookup.name for lookup in HUB_LOOKUPS
    )
    kept = kept_lists(state.root)
    assert kept["hub_unit_measures"].code_list.version == "2026.11.03"
    assert kept["pesticides"].data == dict(_files())["pesticides.json"]
    assert len(state.audit_entries()) == before + len(HUB_LOOKUPS)
    directory, _ = state.publish(NOW, "test")
    assert directory.code_list_versions()["additional_declarations"] == "2026.11.03"

    again = import_code_lists(state, _files(), NOW, "test")  # the same folder once more
    assert again.kept == () and len(again.already) == len(HUB_LOOKUPS)


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        (("broken.json", b"{not json"), "broken.json: code list file is not valid JSON"),
        (("old.json", b'{"list": "conditions", "version": "2020", "source": "s", '
                      b'"codes": {"A": "a"}}'),
         "old.json: code list conditions version 2020 is not newer than version "),
        (("twice.json", hub_lists()[1].to_json_bytes()),
         "twice.json and conditions.json both hold code list conditions"),
    ],
)  # fmt: skip
def test_one_bad_file_keeps_none(state: RegistryState, bad: tuple[str, bytes], why: str) -> None:
    before = len(state.audit_entries())
    with pytest.raises(InputError, match=why):
        import_code_lists(state, [*_files(), bad], NOW, "test")
    assert _kept_files(state) == [] and len(state.audit_entries()) == before


def test_a_write_that_fails_midway_takes_back_what_it_wrote(
    state: RegistryState, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = write_exclusive
    calls: list[Path] = []

    def third_fails(path: Path, data: bytes, mode: int) -> None:
        calls.append(path)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real(path, data, mode)

    monkeypatch.setattr(registry_codelists, "write_exclusive", third_fails)
    with pytest.raises(OSError, match="No space"):
        import_code_lists(state, _files(), NOW, "test")
    assert _kept_files(state) == []


def test_an_older_version_the_registry_imported_is_passed_over(state: RegistryState) -> None:
    """A node's folder holds the version it last fetched, maybe older than the newest."""
    first = hub_lists()[1]
    second = dataclasses.replace(first, version="2026.11.04", codes={**first.codes, "X": "x"})
    import_code_lists(state, [("1.json", first.to_json_bytes())], NOW, "test")
    import_code_lists(state, [("2.json", second.to_json_bytes())], NOW, "test")
    again = import_code_lists(state, [("1.json", first.to_json_bytes())], NOW, "test")
    assert again.kept == () and again.already == (first,)
    changed = dataclasses.replace(first, source="another source")  # same version, other bytes
    with pytest.raises(InputError, match=r"1\.json: .* not newer than version 2026\.11\.04"):
        import_code_lists(state, [("1.json", changed.to_json_bytes())], NOW, "test")


def test_the_command_takes_a_folder_or_files(
    state: RegistryState, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "synced"
    folder.mkdir()
    for name, data in _files():
        (folder / name).write_bytes(data)
    registry = ["--dir", str(state.root)]
    assert (
        main(["registry", "codelists", "import", str(folder / "pesticides.json"), *registry]) == 0
    )
    assert main(["registry", "codelists", "import", str(folder), *registry]) == 0
    printed = capsys.readouterr().out
    assert printed.count("kept code list ") == len(HUB_LOOKUPS)
    assert "code list pesticides version 2026.11.03: kept already, passed over" in printed
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["registry", "codelists", "import", str(empty), *registry]) == 2
    assert "no code list (*.json) in this folder" in capsys.readouterr().err
