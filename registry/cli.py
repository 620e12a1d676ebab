"""`ephyto registry ...`: set up a registry, enrol NPPOs, publish and serve the directory."""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from node.commandline import dir_argument
from node.directory import HubEntry
from node.directory.fingerprint import maintainer_fingerprint
from node.directory.freshness import EXPIRY_WARNING, directory_expiry_warning
from node.hub.request import MAX_HUB_REQUEST_BYTES, HubRequest
from node.identity.endpoint_change import MAX_ENDPOINT_CHANGE_BYTES
from node.identity.enrolment import (
    MAX_REQUEST_BYTES,
    EnrolmentRequest,
    check_country,
    format_time,
)
from node.identity.rotation import MAX_ROTATION_BYTES
from registry import cli_observe
from registry.cli_codelists import add_parsers as add_codelists_parsers
from registry.cli_common import acting_signer, actor, named_signer, read_at_most
from registry.cli_settings import add_init_arguments as add_settings_init_arguments
from registry.cli_settings import add_parsers as add_settings_parsers
from registry.cli_settings import init_directory_days
from registry.cli_signing import add_parsers as add_signing_parsers
from registry.cli_signing import publish_signed_command
from registry.cli_timestamp import add_parsers as add_timestamp_parsers
from registry.cli_timestamp import add_serve_arguments as add_timestamp_serve_arguments
from registry.cli_timestamp import serve_schedule
from registry.endpoints import describe as describe_endpoint_change
from registry.publish import RegistryError, parse_duration
from registry.state import (
    AUDIT_FILE,
    MAINTAINERS_FILE,
    MAX_OVERLAP,
    MIN_OVERLAP,
    Lifecycle,
    RegistryState,
    Rotation,
)

DEFAULT_DIR = Path("ephyto-registry")


def add_parser(commands: Any) -> None:
    registry = commands.add_parser(
        "registry",
        help="run a registry: enrol NPPOs, publish and serve the signed directory",
        description="Maintain a registry: the maintainers' keys, the enrolled NPPOs and the "
        "signed directory that nodes fetch.",
    )
    sub = registry.add_subparsers(dest="registry_command", metavar="ACTION", required=True)

    init = _command(sub, "init", _init, "create a registry and its maintainers' keys")
    init.add_argument(
        "--threshold",
        type=int,
        default=1,
        metavar="N",
        help="maintainers whose approval an enrolment needs, and whose signatures a directory"
        " needs (default: 1)",
    )
    init.add_argument(
        "--maintainer",
        action="append",
        metavar="NAME",
        help="a maintainer's display name in the directory; repeat it for several maintainers,"
        " each gets a key (default: one, maintainer-1)",
    )
    add_settings_init_arguments(init)

    add = _command(
        sub,
        "add",
        _add,
        "verify an NPPO's enrolment request and enrol it at once, approved by every"
        " maintainer whose key is here (the single-maintainer shortcut of enrol + approve)",
    )
    add.add_argument("request", type=Path, metavar="REQUEST", help="enrolment-request.json")

    enrol = _command(
        sub,
        "enrol",
        _enrol,
        "verify an NPPO's enrolment request and queue it for the maintainers' approvals",
    )
    enrol.add_argument("request", type=Path, metavar="REQUEST", help="enrolment-request.json")
    _maintainer_arguments(enrol, required=False)

    _command(sub, "pending", _pending, "list the enrolment requests awaiting approvals")

    approve = _command(
        sub,
        "approve",
        _approve,
        "approve a queued request, signed by your maintainer key; enrolled once a threshold"
        " of maintainers approved it (published by the next publish)",
    )
    _country_argument(approve)
    _maintainer_arguments(approve)

    reject = _command(
        sub, "reject", _reject, "take a queued request off the queue, the reason recorded"
    )
    _country_argument(reject)
    _reason_argument(reject, required=True)
    _maintainer_arguments(reject)

    for name, func, text in (
        ("suspend", _suspend, "suspend an enrolled NPPO: nodes refuse it after the next publish"),
        ("reinstate", _reinstate, "make a suspended NPPO active again from the next publish"),
        ("revoke", _revoke, "revoke an enrolled NPPO for good (final) from the next publish"),
    ):
        lifecycle = _command(sub, name, func, text)
        _country_argument(lifecycle)
        _reason_argument(lifecycle, required=name != "reinstate")
        _maintainer_arguments(lifecycle)

    rotate = _command(
        sub,
        "rotate",
        _rotate,
        "record an NPPO's key rotation (rotation-request.json, signed by its current key):"
        " the new keys valid from now, the old ones until now + --overlap, from the next"
        " publish",
    )
    rotate.add_argument("request", type=Path, metavar="REQUEST", help="rotation-request.json")
    rotate.add_argument(
        "--overlap",
        required=True,
        metavar="DURATION",
        help="how long the old keys stay valid next to the new ones: whole hours (48) or a"
        " duration (2d, 36h, 90m); the node presents its new TLS certificate from halfway"
        " through it",
    )
    _maintainer_arguments(rotate, required=False)

    set_endpoint = _command(
        sub,
        "set-endpoint",
        _set_endpoint,
        "record an NPPO's endpoint change (endpoint-change-request.json, signed by its"
        " current key): a new direct endpoint, or hub only, from the next publish",
    )
    set_endpoint.add_argument(
        "request", type=Path, metavar="REQUEST", help="endpoint-change-request.json"
    )
    _maintainer_arguments(set_endpoint, required=False)

    log = _command(sub, "log", _log, "print the audit log: who did what, when and why")
    log.add_argument(
        "--verify",
        action="store_true",
        help="check the hash chain and the maintainers' signatures; exit 1 and say where it breaks",
    )
    log.add_argument("--json", action="store_true", help="print the entries as JSON lines")

    set_hub = _command(
        sub,
        "set-hub",
        _set_hub,
        "verify the hub's request and record it as the hub (not yet published)",
    )
    set_hub.add_argument("request", type=Path, metavar="REQUEST", help="hub-request.json")

    publish = _command(sub, "publish", _publish, "sign and publish a new directory version")
    publish.add_argument(
        "--expires-in",
        metavar="DURATION",
        help="how long nodes may use this version: 90d, 36h, 90m (default: the registry's"
        " setting, `registry settings`: 90d with a timestamp key); publish again well"
        " before it runs out",
    )
    publish.add_argument(
        "--signed",
        action="append",
        type=Path,
        metavar="FILE",
        help="publish this proposal, signed in turn by the maintainers (`registry propose`,"
        " `registry sign`), instead of signing here; repeat it to merge copies signed apart",
    )
    add_signing_parsers(sub, _command)
    add_codelists_parsers(sub, _command)
    add_timestamp_parsers(sub, _command)
    add_settings_parsers(sub, _command)

    serve = _command(sub, "serve", _serve, "serve the signed directory over HTTP")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8400, help="port (default: 8400)")
    serve.add_argument(
        "--announce",
        action="append",
        nargs="?",
        const="",
        metavar="IP",
        help="announce the registry by mDNS (_ephyto-registry._tcp) on IP (repeatable; no IP:"
        " all IPv4 interfaces), with its maintainer-set fingerprint; grants no trust",
    )
    serve.add_argument(
        "--name", metavar="NAME", help="the registry's name in the announcement (optional)"
    )
    add_timestamp_serve_arguments(serve)
    cli_observe.add_serve_arguments(serve)

    _command(
        sub,
        "fingerprint",
        _fingerprint,
        "print the maintainer-set fingerprint, to read out to node operators by another"
        " channel (they confirm it in `ephyto node init --discover`)",
    )

    show = _command(
        sub,
        "show",
        _show,
        "show the trust anchor (maintainer keys) and what is enrolled, or one country in full",
    )
    show.add_argument(
        "country",
        nargs="?",
        metavar="COUNTRY",
        help="a queued or enrolled country (ISO 3166-1 alpha-2): show it in full",
    )


def _country_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("country", metavar="COUNTRY", help="ISO 3166-1 alpha-2 code, e.g. NL")


def _reason_argument(parser: argparse.ArgumentParser, *, required: bool) -> None:
    parser.add_argument(
        "--reason",
        required=required,
        metavar="TEXT",
        help="why, recorded in the audit log" + ("" if required else " (optional)"),
    )


def _maintainer_arguments(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument(
        "--maintainer",
        required=required,
        metavar="NAME",
        help="the maintainer acting (a name in the maintainer set); signs with their key"
        + ("" if required else " (default: the first maintainer whose key is here)"),
    )
    parser.add_argument(
        "--key",
        type=Path,
        metavar="FILE",
        help="that maintainer's private key (default: maintainers/<key id>.key)",
    )


def _command(sub: Any, name: str, func: Any, text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=text, description=text + ".")
    dir_argument(parser, DEFAULT_DIR, "registry")
    parser.set_defaults(func=func)
    return parser


def _init(args: argparse.Namespace) -> int:
    state = RegistryState.init(
        args.directory,
        maintainer=args.maintainer or ["maintainer-1"],
        threshold=args.threshold,
        now=datetime.now(UTC),
        actor=actor(),
        directory_days=init_directory_days(args),
    )
    print(f"created registry in {state.root}")
    print(f"  private key  {state.root / 'maintainers'}/<key id>.key (mode 0600)")
    print(f"  timestamp key (online)  {state.root / 'timestamp'}/<key id>.key (mode 0600)")
    print(f"  directory validity  {state.directory_days()} days per published version")
    _print_anchor(state)
    return 0


def _add(args: argparse.Namespace) -> int:
    state = RegistryState(args.directory)
    raw = read_at_most(args.request, MAX_REQUEST_BYTES)
    request = state.enrol(raw, datetime.now(UTC), actor())
    print(f"enrolled {request.country} ({request.name}); not published yet")
    _print_request(request)
    print(
        "confirm the signing key id with the NPPO by another channel (phone, signed letter)"
        " before you publish: the proofs show the keys belong together, not who sent them"
    )
    return 0


def _enrol(args: argparse.Namespace) -> int:
    state = RegistryState(args.directory)
    signer = named_signer(state, args)
    raw = read_at_most(args.request, MAX_REQUEST_BYTES)
    request = state.queue(raw, datetime.now(UTC), actor(), signer)
    threshold = state.maintainers.threshold
    print(f"queued {request.country} ({request.name}); needs {threshold} maintainer approvals")
    _print_request(request)
    print(
        "confirm the signing key id with the NPPO by another channel (phone, signed letter)"
        f" before you approve: `ephyto registry approve {request.country} --maintainer NAME`"
    )
    return 0


def _pending(args: argparse.Namespace) -> int:
    state = RegistryState(args.directory)
    queued = state.queued()
    threshold = state.maintainers.threshold
    print(f"pending enrolment requests: {len(queued)}")
    for entry in queued.values():
        request = entry.request
        approvals = state.approvals(entry.raw)
        names = ", ".join(sorted(a.name for a in approvals.values())) or "none"
        print(f"  {request.country}  {request.name}")
        _print_request(request, indent="      ")
        print(f"      queued             {entry.queued} by {entry.actor}")
        print(f"      approvals          {len(approvals)} of {threshold} ({names})")
    return 0


def _approve(args: argparse.Namespace) -> int:
    state = RegistryState(args.directory)
    country = _country(args.country)
    signer = state.signer(args.maintainer, args.key)
    result = state.approve(country, datetime.now(UTC), actor(), signer)
    count = len(result.approved_by)
    print(
        f"{signer.name} approved {country}: {count} of {result.threshold} approvals"
        f" ({', '.join(result.approved_by)})"
    )
    if result.enrolled:
        print(f"enrolled {country} ({result.request.name}); the next publish lists it")
    else:
        more = result.threshold - count
        print(f"not enrolled yet: {more} more approval{'s' if more > 1 else ''} needed")
    return 0


def _reject(args: argparse.Namespace) -> int:
    state = RegistryState(args.directory)
    country = _country(args.country)
    signer = state.signer(args.maintainer, args.key)
    request = state.reject(country, args.reason, datetime.now(UTC), actor(), signer)
    print(f"{signer.name} rejected the request of {country} ({request.name}): {args.reason}")
    return 0


def _suspend(args: argparse.Namespace) -> int:
    return _lifecycle(args, "suspend")


def _reinstate(args: argparse.Namespace) -> int:
    return _lifecycle(args, "reinstate")


def _revoke(args: argparse.Namespace) -> int:
    return _lifecycle(args, "revoke")


def _lifecycle(args: argparse.Namespace, action: Lifecycle) -> int:
    state = RegistryState(args.directory)
    country = _country(args.country)
    signer = state.signer(args.maintainer, args.key)
    status = state.change_status(country, action, args.reason, datetime.now(UTC), actor(), signer)
    print(f"{signer.name}: {country} is now {status}; effective in the next published directory")
    print("run `ephyto registry publish` so that nodes and the hub learn it at their next refresh")
    return 0


def _overlap(text: str) -> timedelta:
    """`--overlap`: whole hours (`48`), or a duration (`2d`, `36h`, `90m`, `600s`), from
    1 minute to MAX_OVERLAP; refused in one line (RegistryError) otherwise."""
    text = text.strip()
    try:
        overlap = timedelta(hours=int(text)) if text.isdigit() else parse_duration(text)
    except (RegistryError, OverflowError):
        overlap = timedelta(0)  # refused below, with the same message
    if not MIN_OVERLAP <= overlap <= MAX_OVERLAP:
        raise RegistryError(
            f"--overlap {text!r}: expected whole hours (1 to {MAX_OVERLAP.days * 24}) or a"
            f" duration such as 2d, 36h or 90m, from 1 minute to {MAX_OVERLAP.days} days"
        )
    return overlap


def _rotate(args: argparse.Namespace) -> int:
    overlap = _overlap(args.overlap)
    state = RegistryState(args.directory)
    signer = acting_signer(state, args)
    raw = read_at_most(args.request, MAX_ROTATION_BYTES)
    rotation = state.rotate(raw, overlap, datetime.now(UTC), actor(), signer)
    request = rotation.request
    print(f"{signer.name} recorded the key rotation of {request.country}; not published yet")
    _print_rotation(rotation, "  ")
    print("run `ephyto registry publish` so that nodes learn the new keys at their next refresh")
    return 0


def _set_endpoint(args: argparse.Namespace) -> int:
    state = RegistryState(args.directory)
    signer = acting_signer(state, args)
    raw = read_at_most(args.request, MAX_ENDPOINT_CHANGE_BYTES)
    change = state.change_endpoint(raw, datetime.now(UTC), actor(), signer).change
    print(f"{signer.name} recorded the endpoint change of {change.country}; not published yet")
    print(f"  endpoint  {change.endpoint or 'none: hub only'}")
    print("run `ephyto registry publish` so that nodes learn it at their next refresh")
    return 0


def _log(args: argparse.Namespace) -> int:
    state = RegistryState(args.directory)
    names = {k.key_id: k.name for k in state.statement_maintainers().keys}
    lines = state.audit_lines()
    for number, line in enumerate(lines, start=1):
        if args.json:
            print(line.decode("utf-8", "replace"))
            continue
        try:
            entry = json.loads(line)
            if not isinstance(entry, dict):
                raise ValueError("not an object")
        except ValueError:
            print(f"{number:>4}  (damaged line)")
            continue
        print(_log_line(number, entry, names))
    if not args.verify:
        return 0
    report = state.verify_audit()
    if report.problems:
        print(f"audit log BROKEN: {len(report.problems)} problems in {report.entries} entries")
        for problem in report.problems:
            print(f"  {state.root / AUDIT_FILE} {problem}")
        return 1
    note = f", {report.unchained} before chaining began" if report.unchained else ""
    print(
        f"audit log intact: {report.entries} entries chained{note}, {report.signed} signed by"
        f" a maintainer key; head sha256 {report.head}"
    )
    return 0


def _log_line(number: int, entry: dict[str, Any], names: dict[str, str]) -> str:
    maintainer = entry.get("maintainer")
    who = names.get(str(maintainer), str(maintainer)) if maintainer else "no maintainer key"
    details = entry.get("details")
    parts = []
    reason = None
    if isinstance(details, dict):
        for key, value in details.items():
            if key == "reason":
                reason = value
            elif isinstance(value, list):
                parts.append(f"{key}={','.join(map(str, value)) or '-'}")
            elif isinstance(value, dict):
                parts.append(f"{key}={json.dumps(value, sort_keys=True)}")
            else:
                parts.append(f"{key}={value}")
    why = f'  reason: "{reason}"' if reason else ""
    return (
        f"{number:>4}  {entry.get('time')}  {entry.get('action')}  by {who}"
        f" (user {entry.get('actor')}){why}\n        {' '.join(parts)}"
    )


def _set_hub(args: argparse.Namespace) -> int:
    state = RegistryState(args.directory)
    raw = read_at_most(args.request, MAX_HUB_REQUEST_BYTES)
    request = state.set_hub(raw, datetime.now(UTC), actor())
    print(f"recorded the hub {request.name}; not published yet")
    _print_hub(request)
    print(
        "confirm the TLS pin with the hub's operator by another channel before you publish:"
        " every NPPO's node will trust the hub by it"
    )
    return 0


def _publish(args: argparse.Namespace) -> int:
    if args.signed:
        return publish_signed_command(args)
    state = RegistryState(args.directory)
    validity = None if args.expires_in is None else parse_duration(args.expires_in)
    # The code lists are the registry's own (`registry codelists`), written out for nodes.
    directory, _ = state.publish(datetime.now(UTC), actor(), validity=validity)
    countries = (
        ", ".join(
            n.country if n.status == "active" else f"{n.country} ({n.status})"
            for n in directory.nppos
        )
        or "none"
    )
    print(f"published directory version {directory.version}")
    print(f"  NPPOs    {countries}")
    print(f"  hub      {_hub_line(directory.hub)}")
    print(f"  issued   {format_time(directory.issued)}")
    print(f"  expires  {format_time(directory.expires)} (publish again before then)")
    print(f"  file     {state.root / 'published' / f'{directory.version}.json'}")
    return 0


def _fingerprint(args: argparse.Namespace) -> int:
    from node.directory.fingerprint import format_fingerprint, maintainer_fingerprint

    fingerprint = maintainer_fingerprint(RegistryState(args.directory).maintainers)
    print(fingerprint)
    print(f"read out: {format_fingerprint(fingerprint)}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    if args.announce is not None or args.name is not None:
        return _serve_announced(args)
    from aiohttp import web

    from registry.timestamp import resign_context
    from registry.web import create_registry_app

    state = RegistryState(args.directory)  # refuse to serve a directory that is no registry
    if not 0 < args.port < 65536:
        raise RegistryError(f"--port {args.port} is not a port (1-65535)")
    url = f"http://{args.host}:{args.port}"
    app = create_registry_app(state.root)
    if (schedule := serve_schedule(args)) is not None:
        app.cleanup_ctx.append(resign_context(state.root, *schedule))
    observing = cli_observe.observed(args, app)  # logging; --metrics: its own listener

    def ready(*_: object, **__: object) -> None:
        print(f"serving {state.root} at {url}/directory.json (Ctrl-C to stop)", flush=True)
        if (where := observing()) is not None:
            print(f"registry {where}", flush=True)

    web.run_app(
        app,
        host=args.host,
        port=args.port,
        print=ready,
        access_log=None,
    )
    return 0


def _serve_announced(args: argparse.Namespace) -> int:
    import asyncio

    from node.commandline import run_until_signalled
    from node.directory.fingerprint import format_fingerprint
    from registry.announce import announced_host, registry_announcement, serve_announced
    from registry.timestamp import alongside, resign_forever

    if args.announce is None:
        raise RegistryError("--name is the name to announce: it needs --announce")
    if args.metrics is not None:
        raise RegistryError("--metrics is not available with --announce yet")
    state = RegistryState(args.directory)  # refuse to serve a directory that is no registry
    if not 0 < args.port < 65536:
        raise RegistryError(f"--port {args.port} is not a port (1-65535)")
    interfaces = [ip for ip in args.announce if ip]
    announcement = registry_announcement(
        state.maintainers, announced_host(args.host, interfaces), args.port, args.name
    )

    def ready(instance: str) -> None:
        print(f"serving {state.root} at {announcement.url} (Ctrl-C to stop)", flush=True)
        print(f"announced by mDNS as {instance}", flush=True)
        print(f"  fingerprint {format_fingerprint(announcement.fingerprint)}", flush=True)

    schedule = serve_schedule(args)

    async def serve(stop: asyncio.Event) -> None:
        job = serve_announced(
            state.root, args.host, args.port, announcement, interfaces, stop=stop, ready=ready
        )
        if schedule is None:
            return await job
        async with alongside(resign_forever(state.root, *schedule)):
            await job

    return run_until_signalled(serve, verbose=False)


def _show(args: argparse.Namespace) -> int:
    state = RegistryState(args.directory)
    if args.country is not None:
        return _show_country(state, _country(args.country))
    _print_anchor(state)
    enrolled = state.enrolled()
    statuses = state.statuses()
    print(f"enrolled NPPOs: {len(enrolled)}")
    for request, _ in enrolled.values():
        status = statuses.get(request.country)
        flag = f"  ({status[0].upper()}: {status[1]})" if status else ""
        print(f"  {request.country}  {request.name}{flag}")
        _print_request(request, indent="      ")
    if queued := state.queued():
        print(f"awaiting approvals: {', '.join(queued)} (see `ephyto registry pending`)")
    hub = state.hub()
    if hub is None:
        print("hub: none recorded (run `ephyto registry set-hub hub-request.json`)")
    else:
        print(f"hub: {hub.name}")
        _print_hub(hub, indent="      ")
    current = state.current()
    if current is None:
        print("published: nothing yet (run `ephyto registry publish`)")
        return 0
    listed = {n.country for n in current.nppos}
    expired = " (EXPIRED: publish again)" if current.expires <= datetime.now(UTC) else ""
    print(f"published: version {current.version} of {len(state.versions())} kept")
    print(f"  issued   {format_time(current.issued)}")
    print(f"  expires  {format_time(current.expires)}{expired}")
    if not expired and directory_expiry_warning(current, datetime.now(UTC)) is not None:
        # Nodes warn from this point too: time for a signing round.
        print(
            f"  WARNING  expires within {EXPIRY_WARNING.days} days: nodes warn their operators;"
            " propose, sign and publish a new version before then"
        )
    print(f"  NPPOs    {', '.join(sorted(listed)) or 'none'}")
    print(f"  hub      {_hub_line(current.hub)}")
    if pending := sorted(set(enrolled) - listed):
        print(f"  not yet published: {', '.join(pending)}")
    if hub is not None and (current.hub is None or current.hub.tls_pins[0].pin != hub.tls_pin):
        print("  the hub recorded is not published yet")
    return 0


def _show_country(state: RegistryState, country: str) -> int:
    threshold = state.maintainers.threshold
    queued = state.queued().get(country)
    enrolled = state.enrolled().get(country)
    if queued is None and enrolled is None:
        raise RegistryError(
            f"{country} is neither queued nor enrolled (see `ephyto registry pending`)"
        )
    if queued is not None:
        request, raw = queued.request, queued.raw
        print(f"{country}  {request.name}: queued, awaiting approvals")
        print(f"  queued             {queued.queued} by {queued.actor}")
    else:
        assert enrolled is not None
        request, raw = enrolled
        record = state.statuses().get(country)
        status = "active" if record is None else record[0]
        print(f"{country}  {request.name}: enrolled, {status}")
        if record is not None:
            print(f"  {status}          {record[2]} by {record[3]}: {record[1]}")
        current = state.current()
        listed = (
            None
            if current is None
            else next((n for n in current.nppos if n.country == country), None)
        )
        published = (
            "not yet"
            if listed is None or current is None
            else f"version {current.version}, as {listed.status}"
        )
        print(f"  published          {published}")
        for moved in state.endpoint_changes().get(country, []):
            when = format_time(moved.recorded)
            print(f"  endpoint changed   {when} by {moved.maintainer}, to")
            print(f"    {describe_endpoint_change(moved.change)}")
    _print_request(request)
    print(f"  encryption key     {_b64(request.encryption_key)}")
    print(f"  signing key        {_b64(request.signing_key)}")
    print(f"  request created    {format_time(request.created)}")
    print(f"  request sha256     {hashlib.sha256(raw).hexdigest()}")
    approvals = state.approvals(raw)
    print(f"  approvals          {len(approvals)} of {threshold}")
    for approval in approvals.values():
        print(f"    {approval.name} ({approval.key_id}) at {approval.time}")
    rotations = state.rotations().get(country, []) if enrolled is not None else []
    print(f"  key rotations      {len(rotations) or 'none'}")
    for number, rotation in enumerate(rotations, 1):
        print(f"    {number}. recorded by {rotation.maintainer}")
        _print_rotation(rotation, "       ")
    return 0


def _print_rotation(rotation: Rotation, indent: str) -> None:
    new = rotation.request
    print(f"{indent}new signing key id     {new.signing_key_id}")
    print(f"{indent}new encryption key id  {new.encryption_key_id}")
    print(f"{indent}new TLS pin            {new.tls_pin or 'none: the TLS key stays'}")
    print(f"{indent}new keys valid from    {format_time(rotation.valid_from)}")
    until = "as the keys before" if new.valid_until is None else format_time(new.valid_until)
    print(f"{indent}new keys valid until   {until}")
    print(f"{indent}old keys valid until   {format_time(rotation.old_until)}")


def _country(text: str) -> str:
    return check_country(text.strip().upper())


def _hub_line(hub: HubEntry | None) -> str:
    return "none" if hub is None else f"{hub.name} at {hub.endpoint} ({hub.tls_pins[0].pin})"


def _print_hub(request: HubRequest, indent: str = "  ") -> None:
    print(f"{indent}endpoint           {request.endpoint.url}")
    print(f"{indent}TLS pin            {request.tls_pin}")
    print(
        f"{indent}valid              {format_time(request.valid_from)} to"
        f" {format_time(request.valid_until)}"
    )


def _print_anchor(state: RegistryState) -> None:
    anchor = state.maintainers
    print(f"trust anchor for node operators: {state.root / 'maintainers' / MAINTAINERS_FILE}")
    print(f"  threshold {anchor.threshold} of {len(anchor.keys)} maintainer keys")
    # What operators confirm when they find the registry by discovery (node init --discover).
    print(f"  fingerprint  {maintainer_fingerprint(anchor)}")
    for key in anchor.keys:
        print(f"  maintainer {key.name}: key id {key.key_id}")
        print(f"    public key (base64) {_b64(key.public_key)}")
    print(f"  anchor JSON  {json.dumps(anchor.to_plain(), sort_keys=True)}")


def _print_request(request: EnrolmentRequest, indent: str = "  ") -> None:
    endpoint = request.endpoint.url if request.endpoint else "none (through the hub)"
    print(f"{indent}country            {request.country}")
    print(f"{indent}endpoint           {endpoint}")
    print(f"{indent}signing key id     {request.signing_key_id}")
    print(f"{indent}encryption key id  {request.encryption_key_id}")
    print(f"{indent}TLS pin            {request.tls_pin}")
    print(
        f"{indent}valid              {format_time(request.valid_from)} to"
        f" {format_time(request.valid_until)}"
    )


def _b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")
