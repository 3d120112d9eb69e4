"""The results site as a person sees it: headless Chromium (driven by Selenium) opens the
tiny site of tests/tiny_runs.py from the file system, reads the console, checks every
image and link, sorts a leaderboard column by clicking its header, filters rows, opens a
variant page and finds its traversal GIF loaded. Screenshots of the index and a variant
page at 1280 px wide go to $DISBENCH_SCREENSHOTS (default: a temporary folder, printed).

Needs Debian's ``chromium`` and ``chromium-driver`` and the ``selenium`` package (``.ci/run``
installs them). Without them the tests are skipped with the reason; with
``DISBENCH_REQUIRE_BROWSER=1`` (set by ``.ci/run`` once the browser is installed) a browser
that cannot start fails the tests instead.
"""
import os
import shutil
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from tiny_runs import built_site

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--window-size=1280,900")
WIDTH = 1280


def _unavailable(reason: str):
    if os.environ.get("DISBENCH_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (DISBENCH_REQUIRE_BROWSER=1)")
    pytest.skip(reason)


@pytest.fixture(scope="module")
def browser():
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        _unavailable("selenium is not installed (pip install selenium; .ci/run installs it)")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_bin = shutil.which("chromedriver")
    if not chromium or not driver_bin:
        _unavailable("headless Chromium is not installed (apt-get install chromium "
                     "chromium-driver; .ci/run does this when run as root)")
    profile = tempfile.mkdtemp(prefix="disbench-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = chromium
    for flag in (*FLAGS, f"--user-data-dir={profile}"):
        opts.add_argument(flag)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        driver = webdriver.Chrome(service=Service(driver_bin), options=opts)
    except WebDriverException as exc:
        shutil.rmtree(profile, ignore_errors=True)
        _unavailable(f"Chromium did not start: {str(exc).strip().splitlines()[0]}")
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()
    shutil.rmtree(profile, ignore_errors=True)


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = Path(os.environ.get("DISBENCH_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots of the site: {folder}")
    return folder


def _errors(driver) -> list[str]:
    """SEVERE console entries since the last call (reading the log empties it)."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def _broken_images(driver) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.images)"
        ".filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src);")


def _broken_links(driver) -> list[str]:
    """Links, style sheets and scripts that leave the site or point at a missing file."""
    urls = driver.execute_script(
        "return [...document.querySelectorAll('a[href], link[href], script[src]')]"
        ".map(e => e.href || e.src).filter(u => !u.startsWith('data:'));")
    bad = []
    for url in urls:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme != "file" or not Path(urllib.request.url2pathname(parts.path)).is_file():
            bad.append(url)
    return bad


def _check_page(driver) -> None:
    assert _errors(driver) == []
    assert _broken_images(driver) == []
    assert _broken_links(driver) == []
    # the style sheet and the script are loaded: headers made focusable by site.js
    assert driver.execute_script("return document.styleSheets.length") >= 1
    assert driver.execute_script(
        "return [...document.querySelectorAll('table.sortable th')].every(t => t.tabIndex === 0)")


def _screenshot(driver, path: Path) -> Path:
    """The whole page in a viewport 1280 px wide (the DevTools device metrics override)."""
    height = driver.execute_script("return document.documentElement.scrollHeight")
    metrics = {"width": WIDTH, "height": min(int(height), 8000), "deviceScaleFactor": 1,
               "mobile": False}
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", metrics)
    try:
        assert driver.save_screenshot(str(path))
    finally:
        driver.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})
    from PIL import Image

    with Image.open(path) as image:
        assert image.size[0] == WIDTH
    return path


def _column(driver, table, index):
    return driver.execute_script(
        "return [...arguments[0].tBodies[0].rows].filter(r => !r.hidden)"
        ".map(r => r.cells[arguments[1]].dataset.sort);", table, index)


def test_console_errors_are_seen(browser):
    # the check below would notice an error: a probe error shows up in the log
    browser.get("about:blank")
    _errors(browser)
    browser.execute_script("console.error('disbench probe')")
    assert any("disbench probe" in m for m in _errors(browser))


def test_index_sorts_filters_and_loads(browser, shots):
    from selenium.webdriver.common.by import By

    index = built_site()
    browser.get(index.as_uri())
    _check_page(browser)
    table = browser.find_element(By.ID, "lb-dsprites-synthetic")
    headers = [th.text.replace("⇅", "").strip() for th in table.find_elements(By.CSS_SELECTOR,
                                                                            "thead th")]
    col = headers.index("hoyer ↑")
    board = pd.read_csv(index.parent / "exports" / "leaderboard.csv")
    means = sorted(board["hoyer_mean"], reverse=True)
    th = table.find_elements(By.CSS_SELECTOR, "thead th")[col]
    th.click()  # higher is better: the first click puts the best first
    shown = [float(v) for v in _column(browser, table, col)]
    assert shown == pytest.approx(means) and th.get_attribute("aria-sort") == "descending"
    # whole rows moved: each variant keeps its own score
    expected = list(board.sort_values("hoyer_mean", ascending=False)["variant"])
    assert _column(browser, table, 0) == expected
    th.click()
    assert [float(v) for v in _column(browser, table, col)] == pytest.approx(means[::-1])
    first = table.find_elements(By.CSS_SELECTOR, "thead th")[0]
    first.click()
    assert _column(browser, table, 0) == sorted(board["variant"])
    # filter: only the rows holding every typed word stay visible
    box = browser.find_element(By.ID, "filter")
    box.send_keys("beta=4")
    assert _column(browser, table, 0) == ["beta_vae (beta=4)"]
    assert "of" in browser.find_element(By.ID, "filter-count").text
    box.clear()
    box.send_keys(" ")  # an input event with no words shows every row again
    assert len(_column(browser, table, 0)) == 3
    claims = browser.find_element(By.ID, "claims")
    assert "not run" in claims.text and "beta4_sparser_than_vae" in claims.text
    _screenshot(browser, shots / "index.png")
    assert _errors(browser) == []


def test_variant_page_shows_its_traversal(browser, shots):
    from selenium.webdriver.common.by import By

    browser.get(built_site().as_uri())
    browser.find_element(By.LINK_TEXT, "beta_vae (beta=4)").click()
    assert browser.title == "beta_vae (beta=4)"
    _check_page(browser)
    gif = browser.find_element(By.CSS_SELECTOR, 'img[src$="traversal_conf_interval.gif"]')
    assert browser.execute_script("return arguments[0].complete && arguments[0].naturalWidth",
                                  gif) > 0
    seeds = browser.find_element(By.ID, "seeds")
    assert len(seeds.find_elements(By.CSS_SELECTOR, "tbody tr")) == 2
    _screenshot(browser, shots / "variant.png")
    # and back to the index through the header link
    browser.find_element(By.PARTIAL_LINK_TEXT, "disbench results").click()
    assert browser.find_element(By.ID, "lb-dsprites-synthetic")


def test_study_page_figures_load(browser, shots):
    from selenium.webdriver.common.by import By

    browser.get(built_site().as_uri())
    browser.find_element(By.PARTIAL_LINK_TEXT, "Study figures").click()
    _check_page(browser)
    n = browser.execute_script("return document.images.length")
    assert n >= 4  # leaderboard, seeds, the beta sweep, the correlation heatmap
    _screenshot(browser, shots / "study.png")
