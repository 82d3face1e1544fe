// The OPFS store contract in a dedicated module worker, where the store appends through sync access
// handles itself (no writer worker of its own). Answers { id, list } and { id, run } from the page.
import { createOpfsStore, type StoreOptions } from "../../src/index.js";
import { syncFiles } from "../../src/store/opfs-sync.js";
import { listCases, runCase } from "../support/in-page-vitest.js";
import { type StoreFactory, storeContract } from "../support/store-contract.js";

const small = ({ estimate, checkpointBytes }: Parameters<StoreFactory>[0]): StoreOptions => ({
  chunkSize: 256 * 1024,
  ...(estimate ? { estimate } : {}),
  ...(checkpointBytes ? { checkpointBytes } : {}),
});

storeContract("OPFS in a worker", async (options) => {
  const name = `test-${crypto.randomUUID()}`;
  return {
    store: createOpfsStore(name, small(options)),
    reopen: async () => createOpfsStore(name, small(options)),
  };
});

addEventListener(
  "message",
  async (event: MessageEvent<{ id: number; list?: true; run?: string; writer?: true }>) => {
    const { id, run, writer } = event.data;
    if (writer) {
      // In a dedicated worker the store calls the handles itself when the prototype has them.
      const direct = "createSyncAccessHandle" in FileSystemFileHandle.prototype && (await syncFiles());
      return postMessage({ id, value: direct ? "sync access handles, directly" : "createWritable" });
    }
    postMessage({ id, value: run === undefined ? listCases() : await runCase(run) });
  },
);
