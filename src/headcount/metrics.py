"""Process-local counters, exported at ``GET /metrics`` in Prometheus' text format (0.0.4).

A component asks the runtime's :class:`Metrics` once for the counters it will bump
(:meth:`Metrics.counter` returns the same :class:`Counter` for the same name and labels) and
then adds to ``counter.value`` directly: no lookup, no lock, nothing on the hot path but an
integer add (one process, one event loop). Gauges that are read from elsewhere (the live store's
view totals) are passed to :meth:`Metrics.render` by whoever serves the page.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["Counter", "Metrics"]

Labels = tuple[tuple[str, str], ...]


class Counter:
    __slots__ = ("value",)

    def __init__(self) -> None:
        self.value = 0


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{name}="{_escape(value)}"' for name, value in labels) + "}"


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

    def render(self, gauges: Iterable[tuple[str, str, float]] = ()) -> str:
        """The exposition text: every counter, then the given ``(name, help, value)`` gauges."""
        lines: list[str] = []
        for name, samples in sorted(self._counters.items()):
            lines.append(f"# HELP {name} {self._help[name]}")
            lines.append(f"# TYPE {name} counter")
            lines.extend(
                f"{name}{_labels(labels)} {counter.value}"
                for labels, counter in sorted(samples.items())
            )
        for name, help, value in gauges:
            lines.append(f"# HELP {name} {help}")
            lines.append(f"# TYPE {name} gauge")
            lines.append(f"{name} {value:g}" if isinstance(value, float) else f"{name} {value}")
        return "\n".join(lines) + "\n"
