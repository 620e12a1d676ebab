"""`ephyto registry ...`: set up a registry, enrol NPPOs, publish and serve the directory."""

from __future__ import annotations

import argparse
import base64
import getpass
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from node.cli.common import dir_argument
from node.codelists.lists import bundled
from node.directory import HubEntry
from node.hub.request import MAX_HUB_REQUEST_BYTES, HubRequest
from node.identity.enrolment import MAX_REQUEST_BYTES, EnrolmentRequest, format_time
from registry.publish import DEFAULT_VALIDITY, RegistryError, parse_duration
from registry.state import MAINTAINERS_FILE, RegistryState

DEFAULT_DIR = Path("ephyto-registry")


def add_parser(commands: Any) -> None:
    registry = commands.add_parser(
        "registry",
        help="run a registry: enrol NPPOs, publish and serve the signed directory",
        description="Maintain a registry: the maintainers' keys, the enrolled NPPOs and the "
        "signed directory that nodes fetch.",
    )
    sub = registry.add_subparsers(dest="registry_command", metavar="ACTION", required=True)

    init = _command(sub, "init", _init, "create a registry and its maintainer key")
    init.add_argument(
        "--threshold",
        type=int,
        default=1,
        metavar="N",
        help="maintainer signatures a directory needs (default and, for now, only: 1)",
    )
    init.add_argument(
        "--maintainer",
        default="maintainer-1",
        metavar="NAME",
        help="the maintainer's display name in the directory (default: maintainer-1)",
    )

    add = _command(
        sub, "add", _add, "verify an NPPO's enrolment request and enrol it (not yet published)"
    )
    add.add_argument("request", type=Path, metavar="REQUEST", help="enrolment-request.json")

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
        default=f"{DEFAULT_VALIDITY.days}d",
        metavar="DURATION",
        help="how long nodes may use this version: 7d, 36h, 90m (default: 7d); publish "
        "again well before it runs out",
    )

    serve = _command(sub, "serve", _serve, "serve the signed directory over HTTP")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=int, default=8400, help="port (default: 8400)")

    _command(sub, "show", _show, "show the trust anchor (maintainer keys) and what is enrolled")


def _command(sub: Any, name: str, func: Any, text: str) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=text, description=text + ".")
    dir_argument(parser, DEFAULT_DIR, "registry")
    parser.set_defaults(func=func)
    return parser


def _init(args: argparse.Namespace) -> int:
    state = RegistryState.init(
        args.directory,
        maintainer=args.maintainer,
        threshold=args.threshold,
        now=datetime.now(UTC),
        actor=_actor(),
    )
    print(f"created registry in {state.root}")
    print(f"  private key  {state.root / 'maintainers'}/<key id>.key (mode 0600)")
    _print_anchor(state)
    return 0


def _add(args: argparse.Namespace) -> int:
    state = RegistryState(args.directory)
    with args.request.open("rb") as f:
        raw = f.read(MAX_REQUEST_BYTES + 1)  # verify_request refuses what is larger
    request = state.enrol(raw, datetime.now(UTC), _actor())
    print(f"enrolled {request.country} ({request.name}); not published yet")
    _print_request(request)
    print(
        "confirm the signing key id with the NPPO by another channel (phone, signed letter)"
        " before you publish: the proofs show the keys belong together, not who sent them"
    )
    return 0


def _set_hub(args: argparse.Namespace) -> int:
    state = RegistryState(args.directory)
    with args.request.open("rb") as f:
        raw = f.read(MAX_HUB_REQUEST_BYTES + 1)  # verify_hub_request refuses what is larger
    request = state.set_hub(raw, datetime.now(UTC), _actor())
    print(f"recorded the hub {request.name}; not published yet")
    _print_hub(request)
    print(
        "confirm the TLS pin with the hub's operator by another channel before you publish:"
        " every NPPO's node will trust the hub by it"
    )
    return 0


def _publish(args: argparse.Namespace) -> int:
    state = RegistryState(args.directory)
    validity = parse_duration(args.expires_in)
    directory, _ = state.publish(
        datetime.now(UTC), _actor(), code_lists=bundled().versions(), validity=validity
    )
    countries = ", ".join(n.country for n in directory.nppos) or "none"
    print(f"published directory version {directory.version}")
    print(f"  NPPOs    {countries}")
    print(f"  hub      {_hub_line(directory.hub)}")
    print(f"  issued   {format_time(directory.issued)}")
    print(f"  expires  {format_time(directory.expires)} (publish again before then)")
    print(f"  file     {state.root / 'published' / f'{directory.version}.json'}")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from aiohttp import web

    from registry.web import create_registry_app

    state = RegistryState(args.directory)  # refuse to serve a directory that is no registry
    if not 0 < args.port < 65536:
        raise RegistryError(f"--port {args.port} is not a port (1-65535)")
    url = f"http://{args.host}:{args.port}"

    def ready(*_: object, **__: object) -> None:
        print(f"serving {state.root} at {url}/directory.json (Ctrl-C to stop)", flush=True)

    web.run_app(
        create_registry_app(state.root),
        host=args.host,
        port=args.port,
        print=ready,
        access_log=None,
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    state = RegistryState(args.directory)
    _print_anchor(state)
    enrolled = state.enrolled()
    print(f"enrolled NPPOs: {len(enrolled)}")
    for request, _ in enrolled.values():
        print(f"  {request.country}  {request.name}")
        _print_request(request, indent="      ")
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
    print(f"  NPPOs    {', '.join(sorted(listed)) or 'none'}")
    print(f"  hub      {_hub_line(current.hub)}")
    if pending := sorted(set(enrolled) - listed):
        print(f"  not yet published: {', '.join(pending)}")
    if hub is not None and (current.hub is None or current.hub.tls_pins[0].pin != hub.tls_pin):
        print("  the hub recorded is not published yet")
    return 0


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


def _actor() -> str:
    # Who ran the command, for the audit log; a later release signs it with their key.
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
