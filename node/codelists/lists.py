"""Versioned code lists: the bundled data, its JSON form and the update path.

A code list maps codes to labels and carries the version and source of the
standard it comes from. The node ships one JSON file per list (``data/``); an
operator brings in a newer official list either as such a JSON file dropped in
an override directory or by importing a UN/CEFACT code list XSD.

Version rule: a version is a sequence of non-negative integers separated by
``.`` or ``-`` (``"2024"``, ``"2024.1"``, ``"2024-06-30"``, ``"17"``). Versions
compare as integer tuples with trailing zeros ignored, so ``"2024"`` equals
``"2024.0"`` and ``"2024.1"`` is newer than ``"2024"``. A list is only ever
replaced by a strictly newer version, so an update can never roll a list back.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from importlib import resources
from types import MappingProxyType
from typing import Final

from lxml import etree

from node import hostile_xml
from node.codelists.locations import LocationSource, bundled_locations
from node.errors import ConfigError, InputError

# Official lists are a few hundred kB at most; the cap keeps a hostile or
# mistaken file from exhausting memory before it is even parsed.
MAX_BYTES: Final = 8 * 1024 * 1024
# Codes in UN/CEFACT, ISO and IPPC lists are short; labels may be sentences.
MAX_CODE_LEN: Final = 64
MAX_LABEL_LEN: Final = 1024

_NAME_RE: Final = re.compile(r"[a-z][a-z0-9_]{0,63}")
_VERSION_RE: Final = re.compile(r"[0-9]{1,9}(?:[.-][0-9]{1,9}){0,7}")
_KEYS: Final = frozenset({"list", "version", "source", "codes"})
# Optional keys, absent when empty so that a plain list stays a plain file.
_OPTIONAL_KEYS: Final = frozenset(
    {"notice", "placeholders", "deprecated", "deleted", "attributes", "translations"}
)
_LANG_RE: Final = re.compile(r"[a-z]{2,3}(?:-[A-Za-z0-9]{1,8})?")
# Attribute names: a hub record's field names (parentCode, symbol, ...) or ours (function).
_ATTRIBUTE_RE: Final = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,63}")

_XSD: Final = "http://www.w3.org/2001/XMLSchema"
_CCTS_NAME: Final = "Name"  # ccts:Name, whatever the CCTS namespace version


def version_key(version: str) -> tuple[int, ...]:
    """The comparable form of a version (see the module docstring for the rule)."""
    if not _VERSION_RE.fullmatch(version):
        raise InputError(f"code list version {version!r} is not numbers separated by '.' or '-'")
    parts = [int(p) for p in re.split(r"[.-]", version)]
    # Trailing zeros carry no information: "2024" and "2024.0" are the same release.
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


@dataclass(frozen=True, slots=True)
class Retired:
    """A code an edition of its list deleted: its last label, and which edition deleted it."""

    label: str
    edition: str


@dataclass(frozen=True, slots=True)
class CodeList:
    """One code list: code -> label, with the version and source of the standard.

    Beyond code -> label, a list may carry (each optional, empty by default):

    - ``notice``: the licence or copyright notice its source requires us to keep with it;
    - ``placeholders``: codes that are not from any real list (ours, kept until the
      real one is imported), so that whoever relies on them is told;
    - ``deprecated``: code -> the edition that deprecated it (still in ``codes``: still
      valid, discouraged);
    - ``deleted``: code -> Retired, codes an edition deleted (not in ``codes``: a
      certificate that uses one is told which edition deleted it, not "unknown code");
    - ``attributes``: code -> {field: value}, what a record holds beyond its label (a
      hub record's ``parentCode``, ``level``, ``symbol``, ``type``...; a location's
      ``function``);
    - ``translations``: language -> {code: label} for labels in other languages.
    """

    name: str
    version: str
    source: str
    codes: Mapping[str, str] = field(repr=False)
    notice: str = field(default="", repr=False)
    placeholders: frozenset[str] = field(default=frozenset(), repr=False)
    deprecated: Mapping[str, str] = field(default_factory=dict, repr=False)
    deleted: Mapping[str, Retired] = field(default_factory=dict, repr=False)
    attributes: Mapping[str, Mapping[str, str]] = field(default_factory=dict, repr=False)
    translations: Mapping[str, Mapping[str, str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME_RE.fullmatch(self.name):
            raise InputError(f"code list name {self.name!r} must match [a-z][a-z0-9_]*")
        if not isinstance(self.version, str):
            raise InputError(f"code list {self.name}: version must be a string")
        version_key(self.version)  # refuse an incomparable version now, not at update time
        if not isinstance(self.source, str) or not self.source.strip():
            raise InputError(f"code list {self.name}: source must be a non-empty string")
        _check_codes(self.name, self.codes)
        # Read-only copies: a frozen list must not change behind the caller's back.
        object.__setattr__(self, "codes", MappingProxyType(dict(self.codes)))
        _check_extras(self)
        object.__setattr__(self, "placeholders", frozenset(self.placeholders))
        object.__setattr__(self, "deprecated", MappingProxyType(dict(self.deprecated)))
        object.__setattr__(self, "deleted", MappingProxyType(dict(self.deleted)))
        object.__setattr__(
            self,
            "attributes",
            MappingProxyType({c: MappingProxyType(dict(a)) for c, a in self.attributes.items()}),
        )
        object.__setattr__(
            self,
            "translations",
            MappingProxyType(
                {lang: MappingProxyType(dict(t)) for lang, t in self.translations.items()}
            ),
        )

    @property
    def is_placeholder(self) -> bool:
        """True when every code of the list is a placeholder (no real list behind it)."""
        return self.placeholders >= self.codes.keys()

    def __contains__(self, code: object) -> bool:
        return code in self.codes

    def __len__(self) -> int:
        return len(self.codes)

    def __iter__(self) -> Iterator[str]:
        return iter(self.codes)

    def label(self, code: str, lang: str | None = None) -> str | None:
        """The label of a code (in `lang` where the list has it), or None when unknown."""
        if lang is not None:
            translated = self.translations.get(lang, {}).get(code)
            if translated:
                return translated
        return self.codes.get(code)

    def is_newer_than(self, other: CodeList) -> bool:
        """True when this list's version is strictly newer than the other's."""
        return version_key(self.version) > version_key(other.version)

    @classmethod
    def from_json_bytes(cls, data: bytes) -> CodeList:
        """Parse ``{"list", "version", "source", "codes"}``; InputError when malformed."""
        if len(data) > MAX_BYTES:
            raise InputError(f"code list file is larger than {MAX_BYTES} bytes")
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"code list file is not UTF-8: {exc}") from None
        try:
            doc = json.loads(
                text,
                object_pairs_hook=_no_duplicate_keys,
                parse_constant=_no_constant,
            )
        except (ValueError, RecursionError) as exc:
            # ValueError covers JSONDecodeError and our own hooks; RecursionError
            # is what deeply nested hostile input raises.
            raise InputError(f"code list file is not valid JSON: {exc}") from None
        if not isinstance(doc, dict):
            raise InputError("code list file must be a JSON object")
        missing = sorted(_KEYS - doc.keys())
        if missing:
            raise InputError(f"code list file lacks key(s): {', '.join(missing)}")
        unknown = sorted(doc.keys() - _KEYS - _OPTIONAL_KEYS)
        if unknown:
            raise InputError(f"code list file has unknown key(s): {', '.join(unknown)}")
        for key in ("list", "version", "source"):
            if not isinstance(doc[key], str):
                raise InputError(f"code list file: {key!r} must be a string")
        if not isinstance(doc["codes"], dict):
            raise InputError("code list file: 'codes' must be an object of code -> label")
        notice = doc.get("notice", "")
        if not isinstance(notice, str):
            raise InputError("code list file: 'notice' must be a string")
        placeholders = doc.get("placeholders", [])
        if not isinstance(placeholders, list) or not all(isinstance(c, str) for c in placeholders):
            raise InputError("code list file: 'placeholders' must be a list of codes")
        deprecated = _string_map(doc, "deprecated")
        deleted_doc = doc.get("deleted", {})
        if not isinstance(deleted_doc, dict):
            raise InputError("code list file: 'deleted' must be an object of code -> record")
        deleted: dict[str, Retired] = {}
        for code, record in deleted_doc.items():
            if (
                not isinstance(record, dict)
                or set(record) != {"label", "edition"}
                or not all(isinstance(v, str) for v in record.values())
            ):
                raise InputError(
                    f"code list file: deleted code {code[:80]!r} must be "
                    '{"label": "...", "edition": "..."}'
                )
            deleted[code] = Retired(record["label"], record["edition"])
        attributes = _nested_string_map(doc, "attributes")
        translations = _nested_string_map(doc, "translations")
        return cls(
            doc["list"],
            doc["version"],
            doc["source"],
            doc["codes"],
            notice=notice,
            placeholders=frozenset(placeholders),
            deprecated=deprecated,
            deleted=deleted,
            attributes=attributes,
            translations=translations,
        )

    def to_json_bytes(self) -> bytes:
        """The JSON form read by from_json_bytes (UTF-8, codes sorted, stable)."""
        doc: dict[str, object] = {
            "list": self.name,
            "version": self.version,
            "source": self.source,
            "codes": dict(sorted(self.codes.items())),
        }
        if self.notice:
            doc["notice"] = self.notice
        if self.placeholders:
            doc["placeholders"] = sorted(self.placeholders)
        if self.deprecated:
            doc["deprecated"] = dict(sorted(self.deprecated.items()))
        if self.deleted:
            doc["deleted"] = {
                code: {"label": r.label, "edition": r.edition}
                for code, r in sorted(self.deleted.items())
            }
        if self.attributes:
            doc["attributes"] = {
                code: dict(sorted(a.items())) for code, a in sorted(self.attributes.items())
            }
        if self.translations:
            doc["translations"] = {
                lang: dict(sorted(t.items())) for lang, t in sorted(self.translations.items())
            }
        return (json.dumps(doc, ensure_ascii=False, indent=1) + "\n").encode("utf-8")


def _check_codes(name: str, codes: object) -> None:
    if not isinstance(codes, Mapping):
        raise InputError(f"code list {name}: codes must be a mapping of code -> label")
    if not codes:
        raise InputError(f"code list {name}: no codes")
    for code, label in codes.items():
        if not isinstance(code, str) or not isinstance(label, str):
            raise InputError(f"code list {name}: codes and labels must be strings")
        # Codes are compared with the stripped element text, so a code with
        # surrounding blanks could never match.
        if not code or code != code.strip() or len(code) > MAX_CODE_LEN:
            raise InputError(f"code list {name}: bad code {code[:80]!r}")
        if len(label) > MAX_LABEL_LEN:
            raise InputError(f"code list {name}: label of {code!r} is too long")


def _check_extras(code_list: CodeList) -> None:
    """The optional parts must be strings and speak of codes the list knows."""
    name, codes = code_list.name, code_list.codes
    if not isinstance(code_list.notice, str):
        raise InputError(f"code list {name}: notice must be a string")
    for code in code_list.placeholders:
        if code not in codes:
            raise InputError(f"code list {name}: placeholder {code[:80]!r} is not in the list")
    for code, edition in code_list.deprecated.items():
        if code not in codes:
            raise InputError(f"code list {name}: deprecated {code[:80]!r} is not in the list")
        if not isinstance(edition, str) or not edition.strip():
            raise InputError(f"code list {name}: deprecated {code!r} needs the edition")
    for code, retired in code_list.deleted.items():
        if code in codes:
            raise InputError(f"code list {name}: {code[:80]!r} is both current and deleted")
        if not isinstance(code, str) or not code or code != code.strip():
            raise InputError(f"code list {name}: bad deleted code {str(code)[:80]!r}")
        if not isinstance(retired, Retired) or not retired.edition.strip():
            raise InputError(f"code list {name}: deleted {code!r} needs the edition")
        if len(code) > MAX_CODE_LEN or len(retired.label) > MAX_LABEL_LEN:
            raise InputError(f"code list {name}: deleted {code[:80]!r} is too long")
    for code, attrs in code_list.attributes.items():
        if code not in codes:
            raise InputError(f"code list {name}: attributes of {code[:80]!r}, not in the list")
        for key, value in attrs.items():
            if not isinstance(key, str) or not _ATTRIBUTE_RE.fullmatch(key):
                raise InputError(f"code list {name}: bad attribute name {str(key)[:80]!r}")
            if not isinstance(value, str) or len(value) > MAX_LABEL_LEN:
                raise InputError(f"code list {name}: attribute {key} of {code!r} is not text")
    for lang, labels in code_list.translations.items():
        if not isinstance(lang, str) or not _LANG_RE.fullmatch(lang):
            raise InputError(f"code list {name}: bad language {str(lang)[:20]!r}")
        for code, label in labels.items():
            if code not in codes:
                raise InputError(f"code list {name}: {lang} label of {code[:80]!r}, not in list")
            if not isinstance(label, str) or len(label) > MAX_LABEL_LEN:
                raise InputError(f"code list {name}: {lang} label of {code!r} is not text")


def _string_map(doc: dict[str, object], key: str) -> dict[str, str]:
    value = doc.get(key, {})
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InputError(f"code list file: {key!r} must be an object of code -> text")
    return value


def _nested_string_map(doc: dict[str, object], key: str) -> dict[str, dict[str, str]]:
    value = doc.get(key, {})
    if not isinstance(value, dict) or not all(
        isinstance(inner, dict) and all(isinstance(v, str) for v in inner.values())
        for inner in value.values()
    ):
        raise InputError(f"code list file: {key!r} must be an object of objects of text")
    return value


def _no_duplicate_keys(pairs: list[tuple[str, object]]) -> dict[str, object]:
    result: dict[str, object] = {}
    for key, value in pairs:
        # json keeps the last duplicate silently; a list with a code twice is ambiguous.
        if key in result:
            raise ValueError(f"duplicate key {key[:80]!r}")
        result[key] = value
    return result


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


@dataclass(frozen=True, slots=True)
class CodeLists:
    """The installed code lists, by name; immutable, updated by making a new one."""

    lists: Mapping[str, CodeList] = field(default_factory=dict)
    # UN/LOCODE locations (node.codelists.locations): too big to load with the lists, so
    # a source that loads them on first use; None where no locations are installed.
    locations: LocationSource | None = None

    def __post_init__(self) -> None:
        for name, code_list in self.lists.items():
            if name != code_list.name:
                raise InputError(f"code list {code_list.name} filed under {name!r}")
        object.__setattr__(self, "lists", MappingProxyType(dict(self.lists)))

    @classmethod
    def of(cls, lists: Iterable[CodeList], locations: LocationSource | None = None) -> CodeLists:
        """A set of lists; two lists with the same name is an error."""
        by_name: dict[str, CodeList] = {}
        for code_list in lists:
            if code_list.name in by_name:
                raise InputError(f"code list {code_list.name} given twice")
            by_name[code_list.name] = code_list
        return cls(by_name, locations)

    def __contains__(self, name: object) -> bool:
        return name in self.lists

    def names(self) -> list[str]:
        """The list names, sorted."""
        return sorted(self.lists)

    def get(self, name: str) -> CodeList:
        """The list of that name; ConfigError when it is not installed."""
        try:
            return self.lists[name]
        except KeyError:
            known = ", ".join(self.names()) or "none"
            raise ConfigError(f"no code list named {name!r} (installed: {known})") from None

    def versions(self) -> dict[str, str]:
        """Name -> version of every installed list."""
        return {name: self.lists[name].version for name in self.names()}

    def updated_with(self, new: CodeList) -> CodeLists:
        """These lists with `new` installed: added, or replacing an older version.

        InputError, naming the installed version, when `new` is not strictly newer.
        """
        installed = self.lists.get(new.name)
        if installed is not None and not new.is_newer_than(installed):
            raise InputError(
                f"code list {new.name} version {new.version} is not newer than "
                f"the installed version {installed.version}"
            )
        return CodeLists({**self.lists, new.name: new}, self.locations)

    def with_locations(self, locations: LocationSource) -> CodeLists:
        """These lists with other locations (a newer asset from an override directory)."""
        return CodeLists(self.lists, locations)


def uncefact_codelist_from_xsd(data: bytes, name: str, version: str, source: str) -> CodeList:
    """A CodeList from a UN/CEFACT code list schema module (xsd:enumeration values).

    The label is the enumeration's ccts:Name, else its documentation text, else
    empty. This is how an operator brings in a newer official UN/CEFACT list.
    """
    # The same refusals as for certificates: size, UTF-8 only, no DTD (the vehicle of
    # entity attacks), depth; comments and processing instructions carry no codes.
    root = hostile_xml.parse_any(data, hostile_xml.XmlLimits(max_bytes=MAX_BYTES))
    if root.tag != f"{{{_XSD}}}schema":
        raise InputError("code list schema: the root element is not xsd:schema")
    codes: dict[str, str] = {}
    for enum in root.iter(f"{{{_XSD}}}enumeration"):
        value = enum.get("value")
        if value is None:
            raise InputError(
                f"code list schema: xsd:enumeration without value (line {enum.sourceline})"
            )
        code = value.strip()
        # The first occurrence wins: a list repeated in two simple types is one list.
        codes.setdefault(code, _enumeration_label(enum))
    if not codes:
        raise InputError("code list schema has no xsd:enumeration values")
    return CodeList(name, version, source, codes)


def _enumeration_label(enum: etree._Element) -> str:
    documentation: etree._Element | None = None
    for doc in enum.iter(f"{{{_XSD}}}documentation"):
        if documentation is None:
            documentation = doc
        for child in doc.iter():
            if isinstance(child.tag, str) and etree.QName(child).localname == _CCTS_NAME:
                return " ".join((child.text or "").split())
    if documentation is None:
        return ""
    text = "".join(t for t in documentation.itertext() if isinstance(t, str))
    return " ".join(text.split())


@functools.cache
def bundled() -> CodeLists:
    """The code lists shipped with the node (package data), loaded once."""
    data_dir = resources.files("node.codelists") / "data"
    lists: list[CodeList] = []
    for entry in sorted(data_dir.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        try:
            code_list = CodeList.from_json_bytes(entry.read_bytes())
        except InputError as exc:
            # A broken bundled file is a packaging fault, not the caller's input.
            raise ConfigError(f"bundled code list {entry.name}: {exc}") from None
        if f"{code_list.name}.json" != entry.name:
            raise ConfigError(f"bundled code list {entry.name} holds list {code_list.name}")
        lists.append(code_list)
    return CodeLists.of(lists, bundled_locations())
