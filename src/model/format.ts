import type { Descriptor, ImageManifest } from "../oci/manifest.js";
import {
  isKitOpsType,
  isModelPackType,
  isOllamaType,
  type ModelLayerType,
  ModelMediaType,
  modelLayerType,
  ollamaTensorParameters,
  PATH_ANNOTATIONS,
} from "../oci/media-types.js";

/** The model artifact families we read. */
export type ModelFormat = "docker-v0.1" | "docker-v0.2" | "modelpack" | "kitops" | "ollama" | "unknown";

/**
 * Detects the model family of a manifest: by `artifactType`, then the config media type, then
 * the layer media types. Docker's 2025 prototype (config `…model.config.v1+json`) lays its files out
 * as v0.1 does, and is read as v0.1. An Ollama model (a Docker v2 manifest with a container image
 * config, as Ollama's registry and Hugging Face's `hf.co` serve them) is told by its
 * `application/vnd.ollama.image.*` layers.
 */
export function detectFormat(manifest: ImageManifest): ModelFormat {
  const byType = (mediaType: string | undefined): ModelFormat | undefined => {
    if (mediaType === undefined) return undefined;
    if (mediaType === ModelMediaType.DockerConfigV01) return "docker-v0.1";
    if (mediaType === ModelMediaType.DockerConfigV02) return "docker-v0.2";
    if (mediaType === ModelMediaType.DockerConfigV1Prototype) return "docker-v0.1";
    if (isModelPackType(mediaType)) return "modelpack";
    if (isKitOpsType(mediaType)) return "kitops";
    return undefined;
  };
  const found = byType(manifest.artifactType) ?? byType(manifest.config.mediaType);
  if (found) return found;
  const layerTypes = manifest.layers.map((l) => l.mediaType);
  if (layerTypes.some(isModelPackType)) return "modelpack";
  if (layerTypes.some(isKitOpsType)) return "kitops";
  if (layerTypes.some(isOllamaType)) return "ollama";
  if (layerTypes.some((t) => t.startsWith("application/vnd.docker.ai."))) {
    return manifest.layers.some((l) => layerAnnotatedPath(l) !== undefined) ? "docker-v0.2" : "docker-v0.1";
  }
  return "unknown";
}

/** The path a layer's annotations give it (`org.cncf.model.filepath`, …, `org.opencontainers.image.title`). */
export function layerAnnotatedPath(layer: Descriptor): string | undefined {
  for (const key of PATH_ANNOTATIONS) {
    const value = layer.annotations?.[key];
    if (value) return value;
  }
  return undefined;
}

/**
 * How an unannotated single-file layer of a known type is named: numbered as shards
 * (`model.gguf`, else `model-00001-of-00003.gguf`…) or numbered as copies (`LICENSE`, else
 * `LICENSE`, `LICENSE-2`…); undefined for a layer that gets no name.
 */
function defaultName(
  type: ModelLayerType,
): { group: string; base: string; ext: string; shards: boolean } | undefined {
  if (type.packing !== "file" || type.compression !== undefined) return undefined;
  if (type.family === "ollama") return OLLAMA_NAMES[type.role];
  switch (type.role) {
    case "weights":
      return type.fileFormat
        ? { group: type.fileFormat, base: "model", ext: `.${type.fileFormat}`, shards: true }
        : undefined;
    case "projector":
      return { group: "projector", base: "model", ext: ".mmproj", shards: false };
    case "adapter":
      return { group: "adapter", base: "adapter", ext: ".gguf", shards: false };
    case "chat-template":
      return { group: "chat-template", base: "template", ext: ".jinja", shards: false };
    case "license":
      return { group: "license", base: "LICENSE", ext: "", shards: false };
    default:
      return undefined;
  }
}

/**
 * Unannotated Ollama layers, by role: the GGUF weights `model.gguf`, a projector `model.mmproj`, an
 * adapter `adapter.gguf`, the Go template `template`, then `system`, `params` (JSON), `messages`
 * (JSON), `LICENSE`, the configuration layer `config` and the tokenizer layers `tokenizer`. A second
 * layer of one role is numbered (`LICENSE-2`, `template-2`); several model layers are shards.
 */
const OLLAMA_NAMES: Partial<Record<string, { group: string; base: string; ext: string; shards: boolean }>> = {
  weights: { group: "gguf", base: "model", ext: ".gguf", shards: true },
  projector: { group: "projector", base: "model", ext: ".mmproj", shards: false },
  adapter: { group: "adapter", base: "adapter", ext: ".gguf", shards: false },
  "chat-template": { group: "template", base: "template", ext: "", shards: false },
  system: { group: "system", base: "system", ext: "", shards: false },
  params: { group: "params", base: "params", ext: "", shards: false },
  messages: { group: "messages", base: "messages", ext: "", shards: false },
  license: { group: "license", base: "LICENSE", ext: "", shards: false },
  config: { group: "config", base: "config", ext: "", shards: false },
  tokenizer: { group: "tokenizer", base: "tokenizer", ext: "", shards: false },
};

/** A tensor name usable as one path component under `tensors/` (no `/`, not `.` or `..`). */
const SAFE_TENSOR_NAME = /^(?!\.\.?$)[A-Za-z0-9._:+-]{1,200}$/;

/**
 * The file an Ollama tensor layer becomes: `tensors/<name>`, its name from the media type's
 * `name=` parameter; undefined (named by its digest) when that name is missing or is not a safe
 * path component.
 */
export function ollamaTensorPath(mediaType: string): string | undefined {
  const tensor = ollamaTensorParameters(mediaType);
  return tensor && "name" in tensor && SAFE_TENSOR_NAME.test(tensor.name)
    ? `tensors/${tensor.name}`
    : undefined;
}

/**
 * The file name of each layer, in manifest order. An annotated layer keeps its annotated path. An
 * unannotated one is named as Docker Model Runner's bundle names it (docker/model-runner
 * pkg/distribution/internal/bundle/unpack.go): one GGUF is `model.gguf`, several are
 * `model-00001-of-0000N.gguf` in layer order, and so for safetensors and DDUF; a projector is
 * `model.mmproj`, a chat template `template.jinja`, a license `LICENSE` (then `LICENSE-2`, …); a
 * LoRA adapter, which the bundle does not name, `adapter.gguf`. Ollama's layers are named as
 * `OLLAMA_NAMES` says; its tensor layers `tensors/<name>`. Any other layer (an archive, a
 * layer of unknown type) is undefined: an archive's files carry their own paths, and the pull names
 * an opaque file after its digest. A generated name an annotated layer already uses is not given.
 */
export function layerPaths(manifest: ImageManifest): (string | undefined)[] {
  const annotated = manifest.layers.map(layerAnnotatedPath);
  const taken = new Set(annotated.filter((p) => p !== undefined));
  const names = manifest.layers.map((layer, i) => {
    if (annotated[i] !== undefined) return undefined;
    const type = modelLayerType(layer.mediaType);
    if (type?.fileFormat === "tensor") return undefined;
    return type && defaultName(type);
  });
  const counts = new Map<string, number>();
  for (const name of names) if (name) counts.set(name.group, (counts.get(name.group) ?? 0) + 1);
  const seen = new Map<string, number>();
  return manifest.layers.map((_, i) => {
    const named = annotated[i];
    if (named !== undefined) return named;
    const name = names[i];
    if (!name) {
      const tensor = ollamaTensorPath(manifest.layers[i]?.mediaType ?? "");
      if (tensor === undefined || taken.has(tensor)) return undefined;
      taken.add(tensor); // a name given twice: the second layer is named by its digest
      return tensor;
    }
    const n = (seen.get(name.group) ?? 0) + 1;
    seen.set(name.group, n);
    const total = counts.get(name.group) as number;
    let path: string;
    if (name.shards && total > 1) {
      const width = Math.max(5, String(total).length);
      const pad = (k: number) => String(k).padStart(width, "0");
      path = `${name.base}-${pad(n)}-of-${pad(total)}${name.ext}`;
    } else {
      path = n === 1 ? `${name.base}${name.ext}` : `${name.base}-${n}${name.ext}`;
    }
    return taken.has(path) ? undefined : path;
  });
}
