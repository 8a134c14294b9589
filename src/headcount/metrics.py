"""Process-local counters, exported at ``GET /metrics`` through ``prometheus_client``.

A component asks the runtime's :class:`Metrics` once for the counters it will bump
(:meth:`Metrics.counter` returns the same :class:`Counter` for the same name and labels) and
then adds to ``counter.value`` directly: no lookup, no lock, nothing on the hot path but an
integer add (one process, one event loop). Gauges that are read from elsewhere (the live store's
view totals) are passed to :meth:`Metrics.families` by whoever serves the page, which hands
the families to ``prometheus_client`` (a custom collector: the hot path keeps its int adds).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

__all__ = ["Counter", "Metrics"]

Labels = tuple[tuple[str, str], ...]


class Counter:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


class Metrics:
    def __init__(self) -> None:
        self._help: dict[str, str] = {}
        self._counters: dict[str, dict[Labels, Counter]] = {}

    def counter(self, name: str, help: str, **labels: str) -> Counter:
        self._help.setdefault(name, help)
        samples = self._counters.setdefault(name, {})
        key = tuple(sorted(labels.items()))
        counter = samples.get(key)
        if counter is None:
            counter = samples[key] = Counter()
        return counter

    def families(self, gauges: Iterable[tuple[str, str, float]] = ()) -> Iterator[Metric]:
        """Every counter, then the given ``(name, help, value)`` gauges, as prometheus_client
        metric families (its exposition formats the numbers: full float precision)."""
        for name, samples in sorted(self._counters.items()):
            family = CounterMetricFamily(name, self._help[name], labels=_label_names(samples))
            for labels, counter in sorted(samples.items()):
                family.add_metric([value for _, value in labels], counter.value)
            yield family
        for name, help, value in gauges:
            yield GaugeMetricFamily(name, help, value=value)


def _label_names(samples: dict[Labels, Counter]) -> list[str]:
    names = {tuple(name for name, _ in labels) for labels in samples}
    if len(names) != 1:
        raise ValueError(f"samples of one metric must share their label names: {names}")
    return list(next(iter(names)))
