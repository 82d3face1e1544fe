// Issue 17's proof in Chromium: Docker Model Runner's unannotated GGUF bundle (two real GGUF shards
// written by llama.cpp's gguf package, a projector, a chat template, two licenses), pushed with skopeo
// to Distribution, pulled through the proxy into OPFS; every tensor equal to what gguf-py read, and
// the quantized ones dequantized on the GPU from the stored copy within gguf-py's values.
import { beforeAll, describe, expect, inject, it } from "vitest";
import { commands } from "vitest/browser";
import {
  createOpfsStore,
  type Model,
  pullModel,
  remoteGgufMetadata,
  remoteTensorIndex,
  requestModelDevice,
  toFloat32,
  uploadToGPU,
} from "../../src/index.js";
import { sha256 } from "../support/blobs.js";
import type { ExpectedGguf } from "../support/gguf.js";
import { maxError, readBack } from "../support/gpu.js";

const bed = inject("bed");
const SHARDS = {
  "model-00001-of-00002.gguf": "tiny-llama.gguf",
  "model-00002-of-00002.gguf": "aligned.gguf",
};
const FLOAT = new Set(["F32", "F16", "BF16"]);

describe("a Docker Hub-shaped GGUF bundle pulled in Chromium through the proxy into OPFS", () => {
  let model: Model;
  let expected: Record<string, ExpectedGguf>;
  const events: string[] = [];

  beforeAll(async () => {
    const sidecar = JSON.parse(await commands.readFile("test/fixtures/gguf/expected.json"));
    expected = sidecar.files;
    model = await pullModel(bed.ggufModel, {
      proxy: bed.proxyUrl,
      store: createOpfsStore(`gguf-${crypto.randomUUID()}`),
      onProgress: (e) => events.push(e.type),
    });
  });

  it("names the unannotated files as Docker Model Runner does; only the shards are weights", async () => {
    expect(events.at(-1)).toBe("done");
    expect(model.format).toBe("docker-v0.1");
    expect(Object.fromEntries([...model.files].map(([path, f]) => [path, f.size]))).toEqual(bed.ggufFiles);
    expect(model.weights).toEqual(Object.keys(SHARDS));
    expect(model.files.get("model.mmproj")?.weight).toBe(false);
    expect(await model.chatTemplate()).toBe(bed.ggufTemplate);
    expect(model.info).toMatchObject({ format: "gguf", architecture: "llama", contextSize: 8192 });
  });

  it("reads every tensor of both shards from OPFS as gguf-py read it: values of float ones, bytes of quantized ones", async () => {
    const index = await model.tensorIndex();
    const want = Object.values(SHARDS).flatMap((file) => (expected[file] as ExpectedGguf).tensors);
    expect([...index.keys()].sort()).toEqual(want.map((t) => t.name).sort());
    for (const t of want) {
      const entry = index.get(t.name);
      expect(entry?.dtype, t.name).toBe(t.type);
      expect(entry?.shape, t.name).toEqual([...t.ne].reverse());
      const bytes = await model.readTensor(t.name);
      expect(bytes.byteLength, t.name).toBe(t.bytes);
      expect(await sha256(bytes), t.name).toBe(`sha256:${t.sha256}`);
      if (FLOAT.has(t.type)) expect(Array.from(toFloat32(t.type as "F32", bytes)), t.name).toEqual(t.values);
    }
  });

  it("reads the registry copy's tensor index and metadata by Range through the proxy", async () => {
    const options = { proxy: bed.proxyUrl };
    const remote = await remoteTensorIndex(bed.ggufModel, options);
    const local = await model.tensorIndex();
    expect([...remote.keys()].sort()).toEqual([...local.keys()].sort());
    for (const [name, entry] of remote) expect(entry, name).toMatchObject({ dtype: local.get(name)?.dtype });
    const metadata = await remoteGgufMetadata(bed.ggufModel, options);
    expect(metadata.architecture).toBe("llama");
    expect(metadata.chatTemplate).toBe(
      expected["tiny-llama.gguf"]?.metadata["tokenizer.chat_template"]?.value,
    );
  });

  it("dequantizes the stored Q8_0, Q4_0 and Q4_K tensors on the GPU to gguf-py's values", async () => {
    const adapter = await navigator.gpu.requestAdapter();
    if (!adapter) throw new Error("no WebGPU adapter: is Chromium started with --enable-unsafe-webgpu?");
    const device = await requestModelDevice(adapter);
    try {
      const buffers = await uploadToGPU(device, model, { dequantize: true, convert: true });
      const want = Object.values(SHARDS).flatMap((file) => (expected[file] as ExpectedGguf).tensors);
      expect([...buffers.keys()].sort()).toEqual(want.map((t) => t.name).sort());
      const types = new Set<string>();
      for (const t of want) {
        const got = new Float32Array(await readBack(device, buffers.get(t.name) as GPUBuffer));
        maxError(`${t.name} (${t.type})`, got, t.values as number[]);
        types.add(t.type);
      }
      expect([...types].filter((t) => !FLOAT.has(t)).sort()).toEqual(["Q4_0", "Q4_K", "Q8_0"]);
    } finally {
      device.destroy();
    }
  });
});
