"""Headless Chromium through Selenium and Debian's chromedriver, for the tests that need a real
browser (test_browser.py: /docs and CORS; test_account_console.py: the account console): the
skip rule, the driver (its `driver` fixture is in conftest.py), and waiting for what a page shows.

Needs Debian's `chromium` and `chromium-driver` packages (tests skipped without them) and
`selenium`. Screenshots go to test-output/browser/ under the repository root (git-ignored)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.webdriver import Chrome as WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
OUTPUT = Path(__file__).resolve().parent.parent / "test-output" / "browser"
WAIT_SECONDS = 20

needs_chromium = pytest.mark.skipif(
    not (CHROMIUM.is_file() and CHROMEDRIVER.is_file()),
    reason=f"needs {CHROMIUM} and {CHROMEDRIVER} (Debian packages: apt-get install chromium chromium-driver)",
)


def start_chromium(folder: Path) -> WebDriver:
    """A headless Chromium with its profile and chromedriver's log in `folder`, logging every
    DevTools network event (the "performance" log) and the JavaScript console ("browser")."""
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in (
        "--headless=new",
        "--no-sandbox",  # the tests run as root
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        "--window-size=1280,1600",
        f"--user-data-dir={folder / 'chromium-profile'}",
    ):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"performance": "ALL", "browser": "ALL"})
    service = webdriver.ChromeService(executable_path=str(CHROMEDRIVER), log_output=str(folder / "chromedriver.log"))
    browser = webdriver.Chrome(options=options, service=service)
    browser.set_page_load_timeout(WAIT_SECONDS)
    browser.set_script_timeout(WAIT_SECONDS)
    return browser


def wait(driver: WebDriver) -> WebDriverWait:
    return WebDriverWait(driver, WAIT_SECONDS)


def visible(driver: WebDriver, selector: str, root: WebElement | None = None) -> WebElement:
    """The first visible element matching `selector` (under `root`), waiting for it."""

    def find(_driver):
        for element in (root or driver).find_elements(By.CSS_SELECTOR, selector):
            if element.is_displayed():
                return element
        return False

    return wait(driver).until(find, f"no visible {selector}")


def click(driver: WebDriver, selector: str, root: WebElement | None = None) -> None:
    element = visible(driver, selector, root)
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    wait(driver).until(EC.element_to_be_clickable(element)).click()


def network_events(driver: WebDriver) -> list[dict]:
    """The DevTools Network.* events since the performance log was last read: (method, params)."""
    events = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"].startswith("Network."):
            events.append(message)
    return events


def request_urls(driver: WebDriver) -> list[str]:
    """URLs of every request the page sent since the log was last read (Chrome DevTools performance log)."""
    return [
        event["params"]["request"]["url"]
        for event in network_events(driver)
        if event["method"] == "Network.requestWillBeSent"
    ]
