/**
 * The message list: confirmed messages in `seq` order (one element per `id`), then the user's
 * pending sends. Keeps the reader's place: follows new messages only when already at the bottom,
 * and holds still while an older page is inserted above.
 */
import type { MessageData } from "@chat/protocol";
import type { MessageSource } from "@chat/client";
import { el, timeOf } from "./dom.ts";

const NEAR_BOTTOM_PX = 80;
const NEAR_TOP_PX = 60;

export class MessageList {
  private readonly root: HTMLElement;
  private readonly historyStatus: HTMLElement;
  private readonly me: string;

  constructor(root: HTMLElement, historyStatus: HTMLElement, me: string) {
    this.root = root;
    this.historyStatus = historyStatus;
    this.me = me;
  }

  /** Empties the list; the history line says "Loading…" until setHistory() or setHistoryFailed(). */
  clear(): void {
    for (const child of [...this.root.children]) if (child !== this.historyStatus) child.remove();
    this.setHistory(false, true);
  }

  /** Inserts messages not shown yet, each at its `seq`, and removes the pending twin of each. */
  add(messages: readonly MessageData[], source: MessageSource): void {
    const atBottom = this.isNearBottom();
    const heightBefore = this.root.scrollHeight;
    const topBefore = this.root.scrollTop;
    let own = false;
    for (const m of messages) {
      if (m.clientMessageId) this.pendingOf(m.clientMessageId)?.remove();
      if (this.root.querySelector(`[data-testid="message"][data-message-id="${CSS.escape(m.id)}"]`)) continue;
      this.insertBySeq(this.render(m));
      if (m.senderId === this.me) own = true;
    }
    if (source === "older") this.root.scrollTop = topBefore + (this.root.scrollHeight - heightBefore);
    else if (atBottom || own || source === "history") this.scrollToBottom();
  }

  /** Removes messages the client stopped holding (the oldest), keeping the reader's place. */
  remove(messages: readonly MessageData[]): void {
    const atBottom = this.isNearBottom();
    const heightBefore = this.root.scrollHeight;
    const topBefore = this.root.scrollTop;
    for (const m of messages) this.root.querySelector(`[data-testid="message"][data-message-id="${CSS.escape(m.id)}"]`)?.remove();
    if (atBottom) this.scrollToBottom();
    else this.root.scrollTop = Math.max(0, topBefore - (heightBefore - this.root.scrollHeight));
  }

  /** Shows a send in flight, until its stored message arrives. */
  addPending(clientMessageId: string, text: string): void {
    const node = el(
      "article",
      { class: "message pending", "data-testid": "message-pending", "data-client-message-id": clientMessageId, "data-own": "true" },
      el("div", { class: "meta" }, el("bdi", { class: "sender" }, this.me), el("span", { "data-testid": "pending-status" }, "sending…")),
      el("p", { "data-testid": "message-text" }, text),
    );
    this.root.append(node);
    this.scrollToBottom();
  }

  /** Removes a pending send (its message was stored). */
  removePending(clientMessageId: string): void {
    this.pendingOf(clientMessageId)?.remove();
  }

  /** Marks a pending send as failed, with a button that retries it (same clientMessageId). */
  markFailed(clientMessageId: string, reason: string, retry: () => void): void {
    const node = this.pendingOf(clientMessageId);
    if (!node) return;
    node.dataset.failed = "true";
    const status = node.querySelector<HTMLElement>('[data-testid="pending-status"]');
    if (status) status.textContent = `not sent: ${reason}`;
    const button = el("button", { type: "button", class: "link", "data-testid": "retry-send" }, "Retry");
    button.addEventListener("click", () => {
      button.remove();
      node.dataset.failed = "false";
      if (status) status.textContent = "sending…";
      retry();
    });
    node.append(button);
  }

  /** Updates the line above the first message: more to load, loading, or the beginning. */
  setHistory(hasOlder: boolean, loading: boolean): void {
    this.historyStatus.dataset.hasOlder = String(hasOlder);
    this.historyStatus.dataset.loading = String(loading);
    this.historyStatus.dataset.failed = "false";
    this.historyStatus.textContent = loading ? (hasOlder ? "Loading older messages…" : "Loading messages…") : hasOlder ? "Scroll up for older messages" : "Beginning of the conversation";
  }

  /** The newest page could not be loaded: say so (never "Beginning of the conversation"). */
  setHistoryFailed(): void {
    this.historyStatus.dataset.hasOlder = "false";
    this.historyStatus.dataset.loading = "false";
    this.historyStatus.dataset.failed = "true";
    this.historyStatus.textContent = "Couldn't load this conversation: retrying when the connection is back (or open it again)";
  }

  isNearTop(): boolean {
    return this.root.scrollTop < NEAR_TOP_PX;
  }

  /** True when the list does not fill its box, so no scroll can ask for older messages. */
  isUnderfilled(): boolean {
    return this.root.scrollHeight <= this.root.clientHeight + NEAR_TOP_PX;
  }

  isNearBottom(): boolean {
    return this.root.scrollHeight - this.root.scrollTop - this.root.clientHeight < NEAR_BOTTOM_PX;
  }

  private scrollToBottom(): void {
    this.root.scrollTop = this.root.scrollHeight;
  }

  private pendingOf(clientMessageId: string): HTMLElement | null {
    return this.root.querySelector<HTMLElement>(`[data-testid="message-pending"][data-client-message-id="${CSS.escape(clientMessageId)}"]`);
  }

  private render(m: MessageData): HTMLElement {
    return el(
      "article",
      {
        class: "message",
        "data-testid": "message",
        "data-message-id": m.id,
        "data-seq": String(m.seq),
        "data-sender": m.senderId,
        "data-own": String(m.senderId === this.me),
        "data-client-message-id": m.clientMessageId,
      },
      el("div", { class: "meta" }, el("bdi", { class: "sender", "data-testid": "message-sender" }, m.senderId), el("time", { datetime: m.timestamp }, timeOf(m.timestamp))),
      el("p", { "data-testid": "message-text" }, m.message),
    );
  }

  /** After the last confirmed message with a lower `seq`; pending sends stay below. */
  private insertBySeq(node: HTMLElement): void {
    const seq = Number(node.dataset.seq);
    const confirmed = this.root.querySelectorAll<HTMLElement>('[data-testid="message"]');
    for (let i = confirmed.length - 1; i >= 0; i--) {
      const other = confirmed[i];
      if (other && Number(other.dataset.seq) < seq) {
        other.after(node);
        return;
      }
    }
    this.historyStatus.after(node);
  }
}
