import { execFile } from "node:child_process";
import { mkdtemp, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pushWithSkopeo, sameBytes } from "../support/layout.js";
import { dockerV01, type ModelFixture } from "../support/models.js";
import { startRegistry, type TestRegistry, USER } from "../support/registry.js";

const CLI = join(import.meta.dirname, "../../dist/node/cli.js");

function cli(args: string[], stdin = ""): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args],
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
    expect(result.stderr).toMatch(/^pulling .*\ndone: fetched/s);
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
});
