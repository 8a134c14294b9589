"""The metrics registry (headcount.metrics): counters, histograms and readings, as
prometheus_client writes them."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from prometheus_client import generate_latest
from prometheus_client.core import CollectorRegistry, Metric
from prometheus_client.parser import text_string_to_metric_families

from headcount.errors import BadRequest, TokenRefused
from headcount.metrics import Histogram, Metrics, Outcomes


class _Collect:
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def collect(self) -> Iterator[Metric]:
        return self.metrics.families()


def page(metrics: Metrics) -> dict[str, list[tuple[dict[str, str], float, str]]]:
    """The families prometheus_client writes for ``metrics``, read back by its parser."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Collect(metrics))  # a Collector: it has collect()
    text = generate_latest(registry).decode()
    return {
        family.name: [(s.labels, s.value, s.name) for s in family.samples]
        for family in text_string_to_metric_families(text)
    }


def test_a_histogram_is_cumulative_with_le_bounds_inclusive() -> None:
    histogram = Histogram((0.001, 0.01))
    for seconds in (0.0005, 0.001, 0.002, 5.0):
        histogram.observe(seconds)
    assert histogram.cumulative() == [("0.001", 2), ("0.01", 3), ("+Inf", 4)]
    assert histogram.count == 4
    assert histogram.sum == pytest.approx(5.0035)


def test_counters_histograms_and_readings_reach_the_page() -> None:
    metrics = Metrics()
    metrics.counter("headcount_things_total", "Things.", kind="a").value += 3
    metrics.counter("headcount_things_total", "Things.", kind="b").value += 1
    hits = [0]
    metrics.reading("headcount_hits_total", "Hits.", lambda: hits[0])
    metrics.histogram("headcount_sweep_duration_seconds", "Sweeps.").observe(0.0002)
    hits[0] = 7  # read when the page is written, not when registered
    families = page(metrics)
    assert ({"kind": "a"}, 3.0, "headcount_things_total") in families["headcount_things"]
    assert families["headcount_hits"] == [({}, 7.0, "headcount_hits_total")]
    samples = families["headcount_sweep_duration_seconds"]
    assert ({"le": "0.00025"}, 1.0, "headcount_sweep_duration_seconds_bucket") in samples
    assert ({"le": "0.0001"}, 0.0, "headcount_sweep_duration_seconds_bucket") in samples
    assert ({}, 1.0, "headcount_sweep_duration_seconds_count") in samples


def test_outcomes_are_ok_or_the_envelope_type() -> None:
    metrics = Metrics()
    outcomes = Outcomes(metrics, "headcount_x_requests_total", "X.")
    outcomes.ok.value += 2
    outcomes.error(BadRequest("no"))
    outcomes.error(TokenRefused("late", error_type="expired_token"))
    outcomes.error(TokenRefused("late", error_type="expired_token"))
    got = {s[0]["outcome"]: s[1] for s in page(metrics)["headcount_x_requests"]}
    assert got == {"ok": 2, "invalid_parameters": 1, "expired_token": 2}


def test_samples_of_one_metric_must_share_label_names() -> None:
    metrics = Metrics()
    metrics.counter("headcount_y_total", "Y.", a="1")
    metrics.counter("headcount_y_total", "Y.", b="1")
    with pytest.raises(ValueError, match="share their label names"):
        list(metrics.families())
