/** Media types of the OCI image spec and Docker's registry formats. */
export const MediaType = {
  OciManifest: "application/vnd.oci.image.manifest.v1+json",
  OciIndex: "application/vnd.oci.image.index.v1+json",
  DockerManifest: "application/vnd.docker.distribution.manifest.v2+json",
  DockerManifestList: "application/vnd.docker.distribution.manifest.list.v2+json",
  OciEmpty: "application/vnd.oci.empty.v1+json",
  OciLayout: "application/vnd.oci.layout.header.v1+json",
} as const;

/** The `Accept` header for manifests: every manifest and index type we can read. */
export const MANIFEST_ACCEPT = [
  MediaType.OciManifest,
  MediaType.OciIndex,
  MediaType.DockerManifest,
  MediaType.DockerManifestList,
].join(", ");

export function isIndexMediaType(mediaType: string | undefined): boolean {
  return mediaType === MediaType.OciIndex || mediaType === MediaType.DockerManifestList;
}

export function isManifestMediaType(mediaType: string | undefined): boolean {
  return mediaType === MediaType.OciManifest || mediaType === MediaType.DockerManifest;
}

/**
 * Media types of the model artifact formats we read (Docker Model Runner, ModelPack, KitOps): the
 * config blobs, the manifest artifact types and the named layer types. Every layer type, with what it
 * holds, is in `modelLayerType`.
 */
export const ModelMediaType = {
  // Docker model-spec (docker/model-spec spec.md, config.md; docker/model-runner
  // pkg/distribution/types/config.go).
  DockerConfigV01: "application/vnd.docker.ai.model.config.v0.1+json",
  DockerConfigV02: "application/vnd.docker.ai.model.config.v0.2+json",
  DockerGguf: "application/vnd.docker.ai.gguf.v3",
  DockerSafetensors: "application/vnd.docker.ai.safetensors",
  DockerDduf: "application/vnd.docker.ai.dduf",
  DockerConfigTar: "application/vnd.docker.ai.vllm.config.tar",
  DockerDirTar: "application/vnd.docker.ai.dir.tar",
  DockerLicense: "application/vnd.docker.ai.license",
  DockerMmproj: "application/vnd.docker.ai.mmproj",
  DockerChatTemplate: "application/vnd.docker.ai.chat.template.jinja",
  DockerModelFile: "application/vnd.docker.ai.model.file",
  /** In docker/model-spec's spec.md; Model Runner writes `DockerMmproj` instead. */
  DockerGgufMmproj: "application/vnd.docker.ai.gguf.v3.mmproj",
  /** In docker/model-spec's spec.md (a LoRA adapter); no tool writes it yet. */
  DockerGgufLora: "application/vnd.docker.ai.gguf.v3.lora",
  /** The 2025 prototype's config (docker/model-distribution pkg/types/config.go). */
  DockerConfigV1Prototype: "application/vnd.docker.ai.model.config.v1+json",
  /** The 2025 prototype's GGUF layer (docker/model-distribution pkg/types/config.go). */
  DockerGgufPrototype: "application/vnd.docker.ai.model.file.v1+gguf",
  // CNCF ModelPack (modelpack/model-spec specs-go/v1/mediatype.go).
  ModelPackManifest: "application/vnd.cncf.model.manifest.v1+json",
  ModelPackConfig: "application/vnd.cncf.model.config.v1+json",
  /** Not in the ModelPack spec: Docker Model Runner reads it (pkg/distribution/modelpack/types.go). */
  ModelPackWeightGguf: "application/vnd.cncf.model.weight.v1.gguf",
  /** Not in the ModelPack spec: Docker Model Runner reads it (pkg/distribution/modelpack/types.go). */
  ModelPackWeightSafetensors: "application/vnd.cncf.model.weight.v1.safetensors",
  // KitOps ModelKit (kitops-ml/kitops pkg/lib/constants/mediatype/{kitops,artifacttype}.go).
  KitOpsConfig: "application/vnd.kitops.modelkit.config.v1+json",
  KitOpsManifest: "application/vnd.kitops.modelkit.manifest.v1+json",
  // Ollama (ollama/ollama server/images.go, server/internal/manifest/manifest.go): layers of a
  // Docker v2 manifest whose config is `application/vnd.docker.container.image.v1+json`.
  OllamaModel: "application/vnd.ollama.image.model",
  OllamaProjector: "application/vnd.ollama.image.projector",
  OllamaAdapter: "application/vnd.ollama.image.adapter",
  /** A Go `text/template` prompt template, not Jinja (`; name=…` names another than the default). */
  OllamaTemplate: "application/vnd.ollama.image.template",
  OllamaSystem: "application/vnd.ollama.image.system",
  OllamaParams: "application/vnd.ollama.image.params",
  OllamaLicense: "application/vnd.ollama.image.license",
  OllamaMessages: "application/vnd.ollama.image.messages",
  /** `; type=<gguf|safetensors…>`: the model's configuration, one per model. */
  OllamaConfig: "application/vnd.ollama.image.config",
  /** `; name=<name>; dtype=<dtype>; shape=<d0,d1,…>`: one tensor, the whole blob. */
  OllamaTensor: "application/vnd.ollama.image.tensor",
  OllamaTokenizer: "application/vnd.ollama.image.tokenizer",
  OllamaTokenizerConfig: "application/vnd.ollama.image.tokenizer.config",
} as const;

/** A media type split into its `type/subtype` and parameters (RFC 6838 §4.3, RFC 9110 §8.3.1). */
export interface ParsedMediaType {
  /** `type/subtype`, lowercased: type and subtype names are case-insensitive. */
  type: string;
  /** Parameters by lowercased name; values as written (case kept), quoted strings unquoted. */
  parameters: Record<string, string>;
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Parses a media type with its parameters: `type/subtype *( OWS ";" OWS name=value )`, as RFC 6838
 * §4.2–4.3 and RFC 9110 §8.3.1 define it. Type, subtype and parameter names are tokens, matched
 * case-insensitively (returned lowercased); a value is a token or a quoted string (`"…"`, with
 * `\` escaping the next character), kept as written. One leniency: an unquoted value runs to the
 * next `;` or whitespace, so that Ollama's `shape=1,2,3` (a comma, which RFC 9110 would quote) is read.
 *
 * @returns The type and parameters; undefined when `value` is not a media type (no `/`, a name that is
 *   not a token, an unterminated quoted string, a parameter without `=` or given twice).
 */
export function parseMediaType(value: string): ParsedMediaType | undefined {
  let i = 0;
  const n = value.length;
  const skipSpace = () => {
    while (i < n && (value[i] === " " || value[i] === "\t")) i++;
  };
  const until = (stop: RegExp) => {
    const start = i;
    while (i < n && !stop.test(value[i] as string)) i++;
    return value.slice(start, i);
  };
  skipSpace();
  const full = until(/[;\s]/);
  const slash = full.indexOf("/");
  const type = full.slice(0, slash);
  const subtype = full.slice(slash + 1);
  if (slash < 0 || !TOKEN.test(type) || !TOKEN.test(subtype)) return undefined;
  const parameters: Record<string, string> = {};
  for (;;) {
    skipSpace();
    if (i >= n) break;
    if (value[i] !== ";") return undefined;
    i++;
    skipSpace();
    if (i >= n) break; // a trailing ";" is tolerated (RFC 9110 allows empty list elements)
    if (value[i] === ";") continue;
    const name = until(/[=;\s]/).toLowerCase();
    if (!TOKEN.test(name) || value[i] !== "=") return undefined;
    i++;
    let parameter: string;
    if (value[i] === '"') {
      i++;
      parameter = "";
      for (;;) {
        if (i >= n) return undefined;
        const c = value[i++] as string;
        if (c === '"') break;
        if (c === "\\") {
          if (i >= n) return undefined;
          parameter += value[i++];
        } else parameter += c;
      }
    } else {
      parameter = until(/[;\s"\\]/);
      if (parameter === "" || (i < n && /["\\]/.test(value[i] as string))) return undefined;
    }
    if (Object.hasOwn(parameters, name)) return undefined;
    parameters[name] = parameter;
  }
  return { type: `${type}/${subtype}`.toLowerCase(), parameters };
}

/** `type/subtype` of a media type, lowercased, without its parameters; the input itself when unparsable. */
export function baseMediaType(value: string): string {
  return parseMediaType(value)?.type ?? value;
}

/** Annotation keys that carry a layer's file path, in order of preference. */
export const PATH_ANNOTATIONS = [
  "org.cncf.model.filepath",
  "org.cnai.model.filepath",
  "org.opencontainers.image.title",
] as const;

/**
 * What a model layer holds, as its media type says:
 * - `weights`: the model's own weights (`Model.weights`);
 * - `projector`: a multimodal projector (GGUF), `adapter`: a LoRA adapter (GGUF) — loaded beside the
 *   weights, never among them;
 * - `chat-template`, `license`, `config` (engine config files: `config.json`, tokenizer…), `doc`,
 *   `code`, `dataset`;
 * - `part`: a KitOps model part (a tokenizer, an adapter…: whatever the Kitfile lists as one);
 * - `file`: any file, named by its annotation, whose kind only its name tells (Docker's
 *   `model.file` and `dir.tar`);
 * - Ollama's `system` (a system prompt), `params` (JSON runtime options), `messages` (JSON
 *   messages) and `tokenizer` (its tokenizer and tokenizer config layers).
 */
export type LayerRole =
  | "weights"
  | "projector"
  | "adapter"
  | "chat-template"
  | "license"
  | "config"
  | "doc"
  | "code"
  | "dataset"
  | "part"
  | "file"
  | "system"
  | "params"
  | "messages"
  | "tokenizer";

/** A model layer media type, decoded. */
export interface ModelLayerType {
  /** The artifact family that defines it. */
  family: "docker" | "modelpack" | "kitops" | "ollama";
  role: LayerRole;
  /** One file (`raw`), or a tar of files. */
  packing: "file" | "tar";
  /** How the blob is compressed, when it is. */
  compression?: "gzip" | "zstd";
  /** The file format, where the media type names one; `tensor`: one tensor's raw bytes (Ollama). */
  fileFormat?: "gguf" | "safetensors" | "dduf" | "tensor";
}

const docker = (role: LayerRole, extra: Partial<ModelLayerType> = {}): ModelLayerType => ({
  family: "docker",
  role,
  packing: "file",
  ...extra,
});

const ollama = (role: LayerRole, extra: Partial<ModelLayerType> = {}): ModelLayerType => ({
  family: "ollama",
  role,
  packing: "file",
  ...extra,
});

const M = ModelMediaType;
const KNOWN_LAYERS = new Map<string, ModelLayerType>([
  [M.DockerGguf, docker("weights", { fileFormat: "gguf" })],
  [M.DockerGgufPrototype, docker("weights", { fileFormat: "gguf" })],
  [M.DockerSafetensors, docker("weights", { fileFormat: "safetensors" })],
  [M.DockerDduf, docker("weights", { fileFormat: "dduf" })],
  [M.DockerMmproj, docker("projector", { fileFormat: "gguf" })],
  [M.DockerGgufMmproj, docker("projector", { fileFormat: "gguf" })],
  [M.DockerGgufLora, docker("adapter", { fileFormat: "gguf" })],
  [M.DockerChatTemplate, docker("chat-template")],
  [M.DockerLicense, docker("license")],
  [M.DockerConfigTar, docker("config", { packing: "tar" })],
  [M.DockerDirTar, docker("file", { packing: "tar" })],
  [M.DockerModelFile, docker("file")],
  [M.ModelPackWeightGguf, { family: "modelpack", role: "weights", packing: "file", fileFormat: "gguf" }],
  [
    M.ModelPackWeightSafetensors,
    { family: "modelpack", role: "weights", packing: "file", fileFormat: "safetensors" },
  ],
  // ollama/ollama server/images.go (GetModel: which layer is what) and
  // server/internal/manifest/manifest.go (config, tensor and tokenizer layers).
  [M.OllamaModel, ollama("weights", { fileFormat: "gguf" })],
  [M.OllamaTensor, ollama("weights", { fileFormat: "tensor" })],
  [M.OllamaProjector, ollama("projector", { fileFormat: "gguf" })],
  [M.OllamaAdapter, ollama("adapter", { fileFormat: "gguf" })],
  [M.OllamaTemplate, ollama("chat-template")],
  [M.OllamaSystem, ollama("system")],
  [M.OllamaParams, ollama("params")],
  [M.OllamaMessages, ollama("messages")],
  [M.OllamaLicense, ollama("license")],
  [M.OllamaConfig, ollama("config")],
  [M.OllamaTokenizer, ollama("tokenizer")],
  [M.OllamaTokenizerConfig, ollama("tokenizer")],
]);

// modelpack/model-spec specs-go/v1/mediatype.go: `<kind>.v1.raw`, `.tar`, `.tar+gzip`, `.tar+zstd`
// (raw layers are never compressed); `vnd.cnai.` is the spec's earlier spelling.
const MODELPACK_LAYER =
  /^application\/vnd\.(?:cncf|cnai)\.model\.(weight|weight\.config|doc|code|dataset)\.v1\.(raw|tar(?:\+(gzip|zstd))?)$/;
const MODELPACK_ROLES: Record<string, LayerRole> = {
  weight: "weights",
  "weight.config": "config",
  doc: "doc",
  code: "code",
  dataset: "dataset",
};

// kitops-ml/kitops pkg/lib/constants/mediatype/kitops.go and mediatype.go: `<kind>.v1.<raw|tar>`,
// optionally `+gzip` or `+zstd` (a raw layer's compression wraps its one file).
const KITOPS_LAYER =
  /^application\/vnd\.kitops\.modelkit\.(model|modelpart|dataset|code|docs)\.v1\.(raw|tar)(?:\+(gzip|zstd))?$/;
const KITOPS_ROLES: Record<string, LayerRole> = {
  model: "weights",
  modelpart: "part",
  dataset: "dataset",
  code: "code",
  docs: "doc",
};

/**
 * Decodes a model layer media type of Docker model-spec, ModelPack, KitOps or Ollama: what the layer
 * holds, how it is packed and compressed. Matched on `type/subtype` alone, case-insensitively
 * (`parseMediaType`): parameters (Ollama's `; type=gguf`, `; name=…; dtype=…; shape=…`) do not
 * change what a layer is. Undefined for any other media type (an image layer, a type of a later spec
 * version).
 */
export function modelLayerType(value: string): ModelLayerType | undefined {
  const mediaType = baseMediaType(value);
  const known = KNOWN_LAYERS.get(mediaType);
  if (known) return known;
  const pack = MODELPACK_LAYER.exec(mediaType);
  if (pack) {
    const [, kind, packing, compression] = pack;
    return {
      family: "modelpack",
      role: MODELPACK_ROLES[kind as string] as LayerRole,
      packing: packing === "raw" ? "file" : "tar",
      ...(compression ? { compression: compression as "gzip" | "zstd" } : {}),
    };
  }
  const kit = KITOPS_LAYER.exec(mediaType);
  if (kit) {
    const [, kind, packing, compression] = kit;
    return {
      family: "kitops",
      role: KITOPS_ROLES[kind as string] as LayerRole,
      packing: packing === "raw" ? "file" : "tar",
      ...(compression ? { compression: compression as "gzip" | "zstd" } : {}),
    };
  }
  return undefined;
}

const MODELPACK_PREFIXES = ["application/vnd.cncf.model.", "application/vnd.cnai.model."];

/** True for ModelPack (CNCF, and its earlier CNAI spelling) media types. */
export function isModelPackType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && MODELPACK_PREFIXES.some((p) => mediaType.startsWith(p));
}

/** True for KitOps ModelKit media types (config, artifact type, layers). */
export function isKitOpsType(mediaType: string | undefined): boolean {
  return mediaType?.startsWith("application/vnd.kitops.modelkit.") ?? false;
}

/** True for Ollama's layer media types (`application/vnd.ollama.image.*`, any parameters). */
export function isOllamaType(mediaType: string | undefined): boolean {
  return mediaType !== undefined && baseMediaType(mediaType).startsWith("application/vnd.ollama.image.");
}

/**
 * The tensor an Ollama tensor layer holds, from its media type's parameters
 * (`application/vnd.ollama.image.tensor; name=<name>; dtype=<dtype>; shape=<d0,d1,…>`,
 * ollama/ollama server/internal/manifest/manifest.go): its name, its dtype as written and its shape
 * (comma-separated integers; empty for a scalar). Undefined for any other media type; a tensor layer
 * whose parameters are missing or malformed gives the reason in `problem`.
 */
export function ollamaTensorParameters(
  value: string,
): { name: string; dtype: string; shape: number[] } | { problem: string } | undefined {
  const parsed = parseMediaType(value);
  if (parsed?.type !== ModelMediaType.OllamaTensor) {
    return value.split(";")[0]?.trim().toLowerCase() === ModelMediaType.OllamaTensor
      ? { problem: `its media type "${value}" is not a well-formed media type` }
      : undefined;
  }
  const { name, dtype, shape } = parsed.parameters;
  if (!name) return { problem: "its media type names no tensor (name=…)" };
  if (!dtype) return { problem: `its media type gives tensor "${name}" no dtype (dtype=…)` };
  if (shape === undefined) return { problem: `its media type gives tensor "${name}" no shape (shape=…)` };
  const dims =
    shape === "" ? [] : shape.split(",").map((d) => (/^\d{1,15}$/.test(d.trim()) ? Number(d) : -1));
  if (dims.some((d) => d < 0)) {
    return {
      problem: `its media type gives tensor "${name}" the shape "${shape}", not comma-separated integers`,
    };
  }
  return { name, dtype, shape: dims };
}

/** True when an artifact or config media type names a model. */
export function isModelMediaType(mediaType: string | undefined): boolean {
  return (
    mediaType !== undefined &&
    (mediaType.startsWith("application/vnd.docker.ai.") ||
      isModelPackType(mediaType) ||
      isKitOpsType(mediaType))
  );
}
