/// <reference types="vite/client" />
// Issue 18's ONNX Runtime Web proof in Chromium: sessions made by createOnnxSession from models pulled
// through the proxy into OPFS (test/browser/setup-transformers.ts) — the tiny BERT in one file and with
// external data, and a Gather over a 64 MiB external-data initializer — give the outputs of sessions
// ONNX Runtime makes itself from the same files over HTTP (and torch's). ONNX Runtime's wasm comes from
// the onnxruntime-web package, never a CDN, one thread. Bytes fetched, time to first output and the
// page's peak JS heap growth are logged for both paths, with ORT's wasm build and its JSPI build (which
// streams Blob external data into the session).

import * as ortJspi from "onnxruntime-web/jspi";
import jspiMjs from "onnxruntime-web/ort-wasm-simd-threaded.jspi.mjs?url";
import jspiWasm from "onnxruntime-web/ort-wasm-simd-threaded.jspi.wasm?url";
import plainMjs from "onnxruntime-web/ort-wasm-simd-threaded.mjs?url";
import plainWasm from "onnxruntime-web/ort-wasm-simd-threaded.wasm?url";
import * as ortWasm from "onnxruntime-web/wasm";
import { beforeAll, describe, expect, inject, it } from "vitest";
import { commands } from "vitest/browser";
import { createOnnxSession, onnxExternalDataPaths, onnxModelPath } from "../../src/adapters/onnxruntime.js";
import { createOpfsStore, type Model, pullModel, type Store } from "../../src/index.js";
import { heapGrowth } from "../support/heap.js";

const bed = inject("transformersBed");
type Ort = typeof ortWasm;
const BUILDS: Record<string, Ort> = { wasm: ortWasm, jspi: ortJspi as unknown as Ort };
ortWasm.env.wasm.wasmPaths = { mjs: plainMjs, wasm: plainWasm };
ortJspi.env.wasm.wasmPaths = { mjs: jspiMjs, wasm: jspiWasm };
for (const ort of Object.values(BUILDS)) {
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.proxy = false;
}
const SESSION = { executionProviders: ["wasm"] };

interface Stats {
  blobRequests: number;
  blobBytes: number;
  filesBytes: number;
}
const stats = async (): Promise<Stats> => (await fetch(`${bed.serverUrl}/stats`)).json();
const files = (path: string) => `${bed.serverUrl}/files/${path}`;
const pull = (reference: string, store: Store) => pullModel(reference, { proxy: bed.proxyUrl, store });

const MiB = (n: number) => `${(n / 1024 / 1024).toFixed(1)} MiB`;

interface Reference {
  sentences: { input_ids: number[]; last_hidden_state: number[][] }[];
}

async function runBert(ort: Ort, session: ortWasm.InferenceSession, ids: number[]): Promise<Float32Array> {
  const tensor = (values: number[]) =>
    new ort.Tensor("int64", BigInt64Array.from(values.map(BigInt)), [1, values.length]);
  const out = await session.run({
    input_ids: tensor(ids),
    attention_mask: tensor(ids.map(() => 1)),
    token_type_ids: tensor(ids.map(() => 0)),
  });
  return out.last_hidden_state?.data as Float32Array;
}

describe("ONNX Runtime Web sessions from OCI models", () => {
  let reference: Reference;
  let store: Store;

  beforeAll(async () => {
    reference = JSON.parse(await commands.readFile("test/fixtures/tiny-bert/reference.json"));
    store = createOpfsStore(`onnxruntime-${crypto.randomUUID()}`);
  });

  it("finds the .onnx file and its external data by name", async () => {
    const model = await pull(bed.external, store);
    expect(onnxModelPath(model)).toBe("onnx/model.onnx");
    expect(onnxExternalDataPaths(model, "onnx/model.onnx")).toEqual(["onnx/model.onnx_data"]);
    const plain = await pull(bed.model, store);
    expect(onnxExternalDataPaths(plain, onnxModelPath(plain))).toEqual([]);
    expect(() => onnxModelPath(plain, "onnx/none.onnx")).toThrow(
      expect.objectContaining({ code: "NOT_FOUND" }),
    );
  });

  it.each(Object.keys(BUILDS))(
    "runs the tiny BERT, one file and with external data, as ONNX Runtime (%s build) does from the files, and as torch",
    async (build) => {
      const ort = BUILDS[build] as Ort;
      let worst = 0;
      for (const [name, reference_, folder] of [
        ["one file", bed.model, "model"],
        ["external data", bed.external, "external"],
      ] as const) {
        const model = await pull(reference_, store);
        const oci = await createOnnxSession(ort, model, { sessionOptions: SESSION });
        const direct = await ort.InferenceSession.create(files(`${folder}/onnx/model.onnx`), {
          ...SESSION,
          ...(folder === "external"
            ? { externalData: [{ path: "model.onnx_data", data: files("external/onnx/model.onnx_data") }] }
            : {}),
        });
        for (const sentence of reference.sentences) {
          const got = await runBert(ort, oci, sentence.input_ids);
          const want = await runBert(ort, direct, sentence.input_ids);
          expect(Array.from(got), name).toEqual(Array.from(want));
          const torch = sentence.last_hidden_state.flat();
          expect(got.length).toBe(torch.length);
          for (let j = 0; j < torch.length; j++)
            worst = Math.max(worst, Math.abs((got[j] as number) - (torch[j] as number)));
        }
        await oci.release();
        await direct.release();
      }
      console.log(
        `onnxruntime-web (${build}) tiny BERT vs torch: max |difference| ${worst.toExponential(2)}`,
      );
      expect(worst).toBeLessThan(1e-4);
    },
  );

  it.each(Object.keys(BUILDS))(
    "reads a 64 MiB external initializer from the store as ONNX Runtime (%s build) reads it from a URL; figures logged",
    async (build) => {
      const ort = BUILDS[build] as Ort;
      const n = bed.gatherElements;
      const indices = [0, 1, 4095, 4096, 123_457, n - 2, n - 1];
      const want = indices.map((i) => (i % 4096) * 0.25 - 512);
      const gather = async (session: ortWasm.InferenceSession) => {
        const out = await session.run({
          indices: new ort.Tensor("int64", BigInt64Array.from(indices.map(BigInt)), [indices.length]),
        });
        return Array.from(out.values?.data as Float32Array);
      };
      const timed = async (make: () => Promise<ortWasm.InferenceSession>) => {
        const started = performance.now();
        const session = await make();
        const values = await gather(session);
        const ms = performance.now() - started;
        await session.release();
        return { values, ms };
      };

      const directSession = () =>
        ort.InferenceSession.create(files("gather/gather.onnx"), {
          ...SESSION,
          externalData: [{ path: "gather.onnx_data", data: files("gather/gather.onnx_data") }],
        });
      // Once unmeasured: ORT's wasm memory grows to hold the weights once and never shrinks, so only
      // the first session would pay for it; after this, growth is what each path itself allocates.
      await timed(directSession);
      let before = await stats();
      const direct = await heapGrowth(() => timed(directSession));
      let after = await stats();
      const directBytes = after.filesBytes - before.filesBytes;
      expect(direct.result.values).toEqual(want);

      const own = createOpfsStore(`gather-${build}-${crypto.randomUUID()}`);
      before = await stats();
      let model: Model | undefined;
      const adapter = await heapGrowth(() =>
        timed(async () => {
          model = await pull(bed.gather, own);
          return createOnnxSession(ort, model, { sessionOptions: SESSION });
        }),
      );
      after = await stats();
      const adapterBytes = after.blobBytes - before.blobBytes;
      expect(adapter.result.values).toEqual(want);
      expect(model?.files.get("gather.onnx_data")?.size).toBe(n * 4);
      expect(adapterBytes).toBeGreaterThanOrEqual(n * 4);

      before = await stats();
      const again = await heapGrowth(() =>
        timed(async () => createOnnxSession(ort, await pull(bed.gather, own), { sessionOptions: SESSION })),
      );
      after = await stats();
      expect(after.blobRequests - before.blobRequests).toBe(0);
      expect(again.result.values).toEqual(want);

      console.log(
        [
          `onnxruntime-web (${build}), Gather over a ${MiB(n * 4)} external initializer:`,
          `  direct (ORT fetches the URLs): ${MiB(directBytes)} fetched, first output ${direct.result.ms.toFixed(0)} ms, peak JS heap +${MiB(direct.peak)}`,
          `  adapter (pull into OPFS + createOnnxSession): ${MiB(adapterBytes)} fetched, first output ${adapter.result.ms.toFixed(0)} ms, peak JS heap +${MiB(adapter.peak)}`,
          `  adapter, model already in OPFS: 0 blob requests, first output ${again.result.ms.toFixed(0)} ms, peak JS heap +${MiB(again.peak)}`,
        ].join("\n"),
      );
    },
  );
});
