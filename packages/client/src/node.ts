/**
 * `@chat/client/node`: what only Node offers. Kept out of the main entry so that a page bundling
 * the SDK never pulls `node:fs`.
 */
import fs from "node:fs/promises";
import path from "node:path";
import type { OutboxEntry, OutboxStorage } from "./outbox.ts";

type FileShape = Record<string, Record<string, OutboxEntry>>;

/**
 * An outbox in one JSON file, rewritten whole (write to a temporary file, then rename) on every
 * change: enough for a bot or a CLI holding a handful of unsent messages; not for thousands.
 */
export class JsonFileOutboxStorage implements OutboxStorage {
  readonly file: string;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(file: string) {
    this.file = file;
  }

  private async read(): Promise<FileShape> {
    try {
      const parsed: unknown = JSON.parse(await fs.readFile(this.file, "utf8"));
      return parsed && typeof parsed === "object" ? (parsed as FileShape) : {};
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return {};
      throw err;
    }
  }

  /** Read-modify-write, one at a time. */
  private update(change: (data: FileShape) => void): Promise<void> {
    const run = this.chain.catch(() => undefined).then(async () => {
      const data = await this.read();
      change(data);
      await fs.mkdir(path.dirname(this.file), { recursive: true });
      const tmp = `${this.file}.${process.pid}.tmp`;
      await fs.writeFile(tmp, JSON.stringify(data));
      await fs.rename(tmp, this.file);
    });
    this.chain = run;
    return run;
  }

  async load(scope: string): Promise<OutboxEntry[]> {
    await this.chain.catch(() => undefined);
    return Object.values((await this.read())[scope] ?? {});
  }

  save(scope: string, entry: OutboxEntry): Promise<void> {
    return this.update((data) => {
      (data[scope] ??= {})[entry.clientMessageId] = entry;
    });
  }

  remove(scope: string, clientMessageId: string): Promise<void> {
    return this.update((data) => {
      const entries = data[scope];
      if (!entries) return;
      delete entries[clientMessageId];
      if (Object.keys(entries).length === 0) delete data[scope];
    });
  }
}
