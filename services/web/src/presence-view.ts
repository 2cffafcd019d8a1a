/** The members of the open conversation, each marked online or not. */
import { el } from "./dom.ts";

export class PresenceView {
  private readonly root: HTMLElement;
  private members: string[] = [];
  private readonly online = new Set<string>();

  constructor(root: HTMLElement) {
    this.root = root;
  }

  /** Starts over for a conversation: its members and who is online now. */
  reset(members: readonly string[], online: readonly string[]): void {
    this.members = [...members].sort();
    this.online.clear();
    for (const u of online) this.online.add(u);
    this.render();
  }

  set(userId: string, online: boolean): void {
    if (online) this.online.add(userId);
    else this.online.delete(userId);
    if (!this.members.includes(userId)) this.members = [...this.members, userId].sort();
    this.render();
  }

  private render(): void {
    this.root.replaceChildren(
      ...this.members.map((u) =>
        el("li", { "data-testid": "presence-user", "data-user-id": u, "data-online": String(this.online.has(u)), title: this.online.has(u) ? "online" : "offline" }, el("bdi", {}, u)),
      ),
    );
  }
}
