// ModelPack and KitOps artifacts with tar+zstd layers, compressed by the real zstd CLI (Debian's zstd,
// installed by scripts/setup.sh). Node only.
import { execFileSync } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { gzipSync } from "node:zlib";
import { buildManifest } from "./layout.js";
import { type ModelFixture, tarOf } from "./models.js";

const text = (value: unknown) =>
  new TextEncoder().encode(typeof value === "string" ? value : JSON.stringify(value));

/** `input` compressed by `zstd -q -c` with `args`. */
export function zstdCli(input: Uint8Array, ...args: string[]): Uint8Array {
  return new Uint8Array(execFileSync("zstd", ["-q", "-c", ...args], { input, maxBuffer: 1 << 30 }));
}

/** Compressible bytes (a weight-like file zstd shrinks): repeated text with random bytes mixed in. */
function weightBytes(size: number): Uint8Array {
  const out = randomBytes(size);
  for (let i = 0; i < size; i++) if (i % 4) out[i] = 65 + (i % 23);
  return new Uint8Array(out);
}

/** CNCF ModelPack: weights in a tar+zstd (two frames), config and tokenizer in another. */
export async function modelPackTarZstd(): Promise<ModelFixture> {
  const weights = {
    "model-00001-of-00002.safetensors": weightBytes(300_000),
    "model-00002-of-00002.safetensors": weightBytes(200_000),
  };
  const config = {
    "config.json": text({ architectures: ["TinyForCausalLM"], hidden_size: 8 }),
    "tokenizer/vocab.txt": text("a\nb\nc\n"),
  };
  const weightsTar = await tarOf(weights);
  const half = 250_000;
  const twoFrames = new Uint8Array([
    ...zstdCli(weightsTar.subarray(0, half), "-19"),
    ...zstdCli(weightsTar.subarray(half)),
  ]);
  const artifact = buildManifest({
    artifactType: "application/vnd.cncf.model.manifest.v1+json",
    config: {
      mediaType: "application/vnd.cncf.model.config.v1+json",
      bytes: text({ config: { format: "safetensors" } }),
    },
    layers: [
      { mediaType: "application/vnd.cncf.model.weight.v1.tar+zstd", bytes: twoFrames },
      {
        mediaType: "application/vnd.cncf.model.weight.config.v1.tar+zstd",
        bytes: zstdCli(await tarOf(config)),
      },
    ],
  });
  return { artifact, files: { ...weights, ...config }, weights: Object.keys(weights) };
}

/** KitOps ModelKit with its model and docs as tar+zstd layers. */
export async function kitOpsTarZstd(): Promise<ModelFixture> {
  const model = {
    "model/model.safetensors": weightBytes(250_000),
    "model/config.json": text({ architectures: ["TinyForCausalLM"] }),
  };
  const docs = { "README.md": text("kit\n") };
  const artifact = buildManifest({
    config: {
      mediaType: "application/vnd.kitops.modelkit.config.v1+json",
      bytes: text({ manifestVersion: "1.0", package: { name: "tiny" } }),
    },
    layers: [
      {
        mediaType: "application/vnd.kitops.modelkit.model.v1.tar+zstd",
        bytes: zstdCli(await tarOf(model), "-3"),
      },
      { mediaType: "application/vnd.kitops.modelkit.docs.v1.tar+zstd", bytes: zstdCli(await tarOf(docs)) },
    ],
  });
  return { artifact, files: { ...model, ...docs }, weights: ["model/model.safetensors"] };
}

/**
 * KitOps ModelKit whose raw layers are each one file compressed as a whole: the model a GGUF file
 * (`model.v1.raw+zstd`), a LoRA part `raw+gzip`, the docs plain `raw`, and a dataset `raw+gzip`
 * without a path annotation (named by its layer's digest).
 */
export function kitOpsRawCompressed(gguf: Uint8Array): ModelFixture {
  const adapter = weightBytes(40_000);
  const readme = text("# kit\n");
  const csv = text("x,y\n1,2\n".repeat(200));
  const path = (p: string) => ({ "org.cncf.model.filepath": p });
  const dataset = gzipSync(csv);
  const artifact = buildManifest({
    artifactType: "application/vnd.kitops.modelkit.manifest.v1+json",
    config: {
      mediaType: "application/vnd.kitops.modelkit.config.v1+json",
      bytes: text({ manifestVersion: "1.0", package: { name: "tiny" }, model: { path: "model.gguf" } }),
    },
    layers: [
      {
        mediaType: "application/vnd.kitops.modelkit.model.v1.raw+zstd",
        bytes: zstdCli(gguf),
        annotations: path("model.gguf"),
      },
      {
        mediaType: "application/vnd.kitops.modelkit.modelpart.v1.raw+gzip",
        bytes: gzipSync(adapter),
        annotations: path("lora/adapter.safetensors"),
      },
      {
        mediaType: "application/vnd.kitops.modelkit.docs.v1.raw",
        bytes: readme,
        annotations: path("README.md"),
      },
      { mediaType: "application/vnd.kitops.modelkit.dataset.v1.raw+gzip", bytes: dataset },
    ],
  });
  const datasetName = `sha256-${createHash("sha256").update(dataset).digest("hex")}`;
  return {
    artifact,
    files: {
      "model.gguf": gguf,
      "lora/adapter.safetensors": adapter,
      "README.md": readme,
      [datasetName]: csv,
    },
    weights: ["model.gguf"],
  };
}
