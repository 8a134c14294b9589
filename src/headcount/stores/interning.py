"""Strings shared by many views (environment ids, content ids), stored once as small ints.

A view row holds 4-byte codes instead of string references; each distinct string is kept once,
with a count of the rows using it, and forgotten when that count reaches zero, so a long-running
process does not accumulate every video id it ever saw. Code ``0`` stands for "no value".

While a snapshot copies the store's partitions one at a time (between requests), codes must
keep their meaning until it has also copied the values: :meth:`hold` delays forgetting a value
whose last user went away (its code is not reused) until :meth:`unhold`.
"""

from __future__ import annotations

__all__ = ["Interner"]


class Interner:
    __slots__ = ("_codes", "_free", "_held", "_refs", "_values")

    def __init__(self) -> None:
        self._codes: dict[str, int] = {}
        self._values: list[str | None] = [None]
        self._refs: list[int] = [0]
        self._free: list[int] = []
        self._held: list[int] | None = None  # codes whose last user left during a hold

    def __len__(self) -> int:
        return len(self._codes)

    def acquire(self, value: str | None) -> int:
        """The code of ``value`` (0 for None), counting one more user of it."""
        if value is None:
            return 0
        code = self._codes.get(value)
        if code is None:
            if self._free:
                code = self._free.pop()
                self._values[code] = value
                self._refs[code] = 0
            else:
                code = len(self._values)
                self._values.append(value)
                self._refs.append(0)
            self._codes[value] = code
        self._refs[code] += 1
        return code

    def release(self, code: int) -> None:
        """One user of ``code`` is gone; the value is forgotten with its last user."""
        if code == 0:
            return
        refs = self._refs[code] - 1
        self._refs[code] = refs
        if refs == 0:
            if self._held is not None:
                self._held.append(code)
            else:
                self._forget(code)

    def _forget(self, code: int) -> None:
        value = self._values[code]
        assert value is not None
        del self._codes[value]
        self._values[code] = None
        self._free.append(code)

    def hold(self) -> None:
        """From now on, keep every code's value until :meth:`unhold`."""
        self._held = []

    def unhold(self) -> None:
        held, self._held = self._held or [], None
        for code in held:
            if self._refs[code] == 0 and self._values[code] is not None:  # still unused
                self._forget(code)

    def code(self, value: str) -> int | None:
        """The code of a value in use, without counting a user (for reads)."""
        return self._codes.get(value)

    def value(self, code: int) -> str | None:
        return self._values[code]

    def by_code(self) -> list[str | None]:
        """The live list of values by code (None for free codes), for reads in hot loops:
        never modify it; it follows later acquires and releases."""
        return self._values

    def values(self) -> list[str | None]:
        """Every value by code (None for free codes): what a snapshot saves."""
        return list(self._values)
