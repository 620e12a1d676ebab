"""XSD validation of an ePhyto against UN/CEFACT SPSCertificate D17A.

The node ships its own compact schema set for the ePhyto profile (folder `schema/`); an
operator may instead point validation at an official UN/CEFACT set on disk. Compiling a
schema set is slow, so compiled schemas are cached per directory and validation only
reuses them.
"""

from __future__ import annotations

import functools
import importlib.resources
import pathlib
import re
from collections.abc import Iterable
from typing import Final, Protocol, cast

from lxml import etree

from node.certificate.findings import Area, Finding, Level, xpath_of
from node.certificate.xmlns import PREFIX_BY_NAMESPACE
from node.errors import ConfigError

BUNDLED_ENTRY: Final = "SPSCertificate_17p0_ephyto.xsd"
OFFICIAL_ENTRY: Final = "SPSCertificate_17p0.xsd"

# Where the root module may sit inside a directory, most specific first: an official
# UN/CEFACT release tree, our own layout, or the official `data/standard` folder itself.
_ENTRY_CANDIDATES: Final[tuple[pathlib.PurePath, ...]] = (
    pathlib.PurePath("data", "standard", OFFICIAL_ENTRY),
    pathlib.PurePath(BUNDLED_ENTRY),
    pathlib.PurePath(OFFICIAL_ENTRY),
)

_CLARK_NAME: Final = re.compile(r"\{([^{}]*)\}([A-Za-z_][\w.\-]*)")
_MISSING_IMPORT: Final = re.compile(r'failed to load "([^"]+)"')


class _LogEntry(Protocol):
    """The parts of an lxml error-log entry used here (lxml-stubs leave the log untyped)."""

    message: str
    path: str | None
    line: int
    level: int
    filename: str | None


class SchemaSetError(ConfigError):
    """A schema set that cannot be found, read or compiled."""


def bundled_schema_dir() -> pathlib.Path:
    """The folder of the project's own ePhyto XSD files."""
    folder = importlib.resources.files("node.certificate").joinpath("schema")
    # libxml2 must read the imports from a real directory; a zipped install would not work.
    if not isinstance(folder, pathlib.Path):
        raise SchemaSetError(f"bundled schema folder is not a directory on disk: {folder}")
    return folder


def load_schema(directory: pathlib.Path | None = None) -> etree.XMLSchema:
    """The compiled schema of a schema set, compiled once per directory.

    None means the bundled set. Otherwise `directory` is laid out like an official UN/CEFACT
    release (it holds data/standard/SPSCertificate_17p0.xsd) or like the bundled folder.
    """
    folder = bundled_schema_dir() if directory is None else directory
    return _compile(folder.resolve())


@functools.lru_cache(maxsize=8)
def _compile(directory: pathlib.Path) -> etree.XMLSchema:
    """Compile the schema set in a resolved directory (cached: compiling takes long)."""
    entry = _entry_of(directory)
    # Schema files are configuration, not input, but still never fetch anything from the net.
    parser = etree.XMLParser(no_network=True, resolve_entities=False)
    try:
        document = etree.parse(str(entry), parser)
        return etree.XMLSchema(document)
    except etree.XMLSchemaParseError as exc:
        raise SchemaSetError(
            f"schema set {directory} does not compile: {_compile_reason(exc)}"
        ) from exc
    except (etree.XMLSyntaxError, OSError) as exc:
        raise SchemaSetError(f"schema set {directory} cannot be read: {exc}") from exc


def _entry_of(directory: pathlib.Path) -> pathlib.Path:
    """The root XSD module of a schema set directory."""
    if not directory.is_dir():
        raise SchemaSetError(f"schema set {directory} is not a directory")
    for candidate in _ENTRY_CANDIDATES:
        entry = directory / candidate
        if entry.is_file():
            return entry
    expected = " or ".join(str(c) for c in _ENTRY_CANDIDATES)
    raise SchemaSetError(f"schema set {directory} has no {expected}")


def _compile_reason(exc: etree.XMLSchemaParseError) -> str:
    """One line: the first compile error, where it is, and any import that failed to load."""
    entries = _entries(exc.error_log)
    errors = [e for e in entries if e.level >= etree.ErrorLevels.ERROR]
    first = errors[0] if errors else None
    reason = _readable(first.message) if first is not None else str(exc)
    if first is not None and first.filename:
        reason += f" ({pathlib.Path(first.filename).name} line {first.line})"
    # A missing imported file is the usual cause but libxml2 only warns about it.
    missing = sorted(
        {pathlib.Path(m.group(1)).name for e in entries if (m := _MISSING_IMPORT.search(e.message))}
    )
    if missing:
        reason += f"; missing file(s): {', '.join(missing)}"
    return reason


def schema_findings(tree: etree._ElementTree, schema: etree.XMLSchema) -> list[Finding]:
    """Validate a certificate; every schema error becomes a located SEVERE finding."""
    if schema.validate(tree):
        return []
    # Copy the log at once: the schema object keeps only the log of its latest validation.
    entries = _entries(schema.error_log)
    namespaces = _document_prefixes(tree)
    return [
        Finding(
            Level.SEVERE,
            Area.SCHEMA,
            _readable(entry.message),
            _xpath(tree, entry.path, entry.line, namespaces),
            entry.line if entry.line > 0 else None,
        )
        for entry in entries
    ]


def _entries(log: object) -> list[_LogEntry]:
    """The entries of an lxml error log, typed."""
    return list(cast("Iterable[_LogEntry]", log))


def _readable(message: str) -> str:
    """Replace lxml's Clark names ({urn...}X) with prefixed names (ram:X)."""

    def prefixed(match: re.Match[str]) -> str:
        prefix = PREFIX_BY_NAMESPACE.get(match.group(1))
        return f"{prefix}:{match.group(2)}" if prefix else match.group(0)

    return _CLARK_NAME.sub(prefixed, message)


def _document_prefixes(tree: etree._ElementTree) -> dict[str, str]:
    """The prefixes the document declares, so lxml's error paths can be evaluated on it."""
    prefixes: dict[str, str] = {}
    for element in tree.getroot().iter():
        for prefix, uri in element.nsmap.items():
            if prefix is not None:
                prefixes.setdefault(prefix, uri)
    return prefixes


def _xpath(
    tree: etree._ElementTree, path: str | None, line: int, namespaces: dict[str, str]
) -> str:
    """A readable, standard-prefixed XPath of the element an error is about.

    lxml's path uses the document's own prefixes, or `*` steps for default-namespace
    elements; resolving it to the element and re-describing it gives /rsm:.../ram:X[2].
    """
    if not path:
        return "/"
    element = _resolve(tree, path, namespaces)
    # The line check guards against a prefix declared twice with different namespaces.
    # lxml-stubs mistype sourceline; it is the element's start line or None.
    if element is not None and (
        line <= 0 or cast("int | None", element.sourceline) in (None, line)
    ):
        return xpath_of(element)
    return "/" if "*" in path else path


def _resolve(
    tree: etree._ElementTree, path: str, namespaces: dict[str, str]
) -> etree._Element | None:
    """The single element a libxml2 node path names, or None."""
    try:
        found = tree.xpath(path, namespaces=namespaces)
    except etree.XPathError:
        return None
    if isinstance(found, list) and len(found) == 1 and isinstance(found[0], etree._Element):
        return found[0]
    return None
