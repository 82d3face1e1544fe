import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pullModel, toFloat32 } from "../../src/index.js";
import { createFsStore } from "../../src/node/index.js";
import { pushWithSkopeo } from "../support/layout.js";
import { dockerV01 } from "../support/models.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { writeSafetensors } from "../support/safetensors.js";
import { shards, tensorSpecs } from "../support/tensor-model.js";

const CLI = join(import.meta.dirname, "../../dist/node/cli.js");

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

describe("tensors of a model in the registry and on disk", () => {
  let registry: TestRegistry;
  let dir: string;
  const big = writeSafetensors([
    { name: "embed", dtype: "F32", shape: [256, 1024] },
    { name: "head", dtype: "BF16", shape: [1024, 64] },
  ]);

  beforeAll(async () => {
    registry = await startRegistry({ redirectBlobs: true });
    await pushWithSkopeo(registry, (await dockerV01([big, ...shards()])).artifact, "models/tensors", "v1");
    dir = await mkdtemp(join(tmpdir(), "oml-tensors-"));
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("oci-model tensors <ref> lists every tensor while fetching only header bytes", async () => {
    const before = registry.blobBytes();
    const result = await cli(["tensors", "--json", `${registry.host}/models/tensors:v1`]);
    expect(result.stderr).toBe("");
    const { tensors } = JSON.parse(result.stdout) as {
      tensors: { name: string; dtype: string; shape: number[]; bytes: number }[];
    };
    expect(tensors.map((t) => t.name)).toEqual(["embed", "head", ...tensorSpecs().map((t) => t.name)]);
    expect(tensors[0]).toMatchObject({ dtype: "F32", shape: [256, 1024], bytes: 1024 * 1024 });
    const fetched = registry.blobBytes() - before;
    expect(fetched).toBeGreaterThan(0);
    expect(fetched).toBeLessThan(4096); // three shards' headers; the weights hold over 1.1 MiB
  });

  it("oci-model tensors <file.safetensors> reads a local file", async () => {
    const path = join(dir, "model.safetensors");
    await writeFile(path, big);
    const result = await cli(["tensors", path]);
    expect(result.stdout).toMatch(/^embed\s+F32\s+\[256, 1024\]\s+1\.0 MiB$/m);
    expect(result.stdout).toMatch(/2 tensors, 1\.1 MiB/);
  });

  it("iterates tensors of a pulled model in load order and reads one by range", async () => {
    const model = await pullModel(`${registry.host}/models/tensors:v1`, {
      store: createFsStore(join(dir, "store")),
    });
    const seen: string[] = [];
    for await (const tensor of model.tensors()) {
      seen.push(tensor.name);
      if (tensor.name === "half.weight") expect((await tensor.data()).byteLength).toBe(30);
    }
    expect(seen).toEqual(["embed", "head", ...tensorSpecs().map((t) => t.name)]);
    const bias = tensorSpecs().find((t) => t.name === "layer.bias");
    expect(Array.from(toFloat32("F32", await model.readTensor("layer.bias")))).toEqual(
      Array.from(toFloat32("F32", bias?.data as Uint8Array)),
    );
    await expect(model.readTensor("nope")).rejects.toMatchObject({ code: "NOT_FOUND" });
  });
});
