/// <reference types="vite/client" />
// Issue 18's transformers.js proof in Chromium: the tiny BERT of scripts/tiny-bert.py, packed as a
// Docker model-spec v0.2 artifact in Distribution (test/browser/setup-transformers.ts), loaded by a real
// transformers.js `pipeline('feature-extraction')` (from npm, ONNX Runtime's wasm served from the
// onnxruntime-web package, never a CDN) through the adapter and the proxy into OPFS. Its outputs equal
// the same pipeline loading the same files over HTTP, and torch's; a second load with a new cache over
// the same store fetches no blob; a config.json altered on the registry's disk is refused with
// DIGEST_MISMATCH and the pipeline call rejects with it. Bytes fetched, time to first output and
// peak JS heap are logged for both paths.
import { env, pipeline } from "@huggingface/transformers";
import ortMjs from "onnxruntime-web/ort-wasm-simd-threaded.asyncify.mjs?url";
import ortWasm from "onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { commands } from "vitest/browser";
import { createTransformersCache } from "../../src/adapters/transformers.js";
import { createOpfsStore, isOciError, type Store } from "../../src/index.js";
import { heapGrowth } from "../support/heap.js";

const bed = inject("transformersBed");
const OPTIONS = { dtype: "fp32", device: "wasm" } as const;

interface Reference {
  hidden_size: number;
  sentences: { text: string; input_ids: number[]; last_hidden_state: number[][]; mean_pooled: number[] }[];
}
interface Stats {
  blobRequests: number;
  blobBytes: number;
  filesBytes: number;
}
const stats = async (): Promise<Stats> => (await fetch(`${bed.serverUrl}/stats`)).json();

/** transformers.js as the adapter needs it: no local models, no browser cache, ORT's wasm from the package. */
function configure(cache: ReturnType<typeof createTransformersCache> | undefined) {
  env.allowLocalModels = false;
  env.allowRemoteModels = true;
  env.useBrowserCache = false;
  env.useWasmCache = false;
  const onnx = env.backends.onnx as { wasm: { wasmPaths: unknown; numThreads: number; proxy: boolean } };
  onnx.wasm.wasmPaths = { mjs: ortMjs, wasm: ortWasm };
  onnx.wasm.numThreads = 1;
  onnx.wasm.proxy = false;
  if (cache) {
    env.useCustomCache = true;
    env.customCache = cache;
    // Nothing of an OCI model may come from here: an unresolvable host makes a leak fail loudly.
    env.remoteHost = "https://oci.invalid/";
    env.remotePathTemplate = "{model}/resolve/{revision}/";
  } else {
    env.useCustomCache = false;
    env.customCache = null;
    env.remoteHost = `${bed.serverUrl}/files/`;
    env.remotePathTemplate = "{model}/";
  }
}

type Extractor = (
  text: string[] | string,
  options?: Record<string, unknown>,
) => Promise<{ data: Float32Array; dims: number[] }>;

/** Loads the pipeline and runs the first sentence: the time to first output, and every sentence's output. */
async function load(modelId: string, sentences: string[]) {
  const started = performance.now();
  const extractor = (await pipeline("feature-extraction", modelId, OPTIONS)) as unknown as Extractor & {
    dispose(): Promise<void>;
  };
  const first = await extractor(sentences[0] as string);
  const firstOutputMs = performance.now() - started;
  const outputs = [first];
  for (const s of sentences.slice(1)) outputs.push(await extractor(s));
  const pooled = await extractor(sentences[0] as string, { pooling: "mean", normalize: false });
  await extractor.dispose();
  return { firstOutputMs, outputs, pooled };
}

const kb = (n: number) => `${(n / 1024).toFixed(1)} KiB`;

describe("transformers.js loads an OCI model through the custom cache", () => {
  let reference: Reference;
  let direct: Awaited<ReturnType<typeof load>>;
  let store: Store;
  const TOLERANCE = 1e-4;

  beforeAll(async () => {
    reference = JSON.parse(await commands.readFile("test/fixtures/tiny-bert/reference.json"));
    configure(undefined);
    // ONNX Runtime's wasm is compiled once per page: warm it up so neither path pays for it.
    await load("model", [reference.sentences[0]?.text as string]);
    const before = await stats();
    const measured = await heapGrowth(() =>
      load(
        "model",
        reference.sentences.map((s) => s.text),
      ),
    );
    direct = measured.result;
    const bytes = (await stats()).filesBytes - before.filesBytes;
    console.log(
      `transformers.js direct (its own fetch of the served files): ${kb(bytes)} fetched, first output ${direct.firstOutputMs.toFixed(0)} ms, peak JS heap +${kb(measured.peak)}`,
    );
    store = createOpfsStore(`transformers-${crypto.randomUUID()}`);
  });

  it("gives the outputs of the same pipeline loading the same files itself, and torch's", async () => {
    const cache = createTransformersCache({ proxy: bed.proxyUrl, store });
    configure(cache);
    const before = await stats();
    const measured = await heapGrowth(() =>
      load(
        `oci:${bed.model}`,
        reference.sentences.map((s) => s.text),
      ),
    );
    const oci = measured.result;
    const after = await stats();
    console.log(
      `transformers.js through the adapter (pull through the proxy into OPFS): ${after.blobRequests - before.blobRequests} blob requests, ${kb(after.blobBytes - before.blobBytes)} fetched, first output ${oci.firstOutputMs.toFixed(0)} ms, peak JS heap +${kb(measured.peak)}`,
    );
    // Every file's blob once, the OCI config blob too.
    expect(after.blobRequests - before.blobRequests).toBe(5);
    let worst = 0;
    reference.sentences.forEach((sentence, i) => {
      const got = oci.outputs[i] as { data: Float32Array; dims: number[] };
      const want = direct.outputs[i] as { data: Float32Array; dims: number[] };
      expect(got.dims).toEqual([1, sentence.input_ids.length, reference.hidden_size]);
      expect(got.dims).toEqual(want.dims);
      expect(Array.from(got.data)).toEqual(Array.from(want.data));
      const torch = sentence.last_hidden_state.flat();
      for (let j = 0; j < torch.length; j++)
        worst = Math.max(worst, Math.abs((got.data[j] as number) - (torch[j] as number)));
    });
    expect(Array.from(oci.pooled.data)).toEqual(Array.from(direct.pooled.data));
    const pooledTorch = reference.sentences[0]?.mean_pooled as number[];
    for (let j = 0; j < pooledTorch.length; j++)
      worst = Math.max(worst, Math.abs((oci.pooled.data[j] as number) - (pooledTorch[j] as number)));
    console.log(
      `transformers.js vs torch: max |difference| ${worst.toExponential(2)} (tolerance ${TOLERANCE})`,
    );
    expect(worst).toBeLessThan(TOLERANCE);
  });

  it("loads again from the store with a new cache and a new pipeline, fetching no blob", async () => {
    const cache = createTransformersCache({ proxy: bed.proxyUrl, store });
    configure(cache);
    const before = await stats();
    const measured = await heapGrowth(() =>
      load(`oci:${bed.model}`, [reference.sentences[0]?.text as string]),
    );
    const again = measured.result;
    const after = await stats();
    console.log(
      `transformers.js second load through the adapter (from OPFS): ${after.blobRequests - before.blobRequests} blob requests, first output ${again.firstOutputMs.toFixed(0)} ms, peak JS heap +${kb(measured.peak)}`,
    );
    expect(after.blobRequests - before.blobRequests).toBe(0);
    expect(after.blobBytes).toBe(before.blobBytes);
    expect(Array.from(again.outputs[0]?.data ?? [])).toEqual(Array.from(direct.outputs[0]?.data ?? []));
  });

  it("gives transformers.js's progress_callback each file's size (streamed reads, content-length)", async () => {
    const cache = createTransformersCache({ proxy: bed.proxyUrl, store });
    configure(cache);
    const totals = new Map<string, number>();
    const extractor = await pipeline("feature-extraction", `oci:${bed.model}`, {
      ...OPTIONS,
      progress_callback: (p: { status: string; file?: string; total?: number; loaded?: number }) => {
        if (p.status === "progress" && p.file && p.loaded === p.total) totals.set(p.file, p.total as number);
      },
    });
    await extractor.dispose();
    const model = await cache.pull(`oci:${bed.model}`);
    expect(Object.fromEntries(totals)).toEqual(
      Object.fromEntries([...model.files].map(([path, f]) => [path, f.size])),
    );
  });

  it("answers a mapped model id as well", async () => {
    const cache = createTransformersCache({
      proxy: bed.proxyUrl,
      store,
      models: { "acme/tiny-bert": bed.model },
    });
    configure(cache);
    const mapped = await load("acme/tiny-bert", [reference.sentences[1]?.text as string]);
    expect(Array.from(mapped.outputs[0]?.data ?? [])).toEqual(Array.from(direct.outputs[1]?.data ?? []));
  });

  it("refuses a blob altered in the registry with DIGEST_MISMATCH, and the pipeline rejects with it", async () => {
    const cache = createTransformersCache({
      proxy: bed.proxyUrl,
      store: createOpfsStore(`tampered-${crypto.randomUUID()}`),
    });
    configure(cache);
    const error = await pipeline("feature-extraction", `oci:${bed.tampered}`, OPTIONS).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isOciError(error, "DIGEST_MISMATCH"), String(error)).toBe(true);
    expect((error as Error).message).toMatch(/^Cannot /);
    await expect(cache.pull(`oci:${bed.tampered}`)).rejects.toMatchObject({ code: "DIGEST_MISMATCH" });
    // With a progress callback transformers.js reads bodies with a stream reader: the same error.
    const withProgress = await pipeline("feature-extraction", `oci:${bed.tampered}`, {
      ...OPTIONS,
      progress_callback: () => {},
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isOciError(withProgress, "DIGEST_MISMATCH"), String(withProgress)).toBe(true);
  });
});
