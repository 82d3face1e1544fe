import { execFile } from "node:child_process";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { serveRegistryProxy } from "../../src/node/index.js";
import { pushWithSkopeo } from "../support/layout.js";
import { dockerV01, type ModelFixture } from "../support/models.js";
import { REFRESH_TOKEN, startRegistry, type TestRegistry, USER } from "../support/registry.js";

const CLI = join(import.meta.dirname, "../../dist/node/cli.js");

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

describe("oci-model pull with Docker's credential helpers and identity tokens (token auth, real registry)", () => {
  let registry: TestRegistry;
  let fixture: ModelFixture;
  let dir: string;
  let bin: string;
  let helperLog: string;
  let configs = 0;

  /** Runs the CLI with our helpers first on PATH and a Docker config holding `config`; no --username. */
  async function pull(config: unknown, args: string[] = [], repository = "private/tiny"): Promise<Result> {
    const configDir = join(dir, `config-${++configs}`);
    await mkdir(configDir);
    await writeFile(join(configDir, "config.json"), JSON.stringify(config));
    const ref = `${registry.host}/${repository}:v1`;
    const store = join(dir, `store-${configs}`);
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        [CLI, "pull", ref, "--store", store, "--json", ...args],
        {
          env: { PATH: `${bin}:${process.env.PATH ?? ""}`, HOME: "/nonexistent", DOCKER_CONFIG: configDir },
          timeout: 30_000,
        },
        (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
      );
    });
  }

  async function helper(name: string, body: string): Promise<void> {
    const path = join(bin, `docker-credential-${name}`);
    await writeFile(path, `#!/bin/sh\n${body}\n`);
    await chmod(path, 0o755);
  }

  const pulled = (result: Result) => {
    expect(result.code, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      digest: fixture.artifact.descriptor.digest,
      complete: true,
    });
  };

  beforeAll(async () => {
    registry = await startRegistry({ auth: "token" });
    fixture = await dockerV01();
    await pushWithSkopeo(registry, fixture.artifact, "private/tiny", "v1");
    await pushWithSkopeo(registry, fixture.artifact, "public/tiny", "v1");
    dir = await mkdtemp(join(tmpdir(), "oml-cli-credentials-"));
    bin = join(dir, "bin");
    await mkdir(bin);
    helperLog = join(dir, "helper.log");
    // The helper as docker-credential-helpers' protocol has it: `get`, the server URL on stdin, JSON
    // {ServerURL, Username, Secret} on stdout; "credentials not found in native keychain" + exit 1 else.
    await helper(
      "test",
      [
        "host=$(cat)",
        `echo "$1 $host" >> "${helperLog}"`,
        `if [ "$1" = get ] && [ "$host" = "${registry.host}" ]; then`,
        `  printf '{"ServerURL":"%s","Username":"${USER.username}","Secret":"${USER.password}"}' "$host"`,
        "else",
        '  echo "credentials not found in native keychain"; exit 1',
        "fi",
      ].join("\n"),
    );
    await helper(
      "identity",
      `cat > /dev/null; printf '{"ServerURL":"","Username":"<token>","Secret":"${REFRESH_TOKEN}"}'`,
    );
    await helper("slow", "exec sleep 30");
    await helper("nothing", 'cat > /dev/null; echo "credentials not found in native keychain"; exit 1');
  });
  afterAll(async () => {
    await registry?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });
  beforeEach(async () => {
    registry.tokenRequests.length = 0;
    await rm(helperLog, { force: true });
  });

  it("credsStore: runs docker-credential-test get with the registry host on stdin and pulls with its answer", async () => {
    pulled(await pull({ credsStore: "test" }));
    // asked once for the whole pull, as `get`, for the host
    expect((await readFile(helperLog, "utf8")).trim().split("\n")).toEqual([`get ${registry.host}`]);
    expect(registry.tokenRequests.length).toBeGreaterThan(0);
    for (const request of registry.tokenRequests) expect(request).toMatchObject({ user: USER.username });
  });

  it("credHelpers: the registry's own helper wins over credsStore (a missing one, never run) and auths", async () => {
    const wrong = Buffer.from(`${USER.username}:wrong`).toString("base64");
    pulled(
      await pull({
        credsStore: "absent",
        credHelpers: { [registry.host]: "test" },
        auths: { [registry.host]: { auth: wrong } },
      }),
    );
    expect(await readFile(helperLog, "utf8")).toBe(`get ${registry.host}\n`);
  });

  it("a helper's 'credentials not found' is no credentials, not an error: public pulls, private is refused", async () => {
    pulled(await pull({ credsStore: "nothing" }, [], "public/tiny"));
    expect(registry.tokenRequests.length).toBeGreaterThan(0);
    for (const request of registry.tokenRequests) expect(request.user).toBeNull();
    const refused = await pull({ credsStore: "nothing" });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/^oci-model pull: UNAUTHORIZED: /m);
    expect(refused.stderr).not.toMatch(/docker-credential/);
  });

  it("a missing helper is a clear INVALID_ARGUMENT naming it and the config", async () => {
    const result = await pull({ credsStore: "absent" });
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(
      new RegExp(
        `^oci-model pull: INVALID_ARGUMENT: Cannot get credentials for ${registry.host.replace(/\./g, "\\.")} from docker-credential-absent: docker-credential-absent is not on PATH \\(named by credsStore in .*config\\.json\\)`,
        "m",
      ),
    );
  });

  it("a helper that never answers is stopped after --timeout: TIMEOUT, no hang", async () => {
    const started = Date.now();
    const result = await pull({ credsStore: "slow" }, ["--timeout", "1"]);
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^oci-model pull: TIMEOUT: .*docker-credential-slow: it gave no answer within 1 s/m,
    );
  });

  it("identitytoken in auths: exchanged at the realm with grant_type=refresh_token (POST), never sent as Basic", async () => {
    pulled(await pull({ auths: { [registry.host]: { identitytoken: REFRESH_TOKEN } } }));
    expect(registry.tokenRequests.length).toBeGreaterThan(0);
    for (const request of registry.tokenRequests) {
      expect(request).toMatchObject({
        grant: "refresh_token",
        user: USER.username,
        clientId: "oci-model-loader",
      });
      expect(request.scopes).toContain("repository:private/tiny:pull");
    }
  });

  it("identitytoken through --proxy: the OAuth2 form POST reaches the realm through the proxy", async () => {
    const proxy = await serveRegistryProxy({ allow: [registry.host], port: 0 });
    try {
      pulled(
        await pull({ auths: { [registry.host]: { identitytoken: REFRESH_TOKEN } } }, ["--proxy", proxy.url]),
      );
      expect(registry.tokenRequests.length).toBeGreaterThan(0);
      for (const request of registry.tokenRequests) expect(request).toMatchObject({ grant: "refresh_token" });
    } finally {
      await proxy.close();
    }
  });

  it("a helper answering Docker's <token> user gives an identity token, exchanged the same way", async () => {
    pulled(await pull({ credHelpers: { [registry.host]: "identity" } }));
    expect(registry.tokenRequests.map((r) => r.grant)).toContain("refresh_token");
    expect(registry.tokenRequests.every((r) => r.grant === "refresh_token")).toBe(true);
  });

  it("a refused identity token fails the pull and never shows the token", async () => {
    const result = await pull({ auths: { [registry.host]: { identitytoken: "not-the-token" } } });
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(
      /^oci-model pull: UNAUTHORIZED: Cannot get a token from .*refused the credentials/m,
    );
    expect(result.stderr).not.toContain("not-the-token");
    expect(registry.tokenRequests.map((r) => r.grant)).toEqual(
      registry.tokenRequests.map(() => "refresh_token"),
    );
  });
});
