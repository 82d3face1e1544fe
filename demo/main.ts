// The demo page: pull → verify → store → model card → WebGPU, with the library's public API only.
import {
  createIdbStore,
  createMemoryStore,
  createOpfsStore,
  inspectModel,
  isOciError,
  listModels,
  type Model,
  openModel,
  persistStorage,
  pullModel,
  remoteTensorIndex,
  removeModel,
  type Store,
  type TensorEntry,
} from "../src/index.js";
import { CharTokenizer } from "./char-tokenizer.js";
import { loadDemoConfig } from "./config.js";
import { CharMlpGpu } from "./gpu.js";
import { el, LayerTable, mib } from "./layer-table.js";
import { TransformerGpu, unsupportedReason } from "./transformer-gpu.js";
import type { TransformersRun } from "./transformers-tab.js";

const config = await loadDemoConfig();

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

const reference = $<HTMLInputElement>("reference");
const storage = $<HTMLSelectElement>("storage");
const tfStorage = $<HTMLSelectElement>("tf-storage");
const status = $("status");
const runButton = $<HTMLButtonElement>("run");
// The default model: with the demo's own layout, the transformer trained on Debian's fortunes
// (scripts/train-lm.py), its bf16 copy; with --registry, the given one.
reference.value = new URLSearchParams(location.search).get("ref") ?? config.reference;
storage.value = new URLSearchParams(location.search).get("store") ?? "opfs";

const stores: Record<string, () => Store> = {
  opfs: () => createOpfsStore("demo"),
  idb: () => createIdbStore("demo"),
  memory: () => memory,
};
const memory = createMemoryStore();
/** What runs the pulled model: the language model, or the char-level MLP of the first demo. */
type Runner =
  | { kind: "lm"; gpu: TransformerGpu; tokenizer: CharTokenizer }
  | { kind: "char-mlp"; gpu: CharMlpGpu };
let runner: Runner | undefined;
const currentStore = (): Store => (stores[storage.value] ?? (() => memory))();

function setStatus(text: string, kind: "" | "ready" | "error" = "") {
  status.textContent = text;
  status.className = kind;
}

const layers = new LayerTable({
  body: $("layers").querySelector("tbody") as HTMLElement,
  totalState: $("total-state"),
  totalBar: $<HTMLProgressElement>("total-bar"),
  totalBytes: $("total-bytes"),
});

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
  const options = { store, proxy: config.proxy };
  runButton.disabled = true;
  if (runner?.kind === "lm") runner.gpu.destroy();
  runner = undefined;
  try {
    setStatus("resolving…");
    layers.show(await inspectModel(ref, { proxy: config.proxy }));
    // The model card comes before any weight: a config-only pull and the tensor headers by Range.
    const stored = await openModel(ref, { store }).catch(() => undefined);
    const early = stored?.complete ? stored : await pullModel(ref, { ...options, weights: false });
    showCard(
      early,
      stored?.complete ? await stored.tensorIndex() : await remoteTensorIndex(ref, { proxy: config.proxy }),
    );
    setStatus("downloading and verifying…");
    const model = await pullModel(ref, { ...options, onProgress: layers.onEvent });
    showCard(model, await model.tensorIndex());
    const modelType = (model.config as { model_type?: unknown } | undefined)?.model_type;
    if (modelType === "char-mlp") {
      setStatus("uploading to WebGPU…");
      const gpu = await CharMlpGpu.create(model);
      runner = { kind: "char-mlp", gpu };
      $("gpu-info").textContent =
        `${gpu.info.adapter} — maxBufferSize ${mib(gpu.info.maxBufferSize)}, maxStorageBufferBindingSize ${mib(gpu.info.maxStorageBufferBindingSize)}; bf16 copy widened on the GPU differs from f32 by at most ${gpu.bf16Difference.toExponential(2)}`;
    } else {
      let tokenizer: CharTokenizer | undefined;
      let reason = unsupportedReason(model.config);
      if (!reason) {
        try {
          tokenizer = new CharTokenizer(await model.file("tokenizer.json").json());
        } catch (error) {
          reason = error instanceof Error ? error.message : String(error);
        }
      }
      if (reason || !tokenizer) {
        // A healthy pull of a model this page has no kernels for: say so, no failure.
        showControls(undefined);
        $("gpu-info").textContent =
          `This page runs only its own architectures (a GPT-2-style transformer with a character vocabulary, and the character MLP): ${reason}. The model is pulled, verified and stored; its card, files and tensors are above.`;
        setStatus(`ready: ${model.reference} stored in ${storage.value}; not run here (${reason})`, "ready");
        return;
      }
      setStatus("uploading to WebGPU…");
      const gpu = await TransformerGpu.create(model);
      runner = { kind: "lm", gpu, tokenizer };
      const c = gpu.config;
      $("gpu-info").textContent =
        `${gpu.adapter} — ${c.n_layer} layers, ${c.n_head} heads, width ${c.n_embd}, context ${c.n_positions}, vocabulary ${c.vocab_size}; weights from uploadToGPU (bf16 widened to f32 on the GPU)`;
    }
    showControls(runner.kind);
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

/** The language model's controls (prompt, temperature, top-k) or the MLP's (words). */
function showControls(kind: Runner["kind"] | undefined) {
  $("prompt-box").hidden = kind === "char-mlp";
  $("sampling").hidden = kind === "char-mlp";
  $("count-label").textContent = kind === "char-mlp" ? "Words" : "Tokens";
}

async function run() {
  if (!runner) return;
  runButton.disabled = true;
  const output = $("output");
  const speed = $("speed");
  delete output.dataset.done;
  const count = Number($<HTMLInputElement>("count").value);
  const seed = Number($<HTMLInputElement>("seed").value) || 0;
  try {
    if (runner.kind === "char-mlp") {
      const result = await runner.gpu.generate(count || 12, seed);
      output.textContent = result.words.join(" ");
      speed.textContent = `${result.tokens} tokens at ${result.perSecond.toFixed(0)} tokens/s`;
    } else {
      // Tokens stream in as each is read back from the GPU.
      const { gpu, tokenizer } = runner;
      output.textContent = "";
      speed.textContent = "";
      const started = performance.now();
      let tokens = 0;
      let text = "";
      for await (const step of gpu.generate(tokenizer.encode($<HTMLTextAreaElement>("prompt").value), {
        maxTokens: count || 120,
        temperature: Number($<HTMLInputElement>("temperature").value),
        topK: Number($<HTMLInputElement>("top-k").value) || 40,
        seed,
        stop: tokenizer.eot,
      })) {
        tokens++;
        text += tokenizer.decode([step.token]);
        output.textContent = text;
        speed.textContent = `${tokens} tokens at ${(tokens / ((performance.now() - started) / 1000)).toFixed(1)} tokens/s`;
      }
    }
    output.dataset.done = "true";
  } finally {
    runButton.disabled = false;
  }
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
storage.addEventListener("change", () => {
  tfStorage.value = storage.value;
  void refreshCache();
});
void refreshCache();

// The tabs: WebGPU (the default) and transformers.js, whose module is imported when first opened.
// Both use the page's store: the transformers.js tab's Storage select is the same choice.
tfStorage.value = storage.value;
$<HTMLInputElement>("tf-reference").value =
  new URLSearchParams(location.search).get("bert") ?? config.transformers;
tfStorage.addEventListener("change", () => {
  storage.value = tfStorage.value;
  void refreshCache();
});
let transformersTab: Promise<{ lastRun(): TransformersRun | undefined } | undefined> | undefined;
function openTransformersTab() {
  transformersTab ??= import("./transformers-tab.js").then(
    (tab) =>
      tab.initTransformersTab({
        store: currentStore,
        storageName: () => storage.value,
        proxy: config.proxy,
        onStored: () => void refreshCache().catch(() => {}),
      }),
    (error: unknown) => {
      $("tf-status").textContent =
        `failed to load transformers.js — ${error instanceof Error ? error.message : String(error)}`;
      $("tf-status").className = "status error";
      return undefined;
    },
  );
}
const tabs = [...document.querySelectorAll<HTMLButtonElement>("[role=tab]")];
function selectTab(tab: HTMLButtonElement, focus = false) {
  for (const t of tabs) {
    const selected = t === tab;
    t.setAttribute("aria-selected", String(selected));
    t.tabIndex = selected ? 0 : -1;
    $(t.getAttribute("aria-controls") ?? "").hidden = !selected;
  }
  if (focus) tab.focus();
  if (tab.id === "tab-transformers") openTransformersTab();
  const hash = tab.id === "tab-transformers" ? "#transformers" : "";
  if (location.hash !== hash) history.replaceState(null, "", `${location.pathname}${location.search}${hash}`);
}
tabs.forEach((tab, i) => {
  tab.addEventListener("click", () => selectTab(tab));
  tab.addEventListener("keydown", (e) => {
    const step = e.key === "ArrowRight" ? 1 : e.key === "ArrowLeft" ? -1 : 0;
    if (step) selectTab(tabs[(i + step + tabs.length) % tabs.length] as HTMLButtonElement, true);
  });
});
if (location.hash === "#transformers") selectTab($<HTMLButtonElement>("tab-transformers"));

/**
 * For the end-to-end tests: the character MLP's logits for a context; the language model's token ids
 * and the logits of its first steps; the transformers.js tab's last run.
 */
(window as unknown as { demo: unknown }).demo = {
  logits: (context: number[]) =>
    runner?.kind === "char-mlp" ? runner.gpu.logits(context).then((l) => Array.from(l)) : undefined,
  lm: async (
    prompt: string,
    options: { maxTokens: number; temperature: number; topK: number; seed: number; logitsSteps?: number },
  ) => {
    if (runner?.kind !== "lm") throw new Error("no language model loaded");
    const { gpu, tokenizer } = runner;
    const ids: number[] = [];
    const logits: number[][] = [];
    for await (const step of gpu.generate(tokenizer.encode(prompt), { ...options, stop: tokenizer.eot })) {
      ids.push(step.token);
      if (step.logits) logits.push(Array.from(step.logits));
    }
    return { promptIds: tokenizer.encode(prompt), ids, logits };
  },
  transformers: async () => (await transformersTab)?.lastRun(),
};
