// A second tab, as far as the store can tell: pushes half a blob into the named store, says so, and
// then waits forever for the rest (the page terminates it).
import { createCacheStore, createIdbStore, createOpfsStore, type Store } from "../../../src/index.js";
import { blobOf } from "../../support/blobs.js";

const open: Record<string, (name: string) => Store> = {
  IndexedDB: (name) => createIdbStore(name, { chunkSize: 256 * 1024, checkpointBytes: 1 }),
  "Cache API": (name) => createCacheStore(name, { chunkSize: 256 * 1024, checkpointBytes: 1 }),
  OPFS: (name) => createOpfsStore(name, { chunkSize: 256 * 1024, checkpointBytes: 1 }),
};

addEventListener("message", async (event: MessageEvent<{ medium: string; name: string }>) => {
  const store = open[event.data.medium]?.(event.data.name) as Store;
  const { bytes, descriptor } = await blobOf(2 * 1024 * 1024);
  let sent = 0;
  const source = new ReadableStream<Uint8Array>({
    async pull(controller) {
      if (sent >= 1024 * 1024) {
        postMessage({ digest: descriptor.digest });
        return new Promise<void>(() => {}); // stalled, holding the download's lock
      }
      controller.enqueue(bytes.slice(sent, sent + 256 * 1024));
      sent += 256 * 1024;
    },
  });
  store.push(descriptor, source).catch(() => {});
});
