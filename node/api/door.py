"""Refusing at the door what could never be delivered, instead of a 202 that fails later.

What the outbox would fail for good (node.outbox.worker, node.outbox.hub_route), checked
when the certificate is submitted, with nothing stored:

- a header that sealing refuses (node.envelope.header: the certificate number 1 to 128
  characters without control characters, type 851 or 657, a status the exchange
  carries): 422;
- an importing country the directory does not list, unless the node is configured with
  a hub of its own (node.toml `[hub] url`, e.g. the IPPC Hub, which knows countries
  that run no node): 422 naming the country and the directory version, after one
  refresh of the directory, since the country may have been published since the last
  one. The directory's own hub is no way out: it admits only the parties the directory
  lists, so it would refuse the message later;
- a suspended or revoked partner: 409 with its status;
- no SPSCertificate version in common with the partner: 422;
- plain XML through the hub (a partner outside the directory) that is not UTF-8: 422.

Without any usable directory (first start, registry down) only the header is checked:
the outbox holds the message until a directory is trusted, as it always has.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from node.api.problems import ProblemError
from node.certificate.versions import SCHEMA_VERSIONS
from node.directory import Directory, DirectoryError
from node.directory.schemas import NoCommonSchemaVersion, common_schema_version
from node.envelope.errors import MalformedHeaderError
from node.envelope.header import EnvelopeHeader
from node.store.store import NewMessage


@dataclass(frozen=True, slots=True)
class Door:
    """The directory as the API sees it: the trusted copy, how to refresh it, and whether
    a hub may carry plain XML to a country the directory does not list."""

    directory: Callable[[], Directory]
    refresh: Callable[[], Awaitable[object]] | None = None
    carries_unlisted: Callable[[Directory], bool] = lambda _: False


async def check_deliverable(door: Door | None, new: NewMessage, now: datetime) -> None:
    """Raise a ProblemError for what the outbox would fail for good; nothing otherwise."""
    try:
        EnvelopeHeader(
            message_id=new.message_id,
            from_country=new.sender,
            to_country=new.recipient,
            certificate_type=new.certificate_type,
            certificate_status=new.certificate_status,
            certificate_number=new.certificate_number,
            created=now.astimezone(UTC).replace(microsecond=0),
            content_digest=new.content_digest,
        )
    except MalformedHeaderError as e:
        raise ProblemError(
            422, "Cannot be sent", f"certificate {_shown(new)} cannot be sealed: {e}"
        ) from e
    if door is None:
        return
    try:
        directory = door.directory()
    except DirectoryError:
        return  # no usable directory: the outbox holds it until there is one
    if not _lists(directory, new.recipient) and door.refresh is not None:
        await door.refresh()  # the country may be newly published
        try:
            directory = door.directory()
        except DirectoryError:
            return
    if not _lists(directory, new.recipient):
        if not door.carries_unlisted(directory):
            raise ProblemError(
                422,
                "Unknown partner",
                f"{new.recipient} is not in directory version {directory.version} and no"
                " hub outside the directory is configured to carry plain XML to it:"
                " nothing was stored",
                country=new.recipient,
                directory_version=directory.version,
            )
        _require_utf8(new)
        return
    entry = directory.nppo(new.recipient)
    if entry.status != "active":
        raise ProblemError(
            409,
            "Partner not active",
            f"{new.recipient} is {entry.status} in directory version {directory.version}:"
            " nothing was stored",
            country=new.recipient,
            partner_status=entry.status,
            directory_version=directory.version,
        )
    try:
        common_schema_version(SCHEMA_VERSIONS, entry, directory.schemas, now, own_name=new.sender)
    except NoCommonSchemaVersion as e:
        raise ProblemError(422, "Cannot be sent", f"{e}: nothing was stored") from e


def _lists(directory: Directory, country: str) -> bool:
    try:
        directory.nppo(country)
    except DirectoryError:
        return False
    return True


def _require_utf8(new: NewMessage) -> None:
    # The hub carries a partner outside the directory the XML itself, as text.
    try:
        new.payload.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProblemError(
            422,
            "Cannot be sent",
            f"certificate {_shown(new)} goes to {new.recipient} through the hub as plain"
            " XML, which must be UTF-8: nothing was stored",
        ) from e


def _shown(new: NewMessage) -> str:
    number = new.certificate_number
    return repr(number[:40] + "...") if len(number) > 40 else repr(number)
