/**
 * ONNX Runtime Web (`onnxruntime-web`) over OCI registries: an `InferenceSession` made from a pulled
 * model's `.onnx` file and its external data files, read from this library's store. `onnxruntime-web`
 * is an optional peer dependency: nothing here imports it; the caller passes its `ort` module, and the
 * types below are the parts of its interfaces this module uses.
 *
 * @module
 */
import { OciError } from "../errors.js";
import type { Model } from "../model/model.js";

/**
 * One external data file as ONNX Runtime takes it: its path as the graph names it, and its bytes.
 *
 * @example
 * ```ts
 * import type { OrtExternalDataFile } from "oci-model-loader/onnxruntime";
 *
 * const file: OrtExternalDataFile = { path: "model.onnx_data", data: new Blob([new Uint8Array(16)]) };
 * ```
 */
export interface OrtExternalDataFile {
  /** The `location` the graph's tensors name, relative to the `.onnx` file's folder (`model.onnx_data`). */
  path: string;
  /** The file: a Blob here (Chromium keeps its bytes out of the JS heap). */
  data: Blob | Uint8Array | string;
}

/**
 * The session options this module sets (`externalData`); any other option passes through.
 *
 * @example
 * ```ts
 * import type { OrtSessionOptionsLike } from "oci-model-loader/onnxruntime";
 *
 * const options: OrtSessionOptionsLike = { externalData: ["model.onnx_data"] }; // a URL beside the model
 * ```
 */
export interface OrtSessionOptionsLike {
  /** External data files, as ONNX Runtime's `SessionOptions.externalData`. */
  externalData?: readonly (OrtExternalDataFile | string)[];
}

/**
 * The part of the `ort` module this module uses (`import * as ort from "onnxruntime-web"`).
 *
 * @example
 * ```ts
 * import type { OrtModuleLike } from "oci-model-loader/onnxruntime";
 * import * as ort from "onnxruntime-web";
 *
 * const runtime: OrtModuleLike<ort.InferenceSession> = ort;
 * ```
 */
export interface OrtModuleLike<Session> {
  /** `ort.InferenceSession`. */
  InferenceSession: {
    /** Creates a session from the model's bytes. */
    create(model: Uint8Array, options?: OrtSessionOptionsLike): Promise<Session>;
  };
}

/**
 * Options of `createOnnxSession`.
 *
 * @example
 * ```ts
 * import type { OnnxSessionOptions } from "oci-model-loader/onnxruntime";
 *
 * const options: OnnxSessionOptions = {
 *   path: "onnx/decoder_model_merged.onnx",
 *   externalData: ["onnx/decoder_model_merged.onnx_data"],
 *   sessionOptions: { executionProviders: ["webgpu", "wasm"] },
 * };
 * ```
 */
export interface OnnxSessionOptions {
  /**
   * The `.onnx` file's path in the model. Default: its only `.onnx` file, else `onnx/model.onnx`, else
   * `model.onnx`.
   */
  path?: string;
  /**
   * The external data files' paths in the model. Default: the files beside the `.onnx` file named
   * after it as ONNX and transformers.js name them: `<file>_data`, `<file>_data_<n>`, `<file>.data`.
   */
  externalData?: readonly string[];
  /** ONNX Runtime's own session options (execution providers, graph optimisation…), passed on. */
  sessionOptions?: OrtSessionOptionsLike & Record<string, unknown>;
}

/** Reads a stream into one array of `size` bytes (one copy, no chunk list), checking the size. */
async function readExactly(
  stream: ReadableStream<Uint8Array>,
  size: number,
  what: string,
): Promise<Uint8Array> {
  const out = new Uint8Array(size);
  let at = 0;
  const reader = stream.getReader();
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    if (at + r.value.byteLength > size) {
      await reader.cancel();
      throw new OciError("SIZE_MISMATCH", `Cannot read ${what}: the store holds more than its ${size} bytes`);
    }
    out.set(r.value, at);
    at += r.value.byteLength;
  }
  if (at !== size)
    throw new OciError("SIZE_MISMATCH", `Cannot read ${what}: the store holds ${at} of its ${size} bytes`);
  return out;
}

/**
 * The `.onnx` file a model is run from: `path`, else its only one, else `onnx/model.onnx`, else
 * `model.onnx`.
 *
 * @param model A pulled model.
 * @param path The file asked for, if any.
 * @returns Its path in the model.
 * @throws {OciError} `NOT_FOUND` when `path` is not in the model; `INVALID_ARGUMENT` when none is
 *   found or several could be.
 *
 * @example
 * ```ts
 * import { pullModel } from "oci-model-loader";
 * import { onnxModelPath } from "oci-model-loader/onnxruntime";
 *
 * const model = await pullModel("ghcr.io/acme/tiny-bert:v1", { weights: false });
 * console.log(onnxModelPath(model)); // "onnx/model.onnx"
 * ```
 */
export function onnxModelPath(model: Model, path?: string): string {
  if (path !== undefined) {
    if (!model.files.has(path))
      throw new OciError(
        "NOT_FOUND",
        `Cannot create an ONNX session from ${model.reference}: it has no file ${path}`,
      );
    return path;
  }
  const onnx = [...model.files.keys()].filter((p) => p.endsWith(".onnx"));
  if (onnx.length === 1) return onnx[0] as string;
  for (const candidate of ["onnx/model.onnx", "model.onnx"]) if (model.files.has(candidate)) return candidate;
  throw new OciError(
    "INVALID_ARGUMENT",
    onnx.length === 0
      ? `Cannot create an ONNX session from ${model.reference}: it has no .onnx file`
      : `Cannot create an ONNX session from ${model.reference}: it has ${onnx.length} .onnx files (${onnx.join(", ")}); say which with \`path\``,
  );
}

/**
 * The external data files of `path` found by name: `<file>_data`, `<file>_data_<n>`, `<file>.data`
 * beside it (in its folder), sorted.
 *
 * @param model A pulled model.
 * @param path The `.onnx` file's path in the model.
 * @returns The paths in the model of its external data files.
 *
 * @example
 * ```ts
 * import { pullModel } from "oci-model-loader";
 * import { onnxExternalDataPaths } from "oci-model-loader/onnxruntime";
 *
 * const model = await pullModel("ghcr.io/acme/tiny-bert:v1", { weights: false });
 * console.log(onnxExternalDataPaths(model, "onnx/model.onnx")); // ["onnx/model.onnx_data"]
 * ```
 */
export function onnxExternalDataPaths(model: Model, path: string): string[] {
  const slash = path.lastIndexOf("/");
  const dir = path.slice(0, slash + 1);
  const base = path.slice(slash + 1);
  const named = (name: string) =>
    name === `${base}_data` ||
    name === `${base}.data` ||
    (name.startsWith(`${base}_data_`) && /^\d+$/.test(name.slice(base.length + 6)));
  return [...model.files.keys()]
    .filter((p) => p.startsWith(dir) && !p.slice(dir.length).includes("/") && named(p.slice(dir.length)))
    .sort();
}

/**
 * Creates an ONNX Runtime `InferenceSession` from a pulled model: its `.onnx` file read from the
 * store, and its external data files handed to ONNX Runtime as `Blob`s made from the store's
 * streams (`externalData`, each under its path relative to the `.onnx` file's folder). A Blob's bytes
 * stay out of the JS heap in Chromium until ONNX Runtime reads them: its JSPI build
 * (`onnxruntime-web/jspi`) streams them into the session, the others read each file once
 * (`blob.arrayBuffer()`), as they would a URL. The `.onnx` file itself is read into one array, as
 * ONNX Runtime needs it whole (an external-data model's graph file is small).
 *
 * Set ONNX Runtime's own `env.wasm.wasmPaths` to files you serve (its npm package's), or it loads them
 * from a CDN.
 *
 * @param ort The `onnxruntime-web` module (`import * as ort from "onnxruntime-web"`).
 * @param model A model pulled with its weights (`pullModel`).
 * @param options Which `.onnx` file and external data files, and ONNX Runtime's session options.
 * @returns The session, from `ort.InferenceSession.create`.
 * @throws {OciError} `NOT_FOUND` when a file named is not in the model or its blob not in the store;
 *   `INVALID_ARGUMENT` when the model has several `.onnx` files and `path` is not given. ONNX
 *   Runtime's own errors pass through.
 *
 * @example
 * ```ts
 * import * as ort from "onnxruntime-web";
 * import { pullModel } from "oci-model-loader";
 * import { createOnnxSession } from "oci-model-loader/onnxruntime";
 *
 * ort.env.wasm.wasmPaths = "/ort/"; // onnxruntime-web's dist files, served by you
 * const model = await pullModel("ghcr.io/acme/tiny-bert:v1");
 * const session = await createOnnxSession(ort, model, { sessionOptions: { executionProviders: ["wasm"] } });
 * console.log(session.inputNames, session.outputNames);
 * ```
 */
export async function createOnnxSession<Session>(
  ort: OrtModuleLike<Session>,
  model: Model,
  options: OnnxSessionOptions = {},
): Promise<Session> {
  const path = onnxModelPath(model, options.path);
  const slash = path.lastIndexOf("/");
  const dataPaths = options.externalData ?? onnxExternalDataPaths(model, path);
  const externalData: OrtExternalDataFile[] = [];
  for (const dataPath of dataPaths) {
    const file = model.file(dataPath);
    if (slash >= 0 && !dataPath.startsWith(path.slice(0, slash + 1)))
      throw new OciError(
        "INVALID_ARGUMENT",
        `Cannot create an ONNX session from ${model.reference}: external data ${dataPath} is not in the folder of ${path}`,
      );
    const blob = await file.blob(); // over the stored files themselves in OPFS: no copy through the heap
    if (blob.size !== file.size)
      throw new OciError(
        "SIZE_MISMATCH",
        `Cannot read ${dataPath} of ${model.reference}: the store holds ${blob.size} of its ${file.size} bytes`,
      );
    externalData.push({ path: dataPath.slice(slash + 1), data: blob });
  }
  const onnx = model.file(path);
  const bytes = await readExactly(await onnx.stream(), onnx.size, `${path} of ${model.reference}`);
  const given = options.sessionOptions;
  const sessionOptions = { ...given, externalData: [...(given?.externalData ?? []), ...externalData] };
  return ort.InferenceSession.create(bytes, sessionOptions);
}
