"""Every module says what it exports (``__all__``), and says the truth: each exported name
exists. The package's top level exports exactly the SDK surface the README documents."""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys

import pytest

import headcount

# Migrations are Alembic scripts (loaded by Alembic, not imported as an API); the CLI command
# modules register click commands on import and export nothing.
NO_EXPORTS = ("headcount.stores.migrations", "headcount.cli.simulate")
MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(headcount.__path__, "headcount.")
    if not info.name.startswith(NO_EXPORTS)
)


def test_the_walk_found_the_package() -> None:
    assert "headcount.core.decode" in MODULES and "headcount.http.app" in MODULES


@pytest.mark.parametrize("name", MODULES)
def test_every_exported_name_exists(name: str) -> None:
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", None)
    if name.endswith(("headcount.core", "headcount.stores")):
        return  # namespace-like packages with a docstring only
    assert exported is not None, f"{name} has no __all__"
    assert len(set(exported)) == len(exported), f"{name}: duplicate names in __all__"
    missing = [n for n in exported if not hasattr(module, n)]
    assert not missing, f"{name}.__all__ names what it does not define: {missing}"


def test_top_level_exports_the_sdk() -> None:
    assert set(headcount.__all__) >= {"sign_viewer_counts", "CountsClient"}
    assert callable(headcount.sign_viewer_counts)


def test_importing_the_package_pulls_in_no_server_stack() -> None:
    code = (
        "import sys, headcount; "
        "heavy = {'starlette', 'uvicorn', 'sqlalchemy', 'orjson', 'redis'} & set(sys.modules); "
        "print(sorted(heavy))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
