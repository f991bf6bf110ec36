"""Forums with a real Celery worker: a held post is approved by a moderator in the
moderator page and the author sees it published. Sign-up and the quick exit."""

from __future__ import annotations

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from accounts.models import Role
from forums.models import Board, Post

from .conftest import browser_errors, shot, sign_in, text_in, visible, wait_for

pytestmark = pytest.mark.real

QUICK_EXIT = "https://www.bbc.co.uk/weather"


def test_moderator_approves_held_post_and_author_sees_it_published(browser, live_server_url, make_user, celery_worker):
    base = live_server_url
    board = Board.objects.create(slug="exams-e2e", name="Exams", description="Revision, results and stress.", policy="pre")
    author = make_user(Role.YOUNG_PERSON)
    moderator = make_user(Role.MODERATOR, display_name="Jo")

    mo = browser()
    sign_in(mo, base, moderator.handle, expect_path="/moderator/")
    text_in(mo, "#sanction", "Nothing waiting")

    yp = browser(mobile=True)
    sign_in(yp, base, author.handle, expect_path="/chat/")
    yp.get(f"{base}/forums/")
    visible(yp, "#boards a")
    yp.find_element(By.LINK_TEXT, "Exams").click()
    visible(yp, "#thread-form")
    yp.find_element(By.ID, "thread-title").send_keys("Revision tips?")
    yp.find_element(By.ID, "thread-body").send_keys("How do you all revise without panicking?")
    yp.find_element(By.CSS_SELECTOR, "#thread-form button").click()
    text_in(yp, "#posts", "Waiting for a moderator")
    post = Post.objects.get(thread__board=board)
    assert post.state == "held"
    shot(yp, "forums-held")

    # the worker's check puts it in the sanction queue; the moderator's page updates live
    item_css = f'#sanction [data-post="{post.id}"]'
    visible(mo, item_css, timeout=60)
    mo.find_element(By.CSS_SELECTOR, f"{item_css} .item-open").click()
    text_in(mo, "#detail", "How do you all revise")
    mo.find_element(By.ID, "claim").click()
    visible(mo, "#decide-form")
    Select(mo.find_element(By.ID, "decision")).select_by_value("approve")
    shot(mo, "moderator-queue")
    mo.find_element(By.CSS_SELECTOR, "#decide-form button[type=submit]").click()
    text_in(mo, "#detail", "Decided: approve")
    text_in(mo, "#sanction", "Nothing waiting")

    # the author: a notification and the post published, without reloading
    text_in(yp, "#notifications", "now published")
    wait_for(yp, lambda d: d.find_element(By.CSS_SELECTOR, f"#post-{post.id}").get_attribute("data-state") == "published", 10, "post published")
    assert not yp.find_elements(By.CSS_SELECTOR, f"#post-{post.id} .status.waiting")
    yp.find_element(By.CSS_SELECTOR, f'#post-{post.id} .react[data-kind="hug"]').click()
    wait_for(yp, lambda d: "Hug 1" in d.find_element(By.CSS_SELECTOR, f'#post-{post.id} .react[data-kind="hug"]').text, 10, "reaction counted")
    shot(yp, "forums-published")
    assert not browser_errors(yp) and not browser_errors(mo)


def test_sign_up_crisis_resources_and_quick_exit(browser, live_server_url):
    base = live_server_url
    yp = browser(mobile=True)
    yp.get(base + "/")
    shot(yp, "home")
    yp.find_element(By.ID, "reg-handle").send_keys("quiet_otter")
    yp.find_element(By.ID, "reg-password").send_keys("a-long-pass-phrase")
    Select(yp.find_element(By.ID, "reg-month")).select_by_value("4")
    yp.find_element(By.ID, "reg-year").send_keys("2009")
    yp.find_element(By.CSS_SELECTOR, "#register-form button").click()
    wait_for(yp, lambda d: d.current_url.endswith("/chat/"), 15, "signed up and in")
    visible(yp, "#start")

    # crisis resources one tap away
    yp.find_element(By.ID, "crisis-open").click()
    dialog = visible(yp, "#crisis-dialog")
    assert "116 123" in dialog.text and "85258" in dialog.text and "999" in dialog.text
    shot(yp, "crisis-resources")
    dialog.find_element(By.CSS_SELECTOR, "[data-close]").click()

    # quick exit: the page is wiped and replaced by a neutral site, which is never fetched
    yp.execute_cdp_cmd("Network.enable", {})
    yp.execute_cdp_cmd("Network.setBlockedURLs", {"urls": ["*bbc.co.uk*"]})
    yp.execute_script("sessionStorage.setItem('draft', 'something private')")
    exit_button = yp.find_element(By.ID, "quick-exit")
    assert exit_button.is_displayed()
    exit_button.click()
    wait_for(yp, lambda d: d.current_url.startswith(QUICK_EXIT), 10, "navigated to the neutral site")
    # replace(): the chat page is not in history, so Back does not return to it
    yp.back()
    wait_for(yp, lambda d: not d.current_url.endswith("/chat/"), 5, "back skips the chat page")
    # and the session is gone: the chat page now asks to sign in, the storage is empty
    yp.get(base + "/chat/")
    wait_for(yp, lambda d: "/?next=/chat/" in d.current_url, 10, "signed out")
    assert yp.execute_script("return sessionStorage.length") == 0
