// The demo page: pull → verify → store → model card → WebGPU, with the library's public API only.
import {
  createIdbStore,
  createMemoryStore,
  createOpfsStore,
  inspectModel,
  isOciError,
  listModels,
  type Model,
  type ModelSummary,
  openModel,
  type PullEvent,
  persistStorage,
  pullModel,
  remoteTensorIndex,
  removeModel,
  type Store,
  type TensorEntry,
} from "../src/index.js";
import { CharMlpGpu } from "./gpu.js";

declare const __DEMO__: { reference: string; proxy: string };

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const el = (tag: string, text = "", className = "") => {
  const node = document.createElement(tag);
  node.textContent = text;
  if (className) node.className = className;
  return node;
};
const mib = (n: number) =>
  n >= 1024 * 1024 ? `${(n / 1024 / 1024).toFixed(1)} MiB` : `${(n / 1024).toFixed(1)} KiB`;

const reference = $<HTMLInputElement>("reference");
const storage = $<HTMLSelectElement>("storage");
const status = $("status");
const runButton = $<HTMLButtonElement>("run");
reference.value = new URLSearchParams(location.search).get("ref") ?? __DEMO__.reference;
storage.value = new URLSearchParams(location.search).get("store") ?? "opfs";

const stores: Record<string, () => Store> = {
  opfs: () => createOpfsStore("demo"),
  idb: () => createIdbStore("demo"),
  memory: () => memory,
};
const memory = createMemoryStore();
let gpu: CharMlpGpu | undefined;
const currentStore = (): Store => (stores[storage.value] ?? (() => memory))();

function setStatus(text: string, kind: "" | "ready" | "error" = "") {
  status.textContent = text;
  status.className = kind;
}

interface Row {
  state: HTMLElement;
  bar: HTMLProgressElement;
  bytes: HTMLElement;
  speed: HTMLElement;
  started: number;
}
const rows = new Map<string, Row>();

function showLayers(summary: ModelSummary) {
  const body = $("layers").querySelector("tbody") as HTMLElement;
  body.replaceChildren();
  rows.clear();
  for (const layer of [{ ...summary.config, path: "(model config)" }, ...summary.layers]) {
    const tr = el("tr");
    const state = el("td", "queued");
    const bar = document.createElement("progress");
    bar.max = layer.size;
    bar.value = 0;
    const barCell = el("td");
    barCell.append(bar);
    const bytes = el("td", `0 / ${mib(layer.size)}`, "num");
    const speed = el("td", "", "num");
    const label =
      layer.path ?? (layer.mediaType.endsWith(".tar") ? "config files (tar)" : layer.digest.slice(0, 19));
    tr.append(el("td", label), state, barCell, bytes, speed);
    body.append(tr);
    rows.set(layer.digest, { state, bar, bytes, speed, started: 0 });
  }
}

function onEvent(event: PullEvent) {
  const row = "digest" in event ? rows.get(event.digest) : undefined;
  if (event.type === "layer-start" && row) {
    row.started = performance.now();
    row.state.textContent = event.fromCache ? "from cache" : "downloading";
    row.state.className = event.fromCache ? "state-cache" : "";
  } else if (event.type === "progress") {
    if (row) {
      row.bar.value = event.loaded;
      row.bytes.textContent = `${mib(event.loaded)} / ${mib(event.total)}`;
      const seconds = (performance.now() - row.started) / 1000;
      if (seconds > 0) row.speed.textContent = (event.loaded / seconds / 1e6).toFixed(1);
    }
    $<HTMLProgressElement>("total-bar").value = event.overallLoaded / Math.max(1, event.overallTotal);
    $("total-bytes").textContent = `${mib(event.overallLoaded)} / ${mib(event.overallTotal)}`;
  } else if (event.type === "layer-done" && row) {
    if (row.state.textContent !== "from cache") {
      row.state.textContent = "verified → stored";
      row.state.className = "state-verified";
    }
    row.bar.value = row.bar.max;
  } else if (event.type === "done") {
    $("total-state").textContent =
      `fetched ${mib(event.fetchedBytes)}, reused ${mib(event.reusedBytes)} in ${event.seconds.toFixed(2)} s`;
  }
}

function showCard(model: Model, tensors: Map<string, TensorEntry>) {
  const facts = $("model-facts");
  facts.replaceChildren();
  const add = (k: string, v: string) => facts.append(el("dt", k), el("dd", v));
  add("Reference", model.reference);
  add("Digest", model.digest);
  add("Packaging", model.format);
  const labels: Record<string, string> = {
    format: "Weights",
    architecture: "Architecture",
    parameters: "Parameters",
    quantization: "Precision",
    contextSize: "Context",
  };
  for (const [k, v] of Object.entries(model.info)) add(labels[k] ?? k, String(v));
  $("model-config").textContent = JSON.stringify(model.config ?? {}, null, 2);
  $("model-files").replaceChildren(
    ...[...model.files.values()].map((f) =>
      el("li", `${f.path} — ${mib(f.size)}${f.weight ? " (weights)" : ""}`),
    ),
  );
  const body = $("tensors").querySelector("tbody") as HTMLElement;
  body.replaceChildren(
    ...[...tensors.values()].map((t) => {
      const tr = el("tr");
      tr.append(
        el("td", t.name),
        el("td", t.dtype),
        el("td", `[${t.shape.join(", ")}]`),
        el("td", String(t.length), "num"),
      );
      return tr;
    }),
  );
}

async function refreshCache() {
  const store = currentStore();
  const estimate = await navigator.storage?.estimate?.().catch(() => undefined);
  $("estimate").textContent = estimate
    ? `Storage: ${mib(estimate.usage ?? 0)} used of ${mib(estimate.quota ?? 0)}`
    : "";
  const models = await listModels(store);
  $("cached").replaceChildren(
    ...models.map((m) => {
      const li = el(
        "li",
        `${m.record.reference} — ${mib(m.size)}${m.record.pending.length ? " (config only)" : ""}`,
      );
      const remove = el("button", "Delete") as HTMLButtonElement;
      remove.type = "button";
      remove.addEventListener("click", async () => {
        await removeModel(m.record.reference, { store });
        await refreshCache();
      });
      li.append(remove);
      return li;
    }),
  );
  if (models.length === 0) $("cached").replaceChildren(el("li", "No models stored."));
}

async function pull(event: SubmitEvent) {
  event.preventDefault();
  const ref = reference.value.trim();
  const store = currentStore();
  const options = { store, proxy: __DEMO__.proxy };
  runButton.disabled = true;
  gpu = undefined;
  try {
    setStatus("resolving…");
    showLayers(await inspectModel(ref, { proxy: __DEMO__.proxy }));
    // The model card comes before any weight: a config-only pull and the tensor headers by Range.
    const stored = await openModel(ref, { store }).catch(() => undefined);
    const early = stored?.complete ? stored : await pullModel(ref, { ...options, weights: false });
    showCard(
      early,
      stored?.complete ? await stored.tensorIndex() : await remoteTensorIndex(ref, { proxy: __DEMO__.proxy }),
    );
    setStatus("downloading and verifying…");
    const model = await pullModel(ref, { ...options, onProgress: onEvent });
    showCard(model, await model.tensorIndex());
    setStatus("uploading to WebGPU…");
    gpu = await CharMlpGpu.create(model);
    $("gpu-info").textContent =
      `${gpu.info.adapter} — maxBufferSize ${mib(gpu.info.maxBufferSize)}, maxStorageBufferBindingSize ${mib(gpu.info.maxStorageBufferBindingSize)}; bf16 copy widened on the GPU differs from f32 by at most ${gpu.bf16Difference.toExponential(2)}`;
    runButton.disabled = false;
    setStatus(`ready: ${model.reference} stored in ${storage.value} and loaded on the GPU`, "ready");
  } catch (error) {
    const message = isOciError(error)
      ? `${error.code}: ${error.message}`
      : error instanceof Error
        ? error.message
        : String(error);
    setStatus(`failed — ${message}`, "error");
  } finally {
    await refreshCache().catch(() => {});
  }
}

async function run() {
  if (!gpu) return;
  runButton.disabled = true;
  const result = await gpu.generate(
    Number($<HTMLInputElement>("count").value) || 12,
    Number($<HTMLInputElement>("seed").value) || 0,
  );
  $("output").textContent = result.words.join(" ");
  $("speed").textContent = `${result.tokens} tokens at ${result.perSecond.toFixed(0)} tokens/s`;
  runButton.disabled = false;
}

$("pull-form").addEventListener("submit", (e) => void pull(e as SubmitEvent));
runButton.addEventListener("click", () => void run());
$("gc").addEventListener("click", async () => {
  const result = await currentStore().gc();
  $("estimate").textContent = `Freed ${mib(result.freedBytes)}.`;
  await refreshCache();
});
$("persist").addEventListener("click", async () => {
  $("estimate").textContent = (await persistStorage())
    ? "Storage is persistent."
    : "The browser declined persistent storage.";
});
$("refresh").addEventListener("click", () => void refreshCache());
storage.addEventListener("change", () => void refreshCache());
void refreshCache();

/** For the end-to-end test: the GPU's logits for a context. */
(window as unknown as { demo: unknown }).demo = {
  logits: (context: number[]) => gpu?.logits(context).then((l) => Array.from(l)),
};
