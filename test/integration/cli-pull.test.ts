import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { removeModel } from "../../src/index.js";
import { createFsStore } from "../../src/node/index.js";
import { pushWithSkopeo, sameBytes, sha256 } from "../support/layout.js";
import { dockerV01, type ModelFixture } from "../support/models.js";
import { startRegistry, type TestRegistry, USER } from "../support/registry.js";
import { type ShapingProxy, startShapingProxy } from "../support/shaping-proxy.js";

const CLI = join(import.meta.dirname, "../../dist/node/cli.js");

function cli(
  args: string[],
  stdin = "",
  nodeFlags: string[] = [],
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [...nodeFlags, CLI, ...args],
      { env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent" } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(stdin);
  });
}

describe("oci-model pull, ls, rm, gc, verify against the real registry (token auth)", () => {
  let registry: TestRegistry;
  let dir: string;
  let fixture: ModelFixture;
  let ref: string;
  const login = ["--username", USER.username, "--password-stdin"];

  beforeAll(async () => {
    registry = await startRegistry({ auth: "token" });
    fixture = await dockerV01();
    await pushWithSkopeo(registry, fixture.artifact, "private/tiny", "v1");
    ref = `${registry.host}/private/tiny:v1`;
    dir = await mkdtemp(join(tmpdir(), "oml-cli-pull-"));
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("pulls into the store, writes --output files, and says so in one JSON object", async () => {
    const store = join(dir, "store");
    const output = join(dir, "out");
    const result = await cli(
      ["pull", ref, "--store", store, "--output", output, "--json", ...login],
      `${USER.password}\n`,
    );
    expect(result.code, result.stderr).toBe(0);
    const summary = JSON.parse(result.stdout);
    expect(summary).toMatchObject({
      reference: ref,
      digest: fixture.artifact.descriptor.digest,
      format: "docker-v0.1",
      complete: true,
    });
    // with --json the progress on stderr is NDJSON (test/integration/cli-progress.test.ts), ending in success
    expect(JSON.parse(result.stderr.trimEnd().split("\n").at(-1) ?? "")).toMatchObject({ type: "success" });
    for (const [path, bytes] of Object.entries(fixture.files)) {
      expect(sameBytes(await readFile(join(output, path)), bytes), path).toBe(true);
    }
    const ls = JSON.parse((await cli(["ls", "--store", store, "--json"])).stdout);
    expect(ls).toHaveLength(1);
    expect(ls[0]).toMatchObject({ reference: ref, format: "docker-v0.1", complete: true });
  });

  it("pulls config only, then rm and gc empty the store", async () => {
    const store = join(dir, "config-only");
    const result = await cli(
      ["pull", ref, "--store", store, "--config-only", "--json", ...login],
      `${USER.password}\n`,
    );
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout).complete).toBe(false);
    expect((await cli(["ls", "--store", store])).stdout).toMatch(/config only/);
    expect((await cli(["rm", ref, "--store", store])).code).toBe(0);
    expect(JSON.parse((await cli(["ls", "--store", store, "--json"])).stdout)).toEqual([]);
    expect(await readdir(join(store, "blobs", "sha256"))).toEqual([]);
    const gc = JSON.parse((await cli(["gc", "--store", store, "--json"])).stdout);
    expect(gc.removedBlobs).toEqual([]);
  });

  it("verify finds a blob damaged after its commit, removes it, exits 1, and the next pull fetches it again", async () => {
    const store = join(dir, "verify");
    const pull = () => cli(["pull", ref, "--store", store, "--json", ...login], `${USER.password}\n`);
    expect((await pull()).code).toBe(0);
    expect(await cli(["verify", "--store", store])).toMatchObject({
      code: 0,
      stdout: expect.stringMatching(/^checked \d+ blobs \(.*\): all match\n$/),
    });
    const [weight] = [...fixture.artifact.blobs].sort((a, b) => b[1].byteLength - a[1].byteLength)[0] ?? [""];
    const path = join(store, "blobs", "sha256", weight.slice(7));
    const bytes = await readFile(path);
    bytes[10] = (bytes[10] ?? 0) ^ 0xff; // a bit rot, a torn write
    await writeFile(path, bytes);
    const damaged = await cli(["verify", "--store", store, "--json"]);
    expect(damaged.code).toBe(1);
    expect(JSON.parse(damaged.stdout).removed).toEqual([
      { digest: weight, reason: expect.stringMatching(/^its bytes hash to sha256:/) },
    ]);
    expect((await readdir(join(store, "blobs", "sha256"))).includes(weight.slice(7))).toBe(false);
    expect((await pull()).code).toBe(0);
    expect((await cli(["verify", "--store", store])).code).toBe(0);
  });

  it("exits 1 with the error code for a missing model and for rm of an unknown one", async () => {
    const store = join(dir, "errors");
    const missing = await cli(
      ["pull", `${registry.host}/private/none:v1`, "--store", store, ...login],
      `${USER.password}\n`,
    );
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/NOT_FOUND/);
    const unknown = await cli(["rm", ref, "--store", store]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toMatch(/NOT_FOUND/);
  });
  it("gc frees what an rm left of one of two models sharing a layer and a blob pushed under no tag; the shared layer stays", async () => {
    const store = join(dir, "gc");
    const blob = (digest: string) => join(store, "blobs", "sha256", digest.slice(7));
    const shared = randomBytes(50_000);
    const a = await dockerV01([shared, randomBytes(20_000)]);
    const b = await dockerV01([shared, randomBytes(25_000)]);
    await pushWithSkopeo(registry, a.artifact, "private/share-a", "v1");
    await pushWithSkopeo(registry, b.artifact, "private/share-b", "v1");
    const refA = `${registry.host}/private/share-a:v1`;
    const refB = `${registry.host}/private/share-b:v1`;
    const pull = (r: string) => cli(["pull", r, "--store", store, "--json", ...login], `${USER.password}\n`);
    for (const r of [refA, refB]) expect((await pull(r)).code).toBe(0);

    // A's record, as the layout's index.json names it: its manifest and its config go with A
    const index = JSON.parse(await readFile(join(store, "index.json"), "utf8")) as {
      manifests: { digest: string; annotations?: Record<string, string> }[];
    };
    const recordA = index.manifests.find((m) => m.annotations?.["org.opencontainers.image.ref.name"] === refA)
      ?.digest as string;
    const recordConfigA = JSON.parse(await readFile(blob(recordA), "utf8")).config.digest as string;
    const sharedDigest = sha256(shared);
    const uniqueA = sha256(a.files["model-00002-of-00002.safetensors"] as Uint8Array);
    const uniqueB = sha256(b.files["model-00002-of-00002.safetensors"] as Uint8Array);

    // an rm cut short before its gc: A's names are gone, its blobs are not
    expect(await removeModel(refA, { store: createFsStore(store), gc: false })).toBe(true);
    // and a blob pushed under no name
    const stray = randomBytes(10_000);
    const strayDigest = sha256(stray);
    await createFsStore(store).push(
      { digest: strayDigest, size: stray.byteLength },
      new Blob([stray]).stream(),
    );

    const expected = [a.artifact.descriptor.digest, uniqueA, recordA, recordConfigA, strayDigest].sort();
    let expectedBytes = 0;
    for (const d of expected) expectedBytes += (await stat(blob(d))).size;
    const gc = await cli(["gc", "--store", store, "--json"]);
    expect(gc.code, gc.stderr).toBe(0);
    const result = JSON.parse(gc.stdout);
    expect([...result.removedBlobs].sort()).toEqual(expected);
    expect(result).toMatchObject({ removedIngests: [], freedBytes: expectedBytes });
    for (const d of expected) await expect(stat(blob(d)), d).rejects.toThrow(/ENOENT/);
    for (const d of [sharedDigest, uniqueB, b.artifact.descriptor.digest])
      expect((await stat(blob(d))).isFile(), d).toBe(true);

    const ls = JSON.parse((await cli(["ls", "--store", store, "--json"])).stdout);
    expect(ls.map((m: { reference: string }) => m.reference)).toEqual([refB]);
    expect((await cli(["verify", "--store", store])).code).toBe(0);
    const again = await pull(refB);
    expect(again.code, again.stderr).toBe(0);
    expect(JSON.parse(again.stdout)).toMatchObject({ complete: true, fetchedBytes: 0 });
    expect(await cli(["gc", "--store", store])).toMatchObject({
      code: 0,
      stdout: "freed 0 B (0 blobs, 0 interrupted downloads)\n",
    });

    // `oci-model rm` of A, pulled again, takes A's blobs with it and leaves B's (the shared layer too)
    const blobsOfB = (await readdir(join(store, "blobs", "sha256"))).sort();
    expect((await pull(refA)).code).toBe(0);
    expect((await readdir(join(store, "blobs", "sha256"))).length).toBeGreaterThan(blobsOfB.length);
    expect((await cli(["rm", refA, "--store", store])).code).toBe(0);
    expect((await readdir(join(store, "blobs", "sha256"))).sort()).toEqual(blobsOfB);
    expect(blobsOfB).toContain(sharedDigest.slice(7));
    expect((await pull(refB)).stdout).toMatch(/"fetchedBytes":0,/);
  });
});

describe("oci-model pull --connections, through a WAN-shaped link", () => {
  const MiB = 1024 * 1024;
  let registry: TestRegistry;
  let proxy: ShapingProxy;
  let dir: string;
  let ref: string;
  let fixture: ModelFixture;

  beforeAll(async () => {
    registry = await startRegistry();
    fixture = await dockerV01([randomBytes(40 * MiB)]);
    await pushWithSkopeo(registry, fixture.artifact, "models/big", "v1");
    // One connection at 40 MB/s: the first range does not come fast, so with --connections over 1
    // the rest comes in ranges.
    proxy = await startShapingProxy({ upstream: registry.host, rttMs: 20, connectionRate: 40e6 });
    ref = `${proxy.host}/models/big:v1`;
    dir = await mkdtemp(join(tmpdir(), "oml-cli-connections-"));
  }, 120_000);
  afterAll(async () => {
    await proxy?.close();
    await registry?.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const pull = (store: string, ...flags: string[]) =>
    cli(["pull", ref, "--plain-http", "--store", join(dir, store), "--json", ...flags]);

  it("fetches a 40 MiB weight from a registry on loopback in one request by default and with --connections 1, in ranges side by side with --connections 4", async () => {
    // The shaping proxy listens on 127.0.0.1: a registry on loopback, fetched in one request unless
    // --connections is given (src/registry/ranges.ts, rangesFor).
    for (const flags of [[], ["--connections", "1"]]) {
      const before = proxy.blobRanges.length;
      const one = await pull(`one${flags.length}`, ...flags);
      expect(one.code, one.stderr).toBe(0);
      expect(JSON.parse(one.stdout).digest).toBe(fixture.artifact.descriptor.digest);
      const asked = proxy.blobRanges.slice(before);
      expect(asked.length, flags.join(" ")).toBeGreaterThan(0);
      expect(asked, flags.join(" ")).toEqual(asked.map(() => ""));
    }

    const before = proxy.blobRanges.length;
    const ranged = await pull("ranged", "--connections", "4");
    expect(ranged.code, ranged.stderr).toBe(0);
    expect(JSON.parse(ranged.stdout).digest).toBe(fixture.artifact.descriptor.digest);
    expect(proxy.blobRanges.slice(before).filter((r) => r.startsWith("bytes=")).length).toBeGreaterThan(1);
  });

  it("refuses --connections 0", async () => {
    const zero = await pull("zero", "--connections", "0");
    expect(zero.code).toBe(1);
    expect(zero.stderr).toMatch(/INVALID_ARGUMENT.*--connections 0 is not a whole number above 0/);
  });

  // src/node/cli/v8-marking.ts: without it, this pull printed incremental markings under --trace-gc
  // (Node 20; a 64 MiB pull from loopback printed 5, and 1 full collection with it).
  it("runs with V8's incremental marking off", async () => {
    const { code, stdout, stderr } = await cli(
      ["pull", ref, "--plain-http", "--store", join(dir, "gc")],
      "",
      ["--trace-gc"],
    );
    expect(code, stderr).toBe(0);
    expect(stdout).toMatch(/Scavenge/);
    expect(stdout).not.toMatch(/incremental marking/);
  });
});
