// The account console: a person's way to everything the backend offers, on its JSON API.
//
// The tokens live in this tab's sessionStorage (never localStorage, never a cookie: requests are
// sent with credentials "omit"), and the access token is renewed with the refresh token shortly
// before it expires. Passwords go only into the requests that need them (sign in, register,
// change password, delete account, add or change a login) and are never kept or shown. Every
// text the API sends is put in the page as text, never as markup. Where the API answers an error
// (a 404 from a feature this server does not have included), its `detail` is shown where the
// person acted, and the rest of the page goes on working.

const API = document.body.dataset.api || "";
const STORE = "eventory-account-session";
const REFRESH_MARGIN_MS = 60_000; // renew a minute early (a fifth of the lifetime when shorter)

const $ = (selector, root = document) => root.querySelector(selector);

class ApiError extends Error {
  constructor(status, detail, errors) {
    super(detail);
    this.status = status;
    this.errors = errors && typeof errors === "object" ? errors : {};
  }
}

// --- the session -------------------------------------------------------------------------------

let session = readSession();
let refreshTimer = 0;
let refreshing = null;

function readSession() {
  try {
    const stored = JSON.parse(sessionStorage.getItem(STORE));
    return stored && stored.access_token ? stored : null;
  } catch {
    return null;
  }
}

function keep(tokens, username) {
  const lifetime = Math.max(1, Number(tokens.expires_in) || 0) * 1000;
  session = {
    access_token: tokens.access_token,
    refresh_token: tokens.refresh_token || session?.refresh_token || null,
    expires_at: Date.now() + lifetime,
    renew_at: Date.now() + lifetime - Math.min(REFRESH_MARGIN_MS, lifetime / 5),
    username: username ?? session?.username ?? "",
  };
  sessionStorage.setItem(STORE, JSON.stringify(session));
  scheduleRefresh();
}

function forget() {
  session = null;
  sessionStorage.removeItem(STORE);
  clearTimeout(refreshTimer);
  dropLogos(new Set());
}

function scheduleRefresh() {
  clearTimeout(refreshTimer);
  if (!session?.refresh_token) return;
  const delay = Math.min(Math.max(0, session.renew_at - Date.now()), 2 ** 31 - 1);
  refreshTimer = setTimeout(renew, delay);
}

// A refused refresh token (revoked, reused, expired) signs out; an unreachable server is asked again.
function renew() {
  refresh().catch((error) => {
    if (error.status === 401) {
      signedOut(error);
    } else if (session) {
      session.renew_at = Date.now() + 30_000;
      scheduleRefresh();
    }
  });
}

// One renewal at a time: calls that meet an expired token wait for the same one.
function refresh() {
  if (!refreshing) {
    const token = session?.refresh_token;
    refreshing = (token ? send("POST", "/auth/refresh", { token }) : Promise.reject(new ApiError(401, "You are signed out.")))
      .then((tokens) => keep(tokens))
      .finally(() => {
        refreshing = null;
      });
  }
  return refreshing;
}

// Timers sleep with a hidden tab: renew on return if the time has come.
document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible" && session && Date.now() >= session.renew_at) renew();
});

// --- the API -----------------------------------------------------------------------------------

async function send(method, path, { json, token, cache = "no-store" } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  const init = { method, headers, cache, credentials: "omit", referrerPolicy: "no-referrer" };
  if (json !== undefined) {
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  let response;
  try {
    response = await fetch(API + path, init);
  } catch {
    throw new ApiError(0, "The server could not be reached; check the connection and try again.");
  }
  if (response.status === 204) return null;
  const data = await response.json().catch(() => null);
  if (!response.ok) {
    const detail = data && typeof data.detail === "string" ? data.detail : `The server answered ${response.status}.`;
    throw new ApiError(response.status, detail, data?.errors);
  }
  return data;
}

// A call with the access token; a 401 (the token ran out while the tab slept) renews it once.
async function api(method, path, options = {}) {
  if (!session) throw new ApiError(401, "You are signed out.");
  try {
    return await send(method, path, { ...options, token: session.access_token });
  } catch (error) {
    if (error.status !== 401 || !session?.refresh_token) throw error;
    await refresh();
    return send(method, path, { ...options, token: session.access_token });
  }
}

async function image(path) {
  if (!session) throw new ApiError(401, "You are signed out.");
  const headers = { Accept: "image/*", Authorization: `Bearer ${session.access_token}` };
  const response = await fetch(API + path, { headers, credentials: "omit", referrerPolicy: "no-referrer" });
  if (!response.ok) throw new ApiError(response.status, `The logo answered ${response.status}.`);
  return response.blob();
}

// --- showing outcomes --------------------------------------------------------------------------

function say(element, text) {
  if (element) element.textContent = text || "";
}

// The API's detail, and on a 422 each field's messages, where the person acted; a 401 signs out.
function fail(element, error) {
  if (!(error instanceof ApiError)) {
    say(element, `Something went wrong in this page: ${error}`);
    return;
  }
  if (error.status === 401 && session) {
    signedOut(error);
    return;
  }
  const fields = Object.entries(error.errors).map(([field, messages]) => `${field}: ${[].concat(messages).join(" ")}`);
  say(element, [error.message, ...fields].join("\n"));
}

function signedOut(error) {
  forget();
  showSignIn(error instanceof ApiError ? error.message : "You are signed out.");
}

// Runs `work` with the form's buttons disabled (no double submits); clears its messages first.
async function busy(root, work) {
  const buttons = [...root.querySelectorAll("button")];
  buttons.forEach((button) => (button.disabled = true));
  root.setAttribute("aria-busy", "true");
  root.querySelectorAll("[data-error], [data-done]").forEach((element) => say(element, ""));
  say($("#notice"), "");
  try {
    await work();
  } finally {
    buttons.forEach((button) => (button.disabled = false));
    root.removeAttribute("aria-busy");
  }
}

function onSubmit(form, handler) {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    busy(form, () => handler(event)).catch((error) => fail($("[data-error]", form), error));
  });
}

function utc(iso) {
  if (!iso) return "";
  const moment = new Date(iso);
  return Number.isNaN(moment.getTime()) ? String(iso) : `${moment.toISOString().slice(0, 19).replace("T", " ")} UTC`;
}

function timeElement(iso) {
  const element = document.createElement("time");
  element.dateTime = iso || "";
  element.textContent = utc(iso);
  return element;
}

// --- signing in and out ------------------------------------------------------------------------

function showSignIn(message) {
  $("#console").hidden = true;
  $("#who").hidden = true;
  $("#nav").hidden = true;
  $("#signin").hidden = false;
  say($("#notice"), message);
  resetConsole();
  $("#signin-username").focus();
}

onSubmit($("#signin-form"), async (event) => {
  const form = event.target;
  forget(); // a stale session of this tab is over
  const username = form.elements.username.value;
  const password = form.elements.password.value;
  if (event.submitter?.value === "register") {
    await send("POST", "/auth/register", { json: { username, password } });
  }
  const tokens = await send("POST", "/auth/login", { json: { username, password } });
  form.reset();
  keep(tokens, username);
  await enter();
});

async function enter() {
  let me;
  try {
    me = await api("GET", "/auth/me");
  } catch (error) {
    if (error.status === 401) signedOut(error);
    else showSignIn(error.message);
    return;
  }
  session.username = me.username;
  sessionStorage.setItem(STORE, JSON.stringify(session));
  say($("#notice"), "");
  say($("#who-name"), me.username);
  $("#who").hidden = false;
  $("#nav").hidden = false;
  $("#signin").hidden = true;
  $("#console").hidden = false;
  explainDeletion();
  await Promise.all([loadLogins(), loadInvitations()]);
  $("#logins-title").focus();
}

$("#sign-out").addEventListener("click", (event) =>
  busy(event.target.parentElement, async () => {
    let message = "Signed out.";
    try {
      await api("POST", "/auth/logout");
    } catch (error) {
      if (error.status !== 401) message = `Signed out of this page, but the server could not end the session: ${error.message}`;
    }
    forget();
    showSignIn(message);
  }),
);

$("#sign-out-everywhere").addEventListener("click", (event) =>
  busy(event.target.parentElement, async () => {
    say($("#session-error"), "");
    try {
      await api("POST", "/auth/logout-all");
    } catch (error) {
      fail($("#session-error"), error);
      return;
    }
    forget();
    showSignIn("Signed out everywhere: every session of this account has ended.");
  }),
);

onSubmit($("#password-form"), async (event) => {
  const form = event.target;
  const tokens = await api("PUT", "/auth/password", {
    json: { current_password: form.elements.current_password.value, new_password: form.elements.new_password.value },
  });
  form.reset();
  keep(tokens);
  say($("[data-done]", form), "Password changed. Every other session of the account has ended.");
});

onSubmit($("#delete-form"), async (event) => {
  const form = event.target;
  await api("DELETE", "/auth/me", { json: { password: form.elements.password.value } });
  form.reset();
  forget();
  showSignIn("The account was deleted.");
});

function explainDeletion() {
  const own = logins.filter((login) => login.shared !== true).length;
  const name = session?.username || "this account";
  say(
    $("#delete-explained"),
    `Deleting removes the account ${name} for good: its ${own} saved Eventory login${own === 1 ? "" : "s"} ` +
      "(with their encrypted passwords), the shares of them you gave (those accounts lose access at once) " +
      "and every session on every device. Logins others share with you stay theirs; you lose access to them. " +
      "Eventory itself is not changed. Enter the password to confirm.",
  );
}

// --- Eventory logins ---------------------------------------------------------------------------

let logins = [];
const logos = new Map(); // login id -> {key, url} (blob: URLs of logos fetched with the token)

async function loadLogins() {
  try {
    logins = await api("GET", "/logins");
  } catch (error) {
    fail($("#logins-error"), error);
    return;
  }
  say($("#logins-error"), "");
  renderLogins();
}

function renderLogins() {
  const list = $("#login-list");
  const open = new Map([...list.children].map((card) => [card.dataset.loginId, openParts(card)]));
  list.replaceChildren(...logins.map((login) => card(login, open.get(String(login.id)))));
  $("#no-logins").hidden = logins.length > 0;
  dropLogos(new Set(logins.map((login) => login.id)));
  fillAuditChoices();
  explainDeletion();
}

function openParts(card) {
  return new Set([...card.querySelectorAll("details[open]")].map((details) => details.dataset.part));
}

function replaceLogin(updated) {
  logins = logins.map((login) => (login.id === updated.id ? { ...login, ...updated } : login));
  renderLogins();
}

function card(login, open = new Set()) {
  const node = $("#login-card").content.firstElementChild.cloneNode(true);
  const own = login.shared !== true;
  const canEdit = own || login.role === "manage";
  const headingId = `login-${login.id}-label`;
  node.dataset.loginId = String(login.id);
  node.setAttribute("aria-labelledby", headingId);

  const field = (name) => $(`[data-field="${name}"]`, node);
  const part = (name) => $(`[data-part="${name}"]`, node);
  field("label").id = headingId;
  say(field("label"), login.label);
  $(".swatch", node).style.backgroundColor = login.color; // CSSOM, which the CSP allows
  say(field("organisation"), login.organisation || "not known yet");
  say(field("username"), login.username ?? "not shown to you");
  part("read-only").hidden = login.read_only !== true;

  const health = "status" in login;
  part("health").hidden = !health;
  if (health) {
    field("status").classList.add(`health-${login.status}`);
    say(field("status"), login.status);
    field("checked_at").replaceChildren(
      login.checked_at ? "checked " : "never checked",
      ...(login.checked_at ? [timeElement(login.checked_at)] : []),
    );
  }
  say(field("access"), own ? "yours" : `shared by ${login.owner}, role ${login.role}`);

  const action = (name) => $(`[data-action="${name}"]`, node);
  for (const button of node.querySelectorAll("[data-action]")) button.setAttribute("aria-describedby", headingId);
  action("check").hidden = !health;
  action("delete").hidden = !own;
  action("leave").hidden = own || login.share_id == null;
  action("check").addEventListener("click", () => cardWork(node, () => checkLogin(login)));
  action("delete").addEventListener("click", () => cardWork(node, () => deleteLogin(login)));
  action("leave").addEventListener("click", () => cardWork(node, () => leaveShare(login)));

  const edit = part("edit");
  edit.hidden = !canEdit;
  edit.open = canEdit && open.has("edit");
  if (canEdit) fillEditForm(node, login);

  const sharing = part("sharing");
  sharing.hidden = !("shared" in login) || !(own || login.role === "manage");
  $('[data-form="share"]', node).hidden = !own;
  sharing.addEventListener("toggle", () => {
    if (sharing.open) loadShares(node, login);
  });
  sharing.open = !sharing.hidden && open.has("sharing");

  showLogo(node, login);
  return node;
}

async function cardWork(node, work) {
  await busy(node, work).catch((error) => fail($("[data-error]", node), error));
}

function fillEditForm(node, login) {
  const form = $('[data-form="edit"]', node);
  const { elements } = form;
  elements.label.value = login.label;
  elements.color.value = login.color;
  elements.username.value = login.username ?? "";
  $('[data-part="edit-username"]', node).hidden = login.username == null;
  $('[data-part="edit-read-only"]', node).hidden = !("read_only" in login);
  elements.read_only.checked = login.read_only === true;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    cardWork(node, () => saveLogin(login, form, node));
  });
}

// Only what changed is sent; the password only when one was typed.
async function saveLogin(login, form, node) {
  const { elements } = form;
  const changes = {};
  for (const name of ["label", "color", "username"]) {
    if (name === "username" && login.username == null) continue;
    if (elements[name].value !== (login[name] ?? "")) changes[name] = elements[name].value;
  }
  if (elements.password.value) changes.password = elements.password.value;
  if ("read_only" in login && elements.read_only.checked !== login.read_only) changes.read_only = elements.read_only.checked;
  if (Object.keys(changes).length === 0) {
    say($("[data-done]", node), "Nothing changed.");
    return;
  }
  const updated = await api("PUT", `/logins/${login.id}`, { json: changes });
  elements.password.value = "";
  replaceLogin(updated);
  const shown = $(`#login-list [data-login-id="${login.id}"]`);
  say($("[data-done]", shown), `Saved: ${Object.keys(changes).join(", ")}.`);
}

async function checkLogin(login) {
  const updated = await api("POST", `/logins/${login.id}/check`);
  replaceLogin(updated);
  const shown = $(`#login-list [data-login-id="${login.id}"]`);
  say($("[data-done]", shown), `Checked: ${updated.status}.`);
}

async function deleteLogin(login) {
  if (!window.confirm(`Delete the login "${login.label}"? Its stored password is removed, and everyone it is shared with loses it.`)) return;
  await api("DELETE", `/logins/${login.id}`);
  say($("#notice"), `Deleted the login ${login.label}.`);
  await loadLogins();
}

async function leaveShare(login) {
  if (!window.confirm(`Leave the share of "${login.label}"? Only ${login.owner} can share it with you again.`)) return;
  await api("DELETE", `/logins/${login.id}/shares/${login.share_id}`);
  say($("#notice"), `You left the share of ${login.label}.`);
  await loadLogins();
}

onSubmit($("#add-login-form"), async (event) => {
  const form = event.target;
  const { elements } = form;
  const fields = {
    label: elements.label.value,
    username: elements.username.value,
    password: elements.password.value,
    color: elements.color.value,
  };
  if (elements.read_only.checked) fields.read_only = true; // sent only when set: the default needs no field
  const created = await api("POST", "/logins", { json: fields });
  form.reset();
  say($("#notice"), `Added the login ${created.label}.`);
  await loadLogins();
});

// --- logos -------------------------------------------------------------------------------------

// An <img src> cannot carry the bearer token: the logo is fetched with it and shown as a blob: URL.
async function showLogo(node, login) {
  const img = $(".logo", node);
  if (!login.logo_url) return;
  const key = `${login.logo_url}@${login.updated_at}`;
  let known = logos.get(login.id);
  if (!known || known.key !== key) {
    let url = null; // a logo is decoration: without one the login is still listed
    try {
      url = URL.createObjectURL(await image(login.logo_url));
    } catch {
      // not asked again until the login changes
    }
    known = logos.get(login.id);
    if (known?.key === key) {
      if (url) URL.revokeObjectURL(url); // another drawing of the list fetched it meanwhile
    } else {
      if (known?.url) URL.revokeObjectURL(known.url);
      known = { key, url };
      logos.set(login.id, known);
    }
  }
  if (!known.url) return;
  img.addEventListener("error", () => (img.hidden = true), { once: true });
  img.src = known.url;
  img.hidden = false;
}

function dropLogos(keep) {
  for (const [id, { url }] of logos) {
    if (!keep.has(id)) {
      if (url) URL.revokeObjectURL(url);
      logos.delete(id);
    }
  }
}

// --- invitations: logins others offer to share -------------------------------------------------

async function loadInvitations() {
  let invitations;
  try {
    invitations = await api("GET", "/shares/incoming");
  } catch (error) {
    $("#invitations").hidden = false;
    fail($("#invitations-error"), error);
    return;
  }
  say($("#invitations-error"), "");
  $("#invitations").hidden = invitations.length === 0;
  $("#invitation-list").replaceChildren(...invitations.map(invitationItem));
}

function invitationItem(invitation) {
  const item = document.createElement("li");
  const what = document.createElement("span");
  what.id = `invitation-${invitation.id}`;
  what.textContent = `${invitation.label} from ${invitation.owner}, role ${invitation.role}, offered `;
  what.append(timeElement(invitation.created_at));
  const answer = (text, work) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = text;
    button.setAttribute("aria-describedby", what.id);
    button.addEventListener("click", () =>
      busy(item, work).catch((error) => fail($("#invitations-error"), error)),
    );
    return button;
  };
  const accept = answer("Accept", async () => {
    await api("POST", `/shares/${invitation.id}/accept`);
    say($("#notice"), `You accepted ${invitation.label} from ${invitation.owner}.`);
    await Promise.all([loadInvitations(), loadLogins()]);
  });
  const decline = answer("Decline", async () => {
    if (!window.confirm(`Decline ${invitation.label} from ${invitation.owner}? They cannot offer it to you again for a day.`)) return;
    await api("DELETE", `/shares/${invitation.id}`);
    say($("#notice"), `You declined ${invitation.label} from ${invitation.owner}.`);
    await loadInvitations();
  });
  decline.className = "secondary";
  item.append(what, " ", accept, " ", decline);
  return item;
}

// --- sharing -----------------------------------------------------------------------------------

async function loadShares(node, login) {
  const error = $('[data-error="shares"]', node);
  const list = $('[data-list="shares"]', node);
  let shares;
  try {
    ({ shares } = await api("GET", `/logins/${login.id}/shares`));
  } catch (failure) {
    list.replaceChildren();
    fail(error, failure);
    return;
  }
  say(error, "");
  $('[data-empty="shares"]', node).hidden = shares.length > 0;
  list.replaceChildren(...shares.map((share) => shareItem(node, login, share)));
}

function shareItem(node, login, share) {
  const item = document.createElement("li");
  const who = document.createElement("span");
  who.className = "grantee";
  who.id = `share-${share.id}`;
  who.textContent = share.username;
  const role = document.createElement("span");
  role.textContent =
    share.accepted === false ? `invited as ${share.role}, not accepted yet, since ` : `role ${share.role}, since `;
  role.append(timeElement(share.created_at));
  item.append(who, " ", role);
  if (login.shared !== true) {
    const revoke = document.createElement("button");
    revoke.type = "button";
    revoke.textContent = "Revoke";
    revoke.setAttribute("aria-describedby", who.id);
    revoke.addEventListener("click", () =>
      cardWork(node, async () => {
        await api("DELETE", `/logins/${login.id}/shares/${share.id}`);
        say($("[data-done]", node), `Revoked the share of ${share.username}.`);
        await loadShares(node, login);
      }),
    );
    item.append(" ", revoke);
  }
  return item;
}

document.addEventListener("submit", (event) => {
  const form = event.target;
  if (!(form instanceof HTMLFormElement) || form.dataset.form !== "share") return;
  event.preventDefault();
  const node = form.closest("[data-login-id]");
  const login = logins.find((candidate) => String(candidate.id) === node.dataset.loginId);
  cardWork(node, async () => {
    const share = await api("POST", `/logins/${login.id}/shares`, {
      json: { username: form.elements.username.value, role: form.elements.role.value },
    });
    form.reset();
    const pending = share.accepted === false ? ` It starts when ${share.username} accepts it.` : "";
    say($("[data-done]", node), `Shared with ${share.username}, role ${share.role}.${pending}`);
    await loadShares(node, login);
  });
});

// --- audit -------------------------------------------------------------------------------------

let auditNext = null;
let auditQuery = ""; // the filter the shown pages were read with: More goes on with it

function fillAuditChoices() {
  const select = $("#audit-login");
  const chosen = select.value;
  const options = logins.map((login) => new Option(`${login.label} (#${login.id})`, String(login.id)));
  select.replaceChildren(new Option("All logins", ""), ...options);
  select.value = [...select.options].some((option) => option.value === chosen) ? chosen : "";
}

async function loadAudit(more) {
  const form = $("#audit-form");
  if (!more) {
    const filter = new URLSearchParams();
    if (form.elements.login_id.value) filter.set("login_id", form.elements.login_id.value);
    if (form.elements.limit.value) filter.set("limit", form.elements.limit.value);
    auditQuery = filter.toString();
  }
  const query = new URLSearchParams(auditQuery);
  if (more && auditNext) query.set("cursor", auditNext);
  let page;
  try {
    page = await api("GET", `/audit?${query}`);
  } catch (error) {
    fail($("#audit-error"), error);
    return;
  }
  say($("#audit-error"), "");
  const rows = page.events.map(eventRow);
  if (more) $("#audit-events").append(...rows);
  else $("#audit-events").replaceChildren(...rows);
  const shown = $("#audit-events").children.length;
  $("#audit-table").hidden = shown === 0;
  $("#audit-empty").hidden = shown > 0;
  auditNext = page.next || null;
  $("#audit-more").hidden = !auditNext;
}

function eventRow(event) {
  const row = document.createElement("tr");
  const known = logins.find((login) => login.id === event.login_id);
  const detail = event.detail == null || typeof event.detail === "string" ? event.detail : JSON.stringify(event.detail);
  const cells = [
    ["When (UTC)", timeElement(event.at)],
    ["Who", event.actor],
    ["Action", code(event.action)],
    ["Login", event.login_id == null ? "" : known ? `${known.label} (#${event.login_id})` : `#${event.login_id}`],
    ["Request", event.method ? `${event.method} ${event.path ?? ""}` : ""],
    ["Status", event.status == null ? "" : String(event.status)],
    ["Detail", [detail ?? "", event.count > 1 ? ` (${event.count} times)` : ""].join("").trim()],
  ];
  for (const [label, content] of cells) {
    const cell = document.createElement("td");
    cell.dataset.label = label;
    cell.append(content ?? "");
    row.append(cell);
  }
  return row;
}

function code(text) {
  const element = document.createElement("code");
  element.textContent = text ?? "";
  return element;
}

$("#audit-form").addEventListener("submit", (event) => {
  event.preventDefault();
  busy(event.target, () => loadAudit(false));
});
$("#audit-more").addEventListener("click", (event) => busy(event.target.parentElement, () => loadAudit(true)));

function resetConsole() {
  logins = [];
  auditNext = null;
  auditQuery = "";
  $("#login-list").replaceChildren();
  $("#invitation-list").replaceChildren();
  $("#invitations").hidden = true;
  $("#audit-events").replaceChildren();
  $("#audit-table").hidden = true;
  $("#audit-empty").hidden = true;
  $("#audit-more").hidden = true;
  document.querySelectorAll("#console [role=alert], #console [data-done]").forEach((element) => say(element, ""));
  document.querySelectorAll("#console form").forEach((form) => form.reset());
}

// --- start -------------------------------------------------------------------------------------

if (session) {
  scheduleRefresh();
  enter();
} else {
  showSignIn("");
}
