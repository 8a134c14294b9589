"""The pure core: decoding beacons, the view state machine, counter arithmetic.

Nothing here imports a web framework or a database driver, or reads the clock: time is an
argument (``now``, epoch seconds, server receive time).
"""
