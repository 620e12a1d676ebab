"""The export side of the console: certificates drafted, approved and issued here.

A certificate lives in the console's own table (node.store.console) as the JSON model
(docs/certificate-json.md) while it is drafted, with its state (node.console.workflow).
Issuing builds the certificate once more with the moment of issue, and sends it through
the same call the API's submit uses (node.api.submit.send_model): the same validation,
the same refusal at the door, the same outbox. From then on the sent message is the
certificate; the console's row only points at it.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from aiohttp_session import get_session

from node.api.context import stored_certificate
from node.api.problems import ProblemError
from node.api.submit import replacement_for, send_model, withdrawal_for
from node.api.views import lifecycle as lifecycle_view
from node.api.views import standing, stored_response
from node.certificate import safe_xml
from node.certificate.ispm12 import ispm12_view, sections
from node.certificate.jsonmodel import JsonModelError, certificate_from_json, to_plain
from node.certificate.model import Certificate
from node.certificate.xml_build import to_xml_bytes
from node.certificate.xml_parse import certificate_from_tree
from node.console import form as certificate_form
from node.console import i18n, settings
from node.console import workflow as wf
from node.console.context import (
    PAGE_SIZE,
    ConsoleContext,
    context_of,
    count,
    file_response,
    flash,
    page,
    redirect,
    take_flash,
    user_of,
)
from node.console.inbox import ANSWER_NAMES, ANSWER_STATES
from node.console.listing import csv_response, filters_of, page_number, without_page
from node.console.users import ConsoleUser
from node.errors import InputError
from node.observe import names
from node.store.store import ConsoleCertificate, ConsoleConflictError

log = logging.getLogger(__name__)

_ = i18n._
_REFUSALS = {
    wf.Refusal.WRONG_STATE: i18n.N_("The certificate is not in a state that allows this."),
    wf.Refusal.NOT_PERMITTED: i18n.N_("Your role does not allow this."),
    wf.Refusal.OWN_DRAFT: i18n.N_("You drafted this certificate: another officer must do this."),
    wf.Refusal.REASON_NEEDED: i18n.N_("Say why: a reason is needed."),
    wf.Refusal.REASON_TOO_LONG: i18n.N_("The reason is too long (500 characters at most)."),
}
STATE_NAMES = {
    wf.DRAFT: i18n.N_("Draft"),
    wf.SUBMITTED: i18n.N_("Submitted"),
    wf.QUERIED: i18n.N_("Queried"),
    wf.REJECTED: i18n.N_("Rejected"),
    wf.APPROVED: i18n.N_("Approved"),
    wf.ISSUED: i18n.N_("Issued and sent"),
    wf.WITHDRAWN: i18n.N_("Withdrawn"),
    wf.REPLACED: i18n.N_("Replaced"),
}
MOVE_NAMES = {
    "submit": i18n.N_("Submit for approval"),
    "query": i18n.N_("Query (back to the clerk)"),
    "reject": i18n.N_("Reject"),
    "approve": i18n.N_("Approve"),
    "issue": i18n.N_("Issue and send"),
    "withdraw": i18n.N_("Withdraw"),
    "replace": i18n.N_("Replace"),
}
_NUMBER_TRIES = 5
# Attachments travel inside the certificate (Base64, 4/3 of the bytes), which may be at
# most 5 MiB as XML (node.api.context.MAX_CERTIFICATE_BYTES).
ATTACHMENT_MAX = 2 * 1024 * 1024
ATTACHMENTS_MAX = 5


async def home(request: web.Request) -> web.Response:
    context = context_of(request)
    counts = await context.api.store.console_counts()
    received = await context.api.store.console_inbox_counts()
    return await page(
        request,
        "home.html",
        {
            "counts": [(s, STATE_NAMES[s], counts.get(s, 0)) for s in wf.STATES],
            "inbox": [(s, ANSWER_NAMES[s], received[s]) for s in ANSWER_STATES],
            "flash": await take_flash(request),
            "may_create": wf.may_create(user_of(request).role),
        },
    )


async def export_list(request: web.Request) -> web.StreamResponse:
    context = context_of(request)
    filters = filters_of(request.query, states=wf.STATES)
    number = page_number(request.query)
    as_csv = request.query.get("format") == "csv"
    found = await context.api.store.console_list(
        states=filters.states or None,
        number_contains=filters.number,
        country=filters.country,
        commodity_contains=filters.commodity,
        since=filters.since,
        until=filters.until,
        limit=10_000 if as_csv else PAGE_SIZE + 1,
        offset=0 if as_csv else number * PAGE_SIZE,
    )
    if as_csv:
        rows = [
            (c.number, c.type_code, c.import_country or "", c.commodity or "", c.state,
             c.drafted_by, c.updated_by, c.updated_at.isoformat())
            for c in found
        ]  # fmt: skip
        header = ("number", "type", "importing_country", "commodity", "state", "drafted_by",
                  "updated_by", "updated_at")  # fmt: skip
        return csv_response("exports.csv", header, rows)
    counts = await context.api.store.console_counts()
    return await page(
        request,
        "export_list.html",
        {
            "certificates": found[:PAGE_SIZE],
            "more": len(found) > PAGE_SIZE,
            "page": number,
            "filters": filters,
            "states": [(s, STATE_NAMES[s], counts.get(s, 0)) for s in wf.STATES],
            "state_names": STATE_NAMES,
            "flash": await take_flash(request),
            "may_create": wf.may_create(user_of(request).role),
            "query_nopage": without_page(request.rel_url.raw_query_string),
        },
    )


async def create(request: web.Request) -> web.StreamResponse:
    """A new, empty draft (or a copy of an earlier certificate: `copy` names it)."""
    context, user = context_of(request), user_of(request)
    _must(wf.may_create(user.role))
    form = await request.post()
    model: dict[str, Any] = {}
    copied = form.get("copy")
    if isinstance(copied, str) and copied.isdigit() and len(copied) < 19:
        original = await context.api.store.console_get(int(copied))
        model = _copy_of(_model(original))
    elif "file" in form:
        model = await _imported(form["file"])
    else:
        model = settings.draft_defaults(await context.api.store.console_settings())
    created = await _create(context, user, model, replaces=None)
    raise redirect(f"/export/{created.id}/edit")


async def edit_form(request: web.Request) -> web.Response:
    context, user = context_of(request), user_of(request)
    cert = await _certificate(request)
    if cert.state not in wf.EDITABLE or not wf.may_create(user.role):
        raise redirect(f"/export/{cert.id}")
    values = certificate_form.form_from_model(_model(cert))
    checked = _check(context, values, cert)
    return await _form_page(
        request, cert, values, checked.findings, notice=await take_flash(request)
    )


async def edit(request: web.Request) -> web.StreamResponse:
    """Save, check or submit the form; add or remove a row (the no-JavaScript way)."""
    context, user = context_of(request), user_of(request)
    cert = await _certificate(request)
    posted = await request.post()
    values = {k: v for k, v in posted.items() if isinstance(v, str) and k not in ("csrf", "op")}
    if not values.get("number", "").strip():
        values["number"] = cert.number  # the console's number unless the officer gives one
    op = str(posted.get("op", "save"))
    version = _version(posted)
    base = _model(cert)
    groups = {s.group for s in certificate_form.SECTIONS if s.group is not None}
    if op.startswith("add-") and op.removeprefix("add-") in groups:
        values = certificate_form.with_row_added(values, op.removeprefix("add-"))
    elif op.startswith("remove-"):
        group, _sep, n = op.removeprefix("remove-").rpartition("-")
        if group in groups and n.isdigit() and len(n) < 4:
            values = certificate_form.with_row_removed(values, group, int(n))
            # The base's row goes too, or what the form does not show of it (notes,
            # classifications) would move to the row below.
            base = certificate_form.model_with_row_removed(base, group, int(n))
    checked = _check(context, values, cert, base=base)
    move = "submit" if op == "submit" else "save"
    why = wf.refusal(
        move, state=cert.state, user=user.name, role=user.role, drafted_by=cert.drafted_by,
        reason=None,
    )  # fmt: skip
    if why is not None:
        return await _form_page(request, cert, values, checked.findings,
                                error=_(_REFUSALS[why]), status=403)  # fmt: skip
    if op == "submit" and not checked.valid:
        return await _form_page(
            request, cert, values, checked.findings, status=422,
            error=_("The certificate is not ready: correct what is marked, then submit again."),
        )  # fmt: skip
    saved = await _save(context, user, cert, version, checked.model)
    if op == "submit":
        await _move(context, user, saved, "submit", saved.version, reason=None)
        await flash(request, _("Submitted for approval."))
        raise redirect(f"/export/{cert.id}")
    if op == "save":
        await flash(request, _("Draft saved."))
        raise redirect(f"/export/{cert.id}/edit")
    return await _form_page(request, saved, values, checked.findings)


async def check_fragment(request: web.Request) -> web.Response:
    """Findings beside the fields, as the officer types (htmx): each field's slot is
    swapped out of band, so the form itself, and the caret in it, stay where they are."""
    context = context_of(request)
    cert = await _certificate(request)
    posted = await request.post()
    values = {k: v for k, v in posted.items() if isinstance(v, str) and k not in ("csrf", "op")}
    checked = _check(context, values, cert)
    # A slot for every field (an empty one clears what was fixed); the version is the
    # form's stamp, not a field, and has no slot for htmx to swap.
    keys = (set(values) - {"version"}) | set(checked.findings)
    return await page(
        request, "findings.html", {"findings": checked.findings, "keys": sorted(keys)}
    )


async def view(request: web.Request) -> web.Response:
    context, user = context_of(request), user_of(request)
    cert = await _certificate(request)
    store = context.api.store
    boxes, answer, lifecycle = None, None, None
    if cert.message is not None:
        message = await store.message(cert.message)

        boxes = sections(ispm12_view(stored_certificate(message), context.codelists))
        answered = await store.response_to(message.id)
        answer = None if answered is None else stored_response(answered)
        lifecycle = lifecycle_view(await store.lifecycle(message.id))
        delivery = {"state": message.state, "route": message.route, "outcome": message.outcome}
    else:
        delivery = None
        boxes = _draft_boxes(context, cert)
    moves = wf.moves_for(cert.state, user=user.name, role=user.role, drafted_by=cert.drafted_by)
    return await page(
        request,
        "export_view.html",
        {
            "cert": cert,
            "state_name": STATE_NAMES[cert.state],
            "boxes": boxes,
            "answer": answer,
            "lifecycle": lifecycle,
            "delivery": delivery,
            "moves": [(m, MOVE_NAMES[m], wf.MOVES[m].needs_reason) for m in moves if m != "save"],
            "editable": cert.state in wf.EDITABLE and wf.may_create(user.role),
            "may_copy": wf.may_create(user.role),
            "audit": await store.console_audit(certificate=cert.id),
            "flash": await take_flash(request),
        },
    )


async def move(request: web.Request) -> web.StreamResponse:
    """An officer's move on a submitted, approved or issued certificate."""
    context, user = context_of(request), user_of(request)
    cert = await _certificate(request)
    posted = await request.post()
    name = str(posted.get("move", ""))
    if name not in wf.MOVES or name == "save":
        raise web.HTTPBadRequest()
    reason = str(posted.get("reason", "")).strip() or None
    version = _version(posted)
    why = wf.refusal(
        name, state=cert.state, user=user.name, role=user.role, drafted_by=cert.drafted_by,
        reason=reason,
    )  # fmt: skip
    if why is not None:
        count(request, names.CONSOLE_REFUSALS, reason="forbidden")
        log.warning("console: %s may not %s %s: %s", user.name, name, cert.number, why.value)
        await flash(request, _(_REFUSALS[why]))
        raise redirect(f"/export/{cert.id}")
    if name == "issue":
        await _issue(context, user, cert, version)
        await flash(request, _("Issued: the certificate is on its way to {country}.").format(
            country=cert.import_country or "?"))  # fmt: skip
    elif name == "withdraw":
        assert reason is not None
        await _withdraw(context, user, cert, version, reason)
        await flash(request, _("Withdrawn: the importing country is told."))
    elif name == "replace":
        assert reason is not None
        draft = await _create(context, user, _copy_of(_model(cert)), replaces=cert.id,
                              reason=reason)  # fmt: skip
        await flash(request, _("A replacement draft was started: correct it, then submit it."))
        raise redirect(f"/export/{draft.id}/edit")
    else:
        await _move(context, user, cert, name, version, reason=reason)
        await flash(
            request, _("Done: {state}.").format(state=_(STATE_NAMES[wf.MOVES[name].to_state]))
        )
    raise redirect(f"/export/{cert.id}")


async def pdf(request: web.Request) -> web.Response:
    """The certificate as a PDF: the sent one once issued, else a preview stamped DRAFT."""
    from node.render.pdf import render_pdf  # fonts are heavy: load on first use

    context = context_of(request)
    cert = await _certificate(request)
    loop = asyncio.get_running_loop()
    if cert.message is not None:
        message = await context.api.store.message(cert.message)
        model = stored_certificate(message)
        stamp = standing(await context.api.store.lifecycle(message.id))
        body = await loop.run_in_executor(None, render_pdf, model, stamp, context.codelists)
    else:
        draft = _buildable(context, cert)
        body = await loop.run_in_executor(
            None, lambda: render_pdf(draft, None, context.codelists, watermark="DRAFT")
        )
    return file_response(body, "application/pdf", cert.number, "pdf", inline=True)


async def download(request: web.Request) -> web.Response:
    """The certificate as ePhyto XML (the sent bytes once issued) or as the JSON model."""

    context = context_of(request)
    cert = await _certificate(request)
    kind = request.match_info["kind"]
    if kind == "json":
        body = json.dumps(_model(cert), ensure_ascii=False, indent=2).encode()
        return file_response(body, "application/json", cert.number, "json", inline=False)
    if cert.message is not None:
        xml = (await context.api.store.message(cert.message)).payload
    else:
        xml = to_xml_bytes(_buildable(context, cert))
    return file_response(xml, "application/xml", cert.number, "xml", inline=False)


async def attach(request: web.Request) -> web.StreamResponse:
    """A PDF attached to a draft (a scanned permit, a laboratory report): it travels in
    the certificate, Base64, as a referenced document (type 916)."""
    context, user = context_of(request), user_of(request)
    cert = await _certificate(request)
    _must(cert.state in wf.EDITABLE and wf.may_create(user.role))
    posted = await request.post()
    version = _version(posted)
    upload = posted.get("file")
    data = getattr(getattr(upload, "file", None), "read", None)
    raw: bytes = data(ATTACHMENT_MAX + 1) if data is not None else b""
    if not raw.startswith(b"%PDF-"):
        await flash(request, _("Attach a PDF file."))
        raise redirect(f"/export/{cert.id}/edit")
    if len(raw) > ATTACHMENT_MAX:
        await flash(request, _("The file is larger than 2 MiB."))
        raise redirect(f"/export/{cert.id}/edit")
    model = _model(cert)
    references = [r for r in model.get("references") or [] if isinstance(r, dict)]
    if sum(1 for r in references if r.get("attachments")) >= ATTACHMENTS_MAX:
        await flash(request, _("At most 5 attachments."))
        raise redirect(f"/export/{cert.id}/edit")
    name = _attachment_name(getattr(upload, "filename", None))
    references.append({
        "type_code": "916",
        "id": f"{cert.number}-A{len(references) + 1}"[:128],
        "attachments": [{"data": base64.b64encode(raw).decode(), "mime_code": "application/pdf",
                         "filename": name}],
    })  # fmt: skip
    await _save(context, user, cert, version, model | {"references": references})
    await flash(request, _("Attached: {name}.").format(name=name))
    raise redirect(f"/export/{cert.id}/edit")


async def detach(request: web.Request) -> web.StreamResponse:
    context, user = context_of(request), user_of(request)
    cert = await _certificate(request)
    _must(cert.state in wf.EDITABLE and wf.may_create(user.role))
    posted = await request.post()
    version = _version(posted)
    index = str(posted.get("index", ""))
    model = _model(cert)
    references = [r for r in model.get("references") or [] if isinstance(r, dict)]
    if not index.isdigit() or int(index) >= len(references):
        raise web.HTTPBadRequest()
    del references[int(index)]
    await _save(context, user, cert, version, model | {"references": references})
    raise redirect(f"/export/{cert.id}/edit")


def attachments_of(model: Mapping[str, Any]) -> list[tuple[int, str, int]]:
    """The draft's attached files: (index among its references, file name, bytes)."""
    found = []
    for n, reference in enumerate(model.get("references") or []):
        if not isinstance(reference, dict):
            continue
        for attached in reference.get("attachments") or []:
            if isinstance(attached, dict) and isinstance(attached.get("data"), str):
                size = len(attached["data"]) * 3 // 4
                found.append((n, str(attached.get("filename") or "attachment.pdf"), size))
    return found


def _attachment_name(name: object) -> str:
    text = name if isinstance(name, str) else ""
    kept = "".join(c for c in text if c.isalnum() or c in "-_. ").strip()[:100]
    return kept if kept.lower().endswith(".pdf") else (kept or "attachment") + ".pdf"


async def lookup(request: web.Request) -> web.Response:
    """Type-ahead choices for a code-listed field (htmx fills the field's datalist)."""
    context = context_of(request)
    name = request.match_info["list"]
    query = (request.query.get("q") or next(iter(request.query.values()), ""))[:100]
    found = certificate_form.lookup(context.codelists, name, query)
    # htmx sends the field's own value under the field's name: take whichever came.
    return await page(request, "options.html", {"options": found})


# --- helpers ---------------------------------------------------------------------------


def _must(allowed: bool) -> None:
    if not allowed:
        raise web.HTTPForbidden()


async def _certificate(request: web.Request) -> ConsoleCertificate:
    text = request.match_info["id"]
    if not text.isdigit() or len(text) > 18:
        raise web.HTTPNotFound()
    return await context_of(request).api.store.console_get(int(text))


def _version(posted: Mapping[str, Any]) -> int:
    text = posted.get("version")
    if not isinstance(text, str) or not text.isdigit() or len(text) > 9:
        raise web.HTTPBadRequest()
    return int(text)


def _model(cert: ConsoleCertificate) -> dict[str, Any]:
    try:
        value = json.loads(cert.model)
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _copy_of(model: dict[str, Any]) -> dict[str, Any]:
    """A copy to draft from: everything but what makes a certificate this one."""
    return {k: v for k, v in model.items() if k not in ("number", "issue_datetime", "status_code")}


async def _imported(upload: Any) -> dict[str, Any]:
    """The JSON model of an uploaded ePhyto XML or JSON model file; InputError if neither."""

    data = getattr(upload, "file", None)
    if data is None:
        raise InputError(_("Choose an ePhyto XML or JSON file to import."))
    raw = data.read(5 * 1024 * 1024 + 1)
    if len(raw) > 5 * 1024 * 1024:
        raise InputError(_("The file is larger than 5 MiB."))
    if raw.lstrip()[:1] == b"{":
        cert = certificate_from_json(raw)
    else:
        cert = certificate_from_tree(safe_xml.parse(raw))
    plain = to_plain(cert)
    assert isinstance(plain, dict)
    return plain


def _check(
    context: ConsoleContext,
    values: Mapping[str, str],
    cert: ConsoleCertificate,
    *,
    base: dict[str, Any] | None = None,
) -> certificate_form.Checked:
    return certificate_form.check(
        values,
        base=_model(cert) if base is None else base,
        exporter=context.api.country,
        issuer_name=context.issuer_name,
        issued_at=context.api.clock.now().replace(microsecond=0),
        validator=context.api.validator,
    )


def _buildable(context: ConsoleContext, cert: ConsoleCertificate) -> Certificate:
    """The draft as a Certificate (for its preview); InputError saying what is missing."""
    values = certificate_form.form_from_model(_model(cert))
    checked = _check(context, values, cert)
    try:
        return certificate_from_json(json.dumps(checked.model))
    except JsonModelError as e:
        raise ProblemError(422, "Not ready", _("The draft cannot be shown yet: {error}").format(
            error=str(e))) from e  # fmt: skip


def _draft_boxes(
    context: ConsoleContext, cert: ConsoleCertificate
) -> list[tuple[str, list[tuple[str, str]]]] | None:

    try:
        boxes = sections(ispm12_view(_buildable(context, cert), context.codelists))
    except ProblemError:
        return None
    # The preview is built as it would be issued; until then its status is the console's.
    state = _(STATE_NAMES[cert.state])
    return [
        (title, [(label, state if label == "Status" else value) for label, value in rows])
        for title, rows in boxes
    ]


async def _form_page(
    request: web.Request,
    cert: ConsoleCertificate,
    values: Mapping[str, str],
    findings: Mapping[str, Any],
    *,
    error: str | None = None,
    notice: str | None = None,
    status: int = 200,
) -> web.Response:
    context = context_of(request)
    sections = []
    for section in certificate_form.SECTIONS:
        rows = (
            [None]
            if section.group is None
            else list(range(certificate_form.count(values, section.group)))
        )
        sections.append((section, rows))
    lang = (await get_session(request)).get("lang")
    choices, datalists, typeahead = _field_choices(context, lang if isinstance(lang, str) else None)
    return await page(
        request,
        "export_form.html",
        {
            "cert": cert,
            "values": values,
            "findings": findings,
            "sections": sections,
            "choices": choices,
            "datalists": datalists,
            "typeahead": typeahead,
            "error": error,
            "flash": notice,
            "state_name": STATE_NAMES[cert.state],
            "attachments": attachments_of(_model(cert)),
        },
        status=status,
    )


# A list longer than this is no <select>: one shared <datalist> per page instead (the
# countries), and past TYPEAHEAD_MIN not even that: the server suggests as one types
# (ports, units, package types), so a form stays light on a slow link.
_SELECT_MAX = 50
_TYPEAHEAD_MIN = 300


def _field_choices(
    context: ConsoleContext, lang: str | None
) -> tuple[dict[str, list[tuple[str, str]]], dict[str, list[tuple[str, str]]], frozenset[str]]:
    """The form's code-listed fields: the small lists as selects, the middling ones as
    shared datalists, and which lists are looked up as the officer types."""
    selects: dict[str, list[tuple[str, str]]] = {}
    datalists: dict[str, list[tuple[str, str]]] = {}
    typeahead = {"locations"}
    for section in certificate_form.SECTIONS:
        for field in section.fields:
            name = field.codelist
            if name is None or name in typeahead or name in selects or name in datalists:
                continue
            # In the officer's language where the code list has it (countries do).
            options = certificate_form.choices(context.codelists, name, lang)
            if len(options) >= _TYPEAHEAD_MIN:
                typeahead.add(name)
            elif field.kind == "select" and len(options) <= _SELECT_MAX:
                selects[name] = options
            else:
                datalists[name] = options
    return selects, datalists, frozenset(typeahead)


async def _create(
    context: ConsoleContext,
    user: ConsoleUser,
    model: dict[str, Any],
    *,
    replaces: int | None,
    reason: str | None = None,
) -> ConsoleCertificate:
    """A new draft under the next free number of this console (the admin's prefix, or
    CC-YYYY-C, then six digits)."""
    store = context.api.store
    now = context.api.clock.now()
    prefix = settings.number_prefix(
        await store.console_settings(), country=context.api.country, now=now
    )
    for attempt in range(_NUMBER_TRIES):
        counts = await store.console_counts()
        number = f"{prefix}{sum(counts.values()) + 1 + attempt:06d}"
        try:
            created = await store.console_create(
                number=number, type_code=str(model.get("type_code") or "851"),
                import_country=_import_country(model), commodity=_commodity(model),
                model=json.dumps(model | {"number": number}), user=user.name, now=now,
                replaces=replaces,
            )  # fmt: skip
        except ConsoleConflictError:
            continue
        log.info("console: %s started certificate %s", user.name, number)
        if reason is not None:
            await store.console_audit_append(
                certificate=created.id, user=user.name, action="replacement-started",
                now=now, detail={"replaces": replaces, "reason": reason},
            )  # fmt: skip
        return created
    raise ProblemError(409, "Busy", _("Could not number the new certificate: try again."))


async def _save(
    context: ConsoleContext,
    user: ConsoleUser,
    cert: ConsoleCertificate,
    version: int,
    model: dict[str, Any],
) -> ConsoleCertificate:
    number = str(model.get("number") or cert.number)
    try:
        return await context.api.store.console_save(
            cert.id, version=version, editable_states=wf.EDITABLE, number=number,
            type_code=str(model.get("type_code") or cert.type_code),
            import_country=_import_country(model), commodity=_commodity(model),
            model=json.dumps(model), user=user.name, now=context.api.clock.now(),
        )  # fmt: skip
    except ConsoleConflictError as e:
        raise ProblemError(409, "Changed meanwhile", _stale()) from e


async def _move(
    context: ConsoleContext,
    user: ConsoleUser,
    cert: ConsoleCertificate,
    name: str,
    version: int,
    *,
    reason: str | None,
    message: int | None = None,
    detail: dict[str, Any] | None = None,
) -> ConsoleCertificate:
    spec = wf.MOVES[name]
    try:
        moved = await context.api.store.console_transition(
            cert.id, version=version, from_states=spec.from_states, to_state=spec.to_state,
            action=name, user=user.name, now=context.api.clock.now(), reason=reason,
            message=message, detail=detail,
        )  # fmt: skip
    except ConsoleConflictError as e:
        raise ProblemError(409, "Changed meanwhile", _stale()) from e
    log.info("console: %s: %s %s -> %s", cert.number, user.name, name, spec.to_state)
    return moved


async def _issue(
    context: ConsoleContext, user: ConsoleUser, cert: ConsoleCertificate, version: int
) -> None:
    """Build the certificate at the moment of issue, send it as the API sends, then mark
    it issued. Sending first: a node killed between the two leaves it approved with its
    message queued, and issuing again finds that message (send_model answers the same
    certificate with the message stored before) instead of sending a second one."""
    api = context.api
    values = certificate_form.form_from_model(_model(cert))
    checked = _check(context, values, cert)
    if not checked.valid:
        raise ProblemError(422, "Not valid", _("The certificate no longer validates: query it."))
    built = certificate_from_json(json.dumps(checked.model))
    client = f"console:{user.name}"
    detail: dict[str, Any] = {}
    original = None
    if cert.replaces is not None:
        original = await api.store.console_get(cert.replaces)
        if original.message is None or original.state != wf.ISSUED:
            raise ProblemError(
                409,
                "Original not issued",
                _("The certificate this one replaces is no longer issued."),
            )
        sent = await api.store.message(original.message)
        reason = _replacement_reason(await api.store.console_audit(certificate=cert.id))
        built = replacement_for(api, sent, built, reason)
        detail = {"replaces": sent.id, "reason": reason}
    pk = await send_model(api, built, detail, client=client)
    await _move(context, user, cert, "issue", version, reason=None, message=pk,
                detail={"message": pk})  # fmt: skip
    if original is not None:
        await api.store.console_transition(
            original.id, version=original.version, from_states={wf.ISSUED},
            to_state=wf.REPLACED, action="replaced", user=user.name, now=api.clock.now(),
            detail={"by": cert.number},
        )  # fmt: skip


async def _withdraw(
    context: ConsoleContext, user: ConsoleUser, cert: ConsoleCertificate, version: int,
    reason: str,
) -> None:  # fmt: skip
    api = context.api
    if cert.message is None:
        raise ProblemError(409, "Not sent", _("Only an issued certificate can be withdrawn."))
    sent = await api.store.message(cert.message)
    withdrawal = await withdrawal_for(api, sent)
    pk = await send_model(api, withdrawal, {"withdraws": sent.id}, client=f"console:{user.name}")
    await _move(context, user, cert, "withdraw", version, reason=reason, detail={"message": pk})


def _replacement_reason(audit: list[Any]) -> str:
    for entry in audit:
        if entry.action == "replacement-started" and entry.detail:
            return str(entry.detail.get("reason") or "replaced")
    return "replaced"


def _import_country(model: Mapping[str, Any]) -> str | None:
    country = (model.get("consignment") or {}).get("import_country") or {}
    code = country.get("id") if isinstance(country, dict) else None
    return code if isinstance(code, str) and len(code) == 2 else None


def _commodity(model: Mapping[str, Any]) -> str | None:
    items = (model.get("consignment") or {}).get("items") or []
    if not items or not isinstance(items[0], dict):
        return None
    for text in items[0].get("descriptions") or []:
        value = text.get("value") if isinstance(text, dict) else text
        if isinstance(value, str) and value.strip():
            return value.strip()[:256]
    return None


def _stale() -> str:
    return _("Someone changed this certificate meanwhile: reload the page and try again.")
