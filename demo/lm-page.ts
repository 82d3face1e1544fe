// A page of its own for the demo language model: pull → verify → store → uploadToGPU → generate on
// WebGPU, tokens streaming in with tokens/s. Used by test/integration/demo-lm.test.ts.
import {
  createIdbStore,
  createMemoryStore,
  createOpfsStore,
  isOciError,
  openModel,
  pullModel,
  type Store,
} from "../src/index.js";
import { CharTokenizer } from "./char-tokenizer.js";
import { loadDemoConfig } from "./config.js";
import { TransformerGpu } from "./transformer-gpu.js";

const config = await loadDemoConfig();

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const params = new URLSearchParams(location.search);
const reference = $<HTMLInputElement>("lm-reference");
const storage = $<HTMLSelectElement>("lm-storage");
const status = $("lm-status");
const runButton = $<HTMLButtonElement>("lm-run");
// The bf16 copy, Docker model-spec v0.1 (npm run demo:pack-lm also writes lm-f32 and the ModelPack tags).
reference.value = params.get("ref") ?? config.reference;
storage.value = params.get("store") ?? "opfs";

const memory = createMemoryStore();
const stores: Record<string, () => Store> = {
  opfs: () => createOpfsStore("demo"),
  idb: () => createIdbStore("demo"),
  memory: () => memory,
};
let loaded: { gpu: TransformerGpu; tokenizer: CharTokenizer } | undefined;

function setStatus(text: string, kind: "" | "ready" | "error" = "") {
  status.textContent = text;
  status.className = kind;
}

async function pull(event: SubmitEvent) {
  event.preventDefault();
  runButton.disabled = true;
  loaded?.gpu.destroy();
  loaded = undefined;
  const ref = reference.value.trim();
  const store = (stores[storage.value] ?? (() => memory))();
  try {
    setStatus("downloading and verifying…");
    const stored = await openModel(ref, { store }).catch(() => undefined);
    const model = stored?.complete ? stored : await pullModel(ref, { store, proxy: config.proxy });
    setStatus("uploading to WebGPU…");
    const tokenizer = new CharTokenizer(await model.file("tokenizer.json").json());
    const gpu = await TransformerGpu.create(model);
    loaded = { gpu, tokenizer };
    const c = gpu.config;
    $("lm-gpu-info").textContent =
      `${gpu.adapter}: ${c.n_layer} layers, ${c.n_head} heads, width ${c.n_embd}, context ${c.n_positions}, vocabulary ${c.vocab_size}`;
    runButton.disabled = false;
    setStatus(`ready: ${model.reference} stored in ${storage.value} and loaded on the GPU`, "ready");
  } catch (error) {
    const message = isOciError(error)
      ? `${error.code}: ${error.message}`
      : error instanceof Error
        ? error.message
        : String(error);
    setStatus(`failed — ${message}`, "error");
  }
}

async function run() {
  if (!loaded) return;
  const { gpu, tokenizer } = loaded;
  runButton.disabled = true;
  const output = $("lm-output");
  const speed = $("lm-speed");
  output.textContent = "";
  const prompt = $<HTMLTextAreaElement>("lm-prompt").value;
  const ids = tokenizer.encode(prompt);
  const started = performance.now();
  let tokens = 0;
  let text = "";
  try {
    for await (const step of gpu.generate(ids, {
      maxTokens: Number($<HTMLInputElement>("lm-tokens").value) || 100,
      temperature: Number($<HTMLInputElement>("lm-temperature").value),
      topK: Number($<HTMLInputElement>("lm-top-k").value) || 40,
      seed: Number($<HTMLInputElement>("lm-seed").value) || 0,
      stop: tokenizer.eot,
    })) {
      tokens++;
      text += tokenizer.decode([step.token]);
      output.textContent = text;
      speed.textContent = `${tokens} tokens at ${(tokens / ((performance.now() - started) / 1000)).toFixed(1)} tokens/s`;
    }
    output.dataset.done = "true";
  } finally {
    runButton.disabled = false;
  }
}

$("lm-pull-form").addEventListener("submit", (e) => void pull(e as SubmitEvent));
runButton.addEventListener("click", () => {
  delete $("lm-output").dataset.done;
  void run();
});

/** For the end-to-end test: token ids and the logits of the first steps, straight from the GPU. */
(window as unknown as { lm: unknown }).lm = {
  generate: async (
    prompt: string,
    options: { maxTokens: number; temperature: number; topK: number; seed: number; logitsSteps?: number },
  ) => {
    if (!loaded) throw new Error("no model loaded");
    const ids: number[] = [];
    const logits: number[][] = [];
    for await (const step of loaded.gpu.generate(loaded.tokenizer.encode(prompt), {
      ...options,
      stop: loaded.tokenizer.eot,
    })) {
      ids.push(step.token);
      if (step.logits) logits.push(Array.from(step.logits));
    }
    return { promptIds: loaded.tokenizer.encode(prompt), ids, logits };
  },
};
