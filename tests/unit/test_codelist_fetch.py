"""Which code lists a node fetches from the registry and how it checks one (pure parts of
node/directory/codelist_fetch.py)."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from node.codelists.lists import CodeList, CodeLists, bundled
from node.directory import CodeListFile, Directory, MaintainerSet
from node.directory.codelist_fetch import (
    CodeListRefused,
    WantedList,
    check_fetched,
    code_list_url,
    lists_to_fetch,
)

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def _file(name: str, data: bytes) -> CodeListFile:
    return CodeListFile(name, hashlib.sha256(data).hexdigest(), len(data))


def _directory(lists: dict[str, str], files: tuple[CodeListFile, ...]) -> Directory:
    return Directory(
        version=1,
        issued=T0,
        expires=T0,
        maintainers=MaintainerSet(1, ()),
        nppos=(),
        hub=None,
        code_lists=tuple(sorted(lists.items())),
        code_list_files=files,
    )


def _countries(version: str, name: str = "countries") -> bytes:
    doc = {"list": name, "version": version, "source": "test", "codes": {"NL": "Netherlands"}}
    return json.dumps(doc).encode()


INSTALLED = CodeLists.of([CodeList("countries", "2024", "s", {"NL": "Netherlands"})])


def test_only_newer_versions_with_a_digest_are_fetched() -> None:
    files = (
        _file("countries", _countries("2025")),
        _file("units", b"u" * 10),
        _file("newlist", b"n" * 5),
    )
    directory = _directory({"countries": "2025", "units": "17", "newlist": "1"}, files)
    installed = INSTALLED.updated_with(CodeList("units", "17", "s", {"KGM": "kilogram"}))
    wanted = lists_to_fetch(directory, installed)
    assert [(w.name, w.version, w.installed) for w in wanted] == [
        ("countries", "2025", "2024"),
        ("newlist", "1", None),  # a list the node has not had yet
    ]
    assert wanted[0].length == len(_countries("2025"))


@pytest.mark.parametrize("version", ["2024", "2024.0", "2023", "2023.9"])
def test_an_equal_or_older_version_is_never_fetched(version: str) -> None:
    directory = _directory({"countries": version}, (_file("countries", b"x"),))
    assert lists_to_fetch(directory, INSTALLED) == []


def test_a_list_without_a_digest_is_not_fetched() -> None:
    # An older registry names versions only: nothing to check a file against.
    assert lists_to_fetch(_directory({"countries": "2025"}, ()), INSTALLED) == []


def test_the_bundled_lists_want_nothing_from_a_directory_that_names_them() -> None:
    versions = bundled().versions()
    files = tuple(_file(n, b"x") for n in sorted(versions))
    assert lists_to_fetch(_directory(versions, files), bundled()) == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://registry.example/directory.json", "https://registry.example/codelists/c/1.json"),
        ("http://127.0.0.1:8400/directory.json", "http://127.0.0.1:8400/codelists/c/1.json"),
        ("https://mirror.example/ephyto/directory.json?x=1",
         "https://mirror.example/ephyto/codelists/c/1.json"),
    ],
)  # fmt: skip
def test_the_file_is_next_to_the_directory(url: str, expected: str) -> None:
    assert code_list_url(url, "c", "1") == expected


def _wanted(data: bytes, name: str = "countries", version: str = "2025") -> WantedList:
    return WantedList(name, version, hashlib.sha256(data).hexdigest(), len(data), "2024")


def test_the_file_the_directory_names_is_accepted() -> None:
    data = _countries("2025")
    assert check_fetched(_wanted(data), data).version == "2025"


def test_a_tampered_file_is_refused() -> None:
    data = _countries("2025")
    tampered = data.replace(b"Netherlands", b"Nederlands!")
    assert len(tampered) == len(data)
    with pytest.raises(CodeListRefused, match=r"SHA-256 [0-9a-f]{64} is not the"):
        check_fetched(_wanted(data), tampered)


def test_a_file_of_another_length_is_refused() -> None:
    data = _countries("2025")
    with pytest.raises(CodeListRefused, match="bytes, the signed directory says"):
        check_fetched(_wanted(data), data + b" ")


def test_a_malformed_file_is_refused_even_with_the_right_digest() -> None:
    data = b'{"list": "countries"}'
    with pytest.raises(CodeListRefused, match="lacks key"):
        check_fetched(_wanted(data), data)


@pytest.mark.parametrize(("name", "version"), [("units", "2025"), ("countries", "2026")])
def test_a_file_holding_another_list_or_version_is_refused(name: str, version: str) -> None:
    data = _countries("2025")
    with pytest.raises(CodeListRefused, match="the file holds countries version 2025"):
        check_fetched(_wanted(data, name, version), data)
