// An independent CPU reference of the demo model's forward pass (float64 arithmetic), reading the
// weights straight from the committed safetensors file.
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { toFloat32 } from "../../src/index.js";
import { parseHeader } from "../../src/internals.js";

export async function loadReference(): Promise<(context: number[]) => Float32Array> {
  const file = new Uint8Array(
    await readFile(join(import.meta.dirname, "../../demo/model/model.safetensors")),
  );
  const length = new DataView(file.buffer, file.byteOffset).getUint32(0, true);
  const header = parseHeader(file.subarray(8, 8 + length), file.byteLength);
  const tensor = (name: string) => {
    const t = header.tensors.find((x) => x.name === name);
    if (!t) throw new Error(`no ${name}`);
    return { data: toFloat32("F32", file.slice(t.offset, t.offset + t.length)), shape: t.shape };
  };
  const embed = tensor("embed.weight");
  const w1 = tensor("hidden.weight");
  const b1 = tensor("hidden.bias");
  const w2 = tensor("out.weight");
  const b2 = tensor("out.bias");
  const [, dim = 0] = embed.shape;
  const [inputs = 0, hidden = 0] = w1.shape;
  const [, vocab = 0] = w2.shape;
  return (context) => {
    const x = context.flatMap((token) => Array.from(embed.data.subarray(token * dim, (token + 1) * dim)));
    if (x.length !== inputs) throw new Error("context length does not match the model");
    const h = Array.from({ length: hidden }, (_, j) =>
      Math.tanh(x.reduce((s, v, i) => s + v * (w1.data[i * hidden + j] as number), b1.data[j] as number)),
    );
    return Float32Array.from({ length: vocab }, (_, v) =>
      h.reduce((s, hv, k) => s + hv * (w2.data[k * vocab + v] as number), b2.data[v] as number),
    );
  };
}
