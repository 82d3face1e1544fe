import { packTar } from "modern-tar";
import { safeEntryPath } from "../archive/tar.js";
import { type CreateHasher, digestStream } from "../digest/hasher.js";
import { createDefaultHasher } from "../digest/hashers.js";
import { OciError } from "../errors.js";
import type { Descriptor, ImageManifest } from "../oci/manifest.js";
import { MediaType, ModelMediaType } from "../oci/media-types.js";
import { pushBytes } from "../store/bytes.js";
import type { Store } from "../store/types.js";
import { readAll } from "../streams.js";
import { isWeightPath, tensorFileKind } from "../tensors/files.js";
import {
  type GgufHeader,
  type GgufItems,
  type GgufScalar,
  type GgufValueType,
  readGgufHeader,
} from "../tensors/gguf.js";
import { readHeader, type SafetensorsHeader } from "../tensors/safetensors.js";
import { CONFIG_BLOB_LIMIT, CONFIG_JSON_LIMIT } from "./model.js";

/** A file to pack: its path in the model folder and a way to read it (more than once). */
export interface PackFile {
  /** Its path in the model folder, `/`-separated and relative (`config.json`, `weights/model.safetensors`). */
  path: string;
  /** Its length in bytes. */
  size: number;
  /** The bytes from `offset` (default 0), `length` of them (default: to the end). */
  stream(offset?: number, length?: number): Promise<ReadableStream<Uint8Array>>;
}

/** The artifact format `packModel` writes: Docker model-spec v0.1 or v0.2, or CNCF ModelPack. */
export type PackFormat = "docker-v0.1" | "docker-v0.2" | "modelpack";

/** Options of `packModel`. */
export interface PackModelOptions {
  /** Default `docker-v0.1`. */
  format?: PackFormat;
  /** The store the manifest graph is written to. */
  store: Store;
  /** A name to tag the manifest with in the store. */
  tag?: string;
  /** Model name for the config (ModelPack `descriptor.name`). */
  name?: string;
  /** Hash implementation (default: feature-detected). */
  createHasher?: CreateHasher;
  /** Called as each file is hashed and stored. */
  onProgress?: (event: { path: string; bytes: number; total: number }) => void;
  /**
   * A GGUF model's multimodal projector (`docker model package --mmproj`), packed as
   * `application/vnd.docker.ai.mmproj`. Default: the folder's one `.gguf` file whose name holds
   * `mmproj`. GGUF weights in `docker-v0.1` only, as are the three below.
   */
  mmproj?: PackFile;
  /**
   * A Jinja chat template (`--chat-template`), packed as `application/vnd.docker.ai.chat.template.jinja`;
   * it must be UTF-8 text. Default: the folder's one `.jinja` file.
   */
  chatTemplate?: PackFile;
  /**
   * License files, in order (`--license`, repeatable), packed as `application/vnd.docker.ai.license`.
   * Default: the folder's `LICENSE*`/`LICENCE*` files, sorted.
   */
  licenses?: PackFile[];
  /**
   * The context size in tokens (`--context-size`), written as the config's `context_size`: a whole
   * number from 1 to 2147483647 (Model Runner keeps an int32). Default: the GGUF file's
   * `<architecture>.context_length`.
   */
  contextSize?: number;
}

/** What `packModel` wrote: the manifest's descriptor, the manifest, and its exact bytes. */
export interface PackResult {
  /** The manifest's descriptor: what `pushModel` and `copyGraph` take as the root. */
  descriptor: Descriptor;
  /** The manifest, parsed. */
  manifest: ImageManifest;
  /** The manifest's bytes as stored (their digest is `descriptor.digest`). */
  bytes: Uint8Array;
  /**
   * Files of the folder the artifact does not carry: a GGUF model in Docker Model Runner's shape holds
   * only the weights, a projector, a chat template and licenses (a README, a `config.json`… are left
   * out, and so are the folder's own projector, template or licenses when an option replaces them).
   */
  omitted?: string[];
}

const PATH = "org.cncf.model.filepath";
const TITLE = "org.opencontainers.image.title";
const encoder = new TextEncoder();
const PRECISION: Record<string, string> = {
  F32: "float32",
  F16: "float16",
  BF16: "bfloat16",
  F64: "float64",
  I8: "int8",
  U8: "uint8",
};

const isDoc = (path: string) =>
  /(^|\/)(readme|license|licence|notice)[^/]*$/i.test(path) || path.endsWith(".md");
const isLicense = (path: string) => /(^|\/)licen[cs]e[^/]*$/i.test(path);

/** Stores a file as a blob (hashing it first, then streaming it in). */
async function storeFile(
  store: Store,
  file: PackFile,
  mediaType: string,
  options: PackModelOptions,
  annotations?: Record<string, string>,
) {
  const digest = await digestStream(await file.stream(), options.createHasher ?? createDefaultHasher);
  const descriptor: Descriptor = {
    mediaType,
    digest,
    size: file.size,
    ...(annotations ? { annotations } : {}),
  };
  await store.push(descriptor, (offset) => file.stream(offset), {
    onProgress: (bytes, total) => options.onProgress?.({ path: file.path, bytes, total }),
  });
  return descriptor;
}

/** What the safetensors headers say: parameter count and the dominant dtype. */
async function weightFacts(weights: PackFile[]) {
  let parameters = 0;
  const bytesByDtype = new Map<string, number>();
  for (const file of weights.filter((f) => tensorFileKind(f.path) === "safetensors")) {
    const header: SafetensorsHeader = await readHeader(
      async (o, l) => readAll(await file.stream(o, l)),
      file.size,
      file.path,
    );
    for (const t of header.tensors) {
      parameters += t.shape.reduce((n, d) => n * d, 1);
      bytesByDtype.set(t.dtype, (bytesByDtype.get(t.dtype) ?? 0) + t.length);
    }
  }
  const dominant = [...bytesByDtype].sort((a, b) => b[1] - a[1])[0]?.[0];
  return { parameters, precision: dominant ? (PRECISION[dominant] ?? dominant.toLowerCase()) : undefined };
}

function humanCount(n: number): string {
  for (const [unit, size] of [
    ["T", 1e12],
    ["B", 1e9],
    ["M", 1e6],
    ["K", 1e3],
  ] as const) {
    if (n >= size) return `${Number((n / size).toFixed(n / size < 10 ? 1 : 0))}${unit}`;
  }
  return String(n);
}

/** A tar of small files, deterministic: sorted, mode 0644, mtime 0, no owner. */
async function configTar(files: PackFile[]): Promise<Uint8Array> {
  const entries = [];
  for (const file of [...files].sort((a, b) => (a.path < b.path ? -1 : 1))) {
    entries.push({
      header: {
        name: file.path,
        size: file.size,
        type: "file" as const,
        mode: 0o644,
        mtime: new Date(0),
        uid: 0,
        gid: 0,
        uname: "",
        gname: "",
      },
      body: await readAll(await file.stream()),
    });
  }
  return packTar(entries);
}

// --- GGUF in Docker Model Runner's shape -------------------------------------------------------
//
// What `docker model package --gguf` writes (docker/model-runner, read 2026-12): an OCI image
// manifest (no artifactType; pkg/distribution/internal/partial/partial.go ManifestForLayersWithVersion)
// whose config is `application/vnd.docker.ai.model.config.v0.1+json`, and whose layers are, in this
// order (cmd/cli/commands/package.go packageModel; pkg/distribution/builder/builder.go): the GGUF
// file, or every shard of a split model found from its first (`<name>-00001-of-0000N.gguf`,
// pkg/distribution/format/gguf.go DiscoverShards over gguf-parser-go's CompleteShardGGUFFilename), as
// `application/vnd.docker.ai.gguf.v3`; each `--license` as `…license`; `--chat-template` as
// `…chat.template.jinja`; `--mmproj` as `…mmproj` (pkg/distribution/types/config.go). The config file
// is `{config, descriptor, rootfs}` (types.ConfigFile): `config` holds format "gguf", quantization,
// parameters, architecture, size, the `gguf` map and context_size (format/gguf.go ExtractConfig,
// from gguf-parser-go v0.22.1), `--context-size` overriding the file's context length
// (internal/mutate/model.go), and `rootfs.diff_ids` lists every layer's digest. Each layer carries
// `org.cncf.model.filepath`, `org.cncf.model.file.metadata+json` and
// `org.cncf.model.file.mediatype.untested: "false"` (internal/partial/layer.go NewLayer). The older
// docker/model-distribution wrote the same layers without annotations (pkg/partial/layer.go); we
// follow the current one.
//
// Where we differ, on purpose: the filepath annotation names the file as Model Runner unpacks it
// (`model.gguf`, `model-0000i-of-0000N.gguf`, `model.mmproj`, `template.jinja`, `LICENSE`,
// `LICENSE-2`…; internal/bundle/unpack.go) rather than the packed file's own name, which Model
// Runner ignores for these layers, so every reader gets the folder Model Runner runs; the file
// metadata and the config state no time (mtime 1970-01-01, no `descriptor.created`), so packing the
// same files twice gives the same digest.

const GGUF_SHARD = /^(.*)-(\d{5})-of-(\d{5})\.gguf$/;
const isGguf = (path: string) => /\.gguf$/i.test(path);
const baseName = (path: string) => path.slice(path.lastIndexOf("/") + 1);
const INT32_MAX = 2 ** 31 - 1;
/** gguf-parser-go's `maxArraySize` in docker/model-runner format/gguf.go: longer arrays are left out. */
const GGUF_MAP_ARRAY_LIMIT = 50;

/**
 * gguf-parser-go's names for `general.file_type` (its GGUFFileType stringer, as v0.22.1 prints them:
 * ggml's ftype names, with llama.cpp's where the two enums disagree after a slash), index = value;
 * 33 and over is "Unknown".
 */
const FILE_TYPES = [
  "F32",
  "F16",
  "Q4_0",
  "Q4_1",
  "Q4_1_F16",
  "Q4_2",
  "Q4_3",
  "Q8_0",
  "Q5_0",
  "Q5_1",
  "Q2_K",
  "Q3_K/Q3_K_S",
  "Q4_K/Q3_K_M",
  "Q5_K/Q3_K_L",
  "Q6_K/Q4_K_S",
  "IQ2_XXS/Q4_K_M",
  "IQ2_XS/Q5_K_S",
  "IQ3_XXS/Q5_K_M",
  "IQ1_S/Q6_K",
  "IQ4_NL",
  "IQ3_S",
  "IQ2_S",
  "IQ4_XS",
  "IQ1_M",
  "BF16",
  "Q4_0_4x4",
  "Q4_0_4x8",
  "Q4_0_8x8",
  "TQ1_0",
  "TQ2_0",
  "IQ4_NL_4x4",
  "IQ4_NL_4x8",
  "IQ4_NL_8x8",
] as const;
const UNKNOWN_FILE_TYPE = FILE_TYPES.length;

/** The file type of the ggml type most tensors have (gguf-parser-go file_metadata.go GetFileType). */
const FILE_TYPE_OF_GGML: Record<string, number> = {
  F16: 1,
  Q4_0: 2,
  Q4_1: 3,
  Q8_0: 7,
  Q5_0: 8,
  Q5_1: 9,
  Q2_K: 10,
  Q6_K: 18,
  IQ2_XXS: 15,
  IQ2_XS: 16,
  IQ3_XXS: 17,
  IQ1_S: 18,
  IQ4_NL: 19,
  IQ3_S: 20,
  IQ2_S: 21,
  IQ4_XS: 22,
  IQ1_M: 23,
  BF16: 24,
  TQ1_0: 28,
  TQ2_0: 29,
};

/**
 * The file type guessed from the tensor types when `general.file_type` is missing or unknown, as
 * gguf-parser-go's guessFileType/GetFileType do: the types of the `blk.*` tensors (the `*.weight`
 * ones for a diffusion model) by count, F32 passed over unless alone. Go sorts equal counts in no
 * fixed order; here the type seen first wins.
 */
function guessFileType(tensors: GgufHeader["tensors"], architecture: string): number {
  const counts = new Map<string, number>();
  for (const t of tensors) {
    const counted = architecture === "diffusion" ? t.name.endsWith(".weight") : t.name.startsWith("blk.");
    if (counted) counts.set(t.dtype, (counts.get(t.dtype) ?? 0) + 1);
  }
  const ts = [...counts].sort((a, b) => b[1] - a[1]).map(([type]) => type);
  if (ts.length === 0) return UNKNOWN_FILE_TYPE;
  if (ts[0] === "F32") {
    if (ts.length === 1) return 0;
    ts[0] = ts[1] as string;
  }
  switch (ts[0]) {
    case "Q3_K":
      return ts[1] === "Q4_K" ? 12 : ts[1] === "Q5_K" ? 13 : 11;
    case "Q4_K":
      return ts.length > 2 && ts[2] === "Q6_K" ? 15 : 14;
    case "Q5_K":
      return ts.length > 2 && ts[2] === "Q6_K" ? 17 : 16;
    default:
      return FILE_TYPE_OF_GGML[ts[0] as string] ?? UNKNOWN_FILE_TYPE;
  }
}

/**
 * `x` with `digits` decimals as Go's strconv.FormatFloat(x, 'f', digits) writes it: the exact value
 * rounded, a tie to even (JavaScript's toFixed takes the larger), no exponent, `-` kept on a
 * negative zero, `NaN`, `+Inf`, `-Inf`.
 */
export function goFixed(x: number, digits: number): string {
  if (Number.isNaN(x)) return "NaN";
  if (!Number.isFinite(x)) return x > 0 ? "+Inf" : "-Inf";
  const sign = x < 0 || Object.is(x, -0) ? "-" : "";
  const a = Math.abs(x);
  let text: string;
  if (a >= 1e21) {
    // an integer this large; toFixed would switch to an exponent
    text = BigInt(a).toString() + (digits > 0 ? `.${"0".repeat(digits)}` : "");
  } else {
    // A tie (the exact value halfway between two results) is a dyadic fraction odd/2^(digits+1).
    const halves = a * 2 ** (digits + 1);
    if (Number.isInteger(halves) && halves % 2 === 1) {
      let n = Math.floor(a * 10 ** digits); // exact: the product is representable
      if (n % 2 === 1) n += 1;
      const s = String(n).padStart(digits + 1, "0");
      text = digits > 0 ? `${s.slice(0, -digits)}.${s.slice(-digits)}` : s;
    } else {
      text = a.toFixed(digits);
    }
  }
  return sign + text;
}

/** gguf-parser-go's scalars after Model Runner's normalizeUnitString: `16.78M`, `2.5GiB`, `160`. */
function goScaled(value: number, units: readonly (readonly [number, string])[], suffix: string): string {
  if (value === 0) return `0${suffix}`;
  const [base, unit] = units.find(([b]) => value >= b) ?? [1, ""];
  let f = goFixed(value / base, 2);
  if (f.endsWith(".00")) f = f.slice(0, -3);
  return `${f} ${unit}${suffix}`.trim().replace(/([0-9]+(?:\.[0-9]+)?)\s+([A-Za-z]+)/g, "$1$2");
}

/** GGUFParametersScalar.String (gguf-parser-go scalar.go), normalized. */
const goParameters = (n: number) =>
  goScaled(
    n,
    [
      [1e15, "Q"],
      [1e12, "T"],
      [1e9, "B"],
      [1e6, "M"],
      [1e3, "K"],
    ],
    "",
  );

/** GGUFBytesScalar.String (gguf-parser-go scalar.go), normalized: binary units before decimal ones. */
const goBytes = (n: number) =>
  goScaled(
    n,
    [
      [2 ** 50, "Pi"],
      [1e15, "P"],
      [2 ** 40, "Ti"],
      [1e12, "T"],
      [2 ** 30, "Gi"],
      [1e9, "G"],
      [2 ** 20, "Mi"],
      [1e6, "M"],
      [1024, "Ki"],
      [1e3, "K"],
    ],
    "B",
  );

/** A scalar as Model Runner's extractGGUFMetadata writes it: `%d`, `%f`, `%t`, the string. */
function goScalar(value: GgufScalar, type: GgufValueType): string {
  if (type === "f32" || type === "f64") return goFixed(value as number, 6);
  return String(value);
}

/** One GGUF file read for packing: the file and its header. */
interface ReadGguf {
  file: PackFile;
  header: GgufHeader;
}

const readOf = (file: PackFile) => async (offset: number, length: number) =>
  readAll(await file.stream(offset, length));

/** Reads and checks a GGUF file's header; a file that is not GGUF is refused as bad input. */
async function readGgufForPack(file: PackFile, what: string): Promise<ReadGguf> {
  let header: GgufHeader;
  try {
    header = await readGgufHeader(readOf(file), file.size, file.path);
  } catch (error) {
    if (!(error instanceof OciError) || error.code !== "INVALID_CHECKPOINT") throw error;
    const reason = error.message.replace(/^Cannot read [^:]*: /, "");
    throw new OciError(
      "INVALID_ARGUMENT",
      `Cannot pack ${file.path}: ${what} must be a GGUF file, and ${reason}`,
    );
  }
  return { file, header };
}

/**
 * The config `docker model package` writes for GGUF weights (docker/model-runner
 * pkg/distribution/format/gguf.go ExtractConfig over gguf-parser-go): every shard's key/values in
 * one map (`split.no` left out, a later shard's value winning), arrays of more than 50 items left
 * out and the others joined with ", ".
 */
async function dockerGgufConfig(shards: ReadGguf[], contextSize: number | undefined) {
  const gguf = new Map<string, string>();
  const numbers = new Map<string, number | bigint>();
  for (const { header } of shards) {
    for (const [key, value] of header.metadata.entries) {
      if (key === "split.no") continue;
      const type = header.metadata.types.get(key);
      if (!type) continue;
      if (typeof value === "number" || typeof value === "bigint") numbers.set(key, value);
      if (typeof value !== "object") {
        gguf.set(key, goScalar(value, type));
        continue;
      }
      if (value.length > GGUF_MAP_ARRAY_LIMIT) continue;
      const items: GgufItems = await header.metadata.array(key);
      const item = value.itemType;
      gguf.set(
        key,
        items
          .filter((v): v is GgufScalar => !Array.isArray(v))
          .map((v) => goScalar(v, item))
          .join(", "),
      );
    }
  }
  const str = (key: string) => {
    const v = shards.flatMap((s) => {
      const x = s.header.metadata.entries.get(key);
      return typeof x === "string" ? [x] : [];
    });
    return v.at(-1);
  };
  const tensors = shards.flatMap((s) => s.header.tensors);
  // gguf-parser-go file_metadata.go Metadata: controlvector.model_hint, else general.architecture,
  // else "diffusion" or "llama" from the tensor names.
  const architecture = (
    str("controlvector.model_hint") ??
    str("general.architecture") ??
    (tensors.some((t) => /^model\.diffusion_model\.|^double_blocks\./.test(t.name)) ? "diffusion" : "llama")
  ).trim();
  const fileTypeValue = numbers.get("general.file_type");
  let fileType = fileTypeValue === undefined ? UNKNOWN_FILE_TYPE : Number(fileTypeValue) >>> 0;
  if (fileType >= UNKNOWN_FILE_TYPE) fileType = guessFileType(tensors, architecture);
  const parameters = tensors.reduce((n, t) => n + t.shape.reduce((m, d) => m * d, 1), 0);
  // gguf-parser-go file.go: the model's size is each file's bytes after its header.
  const size = shards.reduce((n, s) => n + s.file.size - s.header.metadata.dataOffset, 0);
  const contextLength = Number(numbers.get(`${architecture}.context_length`) ?? 0);
  const context =
    contextSize ?? (contextLength > 0 && contextLength <= INT32_MAX ? contextLength : undefined);
  const sortedMap = Object.fromEntries([...gguf].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  return {
    format: "gguf",
    quantization: FILE_TYPES[fileType] ?? "Unknown",
    parameters: goParameters(parameters),
    ...(architecture ? { architecture } : {}),
    size: goBytes(size),
    ...(gguf.size > 0 ? { gguf: sortedMap } : {}),
    ...(context !== undefined ? { context_size: context } : {}),
  };
}

/** The weights in shard order: one GGUF file, or every part of one split model. */
function ggufShards(weights: PackFile[]): PackFile[] {
  const [first] = weights;
  if (weights.length === 1 && first && !GGUF_SHARD.test(baseName(first.path))) return weights;
  const parsed = weights.map((file) => ({ file, match: GGUF_SHARD.exec(file.path) }));
  const [head] = parsed;
  const oneModel =
    head?.match &&
    parsed.every((p) => p.match && p.match[1] === head.match?.[1] && p.match[3] === head.match?.[3]);
  if (!head?.match || !oneModel) {
    throw new OciError(
      "INVALID_ARGUMENT",
      `Cannot pack: the folder holds ${weights.length} GGUF models (${weights.map((w) => w.path).join(", ")}); pack one, or the parts of one split model named <name>-00001-of-0000N.gguf`,
    );
  }
  const [, prefix, , totalText] = head.match;
  const total = Number(totalText);
  const byIndex = new Map(parsed.map((p) => [Number(p.match?.[2]), p.file]));
  for (const [index, file] of byIndex) {
    if (index < 1 || index > total)
      throw new OciError(
        "INVALID_ARGUMENT",
        `Cannot pack ${file.path}: it is no part of a ${total}-part model (its number is ${index})`,
      );
  }
  const shards: PackFile[] = [];
  for (let i = 1; i <= total; i++) {
    const file = byIndex.get(i);
    if (!file) {
      const missing = `${prefix}-${String(i).padStart(5, "0")}-of-${totalText}.gguf`;
      throw new OciError(
        "INVALID_ARGUMENT",
        `Cannot pack ${head.file.path}: shard ${missing} is missing; a split GGUF model needs all ${total} parts`,
      );
    }
    shards.push(file);
  }
  return shards;
}

/** The one file of a kind in the folder, when there is no option; more than one is refused. */
function onlyOne(candidates: PackFile[], what: string, option: string): PackFile | undefined {
  if (candidates.length > 1)
    throw new OciError(
      "INVALID_ARGUMENT",
      `Cannot pack: the folder holds ${candidates.length} ${what} (${candidates.map((c) => c.path).join(", ")}); name the one to pack with ${option}`,
    );
  return candidates[0];
}

/** Checks that a chat template is text: UTF-8, no NUL, no larger than a config file may be. */
async function checkChatTemplate(file: PackFile): Promise<void> {
  const fail = (reason: string) =>
    new OciError(
      "INVALID_ARGUMENT",
      `Cannot pack ${file.path}: a chat template must be Jinja text, and ${reason}`,
    );
  if (file.size > CONFIG_JSON_LIMIT)
    throw fail(`it is ${file.size} bytes, over the ${CONFIG_JSON_LIMIT}-byte limit`);
  const bytes = await readAll(await file.stream(0, file.size));
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw fail("it is not UTF-8");
  }
  const nul = text.indexOf("\0");
  if (nul >= 0) throw fail(`it holds a NUL character (at ${nul})`);
}

/** Annotations of a layer as Model Runner's NewLayer writes them, named as Model Runner unpacks it. */
function dockerLayerAnnotations(name: string, size: number): Record<string, string> {
  return {
    "org.cncf.model.file.mediatype.untested": "false",
    "org.cncf.model.file.metadata+json": JSON.stringify({
      name,
      mode: 0o644,
      uid: 0,
      gid: 0,
      size,
      mtime: "1970-01-01T00:00:00Z",
      typeflag: 0,
    }),
    [PATH]: name,
  };
}

/** Packs GGUF weights as `docker model package` does (see the notes above). */
async function packDockerGguf(files: PackFile[], options: PackModelOptions): Promise<PackResult> {
  const { store } = options;
  const createHasher = options.createHasher ?? createDefaultHasher;
  const { contextSize } = options;
  if (
    contextSize !== undefined &&
    !(Number.isInteger(contextSize) && contextSize > 0 && contextSize <= INT32_MAX)
  ) {
    throw new OciError(
      "INVALID_ARGUMENT",
      `Cannot pack: the context size must be a whole number of tokens from 1 to ${INT32_MAX}, not ${contextSize}`,
    );
  }
  const others = files.filter((f) => !isGguf(f.path));
  const otherWeights = others.filter((f) => isWeightPath(f.path));
  if (otherWeights.length > 0)
    throw new OciError(
      "INVALID_ARGUMENT",
      `Cannot pack: the folder holds GGUF weights and others (${otherWeights.map((f) => f.path).join(", ")}); pack them apart`,
    );
  const omitted: string[] = [];
  const used = new Set<PackFile>();
  const ggufs = files.filter((f) => isGguf(f.path));
  const projectors = ggufs.filter((f) => /mmproj/i.test(baseName(f.path)));
  const mmproj = options.mmproj ?? onlyOne(projectors, "multimodal projectors", "--mmproj (mmproj)");
  const templates = others.filter((f) => /\.jinja$/i.test(f.path));
  const chatTemplate =
    options.chatTemplate ?? onlyOne(templates, "chat templates", "--chat-template (chatTemplate)");
  const licenses =
    options.licenses ?? others.filter((f) => isLicense(f.path)).sort((a, b) => (a.path < b.path ? -1 : 1));
  const weights = ggufs.filter((f) => !projectors.includes(f));
  if (weights.length === 0)
    throw new OciError(
      "INVALID_ARGUMENT",
      `Cannot pack: the folder holds no GGUF weights besides its projector (${projectors.map((p) => p.path).join(", ")})`,
    );
  const shards = ggufShards(weights);
  for (const f of [...shards, mmproj, chatTemplate, ...licenses]) if (f) used.add(f);
  for (const f of files) if (!used.has(f)) omitted.push(f.path);

  // Everything is read and checked before the first blob is written.
  const read = [];
  for (const shard of shards) read.push(await readGgufForPack(shard, "the model"));
  if (mmproj) await readGgufForPack(mmproj, "a multimodal projector");
  if (chatTemplate) await checkChatTemplate(chatTemplate);
  const config = await dockerGgufConfig(read, contextSize);
  const configOf = (diffIds: string[]) =>
    encoder.encode(JSON.stringify({ config, descriptor: {}, rootfs: { type: "rootfs", diff_ids: diffIds } }));
  // Every digest has the same length: the config's size is known before a layer is hashed.
  const layerCount = shards.length + licenses.length + (chatTemplate ? 1 : 0) + (mmproj ? 1 : 0);
  const estimate = configOf(Array(layerCount).fill(`sha256:${"0".repeat(64)}`)).byteLength;
  if (estimate > CONFIG_BLOB_LIMIT)
    throw new OciError(
      "INVALID_ARGUMENT",
      `Cannot pack: the model's config would be ${estimate} bytes, over the ${CONFIG_BLOB_LIMIT}-byte limit readers hold a config to; its GGUF metadata is too large`,
    );

  const layers: Descriptor[] = [];
  const add = async (file: PackFile, mediaType: string, name: string) =>
    layers.push(await storeFile(store, file, mediaType, options, dockerLayerAnnotations(name, file.size)));
  for (const [i, shard] of shards.entries()) {
    const name =
      shards.length === 1
        ? "model.gguf"
        : `model-${String(i + 1).padStart(5, "0")}-of-${String(shards.length).padStart(5, "0")}.gguf`;
    await add(shard, ModelMediaType.DockerGguf, name);
  }
  for (const [i, license] of licenses.entries())
    await add(license, ModelMediaType.DockerLicense, i === 0 ? "LICENSE" : `LICENSE-${i + 1}`);
  if (chatTemplate) await add(chatTemplate, ModelMediaType.DockerChatTemplate, "template.jinja");
  if (mmproj) await add(mmproj, ModelMediaType.DockerMmproj, "model.mmproj");

  const configBytes = configOf(layers.map((l) => l.digest));
  const configDescriptor = await pushBytes(store, configBytes, ModelMediaType.DockerConfigV01, createHasher);
  return { ...(await writeManifest(configDescriptor, layers, undefined, options)), omitted };
}

/** Writes the manifest of `config` and `layers` (an OCI image manifest) and tags it. */
async function writeManifest(
  config: Descriptor,
  layers: Descriptor[],
  artifactType: string | undefined,
  options: PackModelOptions,
): Promise<PackResult> {
  const manifest: ImageManifest = {
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    ...(artifactType ? { artifactType } : {}),
    config,
    layers,
  };
  const bytes = encoder.encode(JSON.stringify(manifest));
  const descriptor = await pushBytes(
    options.store,
    bytes,
    MediaType.OciManifest,
    options.createHasher ?? createDefaultHasher,
  );
  if (artifactType) descriptor.artifactType = artifactType;
  if (options.tag) await options.store.tag(options.tag, descriptor);
  return { descriptor, manifest, bytes };
}

/**
 * Packs a model folder into an OCI manifest graph in a store, in one of the real formats. Weight
 * files are streamed (hashed, then stored), never held whole; the result is deterministic — packing
 * the same files twice gives the same manifest digest.
 *
 * GGUF weights packed as `docker-v0.1` (the default) take the shape `docker model package` writes:
 * the GGUF file or every part of a split model, the licenses, the chat template and the multimodal
 * projector as Model Runner's layers, and a config with format, quantization, parameters,
 * architecture, size, the GGUF metadata and the context size; the folder's other files are left
 * out (`omitted`). `mmproj`, `chatTemplate`, `licenses` and `contextSize` apply to this shape only.
 *
 * @param input The model folder's files (`packFilesFromDirectory` from `oci-model-loader/node` reads one).
 * @param options The store to write to, the format, a tag.
 * @returns The manifest written; `pushModel` sends it to a registry.
 *
 * @example
 * ```ts
 * const files = await packFilesFromDirectory("./tiny-llm"); // from oci-model-loader/node
 * const store = createMemoryStore();
 * const { descriptor } = await packModel(files, { format: "modelpack", store, tag: "v1" });
 * await pushModel(store, descriptor, "ghcr.io/acme/tiny-llm:v1");
 * ```
 */
export async function packModel(input: PackFile[], options: PackModelOptions): Promise<PackResult> {
  const format = options.format ?? "docker-v0.1";
  const createHasher = options.createHasher ?? createDefaultHasher;
  const { store } = options;
  const files = [...input].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  for (const file of files) {
    if (safeEntryPath(file.path, "the model folder") !== file.path) {
      throw new OciError("INVALID_ARGUMENT", `Cannot pack ${file.path}: use plain relative paths`);
    }
  }
  const weights = files.filter((f) => isWeightPath(f.path));
  const others = files.filter((f) => !isWeightPath(f.path));
  if (weights.length === 0)
    throw new OciError(
      "INVALID_ARGUMENT",
      "Cannot pack: the folder holds no weight files (.safetensors, .gguf, …)",
    );
  const gguf = weights.some((f) => f.path.endsWith(".gguf"));
  if (format === "docker-v0.1" && weights.some((f) => isGguf(f.path))) return packDockerGguf(files, options);
  const extras =
    options.mmproj || options.chatTemplate || options.licenses || options.contextSize !== undefined;
  if (extras)
    throw new OciError(
      "INVALID_ARGUMENT",
      `Cannot pack: a projector, chat template, license or context size is given only with GGUF weights packed as docker-v0.1 (Docker Model Runner's shape), not with ${gguf ? "GGUF" : "these"} weights as ${format}`,
    );
  const facts = await weightFacts(weights);
  const configJson = others.find((f) => f.path === "config.json");
  if (configJson && configJson.size > CONFIG_JSON_LIMIT) {
    throw new OciError(
      "INVALID_ARGUMENT",
      `Cannot pack config.json: it is ${configJson.size} bytes, over the ${CONFIG_JSON_LIMIT}-byte limit for a model's config.json; keep large data in other files`,
    );
  }
  // Read no more than the size checked, even if the file grew since.
  const modelConfig = configJson
    ? (JSON.parse(
        new TextDecoder().decode(await readAll(await configJson.stream(0, configJson.size))),
      ) as Record<string, unknown>)
    : {};
  const architecture = Array.isArray(modelConfig.architectures)
    ? String(modelConfig.architectures[0])
    : (modelConfig.model_type as string | undefined);
  // What the config's `format` says: GGUF or safetensors weights, else the weights' own extension (onnx, bin…).
  const weightFormat = gguf
    ? "gguf"
    : weights.some((f) => f.path.endsWith(".safetensors"))
      ? "safetensors"
      : ((weights[0] as PackFile).path.split(".").pop() as string).toLowerCase();
  const totalSize = files.reduce((n, f) => n + f.size, 0);

  const layers: Descriptor[] = [];
  let config: Descriptor;
  let artifactType: string | undefined;
  if (format === "modelpack") {
    for (const file of files) {
      const kind = isWeightPath(file.path) ? "weight" : isDoc(file.path) ? "doc" : "weight.config";
      layers.push(
        await storeFile(store, file, `application/vnd.cncf.model.${kind}.v1.raw`, options, {
          [PATH]: file.path,
        }),
      );
    }
    const body = {
      descriptor: { ...(options.name ? { name: options.name } : {}) },
      config: {
        ...(architecture ? { architecture } : {}),
        format: weightFormat,
        ...(facts.precision ? { precision: facts.precision } : {}),
        ...(facts.parameters ? { paramSize: humanCount(facts.parameters) } : {}),
      },
      modelfs: { type: "layers", diffIds: layers.map((l) => l.digest) },
    };
    config = await pushBytes(
      store,
      encoder.encode(JSON.stringify(body)),
      ModelMediaType.ModelPackConfig,
      createHasher,
    );
    artifactType = ModelMediaType.ModelPackManifest;
  } else {
    // Docker's types name GGUF and safetensors; any other weight (ONNX, a PyTorch .bin) is a plain
    // model file, a weight by its name when pulled.
    const weightType = (path: string) =>
      path.endsWith(".gguf")
        ? ModelMediaType.DockerGguf
        : path.endsWith(".safetensors")
          ? ModelMediaType.DockerSafetensors
          : "application/vnd.docker.ai.model.file";
    if (format === "docker-v0.2") {
      for (const file of files) {
        const mediaType = isWeightPath(file.path)
          ? weightType(file.path)
          : isLicense(file.path)
            ? "application/vnd.docker.ai.license"
            : "application/vnd.docker.ai.model.file";
        layers.push(await storeFile(store, file, mediaType, options, { [PATH]: file.path }));
      }
    } else {
      for (const file of weights)
        layers.push(await storeFile(store, file, weightType(file.path), options, { [TITLE]: file.path }));
      for (const file of others.filter((f) => isLicense(f.path))) {
        layers.push(
          await storeFile(store, file, "application/vnd.docker.ai.license", options, { [TITLE]: file.path }),
        );
      }
      const tarred = others.filter((f) => !isLicense(f.path));
      if (tarred.length)
        layers.push(
          await pushBytes(store, await configTar(tarred), ModelMediaType.DockerConfigTar, createHasher),
        );
    }
    const body = {
      config: {
        format: weightFormat,
        ...(architecture ? { architecture } : {}),
        ...(facts.parameters ? { parameters: humanCount(facts.parameters) } : {}),
        ...(facts.precision ? { quantization: facts.precision } : {}),
        size: String(totalSize),
      },
      descriptor: {},
    };
    const mediaType =
      format === "docker-v0.2" ? ModelMediaType.DockerConfigV02 : ModelMediaType.DockerConfigV01;
    config = await pushBytes(store, encoder.encode(JSON.stringify(body)), mediaType, createHasher);
  }

  return writeManifest(config, layers, artifactType, options);
}
