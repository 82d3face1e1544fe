// `packModel` of GGUF weights in the shape `docker model package` writes (issue 17): the manifest,
// the layers and their order, the config Model Runner reads, split models, and the input refused.
import { describe, expect, it } from "vitest";
import { createMemoryStore, type ImageManifest, type PackFile, packModel } from "../../src/index.js";
import { goFixed } from "../../src/model/pack.js";
import { failure } from "../support/failure.js";
import { ggufFixture, kv, type RawKv, writeGguf } from "../support/gguf.js";

const encoder = new TextEncoder();

function file(path: string, bytes: Uint8Array | string): PackFile {
  const data = typeof bytes === "string" ? encoder.encode(bytes) : bytes;
  return {
    path,
    size: data.byteLength,
    stream: async (offset = 0, length = data.byteLength - offset) =>
      new Blob([data.subarray(offset, offset + length) as Uint8Array<ArrayBuffer>]).stream(),
  };
}

const TINY = ggufFixture("tiny-llama.gguf");
const PROJECTOR = ggufFixture("aligned.gguf");
const TEMPLATE = "{% for m in messages %}{{ m.content }}{% endfor %}";

interface DockerConfig {
  config: Record<string, unknown> & { gguf: Record<string, string> };
  descriptor: Record<string, unknown>;
  rootfs: { type: string; diff_ids: string[] };
}

async function packed(
  files: PackFile[],
  options: Parameters<typeof packModel>[1] = { store: createMemoryStore() },
) {
  const result = await packModel(files, options);
  const blob = await options.store.fetch(result.manifest.config);
  const config = JSON.parse(await new Response(blob).text()) as DockerConfig;
  return { ...result, config };
}

const names = (m: ImageManifest) => m.layers.map((l) => l.annotations?.["org.cncf.model.filepath"]);
const types = (m: ImageManifest) => m.layers.map((l) => l.mediaType);

describe("packModel of GGUF weights as docker model package packs them", () => {
  it("writes the weights, licenses, chat template and projector as Model Runner's layers, in its order", async () => {
    const { manifest, config, omitted, descriptor } = await packed([
      file("README.md", "# tiny\n"),
      file("mmproj-tiny-f16.gguf", PROJECTOR),
      file("tiny-llama.gguf", TINY),
      file("chat_template.jinja", TEMPLATE),
      file("LICENSE", "MIT"),
      file("config.json", "{}"),
    ]);
    expect(manifest.mediaType).toBe("application/vnd.oci.image.manifest.v1+json");
    expect(manifest.artifactType).toBeUndefined();
    expect(descriptor.artifactType).toBeUndefined();
    expect(manifest.config.mediaType).toBe("application/vnd.docker.ai.model.config.v0.1+json");
    expect(types(manifest)).toEqual([
      "application/vnd.docker.ai.gguf.v3",
      "application/vnd.docker.ai.license",
      "application/vnd.docker.ai.chat.template.jinja",
      "application/vnd.docker.ai.mmproj",
    ]);
    expect(names(manifest)).toEqual(["model.gguf", "LICENSE", "template.jinja", "model.mmproj"]);
    expect(manifest.layers.map((l) => l.size)).toEqual([
      TINY.byteLength,
      3,
      TEMPLATE.length,
      PROJECTOR.byteLength,
    ]);
    expect(manifest.layers[0]?.annotations).toEqual({
      "org.cncf.model.file.mediatype.untested": "false",
      "org.cncf.model.file.metadata+json": JSON.stringify({
        name: "model.gguf",
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: TINY.byteLength,
        mtime: "1970-01-01T00:00:00Z",
        typeflag: 0,
      }),
      "org.cncf.model.filepath": "model.gguf",
    });
    expect(omitted).toEqual(["README.md", "config.json"]);
    expect(Object.keys(config)).toEqual(["config", "descriptor", "rootfs"]);
    expect(config.descriptor).toEqual({});
    expect(config.rootfs).toEqual({ type: "rootfs", diff_ids: manifest.layers.map((l) => l.digest) });
  });

  it("fills the config from the GGUF header as gguf-parser-go reads it for Model Runner", async () => {
    const { config } = await packed([file("tiny-llama.gguf", TINY)]);
    expect(Object.keys(config.config)).toEqual([
      "format",
      "quantization",
      "parameters",
      "architecture",
      "size",
      "gguf",
      "context_size",
    ]);
    // general.file_type 7 is Q8_0; 4 250 parameters; 8 448 bytes less a 2 464-byte header is 5.84 KiB
    expect(config.config).toMatchObject({
      format: "gguf",
      quantization: "Q8_0",
      parameters: "4.25K",
      architecture: "llama",
      size: "5.84KiB",
      context_size: 2048,
    });
    const map = config.config.gguf;
    expect(Object.keys(map)).toEqual([...Object.keys(map)].sort());
    expect(map).toMatchObject({
      "general.architecture": "llama",
      "general.file_type": "7",
      "llama.context_length": "2048",
      "llama.attention.layer_norm_rms_epsilon": "0.000010",
      "test.bool": "true",
      "test.f32": "0.250000",
      "test.u64": "9223372036854775813",
      "test.i8": "-100",
      "test.ints": "1, -2, 3",
      "test.floats": "0.500000, -1.500000",
      "test.nested": "",
      "tokenizer.ggml.token_type": expect.stringMatching(/^3, 3, 3, 1, /),
    });
    expect(map["tokenizer.ggml.scores"]?.startsWith("-0.000000, -1.000000, ")).toBe(true);
    expect(map["tokenizer.chat_template"]).toContain("{% for message in messages %}");
  });

  it("takes the options over the folder: licenses in order, a template, a projector, a context size", async () => {
    const { manifest, config, omitted } = await packed(
      [file("tiny-llama.gguf", TINY), file("LICENSE", "folder license"), file("t.jinja", "{{ x }}")],
      {
        store: createMemoryStore(),
        licenses: [file("/elsewhere/MIT.txt", "MIT"), file("/elsewhere/NOTICE", "notice")],
        chatTemplate: file("/elsewhere/chat.jinja", TEMPLATE),
        mmproj: file("/elsewhere/projector.gguf", PROJECTOR),
        contextSize: 4096,
      },
    );
    expect(names(manifest)).toEqual(["model.gguf", "LICENSE", "LICENSE-2", "template.jinja", "model.mmproj"]);
    expect(manifest.layers[1]?.size).toBe(3);
    expect(manifest.layers[2]?.size).toBe(6);
    expect(omitted).toEqual(["LICENSE", "t.jinja"]);
    expect(config.config.context_size).toBe(4096);
    expect(config.config.gguf["llama.context_length"]).toBe("2048");
  });

  it("is deterministic: the same files in any order give the same digest", async () => {
    const make = () => [file("LICENSE", "MIT"), file("tiny-llama.gguf", TINY), file("chat.jinja", TEMPLATE)];
    const a = await packModel(make(), { store: createMemoryStore() });
    const b = await packModel(make().reverse(), { store: createMemoryStore() });
    expect(b.descriptor.digest).toBe(a.descriptor.digest);
    expect(new TextDecoder().decode(b.bytes)).toBe(new TextDecoder().decode(a.bytes));
  });

  describe("a split model", () => {
    /** A part of a split model: the split keys, a block tensor of `type` and `bytes`, Q8_0 by default. */
    const shard = (no: number, count: number, extra: RawKv[] = [], type = 8, bytes = 34 * 8) =>
      writeGguf({
        kvs: [
          kv.str("general.architecture", "llama"),
          kv.u32("llama.context_length", 512),
          { key: "split.no", type: 2, payload: Uint8Array.of(no, 0) },
          { key: "split.count", type: 2, payload: Uint8Array.of(count, 0) },
          ...extra,
        ],
        tensors: [{ name: `blk.${no}.attn_q.weight`, ne: [256], type, bytes }],
      });
    const parts = (count: number) =>
      Array.from({ length: count }, (_, i) =>
        file(
          `q8/tiny-${String(i + 1).padStart(5, "0")}-of-${String(count).padStart(5, "0")}.gguf`,
          shard(i, count),
        ),
      );

    it("packs every part in order as model-0000i-of-0000N.gguf, one config over all of them", async () => {
      const files = parts(3);
      const { manifest, config } = await packed([files[2], files[0], files[1]] as PackFile[]);
      expect(names(manifest)).toEqual([
        "model-00001-of-00003.gguf",
        "model-00002-of-00003.gguf",
        "model-00003-of-00003.gguf",
      ]);
      expect(manifest.layers.map((l) => l.size)).toEqual(files.map((f) => f.size));
      expect(types(manifest)).toEqual(Array(3).fill("application/vnd.docker.ai.gguf.v3"));
      // no general.file_type: guessed from the blk tensors, all Q8_0; 3 × 256 parameters
      expect(config.config).toMatchObject({
        quantization: "Q8_0",
        parameters: "768",
        architecture: "llama",
        context_size: 512,
      });
      expect(config.config.gguf["split.no"]).toBeUndefined();
      expect(config.config.gguf["split.count"]).toBe("3");
    });

    it("refuses a split model with a part missing, naming it", async () => {
      const [first, , third] = parts(3);
      const error = await failure(packModel([first, third] as PackFile[], { store: createMemoryStore() }));
      expect(error.code).toBe("INVALID_ARGUMENT");
      expect(error.message).toBe(
        "Cannot pack q8/tiny-00001-of-00003.gguf: shard q8/tiny-00002-of-00003.gguf is missing; a split GGUF model needs all 3 parts",
      );
    });

    it("refuses two GGUF models in one folder", async () => {
      const store = createMemoryStore();
      const error = await failure(packModel([file("a.gguf", TINY), file("b.gguf", TINY)], { store }));
      expect(error.code).toBe("INVALID_ARGUMENT");
      expect(error.message).toMatch(/^Cannot pack: the folder holds 2 GGUF models \(a\.gguf, b\.gguf\)/);
      expect((await store.usage()).blobs).toBe(0);
    });

    it("guesses the quantization from the tensor types as gguf-parser-go does (Q4_K with Q6_K third: Q4_K_M)", async () => {
      const tensors = [
        ...[0, 1, 2].map((i) => ({ name: `blk.${i}.ffn.weight`, ne: [256], type: 12, bytes: 144 })),
        ...[0, 1].map((i) => ({ name: `blk.${i}.norm.weight`, ne: [4], type: 0 })),
        { name: "blk.0.out.weight", ne: [256], type: 14, bytes: 210 },
        { name: "token_embd.weight", ne: [256], type: 14, bytes: 210 },
      ];
      const gguf = writeGguf({ kvs: [kv.str("general.architecture", "llama")], tensors });
      const { config } = await packed([file("k.gguf", gguf)]);
      expect(config.config.quantization).toBe("IQ2_XXS/Q4_K_M");
      expect(config.config.context_size).toBeUndefined();
    });
  });

  describe("refuses bad input before it writes a blob", () => {
    const refused = async (
      files: PackFile[],
      options: Omit<Parameters<typeof packModel>[1], "store"> = {},
    ) => {
      const store = createMemoryStore();
      const error = await failure(packModel(files, { store, ...options }));
      expect(error.code).toBe("INVALID_ARGUMENT");
      expect((await store.usage()).blobs).toBe(0);
      return error.message;
    };

    it("a chat template that is not text", async () => {
      expect(
        await refused([file("tiny.gguf", TINY)], {
          chatTemplate: file("t.jinja", Uint8Array.of(0x7b, 0xff, 0x7d)),
        }),
      ).toBe("Cannot pack t.jinja: a chat template must be Jinja text, and it is not UTF-8");
      expect(await refused([file("tiny.gguf", TINY), file("t.jinja", "{{ a }}\0")])).toBe(
        "Cannot pack t.jinja: a chat template must be Jinja text, and it holds a NUL character (at 7)",
      );
    });

    it.each([0, -1, 1.5, 2 ** 31, Number.NaN])("a context size of %s", async (contextSize) => {
      expect(await refused([file("tiny.gguf", TINY)], { contextSize })).toBe(
        `Cannot pack: the context size must be a whole number of tokens from 1 to 2147483647, not ${contextSize}`,
      );
    });

    it("a projector or weights that are not GGUF", async () => {
      expect(
        await refused([file("tiny.gguf", TINY)], {
          mmproj: file("p.gguf", "not a gguf file at all, really"),
        }),
      ).toMatch(
        /^Cannot pack p\.gguf: a multimodal projector must be a GGUF file, and it is not a GGUF file/,
      );
      expect(await refused([file("tiny.gguf", encoder.encode("GGUF but not really, no"))])).toMatch(
        /^Cannot pack tiny\.gguf: the model must be a GGUF file, and /,
      );
    });

    it("two projectors, two templates, GGUF beside safetensors", async () => {
      expect(
        await refused([
          file("t.gguf", TINY),
          file("mmproj-a.gguf", PROJECTOR),
          file("mmproj-b.gguf", PROJECTOR),
        ]),
      ).toMatch(
        /^Cannot pack: the folder holds 2 multimodal projectors \(mmproj-a\.gguf, mmproj-b\.gguf\); name the one to pack with --mmproj/,
      );
      expect(await refused([file("t.gguf", TINY), file("a.jinja", "a"), file("b.jinja", "b")])).toMatch(
        /^Cannot pack: the folder holds 2 chat templates/,
      );
      expect(await refused([file("t.gguf", TINY), file("m.safetensors", "x")])).toMatch(
        /^Cannot pack: the folder holds GGUF weights and others \(m\.safetensors\)/,
      );
      expect(await refused([file("mmproj.gguf", PROJECTOR)])).toMatch(
        /no GGUF weights besides its projector/,
      );
    });

    it("the GGUF options with another shape", async () => {
      expect(await refused([file("tiny.gguf", TINY)], { format: "modelpack", contextSize: 8 })).toMatch(
        /^Cannot pack: a projector, chat template, license or context size is given only with GGUF weights packed as docker-v0\.1/,
      );
    });
  });
});

describe("goFixed writes floats as Go's strconv 'f' format does", () => {
  it.each<[number, number, string]>([
    [0.25, 6, "0.250000"],
    [9.999999747378752e-6, 6, "0.000010"],
    [0.0078125, 6, "0.007812"], // a tie: to even, where toFixed goes up
    [0.0234375, 6, "0.023438"],
    [1.125, 2, "1.12"],
    [1.375, 2, "1.38"],
    [2.5, 0, "2"],
    [-0, 6, "-0.000000"],
    [-1e-9, 6, "-0.000000"],
    [1e21, 1, "1000000000000000000000.0"],
    [Number.NaN, 6, "NaN"],
    [Number.POSITIVE_INFINITY, 6, "+Inf"],
    [Number.NEGATIVE_INFINITY, 6, "-Inf"],
  ])("%s with %i digits is %s", (x, digits, text) => {
    expect(goFixed(x, digits)).toBe(text);
  });
});
