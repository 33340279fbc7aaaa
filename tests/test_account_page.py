"""The account console as files and headers (no browser): /account is an HTML page held to a strict
Content-Security-Policy and never cached, its stylesheet and script are served from the package,
and nothing else is. tests/test_account_console.py drives it in a browser."""

from __future__ import annotations

import re

import pytest
import requests

from .helpers import start_instance

CONSOLE_POLICY = (
    "default-src 'self'; img-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "form-action 'none'; frame-ancestors 'none'"
)


def test_the_console_is_an_html_page_with_a_strict_policy_and_no_store(client):
    page = client.get("/account")

    assert page.status_code == 200
    assert page.mimetype == "text/html"
    assert page.headers["Content-Security-Policy"] == CONSOLE_POLICY
    assert page.headers["Cache-Control"] == "no-store"
    assert page.headers["X-Frame-Options"] == "DENY"
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["X-Content-Type-Options"] == "nosniff"
    assert "Set-Cookie" not in page.headers


def test_the_page_has_nothing_inline_and_nothing_from_elsewhere(client):
    html = client.get("/account").get_data(as_text=True)

    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, flags=re.S)
    assert scripts == [""], "every script is a file"
    assert '<script type="module" src="/account/static/account.js">' in html
    assert '<link rel="stylesheet" href="/account/static/account.css">' in html
    assert "<style" not in html and " style=" not in html and not re.search(r"\son[a-z]+=", html)
    assert "https://" not in html and "http://" not in html and "//cdn" not in html


@pytest.mark.parametrize(
    "asset, mimetype",
    [("account.js", "text/javascript"), ("account.css", "text/css"), ("favicon.svg", "image/svg+xml")],
)
def test_the_stylesheet_and_script_are_served_from_the_package(client, asset, mimetype):
    response = client.get(f"/account/static/{asset}")

    assert response.status_code == 200
    assert response.mimetype == mimetype
    assert len(response.data) > 100
    assert response.headers["Content-Security-Policy"] == CONSOLE_POLICY
    response.close()


@pytest.mark.parametrize(
    "path",
    [
        "/account/static/missing.js",
        "/account/static/../routes.py",
        "/account/static/%2e%2e/routes.py",
        "/account/static/..%2f__init__.py",
        "/account/static/../templates/account/index.html",
        "/account/static/account.js.map",
        "/account/static/",
        "/account/index.html",
        "/account/",
    ],
)
def test_anything_else_under_account_is_a_json_404(client, path):
    response = client.get(path)

    assert response.status_code == 404
    assert response.mimetype == "application/json"
    assert response.json["detail"]


def test_every_form_control_is_labelled_and_named_after_its_api_field(client):
    html = client.get("/account").get_data(as_text=True)
    controls = re.findall(r"<(?:input|select|textarea)\b[^>]*>", html)
    names = set()
    for control in controls:
        name = re.search(r'\bname="([^"]+)"', control)
        assert name, control
        names.add(name.group(1))
        identifier = re.search(r'\bid="([^"]+)"', control)
        # Labelled by <label for=id>, or wrapped in its <label> (the login cards' template).
        labelled = identifier and f'<label for="{identifier.group(1)}"' in html
        wrapped = re.search(r"<label>[^<]*" + re.escape(control), html) or re.search(
            r"<label>" + re.escape(control), html
        )
        assert labelled or wrapped, control
    assert names == {
        "username",
        "password",
        "label",
        "color",
        "read_only",
        "login_id",
        "limit",
        "current_password",
        "new_password",
        "role",
    }


def test_registration_closed_offers_no_register_button(make_app):
    open_page = make_app().test_client().get("/account").get_data(as_text=True)
    closed_page = make_app(REGISTRATION_OPEN=False).test_client().get("/account").get_data(as_text=True)

    assert ">Register</button>" in open_page
    assert ">Register</button>" not in closed_page
    assert ">Sign in</button>" in closed_page


def test_the_page_states_the_servers_password_length(make_app):
    page = make_app(PASSWORD_MIN_LENGTH=20).test_client().get("/account").get_data(as_text=True)

    assert "at least 20 characters" in page


def test_the_console_is_reached_through_a_path_prefix(client):
    page = client.get("/account", environ_overrides={"SCRIPT_NAME": "/eventory-backend"}).get_data(as_text=True)

    assert 'data-api="/eventory-backend"' in page
    assert 'src="/eventory-backend/account/static/account.js"' in page


def test_the_readmes_first_command_serves_the_console(tmp_path):
    process, url = start_instance(tmp_path, "readme", {})  # `python wsgi.py` with no setting at all
    try:
        page = requests.get(url + "/account", timeout=10)
        script = requests.get(url + "/account/static/account.js", timeout=10)
    finally:
        process.terminate()
        process.wait(timeout=15)

    assert page.status_code == 200 and page.headers["Content-Security-Policy"] == CONSOLE_POLICY
    assert "Sign in" in page.text
    assert script.status_code == 200 and script.headers["Content-Type"].startswith("text/javascript")
