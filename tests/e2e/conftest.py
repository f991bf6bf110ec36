"""Browser fixtures: Debian's chromium driven by Selenium through chromium-driver.

No browser is ever downloaded: the tests use /usr/bin/chromium and /usr/bin/chromedriver
(`make test` installs them with apt-get). Without them the tests skip, or fail under
EARLYHELP_REQUIRE_REAL=1. Screenshots go to artifacts/screenshots/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import REQUIRE_REAL, ROOT

CHROMIUM = os.environ.get("EARLYHELP_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("EARLYHELP_CHROMEDRIVER", "/usr/bin/chromedriver")
SHOTS = ROOT / "artifacts" / "screenshots"
PASSWORD = "pass-word-1234"


def _require_browser() -> None:
    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    try:
        import selenium  # noqa: F401
    except ImportError:
        missing.append("python package selenium (pip install -e '.[test]')")
    if not missing:
        return
    message = f"end-to-end tests need {', '.join(missing)}: run `make browser` (apt-get install chromium chromium-driver) and `make install-test` (selenium)"
    if REQUIRE_REAL:
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def _static_collected():
    """Daphne serves /static/ through WhiteNoise from STATIC_ROOT, as in production."""
    env = dict(os.environ, DJANGO_SETTINGS_MODULE="config.settings.test")
    subprocess.run([sys.executable, "manage.py", "collectstatic", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True)


@pytest.fixture
def live_server_url(daphne_servers, _static_collected):
    return daphne_servers(1)[0]


@pytest.fixture
def browser(request):
    """Factory: a fresh headless Chromium (own profile) per call; all quit at teardown."""
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    drivers, dirs = [], []
    request.node._browsers = drivers

    def make(width: int = 1280, height: int = 900, mobile: bool = False):
        profile = tempfile.mkdtemp(prefix="earlyhelp-chromium-")
        dirs.append(profile)
        opts = webdriver.ChromeOptions()
        opts.binary_location = CHROMIUM
        for flag in (
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--no-first-run", "--no-default-browser-check", "--disable-extensions",
            "--autoplay-policy=no-user-gesture-required", "--force-prefers-reduced-motion",
            f"--user-data-dir={profile}", f"--window-size={width},{height}",
        ):
            opts.add_argument(flag)
        if mobile:
            opts.add_experimental_option("mobileEmulation", {"deviceMetrics": {"width": 390, "height": 844, "pixelRatio": 2}})
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        driver = webdriver.Chrome(options=opts, service=Service(CHROMEDRIVER))
        driver.set_page_load_timeout(30)
        drivers.append(driver)
        return driver

    yield make
    for driver in drivers:
        try:
            driver.quit()
        except Exception:  # noqa: BLE001
            pass
    for profile in dirs:
        shutil.rmtree(profile, ignore_errors=True)


# --- helpers -----------------------------------------------------------------------------
def wait_for(driver, condition, timeout: float = 15, message: str = ""):
    from selenium.common.exceptions import StaleElementReferenceException
    from selenium.webdriver.support.ui import WebDriverWait

    # A live page re-renders what a condition just found (a push lands between the find and
    # the read): that is "not yet", so the condition is polled again, not failed.
    return WebDriverWait(driver, timeout, poll_frequency=0.1,
                         ignored_exceptions=(StaleElementReferenceException,)).until(condition, message)


def visible(driver, css: str, timeout: float = 15):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    return wait_for(driver, ec.visibility_of_element_located((By.CSS_SELECTOR, css)), timeout, f"{css} not visible")


def text_in(driver, css: str, text: str, timeout: float = 15):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec

    return wait_for(driver, ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text), timeout, f"{text!r} not in {css}")


def online(driver, timeout: float = 15) -> None:
    wait_for(driver, lambda d: d.execute_script("return document.body.dataset.socket") == "online", timeout, "socket not online")


def sign_in(driver, base: str, handle: str, password: str = PASSWORD, expect_path: str = "/") -> None:
    from selenium.webdriver.common.by import By

    driver.get(base + "/")
    driver.find_element(By.ID, "login-handle").send_keys(handle)
    driver.find_element(By.ID, "login-password").send_keys(password)
    driver.find_element(By.CSS_SELECTOR, "#login-form button[type=submit]").click()
    wait_for(driver, lambda d: d.current_url.rstrip("/").endswith(expect_path.rstrip("/")) and d.current_url != base + "/", 15, f"no redirect to {expect_path}")
    online(driver)


def shot(driver, name: str) -> Path:
    """Screenshot into artifacts/screenshots/ (after a moment for the last paint)."""
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.execute_script("document.getElementById('toasts')?.replaceChildren(); window.scrollTo(0, 0);")
    time.sleep(0.2)
    path = SHOTS / f"{name}.png"
    driver.save_screenshot(str(path))
    return path


def browser_errors(driver) -> list[str]:
    """Severe console entries, minus the expected ones (offline tests, quick exit)."""
    try:
        logs = driver.get_log("browser")
    except Exception:  # noqa: BLE001
        return []
    return [e["message"] for e in logs if e["level"] == "SEVERE" and "ERR_INTERNET_DISCONNECTED" not in e["message"]]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On failure, a screenshot of every open browser (artifacts/screenshots/FAILED-*)."""
    outcome = yield
    report = outcome.get_result()
    if report.when != "call" or not report.failed:
        return
    for n, driver in enumerate(getattr(item, "_browsers", [])):
        try:
            SHOTS.mkdir(parents=True, exist_ok=True)
            driver.save_screenshot(str(SHOTS / f"FAILED-{item.name}-{n}.png"))
        except Exception:  # noqa: BLE001
            pass
