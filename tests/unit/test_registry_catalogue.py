"""What the registry publishes besides the NPPOs: code lists (registry/codelists.py) and the
schema versions with their transition dates (registry/schemas.py)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node.codelists.lists import MAX_BYTES, bundled
from node.directory import SchemaVersion
from node.errors import InputError
from registry.codelists import (
    bundled_lists,
    check_import,
    directory_members,
    import_code_list,
    kept_lists,
    published_path,
    write_published,
)
from registry.publish import RegistryError
from registry.schemas import (
    DEFAULT_SCHEMAS,
    SchemaChangeRefused,
    check_coverage,
    retire_schema,
    retire_version,
    schemas,
    set_schema,
    set_version,
)
from registry.state import RegistryState

NOW = datetime(2026, 6, 1, tzinfo=UTC)
JAN27, JUL27 = datetime(2027, 1, 1, tzinfo=UTC), datetime(2027, 7, 1, tzinfo=UTC)
# The bundled countries' version, and two newer ones, whatever edition a release bundles.
BUNDLED = bundled().get("countries").version
NEWER, NEWEST = "2100", "2101"


def _countries(version: str, **extra: str) -> bytes:
    codes = dict(bundled().get("countries").codes) | extra
    doc = {"list": "countries", "version": version, "source": "test", "codes": codes}
    return json.dumps(doc).encode()


@pytest.fixture
def state(tmp_path: Path) -> RegistryState:
    return RegistryState.init(tmp_path / "reg", maintainer="m1", threshold=1, now=NOW, actor="test")


# --- code lists ---------------------------------------------------------------------------


def test_the_registry_starts_with_the_bundled_lists_byte_for_byte() -> None:
    kept = bundled_lists()
    assert {n: k.code_list.version for n, k in kept.items()} == bundled().versions()
    assert kept["countries"].origin == "bundled"
    assert kept["countries"].sha256 == hashlib.sha256(kept["countries"].data).hexdigest()


@pytest.mark.parametrize(
    ("data", "why"),
    [
        (_countries(BUNDLED), f"not newer than version {BUNDLED}"),  # the bundled version
        (_countries("2023"), f"not newer than version {BUNDLED}"),
        (_countries(f"{BUNDLED}.0"), "not newer"),  # the same release written otherwise
        (b"{not json", "not valid JSON"),
        (b'{"list": "countries", "version": "x", "source": "s", "codes": {"A": "a"}}', "version"),
        (b"x" * (MAX_BYTES + 1), "larger than"),
    ],
)
def test_an_import_that_is_not_a_newer_list_is_refused(data: bytes, why: str) -> None:
    with pytest.raises(InputError, match=why):
        check_import(data, bundled_lists())


def test_import_keeps_the_exact_bytes_and_audits_it(state: RegistryState) -> None:
    data = _countries(NEWER, XK="Kosovo")
    kept = import_code_list(state, data, NOW, "test")
    assert kept.code_list.version == NEWER and kept.data == data
    assert (state.root / "codelists" / "countries" / f"{NEWER}.json").read_bytes() == data
    assert kept_lists(state.root)["countries"].data == data
    entry = state.audit_entries()[-1]
    assert entry["action"] == "codelists-import"
    assert entry["details"] | {"sha256": "-"} == {
        "name": "countries", "version": NEWER, "previous": BUNDLED,
        "codes": len(bundled().get("countries")) + 1, "sha256": "-", "length": len(data),
    }  # fmt: skip
    assert entry["details"]["sha256"] == hashlib.sha256(data).hexdigest()
    before = len(state.audit_entries())
    with pytest.raises(InputError, match=f"not newer than version {NEWER}"):
        import_code_list(state, _countries(NEWER, XK="Kosovo"), NOW, "test")
    assert len(state.audit_entries()) == before  # the refusal wrote nothing


def test_a_hand_edited_kept_list_is_never_published(state: RegistryState) -> None:
    import_code_list(state, _countries(NEWER), NOW, "test")
    (state.root / "codelists" / "countries" / f"{NEWER}.json").write_bytes(_countries(NEWEST))
    with pytest.raises(RegistryError, match=f"holds countries version {NEWEST}"):
        kept_lists(state.root)


def test_published_files_are_written_once_and_never_changed(state: RegistryState) -> None:
    _, files = directory_members(state.root)
    write_published(state.root, files)
    write_published(state.root, files)  # identical bytes: a publish run again
    path = published_path(state.root, "countries", BUNDLED)
    assert path is not None and path.read_bytes() == bundled_lists()["countries"].data
    path.write_bytes(b"changed")
    with pytest.raises(RegistryError, match="published with other content"):
        write_published(state.root, files)


def test_a_list_imported_after_the_directory_was_built_is_caught(state: RegistryState) -> None:
    _, files = directory_members(state.root)
    import_code_list(state, _countries(NEWER), NOW, "test")
    with pytest.raises(RegistryError, match="changed since this directory was built"):
        write_published(state.root, files)


@pytest.mark.parametrize(
    ("name", "version"),
    [("..", "2024"), ("countries", ".."), ("Countries", "2024"), ("countries", "2024/x"),
     ("countries", "2024."), ("a/b", "1"), ("countries", "")],
)  # fmt: skip
def test_published_path_refuses_anything_but_a_name_and_a_version(name: str, version: str) -> None:
    assert published_path(Path("/r"), name, version) is None


def test_publish_names_the_kept_lists_and_the_schemas(state: RegistryState) -> None:
    import_code_list(state, _countries(NEWER), NOW, "test")
    directory, _ = state.publish(NOW, "test")
    assert directory.code_list_versions()["countries"] == NEWER
    files = {f.name: f for f in directory.code_list_files}
    assert set(files) == set(directory.code_list_versions())
    assert files["countries"].sha256 == hashlib.sha256(_countries(NEWER)).hexdigest()
    assert directory.schemas == DEFAULT_SCHEMAS
    served = state.root / "published" / "codelists" / "countries" / f"{NEWER}.json"
    assert served.read_bytes() == _countries(NEWER)


# --- schema versions ----------------------------------------------------------------------


def test_a_new_registry_has_d17a_from_a_fixed_past_date(state: RegistryState) -> None:
    assert schemas(state) == DEFAULT_SCHEMAS
    assert DEFAULT_SCHEMAS[0].version == "D17A" and DEFAULT_SCHEMAS[0].valid_until is None
    assert DEFAULT_SCHEMAS[0].in_force(NOW)


def test_a_transition_announced_and_then_the_old_version_retired(state: RegistryState) -> None:
    set_schema(state, "D20B", JAN27, None, NOW, "test")
    change = retire_schema(state, "D17A", JUL27, NOW, "test")  # read back from the file
    assert (
        schemas(state)
        == change
        == (
            SchemaVersion("D17A", DEFAULT_SCHEMAS[0].valid_from, JUL27),
            SchemaVersion("D20B", JAN27, None),
        )
    )
    actions = [e["action"] for e in state.audit_entries()]
    assert actions[-2:] == ["schemas-set", "schemas-retire"]
    directory, _ = state.publish(NOW, "test")
    assert directory.schemas == change


def test_a_tampered_schemas_file_is_refused(state: RegistryState) -> None:
    set_schema(state, "D20B", JAN27, None, NOW, "test")
    path = state.root / "schemas.json"
    path.write_bytes(path.read_bytes().replace(b"D20B", b"D21A"))
    with pytest.raises(RegistryError):
        schemas(state)


@pytest.mark.parametrize(
    ("version", "start", "end", "why"),
    [
        ("D2OB", JAN27, None, "not a UN/CEFACT SPSCertificate version"),
        ("20B", JAN27, None, "not a UN/CEFACT"),
        ("D20B", JUL27, JAN27, "is not after --from"),
        ("D20B", JAN27, JAN27, "is not after --from"),
        # D17A itself given an end: nothing would be left in force after it.
        ("D17A", DEFAULT_SCHEMAS[0].valid_from, JUL27, "no schema version would be in force"),
    ],
)
def test_nonsense_is_refused(version: str, start: datetime, end: datetime | None, why: str) -> None:
    with pytest.raises(SchemaChangeRefused, match=why):
        set_version(DEFAULT_SCHEMAS, version, start, end, NOW)


def test_retiring_the_last_version_in_force_is_refused() -> None:
    with pytest.raises(SchemaChangeRefused, match="no schema version would be in force from"):
        retire_version(DEFAULT_SCHEMAS, "D17A", JAN27, NOW)
    with pytest.raises(SchemaChangeRefused, match="not a listed schema version"):
        retire_version(DEFAULT_SCHEMAS, "D20B", JAN27, NOW)


def test_a_gap_between_two_versions_is_refused() -> None:
    announced = set_version(DEFAULT_SCHEMAS, "D20B", JUL27, None, NOW)
    with pytest.raises(SchemaChangeRefused, match="from 2027-01-01T00:00:00Z"):
        retire_version(announced, "D17A", JAN27, NOW)  # D20B only from July
    assert retire_version(announced, "D17A", JUL27, NOW)[0].valid_until == JUL27  # no gap


def test_coverage_is_judged_from_now_only() -> None:
    past = (SchemaVersion("D16B", datetime(2019, 1, 1, tzinfo=UTC), NOW), *DEFAULT_SCHEMAS)
    check_coverage(past, NOW)  # a version that ended before now changes nothing
    # A gap that lies before now is history; the same gap still ahead is refused.
    gap = (
        SchemaVersion("D16B", datetime(2019, 1, 1, tzinfo=UTC), datetime(2019, 6, 1, tzinfo=UTC)),
        SchemaVersion("D17A", datetime(2020, 1, 1, tzinfo=UTC), None),
    )
    check_coverage(gap, NOW)
    with pytest.raises(SchemaChangeRefused, match="in force from 2019-06-01T00:00:00Z"):
        check_coverage(gap, datetime(2019, 3, 1, tzinfo=UTC))
