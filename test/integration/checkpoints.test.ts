import { execFile } from "node:child_process";
import { access, mkdir, mkdtemp, open, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createMemoryStore,
  type Model,
  type OciError,
  packModel,
  pullModel,
  pushModel,
  toFloat32,
  typedArray,
} from "../../src/index.js";
import { buildTensorIndex } from "../../src/internals.js";
import { packFilesFromDirectory } from "../../src/node/index.js";
import { run } from "../support/process.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";

const CLI = join(import.meta.dirname, "../../dist/node/cli.js");

interface Expected {
  dtype: string;
  shape: number[];
  values: number[];
}

function values(dtype: string, bytes: Uint8Array): number[] {
  if (dtype === "F32" || dtype === "F16" || dtype === "BF16") return Array.from(toFloat32(dtype, bytes));
  return Array.from(typedArray(dtype as "I64", bytes) as ArrayLike<number | bigint>, Number);
}

async function diskFile(path: string) {
  const size = (await stat(path)).size;
  return {
    path: path.split("/").at(-1) as string,
    size,
    read: async (offset: number, length: number) => {
      const file = await open(path, "r");
      try {
        const buffer = new Uint8Array(length);
        await file.read(buffer, 0, length, offset);
        return buffer;
      } finally {
        await file.close();
      }
    },
  };
}

describe("zip-container checkpoints written by real PyTorch and NumPy", () => {
  let dir: string;
  let registry: TestRegistry;
  let model: Model;
  const expected: Record<string, Expected> = {};

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "oml-ckpt-"));
    await run(
      "/usr/bin/python3",
      [join(import.meta.dirname, "../support/checkpoints.py"), join(dir, "gen")],
      { timeout: 120_000 },
    );
    Object.assign(expected, JSON.parse(await readFile(join(dir, "gen", "model.json"), "utf8")));
    for (const [name, v] of Object.entries(
      JSON.parse(await readFile(join(dir, "gen", "arrays.json"), "utf8")) as Record<string, Expected>,
    )) {
      expected[`npz.${name}`] = v;
    }
    // A model folder with a .bin, both .npz kinds and a config, packed, pushed and pulled back.
    const folder = join(dir, "model");
    await mkdir(folder);
    await writeFile(join(folder, "pytorch_model.bin"), await readFile(join(dir, "gen", "model.bin")));
    await writeFile(join(folder, "arrays.npz"), await readFile(join(dir, "gen", "arrays.npz")));
    await writeFile(join(folder, "zipped.npz"), await readFile(join(dir, "gen", "zipped.npz")));
    await writeFile(join(folder, "config.json"), "{}");
    registry = await startRegistry();
    const store = createMemoryStore();
    const packed = await packModel(await packFilesFromDirectory(folder), { format: "docker-v0.2", store });
    await pushModel(store, packed.descriptor, `${registry.host}/models/torch:v1`);
    model = await pullModel(`${registry.host}/models/torch:v1`, { store: createMemoryStore() });
  }, 180_000);
  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("indexes and reads every tensor of a torch.save state dict exactly, views sharing a storage included", async () => {
    const index = await model.tensorIndex();
    for (const [name, want] of Object.entries(expected).filter(([n]) => !n.startsWith("npz."))) {
      const entry = index.get(name);
      expect(entry?.shape, name).toEqual(want.shape);
      expect(values(entry?.dtype ?? "", await model.readTensor(name)), name).toEqual(want.values);
    }
    expect(index.get("view.a")?.file).toBe("pytorch_model.bin");
  });

  it("reads NumPy savez (stored) and savez_compressed (deflated) through the pulled model and from disk", async () => {
    const index = await model.tensorIndex();
    for (const name of ["f32", "f16", "i64", "u8"]) {
      const want = expected[`npz.${name}`] as Expected;
      expect(index.get(name)?.shape).toEqual(want.shape);
      expect(values(index.get(name)?.dtype ?? "", await model.readTensor(name)), name).toEqual(want.values);
    }
    for (const name of ["f32", "f16", "i64", "u8"]) {
      const want = expected[`npz.${name}`] as Expected;
      const entry = index.get(`z.${name}`);
      expect(entry?.member).toBe(`z.${name}.npy`);
      expect(values(entry?.dtype ?? "", await model.readTensor(`z.${name}`)), name).toEqual(want.values);
    }
    const compressed = await buildTensorIndex([await diskFile(join(dir, "gen", "arrays_compressed.npz"))]);
    expect([...compressed.values()].every((t) => t.member !== undefined)).toBe(true);
    expect(compressed.get("f16")?.dtype).toBe("F16");
  });

  it("iterates the checkpoint's tensors like safetensors ones", async () => {
    const names: string[] = [];
    for await (const tensor of model.tensors()) {
      names.push(tensor.name);
      if (tensor.name === "view.b")
        expect(values("F32", await tensor.data())).toEqual(expected["view.b"]?.values);
    }
    expect(names.sort()).toEqual(
      [
        ...Object.keys(expected).filter((n) => !n.startsWith("npz.")),
        ...["f16", "f32", "i64", "u8"].flatMap((n) => [n, `z.${n}`]),
      ].sort(),
    );
  });

  // Each refused for its own reason, with the rule it broke: the code and reason are the check.
  // (No JavaScript reader can run a pickle's payload, so looking for what the payload would write
  // could never fail; the test below shows the payloads are real.)
  it.each([
    ["system", /it names the global posix\.system, which is not on the allow-list/],
    ["eval", /it names the global __builtin__\.eval, which is not on the allow-list/],
    ["deep", /it nests deeper than 1000/],
    ["memo-get", /it reads memo slot 2147483648, which was never set/],
    ["memo-put", /its memo grows past 1000000/],
    ["opcode", /opcode 0xff is not one torch\.save emits/],
  ])("refuses the hostile pickle %s with UNSAFE_PICKLE, for its own reason", async (name, reason) => {
    const error = (await buildTensorIndex([await diskFile(join(dir, "gen", `hostile-${name}.bin`))]).catch(
      (e: unknown) => e,
    )) as OciError;
    expect(error.code).toBe("UNSAFE_PICKLE");
    expect(error.message).toMatch(reason);
    expect(error.message).toMatch(/; nothing was executed$/);
  });

  it("the hostile system and eval pickles are real: Python's pickle runs their payload", async () => {
    const pwned = join(dir, "gen", "PWNED");
    for (const name of ["system", "eval"]) {
      await rm(pwned, { force: true });
      const load = `import pickle, sys, zipfile; pickle.loads(zipfile.ZipFile(sys.argv[1]).read("archive/data.pkl"))`;
      await run("/usr/bin/python3", ["-c", load, join(dir, "gen", `hostile-${name}.bin`)], {
        timeout: 30_000,
      });
      await expect(access(pwned), name).resolves.toBeUndefined();
    }
    await rm(pwned, { force: true });
  });

  it.each([
    ["outside.npz", /outside the archive|no local header|not a readable zip/],
    ["overlap.npz", /overlap/],
    ["bomb.npz", /zip bomb|over the limit/],
  ])("refuses the hostile zip %s with INVALID_CHECKPOINT", async (name, reason) => {
    const error = (await buildTensorIndex([await diskFile(join(dir, "gen", name))]).catch(
      (e: unknown) => e,
    )) as OciError;
    expect(error.code).toBe("INVALID_CHECKPOINT");
    expect(error.message).toMatch(reason);
  });

  it("oci-model tensors lists a .bin file", async () => {
    const { stdout } = await new Promise<{ stdout: string }>((resolve, reject) =>
      execFile(
        process.execPath,
        [CLI, "tensors", "--json", join(dir, "gen", "model.bin")],
        (error, stdout, stderr) => (error ? reject(new Error(stderr)) : resolve({ stdout })),
      ),
    );
    const { tensors } = JSON.parse(stdout) as { tensors: { name: string; dtype: string }[] };
    expect(Object.fromEntries(tensors.map((t) => [t.name, t.dtype]))).toMatchObject({
      "layer.weight": "F32",
      "layer.half": "F16",
      "layer.brain": "BF16",
      "layer.ids": "I64",
    });
  });
});
