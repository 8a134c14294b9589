"""Headcount's benchmarks: ``python -m bench`` (or ``make bench``) runs them all.

They are not tests. Each one measures Headcount against a baseline taken in the same run on the
same machine (a bare uvloop+httptools server, the raw ``cryptography`` verify rate, a naive
``__slots__`` layout), because this machine is shared and absolute numbers move by ±15 % between
sessions. See ``docs/benchmarks.md``.
"""
