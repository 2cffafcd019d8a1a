/**
 * The SQLite store's own thread: `node:sqlite` is synchronous, so a commit (and its fsync) run on
 * the main thread would stall every socket of the node for its duration. Here it stalls only this
 * worker, while the main thread keeps delivering and group commit gathers the next batch.
 */
import { parentPort, workerData } from "node:worker_threads";
import { SqliteStore, type SqliteStoreOptions } from "./sqlite-store.ts";
import type { MessageStore } from "./types.ts";

export interface Request {
  id: number;
  method: keyof MessageStore;
  args: unknown[];
}

export type Reply = { id: number; ok: true; value: unknown } | { id: number; ok: false; error: { name: string; message: string } };

const store = new SqliteStore(workerData as SqliteStoreOptions);
const port = parentPort!;

port.on("message", (req: Request) => {
  const method = store[req.method] as (...args: unknown[]) => Promise<unknown>;
  method.apply(store, req.args).then(
    (value) => {
      port.postMessage({ id: req.id, ok: true, value } satisfies Reply);
      // After the answer, not inside the commit: the main thread broadcasts the batch meanwhile.
      if (req.method === "appendBatch") store.checkpointIfDue();
    },
    (err: unknown) => {
      const e = err instanceof Error ? err : new Error(String(err));
      port.postMessage({ id: req.id, ok: false, error: { name: e.name, message: e.message } } satisfies Reply);
    },
  );
});
