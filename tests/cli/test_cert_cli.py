"""The `ephyto` command, run as users run it: in a subprocess."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import shared_dir, shared_samples
from tests.ephyto_cli import ephyto


def _no_traceback(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr
    assert "Traceback" not in result.stdout


@pytest.fixture(scope="module")
def sample_xml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("cli") / "phyto.xml"
    result = ephyto("cert", "sample", "phyto", "-o", out)
    assert result.returncode == 0, result.stderr
    return out


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["cert"],
        ["cert", "validate"],
        ["cert", "pdf"],
        ["cert", "new"],
        ["cert", "show"],
        ["cert", "sample"],
        ["codelists"],
        ["bench"],
        ["bench", "cert"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = ephyto(*command, "--help")
    assert result.returncode == 0
    assert "usage: ephyto" in result.stdout


def test_validate_valid_sample_exits_0(sample_xml: Path) -> None:
    result = ephyto("cert", "validate", sample_xml)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"{sample_xml}: valid" in result.stdout


def test_validate_invalid_exits_1_with_one_finding_per_line(
    sample_xml: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.xml"
    text = sample_xml.read_text(encoding="utf-8")
    bad.write_text(
        text.replace("<ram:ID>CN</ram:ID>", "<ram:ID>XX</ram:ID>", 1).replace(
            "<ram:ScientificName>Solanum tuberosum</ram:ScientificName>", ""
        ),
        encoding="utf-8",
    )
    result = ephyto("cert", "validate", sample_xml, bad)
    assert result.returncode == 1
    lines = [line for line in result.stdout.splitlines() if line.startswith(f"{bad}:")]
    # The placeholder note (issue 13) follows the findings and is not one of them.
    notes = [line for line in lines if line.startswith(f"{bad}: note: ")]
    assert len(notes) == 1 and lines[-1] == notes[0]
    lines = lines[:-1]
    assert lines[0] == f"{bad}: INVALID ({len(lines) - 1} findings)"
    assert any("SEVERE Mapping line" in line and "'XX'" in line for line in lines)
    assert any(
        "SEVERE MandatoryElements line" in line and "botanical name" in line for line in lines
    )
    _no_traceback(result)


def test_validate_json_report(sample_xml: Path, tmp_path: Path) -> None:
    hostile = tmp_path / "laughs.xml"
    hostile.write_bytes(b'<!DOCTYPE x [<!ENTITY a "a">]><x>&a;</x>')
    result = ephyto("cert", "validate", "--json", sample_xml, hostile)
    assert result.returncode == 1
    reports = json.loads(result.stdout)
    assert [r["valid"] for r in reports] == [True, False]
    assert reports[1]["findings"][0]["level"] == "SEVERE"
    assert "DTD" in reports[1]["findings"][0]["message"]


def test_validate_missing_file_is_one_clear_line(tmp_path: Path) -> None:
    result = ephyto("cert", "validate", tmp_path / "nope.xml")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "nope.xml" in result.stderr and "No such file" in result.stderr
    _no_traceback(result)


def test_validate_against_an_xsd_set_on_disk(sample_xml: Path) -> None:
    intercom = shared_dir() / "xsd" / "nonofficial-intercom-estandar"
    result = ephyto("cert", "validate", "--schema-dir", intercom, sample_xml, *shared_samples())
    assert result.returncode == 0, result.stdout
    official = shared_dir() / "xsd" / "uncefact-D17A"
    result = ephyto("cert", "validate", "--schema-dir", official, sample_xml)
    assert result.returncode == 2
    assert "ReusableAggregateBusinessInformationEntity_21p0.xsd" in result.stderr
    _no_traceback(result)


def test_new_builds_xml_from_the_json_model(tmp_path: Path) -> None:
    model = tmp_path / "model.json"
    assert ephyto("cert", "sample", "reexport", "--model", "-o", model).returncode == 0
    out = tmp_path / "out.xml"
    result = ephyto("cert", "new", "--json", model, "-o", out)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes().startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert ephyto("cert", "validate", out).returncode == 0


def test_new_refuses_bad_model_and_writes_nothing(tmp_path: Path) -> None:
    model = tmp_path / "model.json"
    assert ephyto("cert", "sample", "phyto", "--model", "-o", model).returncode == 0
    data = json.loads(model.read_text(encoding="utf-8"))
    data["consignment"]["import_country"]["id"] = "ZZ"
    model.write_text(json.dumps(data), encoding="utf-8")
    out = tmp_path / "out.xml"
    result = ephyto("cert", "new", "--json", model, "-o", out)
    assert result.returncode == 1
    assert "unknown country code 'ZZ'" in result.stderr
    assert not out.exists()
    data["consignment"]["items"] = "none"
    model.write_text(json.dumps(data), encoding="utf-8")
    result = ephyto("cert", "new", "--json", model, "-o", out)
    assert result.returncode == 2
    assert "$.consignment.items: expected a list" in result.stderr
    assert not out.exists()
    _no_traceback(result)


def test_show_prints_the_boxes(sample_xml: Path) -> None:
    result = ephyto("cert", "show", sample_xml)
    assert result.returncode == 0, result.stderr
    assert "NL-2026-0001234" in result.stdout
    assert "上海花卉进出口有限公司" in result.stdout
    assert "Tulipa gesneriana" in result.stdout


def test_show_refuses_hostile_xml_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_bytes(b"\x00\x01 not xml")
    result = ephyto("cert", "show", bad)
    assert result.returncode == 2
    assert "bad.xml" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    _no_traceback(result)


def test_pdf_is_written(sample_xml: Path, tmp_path: Path) -> None:
    out = tmp_path / "cert.pdf"
    result = ephyto("cert", "pdf", sample_xml, "-o", out)
    assert result.returncode == 0, result.stderr
    assert out.read_bytes().startswith(b"%PDF")
    if shutil.which("pdftotext"):
        text = subprocess.run(["pdftotext", out, "-"], capture_output=True, text=True).stdout
        assert "NL-2026-0001234" in text


def test_codelists_list_and_update_path(tmp_path: Path) -> None:
    result = ephyto("codelists", "list")
    assert result.returncode == 0
    assert "countries" in result.stdout and "status_codes" in result.stdout
    listing = ephyto("codelists", "show", "status_codes").stdout
    assert "40\t" in listing and "44\t" in listing
    newer = {
        "list": "status_codes",
        "version": "9999",
        "source": "test",
        "codes": {"70": "Issued", "40": "Withdrawn", "99": "Invented for the test"},
    }
    new_file = tmp_path / "status.json"
    new_file.write_text(json.dumps(newer), encoding="utf-8")
    lists_dir = tmp_path / "lists"
    result = ephyto("codelists", "import", new_file, "--dir", lists_dir)
    assert result.returncode == 0, result.stderr
    assert "99\t" in ephyto("codelists", "show", "status_codes", "--dir", lists_dir).stdout
    again = ephyto("codelists", "import", new_file, "--dir", lists_dir)
    assert again.returncode == 2
    assert "9999" in again.stderr
    _no_traceback(again)


def test_bench_cert_prints_figures() -> None:
    result = ephyto("bench", "cert", "--seconds", "0.05")
    assert result.returncode == 0, result.stderr
    assert "parse + full validation" in result.stdout
    assert "build (model to XML bytes)" in result.stdout


def test_validate_refuses_a_file_over_the_size_limit(sample_xml: Path) -> None:
    result = ephyto("cert", "validate", "--max-size", "1000", sample_xml)
    assert result.returncode == 2
    assert "over the size limit of 1000 bytes" in result.stderr
    _no_traceback(result)


def test_a_newer_code_list_changes_the_verdict(sample_xml: Path, tmp_path: Path) -> None:
    """The update path end to end: an unknown unit is SEVERE until a newer list has it."""
    cert = tmp_path / "new-unit.xml"
    text = sample_xml.read_text(encoding="utf-8")
    cert.write_text(text.replace('unitCode="KGM"', 'unitCode="XKG"', 1), encoding="utf-8")
    before = ephyto("cert", "validate", cert)
    assert before.returncode == 1
    assert "unknown unit code 'XKG'" in before.stdout
    listing = ephyto("codelists", "show", "units").stdout.splitlines()
    # Comment lines (the list, its notice) start with "#"; the rest are code<TAB>label.
    codes = dict(line.split("\t", 1) for line in listing if not line.startswith("#"))
    newer = {"list": "units", "version": "9999", "source": "test", "codes": {**codes, "XKG": "x"}}
    newer_file = tmp_path / "units.json"
    newer_file.write_text(json.dumps(newer), encoding="utf-8")
    lists = tmp_path / "lists"
    assert ephyto("codelists", "import", newer_file, "--dir", lists).returncode == 0
    after = ephyto("cert", "validate", "--codelists-dir", lists, cert)
    assert after.returncode == 0, after.stdout


def test_schema_dir_setting_from_the_environment(sample_xml: Path, tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "ephyto"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "node.cli.main"]
    env = {**os.environ, "EPHYTO_SCHEMA_DIR": str(tmp_path / "no-such-set")}
    result = subprocess.run(
        [*command, "cert", "validate", str(sample_xml)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 2
    assert "no-such-set" in result.stderr
