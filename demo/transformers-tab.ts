/// <reference types="vite/client" />
// The transformers.js tab: the tiny BERT pulled from the demo's registry through the adapter
// (oci-model-loader/transformers) into the page's store, then run by a real transformers.js
// feature-extraction pipeline on ONNX Runtime's wasm, served from the onnxruntime-web package.
// Imported by main.ts when the tab is first opened: the WebGPU tab never loads transformers.js.
import { env, pipeline } from "@huggingface/transformers";
import ortMjs from "onnxruntime-web/ort-wasm-simd-threaded.asyncify.mjs?url";
import ortWasm from "onnxruntime-web/ort-wasm-simd-threaded.asyncify.wasm?url";
import { createTransformersCache, OCI_MODEL_ID_PREFIX } from "../src/adapters/transformers.js";
import { inspectModel, isOciError, type Model, type Store } from "../src/index.js";
import { el, LayerTable, mib } from "./layer-table.js";

/** What main.ts gives the tab: the page's store (the Storage select) and the demo's registry. */
export interface TransformersTabContext {
  store(): Store;
  storageName(): string;
  proxy: string;
  /** Called after each load: the Cache panel lists the model. */
  onStored(): void;
}

interface Embedded {
  text: string;
  /** last_hidden_state's dims, [1, tokens, hidden]. */
  dims: number[];
  hidden: number[];
  /** Mean over the tokens (transformers.js's pooling: "mean"), not normalized. */
  pooled: number[];
}

/** The last run, as shown: for the end-to-end test. */
export interface TransformersRun {
  reference: string;
  digest: string;
  a: Embedded;
  b: Embedded;
  cosine: number;
  /** From the Load click to the first output; undefined for a run of the Embed button. */
  firstOutputMs: number | undefined;
  embedMs: number;
}

type Extractor = ((
  text: string,
  options?: Record<string, unknown>,
) => Promise<{ data: Float32Array; dims: number[] }>) & { dispose(): Promise<void> };

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

/** ONNX Runtime from the package's own files, one thread (the page is not cross-origin isolated). */
function configureRuntime() {
  env.allowLocalModels = false;
  env.allowRemoteModels = true;
  env.useBrowserCache = false;
  env.useWasmCache = false;
  // An oci: id is answered by the custom cache only; should anything leak, it goes nowhere.
  env.remoteHost = "https://oci.invalid/";
  env.remotePathTemplate = "{model}/resolve/{revision}/";
  const onnx = env.backends.onnx as { wasm?: { wasmPaths: unknown; numThreads: number; proxy: boolean } };
  if (onnx.wasm) {
    onnx.wasm.wasmPaths = { mjs: ortMjs, wasm: ortWasm };
    onnx.wasm.numThreads = 1;
    onnx.wasm.proxy = false;
  }
}

const cosine = (a: number[], b: number[]) => {
  let dot = 0;
  let na = 0;
  let nb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] as number;
    const y = b[i] as number;
    dot += x * y;
    na += x * x;
    nb += y * y;
  }
  return dot / Math.sqrt(na * nb);
};

function bars(values: number[]): HTMLElement {
  const box = el("div", "", "bars");
  box.setAttribute("role", "img");
  box.setAttribute("aria-label", `${values.length} embedding values as bars`);
  const max = Math.max(1e-9, ...values.map(Math.abs));
  for (const v of values) {
    const bar = el("span", "", v < 0 ? "negative" : "");
    bar.style.height = `${Math.max(2, (Math.abs(v) / max) * 100)}%`;
    bar.title = v.toFixed(4);
    box.append(bar);
  }
  return box;
}

export function initTransformersTab(context: TransformersTabContext): {
  lastRun(): TransformersRun | undefined;
} {
  configureRuntime();
  const reference = $<HTMLInputElement>("tf-reference");
  const status = $("tf-status");
  const load = $<HTMLButtonElement>("tf-load");
  const embedButton = $<HTMLButtonElement>("tf-embed");
  const table = new LayerTable({
    body: $("tf-files").querySelector("tbody") as HTMLElement,
    totalState: $("tf-total-state"),
    totalBar: $<HTMLProgressElement>("tf-total-bar"),
    totalBytes: $("tf-total-bytes"),
  });
  let extractor: Extractor | undefined;
  let model: Model | undefined;
  let last: TransformersRun | undefined;

  const setStatus = (text: string, kind: "" | "ready" | "error" = "") => {
    status.textContent = text;
    status.className = `status ${kind}`.trim();
  };

  async function embedOne(text: string): Promise<Embedded> {
    if (!extractor) throw new Error("no pipeline loaded");
    const hidden = await extractor(text);
    const pooled = await extractor(text, { pooling: "mean", normalize: false });
    return { text, dims: [...hidden.dims], hidden: Array.from(hidden.data), pooled: Array.from(pooled.data) };
  }

  function showRun(run: TransformersRun) {
    const result = $("tf-result");
    result.replaceChildren();
    for (const [name, e] of [
      ["A", run.a],
      ["B", run.b],
    ] as const) {
      const dims = el("dd", `[${e.dims.join(", ")}]`);
      dims.dataset.testid = `tf-dims-${name.toLowerCase()}`;
      const values = el("dd");
      values.append(
        el(
          "span",
          `[${e.pooled
            .slice(0, 6)
            .map((v) => v.toFixed(4))
            .join(", ")}, …]`,
        ),
        bars(e.pooled),
      );
      result.append(el("dt", `Dims ${name}`), dims, el("dt", `Mean ${name}`), values);
    }
    const similarity = el("dd", run.cosine.toFixed(4));
    similarity.dataset.testid = "tf-cosine";
    result.append(el("dt", "Cosine A·B"), similarity);
  }

  async function embed(startedAt?: number) {
    const started = performance.now();
    const a = await embedOne($<HTMLTextAreaElement>("tf-text-a").value);
    const firstOutputMs = startedAt === undefined ? undefined : performance.now() - startedAt;
    const b = await embedOne($<HTMLTextAreaElement>("tf-text-b").value);
    const embedMs = performance.now() - started;
    last = {
      reference: model?.reference ?? "",
      digest: model?.digest ?? "",
      a,
      b,
      cosine: cosine(a.pooled, b.pooled),
      firstOutputMs,
      embedMs,
    };
    showRun(last);
    return last;
  }

  const message = (error: unknown) =>
    isOciError(error)
      ? `${error.code}: ${error.message}`
      : error instanceof Error
        ? error.message
        : String(error);

  async function loadModel(event: SubmitEvent) {
    event.preventDefault();
    const ref = reference.value.trim();
    const store = context.store();
    load.disabled = true;
    embedButton.disabled = true;
    $("tf-result").replaceChildren();
    $("tf-timing").textContent = "";
    await extractor?.dispose().catch(() => {});
    extractor = undefined;
    const started = performance.now();
    try {
      if (!ref) throw new Error("give a model reference");
      setStatus("resolving…");
      // The manifest only (no blob): a row per file before the pull starts.
      const summary = await inspectModel(ref, { proxy: context.proxy }).catch(() => undefined);
      if (summary) table.show(summary);
      // The adapter: transformers.js asks this cache for oci:<ref>'s files; it pulls the model once.
      const cache = createTransformersCache({ store, proxy: context.proxy, onProgress: table.onEvent });
      setStatus("downloading and verifying…");
      model = await cache.pull(`${OCI_MODEL_ID_PREFIX}${ref}`);
      table.settleStored("in the store already: one manifest request, no blob fetched");
      const pulledMs = performance.now() - started;
      const facts = $("tf-facts");
      facts.replaceChildren(
        el("dt", "Digest"),
        el("dd", model.digest),
        el("dt", "Files"),
        el("dd", [...model.files.values()].map((f) => `${f.path} (${mib(f.size)})`).join(", ")),
      );
      env.useCustomCache = true;
      env.customCache = cache;
      setStatus("loading the pipeline (ONNX Runtime wasm)…");
      extractor = (await pipeline("feature-extraction", `${OCI_MODEL_ID_PREFIX}${ref}`, {
        dtype: "fp32",
        device: "wasm",
      })) as unknown as Extractor;
      const readyMs = performance.now() - started;
      const run = await embed(started);
      $("tf-timing").textContent =
        `first output ${((run.firstOutputMs ?? 0) / 1000).toFixed(2)} s after Load (pull ${(pulledMs / 1000).toFixed(2)} s, pipeline ready at ${(readyMs / 1000).toFixed(2)} s)`;
      embedButton.disabled = false;
      setStatus(
        `ready: ${model.reference} stored in ${context.storageName()}, run by transformers.js`,
        "ready",
      );
    } catch (error) {
      setStatus(`failed — ${message(error)}`, "error");
    } finally {
      load.disabled = false;
      context.onStored();
    }
  }

  $("tf-form").addEventListener("submit", (e) => void loadModel(e as SubmitEvent));
  embedButton.addEventListener("click", async () => {
    embedButton.disabled = true;
    try {
      const run = await embed();
      $("tf-timing").textContent = `embedded both in ${run.embedMs.toFixed(0)} ms`;
    } catch (error) {
      setStatus(`failed — ${message(error)}`, "error");
    } finally {
      embedButton.disabled = false;
    }
  });
  load.disabled = false;
  setStatus("idle");
  return { lastRun: () => last };
}
