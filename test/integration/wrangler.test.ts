// The Workers in edge/ as Cloudflare's own tool builds and serves them: `wrangler deploy --dry-run`
// writes the bundle that a deploy would upload, and `wrangler dev --local` runs that build in workerd.
// No Cloudflare account or network: wrangler is given no credentials, sends no metrics, and keeps its
// state and logs in a temporary folder.
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryStore, packModel, pushModel } from "../../src/index.js";
import { packFilesFromDirectory } from "../../src/node/index.js";
import { floats, stateDict, writeZip } from "../support/checkpoint-files.js";
import { pushWithSkopeo } from "../support/layout.js";
import { dockerV01, type ModelFixture } from "../support/models.js";
import { servePage, type TestPage } from "../support/page.js";
import { readLine, run, startProcess, stopProcess } from "../support/process.js";
import { startRegistry, type TestRegistry, USER } from "../support/registry.js";

const ROOT = join(import.meta.dirname, "../..");
const WRANGLER = join(ROOT, "node_modules/wrangler/bin/wrangler.js");
const PROXY = join(ROOT, "edge/wrangler.toml");
const PULL = join(ROOT, "edge/pull/wrangler.toml");

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), "oml-wrangler-"));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

/**
 * `env` arguments that run wrangler offline: no account, no metrics or error reports, no fetch of the
 * `Request.cf` placeholder from workers.cloudflare.com (miniflare's built-in one instead), logs in `work`.
 * (Its update check on the npm registry gives up after 3 s by itself.)
 */
function offline(): string[] {
  const unset = Object.keys(process.env)
    .filter((name) => /^(CLOUDFLARE_|CF_)/.test(name))
    .flatMap((name) => ["-u", name]);
  return [
    ...unset,
    "WRANGLER_SEND_METRICS=false",
    "WRANGLER_SEND_ERROR_REPORTS=false",
    "CLOUDFLARE_CF_FETCH_ENABLED=false",
    `WRANGLER_LOG_PATH=${join(work, "logs")}`,
    "CI=true",
    "NO_COLOR=1",
  ];
}

interface Bundle {
  bytes: number;
  /** The files the bundle was built from (its source map's sources). */
  sources: string[];
}

/** `wrangler deploy --dry-run` of a config: the Worker exactly as a deploy would upload it. */
async function dryRun(config: string, minify: boolean): Promise<Bundle> {
  const outdir = await mkdtemp(join(work, "out-"));
  await run(
    "env",
    [
      ...offline(),
      process.execPath,
      WRANGLER,
      "deploy",
      "--dry-run",
      "--config",
      config,
      "--outdir",
      outdir,
      ...(minify ? ["--minify"] : []),
    ],
    { cwd: ROOT, timeout: 60_000 },
  );
  const main = join(outdir, "worker.js");
  const map = JSON.parse(await readFile(`${main}.map`, "utf8")) as { sources: string[] };
  return { bytes: (await stat(main)).size, sources: map.sources };
}

/** `wrangler dev --local` of a config on a free port, with `vars` over the config's; its URL. */
async function dev(config: string, vars: Record<string, string>) {
  const persist = await mkdtemp(join(work, "state-"));
  const server = startProcess("env", [
    ...offline(),
    process.execPath,
    WRANGLER,
    "dev",
    "--config",
    config,
    "--local",
    "--ip",
    "127.0.0.1",
    "--port",
    "0",
    "--inspector-port",
    "0",
    "--persist-to",
    persist,
    "--show-interactive-dev-session=false",
    ...Object.entries(vars).flatMap(([name, value]) => ["--var", `${name}:${value}`]),
  ]);
  try {
    const line = await readLine(server.child, (l) => /Ready on http:\/\/127\.0\.0\.1:\d+/.test(l), 45_000);
    const url = /http:\/\/127\.0\.0\.1:\d+/.exec(line)?.[0] as string;
    return { url, log: server.log, stop: () => stopProcess(server.child) };
  } catch (error) {
    await stopProcess(server.child);
    throw error;
  }
}

const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;
const fromPackage = (sources: string[], name: string) =>
  sources.filter((s) => s.includes(`node_modules/${name}/`));

describe("edge/ as `wrangler deploy` builds it", () => {
  it("bundles the proxy Worker without hash-wasm or @noble/hashes (Workers hash with crypto.DigestStream)", async () => {
    const plain = await dryRun(PROXY, false);
    const minified = await dryRun(PROXY, true);
    console.log(`proxy Worker (edge/worker.ts): ${kib(plain.bytes)}, minified ${kib(minified.bytes)}`);
    expect(plain.sources.some((s) => s.endsWith("edge/worker.ts"))).toBe(true);
    expect(plain.sources.some((s) => s.endsWith("src/proxy/handler.ts"))).toBe(true);
    expect(fromPackage(plain.sources, "hash-wasm")).toEqual([]);
    expect(fromPackage(plain.sources, "@noble/hashes")).toEqual([]);
    expect(minified.bytes).toBeLessThan(plain.bytes);
  });

  it("bundles the pull Worker with pullModel, zip.js for checkpoints, and no WebAssembly hasher", async () => {
    const plain = await dryRun(PULL, false);
    const minified = await dryRun(PULL, true);
    console.log(`pull Worker (edge/pull/worker.ts): ${kib(plain.bytes)}, minified ${kib(minified.bytes)}`);
    expect(plain.sources.some((s) => s.endsWith("src/model/pull.ts"))).toBe(true);
    expect(fromPackage(plain.sources, "@zip.js/zip.js").length).toBeGreaterThan(0);
    expect(fromPackage(plain.sources, "hash-wasm")).toEqual([]);
    expect(fromPackage(plain.sources, "@noble/hashes")).toEqual([]);
  });
});

describe("the proxy Worker under `wrangler dev`, in front of the real registry", () => {
  let registry: TestRegistry;
  let fixture: ModelFixture;
  let proxy: Awaited<ReturnType<typeof dev>>;
  let page: TestPage;

  beforeAll(async () => {
    registry = await startRegistry({ auth: "token", redirectBlobs: true });
    fixture = await dockerV01();
    await pushWithSkopeo(registry, fixture.artifact, "private/tiny", "v1");
    proxy = await dev(PROXY, { ALLOW: registry.host, CACHE_BLOBS: "true" });
    page = await servePage(join(import.meta.dirname, "../pages/pull-page.ts"));
  });
  afterAll(async () => {
    await page?.close();
    await proxy?.stop();
    await registry?.stop();
  });

  it("Chromium, on another origin, pulls a private model through it into OPFS", async () => {
    const tab = await page.browser.newPage();
    await tab.goto(`${page.origin}/`);
    await tab.waitForFunction(() => typeof window.pull === "function");
    registry.blobPaths.length = 0;
    const pulled = await tab.evaluate((r) => window.pull(r), {
      kind: "opfs" as const,
      reference: `${registry.host}/private/tiny:v1`,
      proxy: proxy.url,
      registry: registry.host,
      ...USER,
    });
    expect(pulled.code, `${String(pulled.message)}\n${proxy.log()}`).toBeUndefined();
    expect(pulled).toMatchObject({
      digest: fixture.artifact.descriptor.digest,
      format: "docker-v0.1",
      weights: fixture.weights,
      config: { hidden_size: 8 },
    });
    // Every blob came from the registry through the Worker (the browser cannot reach it otherwise).
    expect(registry.blobPaths.length).toBe(fixture.artifact.blobs.size);
    await tab.close();
  });
});

describe("the pull Worker under `wrangler dev`: pullModel into the Workers cache", () => {
  let registry: TestRegistry;
  let worker: Awaited<ReturnType<typeof dev>>;
  let ref: string;
  const weights = Array.from(new Float32Array(floats(6).buffer));

  beforeAll(async () => {
    registry = await startRegistry({ redirectBlobs: true }); // blobPaths: each blob the registry served
    // A PyTorch checkpoint as torch.save writes it (a zip: pickle, storage, version), its pickle
    // deflated so that the Worker inflates it, packed with a config and pushed.
    const folder = join(work, "torch-model");
    await mkdir(folder, { recursive: true });
    const pickle = stateDict({ "linear.weight": { offset: 0, shape: [2, 3] } }, 6).bytes();
    const checkpoint = await writeZip([
      { name: "archive/data.pkl", body: pickle, deflate: true },
      { name: "archive/data/0", body: floats(6) },
      { name: "archive/version", body: new TextEncoder().encode("3\n") },
    ]);
    await writeFile(join(folder, "pytorch_model.bin"), checkpoint.bytes);
    await writeFile(join(folder, "config.json"), '{"model_type":"tiny"}');
    const store = createMemoryStore();
    const packed = await packModel(await packFilesFromDirectory(folder), { format: "docker-v0.2", store });
    ref = `${registry.host}/models/torch:v1`;
    await pushModel(store, packed.descriptor, ref);
    worker = await dev(PULL, { REGISTRIES: registry.host });
  });
  afterAll(async () => {
    await worker?.stop();
    await registry?.stop();
  });

  const pull = async (reference: string, tensor?: string) => {
    const url = new URL(worker.url);
    url.searchParams.set("ref", reference);
    if (tensor) url.searchParams.set("tensor", tensor);
    const response = await fetch(url);
    return { status: response.status, body: (await response.json()) as Record<string, unknown> };
  };

  it("pulls the model, indexes the checkpoint and reads a tensor out of its zip", async () => {
    registry.blobPaths.length = 0;
    const { status, body } = await pull(ref, "linear.weight");
    expect(status, `${JSON.stringify(body)}\n${worker.log()}`).toBe(200);
    expect(body.format).toBe("docker-v0.2");
    expect(body.index).toEqual({
      "linear.weight": { dtype: "F32", shape: [2, 3], file: "pytorch_model.bin" },
    });
    expect(body.tensor).toEqual(weights);
    expect(registry.blobPaths.length).toBeGreaterThan(0);
  });

  it("answers the next pull from its Cache API store, fetching no blob", async () => {
    await pull(ref);
    registry.blobPaths.length = 0;
    const { status, body } = await pull(ref, "linear.weight");
    expect(status).toBe(200);
    expect(body.tensor).toEqual(weights);
    expect(registry.blobPaths).toEqual([]);
  });

  it("refuses a reference to a registry outside REGISTRIES, fetching nothing", async () => {
    const { status, body } = await pull("ghcr.io/someone/model:v1");
    expect(status).toBe(403);
    expect(body.code).toBe("DENIED");
  });
});
