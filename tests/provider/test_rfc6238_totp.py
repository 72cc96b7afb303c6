"""provider.factors.totp: RFC 4226 Appendix D and RFC 6238 Appendix B vectors, drift, replay."""

from __future__ import annotations

import base64
from collections.abc import Callable
from urllib.parse import parse_qs, urlsplit

import pytest

from provider.factors import totp


def b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=")


SHA1_SEED = b32(b"12345678901234567890")
SHA256_SEED = b32(b"12345678901234567890123456789012")
SHA512_SEED = b32(b"1234567890" * 6 + b"1234")
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
T = 1_700_000_010  # inside step 56_666_667 (which starts at 1_700_000_010)


def test_public_names_are_pinned() -> None:
    assert totp.__all__ == [
        "DIGITS",
        "PERIOD",
        "code_at",
        "generate_secret",
        "hotp",
        "provisioning_uri",
        "step_at",
        "verify",
    ]


@pytest.mark.parametrize(
    ("counter", "expected"),
    list(
        enumerate(
            [
                "755224",
                "287082",
                "359152",
                "969429",
                "338314",
                "254676",
                "287922",
                "162583",
                "399871",
                "520489",
            ]
        )
    ),
)
def test_rfc4226_appendix_d_hotp_values(counter: int, expected: str) -> None:
    assert SHA1_SEED == "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ"
    assert totp.hotp(SHA1_SEED, counter) == expected


RFC6238_VECTORS = [
    # time, SHA1, SHA256, SHA512 (RFC 6238 Appendix B, 8 digits, 30-second steps)
    (59, "94287082", "46119246", "90693936"),
    (1111111109, "07081804", "68084774", "25091201"),
    (1111111111, "14050471", "67062674", "99943326"),
    (1234567890, "89005924", "91819424", "93441116"),
    (2000000000, "69279037", "90698825", "38618901"),
    (20000000000, "65353130", "77737706", "47863826"),
]


@pytest.mark.parametrize(("now", "sha1", "sha256", "sha512"), RFC6238_VECTORS)
def test_rfc6238_appendix_b_vectors(now: int, sha1: str, sha256: str, sha512: str) -> None:
    step = totp.step_at(now)
    assert totp.hotp(SHA1_SEED, step, 8) == sha1
    assert totp.hotp(SHA256_SEED, step, 8, algorithm="sha256") == sha256
    assert totp.hotp(SHA512_SEED, step, 8, algorithm="sha512") == sha512


def test_step_is_unix_time_over_30_rounded_down() -> None:
    assert totp.step_at(0) == 0
    assert totp.step_at(29) == 0
    assert totp.step_at(30) == 1
    assert totp.step_at(59) == 1
    assert totp.step_at(1111111109) == 0x23523EC
    assert totp.step_at(61, period=60) == 1


def test_code_at_is_the_six_digit_sha1_code_of_the_step() -> None:
    assert totp.code_at(SHA1_SEED, 59) == "287082"  # counter 1, RFC 4226 Appendix D
    assert totp.code_at(SHA1_SEED, 30) == totp.code_at(SHA1_SEED, 59)
    assert totp.code_at(SHA1_SEED, 60) == "359152"


def test_generated_secrets_are_160_bit_base32_without_padding() -> None:
    secret = totp.generate_secret()
    assert len(secret) == 32
    assert "=" not in secret
    assert len(base64.b32decode(secret)) == 20
    assert totp.generate_secret() != secret


def test_secrets_are_read_in_any_case_with_spaces_and_padding() -> None:
    spaced = " ".join(SHA1_SEED[i : i + 4].lower() for i in range(0, 32, 4))
    assert totp.hotp(spaced, 0) == "755224"
    assert totp.hotp(b32(b"1234567890") + "===", 0) == totp.hotp(b32(b"1234567890"), 0)


@pytest.mark.parametrize("bad", ["", "not base32!", "A"])
def test_an_invalid_secret_is_a_value_error(bad: str) -> None:
    with pytest.raises(ValueError, match="TOTP secret"):
        totp.hotp(bad, 0)


def test_hotp_rejects_out_of_range_arguments() -> None:
    with pytest.raises(ValueError, match="8 bytes"):
        totp.hotp(SECRET, -1)
    with pytest.raises(ValueError, match="6 to 10 digits"):
        totp.hotp(SECRET, 0, 5)
    with pytest.raises(ValueError, match="unsupported"):
        totp.hotp(SECRET, 0, algorithm="md5")


# --- verify ----------------------------------------------------------------------------------


def test_verify_returns_the_step_of_the_current_code() -> None:
    step = totp.step_at(T)
    assert totp.verify(SECRET, totp.hotp(SECRET, step), T) == step


def test_verify_accepts_one_step_of_drift_either_side() -> None:
    step = totp.step_at(T)
    assert totp.verify(SECRET, totp.hotp(SECRET, step - 1), T) == step - 1
    assert totp.verify(SECRET, totp.hotp(SECRET, step + 1), T) == step + 1


def test_verify_refuses_two_steps_of_drift() -> None:
    step = totp.step_at(T)
    assert totp.verify(SECRET, totp.hotp(SECRET, step - 2), T) is None
    assert totp.verify(SECRET, totp.hotp(SECRET, step + 2), T) is None


def test_drift_edges_follow_the_step_boundaries() -> None:
    # A code of step s is accepted from the first second of s-1 to the last second of s+1.
    s = 1000
    code = totp.hotp(SECRET, s)
    assert totp.verify(SECRET, code, (s - 1) * 30) == s
    assert totp.verify(SECRET, code, (s - 1) * 30 - 1) is None
    assert totp.verify(SECRET, code, (s + 2) * 30 - 1) == s
    assert totp.verify(SECRET, code, (s + 2) * 30) is None


def test_drift_zero_accepts_only_the_current_step() -> None:
    step = totp.step_at(T)
    assert totp.verify(SECRET, totp.hotp(SECRET, step - 1), T, drift=0) is None
    assert totp.verify(SECRET, totp.hotp(SECRET, step), T, drift=0) == step


def test_drift_is_capped_at_one_step() -> None:
    step = totp.step_at(T)
    assert totp.verify(SECRET, totp.hotp(SECRET, step - 2), T, drift=5) is None


def test_negative_drift_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="drift"):
        totp.verify(SECRET, totp.code_at(SECRET, T), T, drift=-1)


def test_a_used_step_is_refused_as_a_replay() -> None:
    step = totp.step_at(T)
    code = totp.hotp(SECRET, step)
    assert totp.verify(SECRET, code, T, last_used_step=step) is None
    assert totp.verify(SECRET, code, T, last_used_step=step - 1) == step


def test_a_code_older_than_the_last_used_step_is_refused() -> None:
    step = totp.step_at(T)
    previous = totp.hotp(SECRET, step - 1)
    assert totp.verify(SECRET, previous, T, last_used_step=step) is None


def test_the_next_step_is_still_accepted_after_the_current_one_was_used() -> None:
    step = totp.step_at(T)
    assert totp.verify(SECRET, totp.hotp(SECRET, step + 1), T, last_used_step=step) == step + 1


def test_surrounding_whitespace_is_ignored() -> None:
    code = totp.code_at(SECRET, T)
    assert totp.verify(SECRET, f"  {code}\n", T) == totp.step_at(T)


@pytest.mark.parametrize(
    "transform",
    [
        lambda c: c[:3] + " " + c[3:],  # inner space
        lambda c: c[:5],  # too short
        lambda c: c + "0",  # too long
        lambda c: "",
        lambda c: c[:5] + "x",
        lambda c: "".join(chr(0x0660 + int(d)) for d in c),  # Arabic-Indic digits
        lambda c: "+" + c[1:],
        lambda c: c.replace(c[0], "\uff10" if c[0] == "0" else "\uff11", 1),  # fullwidth digit
    ],
)
def test_malformed_codes_are_refused(transform: Callable[[str], str]) -> None:
    code = totp.code_at(SECRET, T)
    assert totp.verify(SECRET, transform(code), T) is None


def test_a_wrong_code_is_refused() -> None:
    step = totp.step_at(T)
    window = {totp.hotp(SECRET, s) for s in (step - 1, step, step + 1)}
    wrong = next(f"{n:06d}" for n in range(1_000_000) if f"{n:06d}" not in window)
    assert totp.verify(SECRET, wrong, T) is None


def test_a_step_before_zero_is_never_checked() -> None:
    assert totp.verify(SECRET, totp.hotp(SECRET, 0), 5) == 0


# --- provisioning URI -----------------------------------------------------------------------------


def test_provisioning_uri_has_the_key_uri_format() -> None:
    uri = totp.provisioning_uri(SECRET, account="alice", issuer="Stepup")
    assert uri == (
        "otpauth://totp/Stepup:alice?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
        "&issuer=Stepup&algorithm=SHA1&digits=6&period=30"
    )


def test_provisioning_uri_percent_encodes_label_and_parameters() -> None:
    uri = totp.provisioning_uri(
        "jbsw y3dp ehpk 3pxp", account="alice@bank.example", issuer="Bank & Co: Test"
    )
    assert uri == (
        "otpauth://totp/Bank%20%26%20Co%3A%20Test:alice%40bank.example"
        "?secret=JBSWY3DPEHPK3PXP&issuer=Bank%20%26%20Co%3A%20Test"
        "&algorithm=SHA1&digits=6&period=30"
    )
    parts = urlsplit(uri)
    assert parse_qs(parts.query)["issuer"] == ["Bank & Co: Test"]


def test_provisioning_uri_refuses_an_invalid_secret() -> None:
    with pytest.raises(ValueError, match="TOTP secret"):
        totp.provisioning_uri("!!", account="a", issuer="b")
