"""`ephyto codelists import` of upstream files and `ephyto codelists ports`, run in-process
(the command tree's `main`), and once as an operator runs it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from node.cli.main import main
from node.codelists.lists import bundled
from node.codelists.locations import ASSET_NAME, Locations
from registry.codelists import import_code_list, kept_lists
from registry.state import RegistryState
from tests.ephyto_cli import ephyto

REC20 = """status,code,name,description,level_category,symbol,conversion_factor
,KGM,kilogram,,1,kg,
,XKG,test unit of the new edition,,2,,
X,GK,gram per kilogram,,3.1,,
D,HAR,hectare,,1S,ha,
"""
GEOAPIFY = """locode,country,location,name,nameWoDiacritics,subdivision,status,function,iata
NLRTM,NL,RTM,Rotterdam,Rotterdam,ZH,AF,12345---,
XXNEW,XX,NEW,Nieuwe Haven,Nieuwe Haven,,RL,1-------,
"""


def _run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def test_a_new_rec20_edition_is_imported_not_hand_edited(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    csv_file, lists = tmp_path / "rec20_Rev18.csv", tmp_path / "lists"
    csv_file.write_text(REC20, encoding="utf-8")
    code, _, err = _run(capsys, "codelists", "import", csv_file, "--dir", lists)
    assert code == 2 and "give --version" in err
    code, out, err = _run(
        capsys, "codelists", "import", csv_file, "--dir", lists,
        "--version", "2100.18", "--edition", "Revision 18 (2023)",
    )  # fmt: skip
    assert code == 0, err
    assert "installed units version 2100.18 (3 codes, 1 deleted)" in out
    _, shown, _ = _run(capsys, "codelists", "show", "units", "--dir", lists)
    assert "GK\tgram per kilogram\t[deleted in Revision 18 (2023) or before]" in shown
    assert "HAR\thectare\t[deprecated in Revision 18 (2023) or before]" in shown
    # The same version again, or an older one: refused, nothing changes.
    code, _, err = _run(
        capsys, "codelists", "import", csv_file, "--dir", lists, "--version", "2100.18"
    )
    assert code == 2 and "not newer than the installed version 2100.18" in err

    # What import writes, the registry publishes (registry codelists import).
    state = RegistryState.init(
        tmp_path / "reg", maintainer="m1", threshold=1, now=datetime(2026, 12, 7, tzinfo=UTC),
        actor="test",
    )  # fmt: skip
    data = (lists / "units.json").read_bytes()
    import_code_list(state, data, datetime(2026, 12, 7, tzinfo=UTC), "test")
    assert kept_lists(state.root)["units"].code_list.version == "2100.18"


def test_the_bundled_units_fit_the_registry(tmp_path: Path) -> None:
    """The biggest bundled list, at a newer version, is what a maintainer imports."""
    doc = json.loads(bundled().get("units").to_json_bytes())
    doc["version"] = "2100.17"
    data = json.dumps(doc, ensure_ascii=False, indent=1).encode()
    state = RegistryState.init(
        tmp_path / "reg", maintainer="m1", threshold=1, now=datetime(2026, 12, 7, tzinfo=UTC),
        actor="test",
    )  # fmt: skip
    kept = import_code_list(state, data, datetime(2026, 12, 7, tzinfo=UTC), "test")
    assert len(kept.code_list.deleted) == 309


def test_formats_that_the_first_line_cannot_tell_need_format(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec28 = tmp_path / "rec28.csv"
    rec28.write_text("code,name\n31,Truck\n", encoding="utf-8")
    lists = tmp_path / "lists"
    code, _, err = _run(capsys, "codelists", "import", rec28, "--dir", lists, "--version", "3000")
    assert code == 2 and "give --format" in err
    code, out, err = _run(
        capsys, "codelists", "import", rec28, "--dir", lists, "--version", "3000",
        "--format", "rec28",
    )  # fmt: skip
    assert code == 0, err
    assert "installed transport_means version 3000 (1 codes)" in out
    code, _, err = _run(
        capsys, "codelists", "import", rec28, rec28, "--dir", lists, "--format", "rec28"
    )
    assert code == 2 and "give one FILE" in err


def test_a_un_locode_import_replaces_the_locations_in_the_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    part, lists = tmp_path / "code-list.csv", tmp_path / "lists"
    part.write_text(GEOAPIFY, encoding="utf-8")
    code, out, err = _run(
        capsys, "codelists", "import", part, "--dir", lists, "--version", "2100.1"
    )
    assert code == 0, err
    assert "installed UN/LOCODE locations version 2100.1 (2 with a transport function)" in out
    assert len(Locations.from_asset_bytes((lists / ASSET_NAME).read_bytes())) == 2
    code, out, _ = _run(capsys, "codelists", "ports", "nieuwe", "--dir", lists, "--json")
    assert code == 0
    assert [p["code"] for p in json.loads(out)] == ["XXNEW"]
    code, _, err = _run(capsys, "codelists", "import", part, "--dir", lists, "--version", "2000")
    assert code == 2 and "not newer than the installed version 2100.1" in err


def test_ports_search(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _run(capsys, "codelists", "ports", "rotterdam", "--country", "nl")
    assert code == 0
    assert out.splitlines()[0] == "NLRTM\tRotterdam\tZH\tsea, rail, road, air\tAF"
    code, out, _ = _run(
        capsys, "codelists", "ports", "São Paulo", "--function", "road", "--limit", "2", "--json"
    )
    found = json.loads(out)
    assert [p["code"] for p in found] == ["BRSAO", "BRPWO"]
    assert found[0]["functions"] == ["rail", "road", "multimodal"]
    code, out, err = _run(capsys, "codelists", "ports", "Rotterdam", "--function", "port")
    assert [line.split("\t")[0] for line in out.splitlines()] == ["NLRTM", "USRAJ"]
    code, out, err = _run(capsys, "codelists", "ports", "no such place anywhere")
    assert (code, out) == (1, "") and "no location matches" in err
    code, _, err = _run(capsys, "codelists", "ports", "x", "--limit", "0")
    assert code == 2 and "--limit" in err
    code, _, err = _run(capsys, "codelists", "ports", "x", "--country", "NLD")
    assert code == 2 and "two capital letters" in err


def test_ports_as_an_operator_runs_it() -> None:
    result = ephyto("codelists", "ports", "Sao Paulo", "--country", "BR", "--limit", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("BRSAO\tSao Paulo\tSP\t")


def test_a_reader_that_stops_early_is_no_error() -> None:
    """`ephyto codelists show units | head -1`: the pipe closes under a long listing; the
    command ends quietly with 0, as cat or grep would, not with "error: Broken pipe"."""
    import shutil
    import subprocess

    executable = shutil.which("ephyto")
    assert executable is not None
    process = subprocess.Popen(
        [executable, "codelists", "show", "units"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None and process.stderr is not None
    assert process.stdout.readline().startswith(b"# units version ")
    process.stdout.close()  # the reader goes away with most of the listing unread
    stderr = process.stderr.read()
    process.stderr.close()
    assert process.wait(timeout=60) == 0
    assert stderr == b""
