"""Headless Chromium (Debian's `chromium` and `chromedriver` packages) driven with Selenium, for
the web UI's tests: every wait is bounded, every page's console is checked, screenshots are
saved as artifacts, and the browser is always closed.
"""

import os
import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
# Screenshots land here (CI keeps target/); the README's come from this directory too.
ARTIFACTS = Path(os.environ.get("WAGGLE_E2E_ARTIFACTS") or REPO / "target" / "e2e-artifacts") / "ui"
WAIT = 15  # seconds for anything the page shows after data is stored
PAGE_LOAD_TIMEOUT = 20


def find_chromium():
    """(chromium, chromedriver) paths; fails in CI and skips elsewhere when they are missing."""
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if chromium and driver:
        return chromium, driver
    message = "headless Chromium is not installed (apt-get install chromium chromium-driver; .ci/run installs it)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


class Browser:
    """One headless Chromium session pointed at a waggle's admin port."""

    def __init__(self, base_url):
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        chromium, chromedriver = find_chromium()
        options = webdriver.ChromeOptions()
        options.binary_location = chromium
        for argument in (
            "--headless=new",
            "--no-sandbox",  # CI runs as root
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--window-size=1400,1000",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
        ):
            options.add_argument(argument)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = Service(executable_path=chromedriver)
        self.driver = webdriver.Chrome(service=service, options=options)
        self.driver.set_page_load_timeout(PAGE_LOAD_TIMEOUT)
        self.driver.set_script_timeout(PAGE_LOAD_TIMEOUT)
        self.base_url = base_url
        self.console = []

    def open(self, fragment):
        """Loads `/#/…` afresh (a full page load, as a shared link would)."""
        self.driver.get("about:blank")
        self.driver.get(f"{self.base_url}/{fragment}")

    def wait(self, condition, what, timeout=WAIT):
        from selenium.common.exceptions import TimeoutException
        from selenium.webdriver.support.ui import WebDriverWait

        try:
            return WebDriverWait(self.driver, timeout, poll_frequency=0.1).until(lambda driver: condition(driver))
        except TimeoutException:
            raise AssertionError(f"the page did not show {what} within {timeout}s; it shows:\n{self.text()[:3000]}") from None

    def find(self, css):
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def wait_for(self, css, what, count=1, timeout=WAIT):
        """Waits until at least `count` elements match `css`; returns them."""
        return self.wait(lambda _: (found := self.find(css)) and len(found) >= count and found, what, timeout)

    def text(self):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.TAG_NAME, "body").text

    def console_errors(self):
        """Console messages at SEVERE since the last call (errors, failed loads, exceptions)."""
        entries = self.driver.get_log("browser")
        self.console.extend(entries)
        return [entry for entry in entries if entry.get("level") == "SEVERE"]

    def screenshot(self, name):
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        path = ARTIFACTS / f"{name}.png"
        self.driver.save_screenshot(str(path))
        return path

    def close(self):
        self.driver.quit()
