"""`ephyto cert ...`: validate, render, create and show certificates."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from node.certificate import safe_xml
from node.certificate.file_kind import file_kind
from node.certificate.findings import Area, Finding, Level
from node.certificate.jsonmodel import certificate_from_json
from node.certificate.model import Certificate
from node.certificate.safe_xml import DEFAULT_LIMITS, XmlLimits
from node.certificate.validate import Report, Validator
from node.certificate.xml_build import to_xml_bytes
from node.certificate.xml_parse import certificate_from_tree
from node.codelists.directory import load_directory
from node.codelists.lists import bundled
from node.errors import InputError
from node.samples import SAMPLES, sample_model_bytes


def add_parser(commands: Any) -> None:
    cert = commands.add_parser(
        "cert",
        help="validate, render, create and show phytosanitary certificates",
        description="Work with ePhyto certificates (UN/CEFACT SPSCertificate XML).",
    )
    sub = cert.add_subparsers(dest="cert_command", metavar="ACTION", required=True)

    validate = sub.add_parser(
        "validate",
        help="validate ePhyto XML files",
        description="Validate ePhyto XML in four layers (well-formed and safe, schema, ISPM 12 "
        "mandatory content, harmonised codes). Exit 0 if every file is valid, 1 if any is not.",
    )
    validate.add_argument("files", nargs="+", type=Path, metavar="FILE")
    validate.add_argument("--json", action="store_true", help="print a JSON report")
    _validation_options(validate)
    validate.set_defaults(func=_validate)

    pdf = sub.add_parser(
        "pdf",
        help="render a certificate as PDF",
        description="Render a certificate (ePhyto XML or model JSON) in the layout of the "
        "ISPM 12 model certificate.",
    )
    pdf.add_argument("file", type=Path, metavar="FILE")
    _output_options(pdf, "OUT.pdf")
    pdf.set_defaults(func=_pdf)

    new = sub.add_parser(
        "new",
        help="build ePhyto XML from the JSON model",
        description="Build UN/CEFACT SPSCertificate XML from the JSON model "
        "(docs/certificate-json.md). Nothing is written unless the result is valid.",
    )
    new.add_argument("--json", type=Path, required=True, metavar="MODEL.json", dest="model")
    _output_options(new, "OUT.xml")
    _validation_options(new)
    new.set_defaults(func=_new)

    show = sub.add_parser(
        "show",
        help="print a readable summary of a certificate",
        description="Print a certificate (ePhyto XML or model JSON) box by box, as ISPM 12 "
        "lays it out.",
    )
    show.add_argument("file", type=Path, metavar="FILE")
    show.set_defaults(func=_show)

    sample = sub.add_parser(
        "sample",
        help="write a bundled sample certificate",
        description="Write one of the bundled fictitious sample certificates as ePhyto XML "
        "(or its JSON model with --model).",
    )
    sample.add_argument("name", nargs="?", choices=sorted(SAMPLES), default="phyto")
    _output_options(sample, "OUT")
    sample.add_argument("--model", action="store_true", help="write the JSON model instead")
    sample.set_defaults(func=_sample)


def _output_options(parser: argparse.ArgumentParser, metavar: str) -> None:
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        metavar=metavar,
        help="the file to write; an existing file is refused and left as it is, unless --force",
    )
    parser.add_argument(
        "--force", action="store_true", help="overwrite the output file if it exists"
    )


def _validation_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--schema-dir",
        type=Path,
        metavar="DIR",
        default=_env_path("EPHYTO_SCHEMA_DIR"),
        help="validate against an official UN/CEFACT XSD set in DIR (containing "
        "data/standard/SPSCertificate_17p0.xsd) instead of the bundled schema "
        "(default: $EPHYTO_SCHEMA_DIR)",
    )
    parser.add_argument(
        "--codelists-dir",
        type=Path,
        metavar="DIR",
        default=_env_path("EPHYTO_CODELISTS_DIR"),
        help="apply newer code lists from DIR (*.json) over the bundled ones "
        "(default: $EPHYTO_CODELISTS_DIR)",
    )
    parser.add_argument(
        "--max-size",
        type=int,
        default=DEFAULT_LIMITS.max_bytes,
        metavar="BYTES",
        help=f"refuse documents larger than this (default {DEFAULT_LIMITS.max_bytes})",
    )


def _env_path(name: str) -> Path | None:
    """A directory setting from the environment, so an operator sets it once."""
    value = os.environ.get(name)
    return Path(value) if value else None


def _validator(args: argparse.Namespace) -> Validator:
    lists = bundled()
    if args.codelists_dir is not None:
        lists = load_directory(args.codelists_dir, lists)
    limits = XmlLimits(max_bytes=args.max_size)
    return Validator.default(schema_dir=args.schema_dir, codelists=lists, limits=limits)


def read_limited(path: Path, limit: int) -> bytes:
    """The file's bytes, refusing (without reading it all) a file over `limit` bytes."""
    with path.open("rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise InputError(f"{path}: over the size limit of {limit} bytes")
    return data


def _validate(args: argparse.Namespace) -> int:
    validator = _validator(args)
    reports: list[tuple[Path, Report]] = [
        (path, _validate_file(validator, path, args.max_size)) for path in args.files
    ]
    if args.json:
        out = [
            {"file": str(path), **report.to_dict(), "placeholder_lists": report.placeholder_lists}
            for path, report in reports
        ]
        print(json.dumps(out if len(out) > 1 else out[0], indent=2, ensure_ascii=False))
    else:
        for path, report in reports:
            verdict = "valid" if report.valid else "INVALID"
            print(f"{path}: {verdict} ({len(report.findings)} findings)")
            for finding in report.findings:
                print(f"{path}:{finding}")
            if report.placeholder_lists:
                print(
                    f"{path}: note: some codes passed only against placeholder entries, not an "
                    f"official edition, of: {', '.join(report.placeholder_lists)} (sync or "
                    "import the official lists: docs/operations.md, Code lists)"
                )
    return 0 if all(report.valid for _, report in reports) else 1


def _validate_file(validator: Validator, path: Path, max_size: int) -> Report:
    """The file's report; a file that is plainly no ePhyto (a PDF, an image) gets one finding
    saying so, as an unreadable document does, instead of the XML parser's complaint."""
    data = read_limited(path, max_size)
    kind = file_kind(data)
    if kind is not None:
        message = f"this file is {kind}, not an ePhyto: give {_XML_INSTEAD}"
        return Report((Finding(Level.SEVERE, Area.SCHEMA, message),))
    return validator.validate(data)


def _new(args: argparse.Namespace) -> int:
    _refuse_existing(args.output, force=args.force)  # before the work, and its findings
    cert = _read_model(args.model, args.max_size)
    data = to_xml_bytes(cert)
    report = _validator(args).validate(data)
    for finding in report.findings:
        print(f"{args.output}:{finding}", file=sys.stderr)
    if not report.valid:
        print(
            f"ephyto: error: {args.model} does not make a valid certificate; "
            f"{args.output} not written",
            file=sys.stderr,
        )
        return 1
    _write_output(args.output, data, force=args.force)
    print(f"wrote {args.output} ({len(data)} bytes, certificate {cert.number})")
    return 0


def _pdf(args: argparse.Namespace) -> int:
    from node.render.pdf import render_pdf  # fonts are heavy: load only for this command

    _refuse_existing(args.output, force=args.force)
    cert = read_certificate(args.file)
    data = render_pdf(cert)
    _write_output(args.output, data, force=args.force)
    print(f"wrote {args.output} ({len(data)} bytes, certificate {cert.number})")
    return 0


def _show(args: argparse.Namespace) -> int:
    from node.certificate.ispm12 import ispm12_view, sections

    cert = read_certificate(args.file)
    for title, rows in sections(ispm12_view(cert)):
        print(f"== {title}")
        width = max((len(label) for label, _ in rows), default=0)
        for label, value in rows:
            lines = value.splitlines() or [""]
            print(f"  {label.ljust(width)}  {lines[0]}")
            for more in lines[1:]:
                print(f"  {' ' * width}  {more}")
    return 0


def _sample(args: argparse.Namespace) -> int:
    _refuse_existing(args.output, force=args.force)
    model = sample_model_bytes(args.name)
    data = model if args.model else to_xml_bytes(certificate_from_json(model))
    _write_output(args.output, data, force=args.force)
    print(f"wrote {args.output} (bundled sample '{args.name}')")
    return 0


def read_certificate(path: Path) -> Certificate:
    """A certificate from ePhyto XML or the JSON model, told apart by the first byte."""
    data = read_limited(path, DEFAULT_LIMITS.max_bytes)
    kind = file_kind(data)
    if kind is not None:
        raise InputError(f"{path} is {kind}, not an ePhyto: give {_XML_OR_MODEL_INSTEAD}")
    try:
        if data.lstrip()[:1] == b"{":
            return certificate_from_json(data)
        return certificate_from_tree(safe_xml.parse(data))
    except InputError as e:
        raise InputError(f"{path}: {e}") from None


# What to give instead of a file that is no ePhyto, by what the command reads.
_XML_INSTEAD = (
    "the ePhyto XML (UN/CEFACT SPSCertificate); `ephyto cert new` makes it from the JSON model"
)
_XML_OR_MODEL_INSTEAD = "the ePhyto XML (UN/CEFACT SPSCertificate) or its JSON model"
_MODEL_INSTEAD = "the certificate's JSON model (docs/certificate-json.md)"


def _read_model(path: Path, limit: int) -> Certificate:
    """A certificate from the JSON model in `path`; InputError naming the file if it is not."""
    data = read_limited(path, limit)
    kind = file_kind(data)
    if kind is not None:
        raise InputError(f"{path} is {kind}, not a JSON model: give {_MODEL_INSTEAD}")
    if data.lstrip()[:1] == b"<":
        raise InputError(
            f"{path} is XML, not a JSON model: give {_MODEL_INSTEAD} "
            "(`ephyto cert validate` checks ePhyto XML)"
        )
    try:
        return certificate_from_json(data)
    except InputError as e:
        raise InputError(f"{path}: {e}") from None


def _refuse_existing(path: Path, *, force: bool) -> None:
    """Refuse an output file that is already there, unless the user said --force."""
    if not force and (path.exists() or path.is_symlink()):
        raise InputError(_exists_message(path))


def _write_output(path: Path, data: bytes, *, force: bool) -> None:
    """Write the user's output file; without `force` only as a new file, so a file that
    appeared since the check (or a planted symlink) is refused, not overwritten."""
    if force:
        path.write_bytes(data)
        return
    try:
        with path.open("xb") as f:
            f.write(data)
    except FileExistsError:
        raise InputError(_exists_message(path)) from None


def _exists_message(path: Path) -> str:
    return f"{path} exists: give a new file name, or --force to overwrite it (nothing was written)"
