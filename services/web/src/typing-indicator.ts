/** "bob is typing" with animated dots, for the users the server says are typing. */
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
    if (names.length === 0) this.text.textContent = "";
    else if (names.length === 1) this.text.textContent = `${names[0]} is typing`;
    else if (names.length <= 3) this.text.textContent = `${names.slice(0, -1).join(", ")} and ${names.at(-1)} are typing`;
    else this.text.textContent = "Several people are typing";
  }
}
