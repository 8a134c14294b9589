"""Property-based fuzzing of the token parser and verifier (hypothesis): any text is parsed or
refused with :class:`TokenRefused`, nothing else; a valid token round-trips to its claims; a
valid token changed in any way without the key is refused. The mutators are those of
``python -m bench fuzz``."""

from __future__ import annotations

import random
from typing import Any

from bench.fuzz_inputs import mutate_token, mutate_token_text, signed_token
from hypothesis import given, settings
from hypothesis import strategies as st

from headcount.auth.jwt_verify import (
    Claims,
    check_claims,
    load_verification_key,
    parse_token,
    verify_signature,
)
from headcount.core.ids import ID_TYPES
from headcount.errors import TokenRefused
from tests.token_kit import private_key, public_pem

NOW = 1_800_000_000
KEY = private_key("fuzz")
PUBLIC = load_verification_key(public_pem(KEY))
KID = "fuzz-key"
HEADER = {"alg": "RS256", "typ": "JWT"}
VALID = signed_token(KEY, HEADER, {"kid": KID, "sub": "v", "aud": "video_id", "exp": NOW + 60})


def verify(token: str) -> tuple[str, Claims]:
    """The verifier's steps in order, with the one key this module knows."""
    parsed = parse_token(token)
    if parsed.key_id != KID:
        raise TokenRefused("unknown kid", error_type="unknown_key")
    verify_signature(parsed, PUBLIC)
    return parsed.key_id, check_claims(parsed.claims, NOW, leeway=0)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=600) | st.text(alphabet="ABCDEFabcdef0123456789-_.=", max_size=600))
def test_any_text_is_parsed_or_refused_as_a_token_refusal(text: str) -> None:
    try:
        verify(text)
    except TokenRefused as exc:
        assert exc.error_type
    else:
        raise AssertionError("a token nobody signed was accepted")


@settings(max_examples=200, deadline=None)
@given(
    sub=st.text(min_size=1, max_size=64),
    aud=st.sampled_from(ID_TYPES),
    exp=st.integers(min_value=NOW + 1, max_value=NOW + 10**9),
    kid_in_header=st.booleans(),
    extra=st.dictionaries(st.sampled_from(["iss", "typ", "x", "jti"]), st.text(max_size=8)),
)
def test_a_valid_token_round_trips_to_its_claims(
    sub: str, aud: str, exp: int, kid_in_header: bool, extra: dict[str, Any]
) -> None:
    claims: dict[str, Any] = {**extra, "sub": sub, "aud": aud, "exp": exp}
    header = dict(HEADER)
    if kid_in_header:
        header["kid"] = KID
    else:
        claims["kid"] = KID
    token = signed_token(KEY, header, claims)
    assert parse_token(token).claims == claims
    assert verify(token) == (KID, Claims(aud, sub, float(exp)))


@settings(max_examples=200, deadline=None)
@given(st.randoms(use_true_random=False))
def test_a_valid_token_changed_without_the_key_is_refused(rng: random.Random) -> None:
    changed = mutate_token_text(rng, VALID)
    if changed == VALID:
        return
    try:
        verify(changed)
    except TokenRefused:
        return
    raise AssertionError(f"a changed token was accepted: {changed!r}")


@settings(max_examples=200, deadline=None)
@given(st.randoms(use_true_random=False))
def test_hostile_tokens_signed_with_the_real_key_meet_only_token_refusals(
    rng: random.Random,
) -> None:
    token = mutate_token(rng, VALID, KEY, KID, NOW)
    try:
        kid, claims = verify(token)
    except TokenRefused:
        return
    # Accepted: then it really is a valid viewer-counts token.
    assert kid == KID and claims.id_type in ID_TYPES and claims.id and claims.exp > NOW
