"""A crisis message in chat lights up the duty clinician's page, which acknowledges and
resolves it; the counsellor sees the risk banner and the young person the resources."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from accounts.models import Role
from chat import services as chat_services
from triage.models import Escalation

from .conftest import browser_errors, shot, sign_in, text_in, visible, wait_for

pytestmark = pytest.mark.real

CRISIS = "i'm going to kill myself tonight, i have the pills ready"


def test_crisis_message_alerts_the_clinician_who_acknowledges_and_resolves(browser, live_server_url, make_user):
    base = live_server_url
    young = make_user(Role.YOUNG_PERSON)
    counsellor = make_user(Role.COUNSELLOR, display_name="Sam")
    clinician = make_user(Role.CLINICIAN, display_name="Dr Priya")
    session = chat_services.session_request(young_person=young, topic="Everything", body="")
    chat_services.counsellor_status_set(user=counsellor, status="available")
    chat_services.session_accept(counsellor=counsellor, session_id=session.session.id)

    cl = browser()
    sign_in(cl, base, clinician.handle, expect_path="/clinician/")
    text_in(cl, "#escalations", "No open escalations")
    text_in(cl, "#on-duty", "Nobody is on the rota")
    cl.find_element(By.ID, "sound").click()
    assert cl.find_element(By.ID, "sound").get_attribute("aria-pressed") == "true"

    co = browser()
    sign_in(co, base, counsellor.handle, expect_path="/counsellor/")
    visible(co, ".pane")

    yp = browser(mobile=True)
    sign_in(yp, base, young.handle, expect_path="/chat/")
    visible(yp, "#chat")
    yp.find_element(By.ID, "msg").send_keys(CRISIS)
    yp.find_element(By.CSS_SELECTOR, "#send-form button").click()

    # the clinician: a visible alert (role=alert), the title, and the escalation card
    banner = visible(cl, "#alert")
    assert banner.get_attribute("role") == "alert"
    text_in(cl, "#alert", young.handle)
    wait_for(cl, lambda d: "New escalation" in d.title, 5, "title flags the alert")
    escalation = Escalation.objects.get(young_person=young)
    card_css = f'#escalations li[data-escalation="{escalation.id}"]'
    text_in(cl, card_css, "kill myself")
    shot(cl, "clinician-alert")

    # the counsellor: risk banner with evidence; the young person: crisis resources
    text_in(co, ".pane .risk-banner", "RISK")
    assert "kill myself" in co.find_element(By.CSS_SELECTOR, ".pane .risk-banner").text.lower()
    text_in(yp, "#transcript", "116 123")
    shot(co, "counsellor-risk")
    shot(yp, "young-person-crisis")

    cl.find_element(By.CSS_SELECTOR, f"{card_css} button.ack").click()
    text_in(cl, card_css, "Acknowledged by Dr Priya")
    wait_for(cl, lambda d: not d.find_element(By.ID, "alert").is_displayed(), 5, "alert clears once acknowledged")
    escalation.refresh_from_db()
    assert escalation.state == "acknowledged" and escalation.owner_id == clinician.id
    cl.find_element(By.CSS_SELECTOR, f"{card_css} details summary").click()
    shot(cl, "clinician-acknowledged")

    Select(cl.find_element(By.CSS_SELECTOR, f"{card_css} select[name=outcome]")).select_by_value("safety_plan")
    cl.find_element(By.CSS_SELECTOR, f"{card_css} textarea[name=note]").send_keys("Spoke with counsellor; safety plan agreed.")
    cl.find_element(By.CSS_SELECTOR, f"{card_css} .resolve-form button").click()
    text_in(cl, "#escalations", "No open escalations")
    escalation.refresh_from_db()
    assert escalation.state == "resolved" and escalation.outcome == "safety_plan"
    assert not browser_errors(cl) and not browser_errors(co) and not browser_errors(yp)
