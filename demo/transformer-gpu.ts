// A GPT-2-style decoder-only transformer on WebGPU: WGSL kernels for the embedding, layer norm,
// attention over a KV cache, the MLP, the tied LM head and sampling (temperature, top-k, seeded).
// One token per step, batch 1; the weights are the buffers `uploadToGPU` made (BF16/F16 widened to
// F32 on the GPU). Web APIs only.
import { type Model, requestModelDevice, uploadToGPU } from "../src/index.js";

/** The keys of GPT-2's config.json this runs on. */
export interface GptConfig {
  vocab_size: number;
  n_positions: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  n_inner?: number | null;
  layer_norm_epsilon?: number;
  activation_function?: string;
  model_type?: string;
}

/** Why this page cannot run a model, or undefined when it can (GPT-2 layout, sizes the kernels take). */
export function unsupportedReason(config: unknown): string | undefined {
  const c = (config ?? {}) as Partial<GptConfig>;
  if (c.model_type !== "gpt2") return `its model_type is ${JSON.stringify(c.model_type)}, not "gpt2"`;
  for (const key of ["vocab_size", "n_positions", "n_embd", "n_layer", "n_head"] as const) {
    if (!Number.isInteger(c[key]) || (c[key] as number) <= 0) return `config.json has no ${key}`;
  }
  const cfg = c as GptConfig;
  if (cfg.n_embd % cfg.n_head !== 0) return "n_embd is not a multiple of n_head";
  if (cfg.n_positions > 256)
    return `its context (${cfg.n_positions}) is over the 256 positions the attention kernel holds`;
  if (cfg.n_embd / cfg.n_head > 256) return "its heads are over 256 wide";
  if (cfg.vocab_size > 256)
    return `its vocabulary (${cfg.vocab_size}) is over the 256 tokens the sampler holds`;
  if (cfg.activation_function && !/^gelu(_new|_pytorch_tanh)?$/.test(cfg.activation_function))
    return `its activation is ${cfg.activation_function}`;
  return undefined;
}

/** The tensor names of a GPT-2 checkpoint with `n_layer` blocks (lm_head tied to wte). */
export function gptTensorNames(nLayer: number): string[] {
  const names = [
    "transformer.wte.weight",
    "transformer.wpe.weight",
    "transformer.ln_f.weight",
    "transformer.ln_f.bias",
  ];
  for (let i = 0; i < nLayer; i++) {
    for (const n of [
      "ln_1.weight",
      "ln_1.bias",
      "attn.c_attn.weight",
      "attn.c_attn.bias",
      "attn.c_proj.weight",
      "attn.c_proj.bias",
      "ln_2.weight",
      "ln_2.bias",
      "mlp.c_fc.weight",
      "mlp.c_fc.bias",
      "mlp.c_proj.weight",
      "mlp.c_proj.bias",
    ])
      names.push(`transformer.h.${i}.${n}`);
  }
  return names;
}

const pow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)));

/** x = wte[token] + wpe[pos]. */
const embedShader = (C: number) => /* wgsl */ `
@group(0) @binding(0) var<storage, read> wte: array<f32>;
@group(0) @binding(1) var<storage, read> wpe: array<f32>;
@group(0) @binding(2) var<storage, read> step: array<u32>;
@group(0) @binding(3) var<storage, read_write> x: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let i = id.x;
  if (i >= ${C}u) { return; }
  x[i] = wte[step[0] * ${C}u + i] + wpe[step[1] * ${C}u + i];
}`;

/** out = (x - mean) / sqrt(var + eps) * gamma + beta, one workgroup. */
const layerNormShader = (C: number, eps: number) => {
  const W = Math.min(256, pow2(C));
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> gamma: array<f32>;
@group(0) @binding(2) var<storage, read> beta: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;
var<workgroup> partial: array<f32, ${W}>;
fn reduce_sum(t: u32) -> f32 {
  for (var s = ${W / 2}u; s > 0u; s = s / 2u) {
    if (t < s) { partial[t] += partial[t + s]; }
    workgroupBarrier();
  }
  let total = partial[0];
  workgroupBarrier();
  return total;
}
@compute @workgroup_size(${W})
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  let t = lid.x;
  var s = 0.0;
  for (var i = t; i < ${C}u; i += ${W}u) { s += x[i]; }
  partial[t] = s;
  workgroupBarrier();
  let mean = reduce_sum(t) / f32(${C});
  var v = 0.0;
  for (var i = t; i < ${C}u; i += ${W}u) { let d = x[i] - mean; v += d * d; }
  partial[t] = v;
  workgroupBarrier();
  let inv = inverseSqrt(reduce_sum(t) / f32(${C}) + ${eps.toExponential()});
  for (var i = t; i < ${C}u; i += ${W}u) { out[i] = (x[i] - mean) * inv * gamma[i] + beta[i]; }
}`;
};

type MatvecMode = "plain" | "gelu" | "residual" | "qkv";

/**
 * y[o] = b[o] + sum_i x[i] W[i, o] for a Conv1D weight [IN, OUT]; then GELU (tanh form), added to
 * the residual stream, or split into q and this position's row of the K and V caches.
 */
const matvecShader = (IN: number, OUT: number, mode: MatvecMode, C: number) => /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> w: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
${
  mode === "qkv"
    ? `@group(0) @binding(4) var<storage, read_write> kcache: array<f32>;
@group(0) @binding(5) var<storage, read_write> vcache: array<f32>;
@group(0) @binding(6) var<storage, read> step: array<u32>;`
    : ""
}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let o = id.x;
  if (o >= ${OUT}u) { return; }
  var s = b[o];
  for (var i = 0u; i < ${IN}u; i++) { s += x[i] * w[i * ${OUT}u + o]; }
  ${
    mode === "plain"
      ? "y[o] = s;"
      : mode === "residual"
        ? "y[o] = y[o] + s;"
        : mode === "gelu"
          ? "let u = clamp(0.7978845608028654 * (s + 0.044715 * s * s * s), -15.0, 15.0);\n  y[o] = 0.5 * s * (1.0 + tanh(u));"
          : `if (o < ${C}u) { y[o] = s; }
  else if (o < ${2 * C}u) { kcache[step[1] * ${C}u + o - ${C}u] = s; }
  else { vcache[step[1] * ${C}u + o - ${2 * C}u] = s; }`
  }
}`;

/** Causal attention of this position's q over the cached k and v, one workgroup per head. */
const attentionShader = (C: number, heads: number, T: number) => {
  const hd = C / heads;
  const W = pow2(Math.max(T, hd));
  return /* wgsl */ `
@group(0) @binding(0) var<storage, read> q: array<f32>;
@group(0) @binding(1) var<storage, read> kcache: array<f32>;
@group(0) @binding(2) var<storage, read> vcache: array<f32>;
@group(0) @binding(3) var<storage, read> step: array<u32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
var<workgroup> p: array<f32, ${W}>;
var<workgroup> partial: array<f32, ${W}>;
@compute @workgroup_size(${W})
fn main(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) gid: vec3<u32>) {
  let t = lid.x;
  let h = gid.x;
  let pos = step[1];
  var score = -3.0e38;
  if (t <= pos) {
    var s = 0.0;
    for (var d = 0u; d < ${hd}u; d++) { s += q[h * ${hd}u + d] * kcache[t * ${C}u + h * ${hd}u + d]; }
    score = s * ${(1 / Math.sqrt(hd)).toPrecision(17)};
  }
  partial[t] = score;
  workgroupBarrier();
  for (var s = ${W / 2}u; s > 0u; s = s / 2u) {
    if (t < s) { partial[t] = max(partial[t], partial[t + s]); }
    workgroupBarrier();
  }
  let top = partial[0];
  workgroupBarrier();
  var e = 0.0;
  if (t <= pos) { e = exp(score - top); }
  p[t] = e;
  partial[t] = e;
  workgroupBarrier();
  for (var s = ${W / 2}u; s > 0u; s = s / 2u) {
    if (t < s) { partial[t] += partial[t + s]; }
    workgroupBarrier();
  }
  let total = partial[0];
  if (t < ${hd}u) {
    var acc = 0.0;
    for (var j = 0u; j <= pos; j++) { acc += p[j] * vcache[j * ${C}u + h * ${hd}u + t]; }
    out[h * ${hd}u + t] = acc / total;
  }
}`;
};

/** logits[v] = sum_i x[i] wte[v, i]: the LM head tied to the token embedding. */
const lmHeadShader = (C: number, V: number) => /* wgsl */ `
@group(0) @binding(0) var<storage, read> x: array<f32>;
@group(0) @binding(1) var<storage, read> wte: array<f32>;
@group(0) @binding(2) var<storage, read_write> logits: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) id: vec3<u32>) {
  let v = id.x;
  if (v >= ${V}u) { return; }
  var s = 0.0;
  for (var i = 0u; i < ${C}u; i++) { s += x[i] * wte[v * ${C}u + i]; }
  logits[v] = s;
}`;

/**
 * Picks the next token: the top-k logits (ties to the lower id) softmaxed at the temperature, and the
 * token where the cumulative probability, in rank order, passes u; greedy (rank 0) when the temperature
 * is 0 or k is 1.
 */
const sampleShader = (V: number) => {
  const W = pow2(V);
  return /* wgsl */ `
struct Params { temperature: f32, top_k: u32, u: f32, pad: u32 }
@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<uniform> params: Params;
@group(0) @binding(2) var<storage, read_write> chosen: array<u32>;
var<workgroup> by_rank: array<u32, ${W}>;
var<workgroup> prob: array<f32, ${W}>;
var<workgroup> best: f32;
@compute @workgroup_size(${W})
fn main(@builtin(local_invocation_id) lid: vec3<u32>) {
  let i = lid.x;
  if (i < ${V}u) {
    let l = logits[i];
    var rank = 0u;
    for (var j = 0u; j < ${V}u; j++) {
      let m = logits[j];
      if (m > l || (m == l && j < i)) { rank++; }
    }
    by_rank[rank] = i;
    if (rank == 0u) { best = l; }
  }
  workgroupBarrier();
  let greedy = params.temperature <= 0.0 || params.top_k <= 1u;
  let k = min(max(params.top_k, 1u), ${V}u);
  if (i < ${V}u) { prob[i] = exp((logits[i] - best) / max(params.temperature, 1e-6)); }
  workgroupBarrier();
  if (i == 0u) {
    if (greedy) { chosen[0] = by_rank[0]; return; }
    var total = 0.0;
    for (var r = 0u; r < k; r++) { total += prob[by_rank[r]]; }
    let goal = params.u * total;
    var acc = 0.0;
    var pick = by_rank[k - 1u];
    for (var r = 0u; r < k; r++) {
      acc += prob[by_rank[r]];
      if (goal < acc) { pick = by_rank[r]; break; }
    }
    chosen[0] = pick;
  }
}`;
};

export interface SampleOptions {
  /** 0 (or topK 1) is greedy. */
  temperature: number;
  topK: number;
  /** Seeds the uniform draws (mulberry32), one per generated token. */
  seed: number;
}

/** Deterministic PRNG (mulberry32), the same the CPU reference would use. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

interface Dispatch {
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  groups: number;
}

export interface GenerateStep {
  token: number;
  /** The logits the token was drawn from, when asked for. */
  logits?: Float32Array;
}

export class TransformerGpu {
  readonly config: GptConfig;
  readonly device: GPUDevice;
  readonly adapter: string;
  readonly #layers: Dispatch[];
  readonly #head: Dispatch[];
  readonly #step: GPUBuffer;
  readonly #params: GPUBuffer;
  readonly #logits: GPUBuffer;
  readonly #chosen: GPUBuffer;
  readonly #readToken: GPUBuffer;
  readonly #readLogits: GPUBuffer;
  readonly #owned: GPUBuffer[];
  #busy: Promise<unknown> = Promise.resolve();

  private constructor(
    device: GPUDevice,
    adapter: string,
    config: GptConfig,
    weights: Map<string, GPUBuffer>,
  ) {
    this.device = device;
    this.adapter = adapter;
    this.config = config;
    const C = config.n_embd;
    const V = config.vocab_size;
    const T = config.n_positions;
    const inner = config.n_inner ?? 4 * C;
    const eps = config.layer_norm_epsilon ?? 1e-5;
    const storage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
    const owned: GPUBuffer[] = [];
    const buffer = (label: string, floats: number, usage = storage) => {
      const b = device.createBuffer({ label, size: Math.max(16, floats * 4), usage });
      owned.push(b);
      return b;
    };
    this.#step = buffer("step", 4);
    this.#params = buffer("sample params", 4, GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST);
    const x = buffer("x", C);
    const xn = buffer("xn", C);
    const q = buffer("q", C);
    const att = buffer("att", C);
    const h = buffer("mlp", inner);
    this.#logits = buffer("logits", V);
    this.#chosen = buffer("chosen", 1);
    this.#readToken = buffer("read token", 4, GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ);
    this.#readLogits = buffer("read logits", V, GPUBufferUsage.COPY_DST | GPUBufferUsage.MAP_READ);

    const pipelines = new Map<string, GPUComputePipeline>();
    const pipeline = (code: string) => {
      let p = pipelines.get(code);
      if (!p) {
        p = device.createComputePipeline({
          layout: "auto",
          compute: { module: device.createShaderModule({ code }), entryPoint: "main" },
        });
        pipelines.set(code, p);
      }
      return p;
    };
    const w = (name: string) => {
      const b = weights.get(name);
      if (!b) throw new Error(`the model has no tensor ${name}`);
      return b;
    };
    const dispatch = (code: string, buffers: GPUBuffer[], groups: number): Dispatch => {
      const p = pipeline(code);
      return {
        pipeline: p,
        groups,
        bindGroup: device.createBindGroup({
          layout: p.getBindGroupLayout(0),
          entries: buffers.map((b, binding) => ({ binding, resource: { buffer: b } })),
        }),
      };
    };
    const groups = (n: number) => Math.ceil(n / 64);

    const layers: Dispatch[] = [
      dispatch(
        embedShader(C),
        [w("transformer.wte.weight"), w("transformer.wpe.weight"), this.#step, x],
        groups(C),
      ),
    ];
    for (let l = 0; l < config.n_layer; l++) {
      const p = `transformer.h.${l}.`;
      const kcache = buffer(`k cache ${l}`, T * C);
      const vcache = buffer(`v cache ${l}`, T * C);
      layers.push(
        dispatch(layerNormShader(C, eps), [x, w(`${p}ln_1.weight`), w(`${p}ln_1.bias`), xn], 1),
        dispatch(
          matvecShader(C, 3 * C, "qkv", C),
          [xn, w(`${p}attn.c_attn.weight`), w(`${p}attn.c_attn.bias`), q, kcache, vcache, this.#step],
          groups(3 * C),
        ),
        dispatch(attentionShader(C, config.n_head, T), [q, kcache, vcache, this.#step, att], config.n_head),
        dispatch(
          matvecShader(C, C, "residual", C),
          [att, w(`${p}attn.c_proj.weight`), w(`${p}attn.c_proj.bias`), x],
          groups(C),
        ),
        dispatch(layerNormShader(C, eps), [x, w(`${p}ln_2.weight`), w(`${p}ln_2.bias`), xn], 1),
        dispatch(
          matvecShader(C, inner, "gelu", C),
          [xn, w(`${p}mlp.c_fc.weight`), w(`${p}mlp.c_fc.bias`), h],
          groups(inner),
        ),
        dispatch(
          matvecShader(inner, C, "residual", C),
          [h, w(`${p}mlp.c_proj.weight`), w(`${p}mlp.c_proj.bias`), x],
          groups(C),
        ),
      );
    }
    this.#layers = layers;
    this.#head = [
      dispatch(layerNormShader(C, eps), [x, w("transformer.ln_f.weight"), w("transformer.ln_f.bias"), xn], 1),
      dispatch(lmHeadShader(C, V), [xn, w("transformer.wte.weight"), this.#logits], groups(V)),
      dispatch(sampleShader(V), [this.#logits, this.#params, this.#chosen], 1),
    ];
    this.#owned = [...owned, ...weights.values()];
  }

  /**
   * Uploads a pulled GPT-2-style model (BF16/F16 widened to F32 on the GPU) and builds the pipelines.
   * `INVALID_CHECKPOINT` from `uploadToGPU` when a tensor is missing.
   */
  static async create(
    model: Model,
    options: { device?: GPUDevice; onProgress?: (loaded: number, total: number) => void } = {},
  ): Promise<TransformerGpu> {
    const reason = unsupportedReason(model.config);
    if (reason) throw new Error(`This page runs GPT-2-style models only: ${reason}.`);
    const config = model.config as unknown as GptConfig;
    let device = options.device;
    let adapterName = "the given device";
    if (!device) {
      if (!("gpu" in navigator)) throw new Error("This browser has no WebGPU (navigator.gpu is missing).");
      const adapter = await navigator.gpu.requestAdapter();
      if (!adapter) throw new Error("WebGPU is present but no adapter was found.");
      device = await requestModelDevice(adapter);
      const info = adapter.info as GPUAdapterInfo | undefined;
      adapterName =
        [info?.vendor, info?.architecture, info?.description].filter(Boolean).join(" ") || "unknown adapter";
    }
    const expected = gptTensorNames(config.n_layer);
    const weights = await uploadToGPU(device, model, {
      convert: true,
      filter: (t) => expected.includes(t.name),
      expected,
      onProgress: (p) => options.onProgress?.(p.loaded, p.total),
    });
    return new TransformerGpu(device, adapterName, config, weights);
  }

  /** Runs one position: the token at `pos`; with `sample`, the head and the sampler too. */
  #encode(
    token: number,
    pos: number,
    sample?: { temperature: number; topK: number; u: number },
    logits = false,
  ) {
    const device = this.device;
    device.queue.writeBuffer(this.#step, 0, new Uint32Array([token, pos, 0, 0]));
    if (sample) {
      const params = new ArrayBuffer(16);
      new Float32Array(params, 0, 1)[0] = sample.temperature;
      new Uint32Array(params, 4, 1)[0] = sample.topK;
      new Float32Array(params, 8, 1)[0] = sample.u;
      device.queue.writeBuffer(this.#params, 0, params);
    }
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    for (const d of sample ? [...this.#layers, ...this.#head] : this.#layers) {
      pass.setPipeline(d.pipeline);
      pass.setBindGroup(0, d.bindGroup);
      pass.dispatchWorkgroups(d.groups);
    }
    pass.end();
    if (sample) {
      encoder.copyBufferToBuffer(this.#chosen, 0, this.#readToken, 0, 4);
      if (logits)
        encoder.copyBufferToBuffer(this.#logits, 0, this.#readLogits, 0, this.config.vocab_size * 4);
    }
    device.queue.submit([encoder.finish()]);
  }

  async #read(logits: boolean): Promise<GenerateStep> {
    await this.#readToken.mapAsync(GPUMapMode.READ);
    const token = new Uint32Array(this.#readToken.getMappedRange().slice(0, 4))[0] as number;
    this.#readToken.unmap();
    if (!logits) return { token };
    await this.#readLogits.mapAsync(GPUMapMode.READ);
    const values = new Float32Array(this.#readLogits.getMappedRange().slice(0, this.config.vocab_size * 4));
    this.#readLogits.unmap();
    return { token, logits: values };
  }

  /**
   * Feeds the prompt's token ids (the KV cache is rebuilt from position 0) and generates up to
   * `maxTokens` tokens, one per step, yielding each as soon as it is read back; stops at `stop` (e.g. the
   * end-of-text id) or at the context's end. `logitsSteps`: how many of the first steps also yield the
   * logits they were drawn from.
   */
  async *generate(
    prompt: number[],
    options: SampleOptions & { maxTokens: number; stop?: number; logitsSteps?: number },
  ): AsyncGenerator<GenerateStep> {
    if (prompt.length === 0) throw new Error("the prompt needs at least one token");
    if (prompt.some((t) => !Number.isInteger(t) || t < 0 || t >= this.config.vocab_size))
      throw new Error("a prompt token is outside the vocabulary");
    const release = this.#busy;
    let done!: () => void;
    this.#busy = new Promise<void>((r) => {
      done = r;
    });
    await release;
    try {
      const T = this.config.n_positions;
      const draw = mulberry32(options.seed);
      const ids = prompt.slice(-T);
      for (let pos = 0; pos < ids.length - 1; pos++) this.#encode(ids[pos] as number, pos);
      let token = ids.at(-1) as number;
      let pos = ids.length - 1;
      for (let n = 0; n < options.maxTokens && pos < T; n++, pos++) {
        const wantLogits = n < (options.logitsSteps ?? 0);
        this.#encode(
          token,
          pos,
          { temperature: options.temperature, topK: options.topK, u: draw() },
          wantLogits,
        );
        const step = await this.#read(wantLogits);
        yield step;
        token = step.token;
        if (token === options.stop) break;
      }
    } finally {
      done();
    }
  }

  destroy() {
    for (const b of this.#owned) b.destroy();
  }
}
