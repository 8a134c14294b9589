"""``python -m bench fuzz`` and ``soak`` on tiny inputs: the fuzzer's harness through the real
app, and the soak's arithmetic (the soak itself needs wrk and minutes: never in the suite)."""

from __future__ import annotations

from bench.__main__ import _parser
from bench.fuzz import FuzzOptions, fuzz
from bench.soak import MIB, rss_slope


def test_fuzz_meets_every_kind_of_outcome_and_no_crash() -> None:
    tally = fuzz(FuzzOptions(cases=300, seed=1))
    assert tally.crashes == 0
    assert sum(tally.beacons.values()) == sum(tally.tokens.values()) == 300
    assert {"200, all accepted", "200, some events rejected", "400 invalid_parameters"} <= set(
        tally.beacons
    )
    assert {"200 (accepted)", "403 invalid_token", "403 invalid_signature"} <= set(tally.tokens)
    assert tally.events  # rejected events are named by reason


def test_rss_slope_is_mib_per_minute_of_the_least_squares_line() -> None:
    assert rss_slope([(0.0, 100 * MIB), (60.0, 101 * MIB), (120.0, 102 * MIB)]) == 1.0
    assert rss_slope([(0.0, 5 * MIB), (30.0, 7 * MIB), (60.0, 5 * MIB)]) == 0.0
    assert rss_slope([(0.0, MIB)]) == 0.0


def test_fuzz_and_soak_are_named_benchmarks_outside_the_default_set() -> None:
    args = _parser().parse_args(["fuzz", "soak", "--minutes", "2", "--cases", "5"])
    assert (args.names, args.minutes, args.cases) == (["fuzz", "soak"], 2, 5)
