"""The console's TOTP second factor (node.console.totp): RFC 6238's and RFC 4226's test
vectors, the window and its edges, and hostile codes, secrets, times and labels."""

from __future__ import annotations

import base64
import hmac
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from node.console import totp
from node.console.totp import (
    check_secret,
    code_at,
    matching_step,
    new_secret,
    provisioning_uri,
    time_step,
    valid_secret,
)
from node.errors import InputError

# RFC 6238 Appendix B's SHA1 key: the 20 ASCII bytes "12345678901234567890".
RFC_SECRET = base64.b32encode(b"12345678901234567890").decode("ascii")
NOW = datetime(2026, 3, 1, 9, 0, 10, tzinfo=UTC)
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"


def _at(seconds: float) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(seconds=seconds)


def test_the_rfc_key_in_base32() -> None:
    assert RFC_SECRET == "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"


@pytest.mark.parametrize(
    ("unix_time", "step", "code"),
    [
        (59, 0x1, "94287082"),
        (1111111109, 0x23523EC, "07081804"),
        (1111111111, 0x23523ED, "14050471"),
        (1234567890, 0x273EF07, "89005924"),
        (2000000000, 0x3F940AA, "69279037"),
        (20000000000, 0x27BC86AA, "65353130"),
    ],
)
def test_rfc_6238_appendix_b_sha1(unix_time: int, step: int, code: str) -> None:
    at = _at(unix_time)
    assert time_step(at) == step
    assert code_at(RFC_SECRET, at, digits=8) == code


# RFC 4226 Appendix D: the same key, HOTP counters 0 to 9, six digits. A TOTP step is an
# HOTP counter, so step n is any time in [30n, 30n + 30).
HOTP = ["755224", "287082", "359152", "969429", "338314",
        "254676", "287922", "162583", "399871", "520489"]  # fmt: skip


@pytest.mark.parametrize("counter", range(10))
def test_rfc_4226_appendix_d_six_digits(counter: int) -> None:
    assert code_at(RFC_SECRET, _at(30 * counter)) == HOTP[counter]
    assert code_at(RFC_SECRET, _at(30 * counter + 29.999999)) == HOTP[counter]
    assert matching_step(RFC_SECRET, HOTP[counter], _at(30 * counter + 15)) == counter


def test_step_edges_are_exact() -> None:
    assert time_step(_at(29.999999)) == 0
    assert time_step(_at(30)) == 1
    assert time_step(_at(0)) == 0
    edge = datetime(2026, 3, 1, 9, 0, 29, 999999, tzinfo=UTC)
    assert time_step(edge) + 1 == time_step(edge + timedelta(microseconds=1))
    assert time_step(_at(3600), period=60) == 60


def test_any_time_zone_is_the_same_instant() -> None:
    tokyo = NOW.astimezone(timezone(timedelta(hours=9)))
    assert time_step(tokyo) == time_step(NOW)
    assert code_at(SECRET, tokyo) == code_at(SECRET, NOW)


def test_a_code_matches_within_one_step_either_side() -> None:
    now = time_step(NOW)
    for offset in (-1, 0, 1):
        code = code_at(SECRET, NOW + timedelta(seconds=30 * offset))
        assert matching_step(SECRET, code, NOW) == now + offset
    for offset in (-3, -2, 2, 3):  # codes distinct from the window's for this secret
        assert matching_step(SECRET, code_at(SECRET, NOW + timedelta(seconds=30 * offset)),
                             NOW) is None  # fmt: skip
    two_back = code_at(SECRET, NOW - timedelta(seconds=60))
    assert matching_step(SECRET, two_back, NOW, window=2) == now - 2
    assert matching_step(SECRET, code_at(SECRET, NOW), NOW, window=0) == now
    assert matching_step(SECRET, code_at(SECRET, NOW - timedelta(seconds=30)), NOW,
                         window=0) is None  # fmt: skip


def test_another_secrets_code_does_not_match() -> None:
    assert code_at(RFC_SECRET, NOW) == "175071"
    assert matching_step(SECRET, "175071", NOW) is None
    assert matching_step(RFC_SECRET, "175071", NOW) == time_step(NOW)


def test_the_current_step_wins_when_two_steps_share_a_code(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(totp, "_code", lambda key, step, digits: "123456")
    assert matching_step(SECRET, "123456", NOW) == time_step(NOW)


def test_near_the_epoch_no_step_before_zero() -> None:
    assert matching_step(RFC_SECRET, HOTP[0], _at(10)) == 0
    assert matching_step(RFC_SECRET, HOTP[1], _at(10)) == 1
    assert matching_step(RFC_SECRET, HOTP[2], _at(10)) is None


def test_every_step_is_compared_whatever_the_code(monkeypatch: pytest.MonkeyPatch) -> None:
    """No early return: a right code, a wrong one and garbage cost the same comparisons."""
    calls: list[int] = []
    real = hmac.compare_digest

    def counting(a: Any, b: Any) -> bool:
        calls.append(1)
        return real(a, b)

    monkeypatch.setattr(totp.hmac, "compare_digest", counting)
    for code in (code_at(SECRET, NOW), "000000", "not a code", "١٢٣٤٥٦"):
        calls.clear()
        matching_step(SECRET, code, NOW, window=2)
        assert len(calls) == 5, code


def test_spaces_around_a_code_are_dropped() -> None:
    code = code_at(SECRET, NOW)
    step = time_step(NOW)
    for typed in (f" {code}", f"{code} ", f"\t{code}\r\n", f"  {code}  "):
        assert matching_step(SECRET, typed, NOW) == step


def _to_digits(code: str, zero: str) -> str:
    return "".join(chr(ord(zero) + int(c)) for c in code)


def _hostile(code: str) -> list[object]:
    return [
        "",
        " ",
        code[:5],
        code + "0",
        "0" + code,
        f"{code[:3]} {code[3:]}",
        f"{code[:3]}-{code[3:]}",
        f"{code[:3]}_{code[3:]}",  # int() would take this one
        f"+{code[:5]}",
        f"-{code[:5]}",
        f"{code}\x00",
        f"\x00{code}",
        f"\u00a0{code}",  # no-break space: not a space this strips
        f"{code}\u200b",  # zero-width space
        f"\u3000{code}",  # ideographic space
        _to_digits(code, "\u0660"),  # Arabic-Indic digits
        _to_digits(code, "\u06f0"),  # extended Arabic-Indic (Persian)
        _to_digits(code, "\uff10"),  # fullwidth digits
        _to_digits(code, "\u0966"),  # Devanagari digits
        _to_digits(code, "\U0001d7ce"),  # mathematical bold digits
        code[:5] + "\u0660",
        "¹²³⁴⁵⁶",
        f"{code}\n{code}",
        code * 10_000,
        " " * 10_000_000 + code,
        "0x1e24",
        "1e5000",
        "nan",
        "\udcff" * 6,
        None,
        int(code),
        code.encode(),
        [code],
    ]


def test_hostile_codes_never_match() -> None:
    code = code_at(SECRET, NOW)
    assert matching_step(SECRET, code, NOW) == time_step(NOW)
    for typed in _hostile(code):
        assert matching_step(SECRET, typed, NOW) is None, repr(typed)[:80]  # type: ignore[arg-type]


def test_new_secrets() -> None:
    made = {new_secret() for _ in range(50)}
    assert len(made) == 50
    for secret in made:
        assert len(secret) == 32 and "=" not in secret and valid_secret(secret)
        assert len(base64.b32decode(secret)) == 20
        assert len(code_at(secret, NOW)) == 6


@pytest.mark.parametrize("secret", ["A" * 16, "A" * 18, "A" * 64, "234567" * 4, RFC_SECRET])
def test_valid_secrets(secret: str) -> None:
    assert valid_secret(secret) and check_secret(secret) == secret


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "A" * 15,
        "A" * 65,
        "A" * 17,  # 17, 19, 22 characters: lengths no base32 text has
        "A" * 19,
        "A" * 22,
        SECRET.lower(),
        SECRET[:-1] + "a",
        SECRET + "========",
        SECRET[:30] + "==",
        SECRET[:-1] + "0",
        SECRET[:-1] + "1",
        SECRET[:-1] + "8",
        SECRET[:-1] + " ",
        f" {SECRET}",
        f"{SECRET}\n",
        SECRET[:16] + " " + SECRET[16:],
        "\uff21" * 16,  # fullwidth A
        "\uff21" + SECRET[1:],
        "A" * 10_000_000,
        None,
        12345678901234567890,
        SECRET.encode(),
    ],
)
def test_invalid_secrets_are_refused_without_being_quoted(secret: object) -> None:
    assert not valid_secret(secret)
    with pytest.raises(InputError, match="16 to 64 base32") as refused:
        check_secret(secret)
    if isinstance(secret, str) and secret.strip():
        assert secret.strip()[:16] not in str(refused.value)
    with pytest.raises(InputError, match="TOTP secret"):
        code_at(secret, NOW)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="TOTP secret"):
        matching_step(secret, "123456", NOW)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="TOTP secret"):
        provisioning_uri(secret, user="anna", issuer="ePhyto NL")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "at",
    [
        datetime(2026, 3, 1, 9, 0),  # no zone: local time would be a guess
        datetime(1969, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(1, 1, 1, tzinfo=UTC),
        "2026-03-01T09:00:00Z",
        1_772_355_600,
        None,
    ],
)
def test_bad_times_are_refused(at: object) -> None:
    with pytest.raises(InputError, match="TOTP time"):
        code_at(SECRET, at)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="TOTP time"):
        matching_step(SECRET, "123456", at)  # type: ignore[arg-type]


def test_the_far_future_still_works() -> None:
    far = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
    assert matching_step(SECRET, code_at(SECRET, far), far) == time_step(far)


@pytest.mark.parametrize("digits", [0, 5, 9, 10, -6, True, 6.0, "6", None])
def test_bad_digits_are_refused(digits: object) -> None:
    with pytest.raises(InputError, match="TOTP digits"):
        code_at(SECRET, NOW, digits=digits)  # type: ignore[arg-type]


@pytest.mark.parametrize("period", [0, -30, 3601, True, 30.0, "30", None])
def test_bad_periods_are_refused(period: object) -> None:
    with pytest.raises(InputError, match="TOTP period"):
        code_at(SECRET, NOW, period=period)  # type: ignore[arg-type]


@pytest.mark.parametrize("window", [-1, 11, 10**9, True, 1.0, "1", None])
def test_bad_windows_are_refused(window: object) -> None:
    with pytest.raises(InputError, match="TOTP window"):
        matching_step(SECRET, code_at(SECRET, NOW), NOW, window=window)  # type: ignore[arg-type]


def test_seven_and_eight_digits_extend_the_six() -> None:
    six, seven, eight = (code_at(SECRET, NOW, digits=d) for d in (6, 7, 8))
    assert seven.endswith(six) and eight.endswith(seven)
    assert matching_step(SECRET, eight, NOW) is None  # the console takes six only


def test_provisioning_uri_exactly() -> None:
    assert provisioning_uri(SECRET, user="anna", issuer="ePhyto NL") == (
        "otpauth://totp/ePhyto%20NL:anna?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
        "&issuer=ePhyto%20NL&algorithm=SHA1&digits=6&period=30"
    )


@pytest.mark.parametrize(
    ("user", "issuer"),
    [
        ("anna.de-vries_2", "ePhyto NL (NVWA)"),
        ("a&b=c?d#e/f%g+h", "x&secret=AAAAAAAAAAAAAAAA"),
        ("élodie", "Ministère de l'Agriculture"),
        ("用户", "植物检疫 CN"),
        ("عبد الله", "وزارة الزراعة"),
        ("x" * 128, "y" * 128),
    ],
)
def test_provisioning_uri_encodes_every_part(user: str, issuer: str) -> None:
    uri = provisioning_uri(SECRET, user=user, issuer=issuer)
    assert uri.isascii() and " " not in uri and "+" not in uri
    parts = urlsplit(uri)
    assert (parts.scheme, parts.netloc) == ("otpauth", "totp")
    label_issuer, label_user = parts.path.removeprefix("/").split(":")
    assert (unquote(label_issuer), unquote(label_user)) == (issuer, user)
    query = parse_qs(parts.query, strict_parsing=True)
    assert query == {
        "secret": [SECRET],
        "issuer": [issuer],
        "algorithm": ["SHA1"],
        "digits": ["6"],
        "period": ["30"],
    }


@pytest.mark.parametrize(
    ("user", "issuer", "why"),
    [
        ("", "ePhyto NL", "TOTP user: must be 1 to 128"),
        ("anna", "", "TOTP issuer: must be 1 to 128"),
        ("x" * 129, "ePhyto NL", "TOTP user: must be 1 to 128"),
        ("anna", "y" * 10_000, "TOTP issuer: must be 1 to 128"),
        ("an:na", "ePhyto NL", "TOTP user: must have no colon"),
        ("anna", "ePhyto: NL", "TOTP issuer: must have no colon"),
        ("anna\n", "ePhyto NL", "TOTP user: must have no colon and no control"),
        ("anna", "ePhyto\x00NL", "TOTP issuer: must have no colon and no control"),
        ("anna\x85", "ePhyto NL", "no control character"),
        ("anna\x7f", "ePhyto NL", "no control character"),
        ("anna\udcff", "ePhyto NL", "TOTP user: is not valid text"),
        (None, "ePhyto NL", "TOTP user"),
        ("anna", b"ePhyto", "TOTP issuer"),
    ],
)
def test_provisioning_uri_refuses_bad_labels(user: object, issuer: object, why: str) -> None:
    with pytest.raises(InputError, match=why):
        provisioning_uri(SECRET, user=user, issuer=issuer)  # type: ignore[arg-type]
