// A test worker: the shared store contract (test/support/store-contract.ts), run case by case
// against the Cache API store on caches.default inside workerd. "vitest" is test/edge/vitest-shim.ts
// in this bundle. GET /cases lists the cases; GET /run?case=NAME runs one in its own request.
import { createCacheStore, type StoreOptions } from "../../src/index.js";
import { storeContract } from "../support/store-contract.js";
import { cases } from "./vitest-shim.js";

const cache = () => (caches as unknown as { default: Cache }).default;

storeContract("Cache API (caches.default in workerd)", async ({ estimate, checkpointBytes }) => {
  const name = crypto.randomUUID();
  const options: StoreOptions & { name: string } = {
    name,
    chunkSize: 256 * 1024,
    ...(estimate ? { estimate } : {}),
    ...(checkpointBytes ? { checkpointBytes } : {}),
  };
  return {
    store: createCacheStore(cache(), options),
    // Another isolate or a later request: a second store over the same cache and name.
    reopen: async () => createCacheStore(cache(), options),
  };
});

export default {
  async fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    if (url.pathname === "/cases") return Response.json(cases.map((c) => c.name));
    const wanted = url.searchParams.get("case");
    const found = cases.find((c) => c.name === wanted);
    if (!found) return Response.json({ error: `no case named ${wanted}` }, { status: 404 });
    const started = Date.now();
    try {
      await found.fn();
      return Response.json({ name: found.name, ok: true, ms: Date.now() - started });
    } catch (error) {
      const e = error as Error & { code?: string };
      return Response.json({
        name: found.name,
        ok: false,
        ms: Date.now() - started,
        error: `${e.name}: ${e.message}${e.code ? ` (${e.code})` : ""}`,
        stack: e.stack,
      });
    }
  },
};
