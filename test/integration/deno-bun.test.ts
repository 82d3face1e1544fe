// Issue 23: the core and the proxy under Deno and Bun (their binaries come with the `deno` and `bun`
// npm packages). Each runtime runs test/support/runtime-pull.js against the built dist: a pull from the
// real registry into a memory store (and Deno's Cache API store), the tensor index and one tensor;
// then createRegistryProxy served by Deno.serve and Bun.serve, with Node pulling through it.
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryStore, type Model, pullModel } from "../../src/index.js";
import { pushWithSkopeo, sameBytes } from "../support/layout.js";
import { dockerV01, type ModelFixture } from "../support/models.js";
import { servePage, type TestPage } from "../support/page.js";
import { isHttpUrlLine, readLine, run, startProcess, stopProcess } from "../support/process.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { f16Bytes } from "../support/safetensors.js";
import { shards, values } from "../support/tensor-model.js";

const ROOT = join(import.meta.dirname, "../..");
const SCRIPT = join(ROOT, "test/support/runtime-pull.js");
const RUNTIMES = {
  deno: { bin: join(ROOT, "node_modules/.bin/deno"), args: ["run", "--allow-all", "--quiet", SCRIPT] },
  bun: { bin: join(ROOT, "node_modules/.bin/bun"), args: ["run", SCRIPT] },
} as const;
const TENSOR = "half.weight";

/** A recording fetch: every URL Node asked for. */
function recordingFetch(): { asked: URL[]; fetch: typeof fetch } {
  const asked: URL[] = [];
  const f = ((input: RequestInfo | URL, init?: RequestInit) => {
    asked.push(new URL(input instanceof Request ? input.url : input.toString()));
    return fetch(input, init);
  }) as typeof fetch;
  return { asked, fetch: f };
}

/** Waits until the process's output (stdout and stderr) has a match for `pattern`. */
async function waitForOutput(log: () => string, pattern: RegExp, ms = 15_000): Promise<RegExpExecArray> {
  const deadline = Date.now() + ms;
  for (;;) {
    const match = pattern.exec(log());
    if (match) return match;
    if (Date.now() > deadline) throw new Error(`no ${pattern} in the output:\n${log()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** `text` with `from` replaced by `to`, failing when the example no longer has `from`. */
function replaced(text: string, from: string, to: string): string {
  if (!text.includes(from)) throw new Error(`the example no longer has ${from}`);
  return text.replaceAll(from, to);
}

interface RuntimeResult {
  runtime: string;
  digest: string;
  /** Each file's digest (none for a file served in place from a tar layer). */
  files: Record<string, string | undefined>;
  weights: string[];
  index: Record<string, { dtype: string; shape: number[]; file: string }>;
  tensor: number[];
  /** Entries in the Cache API cache after the pull (cache store only). */
  cached?: number;
}

async function runIn(runtime: keyof typeof RUNTIMES, ...args: string[]): Promise<RuntimeResult> {
  const { bin, args: base } = RUNTIMES[runtime];
  const { stdout } = await run(bin, [...base, ...args], { cwd: ROOT, timeout: 20_000 });
  return JSON.parse(stdout.trim().split("\n").at(-1) as string) as RuntimeResult;
}

describe("Deno and Bun, against the real registry", () => {
  let registry: TestRegistry;
  let fixture: ModelFixture;
  let ref: string;
  let node: Model;
  let expected: Omit<RuntimeResult, "runtime">;

  beforeAll(async () => {
    registry = await startRegistry();
    fixture = await dockerV01(shards());
    await pushWithSkopeo(registry, fixture.artifact, "models/tiny", "v1");
    ref = `${registry.host}/models/tiny:v1`;
    node = await pullModel(ref, { store: createMemoryStore() });
    const index = await node.tensorIndex();
    expected = {
      digest: fixture.artifact.descriptor.digest,
      files: Object.fromEntries([...node.files].map(([path, file]) => [path, file.digest])),
      weights: fixture.weights,
      index: Object.fromEntries(
        [...index].map(([name, e]) => [name, { dtype: e.dtype, shape: e.shape, file: e.file }]),
      ),
      tensor: Array.from(await node.readTensor(TENSOR)),
    };
  }, 60_000);
  afterAll(async () => {
    await registry?.stop();
  });

  it("Node's own pull is what the fixture holds (the baseline the runtimes are held to)", () => {
    expect(node.digest).toBe(fixture.artifact.descriptor.digest);
    expect(Object.keys(expected.files).sort()).toEqual(Object.keys(fixture.files).sort());
    expect(Object.keys(expected.index).sort()).toEqual(
      ["brain.weight", "half.weight", "ids", "layer.bias", "layer.weight"].sort(),
    );
    expect(expected.tensor).toEqual(Array.from(f16Bytes(values(15, 3)))); // half.weight, F16 [5, 3]
  });

  for (const runtime of ["deno", "bun"] as const) {
    it(`${runtime}: pulls into a memory store, reads the tensor index and a tensor as Node does`, async () => {
      const result = await runIn(runtime, "pull", ref, TENSOR);
      expect(result.runtime).toMatch(runtime === "deno" ? /^deno 2\./ : /^bun 1\./);
      expect({ ...result, runtime: undefined }).toEqual({ ...expected, runtime: undefined });
    });
  }

  it("deno: pulls into the Cache API store (caches.open)", async () => {
    const result = await runIn("deno", "pull", ref, TENSOR, "cache");
    // Every blob (manifest, config, two shards, the config tar, the files it holds) is a cache entry.
    expect(result.cached).toBeGreaterThanOrEqual(5);
    expect({ ...result, runtime: undefined, cached: undefined }).toEqual({ ...expected, runtime: undefined });
  });

  for (const runtime of ["deno", "bun"] as const) {
    it(`${runtime}: serves createRegistryProxy (${runtime === "deno" ? "Deno.serve" : "Bun.serve"}), and Node pulls the model through it`, async () => {
      const { bin, args } = RUNTIMES[runtime];
      const proxy = startProcess(bin, [...args, "proxy", registry.host]);
      try {
        const url = await readLine(proxy.child, isHttpUrlLine);
        const { asked, fetch: recording } = recordingFetch();
        const model = await pullModel(ref, { store: createMemoryStore(), proxy: url, fetch: recording });
        expect(model.digest).toBe(fixture.artifact.descriptor.digest);
        expect([...model.files.keys()].sort()).toEqual(Object.keys(fixture.files).sort());
        for (const [path, bytes] of Object.entries(fixture.files))
          expect(sameBytes(new Uint8Array(await model.file(path).arrayBuffer()), bytes), path).toBe(true);
        expect(Array.from(await model.readTensor(TENSOR))).toEqual(expected.tensor);
        // Every request Node made went to the runtime's server, and the server logged serving each
        // manifest and blob path from the registry, with a 200.
        expect(asked.length).toBeGreaterThan(0);
        expect(new Set(asked.map((u) => u.origin))).toEqual(new Set([new URL(url).origin]));
        const served = proxy
          .log()
          .split("\n")
          .filter((line) => line.startsWith("{"))
          .map((line) => JSON.parse(line) as { served: string; status: number });
        const blobs = [fixture.artifact.descriptor.digest, ...fixture.artifact.blobs.keys()];
        for (const digest of fixture.artifact.blobs.keys())
          expect(served, digest).toContainEqual({
            served: `/${registry.host}/v2/models/tiny/blobs/${digest}`,
            status: 200,
          });
        expect(served).toContainEqual({
          served: `/${registry.host}/v2/models/tiny/manifests/v1`,
          status: 200,
        });
        expect(served.length).toBeGreaterThanOrEqual(blobs.length);
      } finally {
        await stopProcess(proxy.child);
      }
    });
  }

  // A fetch handler's second argument is the runtime's own (Deno's ServeHandlerInfo, Bun's Server):
  // with a blob cache the proxy must not take it for Workers' ExecutionContext (it once called its
  // missing waitUntil and answered each blob with a 500).
  it("deno: createRegistryProxy with a Cache API blob cache, given to Deno.serve as it is, serves the pull", async () => {
    const { bin, args } = RUNTIMES.deno;
    const dir = await mkdtemp(join(tmpdir(), "oml-deno-dir-"));
    const proxy = startProcess("env", [
      `DENO_DIR=${dir}`,
      bin,
      ...args,
      "proxy",
      registry.host,
      "direct-cache",
    ]);
    try {
      const url = await readLine(proxy.child, isHttpUrlLine);
      const model = await pullModel(ref, { store: createMemoryStore(), proxy: url });
      expect(model.digest).toBe(expected.digest);
    } finally {
      await stopProcess(proxy.child);
      await rm(dir, { recursive: true, force: true });
    }
  });

  // README's examples/deno.ts and examples/bun.ts, run as they are but for the reference, the tensor,
  // the allow-list, the port and the package name (the built dist): the pull prints what Node reads,
  // and Node pulls through the proxy the example serves.
  for (const runtime of ["deno", "bun"] as const) {
    it(`${runtime}: README's examples/${runtime}.ts pulls the model and serves the proxy`, async () => {
      const dir = await mkdtemp(join(tmpdir(), `oml-${runtime}-example-`));
      let source = await readFile(join(ROOT, "examples", `${runtime}.ts`), "utf8");
      source = replaced(source, '"oci-model-loader"', JSON.stringify(join(ROOT, "dist/index.js")));
      source = replaced(
        source,
        '"oci-model-loader/proxy"',
        JSON.stringify(join(ROOT, "dist/proxy/index.js")),
      );
      source = replaced(source, '"ghcr.io/acme/tiny-llm:v1"', JSON.stringify(ref));
      source = replaced(source, '"lm_head.bias"', JSON.stringify(TENSOR));
      source = replaced(source, '["dockerhub", "ghcr"]', JSON.stringify([registry.host]));
      source = replaced(source, "port: 8787", "port: 0");
      const file = join(dir, `${runtime}.ts`);
      await writeFile(file, source);
      // Deno keeps its Cache API data under DENO_DIR: a fresh one per run, removed after.
      const command =
        runtime === "deno"
          ? [
              `DENO_DIR=${join(dir, "deno")}`,
              RUNTIMES.deno.bin,
              "run",
              "-A",
              "--node-modules-dir=manual",
              file,
            ]
          : [RUNTIMES.bun.bin, "run", file];
      const example = startProcess("env", command);
      try {
        const pulled = await waitForOutput(example.log, /^(sha256:\w+) (\d+) (\d+)$/m);
        expect(pulled.slice(1)).toEqual([
          expected.digest,
          String(Object.keys(expected.index).length),
          String(expected.tensor.length),
        ]);
        const [url] = await waitForOutput(example.log, /http:\/\/127\.0\.0\.1:\d+/);
        const { asked, fetch: recording } = recordingFetch();
        const model = await pullModel(ref, { store: createMemoryStore(), proxy: url, fetch: recording });
        expect(model.digest).toBe(expected.digest);
        expect(Array.from(await model.readTensor(TENSOR))).toEqual(expected.tensor);
        expect(new Set(asked.map((u) => u.origin))).toEqual(new Set([new URL(url).origin]));
      } finally {
        await stopProcess(example.child);
        await rm(dir, { recursive: true, force: true });
      }
    });
  }

  describe("Chromium pulling through the proxy each runtime serves", () => {
    let page: TestPage;
    beforeAll(async () => {
      page = await servePage(join(ROOT, "test/pages/pull-page.ts"));
    }, 60_000);
    afterAll(async () => {
      await page?.close();
    });

    for (const runtime of ["deno", "bun"] as const) {
      it(`${runtime}: a page on another origin pulls the model into OPFS through it (CORS included)`, async () => {
        const { bin, args } = RUNTIMES[runtime];
        const proxy = startProcess(bin, [...args, "proxy", registry.host]);
        try {
          const url = await readLine(proxy.child, isHttpUrlLine);
          const tab = await page.newTab();
          await tab.goto(`${page.origin}/`);
          await tab.waitForFunction(() => typeof window.pull === "function");
          const result = await tab.evaluate((r) => window.pull(r), {
            kind: "opfs" as const,
            reference: ref,
            proxy: url,
            registry: registry.host,
            username: "nobody",
            password: "unused",
          });
          expect(result.code, String(result.message)).toBeUndefined();
          expect(result).toMatchObject({ digest: expected.digest, weights: fixture.weights });
          expect((result.files as string[]).sort()).toEqual(Object.keys(fixture.files).sort());
          const served = proxy
            .log()
            .split("\n")
            .filter((line) => line.startsWith("{"));
          for (const digest of fixture.artifact.blobs.keys())
            expect(
              served.some((line) => line.includes(`/blobs/${digest}`)),
              digest,
            ).toBe(true);
          await tab.close();
        } finally {
          await stopProcess(proxy.child);
        }
      });
    }
  });
});
