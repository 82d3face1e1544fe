// The demo model: a character-level MLP (Bengio et al. 2003) over "." + a–z. Shared by the page,
// the training script and the CPU reference in the tests. Web APIs only.

export const VOCAB = [".", ..."abcdefghijklmnopqrstuvwxyz"];
export const CONTEXT = 3;
export const EMBED = 16;
export const HIDDEN = 96;
export const V = VOCAB.length;

/** The model's weights as flat row-major arrays. */
export interface CharMlpWeights {
  /** [V, EMBED] */
  embed: Float32Array;
  /** [CONTEXT * EMBED, HIDDEN] */
  hiddenWeight: Float32Array;
  /** [HIDDEN] */
  hiddenBias: Float32Array;
  /** [HIDDEN, V] */
  outWeight: Float32Array;
  /** [V] */
  outBias: Float32Array;
}

export const TENSOR_NAMES = {
  embed: "embed.weight",
  hiddenWeight: "hidden.weight",
  hiddenBias: "hidden.bias",
  outWeight: "out.weight",
  outBias: "out.bias",
} as const;

/** Deterministic PRNG (mulberry32): the same seed gives the same words on CPU and GPU. */
export function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** CPU forward pass: logits for the next character after a context of CONTEXT token ids. */
export function forward(w: CharMlpWeights, context: number[]): Float32Array {
  const hidden = new Float32Array(HIDDEN);
  for (let j = 0; j < HIDDEN; j++) {
    let s = w.hiddenBias[j] as number;
    for (let c = 0; c < CONTEXT; c++) {
      for (let e = 0; e < EMBED; e++) {
        s +=
          (w.embed[(context[c] as number) * EMBED + e] as number) *
          (w.hiddenWeight[(c * EMBED + e) * HIDDEN + j] as number);
      }
    }
    hidden[j] = Math.tanh(s);
  }
  const logits = new Float32Array(V);
  for (let v = 0; v < V; v++) {
    let o = w.outBias[v] as number;
    for (let k = 0; k < HIDDEN; k++) o += (hidden[k] as number) * (w.outWeight[k * V + v] as number);
    logits[v] = o;
  }
  return logits;
}

/** Samples a token from logits with a uniform draw `u` in [0, 1). */
export function sample(logits: Float32Array, u: number, temperature = 1): number {
  const max = Math.max(...logits);
  const weights = Array.from(logits, (l) => Math.exp((l - max) / temperature));
  const total = weights.reduce((a, b) => a + b, 0);
  let acc = 0;
  for (let i = 0; i < weights.length; i++) {
    acc += (weights[i] as number) / total;
    if (u < acc) return i;
  }
  return weights.length - 1;
}

/**
 * Generates `count` words, each from an empty context until "." comes (or 20 characters), with
 * `next(context)` giving logits (the CPU forward pass, or the GPU).
 */
export async function generate(
  next: (context: number[]) => Float32Array | Promise<Float32Array>,
  count: number,
  seed: number,
): Promise<{ words: string[]; tokens: number }> {
  const draw = random(seed);
  const words: string[] = [];
  let tokens = 0;
  for (let n = 0; n < count; n++) {
    const context = new Array<number>(CONTEXT).fill(0);
    let word = "";
    for (let i = 0; i < 20; i++) {
      const token = sample(await next(context), draw());
      tokens++;
      if (token === 0) break;
      word += VOCAB[token];
      context.shift();
      context.push(token);
    }
    words.push(word);
  }
  return { words, tokens };
}
