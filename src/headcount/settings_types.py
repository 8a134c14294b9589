"""The click parameter types of the settings that click does not have: booleans as variables
spell them, roles, store URLs (checked by the adapter that opens them) and CORS origins."""

from __future__ import annotations

import importlib
import re
from typing import Any

import click

__all__ = ["SECONDS", "Bool", "Origins", "Roles", "Url"]


class Bool(click.ParamType[bool]):
    """``1 true yes on`` / ``0 false no off`` and the empty string (an unset variable)."""

    name = "boolean"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, bool):
            return value
        lowered = str(value).strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off", ""):
            return False
        self.fail(f"{value!r} is not a boolean: use true or false.", param, ctx)


class Roles(click.ParamType[str]):
    """``all``, or a comma list of surfaces."""

    name = "roles"
    SURFACES = ("collector", "counts", "system")

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        roles = [r.strip() for r in str(value).split(",") if r.strip()]
        unknown = [r for r in roles if r != "all" and r not in self.SURFACES]
        if not roles or unknown:
            self.fail(
                f"{value!r} is not a role: use all, or a comma list of {', '.join(self.SURFACES)}.",
                param,
                ctx,
            )
        return ",".join(roles)


class Url(click.ParamType[str]):
    """A store URL, checked by the adapter module that will open it (nothing is opened)."""

    def __init__(self, name: str, check: str) -> None:
        self.name = name
        self._check = check  # "module:function", imported when a value is checked

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        module, _, function = self._check.partition(":")
        try:
            getattr(importlib.import_module(module), function)(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        return str(value)


class Origins(click.ParamType[str]):
    """``*``, or a comma list of origins (``https://www.example.com``, a port if not the
    scheme's default), lower-cased as browsers send them in ``Origin``."""

    name = "origins"
    _ORIGIN = re.compile(
        r"https?://[a-z0-9.-]+(:[0-9]{1,5})?|https?://\[[0-9a-f:.]+\](:[0-9]{1,5})?"
    )

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        origins = [o.strip().lower() for o in str(value).split(",") if o.strip()]
        if origins == ["*"]:
            return "*"
        bad = [o for o in origins if not self._ORIGIN.fullmatch(o)]
        if not origins or bad:
            self.fail(
                f"{value!r} is not `*` or a comma list of origins: write e.g. "
                "https://www.example.com,https://app.example.com:8443 (scheme, host and an "
                "optional port; no path, no trailing slash).",
                param,
                ctx,
            )
        return ",".join(origins)


SECONDS = click.FloatRange(min=0, min_open=True)  # a duration: more than 0 seconds
