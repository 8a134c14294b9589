"""HTTP surfaces: the collector, the counts API and the System API, served by one app."""

from headcount.http.app import HeadcountApp, create_app

__all__ = ["HeadcountApp", "create_app"]
