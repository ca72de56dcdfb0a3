"""Headless Chromium (Debian's chromium and chromedriver, through selenium) for the staff web tests, with
axe-core (npm, tests/browser/node_modules) for accessibility.

Selenium blocks, so every browser call runs in a thread while the site keeps serving on the test's loop.
Without Chromium, chromedriver or axe-core the tests skip, unless INITIATIEFBOT_REQUIRE_BROWSER=1 (CI).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
CHROMEDRIVER = Path(os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
AXE = Path(__file__).resolve().parent / "browser" / "node_modules" / "axe-core" / "axe.min.js"
# What Dutch government sites must meet: WCAG 2.1 A and AA.
AXE_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]

T = TypeVar("T")


def require_browser() -> None:
    """Skip (on a laptop) or fail (in CI) when Chromium, chromedriver, selenium or axe-core is missing."""
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER, AXE) if not p.exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("the selenium package")
    if not missing:
        return
    advice = (
        "missing " + ", ".join(missing) + ": apt-get install -y chromium chromium-driver; "
        "npm ci --prefix tests/browser"
    )
    if os.environ.get("INITIATIEFBOT_REQUIRE_BROWSER") == "1":
        pytest.fail(advice)
    pytest.skip(advice)


class Browser:
    """One headless Chromium window; each method runs its selenium calls off the event loop."""

    def __init__(self, downloads: Path) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        self._profile = tempfile.mkdtemp(prefix="chromium-")
        for flag in (
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--window-size=1280,900",
            "--lang=nl-NL",
            f"--user-data-dir={self._profile}",
        ):
            options.add_argument(flag)
        options.add_experimental_option(
            "prefs",
            {
                "download.default_directory": str(downloads),
                "download.prompt_for_download": False,
                "intl.accept_languages": "nl-NL,nl",
            },
        )
        self.downloads = downloads
        self.driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
        self.driver.set_page_load_timeout(60)
        self.driver.set_script_timeout(60)
        self.driver.execute_cdp_cmd(
            "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )

    async def _run(self, call: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(call, *args)

    async def open(self, url: str) -> None:
        await self._run(self.driver.get, url)

    async def click(self, css: str, *, navigates: bool = True) -> None:
        """Click the element; when it ``navigates`` (a link, a form's button), wait for the next page."""
        from selenium.webdriver.common.by import By

        await self._run(self._click, By.CSS_SELECTOR, css, navigates)

    async def click_link(self, text: str, *, navigates: bool = True) -> None:
        """Click the first link whose text contains ``text`` (see :meth:`click`)."""
        from selenium.webdriver.common.by import By

        await self._run(self._click, By.PARTIAL_LINK_TEXT, text, navigates)

    def _click(self, by: str, what: str, navigates: bool) -> None:
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        page = self.driver.find_element(By.TAG_NAME, "html")
        self.driver.find_element(by, what).click()

        def left(_driver: Any) -> bool:
            # The old page is gone once its node cannot be read: Chromium says "stale", or, while it
            # swaps documents, "Node with given id does not belong to the document" (which selenium's
            # staleness_of does not take for stale, and raised out of the wait now and then).
            try:
                page.is_enabled()
            except WebDriverException:
                return True
            return False

        if navigates:
            WebDriverWait(self.driver, 60).until(left)
            WebDriverWait(self.driver, 60).until(
                lambda driver: driver.execute_script("return document.readyState") == "complete"
            )

    async def select(self, name: str, value: str) -> None:
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import Select

        await self._run(lambda: Select(self.driver.find_element(By.NAME, name)).select_by_value(value))

    async def fill(self, name: str, value: str) -> None:
        from selenium.webdriver.common.by import By

        def fill() -> None:
            field = self.driver.find_element(By.NAME, name)
            field.clear()
            field.send_keys(value)

        await self._run(fill)

    async def text(self, css: str = "body") -> str:
        from selenium.webdriver.common.by import By

        return await self._run(lambda: self.driver.find_element(By.CSS_SELECTOR, css).text)

    async def wait_text(self, css: str, timeout: float = 30.0) -> str:  # noqa: ASYNC109
        """The text of ``css`` once it is on the page: right after a form's redirect Chromium may still be
        swapping documents, and a node found in the old one cannot be read."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        def read() -> str:
            return str(
                WebDriverWait(self.driver, timeout, ignored_exceptions=(WebDriverException,)).until(
                    lambda driver: driver.find_element(By.CSS_SELECTOR, css).text or False
                )
            )

        return await self._run(read)

    async def all_text(self, css: str) -> list[str]:
        from selenium.webdriver.common.by import By

        return await self._run(lambda: [e.text for e in self.driver.find_elements(By.CSS_SELECTOR, css)])

    async def url(self) -> str:
        return await self._run(lambda: self.driver.current_url)

    async def title(self) -> str:
        return await self._run(lambda: self.driver.title)

    async def screenshot(self, path: Path, *, height: int | None = None) -> None:
        """A PNG of the page, 1280 pixels wide: its whole length, or its first ``height`` pixels."""

        def shoot() -> None:
            whole = int(self.driver.execute_script("return document.documentElement.scrollHeight"))
            self.driver.set_window_size(1280, min(height or whole + 40, 6000))
            path.parent.mkdir(parents=True, exist_ok=True)
            self.driver.save_screenshot(str(path))
            self.driver.set_window_size(1280, 900)

        await self._run(shoot)

    async def axe(self) -> list[dict[str, Any]]:
        """axe-core's WCAG 2.1 A/AA violations on the current page (none is the goal)."""
        source = AXE.read_text(encoding="utf-8")

        def run() -> list[dict[str, Any]]:
            self.driver.execute_script(source)
            return self.driver.execute_async_script(
                "const done = arguments[arguments.length - 1];"
                "axe.run(document, {runOnly: {type: 'tag', values: arguments[0]}})"
                ".then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,"
                " nodes: v.nodes.map(n => n.target.join(' ') + ' — ' + n.failureSummary)}))))"
                ".catch(e => done([{id: 'axe-error', help: String(e), nodes: []}]));",
                AXE_TAGS,
            )

        return await self._run(run)

    async def wait_for_download(self, suffix: str, timeout: float = 30.0) -> Path:  # noqa: ASYNC109
        """The first download whose name ends with ``suffix``, once Chromium has finished writing it."""
        last_size = -1
        for _ in range(int(timeout * 10)):
            await asyncio.sleep(0.1)
            names = list(self.downloads.iterdir())
            done = [p for p in names if p.name.endswith(suffix)]
            if not done or any(p.name.endswith(".crdownload") for p in names):
                continue
            size = done[0].stat().st_size
            if size > 0 and size == last_size:
                return done[0]
            last_size = size
        raise AssertionError(f"no {suffix} download in {self.downloads}: {list(self.downloads.iterdir())}")

    async def close(self) -> None:
        await self._run(self.driver.quit)
        shutil.rmtree(self._profile, ignore_errors=True)


def describe(violations: list[dict[str, Any]]) -> str:
    """axe's violations, one readable block each, for an assertion message."""
    return "\n".join(
        f"{v['id']} ({v.get('impact')}): {v['help']}\n  " + "\n  ".join(v["nodes"]) for v in violations
    )


async def assert_accessible(browser: Browser, page: str) -> None:
    """axe-core finds no WCAG 2.1 A or AA violation on the page the browser shows."""
    violations = await browser.axe()
    assert not violations, f"axe-core on {page}:\n{describe(violations)}"


def screenshot_dir(tmp_path: Path) -> Path:
    """Where the screenshots go: INITIATIEFBOT_SCREENSHOTS (e.g. docs/screenshots) or the test's folder."""
    chosen = os.environ.get("INITIATIEFBOT_SCREENSHOTS")
    return Path(chosen) if chosen else tmp_path / "screenshots"
