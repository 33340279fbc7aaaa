"""A real browser (tests/browser.py): headless Chromium against the app under waitress. /docs renders
with no internet, a person uses Swagger UI end to end, and a page from another origin calls the API
through fetch, which CORS allows for a configured origin only."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from selenium.webdriver import Chrome as WebDriver
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as EC

from .browser import click, needs_chromium, request_urls, visible, wait
from .helpers import ADA

pytestmark = needs_chromium

# Swagger UI 4.15 markup (swagger-ui-bundle): no operationId in the spec, so Swagger UI names each
# operation <method>_<path with non-word characters as _>.
REGISTER = "#operations-auth-post_auth_register"
LOGIN = "#operations-auth-post_auth_login"
LIST_LOGINS = "#operations-logins-get_logins"
LIVE_STATUS = ".responses-table.live-responses-table .response .response-col_status"
LIVE_BODY = ".responses-table.live-responses-table .response .response-col_description .microlight"
OAUTH2_BOX = "//div[contains(@class, 'auth-container')][.//input[@id='oauth_username']]"


def open_docs(driver: WebDriver, base_url: str) -> None:
    driver.get(base_url + "/docs")
    # Swagger UI builds the page from /openapi.json after load: wait for the operations themselves.
    visible(driver, f"{LOGIN} .opblock-summary")
    visible(driver, f"{LIST_LOGINS} .opblock-summary")


def csp_refusals(driver: WebDriver) -> list[str]:
    """What a page's Content-Security-Policy refused since the browser's console was last read."""
    return [entry["message"] for entry in driver.get_log("browser") if "Content Security Policy" in entry["message"]]


def try_out(driver: WebDriver, operation_selector: str) -> WebElement:
    """Expand an operation and press "Try it out"; returns the operation's block."""
    click(driver, f"{operation_selector} .opblock-summary")
    operation = visible(driver, operation_selector)
    click(driver, ".try-out__btn", operation)
    visible(driver, ".execute", operation)
    return operation


def execute(driver: WebDriver, operation: WebElement) -> tuple[str, str]:
    """Press Execute and wait for the live response: (status code, body text)."""
    click(driver, ".execute", operation)
    status = visible(driver, LIVE_STATUS, operation)
    wait(driver).until(lambda _driver: status.text.strip(), "no live response status")
    body = visible(driver, LIVE_BODY, operation)
    return status.text.strip(), body.text.strip()


# 1. /docs with no internet ------------------------------------------------------------------------


def test_docs_render_offline_from_the_server_alone(driver, make_app, serve, output):
    live = serve(make_app())
    # The fresh browser's first tab shows Chromium's new-tab page (chrome:// resources, loaded late):
    # leave it, then drop its entries, so the log holds this test's page alone.
    driver.get("about:blank")
    request_urls(driver)

    open_docs(driver, live.url)
    assert "Eventory multisite backend" in driver.page_source
    assert driver.find_elements(By.CSS_SELECTOR, ".swagger-ui .info .title")
    operations = {element.get_attribute("id") for element in driver.find_elements(By.CSS_SELECTOR, ".opblock")}
    assert {"operations-auth-post_auth_register", "operations-auth-post_auth_login"} <= operations
    assert {"operations-logins-get_logins", "operations-logins-post_logins"} <= operations
    driver.save_screenshot(str(output / "docs.png"))

    assert csp_refusals(driver) == []  # the page's Content-Security-Policy (test_factory.py) refuses nothing

    urls = request_urls(driver)
    assert live.url + "/docs/static/swagger-ui-bundle.js" in urls
    assert live.url + "/openapi.json" in urls
    elsewhere = [url for url in urls if not url.startswith((live.url + "/", "data:", "blob:", "about:"))]
    assert elsewhere == [], f"/docs reached beyond the server: {elsewhere}"


# 2. Register, authorise and list logins from Swagger UI ----------------------------------------------


def test_register_authorize_and_list_logins_from_swagger_ui(driver, make_app, serve, output):
    live = serve(make_app())
    csp_refusals(driver)  # read what earlier pages left in the console
    open_docs(driver, live.url)

    register = try_out(driver, REGISTER)
    body = visible(driver, "textarea.body-param__text", register)
    body.clear()
    body.send_keys(json.dumps(ADA))
    status, text = execute(driver, register)
    driver.save_screenshot(str(output / "swagger-1-register.png"))
    assert status == "201", text
    assert json.loads(text)["username"] == ADA["username"]

    click(driver, ".btn.authorize")
    oauth2 = wait(driver).until(EC.visibility_of_element_located((By.XPATH, OAUTH2_BOX)))
    visible(driver, "#oauth_username", oauth2).send_keys(ADA["username"])
    visible(driver, "#oauth_password", oauth2).send_keys(ADA["password"])
    driver.save_screenshot(str(output / "swagger-2-authorize-dialog.png"))
    click(driver, ".auth-btn-wrapper .btn.modal-btn.auth.authorize", oauth2)
    # Swagger UI posts the password grant to tokenUrl; on success the box says "Authorized" and offers Logout.
    wait(driver).until(
        lambda _driver: "Authorized" in oauth2.text or oauth2.find_elements(By.CSS_SELECTOR, ".errors"),
        "the password flow neither authorised nor failed",
    )
    driver.save_screenshot(str(output / "swagger-3-authorized.png"))
    assert not oauth2.find_elements(By.CSS_SELECTOR, ".errors"), oauth2.text
    assert "Logout" in visible(driver, ".auth-btn-wrapper .btn.modal-btn.auth.authorize", oauth2).text
    click(driver, ".btn-done", oauth2)
    wait(driver).until(EC.invisibility_of_element_located((By.CSS_SELECTOR, ".modal-ux")))
    assert "locked" in driver.find_element(By.CSS_SELECTOR, ".btn.authorize").get_attribute("class").split()

    logins = try_out(driver, LIST_LOGINS)
    status, text = execute(driver, logins)
    driver.save_screenshot(str(output / "swagger-4-logins.png"))
    assert status == "200", text
    assert json.loads(text) == []
    curl = visible(driver, ".curl-command", logins).text
    assert "Authorization: Bearer " in curl
    assert csp_refusals(driver) == []  # /docs's Content-Security-Policy let all of that work


# 3. CORS from a page of another origin ---------------------------------------------------------------

OTHER_ORIGIN_PAGE = b"""<!DOCTYPE html>
<html>
<head><meta charset="utf-8"><title>Another origin</title></head>
<body>
<h1>A page of another origin</h1>
<pre id="outcome">not run</pre>
<script>
async function attempt(call) {
  try {
    const response = await call();
    return {ok: true, status: response.status, body: await response.json()};
  } catch (error) {
    return {ok: false, error: error.name, message: String(error.message)};
  }
}

// What the frontend does: FormData sign-in, then a bearer-token call.
// `fallbackToken` lets the second call be tried even when the first is refused.
async function check(backend, username, password, fallbackToken) {
  const form = new FormData();
  form.append("username", username);
  form.append("password", password);
  const login = await attempt(() => fetch(backend + "/auth/login", {method: "POST", body: form}));
  const token = login.ok ? login.body.access_token : fallbackToken;
  const logins = await attempt(() => fetch(backend + "/logins", {headers: {Authorization: "Bearer " + token}}));
  const outcome = {origin: location.origin, login: login, logins: logins};
  document.getElementById("outcome").textContent = JSON.stringify(outcome, null, 2);
  return outcome;
}
</script>
</body>
</html>
"""


class _PageHandler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(OTHER_ORIGIN_PAGE)))
        self.end_headers()
        self.wfile.write(OTHER_ORIGIN_PAGE)

    def log_message(self, format, *args):  # noqa: A002
        pass


@pytest.fixture
def other_origin() -> Iterator[str]:
    """A second local HTTP server (another port, so another origin) serving the page above."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _PageHandler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.mark.parametrize("allowed", [True, False], ids=["configured-origin", "other-origin"])
def test_cors_from_a_page_of_another_origin(driver, make_app, serve, other_origin, output, allowed):
    origins = [other_origin] if allowed else ["https://multisite.example"]
    live = serve(make_app(CORS_ORIGINS=origins))
    assert live.post("/auth/register", json=ADA).status_code == 201
    token = live.post("/auth/login", data=ADA).json()["access_token"]

    driver.get(other_origin + "/")
    assert driver.execute_script("return location.origin") == other_origin != live.url
    outcome = driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        "check(arguments[0], arguments[1], arguments[2], arguments[3])"
        "  .then(done, (error) => done({failed: String(error)}));",
        live.url,
        ADA["username"],
        ADA["password"],
        token,
    )
    driver.save_screenshot(str(output / f"cors-{'allowed' if allowed else 'refused'}.png"))

    if allowed:
        assert outcome["login"]["ok"] and outcome["login"]["status"] == 200, outcome
        assert outcome["login"]["body"]["token_type"] == "bearer"
        assert outcome["logins"] == {"ok": True, "status": 200, "body": []}, outcome
    else:
        # The browser refuses to hand either answer to the page: fetch rejects with a TypeError.
        assert outcome["login"]["ok"] is False and outcome["login"]["error"] == "TypeError", outcome
        assert outcome["logins"]["ok"] is False and outcome["logins"]["error"] == "TypeError", outcome
        console = [entry["message"] for entry in driver.get_log("browser")]
        assert sum("blocked by CORS policy" in message for message in console) == 2, console
        # The backend itself works: the same calls succeed without a browser's CORS check.
        assert live.get("/logins", headers={"Authorization": f"Bearer {token}"}).json() == []
