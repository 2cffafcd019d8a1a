/** Chooses the store from the configuration: MongoDB when MONGO_URL is set, else SQLite under DATA_DIR. */
import type { Config } from "../config.ts";
import type { MessageStore } from "./types.ts";
import { SqliteStore } from "./sqlite-store.ts";
import { ThreadedSqliteStore } from "./threaded-store.ts";

export async function createStore(config: Readonly<Config>, logger: { warn(obj: object, msg?: string): void }): Promise<MessageStore> {
  if (config.mongoUrl) {
    const { MongoStore } = await import("./mongo-store.ts");
    return new MongoStore({ url: config.mongoUrl, dbName: config.mongoDb, writeConcern: config.mongoWriteConcern, logger });
  }
  const opts = { dataDir: config.dataDir, synchronous: config.sqliteSynchronous };
  // SQLITE_THREAD=main: no hand-off to a thread and back per batch (on this 2-core VM, waking the
  // other thread is most of what a small batch costs; docs/benchmark.md), but the commit and its
  // fsync run on the event loop, so the file is held alone: a wait for another process's lock would
  // stall every socket.
  if (config.sqliteThread === "main") return new SqliteStore({ ...opts, exclusive: true });
  // In its own thread (the default): a synchronous commit on the main thread stalls every socket
  // meanwhile, and several nodes may share the file.
  return new ThreadedSqliteStore(opts);
}

export * from "./types.ts";
export { SqliteStore } from "./sqlite-store.ts";
export { ThreadedSqliteStore } from "./threaded-store.ts";
export { GroupCommitter } from "./group-commit.ts";
