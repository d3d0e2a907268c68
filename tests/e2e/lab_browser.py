"""Headless Chromium for the lab's browser tests (Debian's chromium through Playwright; never
`playwright install`)."""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
    "--disable-sync", "--no-first-run",
]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@contextmanager
def chromium_page(base_url: str, *, width: int = 1400, height: int = 900):
    """A page whose every dialog, console error and off-site request is recorded on `page.lab_events`."""
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # the test's ORM calls run beside Playwright's loop
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        events = {"dialogs": [], "console_errors": [], "offsite_requests": []}
        page.lab_events = events

        def on_dialog(dialog):
            events["dialogs"].append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("console", lambda msg: events["console_errors"].append(msg.text) if msg.type == "error" else None)
        page.on("request", lambda req: None if req.url.startswith(base_url) or req.url.startswith("data:") else events["offsite_requests"].append(req.url))
        try:
            yield page
        finally:
            context.close()
            browser.close()
            if previous is None:
                os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
            else:
                os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


def login(page, base_url: str, username: str, password: str) -> None:
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base_url}/")


def shot(page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def create_generated_dataset(page, base_url: str, name: str, n: int, task: str = "addition") -> None:
    """Stage a dataset from a built-in generator and wait for its validation report (nothing saved yet)."""
    page.goto(f"{base_url}/datasets/new/")
    page.fill("#id_gen-name", name)
    page.select_option("#id_gen-task", task)
    page.fill("#id_gen-n", str(n))
    page.click("#generator-form button.primary")
    page.wait_for_selector("text=Validation report")


def save_staged_dataset(page) -> None:
    """Save the staged dataset; the dataset page with its versions follows."""
    page.click("text=Save dataset")
    page.wait_for_selector("text=Versions")


def wait_until(predicate, page, timeout_s: float = 20.0) -> None:
    """Poll a Python predicate (the page's CSP forbids Playwright's string-evaluated wait_for_function)."""
    import time

    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met within %.0f s" % timeout_s)
        page.wait_for_timeout(200)


def make_member(username: str, password: str, *, slug: str, team_name: str, role: str = "admin"):
    """A user who belongs to a new team; returns (user, team)."""
    from django.contrib.auth import get_user_model

    from lab.models import Membership, Team

    user = get_user_model().objects.create_user(username, password=password)
    team = Team.objects.create(slug=slug, name=team_name)
    Membership.objects.create(team=team, user=user, role=role)
    return user, team


def make_project_member(username: str, password: str, *, slug: str, team_name: str,
                        project: str = "R1-Zero in miniature"):
    """make_member, and a project in the new team; returns (user, team, project)."""
    from lab.models import Project

    user, team = make_member(username, password, slug=slug, team_name=team_name)
    return user, team, Project.objects.create(team=team, name=project)
