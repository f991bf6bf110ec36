"""A young person and a counsellor chat in real browsers; the young person's network
drops and comes back, and the transcript matches the database with no gap or duplicate."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from accounts.models import Role
from chat.models import Message, Session

from .conftest import browser_errors, online, shot, sign_in, text_in, visible, wait_for

pytestmark = pytest.mark.real

TRANSCRIPT_JS = """
return [...document.querySelectorAll(arguments[0] + ' li.msg')].map(
  li => [li.dataset.seq ? Number(li.dataset.seq) : null, li.querySelector('.body').textContent]);
"""


def send(driver, form_css: str, text: str) -> None:
    box = driver.find_element(By.CSS_SELECTOR, f"{form_css} textarea")
    box.send_keys(text)
    driver.find_element(By.CSS_SELECTOR, f"{form_css} button[type=submit]").click()


def transcript(driver, css: str) -> list:
    return driver.execute_script(TRANSCRIPT_JS, css)


def test_young_person_and_counsellor_chat_through_a_network_drop(browser, live_server_url, make_user):
    base = live_server_url
    young = make_user(Role.YOUNG_PERSON)
    counsellor = make_user(Role.COUNSELLOR, display_name="Sam")

    yp = browser(mobile=True)
    sign_in(yp, base, young.handle, expect_path="/chat/")
    visible(yp, "#start")
    yp.find_element(By.ID, "topic").send_keys("Exams")
    yp.find_element(By.ID, "first").send_keys("I can't sleep before exams")
    yp.find_element(By.CSS_SELECTOR, "#request-form button").click()
    visible(yp, "#waiting")
    text_in(yp, "#position-text", "number 1 in the queue")
    assert yp.find_elements(By.CSS_SELECTOR, "#self-help li"), "self-help shown while waiting"
    shot(yp, "young-person-waiting")

    co = browser()
    sign_in(co, base, counsellor.handle, expect_path="/counsellor/")
    visible(co, "#queue [data-session] button")
    Select(co.find_element(By.ID, "availability")).select_by_value("available")
    text_in(co, "#live-polite", "Status: available")
    co.find_element(By.CSS_SELECTOR, "#queue [data-session] button").click()
    pane = visible(co, ".pane")
    text_in(co, ".pane .pane-title", young.handle)

    visible(yp, "#chat")
    text_in(yp, "#chat-title", "Sam")
    send(yp, "#send-form", "hi, are you there?")
    text_in(co, ".pane .transcript", "hi, are you there?")
    # typing indicator, both ways
    co.find_element(By.CSS_SELECTOR, ".pane .send textarea").send_keys("Hello")
    text_in(yp, "#typing", "typing")
    co.find_element(By.CSS_SELECTOR, ".pane .send button").click()
    text_in(yp, "#transcript", "Hello")
    yp.find_element(By.ID, "msg").send_keys("x")
    text_in(co, ".pane .typing", "is typing")
    yp.find_element(By.ID, "msg").clear()

    # --- the young person's network drops -------------------------------------------------
    yp.set_network_conditions(offline=True, latency=0, download_throughput=0, upload_throughput=0)
    wait_for(yp, lambda d: d.execute_script("return document.body.dataset.socket") != "online", 10, "socket noticed the drop")
    send(yp, "#send-form", "sent while offline 1")
    send(yp, "#send-form", "sent while offline 2")
    assert len(yp.find_elements(By.CSS_SELECTOR, "#transcript li.pending")) == 2
    send(co, ".pane .send", "missed while you were away")
    text_in(co, ".pane .transcript", "missed while you were away")
    shot(yp, "young-person-offline")

    yp.set_network_conditions(offline=False, latency=0, download_throughput=-1, upload_throughput=-1)
    online(yp, timeout=20)
    text_in(yp, "#transcript", "missed while you were away")
    wait_for(yp, lambda d: not d.find_elements(By.CSS_SELECTOR, "#transcript li.pending"), 15, "offline messages acked")
    text_in(co, ".pane .transcript", "sent while offline 2")

    session = Session.objects.get(young_person=young)
    rows = list(Message.objects.filter(conversation_id=session.conversation_id).order_by("seq").values_list("seq", "body"))
    assert [b for _, b in rows].count("sent while offline 1") == 1
    assert [s for s, _ in rows] == list(range(rows[0][0], rows[0][0] + len(rows))), "no gap in the database"
    wait_for(yp, lambda d: [tuple(r) for r in transcript(d, "#transcript")] == rows, 10, "young person's transcript == database")
    wait_for(co, lambda d: [tuple(r) for r in transcript(d, ".pane .transcript")] == rows, 10, "counsellor's transcript == database")
    shot(yp, "young-person-chat")

    # notes and end
    co.find_element(By.CSS_SELECTOR, ".pane .tools summary").click()
    co.find_element(By.CSS_SELECTOR, ".pane .note-form textarea").send_keys("Exam stress; sleep hygiene discussed.")
    co.find_element(By.CSS_SELECTOR, ".pane .note-form button").click()
    text_in(co, ".pane .note-form .saved", "Note saved")
    shot(co, "counsellor-console")
    co.execute_script("window.confirm = () => true")
    co.find_element(By.CSS_SELECTOR, ".pane .end").click()
    visible(yp, "#ended")
    wait_for(co, lambda d: not d.find_elements(By.CSS_SELECTOR, ".pane"), 10, "pane closed")
    assert not browser_errors(yp) and not browser_errors(co), (browser_errors(yp), browser_errors(co))
    del pane
