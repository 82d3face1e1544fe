// Model artifacts in every format the pull reads, built here and pushed with skopeo.
import { randomBytes } from "node:crypto";
import { gzipSync } from "node:zlib";
import { packTar, type TarEntry } from "modern-tar";
import { type Artifact, buildManifest, type LayerInput } from "./layout.js";

const text = (value: unknown) =>
  new TextEncoder().encode(typeof value === "string" ? value : JSON.stringify(value));
const CONFIG_JSON = { architectures: ["TinyForCausalLM"], hidden_size: 8, vocab_size: 30 };
const TOKENIZER = { model: { type: "WordLevel", vocab: { a: 0, b: 1 } } };

export interface ModelFiles {
  /** Every file the pulled model must have, with its bytes. */
  files: Record<string, Uint8Array>;
  /** Weight files in load order. */
  weights: string[];
}

export interface ModelFixture extends ModelFiles {
  artifact: Artifact;
}

export async function tarOf(files: Record<string, Uint8Array>, extra: TarEntry[] = []): Promise<Uint8Array> {
  const entries: TarEntry[] = Object.entries(files).map(([name, body]) => ({
    header: { name, size: body.byteLength, type: "file", mode: 0o644, mtime: new Date(0) },
    body,
  }));
  return packTar([...entries, ...extra]);
}

const path = (p: string) => ({ "org.cncf.model.filepath": p });

/** Docker model-spec v0.1: safetensors shards in order (unnamed) and a vLLM config tar. */
export async function dockerV01(
  shards: Uint8Array[] = [randomBytes(40_000), randomBytes(30_000)],
  configTar?: Uint8Array,
): Promise<ModelFixture> {
  const config = {
    "config.json": text(CONFIG_JSON),
    "tokenizer.json": text(TOKENIZER),
    "generation_config.json": text({ max_length: 20 }),
  };
  const names = shards.map((_, i) => `model-0000${i + 1}-of-0000${shards.length}.safetensors`);
  const artifact = buildManifest({
    config: {
      mediaType: "application/vnd.docker.ai.model.config.v0.1+json",
      bytes: text({ config: { format: "safetensors", architecture: "tiny" } }),
    },
    layers: [
      ...shards.map((bytes) => ({ mediaType: "application/vnd.docker.ai.safetensors", bytes })),
      { mediaType: "application/vnd.docker.ai.vllm.config.tar", bytes: configTar ?? (await tarOf(config)) },
    ],
  });
  return {
    artifact,
    files: { ...Object.fromEntries(names.map((n, i) => [n, shards[i] as Uint8Array])), ...config },
    weights: names,
  };
}

/** Docker model-spec v0.2: one file per layer with its path, plus a directory tar. */
export async function dockerV02(): Promise<ModelFixture> {
  const weights = randomBytes(50_000);
  const dir = { "tokenizer/vocab.txt": text("a\nb\n"), "tokenizer/merges.txt": text("a b\n") };
  const artifact = buildManifest({
    config: {
      mediaType: "application/vnd.docker.ai.model.config.v0.2+json",
      bytes: text({ config: { format: "safetensors" } }),
    },
    layers: [
      {
        mediaType: "application/vnd.docker.ai.safetensors",
        bytes: weights,
        annotations: path("model.safetensors"),
      },
      {
        mediaType: "application/vnd.docker.ai.model.file",
        bytes: text(CONFIG_JSON),
        annotations: path("config.json"),
      },
      {
        mediaType: "application/vnd.docker.ai.dir.tar",
        bytes: await tarOf(dir),
        annotations: path("tokenizer"),
      },
    ],
  });
  return {
    artifact,
    files: { "model.safetensors": weights, "config.json": text(CONFIG_JSON), ...dir },
    weights: ["model.safetensors"],
  };
}

/** CNCF ModelPack, raw layers. */
export async function modelPackRaw(): Promise<ModelFixture> {
  const weights = randomBytes(60_000);
  const readme = text("# tiny\n");
  const layers: LayerInput[] = [
    {
      mediaType: "application/vnd.cncf.model.weight.v1.raw",
      bytes: weights,
      annotations: path("model.safetensors"),
    },
    {
      mediaType: "application/vnd.cncf.model.weight.config.v1.raw",
      bytes: text(CONFIG_JSON),
      annotations: path("config.json"),
    },
    { mediaType: "application/vnd.cncf.model.doc.v1.raw", bytes: readme, annotations: path("README.md") },
  ];
  const artifact = buildManifest({
    artifactType: "application/vnd.cncf.model.manifest.v1+json",
    config: {
      mediaType: "application/vnd.cncf.model.config.v1+json",
      bytes: text({
        descriptor: { name: "tiny" },
        config: { architecture: "transformer", format: "safetensors", paramSize: "1K", precision: "float32" },
        modelfs: { type: "layers", diffIds: [] },
      }),
    },
    layers,
  });
  return {
    artifact,
    files: { "model.safetensors": weights, "config.json": text(CONFIG_JSON), "README.md": readme },
    weights: ["model.safetensors"],
  };
}

/** CNCF ModelPack with tar+gzip weights and a tar config. */
export async function modelPackTarGzip(): Promise<ModelFixture> {
  const weights = {
    "model-00001-of-00002.safetensors": randomBytes(20_000),
    "model-00002-of-00002.safetensors": randomBytes(20_000),
  };
  const artifact = buildManifest({
    artifactType: "application/vnd.cncf.model.manifest.v1+json",
    config: {
      mediaType: "application/vnd.cncf.model.config.v1+json",
      bytes: text({ config: { format: "safetensors" } }),
    },
    layers: [
      { mediaType: "application/vnd.cncf.model.weight.v1.tar+gzip", bytes: gzipSync(await tarOf(weights)) },
      {
        mediaType: "application/vnd.cncf.model.weight.config.v1.tar",
        bytes: await tarOf({ "config.json": text(CONFIG_JSON) }),
      },
    ],
  });
  return { artifact, files: { ...weights, "config.json": text(CONFIG_JSON) }, weights: Object.keys(weights) };
}

/** KitOps ModelKit: a model tar and a docs tar. */
export async function kitOps(): Promise<ModelFixture> {
  const model = { "model/model.safetensors": randomBytes(25_000), "model/config.json": text(CONFIG_JSON) };
  const docs = { "README.md": text("kit\n") };
  const artifact = buildManifest({
    config: {
      mediaType: "application/vnd.kitops.modelkit.config.v1+json",
      bytes: text({ manifestVersion: "1.0", package: { name: "tiny" } }),
    },
    layers: [
      { mediaType: "application/vnd.kitops.modelkit.model.v1.tar", bytes: await tarOf(model) },
      { mediaType: "application/vnd.kitops.modelkit.docs.v1.tar", bytes: await tarOf(docs) },
    ],
  });
  return { artifact, files: { ...model, ...docs }, weights: ["model/model.safetensors"] };
}
