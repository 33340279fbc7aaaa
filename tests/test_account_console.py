"""The account console (/account) driven by a person in headless Chromium (tests/browser.py), against
the app under waitress and the fake Eventory.

Every test records what the page sends (DevTools Network events) and what its JavaScript console
says: no request carries a password except the forms that must send one, and only in their body;
the console stays free of errors (the failures a test provokes on purpose are named, status and
path, and nothing else may appear).

Screenshots go to test-output/browser/ (git-ignored); docs/ holds copies of the main views."""

from __future__ import annotations

import base64
import json
import re
import time
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
from selenium.webdriver import Chrome as WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC

from .browser import needs_chromium, network_events, visible, wait
from .conftest import LiveServer
from .helpers import ADA, BOB, EVENTORY_LOGIN, NEW_PASSWORD, bearer

pytestmark = needs_chromium

SECOND_LOGIN = {
    "label": "Org Two",
    "username": "lars@example.com",
    "password": "eventory-pass-2",
    "color": "rgb(0, 128, 0)",
}
# Org Two's credentials after the edit: another Eventory user, so its logo can be fetched again.
EDITED_LOGIN = {"label": "Org Two (warehouse)", "username": "maja@example.com", "password": "renewed-org-two-secret"}
SCRATCH_LOGIN = {"label": "Scratch", "username": "sven@example.com", "password": "scratch-secret-99", "color": "#333"}
# Credentials Eventory refuses (a wrong password for the first user).
WRONG_LOGIN = {"label": "Wrong password", "username": "anna@example.com", "password": "not-annas-password"}

# The requests that must carry a password, and the body fields that carry it.
PASSWORD_FORMS = {
    ("POST", "/auth/register"): {"password"},
    ("POST", "/auth/login"): {"password"},
    ("PUT", "/auth/password"): {"current_password", "new_password"},
    ("DELETE", "/auth/me"): {"password"},
    ("POST", "/logins"): {"password"},
    ("PUT", "/logins/<id>"): {"password"},
}

# --- what the page sends, and what its console says --------------------------------------------


@dataclass
class Recorder:
    """Reads the browser's performance and console logs as the test goes (each read drains them)."""

    driver: WebDriver
    base: str
    sent: dict[str, dict] = field(default_factory=dict)
    console: list[dict] = field(default_factory=list)

    def drain(self) -> None:
        for event in network_events(self.driver):
            params = event["params"]
            if event["method"] == "Network.requestWillBeSent":
                request = params["request"]
                seen = self.sent.setdefault(params["requestId"], {"headers": {}})
                seen.update(method=request["method"], url=request["url"], body=_body(request))
                seen["headers"].update(request.get("headers", {}))
            elif event["method"] == "Network.requestWillBeSentExtraInfo":
                # The headers as sent (Authorization included).
                self.sent.setdefault(params["requestId"], {"headers": {}})["headers"].update(params.get("headers", {}))
        self.console.extend(self.driver.get_log("browser"))

    def requests(self) -> list[dict]:
        self.drain()
        return [request for request in self.sent.values() if "url" in request]

    def api_calls(self, method: str, path_pattern: str) -> list[dict]:
        pattern = re.compile(path_pattern)
        return [
            request
            for request in self.requests()
            if request["url"].startswith(self.base)
            and request["method"] == method
            and pattern.fullmatch(urlsplit(request["url"]).path)
        ]

    def assert_passwords_only_where_they_belong(self, secrets: list[str]) -> set[str]:
        """No request carries a password but the forms that must, and those only in their body
        (under the API's field for it); returns the passwords that were sent."""
        carried = set()
        for request in self.requests():
            if request["url"].startswith("data:"):
                continue
            method, path = request["method"], urlsplit(request["url"]).path
            outside_body = request["url"] + json.dumps(request["headers"])
            for secret in secrets:
                assert secret not in outside_body, (method, request["url"])
            body = request["body"] or ""
            found = [secret for secret in secrets if secret in body]
            if not found:
                continue
            kind = (method, re.sub(r"/[0-9]+$", "/<id>", path))
            assert kind in PASSWORD_FORMS, f"{method} {path} carried a password"
            fields = json.loads(body)
            for secret in found:
                holders = {name for name, value in fields.items() if value == secret}
                assert holders and holders <= PASSWORD_FORMS[kind], (kind, sorted(fields))
            carried.update(found)
        return carried

    def assert_console_clean(self, expected_failures: list[tuple[int | None, str]] = ()) -> None:
        """No console message of level warning or above, except the network errors the test
        provoked on purpose: (status, or None for any, and path)."""
        self.drain()
        unexpected = []
        for entry in self.console:
            if entry["level"] not in ("SEVERE", "WARNING"):
                continue
            if entry.get("source") == "network" and any(
                f"{self.base}{path} " in entry["message"]
                and (status is None or f"status of {status} " in entry["message"])
                for status, path in expected_failures
            ):
                continue
            unexpected.append(entry)
        assert unexpected == [], unexpected


def _body(request: dict) -> str | None:
    if "postData" in request:
        return request["postData"]
    entries = request.get("postDataEntries")
    if entries:
        return b"".join(base64.b64decode(entry.get("bytes", "")) for entry in entries).decode("utf-8", "replace")
    assert not request.get("hasPostData"), f"the body of {request['method']} {request['url']} was not logged"
    return None


# --- a person at the console ---------------------------------------------------------------------


Root = WebElement | str | None


@dataclass
class Console:
    driver: WebDriver
    url: str
    live: LiveServer | None = None
    recorder: Recorder | None = None

    def open(self) -> None:
        self.driver.get(self.url + "/account")
        wait(self.driver).until(
            lambda driver: self.shown("#signin") or self.shown("#console"), "the console did not start"
        )

    def shown(self, selector: str) -> bool:
        found = self.driver.find_elements(By.CSS_SELECTOR, selector)
        return bool(found) and found[0].is_displayed()

    def within(self, root: Root) -> WebElement | WebDriver:
        """A root: an element, the login card with this label (the list is drawn anew after every
        change, so cards are looked up when used), or the whole page."""
        if isinstance(root, str):
            return self.card(root)
        return root or self.driver

    def button(self, text: str, root: Root = None) -> WebElement:
        """The visible button whose text is `text` (under `root`), waiting for it to be usable."""
        xpath = f".//button[normalize-space()={json.dumps(text)}]"

        def find(_driver):
            try:
                for element in self.within(root).find_elements(By.XPATH, xpath):
                    if element.is_displayed() and element.is_enabled():
                        return element
            except StaleElementReferenceException:
                pass
            return False

        return wait(self.driver).until(find, f"no usable button {text!r}")

    def press(self, text: str, root: Root = None) -> None:
        element = self.button(text, root)
        self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
        element.click()

    def fill(self, root: WebElement, **fields: str | bool) -> None:
        for name, value in fields.items():
            control = root.find_element(By.NAME, name)
            if isinstance(value, bool):
                if control.is_selected() != value:
                    control.click()
            elif control.tag_name == "select":
                control.find_element(By.CSS_SELECTOR, f"option[value={json.dumps(value)}]").click()
            else:
                control.clear()
                control.send_keys(value)

    def form(self, selector: str) -> WebElement:
        return visible(self.driver, selector)

    def text_of(self, selector: str, root: Root = None) -> str:
        return self.within(root).find_element(By.CSS_SELECTOR, selector).text

    def wait_text(self, selector: str, expected: str, root: Root = None) -> str:
        """Waits until the element's text contains `expected`; returns the text."""

        def has(_driver):
            try:
                text = self.text_of(selector, root)
            except (StaleElementReferenceException, NoSuchElementException):
                return False
            return text if expected in text else False

        return wait(self.driver).until(has, f"{selector} never said {expected!r}")

    # Accounts

    def register(self, who: dict) -> None:
        form = self.form("#signin-form")
        self.fill(form, username=who["username"], password=who["password"])
        self.press("Register", form)
        self.wait_signed_in(who["username"])

    def sign_in(self, who: dict, password: str | None = None) -> None:
        form = self.form("#signin-form")
        self.fill(form, username=who["username"], password=password or who["password"])
        self.press("Sign in", form)
        self.wait_signed_in(who["username"])

    def wait_signed_in(self, username: str) -> None:
        self.wait_text("#who-name", username)
        visible(self.driver, "#console")

    def sign_out(self, button: str = "Sign out") -> str:
        self.press(button, self.form("#settings"))
        visible(self.driver, "#signin")
        return self.text_of("#notice")

    def token(self) -> str:
        stored = self.driver.execute_script("return sessionStorage.getItem('eventory-account-session')")
        return json.loads(stored)["access_token"]

    # Logins

    def card(self, label: str) -> WebElement:
        xpath = f"//ul[@id='login-list']/li[.//h3[normalize-space()={json.dumps(label)}]]"
        return wait(self.driver).until(EC.visibility_of_element_located((By.XPATH, xpath)), f"no login {label!r}")

    def labels(self) -> list[str]:
        script = "return [...document.querySelectorAll('#login-list h3')].map((h) => h.textContent)"
        return self.driver.execute_script(script)

    def add_login(self, login: dict) -> WebElement:
        form = self.form("#add-login-form")
        self.fill(form, **login)
        self.press("Add login", form)
        self.card(login["label"])
        assert form.find_element(By.NAME, "password").get_attribute("value") == ""

    def open_part(self, label: str, part: str) -> WebElement:
        details = self.card(label).find_element(By.CSS_SELECTOR, f"details[data-part={part}]")
        if details.get_attribute("open") is None:
            summary = details.find_element(By.TAG_NAME, "summary")
            self.driver.execute_script("arguments[0].scrollIntoView({block: 'center'})", summary)
            summary.click()
        return details

    def accept_confirmation(self) -> str:
        alert = wait(self.driver).until(EC.alert_is_present(), "no confirmation asked")
        text = alert.text
        alert.accept()
        return text

    def gone(self, label: str) -> None:
        wait(self.driver).until(lambda _driver: label not in self.labels(), f"{label!r} still listed")

    def screenshot(self, output, name: str, section: str | None = None) -> None:
        """The window, from the top of the page or of `section` (a selector)."""
        if section is None:
            self.driver.execute_script("window.scrollTo(0, 0)")
        else:
            self.driver.execute_script("document.querySelector(arguments[0]).scrollIntoView()", section)
        self.driver.save_screenshot(str(output / f"account-{name}.png"))


@pytest.fixture
def console(driver, make_app, serve, fake_eventory):
    fake_eventory.add_user(SECOND_LOGIN["username"], SECOND_LOGIN["password"], "Org Two AB")
    fake_eventory.add_user(EDITED_LOGIN["username"], EDITED_LOGIN["password"], "Org Two AB")
    fake_eventory.add_user(SCRATCH_LOGIN["username"], SCRATCH_LOGIN["password"], "Scratch AB")
    live = serve(make_app())
    return Console(driver, live.url, live, recording(driver, live.url))


def recording(driver: WebDriver, url: str) -> Recorder:
    """A recorder of what the page sends to `url`. The fresh browser's first tab shows Chromium's
    new-tab page (chrome:// resources, loaded late): leave it and drop its entries first."""
    driver.get("about:blank")
    network_events(driver)
    driver.get_log("browser")
    return Recorder(driver, url)


def api_session(live, who: dict) -> dict:
    response = live.post("/auth/login", data=who)
    assert response.status_code == 200, response.text
    return bearer(response.json()["access_token"])


def assert_storage_holds_no_secret(console: Console, secrets: list[str]) -> None:
    driver = console.driver
    assert driver.execute_script("return localStorage.length") == 0
    assert driver.execute_script("return document.cookie") == ""
    assert driver.get_cookies() == []
    stored = driver.execute_script("return JSON.stringify(Object.entries(sessionStorage))")
    for secret in secrets:
        assert secret not in stored
        assert secret not in driver.page_source


# --- the console with the API every deployment has -------------------------------------------------


def test_a_person_registers_keeps_logins_and_ends_sessions_in_the_console(console, output):
    driver, live, recorder = console.driver, console.live, console.recorder
    console.open()
    assert console.shown("#signin") and not console.shown("#console")
    console.screenshot(output, "signin")

    # Register with the keyboard alone: type, Tab past "Sign in" to "Register", Enter.
    form = console.form("#signin-form")
    form.find_element(By.NAME, "username").click()
    driver.switch_to.active_element.send_keys(ADA["username"], Keys.TAB, ADA["password"], Keys.TAB, Keys.TAB)
    assert driver.switch_to.active_element.text == "Register"
    driver.switch_to.active_element.send_keys(Keys.ENTER)
    console.wait_signed_in(ADA["username"])
    assert console.text_of("#no-logins") == "No saved logins yet."

    # Two logins, then a third that is deleted again.
    console.add_login(EVENTORY_LOGIN)
    console.add_login(SECOND_LOGIN)
    assert console.labels() == ["Org One", "Org Two"]
    assert "anna@example.com" in console.card("Org One").text and "yours" in console.card("Org One").text
    console.add_login(SCRATCH_LOGIN)
    console.press("Delete", "Scratch")
    assert "Scratch" in console.accept_confirmation()
    console.gone("Scratch")
    assert [login["label"] for login in live.get("/logins", headers=bearer(console.token())).json()] == [
        "Org One",
        "Org Two",
    ]

    # Edit: the password field is empty (write-only); only what changed is sent.
    edit = console.open_part("Org Two", "edit")
    assert edit.find_element(By.NAME, "password").get_attribute("value") == ""
    assert edit.find_element(By.NAME, "username").get_attribute("value") == SECOND_LOGIN["username"]
    console.fill(edit, **EDITED_LOGIN)
    console.press("Save", edit)
    console.wait_text("[data-done]", "Saved: label, username, password.", EDITED_LOGIN["label"])
    [save] = recorder.api_calls("PUT", r"/logins/[0-9]+")
    assert json.loads(save["body"]) == EDITED_LOGIN  # the colour did not change, so it was not sent
    console.screenshot(output, "logins")

    # Change the password: this session goes on with the new pair, the old password no longer works.
    form = console.form("#password-form")
    console.fill(form, current_password=ADA["password"], new_password=NEW_PASSWORD)
    console.press("Change password", form)
    console.wait_text("#password-form [data-done]", "Password changed.")
    assert form.find_element(By.NAME, "current_password").get_attribute("value") == ""
    assert live.post("/auth/login", data=ADA).status_code == 401
    renewed = console.token()
    assert live.get("/auth/me", headers=bearer(renewed)).status_code == 200

    # Sign out ends this token on the server.
    assert console.sign_out() == "Signed out."
    assert live.get("/auth/me", headers=bearer(renewed)).status_code == 401
    assert driver.execute_script("return sessionStorage.length") == 0

    console.sign_in(ADA, NEW_PASSWORD)
    assert console.labels() == ["Org One", "Org Two (warehouse)"]

    # A reload keeps the tab signed in (its sessionStorage); nothing else holds the session.
    driver.refresh()
    console.wait_signed_in(ADA["username"])
    wait(driver).until(lambda _driver: console.labels() == ["Org One", "Org Two (warehouse)"])

    # Readable at a phone's width: nothing wider than the screen.
    driver.set_window_size(390, 1400)
    assert driver.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")
    console.screenshot(output, "phone")
    driver.set_window_size(1280, 1600)

    # Sign out everywhere ends the sessions of other devices too.
    elsewhere = api_session(live, {"username": ADA["username"], "password": NEW_PASSWORD})
    assert "every session of this account has ended" in console.sign_out("Sign out everywhere")
    assert live.get("/auth/me", headers=elsewhere).status_code == 401

    secrets = [
        ADA["password"],
        NEW_PASSWORD,
        EVENTORY_LOGIN["password"],
        SECOND_LOGIN["password"],
        EDITED_LOGIN["password"],
        SCRATCH_LOGIN["password"],
    ]
    assert_storage_holds_no_secret(console, secrets)
    carried = recorder.assert_passwords_only_where_they_belong(secrets)
    assert carried == set(secrets)  # each was typed once, into a form that must send it
    assert recorder.api_calls("POST", "/auth/logout") and recorder.api_calls("POST", "/auth/logout-all")
    recorder.assert_console_clean()


def test_refusals_show_the_apis_detail_and_the_page_keeps_working(console, fake_eventory):
    live, recorder = console.live, console.recorder
    assert live.post("/auth/register", json=BOB).status_code == 201
    console.open()
    form = console.form("#signin-form")

    console.fill(form, username=BOB["username"], password="not the right password")
    console.press("Sign in", form)
    console.wait_text("#signin-form [data-error]", "Incorrect username or password.")

    console.fill(form, username=BOB["username"], password=BOB["password"] + " again")
    console.press("Register", form)
    console.wait_text("#signin-form [data-error]", "That username is already taken.")

    console.fill(form, username="carol", password="short")
    console.press("Register", form)
    problem = console.wait_text("#signin-form [data-error]", "password:")
    refusal = live.post("/auth/register", json={"username": "carol", "password": "short"}).json()
    assert problem.splitlines()[0] == refusal["detail"]
    assert problem.splitlines()[1] == "password: " + " ".join(refusal["errors"]["password"])

    console.sign_in(BOB)
    console.add_login(EVENTORY_LOGIN)
    assert console.text_of("#signin-form [data-error]") == ""

    # The login is deleted from another session: the page's Save and Delete meet its 404.
    [login] = live.get("/logins", headers=api_session(live, BOB)).json()
    assert live.request("DELETE", f"/logins/{login['id']}", headers=api_session(live, BOB)).status_code == 204
    missing = live.get(f"/logins/{login['id']}", headers=api_session(live, BOB)).json()["detail"]
    edit = console.open_part("Org One", "edit")
    console.fill(edit, color="#00f")
    console.press("Save", edit)
    console.wait_text("[data-error]", missing, "Org One")
    console.press("Delete", "Org One")
    console.accept_confirmation()
    wait(console.driver).until(lambda _driver: recorder.api_calls("DELETE", f"/logins/{login['id']}"))
    console.wait_text("[data-error]", missing, "Org One")

    # A wrong current password is refused with the API's words; the rest goes on working.
    form = console.form("#password-form")
    console.fill(form, current_password="wrong wrong wrong", new_password=NEW_PASSWORD)
    console.press("Change password", form)
    console.wait_text("#password-form [data-error]", "The current password is not right.")
    console.add_login(SECOND_LOGIN)
    assert live.post("/auth/login", data=BOB).status_code == 200

    login_path = f"/logins/{login['id']}"
    recorder.assert_console_clean(
        [
            (401, "/auth/login"),
            (409, "/auth/register"),
            (422, "/auth/register"),
            (404, login_path),
            (404, login_path),
            (403, "/auth/password"),
        ]
    )


def test_the_token_is_renewed_before_it_expires(driver, make_app, serve, output):
    # Access tokens of 3.6 seconds (expires_in says 3): the page renews a fifth of the lifetime early.
    live = serve(make_app(ACCESS_TOKEN_EXPIRE_MINUTES=0.06))
    recorder = recording(driver, live.url)
    console = Console(driver, live.url, live, recorder)
    assert live.post("/auth/register", json=ADA).status_code == 201
    console.open()
    console.sign_in(ADA)
    first = console.token()

    wait(driver).until(lambda _driver: console.token() != first, "the token was not renewed")
    [renewal] = recorder.api_calls("POST", "/auth/refresh")
    assert renewal["headers"]["Authorization"].startswith("Bearer ") and renewal["body"] is None
    time.sleep(4)  # past the first token's lifetime (and through a second renewal)
    assert live.get("/auth/me", headers=bearer(first)).status_code == 401
    console.add_login(EVENTORY_LOGIN)
    assert len(recorder.api_calls("POST", "/auth/refresh")) >= 2
    assert recorder.api_calls("POST", "/logins")[0]["headers"]["Authorization"] != f"Bearer {first}"
    recorder.assert_console_clean()


# --- shares and the audit, health and logos ---------------------------------------------------


def test_the_whole_story_with_health_shares_and_the_audit(console, output, fake_eventory):
    """Issue 16's story, with issue 27's invitations: register, add two logins, check one, offer
    both to a second account, sign in as that account, see the offers and accept them, see the
    shared login without its username or password, revoke, read the audit, change the password,
    sign out everywhere."""
    driver, live, recorder = console.driver, console.live, console.recorder
    assert live.post("/auth/register", json=BOB).status_code == 201
    console.open()
    console.register(ADA)
    console.add_login(EVENTORY_LOGIN)
    console.add_login(SECOND_LOGIN)

    # Health in the API's own word, and the time of the last check (fetching the logo signed in
    # already, so it may say ok before the check).
    console.press("Check now", "Org One")
    console.wait_text("[data-done]", "Checked: ok.", "Org One")
    [check] = recorder.api_calls("POST", r"/logins/[0-9]+/check")
    assert check["headers"]["Authorization"].startswith("Bearer ") and check["body"] is None
    assert console.text_of(".health", "Org One") == "ok"
    assert re.search(r"checked \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", console.card("Org One").text)
    # The logo came with the bearer token and is shown from a blob: URL.
    wait(driver).until(lambda _driver: recorder.api_calls("GET", r"/logins/[0-9]+/logo"), "no logo fetched")
    for fetched in recorder.api_calls("GET", r"/logins/[0-9]+/logo"):
        assert fetched["headers"]["Authorization"].startswith("Bearer ")
    assert console.card("Org One").find_element(By.CSS_SELECTOR, "img.logo").get_attribute("src").startswith("blob:")

    # Offer Org One to Bob (use) and Org Two (manage): invitations until he accepts them.
    share_with(console, "Org One", BOB["username"], "use")
    share_with(console, "Org Two", BOB["username"], "manage")
    console.wait_text("[data-list=shares]", "not accepted yet", "Org Two")
    console.screenshot(output, "sharing")

    # Bob sees two offers and neither login yet; he accepts both.
    console.sign_out()
    console.sign_in(BOB)
    offers = visible(console.driver, "#invitations")
    console.wait_text("#invitation-list", "Org One from ada, role use")
    assert "Org Two from ada, role manage" in offers.text
    assert console.labels() == []
    console.screenshot(output, "invitations")
    for label in ("Org One", "Org Two"):
        offer = offers.find_element(By.XPATH, f".//li[starts-with(normalize-space(), {json.dumps(label)})]")
        console.press("Accept", offer)
        console.wait_text("#notice", f"You accepted {label} from ada.")
    wait(driver).until(lambda _driver: not driver.find_element(By.ID, "invitations").is_displayed(), "offers shown")

    # Bob sees both; Org One without its Eventory username, neither with a password; he leaves Org Two.
    shared = console.card("Org One")
    assert "shared by ada, role use" in shared.text
    assert "not shown to you" in shared.text
    assert EVENTORY_LOGIN["username"] not in driver.page_source
    assert EVENTORY_LOGIN["password"] not in driver.page_source and SECOND_LOGIN["password"] not in driver.page_source
    owners_only = shared.find_elements(By.XPATH, ".//button[normalize-space()='Delete' or normalize-space()='Save']")
    assert not [button for button in owners_only if button.is_displayed()]
    managed = console.card("Org Two")
    assert "shared by ada, role manage" in managed.text and SECOND_LOGIN["username"] in managed.text
    console.press("Leave", "Org Two")
    assert "ada" in console.accept_confirmation()
    console.gone("Org Two")
    console.sign_out()

    # Ada revokes Bob's share of Org One.
    console.sign_in(ADA)
    sharing = console.open_part("Org One", "sharing")
    console.wait_text("[data-list=shares]", BOB["username"], sharing)
    console.press("Revoke", sharing)
    console.wait_text("[data-done]", "Revoked the share of bob.", "Org One")
    assert live.get("/logins", headers=api_session(live, BOB)).json() == []

    # The audit, newest first, in the API's words; filtered by login; paged with More.
    actions = read_audit(console)
    assert actions[:4] == ["share.revoke", "share.revoke", "share.accept", "share.accept"], actions
    assert actions.count("login.create") == 2
    console.screenshot(output, "audit", "#audit")
    org_two = next(option for option in audit_options(console) if option.startswith("Org Two"))
    only_two = read_audit(console, login=org_two, limit="1")
    assert only_two == ["share.revoke", "share.accept", "share.grant", "login.create"]  # four pages of one

    # Change the password, then sign out everywhere.
    form = console.form("#password-form")
    console.fill(form, current_password=ADA["password"], new_password=NEW_PASSWORD)
    console.press("Change password", form)
    console.wait_text("#password-form [data-done]", "Password changed.")
    elsewhere = api_session(live, {"username": ADA["username"], "password": NEW_PASSWORD})
    console.sign_out("Sign out everywhere")
    assert live.get("/auth/me", headers=elsewhere).status_code == 401

    secrets = [ADA["password"], BOB["password"], NEW_PASSWORD, EVENTORY_LOGIN["password"], SECOND_LOGIN["password"]]
    assert_storage_holds_no_secret(console, secrets)
    recorder.assert_passwords_only_where_they_belong(secrets)
    recorder.assert_console_clean()


def test_an_offer_declined_in_the_console_is_gone_for_both_accounts(console):
    live = console.live
    assert live.post("/auth/register", json=BOB).status_code == 201
    console.open()
    console.register(ADA)
    console.add_login(EVENTORY_LOGIN)
    share_with(console, "Org One", BOB["username"], "use")
    console.sign_out()
    console.sign_in(BOB)
    offers = visible(console.driver, "#invitations")
    console.wait_text("#invitation-list", "Org One from ada, role use")
    console.press("Decline", offers)
    assert "cannot offer it to you again for a day" in console.accept_confirmation()
    console.wait_text("#notice", "You declined Org One from ada.")
    wait(console.driver).until(lambda driver: not driver.find_element(By.ID, "invitations").is_displayed(), "shown")
    assert console.labels() == []
    ada = api_session(live, ADA)
    assert live.get("/shares/incoming", headers=api_session(live, BOB)).json() == []
    login_id = live.get("/logins", headers=ada).json()[0]["id"]
    assert live.get(f"/logins/{login_id}/shares", headers=ada).json() == {"shares": []}
    console.recorder.assert_console_clean()


def share_with(console: Console, label: str, username: str, role: str) -> None:
    sharing = console.open_part(label, "sharing")
    form = sharing.find_element(By.CSS_SELECTOR, "form[data-form=share]")
    console.fill(form, username=username, role=role)
    console.press("Share", form)
    console.wait_text(
        "[data-done]", f"Shared with {username}, role {role}. It starts when {username} accepts it.", label
    )
    console.wait_text("[data-list=shares]", username, label)


def audit_options(console: Console) -> list[str]:
    select = console.driver.find_element(By.CSS_SELECTOR, "#audit-form select[name=login_id]")
    return [option.text for option in select.find_elements(By.TAG_NAME, "option")]


def read_audit(console: Console, login: str = "All logins", limit: str = "50") -> list[str]:
    """Show the audit (for one login), pressing More until every page is read: the actions."""
    form = console.form("#audit-form")
    select = form.find_element(By.NAME, "login_id")
    select.find_element(By.XPATH, f".//option[normalize-space()={json.dumps(login)}]").click()
    console.fill(form, limit=limit)
    console.press("Show", form)
    wait(console.driver).until(
        lambda _driver: (
            console.shown("#audit-table") or console.shown("#audit-empty") or console.text_of("#audit-error")
        )
    )
    assert console.text_of("#audit-error") == ""
    while console.shown("#audit-more"):
        rows = len(console.driver.find_elements(By.CSS_SELECTOR, "#audit-events tr"))
        console.press("More")
        wait(console.driver).until(
            lambda _driver, rows=rows: (
                len(_driver.find_elements(By.CSS_SELECTOR, "#audit-events tr")) > rows
                or not console.shown("#audit-more")
            )
        )
    cells = console.driver.find_elements(By.CSS_SELECTOR, "#audit-events td[data-label=Action]")
    return [cell.text for cell in cells]


def test_a_grantee_uses_the_console_without_seeing_secrets_and_leaves(console):
    """What the share-related parts of the page do for the owner and the grantee."""
    live = console.live
    assert live.post("/auth/register", json=BOB).status_code == 201
    console.open()
    console.register(ADA)
    console.add_login({**EVENTORY_LOGIN, "read_only": True})
    assert "read-only" in console.card("Org One").text
    share_with(console, "Org One", BOB["username"], "use")
    console.sign_out()
    console.sign_in(BOB)
    console.wait_text("#invitation-list", "Org One from ada, role use")
    console.press("Accept", visible(console.driver, "#invitations"))
    shared = console.card("Org One")
    assert "shared by ada, role use" in shared.text and EVENTORY_LOGIN["username"] not in console.driver.page_source
    console.press("Leave", "Org One")
    console.accept_confirmation()
    console.gone("Org One")
    assert read_audit(console)[0] == "share.revoke"
    console.recorder.assert_passwords_only_where_they_belong(
        [ADA["password"], BOB["password"], EVENTORY_LOGIN["password"]]
    )
    console.recorder.assert_console_clean()


def test_check_now_shows_health_in_the_apis_words(console, fake_eventory):
    """A login's health and its check, a rejected password, and its logo."""
    console.open()
    console.register(ADA)
    console.add_login(WRONG_LOGIN)
    console.press("Check now", "Wrong password")
    console.wait_text(".health", "rejected", "Wrong password")
    console.add_login(EVENTORY_LOGIN)
    console.press("Check now", "Org One")
    console.wait_text(".health", "ok", "Org One")
    secrets = [ADA["password"], EVENTORY_LOGIN["password"], WRONG_LOGIN["password"]]
    console.recorder.assert_passwords_only_where_they_belong(secrets)
    # The rejected login's logo cannot be fetched (Eventory refuses its credentials): not shown.
    wrong = console.card("Wrong password")
    assert not wrong.find_element(By.CSS_SELECTOR, "img.logo").is_displayed()
    console.recorder.assert_console_clean([(None, f"/logins/{wrong.get_attribute('data-login-id')}/logo")])


def test_the_console_is_served_and_works_under_waitress_without_a_network(console):
    """Every request the page makes goes to this server: no CDN, nothing from elsewhere."""
    console.open()
    console.register(ADA)
    urls = [request["url"] for request in console.recorder.requests()]
    assert console.url + "/account/static/account.js" in urls
    assert console.url + "/account/static/account.css" in urls
    elsewhere = [url for url in urls if not url.startswith((console.url + "/", "data:", "blob:"))]
    assert elsewhere == []
    # The policy the browser enforced is the page's own: an inline script is refused.
    blocked = console.driver.execute_script(
        "const s = document.createElement('script'); s.textContent = 'window.__ran = true';"
        "document.head.append(s); return window.__ran === true;"
    )
    assert blocked is False
    violations = [entry for entry in console.driver.get_log("browser") if "Content Security Policy" in entry["message"]]
    assert violations, "the refused inline script was not reported"
