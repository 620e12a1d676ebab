"""`ephyto hub ...`: create a hub's identity, point it at a registry, run it, keep accounts."""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from node.cli import migrate
from node.cli.config_flags import (
    ANCHOR_FILE,
    add_hub_flags,
    apply_common,
    flags_given,
    registry_flags,
    with_registry,
    write_configured,
)
from node.clock import SystemClock
from node.commandline import dir_argument, run_until_signalled
from node.errors import InputError
from node.hub.accounts import (
    AccountPolicy,
    LedgerEntry,
    Plan,
    Prepaid,
    Tier,
    format_minor,
    parse_major,
    statement_csv,
)
from node.hub.config import (
    CONFIG_FILE,
    HubConfig,
    dump_hub_config,
    load_hub_config,
    parse_hub_config,
)
from node.hub.setup import init_hub
from node.ippc.names import SERVICE_PATH

if TYPE_CHECKING:
    from node.hub.store import HubStore

DEFAULT_DIR = Path("ephyto-hub")
T = TypeVar("T")


def add_parser(commands: Any) -> None:
    hub = commands.add_parser(
        "hub",
        help="run a hub: an IPPC DeliveryService (SOAP) relay for the NPPOs of the directory",
        description="Create, configure and run a hub that relays envelopes between NPPOs "
        "over the IPPC ePhyto Hub's SOAP contract, and keep its NPPOs' accounts.",
    )
    sub = hub.add_subparsers(dest="hub_command", metavar="ACTION", required=True)

    init = _command(
        sub,
        "init",
        _init,
        "create the hub's TLS key and certificate, hub.toml and hub-request.json",
        "Create the hub's TLS key (ECDSA P-256, mode 0600) with a self-signed certificate "
        "for its endpoint, its config (hub.toml) and hub-request.json, which the registry "
        "maintainer records with `ephyto registry set-hub`. Nothing is ever overwritten.",
    )
    init.add_argument("--name", required=True, metavar="NAME", help="the hub's name")
    init.add_argument(
        "--endpoint",
        required=True,
        metavar="https://HOST:PORT",
        help="where NPPOs reach the hub; the SOAP service is at /hub/DeliveryService",
    )

    configure = _command(
        sub,
        "configure",
        _configure,
        "set the registry URL and the maintainers' trust anchor, and other settings",
        "Point the hub at its registry: the URL of the signed directory and the "
        f"maintainers' trust anchor, copied into the hub directory as {ANCHOR_FILE}. The "
        "other flags change one setting of hub.toml each, with or without --registry; a "
        "bad value changes nothing.",
    )
    configure.add_argument(
        "--registry", metavar="URL", help="the URL of the registry's directory.json"
    )
    configure.add_argument("--anchor", type=Path, metavar="FILE", help="the maintainers' JSON file")
    add_hub_flags(configure)

    serve = _command(
        sub,
        "serve",
        _serve,
        "run the hub: the SOAP endpoint over mutual TLS, directory refresh, expiry",
        "Run the hub until SIGINT or SIGTERM: POST /hub/DeliveryService (SOAP 1.1) and "
        "GET /health over TLS that requires a client certificate of an active NPPO of the "
        "directory. Prints one line once it listens; logs go to stderr.",
    )
    serve.add_argument("-v", "--verbose", action="store_true", help="log debugging detail as well")

    account = sub.add_parser(
        "account",
        help="NPPOs' accounts: policy, credit, show, statement",
        description="Keep the NPPOs' accounts at this hub. Amounts are in the account's "
        "currency, in major units (12.50).",
    )
    accounts = account.add_subparsers(dest="account_command", metavar="ACTION", required=True)
    policy = _command(
        accounts,
        "policy",
        _policy,
        "open an NPPO's account with a policy, or change its policy",
        "Set how an NPPO pays: a flat fee per envelope (--prepaid FEE), or a plan with "
        "envelopes included per period and prices per tier beyond (--plan, --included, "
        "--tier). An envelope that would take the balance below -OVERDRAFT is refused.",
    )
    policy.add_argument("nppo", metavar="NPPO", help="the NPPO's country code, e.g. KE")
    pricing = policy.add_mutually_exclusive_group(required=True)
    pricing.add_argument("--prepaid", metavar="FEE", help="a flat fee per envelope")
    pricing.add_argument("--plan", choices=("monthly", "annual"), help="a plan with this period")
    policy.add_argument(
        "--included", type=int, default=0, metavar="N", help="plan: envelopes included per period"
    )
    policy.add_argument(
        "--tier",
        action="append",
        default=[],
        metavar="UPTO:PRICE",
        help="plan: PRICE per envelope up to the UPTO-th of the period (repeatable, "
        "ascending; leave UPTO empty for no end, e.g. ':0.40'; past the last bounded tier "
        "envelopes are refused)",
    )
    policy.add_argument("--currency", required=True, metavar="CODE", help="ISO 4217, e.g. EUR")
    policy.add_argument(
        "--overdraft", default="0", metavar="AMOUNT", help="how far below zero (default 0)"
    )
    credit = _command(accounts, "credit", _credit, "credit a payment received to an NPPO's account")
    credit.add_argument("nppo", metavar="NPPO", help="the NPPO's country code")
    credit.add_argument("amount", metavar="AMOUNT", help="the amount, e.g. 250.00")
    credit.add_argument("--note", default="", help="a note for the statement")
    show = _command(accounts, "show", _show, "show an NPPO's policy and balance")
    show.add_argument("nppo", metavar="NPPO", help="the NPPO's country code")
    statement = _command(accounts, "statement", _statement, "an NPPO's ledger for a period")
    statement.add_argument("nppo", metavar="NPPO", help="the NPPO's country code")
    statement.add_argument(
        "--since", metavar="DATE", help="first day, YYYY-MM-DD UTC (default: this month's first)"
    )
    statement.add_argument(
        "--until", metavar="DATE", help="day after the last, YYYY-MM-DD UTC (default: now)"
    )
    statement.add_argument("--csv", action="store_true", help="CSV (RFC 4180) for spreadsheets")
    migrate.add_hub_parser(sub, DEFAULT_DIR)


def _command(
    sub: Any, name: str, func: Callable[[argparse.Namespace], int], text: str, more: str = ""
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(
        name, help=text, description=more or text + "."
    )
    dir_argument(parser, DEFAULT_DIR, "hub")
    parser.set_defaults(func=func)
    return parser


def _init(args: argparse.Namespace) -> int:
    result = init_hub(args.directory, name=args.name, endpoint=args.endpoint, now=datetime.now(UTC))
    print(f"created hub identity in {result.directory}")
    print(f"  config           {result.config}")
    print(f"  private key      {result.tls_key} (mode 0600)")
    print(f"  TLS certificate  {result.certificate}")
    print(f"  hub request      {result.request}")
    print(f"TLS pin            {result.tls_pin}")
    print(
        f"next: send {result.request} to the registry maintainer (`ephyto registry set-hub`), "
        "confirm the TLS pin to them by another channel, then run `ephyto hub configure`"
    )
    return 0


def _configure(args: argparse.Namespace) -> int:
    if not (registry_flags(args) or flags_given(args, node=False)):
        raise InputError("give --registry URL and --anchor FILE, or a setting to change")
    path = args.directory / CONFIG_FILE
    config = apply_common(load_hub_config(path), args)
    config, anchor = with_registry(config, args)
    text = dump_hub_config(config)
    parse_hub_config(text, source=str(path), directory=args.directory)  # what is written loads
    write_configured(args.directory, path, text, anchor, args.registry)
    print(f"  listens on    {config.listen_host}:{config.listen_port} (mutual TLS)")
    if config.metrics_listen is not None:
        print(f"  metrics       {config.metrics_listen}")
    print(f"next: `ephyto hub serve --dir {args.directory}`")
    return 0


def _serve(args: argparse.Namespace) -> int:
    from node.hub.service import HubListening, run_hub  # aiohttp, APScheduler: load on use

    config = load_hub_config(args.directory / CONFIG_FILE)

    def ready(listening: HubListening) -> None:
        print(f"hub {listening.name} ready: {listening.url}{SERVICE_PATH}", flush=True)
        if listening.metrics_url is not None:  # a line of its own: scripts read the one above
            print(f"hub {listening.name} metrics: {listening.metrics_url},"
                  f" ready {listening.ready_url}", flush=True)  # fmt: skip

    return run_until_signalled(
        lambda stop: run_hub(config, clock=SystemClock(), stop=stop, ready=ready),
        verbose=args.verbose,
        log_format=config.log_format,
    )


def _policy(args: argparse.Namespace) -> int:
    currency = args.currency
    pricing: Prepaid | Plan
    if args.prepaid is not None:
        if args.included or args.tier:
            raise InputError("--included and --tier are for --plan, not --prepaid")
        pricing = Prepaid(parse_major(args.prepaid, currency))
    else:
        pricing = Plan(args.plan, args.included, tuple(_tier(t, currency) for t in args.tier))
    policy = AccountPolicy(currency, pricing, parse_major(args.overdraft, currency))
    account = _with_store(args, lambda store: store.set_policy(args.nppo, policy, _now()))
    print(f"{account.nppo}: {_describe(policy)}")
    print(f"  balance  {format_minor(account.balance, policy.currency)} {policy.currency}")
    return 0


def _credit(args: argparse.Namespace) -> int:
    async def credit(store: HubStore) -> LedgerEntry:
        account = await store.account(args.nppo)
        amount = parse_major(args.amount, account.policy.currency)
        return await store.credit(args.nppo, amount, _now(), args.note)

    entry = _with_store(args, credit)
    print(
        f"{entry.nppo}: credited {format_minor(entry.amount, entry.currency)} {entry.currency};"
        f" balance {format_minor(entry.balance_after, entry.currency)} {entry.currency}"
    )
    return 0


def _show(args: argparse.Namespace) -> int:
    account = _with_store(args, lambda store: store.account(args.nppo))
    currency = account.policy.currency
    print(f"{account.nppo}: {_describe(account.policy)}")
    print(f"  balance  {format_minor(account.balance, currency)} {currency}")
    print(f"  period   {account.period}: {account.used} envelope(s) charged")
    return 0


def _statement(args: argparse.Namespace) -> int:
    now = _now()
    since = (
        _date(args.since, "--since")
        if args.since
        else now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    )
    until = _date(args.until, "--until") if args.until else now + timedelta(seconds=1)
    if until <= since:
        raise InputError("--until must be after --since")
    statement = _with_store(args, lambda store: store.statement(args.nppo, since, until))
    if args.csv:
        sys.stdout.write(statement_csv(statement.entries))
        return 0
    c = statement.currency
    print(f"{statement.nppo}: statement {since.date()} to {until.date()} ({c})")
    print(f"  opening balance  {format_minor(statement.opening_balance, c)}")
    for e in statement.entries:
        at = e.at.strftime("%Y-%m-%d %H:%M:%S")
        print(f"  {at}  {e.kind:<6} {format_minor(e.amount, c):>12}  {e.reference or e.note}")
    print(f"  closing balance  {format_minor(statement.closing_balance, c)}")
    return 0


def _with_store(args: argparse.Namespace, work: Callable[[HubStore], Awaitable[T]]) -> T:
    """Run `work` on the hub's store (a new one created, one at another schema revision
    refused), closing it afterwards."""
    from node.hub.records import HubSettings
    from node.hub.store import HubStore  # SQLAlchemy: load on use

    config: HubConfig = load_hub_config(args.directory / CONFIG_FILE)

    async def run() -> T:
        store = HubStore.open(
            config.store_url(),
            HubSettings(payer=config.payer, max_content_bytes=config.max_content_bytes),
        )
        try:
            await store.ensure_schema(args.directory)
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(run())


def _tier(text: str, currency: str) -> Tier:
    up_to, sep, price = text.partition(":")
    if not sep or (up_to and not up_to.isdigit()):
        raise InputError(f"--tier {text!r}: expected UPTO:PRICE, e.g. 1000:0.50 or :0.40")
    return Tier(int(up_to) if up_to else None, parse_major(price, currency))


def _describe(policy: AccountPolicy) -> str:
    c = policy.currency
    overdraft = f", overdraft {format_minor(policy.overdraft, c)} {c}"
    pricing = policy.pricing
    if isinstance(pricing, Prepaid):
        return f"prepaid, {format_minor(pricing.fee, c)} {c} per envelope{overdraft}"
    tiers = ", ".join(
        f"{'up to ' + str(t.up_to) if t.up_to else 'beyond'} at {format_minor(t.price, c)}"
        for t in pricing.tiers
    )
    return (
        f"{pricing.period} plan, {pricing.included} included"
        + (f", then {tiers} {c}" if tiers else "")
        + overdraft
    )


def _date(text: str, option: str) -> datetime:
    try:
        day = datetime.strptime(text, "%Y-%m-%d").date()
    except ValueError:
        raise InputError(f"{option} {text!r}: expected a date like 2026-05-01") from None
    return datetime.combine(day, time(), tzinfo=UTC)


def _now() -> datetime:
    return SystemClock().now()
