/**
 * The page's entry: sign in (a development token from the node, or a pasted one), then the chat.
 * The token is kept in sessionStorage, so a reload stays signed in and each tab may be someone else.
 */
import { ChatError, fetchDevToken, subjectOf } from "@chat/client";
import { byTestId } from "./dom.ts";
import { startChatView } from "./chat-view.ts";

const TOKEN_KEY = "chat.token";

const ui = {
  login: byTestId("login-view"),
  loginForm: byTestId<HTMLFormElement>("login-form"),
  loginSubmit: byTestId<HTMLButtonElement>("login-submit"),
  me: byTestId("current-user"),
  signOut: byTestId<HTMLButtonElement>("sign-out"),
  banner: byTestId("error-banner"),
};

let stopChat: (() => void) | undefined;
let bannerTimer: ReturnType<typeof setTimeout> | undefined;

function showError(message: string): void {
  ui.banner.textContent = message;
  ui.banner.hidden = false;
  clearTimeout(bannerTimer);
  bannerTimer = setTimeout(() => (ui.banner.hidden = true), 6000);
}

function signOut(): void {
  stopChat?.();
  stopChat = undefined;
  sessionStorage.removeItem(TOKEN_KEY);
  ui.me.hidden = true;
  ui.signOut.hidden = true;
  ui.login.hidden = false;
}

function signIn(token: string): void {
  const userId = subjectOf(token);
  if (!userId) {
    showError("That token is not a JWT.");
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, token);
  ui.login.hidden = true;
  ui.me.textContent = userId;
  ui.me.hidden = false;
  ui.signOut.hidden = false;
  stopChat = startChatView({ token, userId, onSignOut: signOut, showError });
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
