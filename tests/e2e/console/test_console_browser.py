"""The operator's console driven in headless Chromium against a running ``artstore dev``.

One deployment for the module (its start is the expensive part); each test signs in afresh.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis

from artstore.stack import StackEnv, stop_stack
from tests.dev_ports import free_dev_ports
from tests.e2e.console.browser import FLAGS, chromium_or_skip
from tests.e2e.test_dev import Dev, _drop_database, start_dev

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.kafka,
    pytest.mark.postgres,
    pytest.mark.redis,
    pytest.mark.s3,
]
#: Bound on waiting for the pipeline to show a change in the browser (a bound, not a sleep).
SHOWN_WITHIN_MS = 60_000
SCREENSHOTS = os.environ.get("ARTSTORE_CONSOLE_SCREENSHOTS")


@dataclass
class Deployment:
    dev: Dev
    data_dir: Path
    client_id: str
    secret: str

    @property
    def console(self) -> str:
        return f"http://127.0.0.1:{self.dev.port_base + 1}/console"


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory, stack: StackEnv) -> Iterator[Deployment]:
    data_dir = tmp_path_factory.mktemp("console") / "artstore-data"
    runs: list[Dev] = []
    dev = start_dev(data_dir, free_dev_ports(), runs, "console")
    try:
        dev.wait_ready()
        shown = re.search(r"client_id\s+(\S+)\s+client_secret\s+(\S+)", dev.text)
        assert shown, dev.text
        yield Deployment(dev, data_dir, shown.group(1), shown.group(2))
    finally:
        if dev.process.poll() is None:
            dev.process.send_signal(signal.SIGINT)
            try:
                dev.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                dev.process.kill()
                dev.process.wait()
        stop_stack(data_dir / "stack")
        instance = json.loads((data_dir / "dev.json").read_text())
        asyncio.run(_drop_database(stack.database_url, instance["database"]))
        client = redis.Redis.from_url(stack.redis_url)
        keys = list(client.scan_iter(f"artstore:dev-{instance['instance_id']}:*"))
        if keys:
            client.delete(*keys)
        client.close()


@pytest.fixture(scope="module")
def browser(deployment: Deployment) -> Iterator[object]:
    """The driver; each test launches its own browser (a fresh profile each time)."""
    chromium_or_skip()
    with playwright_api.sync_playwright() as driver:
        yield driver


def _new_page(driver: object, tmp_path: Path) -> object:
    browser = driver.chromium.launch(  # type: ignore[attr-defined]
        executable_path=str(chromium_or_skip()),
        headless=True,
        args=[a for a in FLAGS if a != "--headless"],
    )
    context = browser.new_context(accept_downloads=True, viewport={"width": 1280, "height": 900})
    return context.new_page()


def sign_in(page: object, deployment: Deployment, client_id: str, secret: str) -> None:
    page.goto(deployment.console)  # type: ignore[attr-defined]
    page.fill("input[name=client_id]", client_id)  # type: ignore[attr-defined]
    page.fill("input[name=client_secret]", secret)  # type: ignore[attr-defined]
    page.click("form[action='/console/signin'] button")  # type: ignore[attr-defined]
    page.wait_for_url("**/console/elements")  # type: ignore[attr-defined]


def shot(page: object, name: str) -> None:
    if SCREENSHOTS:
        Path(SCREENSHOTS).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(SCREENSHOTS) / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def upload(deployment: Deployment, path: Path, tag: str) -> None:
    env = {**os.environ, "ARTSTORE_ENV_FILE": str(deployment.data_dir / "artstore.env")}
    done = subprocess.run(
        [sys.executable, "-m", "artstore", "upload", str(path), "--tag", tag],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_an_admin_signs_in_changes_a_mode_searches_downloads_and_signs_out(
    deployment: Deployment, browser: object, tmp_path: Path
) -> None:
    expect = playwright_api.expect
    content = b"console download check " + os.urandom(16).hex().encode()
    sample = tmp_path / "zeppelin-console.txt"
    sample.write_bytes(content)
    upload(deployment, sample, "console-e2e")

    page = _new_page(browser, tmp_path / "profile")
    sign_in(page, deployment, deployment.client_id, deployment.secret)
    cards = page.locator("article.element")
    expect(cards).to_have_count(3, timeout=SHOWN_WITHIN_MS)
    for element in ("se-edit", "se-rw", "se-s3"):
        expect(page.locator(f"article[data-element={element}]")).to_be_visible()
    shot(page, "elements")

    # An allowed change: se-rw rw -> ro, seen once the element announces it.
    page.select_option("#mode-form select[name=element_id]", "se-rw")
    page.select_option("#mode-form select[name=target_mode]", "ro")
    page.fill("#mode-form input[name=reason]", "quarter closed")
    page.click("#mode-form button")
    expect(page.locator("p.notice")).to_contain_text("se-rw to ro requested")
    expect(page.locator("article[data-element=se-rw] .mode")).to_have_attribute(
        "data-mode", "ro", timeout=SHOWN_WITHIN_MS
    )
    # A forbidden one: edit elements never change; the reason is shown.
    page.select_option("#mode-form select[name=element_id]", "se-edit")
    page.select_option("#mode-form select[name=target_mode]", "ro")
    page.fill("#mode-form input[name=reason]", "try it")
    page.click("#mode-form button")
    expect(page.locator("p.refusal")).to_contain_text("edit elements never change mode")
    # ro -> rw without the confirmation is refused, naming it.
    page.select_option("#mode-form select[name=element_id]", "se-rw")
    page.select_option("#mode-form select[name=target_mode]", "rw")
    page.fill("#mode-form input[name=reason]", "reopen")
    page.click("#mode-form button")
    expect(page.locator("p.refusal")).to_contain_text("needs an explicit confirmation")
    shot(page, "elements-refusal")

    page.goto(f"{deployment.console}/ingest")
    expect(page.locator("table.list")).to_contain_text("zeppelin-console.txt")
    shot(page, "ingest")

    page.goto(f"{deployment.console}/search")
    page.fill("#search-form input[name=tag]", "console-e2e")
    page.click("#search-form button")
    result = page.locator("table.results a", has_text="zeppelin-console.txt")
    expect(result).to_have_count(1)
    shot(page, "search")
    result.click()
    expect(page.locator("h1")).to_have_text("zeppelin-console.txt")
    expect(page.locator("pre.sidecar")).to_contain_text(hashlib.sha256(content).hexdigest())
    expect(page.locator("ol.history")).to_contain_text("stored on")
    shot(page, "file")
    with page.expect_download() as waiting:
        page.click("#download")
    downloaded = waiting.value
    assert Path(downloaded.path()).read_bytes() == content
    assert downloaded.suggested_filename == "zeppelin-console.txt"

    page.goto(f"{deployment.console}/pipeline")
    expect(page.locator("h1")).to_have_text("Pipeline")
    expect(page.locator("body")).to_contain_text("Dead letters")
    shot(page, "pipeline")
    page.goto(f"{deployment.console}/audit")
    expect(page.locator("h1")).to_have_text("Audit log")
    shot(page, "audit")
    page.goto(f"{deployment.console}/accounts")
    expect(page.locator("table.list")).to_contain_text(deployment.client_id)
    shot(page, "accounts")

    page.click("form.signout button")
    page.wait_for_url("**/console/signin?ended=1")
    expect(page.locator("p.notice")).to_contain_text("signed out")
    shot(page, "signin")
    page.goto(f"{deployment.console}/elements")
    page.wait_for_url("**/console/signin?next=*")


def test_a_readonly_account_sees_but_cannot_change_a_mode_even_posting_directly(
    deployment: Deployment, browser: object, tmp_path: Path
) -> None:
    expect = playwright_api.expect
    admin = _new_page(browser, tmp_path / "admin")
    sign_in(admin, deployment, deployment.client_id, deployment.secret)
    admin.goto(f"{deployment.console}/accounts")
    admin.fill("input[name=name]", "console-viewer")
    admin.select_option("select[name=role]", "readonly")
    admin.click("form[action='/console/accounts'] button")
    client_id = admin.locator("code.client-id").inner_text()
    secret = admin.locator("code.client-secret").inner_text()
    expect(admin.locator("tr[data-account=console-viewer] .status")).to_have_text("active")

    viewer = _new_page(browser, tmp_path / "viewer")
    sign_in(viewer, deployment, client_id, secret)
    expect(viewer.locator("article.element")).to_have_count(3)
    expect(viewer.locator("#mode-form")).to_have_count(0)
    before = viewer.locator("article[data-element=se-s3] .mode").get_attribute("data-mode")
    token = viewer.locator("form.signout input[name=csrf_token]").get_attribute("value")
    posted = viewer.request.post(
        f"{deployment.console}/elements/mode",
        form={"csrf_token": token, "element_id": "se-s3", "target_mode": "ro", "reason": "x"},
        max_redirects=0,
    )
    assert posted.status == 403
    assert "may not change element modes" in posted.text()
    viewer.goto(f"{deployment.console}/accounts")
    expect(viewer.locator("p.error")).to_contain_text("may not see or manage accounts")
    viewer.goto(f"{deployment.console}/elements")
    assert viewer.locator("article[data-element=se-s3] .mode").get_attribute("data-mode") == before


def test_a_form_without_its_csrf_token_is_refused(
    deployment: Deployment, browser: object, tmp_path: Path
) -> None:
    page = _new_page(browser, tmp_path / "csrf")
    sign_in(page, deployment, deployment.client_id, deployment.secret)
    fields = {"element_id": "se-s3", "target_mode": "ro", "reason": "no token"}
    missing = page.request.post(f"{deployment.console}/elements/mode", form=fields, max_redirects=0)
    assert missing.status == 403
    assert "CSRF token is missing" in missing.text()
    forged = page.request.post(
        f"{deployment.console}/elements/mode",
        form={**fields, "csrf_token": "forged"},
        max_redirects=0,
    )
    assert forged.status == 403
    page.goto(f"{deployment.console}/elements")
    assert page.locator("article[data-element=se-s3] .mode").get_attribute("data-mode") == "rw"
