"""`peerboard serve` runs on uvicorn's standard extras (uvloop, httptools), which must be
installed from the project's own dependencies, with the access log off unless asked for."""

from __future__ import annotations

import importlib

from click.testing import CliRunner

from web.cli import main, serve_options


def test_serve_uses_uvloop_and_httptools_and_no_access_log_by_default() -> None:
    options = serve_options("127.0.0.1", 8000, access_log=False)
    assert options["loop"] == "uvloop" and options["http"] == "httptools"
    assert options["access_log"] is False
    for module in ("uvloop", "httptools"):
        importlib.import_module(module)  # installed through uvicorn[standard]


def test_serve_offers_the_access_log_as_an_option() -> None:
    result = CliRunner().invoke(main, ["serve", "--help"])
    assert result.exit_code == 0
    assert "--access-log" in result.output
