/// <reference types="@webgpu/types" />
import { abortError, OciError, throwIfAborted } from "../errors.js";
import type { Model } from "../model/model.js";
import { tensorFileKind } from "../tensors/files.js";
import { isQuantized } from "../tensors/ggml-types.js";
import { readEntry } from "../tensors/reader.js";
import type { TensorEntry } from "../tensors/types.js";
import { encodeToF32 } from "./convert.js";
import { DEQUANTIZABLE_TYPES, encodeDequantize, isDequantizable } from "./dequantize.js";

/** Options of `uploadToGPU`. */
export interface UploadOptions {
  /** Which tensors to upload (default: all). */
  filter?: (tensor: TensorEntry) => boolean;
  /** Names that must all be uploaded; otherwise `INVALID_CHECKPOINT` lists the missing ones. */
  expected?: Iterable<string>;
  /** Buffer usage (default STORAGE | COPY_DST | COPY_SRC). */
  usage?: GPUBufferUsageFlags;
  /** Widen F16 and BF16 tensors to F32 on the GPU (all of them, or those the function picks). */
  convert?: boolean | ((tensor: TensorEntry) => boolean);
  /**
   * Dequantize GGUF's quantized tensors to F32 on the GPU (all of them, or those the function picks);
   * by default they are uploaded as their raw blocks. Q8_0, Q4_0 and Q4_K are dequantized; asking
   * for another quantized type is `INVALID_ARGUMENT` before anything is uploaded.
   */
  dequantize?: boolean | ((tensor: TensorEntry) => boolean);
  /** Bytes staged per `writeBuffer` (memory used while uploading). Default 4 MiB. */
  chunkSize?: number;
  /** Stops the upload; the buffers made so far are destroyed. */
  signal?: AbortSignal;
  /** Called as bytes are written: `loaded` of `total` bytes, and the tensor being written. */
  onProgress?: (progress: { loaded: number; total: number; tensor: string }) => void;
}

/** Bytes written before waiting for the queue, so staged uploads cannot pile up in memory. */
const SYNC_EVERY = 64 * 1024 * 1024;
const align4 = (n: number) => Math.ceil(n / 4) * 4;

function elementCount(t: TensorEntry): number {
  return t.shape.reduce((n, d) => n * d, 1);
}

/**
 * Asks the adapter for a device with its highest buffer limits (the defaults cap buffers at 256 MiB
 * and storage bindings at 128 MiB), so large tensors fit.
 *
 * @param adapter From `navigator.gpu.requestAdapter()`.
 * @param descriptor Anything else to ask for; its `requiredLimits` win.
 * @returns The device.
 */
export function requestModelDevice(
  adapter: GPUAdapter,
  descriptor: GPUDeviceDescriptor = {},
): Promise<GPUDevice> {
  return adapter.requestDevice({
    ...descriptor,
    requiredLimits: {
      maxBufferSize: adapter.limits.maxBufferSize,
      maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize,
      ...descriptor.requiredLimits,
    },
  });
}

/**
 * Streams a stored model's tensors into GPU buffers: each safetensors or GGUF file is read once, in
 * order, through a staging chunk (memory stays at `chunkSize` whatever the model size); F16/BF16 can
 * be widened to F32, and GGUF's Q8_0/Q4_0/Q4_K blocks dequantized to F32, by compute shaders. Limits
 * are checked first (`GPU_LIMIT`, naming the tensor). Returns the buffers by tensor name; converted
 * and dequantized tensors are F32, others keep their dtype — quantized ones their raw blocks, as
 * WebGPU runtimes dequantize them in their own shaders — padded to 4 bytes.
 *
 * @param device A device, best from `requestModelDevice`.
 * @param model A pulled model.
 * @param options Which tensors, conversion, dequantization, chunk size, progress, abort.
 * @returns A buffer per tensor name.
 *
 * @example
 * ```ts
 * const model = await openModel("ghcr.io/acme/tiny-llm:v1");
 * const adapter = await navigator.gpu.requestAdapter();
 * if (!adapter) throw new Error("no WebGPU");
 * const device = await requestModelDevice(adapter);
 * const buffers = await uploadToGPU(device, model, {
 *   convert: true, // F16 and BF16 widened to F32 on the GPU
 *   onProgress: (p) => console.log(p.loaded / p.total),
 * });
 * ```
 */
export async function uploadToGPU(
  device: GPUDevice,
  model: Model,
  options: UploadOptions = {},
): Promise<Map<string, GPUBuffer>> {
  const { signal } = options;
  const usage = options.usage ?? GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
  const chunkSize = align4(options.chunkSize ?? 4 * 1024 * 1024);
  const index = await model.tensorIndex();
  const selected = [...index.values()].filter((t) => options.filter?.(t) ?? true);
  const converts = (t: TensorEntry) =>
    (t.dtype === "F16" || t.dtype === "BF16") &&
    (typeof options.convert === "function" ? options.convert(t) : options.convert === true);
  const dequantizes = (t: TensorEntry) =>
    isQuantized(t.dtype) &&
    (typeof options.dequantize === "function" ? options.dequantize(t) : options.dequantize === true);
  /** Tensors that end up F32 through a shader: their raw bytes go to a temporary buffer. */
  const widens = (t: TensorEntry) => converts(t) || dequantizes(t);

  const { maxBufferSize, maxStorageBufferBindingSize } = device.limits;
  for (const t of selected) {
    if (dequantizes(t) && !isDequantizable(t.dtype)) {
      throw new OciError(
        "INVALID_ARGUMENT",
        `Cannot dequantize tensor "${t.name}": ${t.dtype} is not supported; upload it raw (dequantize on the GPU covers ${DEQUANTIZABLE_TYPES.join(", ")})`,
      );
    }
  }
  for (const t of selected) {
    const size = widens(t) ? elementCount(t) * 4 : align4(t.length);
    const storage = widens(t) || (usage & GPUBufferUsage.STORAGE) !== 0;
    const [limit, name] =
      storage && size > maxStorageBufferBindingSize
        ? [maxStorageBufferBindingSize, "maxStorageBufferBindingSize"]
        : [maxBufferSize, "maxBufferSize"];
    if (size > limit) {
      throw new OciError(
        "GPU_LIMIT",
        `Cannot upload tensor "${t.name}": it needs a ${size}-byte buffer, over the device's ${name} of ${limit}; request the adapter's limits with requestModelDevice()`,
      );
    }
  }

  const total = selected.reduce((n, t) => n + t.length, 0);
  const buffers = new Map<string, GPUBuffer>();
  const temporary: GPUBuffer[] = [];
  const staging = new Uint8Array(chunkSize);
  let loaded = 0;
  let sinceSync = 0;
  const fail = (error: unknown) => {
    for (const b of [...buffers.values(), ...temporary]) b.destroy();
    return error;
  };

  /** Widens a raw F16/BF16 buffer, or dequantizes a raw block buffer, into the tensor's F32 buffer on the GPU. */
  const widen = (t: TensorEntry, raw: GPUBuffer) => {
    const target = device.createBuffer({
      label: t.name,
      size: Math.max(4, elementCount(t) * 4),
      usage: usage | GPUBufferUsage.STORAGE,
    });
    buffers.set(t.name, target);
    const encoder = device.createCommandEncoder();
    temporary.push(
      isDequantizable(t.dtype)
        ? encodeDequantize(device, encoder, t.dtype, raw, target, elementCount(t))
        : encodeToF32(device, encoder, t.dtype as "F16" | "BF16", raw, target, elementCount(t)),
    );
    device.queue.submit([encoder.finish()]);
  };

  try {
    for (const path of model.weights) {
      const tensors = selected.filter((t) => t.file === path).sort((a, b) => a.offset - b.offset);
      if (tensors.length === 0) continue;
      const kind = tensorFileKind(path);
      if (kind !== "safetensors" && kind !== "gguf") {
        // Checkpoints (.bin/.pt/.npz): tensors may share storage or sit in deflated members.
        for (const t of tensors) {
          throwIfAborted(signal, "upload the model");
          const bytes = await readEntry(model, t);
          const convert = widens(t);
          const raw = device.createBuffer({
            label: t.name,
            size: Math.max(4, align4(t.length)),
            usage: convert ? GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST : usage,
          });
          const padded = new Uint8Array(align4(bytes.byteLength));
          padded.set(bytes);
          device.queue.writeBuffer(raw, 0, padded);
          if (convert) {
            temporary.push(raw);
            widen(t, raw);
          } else buffers.set(t.name, raw);
          loaded += t.length;
          options.onProgress?.({ loaded, total, tensor: t.name });
        }
        continue;
      }
      const first = tensors[0] as TensorEntry;
      const last = tensors.at(-1) as TensorEntry;
      const reader = (
        await model
          .file(path)
          .stream({ offset: first.offset, length: last.offset + last.length - first.offset })
      ).getReader();
      let position = first.offset;
      let pending: Uint8Array = new Uint8Array(0);
      const next = async (): Promise<Uint8Array> => {
        if (pending.byteLength === 0) {
          throwIfAborted(signal, "upload the model");
          const { done, value } = await reader.read();
          if (done) {
            const code = kind === "gguf" ? "INVALID_CHECKPOINT" : "INVALID_SAFETENSORS";
            throw new OciError(code, `Cannot upload ${path}: it ended early`);
          }
          pending = value;
        }
        return pending;
      };
      try {
        for (const t of tensors) {
          for (let skip = t.offset - position; skip > 0; ) {
            const chunk = await next();
            const n = Math.min(skip, chunk.byteLength);
            pending = chunk.subarray(n);
            skip -= n;
          }
          const convert = widens(t);
          const raw = device.createBuffer({
            label: convert ? `${t.name} (raw)` : t.name,
            size: Math.max(4, align4(t.length)),
            usage: convert ? GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST : usage,
          });
          if (convert) temporary.push(raw);
          else buffers.set(t.name, raw);
          let written = 0;
          let filled = 0;
          while (written + filled < t.length) {
            const chunk = await next();
            const n = Math.min(t.length - written - filled, chunkSize - filled, chunk.byteLength);
            staging.set(chunk.subarray(0, n), filled);
            pending = chunk.subarray(n);
            filled += n;
            if (filled === chunkSize) {
              device.queue.writeBuffer(raw, written, staging, 0, filled);
              written += filled;
              filled = 0;
            }
            loaded += n;
            sinceSync += n;
            options.onProgress?.({ loaded, total, tensor: t.name });
          }
          if (filled > 0) {
            const padded = align4(filled);
            staging.fill(0, filled, padded);
            device.queue.writeBuffer(raw, written, staging, 0, padded);
          }
          position = t.offset + t.length;
          if (convert) {
            widen(t, raw);
          }
          if (sinceSync >= SYNC_EVERY) {
            await device.queue.onSubmittedWorkDone();
            for (const b of temporary.splice(0)) b.destroy();
            sinceSync = 0;
          }
        }
      } finally {
        await reader.cancel().catch(() => {});
      }
    }
    await device.queue.onSubmittedWorkDone();
    for (const b of temporary.splice(0)) b.destroy();
  } catch (error) {
    if (signal?.aborted) throw fail(abortError("upload the model", signal.reason));
    throw fail(error);
  }

  const missing = [...(options.expected ?? [])].filter((name) => !buffers.has(name));
  if (missing.length) {
    throw fail(
      new OciError(
        "INVALID_CHECKPOINT",
        `Cannot load ${model.reference}: these weights were not found in the checkpoint: ${missing.slice(0, 20).join(", ")}${missing.length > 20 ? ` and ${missing.length - 20} more` : ""}`,
      ),
    );
  }
  return buffers;
}
