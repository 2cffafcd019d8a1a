/**
 * The page's entry: sign in (a development token from the node, or a pasted one), then the chat.
 * The token is kept in sessionStorage, so a reload stays signed in and each tab may be someone else.
 */
import { ChatError, fetchDevToken, subjectOf } from "@chat/client";
import { byTestId, el } from "./dom.ts";
import { startChatView } from "./chat-view.ts";

const TOKEN_KEY = "chat.token";
const EXPIRED = "Your session expired: sign in again";
/** setTimeout's longest delay; a later expiry is left to the node's refusal. */
const MAX_TIMER_MS = 2 ** 31 - 1;

const ui = {
  login: byTestId("login-view"),
  loginForm: byTestId<HTMLFormElement>("login-form"),
  loginSubmit: byTestId<HTMLButtonElement>("login-submit"),
  me: byTestId("current-user"),
  signOut: byTestId<HTMLButtonElement>("sign-out"),
  banner: byTestId("error-banner"),
};

let stopChat: (() => void) | undefined;
let token: string | undefined;
let bannerTimer: ReturnType<typeof setTimeout> | undefined;
let expiryTimer: ReturnType<typeof setTimeout> | undefined;

/** When the token expires (ms since the epoch), from its `exp` claim; undefined without one. */
function expiryOf(jwt: string): number | undefined {
  const part = jwt.split(".")[1];
  if (!part) return undefined;
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    const exp = (JSON.parse(json) as { exp?: unknown }).exp;
    return typeof exp === "number" ? exp * 1000 : undefined;
  } catch {
    return undefined;
  }
}

const isExpired = (jwt: string | undefined) => jwt !== undefined && (expiryOf(jwt) ?? Infinity) <= Date.now();

function showError(message: string): void {
  ui.banner.textContent = message;
  ui.banner.hidden = false;
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(() => (ui.banner.hidden = true), 6000);
}

function signOut(): void {
  stopChat?.();
  stopChat = undefined;
  token = undefined;
  clearTimeout(expiryTimer);
  sessionStorage.removeItem(TOKEN_KEY);
  // The next user of this tab must not land on this user's conversation.
  if (location.hash) history.replaceState(null, "", location.pathname + location.search);
  ui.me.hidden = true;
  ui.signOut.hidden = true;
  ui.login.hidden = false;
}

/** The node refused the token (a REST 401 or the socket's UNAUTHORIZED): an expired one says so. */
function refused(err: ChatError): void {
  if (!stopChat) return;
  showError(isExpired(token) ? EXPIRED : `${err.code}: ${err.message}`);
  signOut();
}

function signIn(jwt: string): void {
  const userId = subjectOf(jwt);
  if (!userId || isExpired(jwt)) {
    // Never kept: a reload would only repeat the error.
    sessionStorage.removeItem(TOKEN_KEY);
    showError(userId ? EXPIRED : "That token is not a JWT.");
    return;
  }
  token = jwt;
  sessionStorage.setItem(TOKEN_KEY, jwt);
  ui.login.hidden = true;
  ui.me.replaceChildren(el("bdi", {}, userId));
  ui.me.hidden = false;
  ui.signOut.hidden = false;
  stopChat = startChatView({ token: jwt, userId, onUnauthorized: refused, showError });
  const left = (expiryOf(jwt) ?? Infinity) - Date.now();
  if (left < MAX_TIMER_MS) {
    expiryTimer = setTimeout(() => {
      showError(EXPIRED);
      signOut();
    }, left);
  }
}

ui.loginForm.addEventListener("submit", (e) => {
  e.preventDefault();
  const data = new FormData(ui.loginForm);
  const pasted = String(data.get("token") ?? "").trim();
  const userId = String(data.get("userId") ?? "").trim();
  if (pasted) {
    signIn(pasted);
    return;
  }
  if (!userId) return;
  ui.loginSubmit.disabled = true;
  fetchDevToken(location.origin, userId)
    .then(signIn)
    .catch((err: unknown) => {
      const off = err instanceof ChatError && err.status === 404;
      showError(off ? "Development sign-in is off on this server: paste a token (pnpm token <userId>)." : `Sign-in failed: ${String(err)}`);
    })
    .finally(() => (ui.loginSubmit.disabled = false));
});
ui.signOut.addEventListener("click", signOut);

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) signIn(saved);
