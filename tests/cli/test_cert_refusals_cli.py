"""`ephyto cert ...` refusing what it cannot use, in one line, as users run it: a file that
is no ePhyto (a PDF, an Office file, an image, nothing), and an output file that exists."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from tests.ephyto_cli import ephyto, ok, refused


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The sample as XML and as its JSON model, and the PDF `cert pdf` makes of it."""
    root = tmp_path_factory.mktemp("made")
    files = {"xml": root / "phyto.xml", "model": root / "phyto.json", "pdf": root / "phyto.pdf"}
    ok("cert", "sample", "phyto", "-o", files["xml"])
    ok("cert", "sample", "phyto", "--model", "-o", files["model"])
    ok("cert", "pdf", files["xml"], "-o", files["pdf"])
    return files


def _wrong_files(made: dict[str, Path], folder: Path) -> dict[str, tuple[Path, str]]:
    """Files people mistake for a certificate, each with the kind the command must name."""
    docx = io.BytesIO()
    with zipfile.ZipFile(docx, "w") as archive:
        archive.writestr("word/document.xml", "<w:document/>")
    contents = {
        "certificate.docx": (docx.getvalue(), "a ZIP archive"),
        "scan.png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(20), "a PNG image"),
        "scan.jpg": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(20), "a JPEG image"),
        "empty.xml": (b"", "empty"),
    }
    files = {"pdf": (made["pdf"], "a PDF")}
    for name, (data, kind) in contents.items():
        (folder / name).write_bytes(data)
        files[name] = (folder / name, kind)
    return files


@pytest.mark.parametrize("command", ["show", "pdf"])
def test_show_and_pdf_name_the_wrong_file_and_what_to_give(
    made: dict[str, Path], tmp_path: Path, command: str
) -> None:
    out = tmp_path / "out.pdf"
    for path, kind in _wrong_files(made, tmp_path).values():
        args = ("-o", out) if command == "pdf" else ()
        line = refused("cert", command, path, *args)
        assert f"{path} is {kind}" in line and "not an ePhyto" in line
        assert "give the ePhyto XML (UN/CEFACT SPSCertificate) or its JSON model" in line
        assert "UTF-8" not in line and "well-formed" not in line
        assert not out.exists()


def test_validate_reports_a_wrong_file_as_one_finding_and_exits_1(
    made: dict[str, Path], tmp_path: Path
) -> None:
    wrong = _wrong_files(made, tmp_path)
    result = ephyto("cert", "validate", made["xml"], *(path for path, _ in wrong.values()))
    assert result.returncode == 1, result.stderr
    assert result.stderr == ""
    assert f"{made['xml']}: valid" in result.stdout
    for path, kind in wrong.values():
        lines = [line for line in result.stdout.splitlines() if line.startswith(f"{path}:")]
        assert lines[0] == f"{path}: INVALID (1 findings)"
        assert f"this file is {kind}" in lines[1]
        assert "not an ePhyto: give the ePhyto XML" in lines[1]
        assert "`ephyto cert new` makes it from the JSON model" in lines[1]
        assert len(lines) == 2


def test_new_names_a_model_that_is_a_pdf_or_xml(made: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "out.xml"
    line = refused("cert", "new", "--json", made["pdf"], "-o", out)
    assert f"{made['pdf']} is a PDF, not a JSON model" in line
    line = refused("cert", "new", "--json", made["xml"], "-o", out)
    assert f"{made['xml']} is XML, not a JSON model" in line
    broken = tmp_path / "broken.json"
    broken.write_bytes(b'{"number": ')
    line = refused("cert", "new", "--json", broken, "-o", out)
    assert f"{broken}: not JSON" in line
    assert not out.exists()


def _commands(made: dict[str, Path], out: Path) -> dict[str, tuple[str | Path, ...]]:
    return {
        "new": ("cert", "new", "--json", made["model"], "-o", out),
        "pdf": ("cert", "pdf", made["xml"], "-o", out),
        "sample": ("cert", "sample", "reexport", "-o", out),
        "sample --model": ("cert", "sample", "--model", "-o", out),
    }


@pytest.mark.parametrize("name", ["new", "pdf", "sample", "sample --model"])
def test_an_existing_output_is_refused_and_left_unchanged_unless_force(
    made: dict[str, Path], tmp_path: Path, name: str
) -> None:
    out = tmp_path / "out"
    out.write_bytes(b"keep me")
    command = _commands(made, out)[name]
    line = refused(*command)
    assert f"{out} exists: give a new file name, or --force to overwrite it" in line
    assert out.read_bytes() == b"keep me"
    ok(*command, "--force")
    written = out.read_bytes()
    assert written.startswith(b"%PDF-" if name == "pdf" else b"{" if "model" in name else b"<?xml")
    ok(*command, "--force")  # and again: --force overwrites its own output too


@pytest.mark.parametrize("name", ["new", "pdf", "sample"])
def test_a_planted_symlink_is_refused_and_its_target_unchanged(
    made: dict[str, Path], tmp_path: Path, name: str
) -> None:
    target = tmp_path / "target"
    target.write_bytes(b"not yours")
    out = tmp_path / "link"
    out.symlink_to(target)
    refused(*_commands(made, out)[name])
    assert target.read_bytes() == b"not yours"
    dangling = tmp_path / "dangling"
    dangling.symlink_to(tmp_path / "nowhere")
    refused(*_commands(made, dangling)[name])
    assert not (tmp_path / "nowhere").exists()


def test_a_folder_as_output_is_one_line_with_or_without_force(
    made: dict[str, Path], tmp_path: Path
) -> None:
    folder = tmp_path / "folder"
    folder.mkdir()
    assert f"{folder} exists" in refused("cert", "sample", "-o", folder)
    assert str(folder) in refused("cert", "sample", "-o", folder, "--force")
    assert list(folder.iterdir()) == []


def test_new_refuses_an_existing_output_before_validating(
    made: dict[str, Path], tmp_path: Path
) -> None:
    """The refusal comes first: no findings printed for a file that would not be written."""
    out = tmp_path / "out.xml"
    out.write_bytes(b"keep me")
    result = ephyto("cert", "new", "--json", made["pdf"], "-o", out)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"ephyto: error: {out} exists: give a new file name, or --force to overwrite it "
        "(nothing was written)"
    ]


@pytest.mark.parametrize("action", ["new", "pdf", "sample"])
def test_help_says_an_existing_output_needs_force(action: str) -> None:
    text = " ".join(ok("cert", action, "--help").split())
    assert "--force" in text
    assert "an existing file is refused and left as it is, unless --force" in text


def test_validate_notes_the_lists_that_are_placeholders(made: dict[str, Path]) -> None:
    """The note names the placeholder lists that passed codes, in text and in JSON."""
    import json

    text = ok("cert", "validate", made["xml"])
    assert "note: some codes passed only against placeholder entries" in text
    assert "treatment_types" in text
    as_json = json.loads(ok("cert", "validate", "--json", made["xml"]))
    assert "treatment_types" in as_json["placeholder_lists"]
