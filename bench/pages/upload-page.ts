// Benchmark page: upload a stored model into WebGPU, ours (streamed) against reading each file
// into one ArrayBuffer first (the common practice). Reports total time, time to the first tensor
// on the GPU, and peak JS heap.
import { createOpfsStore, type Model, pullModel, requestModelDevice, uploadToGPU } from "../../src/index.js";
import { sampleHeap } from "./heap.js";

declare global {
  interface Window {
    prepare(reference: string, proxy: string): Promise<number>;
    run(
      mode: "streamed" | "whole-file",
      chunkSize: number,
    ): Promise<{ seconds: number; firstTensor: number; peakHeap: number; bytes: number }>;
  }
}

let model: Model;
let device: GPUDevice;

(performance as unknown as { memory?: { usedJSHeapSize: number } }).memory?.usedJSHeapSize ?? 0;

window.prepare = async (reference, proxy) => {
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new Error("no WebGPU adapter");
  device = await requestModelDevice(adapter);
  model = await pullModel(reference, { proxy, store: createOpfsStore("bench") });
  return [...model.files.values()].reduce((n, f) => n + f.size, 0);
};

async function wholeFile(onTensor: (name: string) => void): Promise<GPUBuffer[]> {
  const index = await model.tensorIndex();
  const buffers: GPUBuffer[] = [];
  for (const path of model.weights) {
    const file = new Uint8Array(await model.file(path).arrayBuffer());
    for (const t of index.values()) {
      if (t.file !== path) continue;
      const buffer = device.createBuffer({
        size: Math.ceil(t.length / 4) * 4,
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST,
      });
      device.queue.writeBuffer(buffer, 0, file, t.offset, t.length);
      onTensor(t.name);
      buffers.push(buffer);
    }
  }
  await device.queue.onSubmittedWorkDone();
  return buffers;
}

window.run = async (mode, chunkSize) => {
  const memory = sampleHeap();
  const started = performance.now();
  // The first tensor is on the GPU when work on a second one begins (or the upload ends).
  let first = "";
  let firstTensor = 0;
  const onTensor = (name: string) => {
    if (first === "") first = name;
    else if (name !== first && firstTensor === 0) firstTensor = (performance.now() - started) / 1000;
  };
  const buffers =
    mode === "streamed"
      ? [...(await uploadToGPU(device, model, { chunkSize, onProgress: (p) => onTensor(p.tensor) })).values()]
      : await wholeFile(onTensor);
  const seconds = (performance.now() - started) / 1000;
  const peakHeap = memory.stop();
  const bytes = buffers.reduce((n, b) => n + b.size, 0);
  for (const b of buffers) b.destroy();
  return { seconds, firstTensor: firstTensor || seconds, peakHeap, bytes };
};
