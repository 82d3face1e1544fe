// The transformers.js and ONNX Runtime Web adapters' bed (issue 18): the tiny BERT fixture
// (scripts/tiny-bert.py) packed as Docker model-spec v0.2 artifacts and pushed to a Distribution
// registry of its own (anonymous, blobs served through a redirect so that every blob GET is counted),
// our proxy in front, and a small CORS server with the registry's blob counts and the fixture files
// (what the runtimes load themselves, for comparison). One artifact has a blob altered on the
// registry's disk after the push, so a pull must refuse it.
import { createReadStream } from "node:fs";
import { cp, mkdtemp, readFile, rm, stat, writeFile } from "node:fs/promises";
import { createServer } from "node:http";
import { tmpdir } from "node:os";
import { join, normalize } from "node:path";
import type { TestProject } from "vitest/node";
import { createMemoryStore, packModel, pushModel } from "../../src/index.js";
import { packFilesFromDirectory, serveRegistryProxy } from "../../src/node/index.js";
import { startRegistry } from "../support/registry.js";

const FIXTURE = join(import.meta.dirname, "../fixtures/tiny-bert");

/** What the adapters' browser tests get from the Node side. */
export interface TransformersBed {
  proxyUrl: string;
  /** The fixture's model/ folder (config.json, tokenizer files, onnx/model.onnx), public. */
  model: string;
  /** Its external/ folder: onnx/model.onnx with onnx/model.onnx_data. */
  external: string;
  /** The gather/ graph with its 64 MiB gather.onnx_data, written here. */
  gather: string;
  gatherElements: number;
  /** model/ with a config.json whose blob was changed on the registry's disk after the push. */
  tampered: string;
  /**
   * The CORS server: `GET /stats` → `{ blobRequests, blobBytes }` as the registry's blob server
   * counted them; `GET /files/<path>` → a file of test/fixtures/tiny-bert (and gather/gather.onnx_data),
   * counted in `filesBytes`.
   */
  serverUrl: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    transformersBed: TransformersBed;
  }
}

/** Value i of the gather weights: exact in float32. */
const gatherValue = (i: number) => (i % 4096) * 0.25 - 512;

async function push(folder: string, reference: string) {
  const store = createMemoryStore();
  const packed = await packModel(await packFilesFromDirectory(folder), { format: "docker-v0.2", store });
  await pushModel(store, packed.descriptor, reference);
  return packed;
}

export default async function setup(project: TestProject) {
  const registry = await startRegistry({ redirectBlobs: true });
  const dir = await mkdtemp(join(tmpdir(), "oml-transformers-"));
  const gatherJson = JSON.parse(await readFile(join(FIXTURE, "gather/gather.json"), "utf8"));
  const elements: number = gatherJson.elements;
  const weights = new Float32Array(elements);
  for (let i = 0; i < elements; i++) weights[i] = gatherValue(i);
  const gatherDir = join(dir, "gather");
  await cp(join(FIXTURE, "gather"), gatherDir, { recursive: true });
  await writeFile(join(gatherDir, "gather.onnx_data"), new Uint8Array(weights.buffer));

  const tamperedDir = join(dir, "tampered");
  await cp(join(FIXTURE, "model"), tamperedDir, { recursive: true });
  const config = JSON.parse(await readFile(join(tamperedDir, "config.json"), "utf8"));
  await writeFile(
    join(tamperedDir, "config.json"),
    `${JSON.stringify({ ...config, _variant: "tampered" }, null, 2)}\n`,
  );

  const model = `${registry.host}/public/tiny-bert:v1`;
  const external = `${registry.host}/public/tiny-bert-external:v1`;
  const gather = `${registry.host}/public/gather:v1`;
  const tampered = `${registry.host}/public/tiny-bert-tampered:v1`;
  await push(join(FIXTURE, "model"), model);
  await push(join(FIXTURE, "external"), external);
  await push(gatherDir, gather);
  const packed = await push(tamperedDir, tampered);
  // Same size, still valid JSON, a different model: 2 layers become 1 on the registry's disk.
  const layer = packed.manifest.layers.find(
    (l) => l.annotations?.["org.cncf.model.filepath"] === "config.json",
  );
  if (!layer) throw new Error("the tampered artifact has no config.json layer");
  const onDisk = registry.blobPath(layer.digest);
  const text = await readFile(onDisk, "utf8");
  const altered = text.replace('"num_hidden_layers": 2', '"num_hidden_layers": 1');
  if (altered === text) throw new Error("config.json has no num_hidden_layers to alter");
  await writeFile(onDisk, altered);

  let filesBytes = 0;
  const roots: Record<string, string> = { "gather/gather.onnx_data": join(gatherDir, "gather.onnx_data") };
  const server = createServer(async (req, res) => {
    res.setHeader("access-control-allow-origin", "*");
    res.setHeader("access-control-expose-headers", "content-length");
    const url = new URL(req.url ?? "/", "http://x");
    if (url.pathname === "/stats") {
      res.setHeader("content-type", "application/json");
      res.end(
        JSON.stringify({
          blobRequests: registry.blobPaths.length,
          blobBytes: registry.blobBytes(),
          filesBytes,
        }),
      );
      return;
    }
    const rel = normalize(decodeURIComponent(url.pathname.replace(/^\/files\//, "")));
    const path = roots[rel] ?? join(FIXTURE, rel);
    if (
      !url.pathname.startsWith("/files/") ||
      rel.startsWith("..") ||
      (!path.startsWith(FIXTURE) && !roots[rel])
    ) {
      res.writeHead(404).end();
      return;
    }
    try {
      const info = await stat(path);
      if (!info.isFile()) throw new Error("not a file");
      res.writeHead(200, { "content-length": info.size, "content-type": "application/octet-stream" });
      const body = createReadStream(path);
      body.on("data", (chunk) => {
        filesBytes += chunk.length;
      });
      body.pipe(res);
    } catch {
      res.writeHead(404).end();
    }
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("the files server has no port");
  const proxy = await serveRegistryProxy({ allow: [registry.host], port: 0 });
  project.provide("transformersBed", {
    proxyUrl: proxy.url,
    model,
    external,
    gather,
    gatherElements: elements,
    tampered,
    serverUrl: `http://127.0.0.1:${address.port}`,
  });
  return async () => {
    await proxy.close();
    await new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
