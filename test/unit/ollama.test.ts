// Ollama's registry and Hugging Face's hf.co GGUF endpoint (issue 17): media types with parameters
// (RFC 6838), the Ollama layer table and its file names, Ollama's config blob, per-tensor layers in
// the tensor index, and the proxy presets. Shapes from ollama/ollama server/images.go,
// server/internal/manifest/manifest.go and types/model/config.go.
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { ImageManifest } from "../../src/index.js";
import { detectFormat, layerPaths } from "../../src/model/format.js";
import { modelInfo } from "../../src/model/info.js";
import { planLayers } from "../../src/model/layers.js";
import type { Descriptor } from "../../src/oci/manifest.js";
import {
  baseMediaType,
  modelLayerType,
  ollamaTensorParameters,
  parseMediaType,
} from "../../src/oci/media-types.js";
import { upstreamHosts } from "../../src/proxy/hosts.js";
import { createRegistryProxy } from "../../src/proxy/index.js";
import { isIndexedTensorFile, isWeightFile } from "../../src/tensors/files.js";
import { buildTensorIndex, ollamaTensorEntry } from "../../src/tensors/tensor-index.js";
import type { TensorFile } from "../../src/tensors/types.js";

const O = "application/vnd.ollama.image.";
const tensorType = (name: string, dtype: string, shape: string) =>
  `${O}tensor; name=${name}; dtype=${dtype}; shape=${shape}`;

describe("parseMediaType (RFC 6838 §4.2-4.3, RFC 9110 §8.3.1)", () => {
  it.each<[string, string, Record<string, string>]>([
    ["application/vnd.ollama.image.model", "application/vnd.ollama.image.model", {}],
    [`${O}config; type=gguf`, `${O}config`, { type: "gguf" }],
    // Ollama's own example (server/internal/manifest/manifest.go): shape's commas unquoted.
    [
      `${O}tensor; name=input; dtype=F32; shape=1,2,3`,
      `${O}tensor`,
      { name: "input", dtype: "F32", shape: "1,2,3" },
    ],
    // Type, subtype and parameter names are case-insensitive; values keep their case.
    ["Application/VND.Ollama.Image.Config; TYPE=GGUF", `${O}config`, { type: "GGUF" }],
    // Quoted strings: unquoted, with \ escaping the next character; whitespace around ";" is optional.
    ['text/plain;charset="utf-8"', "text/plain", { charset: "utf-8" }],
    ['a/b ;  x="semi;colon" ;y="q\\"uote\\\\"', "a/b", { x: "semi;colon", y: 'q"uote\\' }],
    ['a/b; x=""', "a/b", { x: "" }],
    ["  a/b\t;\tx=1  ", "a/b", { x: "1" }],
    ["a/b;", "a/b", {}],
    ["a/b;; x=1", "a/b", { x: "1" }],
  ])("parses %j", (value, type, parameters) => {
    expect(parseMediaType(value)).toEqual({ type, parameters });
  });

  it.each([
    ["", "empty"],
    ["application", "no subtype"],
    ["application/", "an empty subtype"],
    ["/json", "an empty type"],
    ["app lication/json", "a space in the type"],
    ["a(b)/c", "a type that is not a token"],
    ["a/b x=1", "text where a ; belongs"],
    ["a/b; x", "a parameter without ="],
    ["a/b; =1", "a parameter without a name"],
    ["a/b; x=", "an empty unquoted value"],
    ['a/b; x="open', "an unterminated quoted string"],
    ['a/b; x="esc\\', "an escape at the end"],
    ['a/b; x=ab"c"', "a quote inside an unquoted value"],
    ["a/b; x=1; X=2", "a parameter given twice (RFC 6838 §4.3), whatever its case"],
    ["a/b; n@me=1", "a parameter name that is not a token"],
  ])("refuses %j (%s)", (value) => {
    expect(parseMediaType(value)).toBeUndefined();
  });

  it("never throws, and whatever it parses round-trips through a quoted rendering", () => {
    const chars = fc.constantFrom(...'ab/;=" \t\\,.+-AZ09é'.split(""));
    let parsed = 0;
    const details = fc.check(
      fc.property(fc.string({ unit: chars, maxLength: 60 }), (value) => {
        const result = parseMediaType(value);
        if (result === undefined) return true;
        parsed++;
        const quoted = Object.entries(result.parameters)
          .map(([k, v]) => `; ${k}="${v.replace(/["\\]/g, "\\$&")}"`)
          .join("");
        return JSON.stringify(parseMediaType(`${result.type}${quoted}`)) === JSON.stringify(result);
      }),
      { numRuns: 3000, seed: 17 },
    );
    expect(details.failed, fc.defaultReportMessage(details)).toBe(false);
    expect(parsed).toBeGreaterThan(0);
  });

  it("gives the base type without parameters, or the input when it is not a media type", () => {
    expect(baseMediaType(`${O}Template; name=x`)).toBe(`${O}template`);
    expect(baseMediaType("not a type")).toBe("not a type");
  });
});

describe("Ollama layers: the media type table", () => {
  it.each<[string, string, string | undefined]>([
    [`${O}model`, "weights", "gguf"],
    [tensorType("a", "F32", "1"), "weights", "tensor"],
    [`${O}projector`, "projector", "gguf"],
    [`${O}adapter`, "adapter", "gguf"],
    [`${O}template`, "chat-template", undefined],
    [`${O}template; name=tools`, "chat-template", undefined],
    [`${O}system`, "system", undefined],
    [`${O}params`, "params", undefined],
    [`${O}messages`, "messages", undefined],
    [`${O}license`, "license", undefined],
    [`${O}config; type=safetensors`, "config", undefined],
    [`${O}tokenizer`, "tokenizer", undefined],
    [`${O}tokenizer.config`, "tokenizer", undefined],
  ])("%s holds %s", (mediaType, role, fileFormat) => {
    const type = modelLayerType(mediaType);
    expect(type).toMatchObject({ family: "ollama", role, packing: "file" });
    expect(type?.fileFormat).toBe(fileFormat);
  });

  it("matches the other families' types with parameters and in any case too", () => {
    expect(modelLayerType("application/vnd.docker.ai.gguf.v3; x=1")?.role).toBe("weights");
    expect(modelLayerType("Application/Vnd.Cncf.Model.Weight.V1.Tar+Gzip")?.compression).toBe("gzip");
    expect(modelLayerType(`${O}embed`)).toBeUndefined(); // retired: Ollama ignores it
  });

  it("reads a tensor layer's parameters, and says what is wrong with a bad one", () => {
    expect(ollamaTensorParameters(tensorType("blk.0.w", "bf16", "4,2"))).toEqual({
      name: "blk.0.w",
      dtype: "bf16",
      shape: [4, 2],
    });
    expect(ollamaTensorParameters(`${O}tensor; name=s; dtype=F32; shape=""`)).toEqual({
      name: "s",
      dtype: "F32",
      shape: [],
    });
    expect(ollamaTensorParameters(`${O}model`)).toBeUndefined();
    expect(ollamaTensorParameters("garbage")).toBeUndefined();
    expect(ollamaTensorParameters(`${O}tensor; name="open`)).toEqual({
      problem: expect.stringMatching(/is not a well-formed media type/),
    });
    expect(ollamaTensorParameters(`${O}tensor; dtype=F32; shape=1`)).toEqual({
      problem: "its media type names no tensor (name=…)",
    });
    expect(ollamaTensorParameters(`${O}tensor; name=a; shape=1`)).toEqual({
      problem: 'its media type gives tensor "a" no dtype (dtype=…)',
    });
    expect(ollamaTensorParameters(`${O}tensor; name=a; dtype=F32`)).toEqual({
      problem: 'its media type gives tensor "a" no shape (shape=…)',
    });
    for (const shape of ["1,,2", "1,-2", "x", "1.5", "1,2,"]) {
      expect(ollamaTensorParameters(tensorType("a", "F32", shape))).toEqual({
        problem: `its media type gives tensor "a" the shape "${shape}", not comma-separated integers`,
      });
    }
  });
});

let next = 0;
const layer = (mediaType: string, size = 1): Descriptor => ({
  mediaType,
  digest: `sha256:${(next++).toString(16).padStart(64, "0")}`,
  size,
});
// A Docker v2 manifest with a container image config, as Ollama's registry serves it.
const dockerManifest = (layers: Descriptor[]): ImageManifest => ({
  schemaVersion: 2,
  mediaType: "application/vnd.docker.distribution.manifest.v2+json",
  config: {
    mediaType: "application/vnd.docker.container.image.v1+json",
    digest: `sha256:${"c".repeat(64)}`,
    size: 2,
  },
  layers,
});

describe("Ollama models: format, file names and weights", () => {
  const legacy = dockerManifest([
    layer(`${O}model`),
    layer(`${O}projector`),
    layer(`${O}template`),
    layer(`${O}system`),
    layer(`${O}params`),
    layer(`${O}license`),
    layer(`${O}license`),
    layer(`${O}messages`),
    layer(`${O}adapter`),
  ]);
  const modern = dockerManifest([
    layer(`${O}config; type=safetensors`),
    layer(`${O}template`),
    layer(tensorType("model.embed.weight", "BF16", "4,2")),
    layer(tensorType("lm_head.weight", "F32", "4")),
    layer(tensorType("../escape", "F32", "1")),
    layer(tensorType("lm_head.weight", "F32", "4")),
    layer(`${O}tokenizer`),
    layer(`${O}tokenizer.config`),
  ]);

  it("detects the format by its layers (the config is a container image's)", () => {
    expect(detectFormat(legacy)).toBe("ollama");
    expect(detectFormat(modern)).toBe("ollama");
    expect(detectFormat(dockerManifest([layer("application/vnd.docker.image.rootfs.diff.tar.gzip")]))).toBe(
      "unknown",
    );
  });

  it("names the legacy layers model.gguf, model.mmproj, template, system, params, LICENSE…", () => {
    expect(layerPaths(legacy)).toEqual([
      "model.gguf",
      "model.mmproj",
      "template",
      "system",
      "params",
      "LICENSE",
      "LICENSE-2",
      "messages",
      "adapter.gguf",
    ]);
  });

  it("names tensor layers tensors/<name>; an unsafe or repeated name is left to the digest", () => {
    expect(layerPaths(modern)).toEqual([
      "config",
      "template",
      "tensors/model.embed.weight",
      "tensors/lm_head.weight",
      undefined,
      undefined,
      "tokenizer",
      "tokenizer-2",
    ]);
  });

  it("makes the model and tensor layers the weights, by media type; the rest are kept by a config-only pull", () => {
    const plan = (m: ImageManifest) => planLayers(m).map((l) => [l.path, l.modelWeight, l.weights]);
    expect(plan(legacy)).toEqual([
      ["model.gguf", true, true],
      ["model.mmproj", false, true],
      ["template", false, false],
      ["system", false, false],
      ["params", false, false],
      ["LICENSE", false, false],
      ["LICENSE-2", false, false],
      ["messages", false, false],
      ["adapter.gguf", false, true],
    ]);
    expect(plan(modern).map(([, weight]) => weight)).toEqual([
      false,
      false,
      true,
      true,
      true,
      true,
      false,
      false,
    ]);
    expect(isWeightFile("tensors/x", tensorType("x", "F32", "1"))).toBe(true);
    expect(isIndexedTensorFile("tensors/x", tensorType("x", "F32", "1"))).toBe(true);
    expect(isIndexedTensorFile("tensors/x", `${O}model`)).toBe(false);
    expect(isIndexedTensorFile("model.gguf")).toBe(true);
  });
});

describe("modelInfo: Ollama's config blob (types/model/config.go ConfigV2)", () => {
  it("reads model_format, model_family, model_type, file_type and context_length", () => {
    const config = {
      model_format: "gguf",
      model_family: "llama",
      model_families: ["llama"],
      model_type: "1.2B",
      file_type: "Q8_0",
      context_length: 131072,
      architecture: "amd64",
      os: "linux",
      rootfs: { type: "layers", diff_ids: [] },
    };
    expect(modelInfo("ollama", config)).toEqual({
      format: "gguf",
      architecture: "llama",
      parameters: "1.2B",
      quantization: "Q8_0",
      contextSize: 131072,
    });
  });

  it("falls back to the first of model_families, and leaves out what is not stated", () => {
    expect(modelInfo("ollama", { model_families: [7, "", "clip"], context_length: -1 })).toEqual({
      architecture: "clip",
    });
    expect(modelInfo("ollama", null)).toEqual({});
  });
});

const tensorFile = (path: string, mediaType: string | undefined, bytes: Uint8Array): TensorFile => ({
  path,
  size: bytes.byteLength,
  ...(mediaType === undefined ? {} : { mediaType }),
  read: async (offset, length) => bytes.subarray(offset, offset + length),
});

describe("the tensor index of per-tensor layers", () => {
  it("gives each layer's tensor its name, dtype and shape from the media type: the whole blob", async () => {
    const index = await buildTensorIndex([
      tensorFile("tensors/a", tensorType("a", "bf16", "4,2"), new Uint8Array(16)),
      tensorFile("tensors/b", tensorType("b", "I64", '""'), new Uint8Array(8)),
      tensorFile("sha256-00", tensorType("c.q", "Q8_0", "2,32"), new Uint8Array(68)),
      tensorFile("tensors/d", tensorType("d", "U8", "0,3"), new Uint8Array(0)),
    ]);
    expect([...index.values()]).toEqual([
      { name: "a", dtype: "BF16", shape: [4, 2], offset: 0, length: 16, file: "tensors/a" },
      { name: "b", dtype: "I64", shape: [], offset: 0, length: 8, file: "tensors/b" },
      { name: "c.q", dtype: "Q8_0", shape: [2, 32], offset: 0, length: 68, file: "sha256-00" },
      { name: "d", dtype: "U8", shape: [0, 3], offset: 0, length: 0, file: "tensors/d" },
    ]);
  });

  it("reads nothing of the blob", async () => {
    let reads = 0;
    const file = { ...tensorFile("t", tensorType("t", "F32", "2"), new Uint8Array(8)) };
    file.read = async () => {
      reads++;
      return new Uint8Array(0);
    };
    expect((await buildTensorIndex([file])).get("t")?.length).toBe(8);
    expect(reads).toBe(0);
  });

  it.each([
    [tensorType("a", "F32", "3"), 8, 'tensor "a" (F32, shape [3]) is 12 bytes, but its layer is 8'],
    [tensorType("a", "F16", "2,2"), 9, 'tensor "a" (F16, shape [2, 2]) is 8 bytes, but its layer is 9'],
    [tensorType("a", "F4", "2"), 1, 'tensor "a" has the dtype "F4", which this library does not know'],
    [tensorType("a", "Q4_K", "100"), 144, 'tensor "a" (Q4_K, shape [100]) is not whole blocks of 256'],
    [tensorType("a", "F32", "999999999999999,99999"), 8, 'tensor "a" has too many elements'],
    [`${O}tensor; dtype=F32; shape=1`, 4, "its media type names no tensor (name=…)"],
    [
      tensorType("a", "F32", "1,x"),
      4,
      'its media type gives tensor "a" the shape "1,x", not comma-separated integers',
    ],
  ])("refuses %s with INVALID_CHECKPOINT", async (mediaType, size, why) => {
    const file = tensorFile("tensors/a", mediaType, new Uint8Array(size));
    expect(() => ollamaTensorEntry(file)).toThrow(
      expect.objectContaining({ code: "INVALID_CHECKPOINT", message: `Cannot index tensors/a: ${why}` }),
    );
    await expect(buildTensorIndex([file])).rejects.toMatchObject({ code: "INVALID_CHECKPOINT" });
  });

  it("refuses one tensor name in two layers", async () => {
    await expect(
      buildTensorIndex([
        tensorFile("tensors/a", tensorType("a", "F32", "1"), new Uint8Array(4)),
        tensorFile("sha256-01", tensorType("a", "F32", "1"), new Uint8Array(4)),
      ]),
    ).rejects.toMatchObject({
      code: "INVALID_CHECKPOINT",
      message: 'Cannot index the model: tensor "a" is in both tensors/a and sha256-01',
    });
  });

  it("reads a file of another media type by its name, as before", () => {
    expect(ollamaTensorEntry(tensorFile("model.gguf", `${O}model`, new Uint8Array(0)))).toBeUndefined();
    expect(ollamaTensorEntry(tensorFile("model.gguf", undefined, new Uint8Array(0)))).toBeUndefined();
  });
});

describe("proxy presets: ollama and huggingface", () => {
  it("expands to the registries, their token hosts and the hosts their blobs redirect to", () => {
    expect([...upstreamHosts(["ollama"], []).allowed]).toEqual([
      "registry.ollama.ai",
      "dd20bb891979d25aebc8bec07b2b3bbc.r2.cloudflarestorage.com",
    ]);
    expect([...upstreamHosts([" HuggingFace "], []).allowed]).toEqual([
      "hf.co",
      "huggingface.co",
      "cas-bridge.xethub.hf.co",
      "cdn-lfs.hf.co",
      "cdn-lfs-us-1.hf.co",
      "cdn-lfs-eu-1.hf.co",
    ]);
  });

  it("lets the proxy reach those hosts and nothing else", async () => {
    const seen: string[] = [];
    const proxy = createRegistryProxy({
      allow: ["ollama", "huggingface"],
      fetch: (async (input: RequestInfo | URL) => {
        seen.push(new Request(input).url);
        return new Response("ok");
      }) as typeof fetch,
    });
    const get = (path: string) => proxy(new Request(`https://proxy.test/${path}`));
    expect((await get("registry.ollama.ai/v2/library/llama3.2/manifests/1b")).status).toBe(200);
    expect((await get("hf.co/v2/user/repo/manifests/Q4_K_M")).status).toBe(200);
    expect((await get("cas-bridge.xethub.hf.co/blob")).status).toBe(200);
    expect((await get("ollama.com/v2/")).status).toBe(403);
    expect(seen).toEqual([
      "https://registry.ollama.ai/v2/library/llama3.2/manifests/1b",
      "https://hf.co/v2/user/repo/manifests/Q4_K_M",
      "https://cas-bridge.xethub.hf.co/blob",
    ]);
  });
});
