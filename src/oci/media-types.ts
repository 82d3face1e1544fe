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
} as const;

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
 *   `model.file` and `dir.tar`).
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
  | "file";

/** A model layer media type, decoded. */
export interface ModelLayerType {
  /** The artifact family that defines it. */
  family: "docker" | "modelpack" | "kitops";
  role: LayerRole;
  /** One file (`raw`), or a tar of files. */
  packing: "file" | "tar";
  /** How the blob is compressed, when it is. */
  compression?: "gzip" | "zstd";
  /** The file format, where the media type names one. */
  fileFormat?: "gguf" | "safetensors" | "dduf";
}

const docker = (role: LayerRole, extra: Partial<ModelLayerType> = {}): ModelLayerType => ({
  family: "docker",
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
 * Decodes a model layer media type of Docker model-spec, ModelPack or KitOps: what the layer holds,
 * how it is packed and compressed. Undefined for any other media type (an image layer, a type of a
 * later spec version).
 */
export function modelLayerType(mediaType: string): ModelLayerType | undefined {
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

/** True when an artifact or config media type names a model. */
export function isModelMediaType(mediaType: string | undefined): boolean {
  return (
    mediaType !== undefined &&
    (mediaType.startsWith("application/vnd.docker.ai.") ||
      isModelPackType(mediaType) ||
      isKitOpsType(mediaType))
  );
}
