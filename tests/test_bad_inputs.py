"""Bad inputs: every one answers a 4xx JSON `detail` (never a 500) and changes nothing."""

from __future__ import annotations

import base64
import io
import json
import time
import uuid
from urllib.parse import quote

import jwt
import pytest
from sqlalchemy import select

from eventory_backend.extensions import db

from .helpers import ADA, EVENTORY_LOGIN

MIB = 1024 * 1024
TEN_THOUSAND = 10_000
OTHER_SECRET = "another-secret-that-is-long-enough-for-hs512-" + "x" * 32
DEEP_JSON = "[" * 100_000 + "]" * 100_000
HUGE_NUMBER = "9" * 5_000  # past Python's 4,300-digit int parsing limit
URLENCODED = "application/x-www-form-urlencoded"


# --- helpers -------------------------------------------------------------------------------------


def assert_error(response, status, field=None):
    """A 4xx with the one error shape; `status` is one code or a tuple of acceptable codes."""
    allowed = status if isinstance(status, tuple) else (status,)
    assert response.status_code != 500, response.get_data(as_text=True)[:500]
    assert response.status_code in allowed, (response.status_code, response.get_data(as_text=True)[:500])
    assert response.mimetype == "application/json", response.mimetype
    body = response.get_json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("detail"), str) and body["detail"].strip(), body
    assert "Traceback" not in body["detail"]
    assert "msg" not in body, body
    if response.status_code == 401:
        assert response.headers.get("WWW-Authenticate", "").startswith("Bearer"), dict(response.headers)
    if response.status_code == 405:
        assert response.headers.get("Allow"), dict(response.headers)
    if response.status_code == 422:
        errors = body.get("errors")
        assert isinstance(errors, dict) and errors, body
        assert all(isinstance(name, str) for name in errors), errors
        assert all(
            isinstance(messages, list) and messages and all(isinstance(m, str) for m in messages)
            for messages in errors.values()
        ), errors
        if field is not None:
            assert field in errors, (field, errors)
    return body


def snapshot(app) -> dict[str, list[tuple]]:
    """Every row of every table, to prove a rejected request changed nothing."""
    with app.app_context():
        with db.engine.connect() as connection:
            return {
                table.name: sorted((tuple(row) for row in connection.execute(select(table))), key=repr)
                for table in db.metadata.sorted_tables
            }


def raw(body, content_type="application/json"):
    """Request keyword arguments for a body sent exactly as given."""
    return {"data": body, "content_type": content_type}


def as_json(value):
    return {"json": value}


def form(fields, content_type="multipart/form-data"):
    return {"data": dict(fields), "content_type": content_type}


def case(kwargs, status, field=None, *, id):
    return pytest.param(kwargs, status, field, id=id)


def ada_logins(client, headers) -> list[dict]:
    response = client.get("/logins", headers=headers)
    assert response.status_code == 200, response.json
    return response.json


def read_login(client, headers, login_id) -> dict:
    response = client.get(f"/logins/{login_id}", headers=headers)
    assert response.status_code == 200, response.json
    return response.json


# --- bodies that are not a readable JSON object ----------------------------------------------------

UNREADABLE_JSON = [
    case(raw('{"username": "ada", "password": '), 400, id="truncated-json"),
    case(raw('{"username": "ada",}'), 400, id="trailing-comma"),
    case(raw("{'username': 'ada'}"), 400, id="single-quotes"),
    case(raw(b'{"username": "\xff\xfe", "password": "\xc3"}'), 400, id="invalid-utf8"),
    case(raw(DEEP_JSON), 400, id="100000-deep-nesting"),
    case(raw('{"username": ' + HUGE_NUMBER + "}"), 400, id="5000-digit-number"),
    case(raw(""), (400, 422), id="empty-body"),
]

NOT_AN_OBJECT = [
    case(as_json([]), 422, id="empty-array"),
    case(raw(json.dumps([ADA, EVENTORY_LOGIN])), 422, id="array-of-objects"),
    case(raw('"ada"'), 422, id="string"),
    case(raw("42"), 422, id="number"),
    case(raw("null"), 422, id="null"),
    case(raw("true"), 422, id="true"),
]


# --- register ------------------------------------------------------------------------------------

PASSWORD = ADA["password"]


def register(username="ada", password=PASSWORD, **extra):
    return as_json({"username": username, "password": password, **extra})


REGISTER_CASES = [
    *UNREADABLE_JSON,
    *NOT_AN_OBJECT,
    case(as_json({}), 422, "username", id="empty-object"),
    case(as_json({"username": "ada"}), 422, "password", id="missing-password"),
    case(as_json({"password": PASSWORD}), 422, "username", id="missing-username"),
    case(register(username=42), 422, "username", id="number-username"),
    case(register(username=True), 422, "username", id="bool-username"),
    case(register(username=["ada"]), 422, "username", id="list-username"),
    case(register(username={"first": "ada"}), 422, "username", id="object-username"),
    case(register(password=[PASSWORD]), 422, "password", id="list-password"),
    case(register(password=123456789012345678), 422, "password", id="number-password"),
    case(register(username=None), 422, "username", id="null-username"),
    case(register(password=None), 422, "password", id="null-password"),
    case(register(username="ad\x00a"), 422, "username", id="nul-in-username"),
    case(register(username="\x00ada"), 422, "username", id="leading-nul-in-username"),
    case(register(username="ad\x1b[31ma"), 422, "username", id="escape-in-username"),
    case(register(username="ad\na"), 422, "username", id="newline-in-username"),
    case(register(username="ad\ta"), 422, "username", id="tab-in-username"),
    case(register(username="ad\x7fa"), 422, "username", id="del-in-username"),
    case(register(username="ad\u0085a"), 422, "username", id="c1-control-in-username"),
    case(register(password=PASSWORD + "\x00"), 422, "password", id="nul-in-password"),
    # json.loads turns "\\ud800" into a lone surrogate, which UTF-8 (and so every database) cannot hold.
    case(raw(f'{{"username": "ada\\ud800", "password": "{PASSWORD}"}}'), (400, 422), "username", id="surrogate-user"),
    case(raw(f'{{"username": "ada", "password": "{PASSWORD}\\udfff"}}'), (400, 422), "password", id="surrogate-pass"),
    case(raw('{"user\\u0000name": "ada", "password": "' + PASSWORD + '"}'), 422, id="nul-in-field-name"),
    case(register(username="a" * TEN_THOUSAND), 422, "username", id="10000-char-username"),
    case(register(password="p" * TEN_THOUSAND), 422, "password", id="10000-char-password"),
    case(register(username="ab"), 422, "username", id="2-char-username"),
    case(register(username="   ab   "), 422, "username", id="2-char-username-after-trimming"),
    case(register(username="     "), 422, "username", id="whitespace-only-username"),
    case(register(username="\u3000\u3000\u3000\u3000"), 422, "username", id="ideographic-spaces-username"),
    case(register(username=""), 422, "username", id="empty-username"),
    case(register(username="a" * 65), 422, "username", id="65-char-username"),
    case(register(username="  " + "a" * 65 + "  "), 422, "username", id="65-char-username-after-trimming"),
    case(register(password="x" * 14), 422, "password", id="14-char-password"),
    case(register(password=""), 422, "password", id="empty-password"),
    case(register(password="a" * 1025), 422, "password", id="1025-char-password"),
    case(register("ada lovelace 1815", "ada lovelace 1815"), 422, "password", id="password-is-the-username"),
    case(register("Ada Lovelace 1815", "ADA LOVELACE 1815"), 422, "password", id="password-is-the-username-any-case"),
    case(register("  ada lovelace 1815 ", "ada lovelace 1815"), 422, "password", id="password-is-the-trimmed-username"),
    case(register(id=1), 422, "id", id="unknown-field-id"),
    case(register(is_admin=True), 422, "is_admin", id="unknown-field-is_admin"),
    case(form(ADA, URLENCODED), (415, 422), id="urlencoded-form"),
    case(form(ADA), (415, 422), id="multipart-form"),
    case(raw(json.dumps(ADA), "text/plain"), (415, 422), id="json-as-text-plain"),
]


@pytest.mark.parametrize(("kwargs", "status", "field"), REGISTER_CASES)
def test_bad_registration_is_refused_and_creates_no_account(app, client, kwargs, status, field):
    before = snapshot(app)

    assert_error(client.post("/auth/register", **kwargs), status, field)

    assert snapshot(app) == before
    sent = kwargs.get("json")
    if isinstance(sent, dict) and isinstance(sent.get("username"), str) and isinstance(sent.get("password"), str):
        login = client.post("/auth/login", json={"username": sent["username"], "password": sent["password"]})
        assert login.status_code in (401, 422), login.json
    # The name "ada" is still free.
    assert client.post("/auth/register", json=ADA).status_code == 201


# --- log in --------------------------------------------------------------------------------------

LOGIN_CASES = [
    *UNREADABLE_JSON,
    *NOT_AN_OBJECT,
    case(as_json({}), 422, "username", id="json-empty-object"),
    case(as_json({"username": "ada"}), 422, "password", id="json-missing-password"),
    case(as_json({"password": PASSWORD}), 422, "username", id="json-missing-username"),
    case(form({"username": "ada"}), 422, "password", id="multipart-missing-password"),
    case(form({"password": PASSWORD}), 422, "username", id="multipart-missing-username"),
    case(form({}), 422, "username", id="multipart-no-fields"),
    case(form({"password": PASSWORD}, URLENCODED), 422, "username", id="urlencoded-missing-username"),
    case(form({"username": "ada"}, URLENCODED), 422, "password", id="urlencoded-missing-password"),
    case(
        form({"username": "ada", "password": (io.BytesIO(PASSWORD.encode()), "pw.txt")}),
        422,
        "password",
        id="multipart-password-as-a-file",
    ),
    case(as_json({"username": 42, "password": PASSWORD}), 422, "username", id="json-number-username"),
    case(as_json({"username": "ada", "password": [PASSWORD]}), 422, "password", id="json-list-password"),
    case(as_json({"username": "ada", "password": None}), 422, "password", id="json-null-password"),
    case(as_json({"username": None, "password": PASSWORD}), 422, "username", id="json-null-username"),
    case(as_json({"username": "ad\x00a", "password": PASSWORD}), 422, "username", id="json-nul-in-username"),
    case(form({"username": "ada", "password": PASSWORD + "\x00"}), 422, "password", id="multipart-nul-in-password"),
    case(as_json({"username": "a" * TEN_THOUSAND, "password": PASSWORD}), 422, "username", id="json-10000-char-user"),
    case(form({"username": "ada", "password": "p" * TEN_THOUSAND}), 422, "password", id="multipart-10000-char-pass"),
    case(
        form({"username": "a" * TEN_THOUSAND, "password": PASSWORD}, URLENCODED),
        422,
        "username",
        id="urlencoded-10000-char-username",
    ),
    case(form({**ADA, "grant_type": "client_credentials"}, URLENCODED), 422, "grant_type", id="wrong-grant-type"),
    case(raw("username=ada&password=x", "text/plain"), (415, 422), id="text-plain-body"),
]


@pytest.mark.parametrize(("kwargs", "status", "field"), LOGIN_CASES)
def test_bad_login_request_is_refused_without_a_token(app, client, ada, kwargs, status, field):
    before = snapshot(app)

    body = assert_error(client.post("/auth/login", **kwargs), status, field)

    assert "access_token" not in body
    assert snapshot(app) == before


# --- saved Eventory logins: POST and PUT -----------------------------------------------------------

# One field each; POST sends it on top of a valid login, PUT sends it alone.
FIELD_CASES = [
    ({"label": 42}, "label", "number-label"),
    ({"label": {"text": "Org"}}, "label", "object-label"),
    ({"username": 42}, "username", "number-username"),
    ({"password": ["eventory-pass-1"]}, "password", "list-password"),
    ({"color": True}, "color", "bool-color"),
    ({"color": 0xFFFFFF}, "color", "number-color"),
    ({"label": None}, "label", "null-label"),
    ({"username": None}, "username", "null-username"),
    ({"password": None}, "password", "null-password"),
    ({"color": None}, "color", "null-color"),
    ({"label": "\x00"}, "label", "nul-label"),
    ({"label": "Org\x00One"}, "label", "nul-in-label"),
    ({"label": "\x1b[31mOrg"}, "label", "escape-in-label"),
    ({"label": "Org\nOne"}, "label", "newline-in-label"),
    ({"label": "Org\rOne"}, "label", "carriage-return-in-label"),
    ({"username": "anna\x00@example.com"}, "username", "nul-in-username"),
    ({"username": "anna\n@example.com"}, "username", "newline-in-username"),
    ({"password": "eventory\x00pass"}, "password", "nul-in-password"),
    ({"label": ""}, "label", "empty-label"),
    ({"label": "    "}, "label", "whitespace-only-label"),
    ({"username": ""}, "username", "empty-username"),
    ({"password": ""}, "password", "empty-password"),
    ({"label": "L" * TEN_THOUSAND}, "label", "10000-char-label"),
    ({"username": "u" * TEN_THOUSAND}, "username", "10000-char-username"),
    ({"password": "p" * TEN_THOUSAND}, "password", "10000-char-password"),
    ({"color": "#" + "f" * (TEN_THOUSAND - 1)}, "color", "10000-char-color"),
    ({"label": "L" * 101}, "label", "101-char-label"),
    ({"username": "u" * 255}, "username", "255-char-username"),
    ({"password": "p" * 1025}, "password", "1025-char-password"),
    ({"color": "#fff\n"}, "color", "color-with-trailing-newline"),
    ({"color": "#ffff"}, "color", "color-4-hex-digits"),
    ({"color": "#ff"}, "color", "color-2-hex-digits"),
    ({"color": "#fffffffff"}, "color", "color-9-hex-digits"),
    ({"color": "red"}, "color", "color-name"),
    ({"color": "rgb(256,0,0)"}, "color", "color-rgb-over-255"),
    ({"color": "rgb(-1,0,0)"}, "color", "color-rgb-negative"),
    ({"color": "rgb(0,0,0"}, "color", "color-rgb-unclosed"),
    ({"color": "rgba(0,0,0,2)"}, "color", "color-alpha-over-1"),
    ({"color": "#GGGGGG"}, "color", "color-not-hex"),
    ({"color": "#\uff11\uff12\uff13"}, "color", "color-fullwidth-digits"),
    ({"color": " #fff"}, "color", "color-leading-space"),
    ({"color": "#fff "}, "color", "color-trailing-space"),
    ({"color": ""}, "color", "color-empty"),
    ({"color": "#fff;background:url(x)"}, "color", "color-css-injection"),
    ({"owner_id": 2}, "owner_id", "unknown-field-owner_id"),
    ({"id": 999}, "id", "unknown-field-id"),
    ({"organisation": "Someone Else AB"}, "organisation", "unknown-field-organisation"),
    ({"created_at": "2000-01-01T00:00:00+00:00"}, "created_at", "unknown-field-created_at"),
]

SURROGATE_LABEL = '"label": "Org \\ud800"'
SURROGATE_PASSWORD = '"password": "pass \\udfff word"'


def _with_valid_fields(text_fields: str) -> str:
    base = {key: value for key, value in EVENTORY_LOGIN.items() if f'"{key}"' not in text_fields}
    return json.dumps(base)[:-1] + ", " + text_fields + "}"


def both(kwargs, status, field=None, *, id, put=None):
    """One bad body for POST /logins and PUT /logins/<id> (or a PUT-specific variant)."""
    return pytest.param(kwargs, kwargs if put is None else put, status, field, id=id)


CREATE_AND_EDIT_CASES = [
    *(both(p.values[0], p.values[1], id=p.id) for p in UNREADABLE_JSON + NOT_AN_OBJECT),
    both(raw('{"label": ' + HUGE_NUMBER + "}"), 400, id="5000-digit-label"),
    both(raw('{"label": NaN}'), (400, 422), "label", id="nan-label"),
    both(form(EVENTORY_LOGIN, URLENCODED), (415, 422), id="urlencoded-form"),
    both(form(EVENTORY_LOGIN), (415, 422), id="multipart-form"),
    both(raw(json.dumps(EVENTORY_LOGIN), "text/plain"), (415, 422), id="json-as-text-plain"),
    both(
        raw(_with_valid_fields(SURROGATE_LABEL)),
        (400, 422),
        "label",
        put=raw("{" + SURROGATE_LABEL + "}"),
        id="lone-surrogate-label",
    ),
    both(
        raw(_with_valid_fields(SURROGATE_PASSWORD)),
        (400, 422),
        "password",
        put=raw("{" + SURROGATE_PASSWORD + "}"),
        id="lone-surrogate-password",
    ),
    *(
        both(as_json({**EVENTORY_LOGIN, **fields}), 422, name, put=as_json(fields), id=ident)
        for fields, name, ident in FIELD_CASES
    ),
]

CREATE_ONLY_CASES = [
    case(as_json({}), 422, "label", id="empty-object"),
    case(as_json({k: v for k, v in EVENTORY_LOGIN.items() if k != "password"}), 422, "password", id="missing-password"),
    case(as_json({k: v for k, v in EVENTORY_LOGIN.items() if k != "label"}), 422, "label", id="missing-label"),
]

EDIT_ONLY_CASES = [
    case(as_json({}), 422, id="empty-object"),
    case(as_json({"color": "#abc", "owner_id": 2}), 422, "owner_id", id="valid-field-with-owner_id"),
    case(as_json({"password": "new-secret-9", "id": 999}), 422, "id", id="valid-field-with-id"),
]


@pytest.mark.parametrize(("post_kwargs", "put_kwargs", "status", "field"), CREATE_AND_EDIT_CASES)
def test_bad_login_body_is_refused_on_create_and_edit_and_changes_nothing(
    app, client, ada, ada_login, post_kwargs, put_kwargs, status, field
):
    login_id = ada_login["id"]
    listed = ada_logins(client, ada)
    before = snapshot(app)

    responses = {
        "POST": client.post("/logins", headers=ada, **post_kwargs),
        "PUT": client.put(f"/logins/{login_id}", headers=ada, **put_kwargs),
    }

    assert 500 not in {r.status_code for r in responses.values()}, {m: r.status_code for m, r in responses.items()}
    for response in responses.values():
        assert_error(response, status, field)
    assert snapshot(app) == before
    assert ada_logins(client, ada) == listed


@pytest.mark.parametrize(("kwargs", "status", "field"), CREATE_ONLY_CASES)
def test_incomplete_new_login_is_refused_and_saves_nothing(app, client, ada, ada_login, kwargs, status, field):
    listed = ada_logins(client, ada)
    before = snapshot(app)

    assert_error(client.post("/logins", headers=ada, **kwargs), status, field)

    assert snapshot(app) == before
    assert ada_logins(client, ada) == listed


@pytest.mark.parametrize(("kwargs", "status", "field"), EDIT_ONLY_CASES)
def test_empty_or_owner_changing_edit_is_refused_and_changes_nothing(
    app, client, ada, ada_login, kwargs, status, field
):
    login_id = ada_login["id"]
    unchanged = read_login(client, ada, login_id)
    before = snapshot(app)

    assert_error(client.put(f"/logins/{login_id}", headers=ada, **kwargs), status, field)

    assert snapshot(app) == before
    assert read_login(client, ada, login_id) == unchanged


# --- ids: someone else's, missing, or not an id at all ---------------------------------------------


def _send(client, method, path, headers):
    if method == "PUT":
        return client.put(path, json={"label": "Taken over", "color": "#000"}, headers=headers)
    return client.open(path, method=method, headers=headers)


@pytest.mark.parametrize("method", ["GET", "PUT", "DELETE"])
def test_another_users_login_is_404_like_a_missing_one(app, client, ada, bob, ada_login, method):
    login_id = ada_login["id"]
    unchanged = read_login(client, ada, login_id)
    before = snapshot(app)

    missing = assert_error(_send(client, method, f"/logins/{login_id + 1000}", bob), 404)
    someone_elses = assert_error(_send(client, method, f"/logins/{login_id}", bob), 404)

    assert someone_elses == missing
    assert snapshot(app) == before
    assert read_login(client, ada, login_id) == unchanged
    assert ada_logins(client, bob) == []


ARABIC_INDIC = str.maketrans("0123456789", "٠١٢٣٤٥٦٧٨٩")
FULLWIDTH = str.maketrans("0123456789", "０１２３４５６７８９")

# Each builds a path segment from the real id, so a lenient int() would find the login.
BAD_IDS = {
    "arabic-indic-digits": lambda i: quote(str(i).translate(ARABIC_INDIC)),
    "arabic-indic-12": lambda i: quote("١٢"),
    "fullwidth-digits": lambda i: quote(str(i).translate(FULLWIDTH)),
    "twenty-nines": lambda i: "99999999999999999999",
    "two-to-the-63": lambda i: str(2**63),
    "largest-int64-missing": lambda i: str(2**63 - 1),
    "minus-one": lambda i: "-1",
    "negative": lambda i: f"-{i}",
    "plus-sign": lambda i: f"%2B{i}",
    "decimal": lambda i: f"{i}.0",
    "one-point-zero": lambda i: "1.0",
    "hex": lambda i: f"0x{i:x}",
    "hex-one": lambda i: "0x1",
    "exponent": lambda i: f"{i}e0",
    "leading-space": lambda i: f"%20{i}",
    "trailing-nul": lambda i: f"{i}%00",
    "word": lambda i: "first",
}


@pytest.mark.parametrize("make_id", BAD_IDS.values(), ids=BAD_IDS.keys())
def test_login_id_that_is_not_a_plain_int64_is_404(app, client, ada, ada_login, make_id):
    login_id = ada_login["id"]
    unchanged = read_login(client, ada, login_id)
    before = snapshot(app)

    path = f"/logins/{make_id(login_id)}"
    responses = {method: _send(client, method, path, ada) for method in ("GET", "PUT", "DELETE")}

    assert {method: r.status_code for method, r in responses.items()} == {"GET": 404, "PUT": 404, "DELETE": 404}
    for response in responses.values():
        assert_error(response, 404)
    assert snapshot(app) == before
    assert read_login(client, ada, login_id) == unchanged


# --- bearer tokens --------------------------------------------------------------------------------


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _claims(app, token: str, **changes) -> dict:
    """A real token's claims with some changed; a key set to None is removed."""
    claims = jwt.decode(token, app.config["JWT_SECRET_KEY"], algorithms=["HS256"])
    claims["jti"] = str(uuid.uuid4())
    claims.update(changes)
    return {key: value for key, value in claims.items() if value is not None}


def _sign(app, token, key=None, algorithm="HS256", **changes) -> str:
    return jwt.encode(_claims(app, token, **changes), key or app.config["JWT_SECRET_KEY"], algorithm=algorithm)


def _tampered(app, token):
    head, payload, signature = token.split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    return f"Bearer {head}.{payload}.{flipped}"


def _payload_tampered(app, token):
    head, encoded, signature = token.split(".")
    payload = json.loads(base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4)))
    payload["sub"] = "2"
    return f"Bearer {head}.{_b64url(json.dumps(payload).encode())}.{signature}"


def _alg_none(app, token):
    payload = token.split(".")[1]
    head = _b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())
    return f"Bearer {head}.{payload}."


def _expired(app, token):
    now = int(time.time())
    return "Bearer " + _sign(app, token, iat=now - 7200, nbf=now - 7200, exp=now - 3600)


def _not_yet_valid(app, token):
    now = int(time.time())
    return "Bearer " + _sign(app, token, iat=now, nbf=now + 3600, exp=now + 7200)


TOKENS = {
    "no-header": None,
    "empty-header": lambda app, token: "",
    "bearer-with-nothing": lambda app, token: "Bearer",
    "bearer-and-a-space": lambda app, token: "Bearer ",
    "basic-scheme": lambda app, token: "Basic abc",
    "basic-with-the-real-token": lambda app, token: f"Basic {token}",
    "token-without-scheme": lambda app, token: token,
    "garbage": lambda app, token: "Bearer garbage",
    "three-garbage-parts": lambda app, token: "Bearer a.b.c",
    "token-then-extra-words": lambda app, token: f"Bearer {token} extra",
    "tampered-signature": _tampered,
    "tampered-payload": _payload_tampered,
    "alg-none": _alg_none,
    "hs512-same-secret": lambda app, token: "Bearer " + _sign(app, token, algorithm="HS512"),
    "hs256-other-secret": lambda app, token: "Bearer " + _sign(app, token, key=OTHER_SECRET),
    "expired": _expired,
    "not-yet-valid": _not_yet_valid,
    "unknown-user": lambda app, token: "Bearer " + _sign(app, token, sub="999999"),
    "non-numeric-sub": lambda app, token: "Bearer " + _sign(app, token, sub="ada"),
    "integer-sub": lambda app, token: "Bearer " + _sign(app, token, sub=1),
    "no-sub": lambda app, token: "Bearer " + _sign(app, token, sub=None),
    "refresh-token": lambda app, token: "Bearer " + _sign(app, token, type="refresh"),
}

PROTECTED = [
    ("GET", "/auth/me"),
    ("GET", "/logins"),
    ("POST", "/logins"),
    ("GET", "/logins/{id}"),
    ("PUT", "/logins/{id}"),
    ("DELETE", "/logins/{id}"),
]


@pytest.mark.parametrize("make_header", TOKENS.values(), ids=TOKENS.keys())
def test_missing_or_bad_token_is_401_and_changes_nothing(app, client, ada, ada_login, make_header):
    token = ada["Authorization"].removeprefix("Bearer ")
    headers = {} if make_header is None else {"Authorization": make_header(app, token)}
    listed = ada_logins(client, ada)
    before = snapshot(app)

    body = {"label": "Intruder", "username": "x@example.com", "password": "intruder-pass", "color": "#000"}
    responses = {
        f"{method} {path}": client.open(
            path.format(id=ada_login["id"]),
            method=method,
            headers=headers,
            json=body if method in ("POST", "PUT") else None,
        )
        for method, path in PROTECTED
    }

    assert {route: r.status_code for route, r in responses.items()} == {route: 401 for route in responses}
    for response in responses.values():
        assert_error(response, 401)
    assert snapshot(app) == before
    assert ada_logins(client, ada) == listed


# --- size, routes and methods ---------------------------------------------------------------------


def _multipart(fields: dict[str, str]) -> dict:
    """Encoded here: the test client spools a large multipart body to a file it never closes."""
    boundary = "----bad-inputs-boundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
        for name, value in fields.items()
    ]
    return raw(("".join(parts) + f"--{boundary}--\r\n").encode(), f"multipart/form-data; boundary={boundary}")


def _too_large_json(**fields) -> str:
    body = json.dumps({**fields, "label": ""})
    return body[:-2] + "x" * (MIB + 1 - len(body)) + '"}'


@pytest.mark.parametrize(
    ("method", "path", "make_kwargs"),
    [
        ("POST", "/logins", lambda: raw(_too_large_json(**EVENTORY_LOGIN))),
        ("PUT", "/logins/{id}", lambda: raw(_too_large_json(color="#abc"))),
        ("POST", "/auth/register", lambda: raw(_too_large_json(username="carol", password=PASSWORD))),
        ("POST", "/auth/login", lambda: _multipart({"username": "ada", "password": "p" * (MIB + 1)})),
        ("POST", "/auth/login", lambda: form({"username": "ada", "password": "p" * (MIB + 1)}, URLENCODED)),
    ],
    ids=["post-logins", "put-login", "register", "login-multipart", "login-urlencoded"],
)
def test_body_over_one_mebibyte_is_413(app, client, ada, ada_login, method, path, make_kwargs):
    kwargs = make_kwargs()
    listed = ada_logins(client, ada)
    before = snapshot(app)

    response = client.open(path.format(id=ada_login["id"]), method=method, headers=ada, **kwargs)

    assert_error(response, 413)
    assert snapshot(app) == before
    assert ada_logins(client, ada) == listed


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/nope"),
        ("POST", "/auth/nope"),
        ("GET", "/auth/me/"),
        ("GET", "/logins/{id}/nope"),
        ("DELETE", "/logins/{id}/session/extra"),
        ("GET", "/%00"),
    ],
)
def test_unknown_route_is_404_json(app, client, ada, ada_login, method, path):
    before = snapshot(app)

    assert_error(client.open(path.format(id=ada_login["id"]), method=method, headers=ada), 404)

    assert snapshot(app) == before


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("PATCH", "/logins"),
        ("PUT", "/logins"),
        ("DELETE", "/logins"),
        ("PATCH", "/logins/{id}"),
        ("POST", "/logins/{id}"),
        ("GET", "/auth/register"),
        ("GET", "/auth/login"),
        ("PUT", "/auth/me"),
        ("TRACE", "/auth/me"),
        ("TRACE", "/logins"),
        ("POST", "/auth/me"),
    ],
)
def test_wrong_method_is_405_json(app, client, ada, ada_login, method, path):
    listed = ada_logins(client, ada)
    before = snapshot(app)

    response = client.open(path.format(id=ada_login["id"]), method=method, headers=ada, json={"color": "#000"})

    assert_error(response, 405)
    assert snapshot(app) == before
    assert ada_logins(client, ada) == listed
