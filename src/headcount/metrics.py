"""Process-local counters, exported at ``GET /metrics`` through ``prometheus_client``.

A component asks the runtime's :class:`Metrics` once for the counters it will bump
(:meth:`Metrics.counter` returns the same :class:`Counter` for the same name and labels) and
then adds to ``counter.value`` directly: no lookup, no lock, nothing on the hot path but an
integer add (one process, one event loop). Durations are :class:`Histogram` s, observed once
per *batch* (a sweep, a Redis pipeline, a control-store query), never once per request.
Numbers a component already keeps as plain attributes (the token cache's hits) are read when
the page is written (:meth:`Metrics.reading`). Gauges that are read from elsewhere (the live
store's view totals) are passed to :meth:`Metrics.families` by whoever serves the page, which
hands the families to ``prometheus_client`` (a custom collector: the hot path keeps its int
adds).

Names follow Prometheus' conventions: ``headcount_`` first, base units (seconds, bytes),
``_total`` on counters, one metric with a label rather than several names for its outcomes.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Final, TypeVar

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

from headcount.errors import HeadcountError, status_and_type

__all__ = ["LATENCY_BUCKETS", "Counter", "Histogram", "Metrics", "Outcomes"]

Labels = tuple[tuple[str, str], ...]
T = TypeVar("T")

# Seconds: a memory sweep takes microseconds, a Redis round trip a millisecond or less, a
# control-store query a few milliseconds; anything past a second is an outage in the making.
LATENCY_BUCKETS: Final = (
    0.0001,
    0.00025,
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
)


class Counter:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class Histogram:
    """Durations in seconds, in cumulative buckets when exported. Safe to observe from the
    thread pool (control-store calls run there): a lock, which costs nothing at one
    observation per batch."""

    __slots__ = ("_lock", "bounds", "buckets", "count", "sum")

    def __init__(self, bounds: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.bounds = bounds
        self.buckets = [0] * (len(bounds) + 1)  # the last is +Inf
        self.count = 0
        self.sum = 0.0
        self._lock = threading.Lock()

    def observe(self, seconds: float) -> None:
        index = bisect.bisect_left(self.bounds, seconds)  # the first bound >= seconds: "le"
        with self._lock:
            self.buckets[index] += 1
            self.count += 1
            self.sum += seconds

    def since(self, started: float) -> None:
        """Observe the time since ``started`` (a :func:`time.perf_counter` reading)."""
        self.observe(time.perf_counter() - started)

    def cumulative(self) -> list[tuple[str, float]]:
        with self._lock:
            counts = list(self.buckets)
        total = 0
        out: list[tuple[str, float]] = []
        for bound, count in zip((*map(repr, self.bounds), "+Inf"), counts, strict=True):
            total += count
            out.append((bound, total))
        return out


class Metrics:
    def __init__(self) -> None:
        self._help: dict[str, str] = {}
        self._counters: dict[str, dict[Labels, Counter]] = {}
        self._histograms: dict[str, dict[Labels, Histogram]] = {}
        self._readings: dict[str, dict[Labels, Callable[[], float]]] = {}

    def counter(self, name: str, help: str, **labels: str) -> Counter:
        return _sample(self._counters, self._help, name, help, labels, Counter)

    def histogram(self, name: str, help: str, **labels: str) -> Histogram:
        return _sample(self._histograms, self._help, name, help, labels, Histogram)

    def add_histogram(self, name: str, help: str, histogram: Histogram, **labels: str) -> None:
        """Export a histogram a component owns (a store times its own round trips)."""
        self._help.setdefault(name, help)
        self._histograms.setdefault(name, {})[tuple(sorted(labels.items()))] = histogram

    def reading(self, name: str, help: str, read: Callable[[], float], **labels: str) -> None:
        """A counter whose value ``read()`` returns when the page is written (a number the
        component keeps anyway, such as its hits)."""
        self._help.setdefault(name, help)
        self._readings.setdefault(name, {})[tuple(sorted(labels.items()))] = read

    def families(self, gauges: Iterable[tuple[str, str, float]] = ()) -> Iterator[Metric]:
        """Every counter and histogram, then the given ``(name, help, value)`` gauges, as
        prometheus_client metric families (its exposition formats the numbers: full float
        precision)."""
        counters: dict[str, dict[Labels, Callable[[], float]]] = {
            name: {labels: _value_of(counter) for labels, counter in samples.items()}
            for name, samples in self._counters.items()
        }
        for name, readings in self._readings.items():
            counters.setdefault(name, {}).update(readings)
        for name, reads in sorted(counters.items()):
            family = CounterMetricFamily(name, self._help[name], labels=_label_names(reads))
            for labels, read in sorted(reads.items(), key=lambda item: item[0]):
                family.add_metric([value for _, value in labels], read())
            yield family
        for name, histograms in sorted(self._histograms.items()):
            histogram_family = HistogramMetricFamily(
                name, self._help[name], labels=_label_names(histograms)
            )
            for labels, histogram in sorted(histograms.items(), key=lambda item: item[0]):
                histogram_family.add_metric(
                    [value for _, value in labels],
                    buckets=histogram.cumulative(),
                    sum_value=histogram.sum,
                )
            yield histogram_family
        for name, help, value in gauges:
            yield GaugeMetricFamily(name, help, value=value)


class Outcomes:
    """The requests of one surface by outcome: ``ok``, or the type of the error envelope it
    answered (``invalid_parameters``, ``expired_token``, ``service_unavailable``...: a short,
    fixed set, never a value from the request)."""

    def __init__(self, metrics: Metrics, name: str, help: str) -> None:
        self._metrics = metrics
        self._name = name
        self._help = help
        self.ok = metrics.counter(name, help, outcome="ok")
        self._errors: dict[str, Counter] = {}

    def error(self, exc: HeadcountError) -> None:
        self.outcome(status_and_type(exc)[1]).value += 1

    def outcome(self, outcome: str) -> Counter:
        counter = self._errors.get(outcome)
        if counter is None:
            counter = self._errors[outcome] = self._metrics.counter(
                self._name, self._help, outcome=outcome
            )
        return counter


def _sample(
    table: dict[str, dict[Labels, T]],
    helps: dict[str, str],
    name: str,
    help: str,
    labels: dict[str, str],
    make: Callable[[], T],
) -> T:
    helps.setdefault(name, help)
    samples = table.setdefault(name, {})
    key = tuple(sorted(labels.items()))
    sample = samples.get(key)
    if sample is None:
        sample = samples[key] = make()
    return sample


def _value_of(counter: Counter) -> Callable[[], float]:
    return lambda: counter.value


def _label_names(samples: Mapping[Labels, object]) -> list[str]:
    names = {tuple(name for name, _ in labels) for labels in samples}
    if len(names) != 1:
        raise ValueError(f"samples of one metric must share their label names: {names}")
    return list(next(iter(names)))
