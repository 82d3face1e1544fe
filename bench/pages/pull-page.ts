// Benchmark page: pull a model through the proxy into OPFS / IndexedDB with pullModel, against the
// page's own fetch + hash-wasm with no storage (the limit), and fetch → arrayBuffer → cache.put
// without verification (the common practice). Reports time and peak JS heap.
import { createSHA256 } from "hash-wasm";
import { createIdbStore, createOpfsStore, createRegistryClient, pullModel } from "../../src/index.js";
import { sampleHeap } from "./heap.js";

declare global {
  interface Window {
    runPull(
      mode: string,
      reference: string,
      proxy: string,
      round: number,
    ): Promise<{ seconds: number; peakHeap: number }>;
  }
}

(performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? 0;

window.runPull = async (mode, reference, proxy, round) => {
  const memory = sampleHeap();
  const started = performance.now();
  try {
    await pullBy(mode, reference, proxy, round);
  } catch (error) {
    memory.stop();
    // A baseline that cannot do the job at this size (Chromium's cache.put of a large ArrayBuffer).
    return {
      seconds: Number.NaN,
      peakHeap: Number.NaN,
      error: error instanceof Error ? error.message : String(error),
    };
  }
  const seconds = (performance.now() - started) / 1000;
  const peakHeap = memory.stop();
  await forget(mode, round);
  return { seconds, peakHeap };
};

/** Deletes what a run stored (not timed), so the profile does not fill up over the rounds. */
async function forget(mode: string, round: number): Promise<void> {
  const name = `bench-${round}`;
  if (mode === "opfs" || mode === "idb") {
    const store = mode === "opfs" ? createOpfsStore(name) : createIdbStore(name);
    for (const tag of (await store.tags()).keys()) await store.untag(tag);
    await store.gc({ ingestMaxAgeMs: 0 });
  } else if (mode === "fetch-cache") {
    await caches.delete(name);
  }
}

async function pullBy(mode: string, reference: string, proxy: string, round: number): Promise<void> {
  if (mode === "opfs" || mode === "idb") {
    const store = mode === "opfs" ? createOpfsStore(`bench-${round}`) : createIdbStore(`bench-${round}`);
    await pullModel(reference, { store, proxy });
  } else {
    const client = createRegistryClient({ proxy });
    const { manifest } = await client.getManifest(reference);
    const [registry] = reference.split("/");
    const repository = reference.slice((registry?.length ?? 0) + 1).split(":")[0];
    const cache = mode === "fetch-cache" ? await caches.open(`bench-${round}`) : undefined;
    for (const layer of [manifest.config, ...manifest.layers]) {
      const url = `${proxy}/${registry}/v2/${repository}/blobs/${layer.digest}`;
      // The limit reads past the HTTP cache, as pullModel does; the common practice uses it.
      const response = await fetch(url, cache ? {} : { cache: "no-store" });
      if (cache) {
        await cache.put(url, new Response(await response.arrayBuffer()));
      } else {
        const hasher = await createSHA256();
        for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) hasher.update(chunk);
        if (`sha256:${hasher.digest("hex")}` !== layer.digest) throw new Error("digest mismatch");
      }
    }
  }
}
