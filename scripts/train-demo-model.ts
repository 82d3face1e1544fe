// Trains the demo's character-level MLP on the word list of Debian's `wamerican` package and writes
// demo/model/ (safetensors f32 + a bf16 copy, config.json, vocab.txt). Deterministic for a given
// word list. Then pack it: npm run demo:pack.
//   apt-get install wamerican && npx tsx scripts/train-demo-model.ts
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { CONTEXT, EMBED, HIDDEN, random, TENSOR_NAMES, V, VOCAB } from "../demo/char-mlp.js";
import { bf16Bytes, writeSafetensors } from "../test/support/safetensors.js";

const WORDS = "/usr/share/dict/american-english";
const STEPS = Number(process.env.STEPS ?? 40_000);
const BATCH = 64;
const out = join(import.meta.dirname, "../demo/model");

const words = (
  await readFile(WORDS, "utf8").catch(() => {
    throw new Error(`${WORDS} is missing: apt-get install wamerican`);
  })
)
  .split("\n")
  .filter((w) => /^[a-z]{2,}$/.test(w));
const index = (ch: string) => VOCAB.indexOf(ch);
const contexts: number[][] = [];
const targets: number[] = [];
for (const word of words) {
  const context = new Array<number>(CONTEXT).fill(0);
  for (const ch of `${word}.`) {
    contexts.push([...context]);
    targets.push(index(ch));
    context.shift();
    context.push(index(ch));
  }
}

const rand = random(1234);
const normal = () => Math.sqrt(-2 * Math.log(rand() + 1e-12)) * Math.cos(2 * Math.PI * rand());
const init = (n: number, scale: number) => Float32Array.from({ length: n }, () => normal() * scale);
const IN = CONTEXT * EMBED;
const w = {
  embed: init(V * EMBED, 1),
  hiddenWeight: init(IN * HIDDEN, 5 / 3 / Math.sqrt(IN)),
  hiddenBias: init(HIDDEN, 0.01),
  outWeight: init(HIDDEN * V, 0.01),
  outBias: new Float32Array(V),
};
const g = {
  embed: new Float32Array(w.embed.length),
  hiddenWeight: new Float32Array(w.hiddenWeight.length),
  hiddenBias: new Float32Array(HIDDEN),
  outWeight: new Float32Array(w.outWeight.length),
  outBias: new Float32Array(V),
};

const x = new Float32Array(IN);
const h = new Float32Array(HIDDEN);
const p = new Float32Array(V);
const dh = new Float32Array(HIDDEN);
let smoothed = Math.log(V);
for (let step = 0; step < STEPS; step++) {
  for (const grad of Object.values(g)) grad.fill(0);
  let loss = 0;
  for (let b = 0; b < BATCH; b++) {
    const i = Math.floor(rand() * targets.length);
    const context = contexts[i] as number[];
    const target = targets[i] as number;
    for (let c = 0; c < CONTEXT; c++)
      for (let e = 0; e < EMBED; e++)
        x[c * EMBED + e] = w.embed[(context[c] as number) * EMBED + e] as number;
    for (let j = 0; j < HIDDEN; j++) {
      let s = w.hiddenBias[j] as number;
      for (let k = 0; k < IN; k++) s += (x[k] as number) * (w.hiddenWeight[k * HIDDEN + j] as number);
      h[j] = Math.tanh(s);
    }
    let max = Number.NEGATIVE_INFINITY;
    for (let v = 0; v < V; v++) {
      let o = w.outBias[v] as number;
      for (let k = 0; k < HIDDEN; k++) o += (h[k] as number) * (w.outWeight[k * V + v] as number);
      p[v] = o;
      max = Math.max(max, o);
    }
    let total = 0;
    for (let v = 0; v < V; v++) total += p[v] = Math.exp((p[v] as number) - max);
    for (let v = 0; v < V; v++) p[v] = (p[v] as number) / total;
    loss -= Math.log(p[target] as number);
    p[target] = (p[target] as number) - 1; // dLogits
    dh.fill(0);
    for (let v = 0; v < V; v++) {
      const d = (p[v] as number) / BATCH;
      g.outBias[v] = (g.outBias[v] as number) + d;
      for (let k = 0; k < HIDDEN; k++) {
        g.outWeight[k * V + v] = (g.outWeight[k * V + v] as number) + (h[k] as number) * d;
        dh[k] = (dh[k] as number) + (w.outWeight[k * V + v] as number) * d;
      }
    }
    for (let j = 0; j < HIDDEN; j++) {
      const ds = (dh[j] as number) * (1 - (h[j] as number) ** 2);
      g.hiddenBias[j] = (g.hiddenBias[j] as number) + ds;
      for (let k = 0; k < IN; k++) {
        g.hiddenWeight[k * HIDDEN + j] = (g.hiddenWeight[k * HIDDEN + j] as number) + (x[k] as number) * ds;
        const c = Math.floor(k / EMBED);
        const at = (context[c] as number) * EMBED + (k % EMBED);
        g.embed[at] = (g.embed[at] as number) + (w.hiddenWeight[k * HIDDEN + j] as number) * ds;
      }
    }
  }
  const lr = step < STEPS * 0.75 ? 0.1 : 0.01;
  for (const key of Object.keys(w) as (keyof typeof w)[]) {
    const weights = w[key];
    const grad = g[key];
    for (let i = 0; i < weights.length; i++) weights[i] = (weights[i] as number) - lr * (grad[i] as number);
  }
  smoothed = 0.99 * smoothed + 0.01 * (loss / BATCH);
  if (step % 5000 === 0 || step === STEPS - 1)
    process.stderr.write(`step ${step}: loss ${smoothed.toFixed(3)}\n`);
}

const f32 = (a: Float32Array) => new Uint8Array(a.buffer.slice(0));
const shapes = {
  embed: [V, EMBED],
  hiddenWeight: [IN, HIDDEN],
  hiddenBias: [HIDDEN],
  outWeight: [HIDDEN, V],
  outBias: [V],
};
const keys = Object.keys(shapes) as (keyof typeof shapes)[];
await writeFile(
  join(out, "model.safetensors"),
  writeSafetensors(
    keys.map((k) => ({ name: TENSOR_NAMES[k], dtype: "F32" as const, shape: shapes[k], data: f32(w[k]) })),
    { format: "pt" },
  ),
);
await writeFile(
  join(out, "model-bf16.safetensors"),
  writeSafetensors(
    keys.map((k) => ({
      name: `bf16.${TENSOR_NAMES[k]}`,
      dtype: "BF16" as const,
      shape: shapes[k],
      data: bf16Bytes(Array.from(w[k])),
    })),
  ),
);
await writeFile(
  join(out, "config.json"),
  `${JSON.stringify({ architectures: ["CharMLP"], model_type: "char-mlp", vocab_size: V, context: CONTEXT, embed: EMBED, hidden: HIDDEN, training: { words: words.length, steps: STEPS, batch: BATCH, loss: Number(smoothed.toFixed(4)) } }, null, 2)}\n`,
);
await writeFile(join(out, "vocab.txt"), `${VOCAB.join("\n")}\n`);
process.stderr.write(`wrote ${out} (${words.length} words, final loss ${smoothed.toFixed(3)})\n`);
