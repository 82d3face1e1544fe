// `oci-model push`, `oci-model pack <dir> <ref>` and an interrupted `oci-model pull`, run as the built
// CLI against CNCF Distribution through a recording (and, when asked, throttling) HTTP proxy of ours
// on loopback, with skopeo reading back what we pushed.
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { createHash, randomBytes } from "node:crypto";
import { mkdir, mkdtemp, readdir, readFile, rm, stat, utimes, writeFile } from "node:fs/promises";
import { createServer, request, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pushWithSkopeo, sameBytes } from "../support/layout.js";
import { dockerV01, type ModelFixture } from "../support/models.js";
import { run } from "../support/process.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";
import { shards } from "../support/tensor-model.js";

const CLI = join(import.meta.dirname, "../../dist/node/cli.js");
const ENV = { PATH: process.env.PATH ?? "", HOME: "/nonexistent" };

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[]): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(process.execPath, [CLI, ...args], { env: ENV }, (error, stdout, stderr) =>
      resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end();
  });
}

const sha256 = (bytes: Uint8Array) => `sha256:${createHash("sha256").update(bytes).digest("hex")}`;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One request as the proxy saw it. */
interface Seen {
  method: string;
  path: string;
  range: string | undefined;
  /** Request body bytes (uploads). */
  sent: number;
  /** Response body bytes. */
  received: number;
}

/**
 * A plain HTTP proxy in front of the registry that logs every request (method, path, Range, body
 * bytes both ways) and, while `throttle` is set, sends blob bodies at about that many bytes a second.
 * The Host header goes through unchanged, so the registry's upload Locations point back at the proxy.
 */
async function startRecordingProxy(upstream: string) {
  const log: Seen[] = [];
  const state = { throttle: 0 };
  const server: Server = createServer((req, res) => {
    const seen: Seen = {
      method: req.method ?? "GET",
      path: req.url ?? "",
      range: req.headers.range,
      sent: 0,
      received: 0,
    };
    log.push(seen);
    const [host, port] = upstream.split(":");
    const out = request(
      { host, port: Number(port), method: req.method, path: req.url, headers: req.headers },
      async (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        const slow = state.throttle > 0 && seen.method === "GET" && /\/blobs\/sha256:/.test(seen.path);
        try {
          for await (const chunk of answer as AsyncIterable<Buffer>) {
            for (let at = 0; at < chunk.byteLength; at += 16 * 1024) {
              if (res.destroyed) return void answer.destroy();
              const piece = chunk.subarray(at, at + 16 * 1024);
              seen.received += piece.byteLength;
              if (!res.write(piece)) await new Promise((r) => res.once("drain", r));
              if (slow) await sleep((piece.byteLength / state.throttle) * 1000);
            }
          }
          res.end();
        } catch {
          res.destroy();
        }
      },
    );
    out.on("error", () => res.destroy());
    req.on("data", (chunk: Buffer) => {
      seen.sent += chunk.byteLength;
    });
    req.pipe(out);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const proxyPort = typeof address === "object" && address ? address.port : 0;
  return {
    host: `127.0.0.1:${proxyPort}`,
    log,
    state,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

type RecordingProxy = Awaited<ReturnType<typeof startRecordingProxy>>;

const uploads = (log: Seen[]) =>
  log.filter((s) => ["POST", "PATCH", "PUT"].includes(s.method) && s.path.includes("/blobs/uploads/"));

/** The manifest bytes skopeo (an independent client) reads for a reference, and their digest. */
async function skopeoRaw(registry: TestRegistry, repository: string) {
  const bytes = await new Promise<Buffer>((resolve, reject) =>
    execFile(
      "skopeo",
      ["inspect", "--raw", "--tls-verify=false", `docker://${registry.host}/${repository}`],
      { encoding: "buffer" },
      (error, stdout) => (error ? reject(error) : resolve(stdout)),
    ),
  );
  return {
    digest: sha256(bytes),
    manifest: JSON.parse(bytes.toString("utf8")) as {
      config: { digest: string };
      layers: { digest: string; mediaType: string; size: number }[];
    },
  };
}

const FOLDER: Record<string, Uint8Array> = {
  "model-00001-of-00002.safetensors": shards()[0] as Uint8Array,
  "model-00002-of-00002.safetensors": shards()[1] as Uint8Array,
  "config.json": new TextEncoder().encode(JSON.stringify({ architectures: ["TinyForCausalLM"] })),
  "tokenizer.json": new TextEncoder().encode('{"model":{"type":"WordLevel"}}'),
};

describe("oci-model push and pack <dir> <ref> against the real registry", () => {
  let registry: TestRegistry;
  let proxy: RecordingProxy;
  let dir: string;
  let folder: string;

  beforeAll(async () => {
    registry = await startRegistry();
    proxy = await startRecordingProxy(registry.host);
    dir = await mkdtemp(join(tmpdir(), "oml-cli-push-"));
    folder = join(dir, "model");
    await mkdir(folder);
    for (const [name, bytes] of Object.entries(FOLDER)) await writeFile(join(folder, name), bytes);
  });
  afterAll(async () => {
    await proxy?.close();
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("pushes a packed layout; skopeo reads the same digest and bytes; a second push uploads no blob", async () => {
    const layout = join(dir, "layout");
    const packed = await cli([
      "pack",
      folder,
      "--layout",
      `${layout}:tiny`,
      "--format",
      "docker-v0.2",
      "--json",
    ]);
    expect(packed.code, packed.stderr).toBe(0);
    const { digest, layers } = JSON.parse(packed.stdout) as { digest: string; layers: unknown[] };
    const blobs = layers.length + 1; // and the config

    const ref = `${proxy.host}/models/pushed:v1`;
    proxy.log.length = 0;
    const first = await cli(["push", `${layout}:tiny`, ref]);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toBe(`${digest}\n`);
    expect(first.stderr).toMatch(new RegExp(`: ${blobs} blobs uploaded, 0 already there`));
    expect(uploads(proxy.log).filter((s) => s.method === "POST")).toHaveLength(blobs);

    const read = await skopeoRaw(registry, "models/pushed:v1");
    expect(read.digest).toBe(digest);
    const copied = join(dir, "copied");
    await run("skopeo", [
      "copy",
      "--quiet",
      "--src-tls-verify=false",
      `docker://${registry.host}/models/pushed:v1`,
      `oci:${copied}:x`,
    ]);
    for (const d of [read.manifest.config.digest, ...read.manifest.layers.map((l) => l.digest)]) {
      const ours = await readFile(join(layout, "blobs", "sha256", d.slice(7)));
      const theirs = await readFile(join(copied, "blobs", "sha256", d.slice(7)));
      expect(sameBytes(theirs, ours), d).toBe(true);
    }

    proxy.log.length = 0;
    const second = await cli(["push", `${layout}:tiny`, ref]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toBe(`${digest}\n`);
    expect(second.stderr).toMatch(new RegExp(`: 0 blobs uploaded, ${blobs} already there`));
    expect(uploads(proxy.log)).toEqual([]);
    const blobBytes = proxy.log.filter((s) => !/\/manifests\//.test(s.path)).reduce((n, s) => n + s.sent, 0);
    expect(blobBytes).toBe(0);
    expect((await skopeoRaw(registry, "models/pushed:v1")).digest).toBe(digest);
  });

  it("exits 1 naming the tag a layout does not have, and pushes nothing", async () => {
    const layout = join(dir, "layout-missing-tag");
    expect((await cli(["pack", folder, "--layout", `${layout}:tiny`])).code).toBe(0);
    proxy.log.length = 0;
    const result = await cli(["push", `${layout}:other`, `${proxy.host}/models/missing:v1`]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/^oci-model push: NOT_FOUND: .*other/);
    expect(proxy.log.filter((s) => s.method !== "GET" && s.method !== "HEAD")).toEqual([]);
  });

  it("`push` from a layout folder that is not there exits 1 with NOT_FOUND and creates nothing", async () => {
    const missing = join(dir, "no-such-layout");
    proxy.log.length = 0;
    const result = await cli(["push", `${missing}:v1`, `${proxy.host}/models/none:v1`]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/^oci-model push: NOT_FOUND: .*no-such-layout/);
    await expect(stat(missing)).rejects.toThrow(/ENOENT/);
    expect(proxy.log).toEqual([]);
  });

  it.each([
    ["a folder that is not there", "NOT_FOUND", "no-such-folder"],
    ["a file", "INVALID_ARGUMENT", "model/config.json"],
  ])("`pack` of %s exits 1 with %s, not a stack trace, and writes no layout", async (_, code, path) => {
    const layout = join(dir, `not-packed-${code}`);
    const result = await cli(["pack", join(dir, path), "--layout", `${layout}:x`]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(new RegExp(`^oci-model pack: ${code}: Cannot pack .*${path}.*\n$`));
    await expect(stat(layout)).rejects.toThrow(/ENOENT/);
  });

  it.each([
    ["a malformed reference", "INVALID_REFERENCE", ["Not/A/Valid:Ref:"]],
    ["--username without --password-stdin", "INVALID_ARGUMENT", ["127.0.0.1:9/m/x:v1", "--username", "u"]],
    ["--timeout soon", "INVALID_ARGUMENT", ["127.0.0.1:9/m/x:v1", "--timeout", "soon"]],
  ])("`pack <dir> <ref> --layout` with %s exits 1 with %s and writes no layout", async (_, code, args) => {
    const layout = join(dir, `refused-${code}-${args.length}`);
    const result = await cli(["pack", folder, ...args, "--layout", `${layout}:x`]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(new RegExp(`^oci-model pack: ${code}: `));
    await expect(stat(layout)).rejects.toThrow(/ENOENT/);
  });

  it("`pack <dir> <ref>` pushes directly; the same folder packs to the same digest, whatever its mtimes", async () => {
    const ref = `${proxy.host}/models/packed:v1`;
    proxy.log.length = 0;
    const first = await cli(["pack", folder, ref, "--format", "modelpack", "--json"]);
    expect(first.code, first.stderr).toBe(0);
    const { digest, layers } = JSON.parse(first.stdout) as { digest: string; layers: unknown[] };
    expect(uploads(proxy.log).filter((s) => s.method === "POST")).toHaveLength(layers.length + 1);
    expect((await skopeoRaw(registry, "models/packed:v1")).digest).toBe(digest);

    const later = new Date(Date.now() + 86_400_000);
    for (const name of Object.keys(FOLDER)) await utimes(join(folder, name), later, later);
    proxy.log.length = 0;
    const second = await cli(["pack", folder, ref, "--format", "modelpack"]);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toBe(`${digest}\n`);
    expect(uploads(proxy.log)).toEqual([]); // every blob was there already

    // and the digest follows the content: one changed byte gives another
    const changed = join(dir, "changed");
    await mkdir(changed);
    for (const [name, bytes] of Object.entries(FOLDER)) await writeFile(join(changed, name), bytes);
    await writeFile(join(changed, "tokenizer.json"), '{"model":{"type":"WordPiece"}}');
    const other = await cli([
      "pack",
      changed,
      "--layout",
      `${join(dir, "changed-layout")}:x`,
      "--format",
      "modelpack",
    ]);
    expect(other.code, other.stderr).toBe(0);
    expect(other.stdout).toMatch(/^sha256:[0-9a-f]{64}\n$/);
    expect(other.stdout).not.toBe(`${digest}\n`);
  });
});

describe("oci-model pull interrupted by SIGINT", () => {
  const BIG = 6 * 1024 * 1024 + 123;
  let registry: TestRegistry;
  let proxy: RecordingProxy;
  let dir: string;
  let fixture: ModelFixture;
  let big: Uint8Array;
  let bigDigest: string;

  beforeAll(async () => {
    registry = await startRegistry();
    proxy = await startRecordingProxy(registry.host);
    big = randomBytes(BIG);
    bigDigest = sha256(big);
    fixture = await dockerV01([big, randomBytes(30_000)]);
    await pushWithSkopeo(registry, fixture.artifact, "models/big", "v1");
    dir = await mkdtemp(join(tmpdir(), "oml-cli-sigint-"));
  });
  afterAll(async () => {
    await proxy?.close();
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const bigRequests = () =>
    proxy.log.filter((s) => s.method === "GET" && s.path.endsWith(`/blobs/${bigDigest}`));

  it("exits 1 with ABORTED mid-blob, keeps a resumable ingest, and the next pull fetches only the rest", async () => {
    const store = join(dir, "store");
    const ref = `${proxy.host}/models/big:v1`;
    proxy.state.throttle = 1024 * 1024; // about 6 s for the big blob
    proxy.log.length = 0;
    const child: ChildProcess = spawn(process.execPath, [CLI, "pull", ref, "--store", store, "--json"], {
      env: ENV,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout?.on("data", (c: Buffer) => {
      stdout += c;
    });
    child.stderr?.on("data", (c: Buffer) => {
      stderr += c;
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once("exit", (code, signal) => resolve({ code, signal })),
    );
    try {
      const deadline = Date.now() + 15_000;
      while ((bigRequests()[0]?.received ?? 0) < 1024 * 1024) {
        if (child.exitCode !== null) throw new Error(`pull ended before the signal:\n${stderr}`);
        if (Date.now() > deadline) throw new Error(`the big blob did not start:\n${stderr}`);
        await sleep(20);
      }
      child.kill("SIGINT");
      const exit = await Promise.race([exited, sleep(10_000).then(() => undefined)]);
      expect(exit, "the pull did not end within 10 s of SIGINT").toBeDefined();
      expect(exit).toEqual({ code: 1, signal: null });
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
      proxy.state.throttle = 0;
    }
    expect(stdout).toBe("");
    expect(stderr).toMatch(/^oci-model pull: ABORTED: /m);
    const sentBefore = bigRequests().reduce((n, s) => n + s.received, 0);
    expect(sentBefore).toBeLessThan(BIG);

    // nothing under a final name, no model, an ingest holding part of the blob
    const hex = bigDigest.slice(7);
    expect(await readdir(join(store, "blobs", "sha256"))).not.toContain(hex);
    expect(JSON.parse((await cli(["ls", "--store", store, "--json"])).stdout)).toEqual([]);
    const partial = (await stat(join(store, "ingest", `sha256-${hex}.data`))).size;
    expect(partial).toBeGreaterThan(0);
    expect(partial).toBeLessThan(BIG);

    // gc frees blobs no model needs but keeps an interrupted download younger than an hour
    const gc = await cli(["gc", "--store", store, "--json"]);
    expect(gc.code, gc.stderr).toBe(0);
    expect(JSON.parse(gc.stdout).removedIngests).toEqual([]);
    expect((await stat(join(store, "ingest", `sha256-${hex}.data`))).size).toBe(partial);

    proxy.log.length = 0;
    const resumed = await cli(["pull", ref, "--store", store, "--json"]);
    expect(resumed.code, resumed.stderr).toBe(0);
    const [request, ...more] = bigRequests();
    expect(more).toEqual([]);
    const range = /^bytes=(\d+)-(\d*)$/.exec(request?.range ?? "");
    expect(range, `Range of the resumed request: ${request?.range}`).not.toBeNull();
    const from = Number(range?.[1]);
    expect(from).toBeGreaterThan(0);
    expect(from).toBeLessThanOrEqual(partial);
    expect(request?.received).toBe(BIG - from);
    const summary = JSON.parse(resumed.stdout);
    expect(summary).toMatchObject({ digest: fixture.artifact.descriptor.digest, complete: true });
    expect(summary.fetchedBytes).toBeLessThan(BIG);

    expect(sameBytes(await readFile(join(store, "blobs", "sha256", hex)), big)).toBe(true);
    expect(
      await readdir(join(store, "ingest")).then((names) => names.filter((n) => n.includes(hex))),
    ).toEqual([]);
    expect((await cli(["verify", "--store", store])).code).toBe(0);
  });
});
