"""The panel and the status page in a real browser: Debian's chromium, headless, driven by Selenium, at a
phone's size, against the real command. A slider moved in the browser changes the show (read back over
OSCQuery); a value sent over UDP OSC moves the slider; screenshots are kept (the test's folder and out/)."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.scenarios.conftest import osc_send
from tests.scenarios.test_web_oscquery import get, playing

REPO = Path(__file__).resolve().parents[2]
PHONE = (390, 844)  # CSS pixels of a common phone


def _chromium() -> tuple[str, str] | None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.fixture
def browser() -> Iterator[object]:
    found = _chromium()
    if found is None:
        pytest.skip("no chromium + chromium-driver here (scripts/setup.sh --dev installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    opts.binary_location = found[0]
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--hide-scrollbars", "--force-device-scale-factor=2"):
        opts.add_argument(arg)
    opts.add_experimental_option("mobileEmulation", {
        "deviceMetrics": {"width": PHONE[0], "height": PHONE[1], "pixelRatio": 2.0, "touch": True}})
    driver = webdriver.Chrome(options=opts, service=Service(found[1]))
    driver.set_page_load_timeout(20)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(what: str, check: object, timeout: float = 10.0) -> object:
    t_end = time.monotonic() + timeout
    while time.monotonic() < t_end:
        got = check()  # type: ignore[operator]
        if got:
            return got
        time.sleep(0.05)
    raise AssertionError(f"{what}: not within {timeout} s")


def _keep(driver: object, tmp_path: Path, name: str) -> Path:
    """The screenshot, in the test's folder and in out/ (the artefacts of a test run)."""
    shot = tmp_path / name
    driver.save_screenshot(str(shot))  # type: ignore[attr-defined]
    out = REPO / "out"
    out.mkdir(exist_ok=True)
    shutil.copy(shot, out / name)
    return shot


def test_the_panel_drives_the_show_and_follows_it_on_a_phone(tmp_path: Path, browser: object) -> None:
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    d = browser
    with playing(tmp_path, seconds=60) as run:
        osc_send(run["osc"], "/preset/save", 1)
        osc_send(run["osc"], "/preset/save", 2)
        d.get(f"http://127.0.0.1:{run['web']}/")  # type: ignore[attr-defined]
        _wait("the panel connected", lambda: d.execute_script("return document.body.dataset.ready === '1'"))
        slider = d.find_element(By.CSS_SELECTOR, 'input[type=range][data-address="/mix/amount"]')
        # every parameter of the registry has its control, named by its address
        _, root = get(run["oscquery"], "/")
        addresses = [leaf["FULL_PATH"] for group in root["CONTENTS"].values() for leaf in
                     group.get("CONTENTS", {}).values() if leaf.get("ACCESS", 0) & 2 and leaf["FULL_PATH"] != "/sync"]
        missing = [a for a in addresses if not d.find_elements(By.CSS_SELECTOR, f'[data-address="{a}"]')]
        assert not missing, f"no control for {missing}"

        # a finger on the slider: from the right end (1.0) to about a quarter
        d.execute_script("arguments[0].scrollIntoView({block: 'center'})", slider)
        width = slider.size["width"]
        ActionChains(d).move_to_element_with_offset(slider, width // 2 - 2, 0).click_and_hold() \
            .move_by_offset(-(width * 3) // 4, 0).release().perform()
        value = _wait("the show took the slider's value", lambda: (v := get(run["oscquery"], "/mix/amount?VALUE")[1]
                                                                   ["VALUE"][0]) < 0.6 and v)
        assert 0.1 < value < 0.5, value  # type: ignore[operator]

        # a change over UDP OSC: the slider follows within a frame or two (plus the browser's paint)
        osc_send(run["osc"], "/mix/amount", 0.875)
        _wait("the slider followed OSC", lambda: abs(float(slider.get_attribute("value")) - 0.875) < 1e-3, 5.0)
        osc_send(run["osc"], "/show/blackout", 1)
        blackout = d.find_element(By.ID, "blackout")
        _wait("the blackout button followed OSC", lambda: blackout.get_attribute("aria-pressed") == "true", 5.0)
        d.execute_script("window.scrollTo(0, 0)")
        blackout.click()
        _wait("the show left blackout", lambda: get(run["oscquery"], "/show/blackout?VALUE")[1]["VALUE"] == [False])
        _wait("the presets saved are listed", lambda: len(d.find_elements(By.CSS_SELECTOR, "#presets .chip")) == 2)

        d.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.3)
        shot = _keep(d, tmp_path, "web-panel-phone.png")
        assert shot.stat().st_size > 20_000

        # the status page: the health figures and the output's thumbnail
        d.get(f"http://127.0.0.1:{run['web']}/status")  # type: ignore[attr-defined]
        _wait("the status page shows fps", lambda: d.find_element(By.ID, "fps").text not in ("", "–"))
        _wait("the thumbnail came", lambda: d.execute_script(
            "const i = document.getElementById('thumb'); return i.complete && i.naturalWidth > 0"), 10.0)
        _keep(d, tmp_path, "web-status-phone.png")
        status = get(run["web"], "/api/status")[1]
        for key in ("fps", "latency_ms", "dropped", "faults", "last_fault", "reconnects", "rss_mb", "uptime_s",
                    "model", "schedule"):
            assert key in status, key
