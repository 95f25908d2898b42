"""The demo as `make demo` runs it: `python -m demo_blog.run` starts the web server, a
worker and the consumers as one tree against a fresh database. A real Chromium publishes
a post through the pages, sees the author's count rise and the post found by search,
deletes it and sees it vanish; then SIGINT to the tree's leader stops every process.

Set DEMO_SCREENSHOTS=<folder> to save the pages shown in docs/demo.md along the way."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.demo.launcher import (
    DemoTree,
    alive,
    demo_env,
    descendants,
    drop_database,
    free_port,
    fresh_database_name,
)
from tests.server import database_exists, database_url

pytestmark = pytest.mark.timeout(600)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SOON = 30.0  # seconds: "within a few seconds", with room for a busy shared cluster


def ensure_chromium() -> Path:
    """Debian's Chromium, installed here when missing (never `playwright install`)."""
    if CHROMIUM.exists():
        return CHROMIUM
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.fail(f"{CHROMIUM} is missing; install it: apt-get install -y chromium")
    install = ["apt-get", "install", "-y", "-q", "chromium"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, env=env, capture_output=True).returncode != 0:
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        done = subprocess.run(install, env=env, capture_output=True, text=True)
        assert done.returncode == 0, f"apt-get install chromium failed:\n{done.stderr[-2000:]}"
    return CHROMIUM


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    name = fresh_database_name()
    tree = DemoTree(free_port(), demo_env(
        DATABASE_URL=database_url(name),
        DEMO_REBUILD_PAUSE_SECONDS="0.5"), tmp_path_factory.mktemp("demo") / "demo.log")
    try:
        tree.wait_for("Ctrl+C stops everything.")
        tree.wait_for("eventjobs.consume: consume ")  # every group is running
        tree.wait_for("runworker starting")
        assert database_exists(name)  # on the server DATABASE_URL names, not a fixed one
        yield tree
    finally:
        tree.close()
        drop_database(name)


def eventually(read: Callable[[], object], expected: object, what: str,
               timeout: float = SOON) -> None:
    deadline = time.monotonic() + timeout
    while (value := read()) != expected:
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still {value!r} after {timeout}s, expected "
                                 f"{expected!r}")
        time.sleep(0.25)


class Shots:
    def __init__(self, page):
        folder = os.environ.get("DEMO_SCREENSHOTS")
        self.page = page
        self.folder = Path(folder) if folder else None
        if self.folder:
            self.folder.mkdir(parents=True, exist_ok=True)

    def take(self, name: str) -> None:
        if self.folder:
            self.page.screenshot(path=str(self.folder / f"{name}.png"), full_page=True)


def test_publish_count_search_delete_in_a_real_browser(demo):
    from playwright.sync_api import sync_playwright

    chromium = ensure_chromium()
    word = "quokka"  # in no seeded post; the database is new for this module
    title = f"Field notes on the {word}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(chromium), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            shots = Shots(page)
            page.goto(demo.base + "/")
            shots.take("home")
            page.goto(demo.base + "/accounts/login/?next=/posts/new/")
            page.get_by_label("Username").fill("alice")
            page.get_by_label("Password").fill("demo-password")
            page.get_by_role("button", name="Log in").click()
            page.wait_for_url("**/posts/new/")

            page.get_by_role("link", name="Alice Moreau").click()
            page.wait_for_url(re.compile(r".*/authors/\d+/$"))
            author_url = page.url

            def count() -> int:
                page.goto(author_url)
                text = page.locator("#published-count").inner_text()
                return int(text.split()[0])

            before = 2  # alice's seeded posts, once post-counter has caught up with the seeds
            eventually(count, before, "the author's published count from the seeds")
            page.goto(demo.base + "/posts/new/")
            page.get_by_label("Title").fill(title)
            page.get_by_label("Body").fill(f"The {word} smiles at everyone it meets.")
            shots.take("new-post")
            page.get_by_role("button", name="Publish", exact=True).click()
            page.wait_for_url(re.compile(r".*/posts/\d+/$"))
            assert page.locator("h1").inner_text().startswith(title)
            shots.take("post")

            eventually(count, before + 1, "the author's published count")
            shots.take("author")

            def found() -> list[str]:
                page.goto(f"{demo.base}/search/?q={word}")
                return page.locator("#results a.title").all_inner_texts()

            eventually(found, [title], "the search results")
            if shots.folder:
                page.goto(f"{demo.base}/search/?q=postgresql")
                shots.take("search")
            page.goto(demo.base + "/activity/")
            assert title in page.locator("#activity").inner_text()
            shots.take("activity")
            page.goto(demo.base + "/how-it-works/")
            page.wait_for_timeout(2500)  # one refresh of the live part
            assert "search-index" in page.locator("#groups").inner_text()
            shots.take("how-it-works")

            page.goto(demo.base + "/search/")
            page.get_by_role("button", name="Rebuild the search index").click()
            page.wait_for_url(re.compile(r".*/search/rebuilds/\d+/$"))
            # Progress while it runs (page reloads each second), or already done.
            page.wait_for_function("/^([1-9][0-9]* of|Done)/.test("
                                   "document.querySelector('#progress').innerText)",
                                   timeout=SOON * 1000)
            shots.take("rebuild")
            page.wait_for_function("document.querySelector('#progress').innerText"
                                   ".startsWith('Done')", timeout=60_000)

            page.goto(demo.base + "/search/?q=" + word)
            page.get_by_role("link", name=title).click()
            page.get_by_role("link", name="Delete").click()
            page.get_by_role("button", name="Delete").click()
            page.wait_for_url(author_url)
            eventually(found, [], "the search results after deleting")
            eventually(count, before, "the author's published count after deleting")
        finally:
            browser.close()


def test_sigint_to_the_leader_stops_every_process(demo):
    pids = descendants(demo.popen.pid)
    names = demo.output()
    assert len(pids) >= 4, f"expected web, worker (+ its children) and consume: {pids}"
    demo.popen.send_signal(signal.SIGINT)
    assert demo.popen.wait(timeout=90) == 0, demo.output()[-3000:]
    deadline = time.monotonic() + 10
    while (left := {pid for pid in pids if alive(pid)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not left, f"still running after the demo stopped: {left}"
    output = demo.output()[len(names):]
    assert "runworker stopped" in output and "consume: group post-counter" in output
    assert "demo: stopped the web server, the worker and the consumers" in output
    assert "killing" not in output  # every process stopped on its own, cleanly
