"""Fixtures of the viewer tests: one store with real sessions of all four agents (built once
per test run), the app over it, a TestClient, uvicorn on a free port, and headless Chromium
(Debian's ``chromium``: Playwright cannot download its own browser here)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from viewer_stores import Server, build  # noqa: E402


@pytest.fixture(scope="session")
def viewer_store(tmp_path_factory):
    """(url, ids): t2i (alone and in a study), shopper, w2s and judge sessions."""
    folder = tmp_path_factory.mktemp("viewer")
    url = f"sqlite:///{folder}/view.db"
    with pytest.MonkeyPatch.context() as mp:  # the session-wide cache, not the user's home
        mp.setenv("TINMEN_CACHE", os.environ.get("TINMEN_TEST_CACHE") or str(
            tmp_path_factory.getbasetemp() / "tinmen-cache"))
        mp.setenv("TINMEN_OUT", str(folder / "out"))
        ids = build(url)
    return url, ids


@pytest.fixture(scope="session")
def app(viewer_store, tmp_path_factory):
    from tinmen.viewer import ViewerConfig, create_app

    application = create_app(ViewerConfig(db=viewer_store[0],
                                          cache=tmp_path_factory.mktemp("view-cache")))
    yield application
    application.state.stores.close()


@pytest.fixture(scope="session")
def client(app):
    from fastapi.testclient import TestClient

    return TestClient(app, base_url="http://127.0.0.1")


@pytest.fixture(scope="session")
def csrf(app):
    return {"X-CSRF-Token": app.state.guard.csrf}


@pytest.fixture(scope="session")
def server(app):
    srv = Server(app).start()
    yield srv
    srv.stop()


def chromium_or_skip() -> str:
    """The browser; missing is a skip on a laptop but a failure in CI (``CI=true``)."""
    path = shutil.which("chromium")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        path = None
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail("chromium or playwright is missing in CI: .ci/run installs chromium "
                    "(.ci/chromium) and .ci/install installs playwright (dev extra)")
    pytest.skip("chromium not installed (apt-get install -y chromium, or bash .ci/chromium)")


@pytest.fixture(scope="session")
def browser():
    executable = chromium_or_skip()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable,
                                     args=["--no-sandbox", "--disable-gpu"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()
