/// <reference types="vite/client" />
// Issue 18's wllama proof in Chromium: a tiny llama GGUF (scripts/tiny-llama-wllama.py), one file and
// split, packed as Docker model artifacts in a Distribution registry (test/browser/setup-wllama.ts),
// pulled through the proxy into OPFS and loaded into wllama (from npm, its wasm served locally) by the
// adapter, generates the same tokens greedily as wllama loading the same files from a plain URL. The
// storage backend lets wllama's own CacheManager load a pulled model with no request at all; a blob
// corrupted in the registry is refused. The figures (bytes fetched, time to first token, peak JS
// heap) are measured on a larger model of the same kind and logged.
import { CacheManager, type LoadModelParams, Wllama } from "@wllama/wllama";
import wasmUrl from "@wllama/wllama/esm/wasm/wllama.wasm?url";
import { afterEach, describe, expect, inject, it } from "vitest";
import {
  createWllamaStorage,
  loadWllamaModel,
  type WllamaStorageBackend,
  wllamaCacheKey,
} from "../../src/adapters/wllama.js";
import { createOpfsStore, type Model, OciError, pullModel, type Store } from "../../src/index.js";
import { heapGrowth } from "../support/heap.js";

const bed = inject("wllama");
const PARAMS: LoadModelParams = { n_ctx: 512, n_threads: 1, n_gpu_layers: 0 };
const PROMPT = "once upon a time there was a tiny model";
const N = 24;
const quiet = { debug: () => {}, log: () => {}, warn: () => {}, error: console.error };

interface Seen {
  method: string;
  path: string;
  status: number;
  bytes: number;
}
const stats = async (): Promise<{ registry: Seen[]; files: Seen[] }> => (await fetch(bed.statsUrl)).json();

const instances: Wllama[] = [];
function newWllama(cacheManager?: CacheManager): Wllama {
  const wllama = new Wllama(
    { default: wasmUrl },
    { logger: quiet, suppressNativeLog: true, ...(cacheManager ? { cacheManager } : {}) },
  );
  instances.push(wllama);
  return wllama;
}
afterEach(async () => {
  for (const w of instances.splice(0)) await w.exit().catch(() => {});
});

/** Greedy decoding of N tokens (byte and control tokens cannot win: see the fixture script). */
async function generate(wllama: Wllama): Promise<{ ids: number[]; text: string; firstTokenAt: number }> {
  const ids: number[] = [];
  let text = "";
  let firstTokenAt = 0;
  const stream = await wllama.createCompletion({
    prompt: PROMPT,
    max_tokens: N,
    temperature: 0,
    top_k: 1,
    ignore_eos: true,
    stream: true,
  });
  for await (const chunk of stream) {
    if (!firstTokenAt) firstTokenAt = performance.now();
    text += chunk.choices[0]?.text ?? "";
  }
  const full = (await wllama.createCompletion({
    prompt: PROMPT,
    max_tokens: N,
    temperature: 0,
    top_k: 1,
    ignore_eos: true,
    logprobs: 1,
  })) as unknown as { choices: { text: string; logprobs: { content: { id: number }[] } }[] };
  for (const c of full.choices[0]?.logprobs.content ?? []) ids.push(c.id);
  expect(full.choices[0]?.text).toBe(text);
  return { ids, text, firstTokenAt };
}

/** wllama loading the files itself from plain URLs, as Blobs: the reference. */
async function direct(names: string[]): Promise<{ ids: number[]; text: string }> {
  const blobs = await Promise.all(names.map(async (n) => (await fetch(`${bed.filesUrl}/${n}`)).blob()));
  const wllama = newWllama();
  await wllama.loadModel(blobs, PARAMS);
  return generate(wllama);
}

const pull = (reference: string, store: Store) => pullModel(reference, { proxy: bed.proxyUrl, store });

const MB = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MB`;

describe("wllama loads GGUF models pulled from an OCI registry", () => {
  let single: Model;

  it("generates the same greedy tokens from the OCI path as from the plain file", async () => {
    const store = createOpfsStore(`wllama-${crypto.randomUUID()}`);
    single = await pull(bed.single, store);
    expect(single.weights).toEqual(["model.gguf"]);
    const wllama = newWllama();
    await loadWllamaModel(wllama, single, { params: PARAMS });
    expect(wllama.getModelMetadata().hparams).toEqual({ nVocab: 532, nCtxTrain: 512, nEmbd: 32, nLayer: 2 });
    const oci = await generate(wllama);
    const reference = await direct([bed.files.single]);
    console.log(`single: ${JSON.stringify(oci.text)} ${oci.ids.join(",")}`);
    expect(oci.ids).toHaveLength(N);
    expect(new Set(oci.ids).size).toBeGreaterThan(3);
    expect(oci.ids).toEqual(reference.ids);
    expect(oci.text).toBe(reference.text);
  });

  it("loads the split model in split order and generates the same tokens as its files and as the single file", async () => {
    const store = createOpfsStore(`wllama-${crypto.randomUUID()}`);
    const split = await pull(bed.split, store);
    expect(split.weights).toEqual(["model-00001-of-00002.gguf", "model-00002-of-00002.gguf"]);
    const wllama = newWllama();
    await loadWllamaModel(wllama, split, { params: PARAMS });
    const oci = await generate(wllama);
    const reference = await direct(bed.files.split);
    expect(oci.ids).toHaveLength(N);
    expect(oci.ids).toEqual(reference.ids);
    // The same weights as the single file (the script writes both from one seed).
    expect(oci.ids).toEqual((await direct([bed.files.single])).ids);
  });

  it("lets wllama's own CacheManager load pulled models from the store: no request, no write", async () => {
    const store = createOpfsStore(`wllama-${crypto.randomUUID()}`);
    const model = await pull(bed.single, store);
    const split = await pull(bed.split, store);
    const storage = createWllamaStorage(store);
    const calls: string[] = [];
    const spy: WllamaStorageBackend = {
      isSupported: () => storage.isSupported(),
      read: (key, hint) => {
        calls.push(`read ${key} ${hint?.sha256 ?? ""}`);
        return storage.read(key, hint);
      },
      write: (key, stream, hint) => {
        calls.push(`write ${key}`);
        return storage.write(key, stream, hint);
      },
      getSize: (key, hint) => {
        calls.push(`getSize ${key}`);
        return storage.getSize(key, hint);
      },
      list: () => {
        calls.push("list");
        return storage.list();
      },
      delete: (key) => {
        calls.push(`delete ${key}`);
        return storage.delete(key);
      },
    };
    const url = await storage.addModel(model);
    const splitUrl = await storage.addModel(split);
    expect(url).toMatch(/^oci:\/\/127\.0\.0\.1:\d+\/wllama\/tiny@sha256:[0-9a-f]{64}\/model\.gguf$/);
    expect(splitUrl).toMatch(/\/model-00001-of-00002\.gguf$/);
    const before = await stats();
    const resources = performance.getEntriesByType("resource").length;

    const wllama = newWllama(new CacheManager([spy]));
    await wllama.loadModelFromUrl(url, PARAMS);
    const cached = await generate(wllama);
    const splitWllama = newWllama(new CacheManager([spy]));
    await splitWllama.loadModelFromUrl(splitUrl, PARAMS);
    const splitCached = await generate(splitWllama);

    const after = await stats();
    expect(after.registry).toHaveLength(before.registry.length);
    expect(after.files).toHaveLength(before.files.length);
    const fetched = performance
      .getEntriesByType("resource")
      .slice(resources)
      .map((e) => e.name)
      .filter((name) => !name.startsWith(location.origin) && name !== bed.statsUrl);
    expect(fetched).toEqual([]);
    expect(calls.filter((c) => c.startsWith("write") || c.startsWith("delete"))).toEqual([]);
    // The data keys were read by the blob's digest: the hint wllama passed is the layer's digest.
    const key = await wllamaCacheKey(url);
    const digest = (model.files.get("model.gguf")?.digest ?? "").slice("sha256:".length);
    expect(calls).toContain(`read ${key} ${digest}`);
    expect(cached.ids).toEqual((await direct([bed.files.single])).ids);
    expect(splitCached.ids).toEqual(cached.ids);
  });

  it("stores what wllama downloads itself through the store's verified push, then serves it with no request", async () => {
    const store = createOpfsStore(`wllama-${crypto.randomUUID()}`);
    const storage = createWllamaStorage(store);
    const url = `${bed.filesUrl}/${bed.files.single}`;
    const first = newWllama(new CacheManager([storage]));
    await first.loadModelFromUrl(url, PARAMS);
    const downloaded = await generate(first);
    const key = await wllamaCacheKey(url);
    expect((await storage.list()).map((e) => e.key).sort()).toEqual([`__metadata__${key}`, key].sort());
    // The file is one verified blob of the store, the very digest the registry's layer has.
    const blobs = await store.list();
    const layer = await pull(bed.single, createOpfsStore(`wllama-${crypto.randomUUID()}`));
    const digest = layer.files.get("model.gguf")?.digest;
    expect(blobs.map((b) => b.digest)).toContain(digest);

    const before = (await stats()).files.length;
    const second = newWllama(new CacheManager([storage]));
    await second.loadModelFromUrl(url, PARAMS);
    expect((await generate(second)).ids).toEqual(downloaded.ids);
    expect((await stats()).files.length).toBe(before);
  });

  it("refuses a blob corrupted in the registry with DIGEST_MISMATCH and keeps nothing of it", async () => {
    const store = createOpfsStore(`wllama-${crypto.randomUUID()}`);
    const error = await pull(bed.corrupt, store).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OciError);
    expect((error as OciError).code).toBe("DIGEST_MISMATCH");
    const sizes = (await store.list()).map((b) => b.size);
    expect(sizes).not.toContain(bed.sizes[bed.files.single]);
  });

  it("measures a larger model: bytes fetched, time to first token, JS heap, adapter against wllama's own loading", async () => {
    const size = bed.sizes[bed.files.large] as number;
    const ms = (from: number, to: number) => `${(to - from).toFixed(0)} ms`;

    // The adapter: pull into OPFS through the proxy, load from the store; then again, warm.
    let before = (await stats()).registry.length;
    const t0 = performance.now();
    const store = createOpfsStore(`wllama-${crypto.randomUUID()}`);
    const model = await pull(bed.large, store);
    const pulled = performance.now();
    const cold = newWllama();
    const adapter = await heapGrowth(() => loadWllamaModel(cold, model, { params: PARAMS }));
    const oci = await generate(cold);
    const registryBytes = (await stats()).registry.slice(before).reduce((n, r) => n + r.bytes, 0);
    before = (await stats()).registry.length;
    const t1 = performance.now();
    const warm = newWllama();
    await loadWllamaModel(warm, model, { params: PARAMS });
    const ociWarm = await generate(warm);
    expect((await stats()).registry.length).toBe(before);

    // wllama's own: download into its own OPFS cache from the plain URL and load; then again, cached.
    const url = `${bed.filesUrl}/${bed.files.large}`;
    await new CacheManager().clear();
    let filesBefore = (await stats()).files.length;
    const t2 = performance.now();
    const own = newWllama();
    const ownLoad = await heapGrowth(() => own.loadModelFromUrl(url, PARAMS));
    const reference = await generate(own);
    const fileBytes = (await stats()).files.slice(filesBefore).reduce((n, r) => n + r.bytes, 0);
    filesBefore = (await stats()).files.length;
    const t3 = performance.now();
    const ownWarm = newWllama();
    await ownWarm.loadModelFromUrl(url, PARAMS);
    const referenceWarm = await generate(ownWarm);
    expect((await stats()).files.length).toBe(filesBefore);
    await own.cacheManager.clear();

    // wllama from a Blob over a whole-file ArrayBuffer the page holds: the copy the adapter avoids.
    const copy = newWllama();
    const copied = await heapGrowth(async () => {
      const bytes = await (await fetch(url)).arrayBuffer();
      await copy.loadModel([new Blob([bytes])], PARAMS);
      return bytes;
    });
    await generate(copy);

    console.log(
      [
        `wllama, a ${MB(size)} GGUF (F32, ${model.weights.length} file), Chromium, 1 thread:`,
        `  adapter, cold (pullModel through the proxy into OPFS, then loadWllamaModel): ${MB(registryBytes)} from the registry; pull ${ms(t0, pulled)}; first token ${ms(t0, oci.firstTokenAt)} after the pull began (${ms(pulled, oci.firstTokenAt)} after it ended); JS heap while loading: peak +${MB(adapter.peak)}, held after GC +${MB(adapter.retained)}`,
        `  adapter, warm (loadWllamaModel from OPFS, 0 requests): first token ${ms(t1, ociWarm.firstTokenAt)}`,
        `  wllama's own, cold (loadModelFromUrl, its OPFS cache): ${MB(fileBytes)} fetched; first token ${ms(t2, reference.firstTokenAt)}; JS heap while loading: peak +${MB(ownLoad.peak)}, held after GC +${MB(ownLoad.retained)}`,
        `  wllama's own, warm (from its cache, 0 requests): first token ${ms(t3, referenceWarm.firstTokenAt)}`,
        `  a whole-file ArrayBuffer (fetch().arrayBuffer(), loadModel([new Blob([bytes])])): JS heap peak +${MB(copied.peak)}, held after GC +${MB(copied.retained)}`,
      ].join("\n"),
    );
    expect(oci.ids).toHaveLength(N);
    expect(oci.ids).toEqual(reference.ids);
    expect(ociWarm.ids).toEqual(oci.ids);
    expect(referenceWarm.ids).toEqual(oci.ids);
    // Every weight byte came from the registry once (plus the manifest and config).
    expect(registryBytes).toBeGreaterThanOrEqual(size);
    expect(registryBytes).toBeLessThan(size + 64 * 1024);
    expect(fileBytes).toBe(size);
    // The measurement sees a whole-file copy held in the page; the adapter holds none.
    expect(copied.retained).toBeGreaterThan(size * 0.9);
    expect(adapter.retained).toBeLessThan(size / 10);
    expect(adapter.peak).toBeLessThan(copied.peak);
  }, 240_000);
});
