// Model artifacts in every format the pull reads, built here and pushed with skopeo.
import { randomBytes } from "node:crypto";
import { gzipSync } from "node:zlib";
import { packTar, type TarEntry } from "modern-tar";
import { type Artifact, buildManifest, describe, type LayerInput } from "./layout.js";

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
  const names =
    shards.length === 1
      ? ["model.safetensors"]
      : shards.map((_, i) => `model-0000${i + 1}-of-0000${shards.length}.safetensors`);
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

// ——— The shapes registries hold (issue 17), each layer's media type exactly as its tool writes it. ———

const title = (p: string) => ({ "org.opencontainers.image.title": p });
const bytesOf = (label: string, size = 64) => {
  const out = new Uint8Array(size);
  out.set(new TextEncoder().encode(label).subarray(0, size));
  for (let i = label.length; i < size; i++) out[i] = (i * 31) & 0xff;
  return out;
};
/** Opaque bytes standing for a GGUF file: only stored and compared, never parsed. */
const ggufBytes = (label: string) => bytesOf(`gguf stand-in: ${label}`, 96);

/** A fixture of one registry shape: the artifact, the files and weights a pull must give, and more. */
export interface FormatFixture extends ModelFixture {
  /** The chat template `model.chatTemplate()` must return, when the model has one. */
  chatTemplate?: string;
  /** Expected `model.info`, in part. */
  info?: Record<string, unknown>;
  /** Expected `model.format`. */
  format: string;
}

const TEMPLATE = "{% for m in messages %}<|{{ m.role }}|>{{ m.content }}{% endfor %}";

/**
 * Docker Model Runner's GGUF bundle, as `docker model package --gguf … --mmproj … --chat-template …
 * --license … --license …` writes it (v0.1 config, no annotations): two GGUF shards, a projector, a
 * chat template and two licenses, named as Model Runner's bundle names them. The shards and the
 * projector are stand-in bytes unless real GGUF files are given.
 */
export function dockerGgufBundle(
  given: { shards?: [Uint8Array, Uint8Array]; mmproj?: Uint8Array } = {},
): FormatFixture {
  const shards = given.shards ?? [ggufBytes("shard-1"), ggufBytes("shard-2")];
  const mmproj = given.mmproj ?? ggufBytes("projector");
  const licenses = [text("MIT License\n"), text("Apache License 2.0\n")];
  const artifact = buildManifest({
    config: {
      mediaType: "application/vnd.docker.ai.model.config.v0.1+json",
      bytes: text({
        config: {
          format: "gguf",
          quantization: "Q4_K_M",
          parameters: "361.82 M",
          architecture: "llama",
          size: "192",
          context_size: 8192,
          gguf: {
            "general.architecture": "llama",
            "llama.context_length": "8192",
            "general.file_type": "15",
          },
        },
        descriptor: { created: "2025-06-01T00:00:00Z" },
        rootfs: { type: "rootfs", diff_ids: [] },
      }),
    },
    layers: [
      { mediaType: "application/vnd.docker.ai.gguf.v3", bytes: shards[0] as Uint8Array },
      { mediaType: "application/vnd.docker.ai.gguf.v3", bytes: shards[1] as Uint8Array },
      { mediaType: "application/vnd.docker.ai.mmproj", bytes: mmproj },
      { mediaType: "application/vnd.docker.ai.chat.template.jinja", bytes: text(TEMPLATE) },
      { mediaType: "application/vnd.docker.ai.license", bytes: licenses[0] as Uint8Array },
      { mediaType: "application/vnd.docker.ai.license", bytes: licenses[1] as Uint8Array },
    ],
  });
  return {
    artifact,
    format: "docker-v0.1",
    files: {
      "model-00001-of-00002.gguf": shards[0] as Uint8Array,
      "model-00002-of-00002.gguf": shards[1] as Uint8Array,
      "model.mmproj": mmproj,
      "template.jinja": text(TEMPLATE),
      LICENSE: licenses[0] as Uint8Array,
      "LICENSE-2": licenses[1] as Uint8Array,
    },
    weights: ["model-00001-of-00002.gguf", "model-00002-of-00002.gguf"],
    chatTemplate: TEMPLATE,
    info: {
      format: "gguf",
      quantization: "Q4_K_M",
      parameters: "361.82 M",
      architecture: "llama",
      contextSize: 8192,
      size: "192",
      gguf: { "general.architecture": "llama", "llama.context_length": "8192", "general.file_type": "15" },
    },
  };
}

/**
 * The spec-only GGUF types (docker/model-spec spec.md: `gguf.v3.mmproj`, `gguf.v3.lora`), one GGUF,
 * and a projector whose annotation names it `mmproj-model-f16.gguf`: a projector is never a weight,
 * whatever its name.
 */
export function dockerGgufSpecTypes(): FormatFixture {
  const weights = ggufBytes("weights");
  const specProjector = ggufBytes("spec projector");
  const lora = ggufBytes("lora");
  const named = ggufBytes("annotated projector");
  const artifact = buildManifest({
    config: {
      mediaType: "application/vnd.docker.ai.model.config.v0.1+json",
      // The spec's config.md example: facts inside the gguf map only.
      bytes: text({
        config: {
          format: "gguf",
          format_version: "3",
          gguf: { architecture: "llama", parameter_count: "1.10 B", quantization: "Q4_0" },
          size: "384",
        },
        files: [],
      }),
    },
    layers: [
      { mediaType: "application/vnd.docker.ai.gguf.v3", bytes: weights },
      { mediaType: "application/vnd.docker.ai.gguf.v3.mmproj", bytes: specProjector },
      { mediaType: "application/vnd.docker.ai.gguf.v3.lora", bytes: lora },
      {
        mediaType: "application/vnd.docker.ai.mmproj",
        bytes: named,
        annotations: title("mmproj-model-f16.gguf"),
      },
    ],
  });
  return {
    artifact,
    format: "docker-v0.1",
    files: {
      "model.gguf": weights,
      "model.mmproj": specProjector,
      "adapter.gguf": lora,
      "mmproj-model-f16.gguf": named,
    },
    weights: ["model.gguf"],
    info: { format: "gguf", architecture: "llama", parameters: "1.10 B", quantization: "Q4_0", size: "384" },
  };
}

/** Docker safetensors, one unannotated shard and the vLLM config tar: `model.safetensors` beside the config files. */
export async function dockerSafetensorsSingle(): Promise<FormatFixture> {
  const weights = randomBytes(3000);
  const config = { "config.json": text(CONFIG_JSON), "tokenizer.json": text(TOKENIZER) };
  const artifact = buildManifest({
    config: {
      mediaType: "application/vnd.docker.ai.model.config.v0.1+json",
      bytes: text({
        config: { format: "safetensors", safetensors: { architecture: "qwen2", parameter_count: "3.09 B" } },
      }),
    },
    layers: [
      { mediaType: "application/vnd.docker.ai.safetensors", bytes: weights },
      { mediaType: "application/vnd.docker.ai.vllm.config.tar", bytes: await tarOf(config) },
    ],
  });
  return {
    artifact,
    format: "docker-v0.1",
    files: { "model.safetensors": weights, ...config },
    weights: ["model.safetensors"],
    info: { format: "safetensors", architecture: "qwen2", parameters: "3.09 B" },
  };
}

/** Docker DDUF (`docker model package --dduf`, v0.2 config), unannotated: `model.dduf`, a weight. */
export function dockerDduf(): FormatFixture {
  const dduf = bytesOf("dduf stand-in", 80);
  const license = text("license text\n");
  const artifact = buildManifest({
    config: {
      mediaType: "application/vnd.docker.ai.model.config.v0.2+json",
      bytes: text({ config: { format: "dduf", size: "80" } }),
    },
    layers: [
      { mediaType: "application/vnd.docker.ai.dduf", bytes: dduf },
      { mediaType: "application/vnd.docker.ai.license", bytes: license },
    ],
  });
  return {
    artifact,
    format: "docker-v0.2",
    files: { "model.dduf": dduf, LICENSE: license },
    weights: ["model.dduf"],
    info: { format: "dduf", size: "80" },
  };
}

/**
 * Docker v0.2 as `docker model package --safetensors-dir` writes it: every file its own annotated
 * layer (`model.file` for the config files, `chat.template.jinja` for the template), plus a `dir.tar`.
 */
export async function dockerV02Annotated(): Promise<FormatFixture> {
  const shards = [randomBytes(2000), randomBytes(1500)];
  const dir = { "images/preprocessor.json": text({ size: 224 }) };
  const path = (p: string) => ({ "org.cncf.model.filepath": p });
  const artifact = buildManifest({
    config: {
      mediaType: "application/vnd.docker.ai.model.config.v0.2+json",
      bytes: text({ config: { format: "safetensors", architecture: "qwen2", context_size: 32768 } }),
    },
    layers: [
      {
        mediaType: "application/vnd.docker.ai.safetensors",
        bytes: shards[0] as Uint8Array,
        annotations: path("model-00001-of-00002.safetensors"),
      },
      {
        mediaType: "application/vnd.docker.ai.safetensors",
        bytes: shards[1] as Uint8Array,
        annotations: path("model-00002-of-00002.safetensors"),
      },
      {
        mediaType: "application/vnd.docker.ai.model.file",
        bytes: text(CONFIG_JSON),
        annotations: path("config.json"),
      },
      {
        mediaType: "application/vnd.docker.ai.chat.template.jinja",
        bytes: text(TEMPLATE),
        annotations: path("chat_template.jinja"),
      },
      {
        mediaType: "application/vnd.docker.ai.dir.tar",
        bytes: await tarOf(dir),
        annotations: path("images"),
      },
    ],
  });
  return {
    artifact,
    format: "docker-v0.2",
    files: {
      "model-00001-of-00002.safetensors": shards[0] as Uint8Array,
      "model-00002-of-00002.safetensors": shards[1] as Uint8Array,
      "config.json": text(CONFIG_JSON),
      "chat_template.jinja": text(TEMPLATE),
      ...dir,
    },
    weights: ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"],
    chatTemplate: TEMPLATE,
    info: { format: "safetensors", architecture: "qwen2", contextSize: 32768 },
  };
}

/**
 * Docker's 2025 prototype (docker/model-distribution pkg/types/config.go): config
 * `…model.config.v1+json`, one `…model.file.v1+gguf` layer; read as v0.1.
 */
export function dockerPrototype(): FormatFixture {
  const weights = ggufBytes("prototype");
  const artifact = buildManifest({
    config: {
      mediaType: "application/vnd.docker.ai.model.config.v1+json",
      bytes: text({
        config: {
          format: "gguf",
          quantization: "Q4_0",
          parameters: "1.1B",
          architecture: "llama",
          size: "96",
        },
        rootfs: { type: "layers", diff_ids: [] },
      }),
    },
    layers: [{ mediaType: "application/vnd.docker.ai.model.file.v1+gguf", bytes: weights }],
  });
  return {
    artifact,
    format: "docker-v0.1",
    files: { "model.gguf": weights },
    weights: ["model.gguf"],
    info: { format: "gguf", quantization: "Q4_0", parameters: "1.1B", architecture: "llama", size: "96" },
  };
}

/**
 * CNCF ModelPack with every layer kind (modelpack/model-spec specs-go/v1/mediatype.go) in raw, tar
 * and tar+gzip packings, plus the legacy `weight.v1.gguf` Docker still reads, unannotated.
 */
export async function modelPackAllKinds(): Promise<FormatFixture> {
  const path = (p: string) => ({ "org.cncf.model.filepath": p });
  const raw = {
    weight: randomBytes(1200),
    config: text(CONFIG_JSON),
    doc: text("# tiny\n"),
    code: text("print('hi')\n"),
    dataset: text("a,b\n1,2\n"),
  };
  const tarred = {
    "shards/model-00001-of-00001.safetensors": randomBytes(900),
    "tokenizer/tokenizer.json": text(TOKENIZER),
    "docs/USAGE.md": text("use it\n"),
    "src/infer.py": text("import torch\n"),
    "data/eval.jsonl": text('{"q":1}\n'),
  };
  const legacy = ggufBytes("legacy modelpack gguf");
  const artifact = buildManifest({
    artifactType: "application/vnd.cncf.model.manifest.v1+json",
    config: {
      mediaType: "application/vnd.cncf.model.config.v1+json",
      bytes: text({
        descriptor: { name: "tiny", family: "qwen2" },
        config: {
          architecture: "transformer",
          format: "safetensors",
          paramSize: "0.5b",
          precision: "bfloat16",
          quantization: "awq",
        },
        modelfs: { type: "layers", diffIds: [] },
      }),
    },
    layers: [
      {
        mediaType: "application/vnd.cncf.model.weight.v1.raw",
        bytes: raw.weight,
        annotations: path("model.safetensors"),
      },
      {
        mediaType: "application/vnd.cncf.model.weight.config.v1.raw",
        bytes: raw.config,
        annotations: path("config.json"),
      },
      { mediaType: "application/vnd.cncf.model.doc.v1.raw", bytes: raw.doc, annotations: path("README.md") },
      { mediaType: "application/vnd.cncf.model.code.v1.raw", bytes: raw.code, annotations: path("run.py") },
      {
        mediaType: "application/vnd.cncf.model.dataset.v1.raw",
        bytes: raw.dataset,
        annotations: path("sample.csv"),
      },
      {
        mediaType: "application/vnd.cncf.model.weight.v1.tar",
        bytes: await tarOf({
          "shards/model-00001-of-00001.safetensors": tarred["shards/model-00001-of-00001.safetensors"],
        }),
      },
      {
        mediaType: "application/vnd.cncf.model.weight.config.v1.tar+gzip",
        bytes: gzipSync(await tarOf({ "tokenizer/tokenizer.json": tarred["tokenizer/tokenizer.json"] })),
      },
      {
        mediaType: "application/vnd.cncf.model.doc.v1.tar",
        bytes: await tarOf({ "docs/USAGE.md": tarred["docs/USAGE.md"] }),
      },
      {
        mediaType: "application/vnd.cncf.model.code.v1.tar+gzip",
        bytes: gzipSync(await tarOf({ "src/infer.py": tarred["src/infer.py"] })),
      },
      {
        mediaType: "application/vnd.cncf.model.dataset.v1.tar",
        bytes: await tarOf({ "data/eval.jsonl": tarred["data/eval.jsonl"] }),
      },
      { mediaType: "application/vnd.cncf.model.weight.v1.gguf", bytes: legacy },
    ],
  });
  return {
    artifact,
    format: "modelpack",
    files: {
      "model.safetensors": raw.weight,
      "config.json": raw.config,
      "README.md": raw.doc,
      "run.py": raw.code,
      "sample.csv": raw.dataset,
      ...tarred,
      "model.gguf": legacy,
    },
    weights: ["model.safetensors", "shards/model-00001-of-00001.safetensors", "model.gguf"],
    info: {
      architecture: "transformer",
      format: "safetensors",
      parameters: "0.5b",
      quantization: "awq",
      precision: "bfloat16",
    },
  };
}

/** ModelPack's legacy safetensors weight type, as Docker reads it: unannotated, two shards. */
export function modelPackLegacySafetensors(): FormatFixture {
  const shards = [randomBytes(700), randomBytes(500)];
  const artifact = buildManifest({
    artifactType: "application/vnd.cncf.model.manifest.v1+json",
    config: {
      mediaType: "application/vnd.cncf.model.config.v1+json",
      bytes: text({ config: { format: "safetensors" }, modelfs: { type: "layers", diffIds: [] } }),
    },
    layers: shards.map((bytes) => ({ mediaType: "application/vnd.cncf.model.weight.v1.safetensors", bytes })),
  });
  return {
    artifact,
    format: "modelpack",
    files: {
      "model-00001-of-00002.safetensors": shards[0] as Uint8Array,
      "model-00002-of-00002.safetensors": shards[1] as Uint8Array,
    },
    weights: ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"],
    info: { format: "safetensors" },
  };
}

/** A manifest written without a top-level `mediaType` (as KitOps 1.7 writes them), from its parts. */
function bareManifest(input: { config: LayerInput; layers: LayerInput[]; artifactType?: string }): Artifact {
  const blobs = new Map<string, Uint8Array>();
  const add = (l: LayerInput) => {
    const d = describe(l.bytes, l.mediaType, l.annotations);
    blobs.set(d.digest, l.bytes);
    return d;
  };
  const config = add(input.config);
  const layers = input.layers.map(add);
  const bytes = text({
    schemaVersion: 2,
    ...(input.artifactType ? { artifactType: input.artifactType } : {}),
    config,
    layers,
  });
  // The layout's index still names what it points at: an OCI image manifest.
  const descriptor = describe(bytes, "application/vnd.oci.image.manifest.v1+json");
  if (input.artifactType) descriptor.artifactType = input.artifactType;
  return { descriptor, bytes, blobs };
}

/**
 * A KitOps ModelKit as `kit pack` writes it (kitops-ml/kitops pkg/lib/constants/mediatype): a
 * `model` tar+gzip, a raw `modelpart` (an adapter: not a weight), `dataset`, `code` and raw `docs`;
 * with or without `artifactType`, with or without a top-level `mediaType`.
 */
export async function kitOpsModelKit(options: {
  artifactType: boolean;
  mediaType: boolean;
}): Promise<FormatFixture> {
  const path = (p: string) => ({ "org.cncf.model.filepath": p });
  const model = { "model/model.safetensors": randomBytes(1500), "model/config.json": text(CONFIG_JSON) };
  const adapter = randomBytes(400);
  const dataset = { "data/train.csv": text("x,y\n1,2\n") };
  const code = { "src/train.py": text("print(1)\n") };
  const readme = text("# kit\n");
  const kitfile = {
    manifestVersion: "1.0.0",
    package: { name: "tiny", authors: ["me"] },
    model: {
      name: "tiny",
      path: "model",
      framework: "transformers",
      format: "safetensors",
      parameters: { architecture: "qwen2", paramSize: "0.5B" },
      parts: [{ path: "lora/adapter.safetensors", type: "lora" }],
    },
    datasets: [{ path: "data" }],
    code: [{ path: "src" }],
    docs: [{ path: "README.md" }],
  };
  const parts = {
    config: { mediaType: "application/vnd.kitops.modelkit.config.v1+json", bytes: text(kitfile) },
    layers: [
      { mediaType: "application/vnd.kitops.modelkit.model.v1.tar+gzip", bytes: gzipSync(await tarOf(model)) },
      {
        mediaType: "application/vnd.kitops.modelkit.modelpart.v1.raw",
        bytes: adapter,
        annotations: path("lora/adapter.safetensors"),
      },
      { mediaType: "application/vnd.kitops.modelkit.dataset.v1.tar", bytes: await tarOf(dataset) },
      { mediaType: "application/vnd.kitops.modelkit.code.v1.tar+gzip", bytes: gzipSync(await tarOf(code)) },
      {
        mediaType: "application/vnd.kitops.modelkit.docs.v1.raw",
        bytes: readme,
        annotations: path("README.md"),
      },
    ],
    ...(options.artifactType ? { artifactType: "application/vnd.kitops.modelkit.manifest.v1+json" } : {}),
  };
  const artifact = options.mediaType ? buildManifest(parts) : bareManifest(parts);
  return {
    artifact,
    format: "kitops",
    files: { ...model, "lora/adapter.safetensors": adapter, ...dataset, ...code, "README.md": readme },
    weights: ["model/model.safetensors"],
    info: { format: "safetensors", architecture: "qwen2", parameters: "0.5B" },
  };
}

/**
 * CNCF ModelPack as `modctl` packs weights by default: the weights in an uncompressed tar
 * (`weight.v1.tar`) — two real safetensors shards (test/support/tensor-model.ts), one of them under
 * a path too long for a ustar header (a PAX record names it), and `padding` random bytes in a file
 * between them — and the config and tokenizer in a tar+gzip.
 */
export async function modelPackTarWeights(shards: Uint8Array[], padding = 0): Promise<ModelFixture> {
  const deep = `weights/${"nested/".repeat(16)}model-00002-of-00002.safetensors`;
  const weights: Record<string, Uint8Array> = {
    "weights/model-00001-of-00002.safetensors": shards[0] as Uint8Array,
    "weights/padding.dat": new Uint8Array(randomBytes(padding)),
    [deep]: shards[1] as Uint8Array,
  };
  const config = { "config.json": text(CONFIG_JSON), "tokenizer.json": text(TOKENIZER) };
  const artifact = buildManifest({
    artifactType: "application/vnd.cncf.model.manifest.v1+json",
    config: {
      mediaType: "application/vnd.cncf.model.config.v1+json",
      bytes: text({ config: { format: "safetensors" } }),
    },
    layers: [
      { mediaType: "application/vnd.cncf.model.weight.v1.tar", bytes: await tarOf(weights) },
      {
        mediaType: "application/vnd.cncf.model.weight.config.v1.tar+gzip",
        bytes: gzipSync(await tarOf(config)),
      },
    ],
  });
  return {
    artifact,
    files: { ...weights, ...config },
    weights: ["weights/model-00001-of-00002.safetensors", deep],
  };
}
