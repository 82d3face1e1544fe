// The wllama adapter's bed (test/browser/wllama.browser.test.ts): the tiny llama GGUF of
// test/fixtures/wllama, one file and split, and a larger model of the same kind written here by
// scripts/tiny-llama-wllama.py, packed as Docker model artifacts and pushed to a Distribution registry
// of their own behind our proxy; a plain file server for the same files (wllama's own loading); and
// a count of every request the proxy sent to the registry and every byte it got back.
import { createHash, randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { copyFile, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:http";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import type { TestProject } from "vitest/node";
import { createMemoryStore, packModel, pushModel } from "../../src/index.js";
import { packFilesFromGguf, serveRegistryProxy } from "../../src/node/index.js";
import { run } from "../support/process.js";
import { startRegistry } from "../support/registry.js";

const FIXTURES = join(import.meta.dirname, "../fixtures/wllama");
const PYTHON = join(import.meta.dirname, "../../.venv-fixtures/bin/python");

/** What the wllama tests get from the Node side. */
export interface WllamaBed {
  /** The proxy in front of the registry. */
  proxyUrl: string;
  /** The tiny model, one GGUF file (test/fixtures/wllama/tiny-llama.gguf). */
  single: string;
  /** The same model split in two by `gguf` (tiny-llama-split-0000i-of-00002.gguf). */
  split: string;
  /** A copy of the tiny model whose blob in the registry's storage had a byte flipped after the push. */
  corrupt: string;
  /** A larger model of the same kind (tens of MB), for the heap and time measurements. */
  large: string;
  /** Base URL of the plain file server: `${filesUrl}/<name>` serves each GGUF above by name, with CORS. */
  filesUrl: string;
  /** The names the file server serves, by model: the single file, the split files in order, the large one. */
  files: { single: string; split: string[]; large: string };
  /** Sizes of the served files, by name. */
  sizes: Record<string, number>;
  /**
   * `GET ${statsUrl}` answers `{ registry, files }`, each a list of `{ method, path, status, bytes }`:
   * what the proxy asked the registry (and the body bytes it got), and what the file server served.
   */
  statsUrl: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    wllama: WllamaBed;
  }
}

interface Seen {
  method: string;
  path: string;
  status: number;
  bytes: number;
}

/** A fetch that records each request and the bytes of each response body as they pass. */
function countingFetch(seen: Seen[]): typeof fetch {
  return async (input, init) => {
    const request = new Request(input, init);
    const response = await fetch(request);
    const entry = {
      method: request.method,
      path: new URL(request.url).pathname,
      status: response.status,
      bytes: 0,
    };
    seen.push(entry);
    if (!response.body) return response;
    const counted = response.body.pipeThrough(
      new TransformStream<Uint8Array, Uint8Array>({
        transform(chunk, controller) {
          entry.bytes += chunk.byteLength;
          controller.enqueue(chunk);
        },
      }),
    );
    return new Response(counted, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
  };
}

/** Serves `files` by name (GET, HEAD, with CORS) and `/stats` (what `seen` holds). */
function startFileServer(
  files: Map<string, Uint8Array>,
  seen: Seen[],
  served: Seen[],
): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const cors = {
      "access-control-allow-origin": "*",
      "access-control-expose-headers": "content-length, etag",
      "cache-control": "no-store",
    };
    const path = new URL(req.url ?? "/", "http://x").pathname;
    if (req.method === "OPTIONS") {
      res.writeHead(204, {
        ...cors,
        "access-control-allow-headers": "*",
        "access-control-allow-methods": "GET, HEAD",
      });
      return void res.end();
    }
    if (path === "/stats") {
      res.writeHead(200, { ...cors, "content-type": "application/json" });
      return void res.end(JSON.stringify({ registry: seen, files: served }));
    }
    const body = files.get(path.slice(1));
    const status = body ? 200 : 404;
    served.push({
      method: req.method ?? "",
      path,
      status,
      bytes: req.method === "HEAD" ? 0 : (body?.byteLength ?? 0),
    });
    if (!body) return void res.writeHead(404, cors).end();
    res.writeHead(200, {
      ...cors,
      "content-type": "application/octet-stream",
      "content-length": body.byteLength,
      etag: `"${path.slice(1)}"`,
    });
    res.end(req.method === "HEAD" ? undefined : body);
  });
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      if (typeof address === "object" && address)
        resolve({ server, url: `http://127.0.0.1:${address.port}` });
      else reject(new Error("the file server has no port"));
    });
  });
}

export default async function setup(project: TestProject) {
  const dir = await mkdtemp(join(tmpdir(), "oml-wllama-"));
  const registry = await startRegistry();
  const seen: Seen[] = [];
  const fileRequests: Seen[] = [];
  let files: { server: Server; url: string } | undefined;
  let proxy: Awaited<ReturnType<typeof serveRegistryProxy>> | undefined;
  try {
    // The larger model: same kind, wider, a big vocabulary; ~50 MB, written in a few seconds.
    if (!existsSync(PYTHON))
      throw new Error(
        `wllama's larger test model is written by ${PYTHON}, which is missing: run scripts/setup.sh (npm test runs it) to make .venv-fixtures`,
      );
    const large = join(dir, "large-llama.gguf");
    await run(
      PYTHON,
      [
        join(import.meta.dirname, "../../scripts/tiny-llama-wllama.py"),
        ...["--out", large, "--embd", "256", "--ff", "1024", "--words", "20000"],
      ],
      { timeout: 120_000 },
    );
    // A distinct blob for the corruption test: the tiny model with one byte of padding changed
    // (so that flipping its stored bytes in the registry leaves the good model's blob alone).
    const tiny = await readFile(join(FIXTURES, "tiny-llama.gguf"));
    const variant = Buffer.from(tiny);
    variant[variant.length - 1] = (variant[variant.length - 1] ?? 0) ^ 0x01;
    const corruptPath = join(dir, "corrupt-llama.gguf");
    await writeFile(corruptPath, variant);
    const splitFirst = join(dir, "tiny-llama-split-00001-of-00002.gguf");
    await copyFile(join(FIXTURES, "tiny-llama-split-00001-of-00002.gguf"), splitFirst);
    await copyFile(
      join(FIXTURES, "tiny-llama-split-00002-of-00002.gguf"),
      join(dir, "tiny-llama-split-00002-of-00002.gguf"),
    );

    const push = async (gguf: string, repository: string) => {
      const store = createMemoryStore();
      const packed = await packModel(await packFilesFromGguf(gguf), { format: "docker-v0.1", store });
      await pushModel(store, packed.descriptor, `${registry.host}/${repository}:v1`);
      return { reference: `${registry.host}/${repository}:v1`, descriptor: packed.descriptor };
    };
    const single = await push(join(FIXTURES, "tiny-llama.gguf"), "wllama/tiny");
    const split = await push(splitFirst, "wllama/tiny-split");
    const largeModel = await push(large, "wllama/large");
    const corrupt = await push(corruptPath, "wllama/corrupt");
    const corruptDigest = `sha256:${createHash("sha256").update(variant).digest("hex")}`;
    const stored = registry.blobPath(corruptDigest);
    const bytes = await readFile(stored);
    const at = 4096 + (randomBytes(1)[0] ?? 0);
    bytes[at] = (bytes[at] ?? 0) ^ 0xff;
    await writeFile(stored, bytes);

    const served = new Map<string, Uint8Array>();
    for (const path of [
      join(FIXTURES, "tiny-llama.gguf"),
      splitFirst,
      join(dir, "tiny-llama-split-00002-of-00002.gguf"),
      large,
    ]) {
      served.set(basename(path), await readFile(path));
    }
    files = await startFileServer(served, seen, fileRequests);
    proxy = await serveRegistryProxy({ allow: [registry.host], port: 0, fetch: countingFetch(seen) });
    project.provide("wllama", {
      proxyUrl: proxy.url,
      single: single.reference,
      split: split.reference,
      corrupt: corrupt.reference,
      large: largeModel.reference,
      filesUrl: files.url,
      files: {
        single: "tiny-llama.gguf",
        split: ["tiny-llama-split-00001-of-00002.gguf", "tiny-llama-split-00002-of-00002.gguf"],
        large: basename(large),
      },
      sizes: Object.fromEntries([...served].map(([name, body]) => [name, body.byteLength])),
      statsUrl: `${files.url}/stats`,
    });
  } catch (error) {
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
  return async () => {
    await proxy?.close();
    await new Promise<void>((done) => {
      files?.server.closeAllConnections();
      if (files) files.server.close(() => done());
      else done();
    });
    await registry.stop();
    await rm(dir, { recursive: true, force: true });
  };
}
