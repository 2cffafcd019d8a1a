/** Chooses the store from the configuration: MongoDB when MONGO_URL is set, else SQLite under DATA_DIR. */
import type { Config } from "../config.ts";
import type { MessageStore } from "./types.ts";
import { ThreadedSqliteStore } from "./threaded-store.ts";

export async function createStore(config: Readonly<Config>, logger: { warn(obj: object, msg?: string): void }): Promise<MessageStore> {
  if (config.mongoUrl) {
    const { MongoStore } = await import("./mongo-store.ts");
    return new MongoStore({ url: config.mongoUrl, dbName: config.mongoDb, writeConcern: config.mongoWriteConcern, logger });
  }
  // In its own thread: a synchronous commit on the main thread would stall every socket meanwhile.
  return new ThreadedSqliteStore({ dataDir: config.dataDir, synchronous: config.sqliteSynchronous });
}

export * from "./types.ts";
export { SqliteStore } from "./sqlite-store.ts";
export { ThreadedSqliteStore } from "./threaded-store.ts";
export { GroupCommitter } from "./group-commit.ts";
