import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ggufMetadata,
  pullModel,
  remoteGgufMetadata,
  remoteTensorIndex,
  toFloat32,
} from "../../src/index.js";
import { createFsStore } from "../../src/node/index.js";
import { expectedGguf, ggufFixture } from "../support/gguf.js";
import { buildManifest, pushWithSkopeo } from "../support/layout.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";

const CLI = join(import.meta.dirname, "../../dist/node/cli.js");
const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");
const expected = expectedGguf().files;

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent" } },
      (error, stdout, stderr) => resolve({ code: error ? 1 : 0, stdout, stderr }),
    );
  });
}

/** A Docker model artifact (model-spec v0.1 config) of one GGUF layer, as `docker model push` writes it, named. */
function dockerGguf(bytes: Uint8Array) {
  return buildManifest({
    config: {
      mediaType: "application/vnd.docker.ai.model.config.v0.1+json",
      bytes: new TextEncoder().encode(
        JSON.stringify({ config: { format: "gguf", architecture: "llama", quantization: "Q8_0" } }),
      ),
    },
    layers: [
      {
        mediaType: "application/vnd.docker.ai.gguf.v3",
        bytes,
        annotations: { "org.opencontainers.image.title": "model.gguf" },
      },
    ],
  });
}

describe("GGUF models in the registry: tensors and metadata from the header alone", () => {
  let registry: TestRegistry;
  let dir: string;
  const large = ggufFixture("large.gguf");
  const tiny = ggufFixture("tiny-llama.gguf");

  beforeAll(async () => {
    registry = await startRegistry({ redirectBlobs: true });
    await pushWithSkopeo(registry, dockerGguf(large), "models/gguf-large", "v1");
    await pushWithSkopeo(registry, dockerGguf(tiny), "models/gguf-tiny", "v1");
    dir = await mkdtemp(join(tmpdir(), "oml-gguf-"));
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("oci-model tensors <ref> lists a GGUF model's tensors while fetching only header bytes", async () => {
    const want = expected["large.gguf"];
    if (!want) throw new Error("large.gguf");
    const before = registry.blobBytes();
    const result = await cli(["tensors", "--json", `${registry.host}/models/gguf-large:v1`]);
    expect(result.stderr).toBe("");
    const out = JSON.parse(result.stdout) as {
      tensors: { name: string; dtype: string; shape: number[]; bytes: number; file: string }[];
      gguf: {
        file: string;
        version: number;
        architecture: string;
        contextLength: number;
        dataOffset: number;
      }[];
    };
    expect(out.tensors).toEqual(
      want.tensors.map((t) => ({
        name: t.name,
        dtype: t.type,
        shape: [...t.ne].reverse(),
        bytes: t.bytes,
        file: "model.gguf",
      })),
    );
    expect(out.gguf).toEqual([
      expect.objectContaining({ file: "model.gguf", version: 3, architecture: "llama", contextLength: 4096 }),
    ]);
    const fetched = registry.blobBytes() - before;
    // The header is want.dataOffset bytes (51 488); reads double from 4 KiB, so the last may overshoot
    // it: 4 + 8 + 16 + 32 KiB = 61 440 bytes of the 317 728-byte blob.
    expect(fetched).toBeGreaterThanOrEqual(want.dataOffset);
    expect(fetched).toBeLessThan(2 * want.dataOffset + 4096);
    expect(fetched).toBeLessThan(large.byteLength / 4);
  });

  it("remoteGgufMetadata and remoteTensorIndex read the header by Range; arrays on demand", async () => {
    const ref = `${registry.host}/models/gguf-tiny:v1`;
    const options = { plainHttp: true };
    const metadata = await remoteGgufMetadata(ref, options);
    expect(metadata).toMatchObject({ architecture: "llama", contextLength: 2048, version: 3 });
    const tokens = (await metadata.array("tokenizer.ggml.tokens")) as string[];
    expect(tokens).toEqual(expected["tiny-llama.gguf"]?.metadata["tokenizer.ggml.tokens"]?.value);
    const index = await remoteTensorIndex(ref, options);
    expect(index.get("blk.0.ffn_up.weight")).toMatchObject({ dtype: "Q4_K", shape: [4, 256], length: 576 });
  });

  it("a pulled GGUF model: every tensor equal to what gguf's reader read, metadata, ranged reads", async () => {
    const want = expected["tiny-llama.gguf"]?.tensors ?? [];
    const model = await pullModel(`${registry.host}/models/gguf-tiny:v1`, {
      store: createFsStore(join(dir, "store")),
    });
    const seen: string[] = [];
    for await (const tensor of model.tensors()) {
      const t = want.find((w) => w.name === tensor.name);
      seen.push(tensor.name);
      expect(sha256(await tensor.data()), tensor.name).toBe(t?.sha256);
      expect(tensor.dtype).toBe(t?.type);
    }
    expect(seen).toEqual(want.map((t) => t.name));
    const norm = want.find((t) => t.name === "output_norm.weight");
    expect(Array.from(toFloat32("F32", await model.readTensor("output_norm.weight")))).toEqual(norm?.values);
    expect((await ggufMetadata(model)).chatTemplate).toMatch(/add_generation_prompt/);
  });

  it("oci-model tensors <file.gguf> reads a local file", async () => {
    const path = join(dir, "tiny.gguf");
    await writeFile(path, tiny);
    const result = await cli(["tensors", path]);
    expect(result.stderr).toBe("");
    expect(result.stdout).toMatch(
      /^.*tiny\.gguf: GGUF v3, llama, context length 2048, \d+ key\/values, data at \d+ \(alignment 32\)$/m,
    );
    expect(result.stdout).toMatch(/^blk\.0\.ffn_up\.weight\s+Q4_K\s+\[4, 256\]\s+576 B$/m);
    expect(result.stdout).toMatch(/^7 tensors, /m);
  });
});
