import type { TensorDtype } from "./ggml-types.js";
import type { TensorInfo } from "./safetensors.js";

/** A tensor and the file it lives in. */
export interface TensorEntry extends Omit<TensorInfo, "dtype"> {
  /**
   * Its element type: a safetensors dtype, or a GGUF tensor's ggml type (`Q4_K`…), whose `length`
   * is whole blocks.
   */
  dtype: TensorDtype;
  /** The path of the model file it is in. */
  file: string;
  /**
   * A deflated zip member holding the data (checkpoints): `offset` is then within the member's
   * decompressed bytes, not the file.
   */
  member?: string;
}

/** A tensor file to index: its size and a ranged reader (a store, or the registry with `Range`). */
export interface TensorFile {
  path: string;
  size: number;
  /**
   * The media type of the layer it came from, when known: an Ollama tensor layer
   * (`application/vnd.ollama.image.tensor; name=…; dtype=…; shape=…`) is one tensor, the whole file.
   */
  mediaType?: string;
  read(offset: number, length: number): Promise<Uint8Array>;
}

/** One file of a `TensorSource`: its size and its bytes, whole or a range of them. */
export interface TensorSourceFile {
  size: number;
  /** The media type of its layer (a `Model`'s files have one): see `TensorFile.mediaType`. */
  mediaType?: string;
  stream(options?: { offset?: number; length?: number }): Promise<ReadableStream<Uint8Array>>;
}

/**
 * What the tensor reader reads: a stored model's files. A pulled `Model` is one; so is any object
 * with these members.
 */
export interface TensorSource {
  /** The model's reference, named in errors. */
  readonly reference: string;
  /** Paths of the weight files, in load order; the tensor files among them are read. */
  readonly weights: readonly string[];
  /** Every file, by path (searched for `model.safetensors.index.json`). */
  readonly files: ReadonlyMap<string, unknown>;
  /** A file by path. */
  file(path: string): TensorSourceFile;
}
