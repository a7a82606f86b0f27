"""Strava's brand assets: its own files when the operator added them, else plain text links."""

from __future__ import annotations

from pathlib import Path

from flask import Flask

from strava_massage import create_app

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="193" height="48"></svg>'


def _app(brand_dir: Path) -> Flask:
    """The service in demo mode with its brand folder at `brand_dir`."""
    return create_app(
        {"TESTING": True, "DEMO": True, "BRAND_DIR": str(brand_dir), "STRAVA_VERIFY_TOKEN": "t",
         "DATABASE_URL": f"sqlite:///{brand_dir.parent / 'db.sqlite'}"}
    )  # fmt: skip


def test_without_strava_files_the_pages_use_text_links(tmp_path: Path) -> None:
    """No drawn imitation: the landing page says "Connect with Strava" and "Powered by Strava"
    in words, and the asset route has nothing to serve."""
    client = _app(tmp_path / "brand").test_client()
    page = client.get("/").get_data(as_text=True)
    assert ">Connect with Strava</a>" in page
    assert '<span class="powered">Powered by Strava</span>' in page
    assert "<img" not in page.split("<footer")[1]
    assert client.get("/brand/connect").status_code == 404
    static = Path(__file__).parents[1] / "strava_massage" / "static"
    assert not list(static.glob("*strava*"))


def test_the_operators_official_files_are_shown_unaltered(tmp_path: Path) -> None:
    """Files saved in the brand folder are served byte for byte and used by the pages."""
    folder = tmp_path / "brand"
    folder.mkdir()
    (folder / "connect-with-strava.svg").write_bytes(SVG)
    (folder / "powered-by-strava.png").write_bytes(b"\x89PNG fake")
    client = _app(folder).test_client()
    page = client.get("/").get_data(as_text=True)
    assert '<img src="/brand/connect" alt="Connect with Strava"' in page
    assert '<img class="powered" src="/brand/powered" alt="Powered by Strava"' in page
    for path, body in (("/brand/connect", SVG), ("/brand/powered", b"\x89PNG fake")):
        with client.get(path) as served:  # closes the file it streams
            assert served.status_code == 200 and served.data == body
    assert client.get("/brand/other").status_code == 404
