// A page for the Firefox store contract: test/support/store-contract.ts, bundled with `vitest`
// aliased to test/support/in-page-vitest.ts, for OPFS, IndexedDB and the Cache API, with the
// factories test/browser/stores.browser.test.ts gives them in Chromium. The OPFS contract also runs
// in a dedicated worker (/contract-worker.js), where the store uses sync access handles directly.
import { createCacheStore, createIdbStore, createOpfsStore, type StoreOptions } from "../../src/index.js";
import { syncFiles } from "../../src/store/opfs-sync.js";
import { type CaseResult, listCases, runCase } from "../support/in-page-vitest.js";
import { type StoreFactory, storeContract } from "../support/store-contract.js";

const unique = () => `test-${crypto.randomUUID()}`;
const small = ({ estimate, checkpointBytes }: Parameters<StoreFactory>[0]): StoreOptions => ({
  chunkSize: 256 * 1024,
  ...(estimate ? { estimate } : {}),
  ...(checkpointBytes ? { checkpointBytes } : {}),
});

storeContract("OPFS", async (options) => {
  const name = unique();
  return {
    store: createOpfsStore(name, small(options)),
    reopen: async () => createOpfsStore(name, small(options)),
  };
});

storeContract("IndexedDB", async (options) => {
  const name = unique();
  return {
    store: createIdbStore(name, small(options)),
    reopen: async () => createIdbStore(name, small(options)),
  };
});

storeContract("Cache API", async (options) => {
  const name = unique();
  return {
    store: createCacheStore(name, small(options)),
    reopen: async () => createCacheStore(name, small(options)),
  };
});

interface Runner {
  list(): Promise<string[]>;
  run(name: string): Promise<CaseResult>;
}

type Writer = "sync access handles, in a writer worker" | "sync access handles, directly" | "createWritable";

declare global {
  interface Window {
    contract: Runner;
    workerContract: Runner;
    /** How the OPFS store appends in this page, as its feature detection found. */
    opfsWriter(): Promise<Writer>;
    /** The same, in the contract's dedicated worker. */
    workerOpfsWriter(): Promise<Writer>;
  }
}

window.contract = { list: async () => listCases(), run: runCase };
window.opfsWriter = async () =>
  (await syncFiles()) ? "sync access handles, in a writer worker" : "createWritable";

let worker: Worker | undefined;
let nextId = 0;
const waiting = new Map<number, (value: unknown) => void>();
function ask<T>(message: { list: true } | { run: string } | { writer: true }): Promise<T> {
  if (!worker) {
    worker = new Worker("/contract-worker.js", { type: "module" });
    worker.onmessage = (event: MessageEvent<{ id: number; value: unknown }>) => {
      waiting.get(event.data.id)?.(event.data.value);
      waiting.delete(event.data.id);
    };
  }
  const id = nextId++;
  return new Promise<T>((resolve, reject) => {
    waiting.set(id, resolve as (value: unknown) => void);
    (worker as Worker).onerror = (event) => reject(new Error(`the contract worker failed: ${event.message}`));
    (worker as Worker).postMessage({ id, ...message });
  });
}
window.workerContract = {
  list: () => ask<string[]>({ list: true }),
  run: (name) => ask<CaseResult>({ run: name }),
};
window.workerOpfsWriter = () => ask<Writer>({ writer: true });
