/**
 * "bob is typing" with animated dots, for the users the server says are typing. Each name is its
 * own <bdi>, so a user id holding bidi controls cannot reverse the words around it.
 */
import { el } from "./dom.ts";

const name = (userId: string) => el("bdi", {}, userId);

export class TypingIndicator {
  private readonly root: HTMLElement;
  private readonly text: HTMLElement;
  private readonly typing = new Set<string>();

  constructor(root: HTMLElement, text: HTMLElement) {
    this.root = root;
    this.text = text;
  }

  set(userId: string, isTyping: boolean): void {
    if (isTyping) this.typing.add(userId);
    else this.typing.delete(userId);
    this.render();
  }

  clear(): void {
    this.typing.clear();
    this.render();
  }

  private render(): void {
    const names = [...this.typing].sort();
    this.root.dataset.active = String(names.length > 0);
    this.root.dataset.users = names.join(",");
    if (names.length === 0) this.text.replaceChildren();
    else if (names.length === 1) this.text.replaceChildren(name(names[0] ?? ""), " is typing");
    else if (names.length <= 3) {
      const first = names.slice(0, -1).flatMap((u, i) => (i === 0 ? [name(u)] : [", ", name(u)]));
      this.text.replaceChildren(...first, " and ", name(names.at(-1) ?? ""), " are typing");
    } else this.text.replaceChildren("Several people are typing");
  }
}
