"""The admin in a real browser against a live server, with a real `runworker`:
a superuser retries a FAILED job and sees it SUCCESSFUL, reprocesses a dead letter,
pauses and resumes a group; a view-only user sees no actions; a payload's <script>
never runs. EVENTJOBS_SCREENSHOTS=docs/images also saves the screenshots docs/admin.md
shows."""

from __future__ import annotations

import os
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.utils import timezone

from eventjobs.models import DeadLetter, Job, Worker
from tests.admin.browser import ARGS, ensure_chromium, sync_playwright
from tests.admin.conftest import VIEW_ALL, make_user
from tests.factories import ConsumerGroupFactory, DeadLetterFactory, EventFactory, JobFactory

pytestmark = [pytest.mark.acceptance, pytest.mark.timeout(300)]

SCREENSHOTS = os.environ.get("EVENTJOBS_SCREENSHOTS")
XSS = "<script>window.__owned = 1; alert('owned')</script>"


@pytest.fixture
def browser(monkeypatch, settings):
    # Playwright's sync API runs an event loop in this thread; the ORM calls this test
    # makes between page actions are plain synchronous code.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    executable = ensure_chromium()
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(executable), args=ARGS)
        yield chromium
        chromium.close()
        # The ORM opened its own connection in playwright's greenlet context: close it,
        # or it would keep the test database busy at teardown.
        connections.close_all()


def login(browser, base: str, username: str):
    page = browser.new_page(viewport={"width": 1500, "height": 1000})
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.dialogs = dialogs
    page.goto(f"{base}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", "pw")
    page.click("input[type=submit]")
    page.wait_for_url(f"{base}/admin/")
    return page


def user(username: str, perms=(), superuser=False) -> User:
    made = make_user(username, list(perms), superuser=superuser)
    made.set_password("pw")
    made.save()
    return made


def shot(page, name: str, full_page: bool = True) -> None:
    if SCREENSHOTS:
        if page.locator("#nav-sidebar").is_visible():
            page.click("#toggle-nav-sidebar")  # the width goes to the page itself
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"admin-{name}.png"), full_page=full_page)


def seed_for_screenshots() -> None:
    """A last hour with some traffic, so the screenshots show what the pages are for."""
    now = timezone.now()
    for minute in range(0, 60, 3):
        at = now - timedelta(minutes=minute)
        times = {"enqueued_at": at - timedelta(seconds=3), "started_at": at - timedelta(seconds=2),
                 "last_attempted_at": at - timedelta(seconds=2), "finished_at": at}
        JobFactory.create_batch(2 + minute % 5, successful=True, **times)
        if minute % 12 == 0:
            JobFactory(failed=True, task_path="tests.testapp.tasks.record", **times)
    JobFactory.create_batch(4, queue="other", run_after=now - timedelta(seconds=40))
    for minute in range(60):
        EventFactory.create_batch(1 + (minute * 7) % 5,
                                  created_at=now - timedelta(minutes=minute, seconds=5))
    Worker.objects.create(id="web1:4242:9f3a", host="web1", pid=4242, queues=["default"])
    Worker.objects.create(id="web2:3131:77c1", host="web2", pid=3131, queues=["other"],
                          last_seen=now - timedelta(minutes=15))


def test_superuser_retries_reprocesses_and_pauses_in_a_browser(browser, live_server, spawn):
    base = live_server.url
    user("root", superuser=True)
    job = JobFactory(failed=True, max_attempts=1, task_path="tests.testapp.tasks.record",
                     args=[XSS])
    dead = DeadLetterFactory(group="ledger", event=EventFactory(data={"seq": 1, "html": XSS}))
    # The group moved past the event it dead-lettered (else a reprocess is left to the
    # replay that will deliver it again).
    ConsumerGroupFactory(name="ledger", partitions=2,
                         cursors__at=(dead.event_txid, dead.event_id))
    if SCREENSHOTS:
        seed_for_screenshots()
    page = login(browser, base, "root")

    page.goto(f"{base}/admin/eventjobs/overview/?refresh=0")
    assert page.locator("#eventjobs-queues").is_visible()
    shot(page, "overview")
    if SCREENSHOTS:
        page.goto(f"{base}/admin/eventjobs/job/")
        shot(page, "jobs", full_page=False)
    page.goto(f"{base}/admin/eventjobs/job/?status=FAILED")
    page.get_by_role("link", name=str(job.id), exact=True).click()
    assert "FAILED" in page.locator(".eventjobs-status").inner_text()
    shot(page, "job-detail")
    page.get_by_role("button", name="Retry this job").click()
    assert "Retried 1 job." in page.locator(".messagelist").inner_text()
    assert Job.objects.get(pk=job.pk).display_status == "READY"

    worker = spawn("runworker", "--burst", "--concurrency", "1")
    assert worker.wait(timeout=120) == 0, worker.output()
    page.reload()
    assert page.locator(".eventjobs-status").inner_text() == "SUCCESSFUL"
    assert "window.__owned" in page.locator(".field-return_value_text").inner_text()

    page.goto(f"{base}/admin/eventjobs/deadletter/{dead.pk}/change/")
    page.get_by_role("button", name="Reprocess").click()
    assert "Reprocessed and resolved 1 dead letter." in page.locator(".messagelist").inner_text()
    assert "Resolved" in page.locator(".field-status").inner_text()
    assert DeadLetter.objects.get(pk=dead.pk).status == "RESOLVED"

    page.goto(f"{base}/admin/eventjobs/consumergroup/ledger/change/")
    page.get_by_role("button", name="Pause").click()
    assert "Paused 1 group." in page.locator(".messagelist").inner_text()
    page.get_by_role("button", name="Resume").click()
    assert "Resumed 1 group." in page.locator(".messagelist").inner_text()
    assert page.get_by_role("button", name="Pause").is_visible()

    assert page.dialogs == []  # the <script> in the job's args, its result, the event's data
    assert page.evaluate("typeof window.__owned") == "undefined"


def test_view_only_staff_sees_no_actions_in_a_browser(browser, live_server, transactional_db):
    base = live_server.url
    user("viewer", VIEW_ALL)
    job = JobFactory(failed=True)
    dead = DeadLetterFactory(group="ledger")
    ConsumerGroupFactory(name="ledger")
    page = login(browser, base, "viewer")
    for listing in ("job", "deadletter", "consumergroup"):
        page.goto(f"{base}/admin/eventjobs/{listing}/")
        assert page.locator("#changelist").is_visible()
        assert page.locator("select[name=action]").count() == 0, listing
    for detail in (f"job/{job.pk}", f"deadletter/{dead.pk}", "consumergroup/ledger"):
        page.goto(f"{base}/admin/eventjobs/{detail}/change/")
        assert page.locator(".eventjobs-tools button").count() == 0, detail
        assert page.get_by_text("Reset position").count() == 0
    page.goto(f"{base}/admin/eventjobs/overview/?refresh=0")
    assert page.locator("#eventjobs-alarms").is_visible()


