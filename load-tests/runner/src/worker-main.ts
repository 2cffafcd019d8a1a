/** Entry of a forked load worker: relays IPC messages to a LoadWorker. */
import { LoadWorker, type FromWorker, type ToWorker } from "./worker.ts";

const worker = new LoadWorker((m: FromWorker) => process.send?.(m));
process.on("message", (m: ToWorker) => {
  void worker.handle(m).then(() => {
    if (m.type === "close") setTimeout(() => process.exit(0), 200);
  });
});
process.on("disconnect", () => process.exit(0));
