// Benchmark page: pull a model through the proxy into OPFS / IndexedDB with pullModel (on the page,
// or for "opfs-worker" in a dedicated worker: this same script, started as one), against the page's
// own fetch + hash-wasm with no storage (the limit), and fetch → arrayBuffer → cache.put without
// verification (the common practice). Reports time and peak JS heap (the page's only).
import { createSHA256 } from "hash-wasm";
import {
  createIdbStore,
  createOpfsStore,
  createRegistryClient,
  pullModel,
  type RangeOptions,
} from "../../src/index.js";
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

interface WorkerJob {
  reference: string;
  proxy: string;
  store: string;
}

if (typeof window === "undefined") {
  // Running as the page's worker: pull what the page asks for, answer with an error message or null.
  const scope = self as unknown as {
    onmessage: (event: MessageEvent<WorkerJob>) => void;
    postMessage(message: string | null): void;
  };
  scope.onmessage = async ({ data }) => {
    try {
      await pullModel(data.reference, { store: createOpfsStore(data.store), proxy: data.proxy });
      scope.postMessage(null);
    } catch (error) {
      scope.postMessage(error instanceof Error ? error.message : String(error));
    }
  };
} else {
  window.runPull = runPull;
}

let worker: Worker | undefined;
function pullInWorker(job: WorkerJob): Promise<void> {
  worker ??= new Worker(new URL(import.meta.url), { type: "module" });
  const started = worker;
  return new Promise((resolve, reject) => {
    started.onmessage = ({ data }: MessageEvent<string | null>) =>
      data === null ? resolve() : reject(new Error(data));
    started.onerror = (event) => reject(new Error(event.message));
    started.postMessage(job);
  });
}

async function runPull(mode: string, reference: string, proxy: string, round: number) {
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
}

/** Deletes what a run stored (not timed), so the profile does not fill up over the rounds. */
async function forget(mode: string, round: number): Promise<void> {
  const name = `bench-${round}`;
  if (mode.startsWith("opfs") || mode === "idb") {
    const store = mode === "idb" ? createIdbStore(name) : createOpfsStore(name);
    for (const tag of (await store.tags()).keys()) await store.untag(tag);
    await store.gc({ ingestMaxAgeMs: 0 });
  } else if (mode === "fetch-cache") {
    await caches.delete(name);
  }
}

/**
 * opfs-single: every blob in one stream, no parallel ranges (issue 21's baseline); opfs-ranged: in
 * ranges as from a registry elsewhere (8 connections, the default there: a registry on loopback, the
 * shaping proxy included, gets one request per blob unless connections is set); opfs-in-order: the
 * same, ranges handed to the store in order (`RangeOptions.atOffsets` false).
 */
const RANGES: Record<string, RangeOptions> = {
  "opfs-single": { connections: 1 },
  "opfs-ranged": { connections: 8 },
  "opfs-in-order": { connections: 8, atOffsets: false },
};

async function pullBy(mode: string, reference: string, proxy: string, round: number): Promise<void> {
  if (mode === "opfs-worker") {
    await pullInWorker({ reference, proxy, store: `bench-${round}` });
  } else if (mode === "opfs" || mode === "idb" || mode in RANGES) {
    const store = mode === "idb" ? createIdbStore(`bench-${round}`) : createOpfsStore(`bench-${round}`);
    const ranges = RANGES[mode];
    await pullModel(reference, { store, proxy, ...(ranges ? { ranges } : {}) });
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
