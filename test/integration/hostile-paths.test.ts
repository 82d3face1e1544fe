// Issue 24 item 3: layer paths that climb out of the model's folder, pushed to the real registry
// with skopeo, refused by pullModel and by `oci-model pull --output`, with nothing written where a
// traversal would land; a KitOps raw layer compressed as a whole is held to the same.
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, readdir, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { gzipSync } from "node:zlib";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type OciError, openModel, pullModel } from "../../src/index.js";
import { createFsStore } from "../../src/node/index.js";
import { buildManifest, pushWithSkopeo, sha256 } from "../support/layout.js";
import { tarOf } from "../support/models.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";

const CLI = join(import.meta.dirname, "../../dist/node/cli.js");
const text = (s: string) => new TextEncoder().encode(s);
const PAYLOAD = text("written outside --output\n");
const CONFIG_JSON = text(JSON.stringify({ hidden_size: 8 }));

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) =>
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent" } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    ),
  );
}

/** Every file and folder (or only every file) under `dir`, relative to it, sorted. */
async function tree(dir: string, filesOnly = false): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true }).catch(
    (e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT") return [];
      throw e;
    },
  );
  return entries
    .filter((e) => !filesOnly || e.isFile())
    .map((e) => relative(dir, join(e.parentPath, e.name)))
    .sort();
}

interface Case {
  name: string;
  /** The hostile layer: a raw file with a path annotation, or a tar with a hostile entry. */
  layer: () => Promise<{ mediaType: string; bytes: Uint8Array; annotations?: Record<string, string> }>;
  code: string;
  reason: RegExp;
}

const rawLayer = (annotations: Record<string, string>) => async () => ({
  mediaType: "application/vnd.cncf.model.doc.v1.raw",
  bytes: PAYLOAD,
  annotations,
});

const CASES: Case[] = [
  {
    name: "org.cncf.model.filepath ../../x",
    layer: rawLayer({ "org.cncf.model.filepath": "../../x" }),
    code: "MANIFEST_INVALID",
    reason: /the layer path "\.\.\/\.\.\/x" is not a safe relative path/,
  },
  {
    name: "org.cncf.model.filepath a/../../x",
    layer: rawLayer({ "org.cncf.model.filepath": "a/../../x" }),
    code: "MANIFEST_INVALID",
    reason: /the layer path "a\/\.\.\/\.\.\/x" is not a safe relative path/,
  },
  {
    name: "org.opencontainers.image.title ../../x",
    layer: rawLayer({ "org.opencontainers.image.title": "../../x" }),
    code: "MANIFEST_INVALID",
    reason: /the layer path "\.\.\/\.\.\/x" is not a safe relative path/,
  },
  {
    name: "org.cncf.model.filepath ./ (the folder itself)",
    layer: rawLayer({ "org.cncf.model.filepath": "./" }),
    code: "MANIFEST_INVALID",
    reason: /the layer path "\.\/" is not a safe relative path/,
  },
  {
    name: "org.cncf.model.filepath ../../x on a tar layer",
    layer: async () => ({
      mediaType: "application/vnd.cncf.model.weight.config.v1.tar",
      bytes: await tarOf({ "tokenizer.json": text("{}") }),
      annotations: { "org.cncf.model.filepath": "../../x" },
    }),
    code: "MANIFEST_INVALID",
    reason: /the layer path "\.\.\/\.\.\/x" is not a safe relative path/,
  },
  {
    name: "a tar entry ../../x",
    layer: async () => ({
      mediaType: "application/vnd.cncf.model.weight.config.v1.tar",
      bytes: await tarOf({ "../../x": PAYLOAD }),
    }),
    code: "UNSAFE_ARCHIVE",
    reason: /entry "\.\.\/\.\.\/x" climbs out with "\.\."/,
  },
  {
    name: "org.cncf.model.filepath ../../x on a KitOps raw+gzip layer",
    layer: async () => ({
      mediaType: "application/vnd.kitops.modelkit.docs.v1.raw+gzip",
      bytes: gzipSync(PAYLOAD),
      annotations: { "org.cncf.model.filepath": "../../x" },
    }),
    code: "MANIFEST_INVALID",
    reason: /the layer path "\.\.\/\.\.\/x" is not a safe relative path/,
  },
  {
    name: "a KitOps raw+gzip layer cut short (its digest matches: the registry holds it so)",
    layer: async () => ({
      mediaType: "application/vnd.kitops.modelkit.docs.v1.raw+gzip",
      bytes: gzipSync(PAYLOAD).subarray(0, 12),
      annotations: { "org.cncf.model.filepath": "README.md" },
    }),
    code: "UNSAFE_ARCHIVE",
    reason: /it is truncated or corrupt/,
  },
];

describe("hostile layer paths against the real registry", () => {
  let registry: TestRegistry;
  let dir: string;
  const refs = new Map<string, { ref: string; hostileDigest: string }>();

  beforeAll(async () => {
    registry = await startRegistry({ redirectBlobs: true });
    dir = await mkdtemp(join(tmpdir(), "oml-hostile-"));
    for (const [i, c] of CASES.entries()) {
      const hostile = await c.layer();
      const artifact = buildManifest({
        artifactType: "application/vnd.cncf.model.manifest.v1+json",
        config: {
          mediaType: "application/vnd.cncf.model.config.v1+json",
          bytes: text(JSON.stringify({ config: { format: "safetensors" } })),
        },
        layers: [
          {
            mediaType: "application/vnd.cncf.model.weight.config.v1.raw",
            bytes: CONFIG_JSON,
            annotations: { "org.cncf.model.filepath": "config.json" },
          },
          hostile,
        ],
      });
      await pushWithSkopeo(registry, artifact, `hostile/case${i}`, "v1");
      refs.set(c.name, { ref: `${registry.host}/hostile/case${i}:v1`, hostileDigest: sha256(hostile.bytes) });
    }
  }, 120_000);
  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it.each(CASES)("pullModel refuses $name: $code, nothing recorded or kept", async (c) => {
    const { ref, hostileDigest } = refs.get(c.name) as { ref: string; hostileDigest: string };
    const storeDir = join(dir, "lib", c.name.replace(/\W+/g, "-"));
    const store = createFsStore(storeDir);
    registry.blobPaths.length = 0;
    const error = (await pullModel(ref, { store }).catch((e: unknown) => e)) as OciError;
    expect(error.code, String(error)).toBe(c.code);
    expect(error.message).toMatch(c.reason);
    expect(await openModel(ref, { store }).catch((e: OciError) => e.code)).toBe("NOT_FOUND");
    expect(await store.tags()).toEqual(new Map());
    expect(await store.exists({ digest: hostileDigest })).toBe(false);
    if (c.code === "MANIFEST_INVALID") {
      // Refused from the manifest alone: no blob was even fetched.
      expect(registry.blobPaths).toEqual([]);
      expect((await tree(storeDir, true)).filter((p) => p.startsWith("blobs/"))).toEqual([]);
    }
  });

  it.each(CASES)(
    "oci-model pull --output refuses $name and writes nothing where it would land",
    async (c) => {
      const { ref } = refs.get(c.name) as { ref: string };
      // --output is root/a/b/out: "../../x" from it lands in root/a. Only the folders this test made
      // may be there afterwards, and out/ may hold nothing.
      const root = join(dir, "cli", c.name.replace(/\W+/g, "-"));
      const output = join(root, "a", "b", "out");
      await mkdir(join(root, "a", "b"), { recursive: true });
      const store = join(dir, "cli-stores", c.name.replace(/\W+/g, "-"));
      const result = await cli(["pull", ref, "--store", store, "--output", output]);
      expect(result.code, result.stderr).toBe(1);
      expect(result.stderr).toMatch(new RegExp(`^oci-model pull: ${c.code}: `, "m"));
      expect(result.stderr).toMatch(c.reason);
      expect(await tree(root)).toEqual(["a", "a/b"]);
    },
  );
});
