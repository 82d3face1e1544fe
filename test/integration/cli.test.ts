import { execFile } from "node:child_process";
import { mkdtemp, readdir, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pushWithSkopeo, sampleModel } from "../support/layout.js";
import { type AuthMode, startRegistry, type TestRegistry, USER } from "../support/registry.js";

const CLI = join(import.meta.dirname, "../../dist/node/cli.js");

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(
  args: string[],
  options: { stdin?: string; env?: Record<string, string> } = {},
): Promise<Result> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [CLI, ...args],
      { env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent", ...options.env } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
    child.stdin?.end(options.stdin ?? "");
  });
}

const model = sampleModel({ shardSize: 4096 });

describe.each<AuthMode>(["none", "htpasswd", "token"])(
  "oci-model inspect against a registry with auth=%s",
  (auth) => {
    let registry: TestRegistry;
    let configDir: string;
    const repository = auth === "token" ? "private/model" : "models/model";

    beforeAll(async () => {
      registry = await startRegistry({ auth });
      await pushWithSkopeo(registry, model, repository, "v1");
      configDir = await mkdtemp(join(tmpdir(), "oml-docker-config-"));
      const authValue = Buffer.from(`${USER.username}:${USER.password}`).toString("base64");
      await writeFile(
        join(configDir, "config.json"),
        JSON.stringify({ auths: { [registry.host]: { auth: authValue } } }),
      );
    });
    afterAll(async () => {
      await registry?.stop();
      await rm(configDir, { recursive: true, force: true });
    });

    it("prints one JSON object with credentials from the Docker config file", async () => {
      const result = await cli(["inspect", "--json", `${registry.host}/${repository}:v1`], {
        env: { DOCKER_CONFIG: configDir },
      });
      expect(result.stderr).toBe("");
      expect(result.code).toBe(0);
      const summary = JSON.parse(result.stdout);
      expect(summary).toMatchObject({
        reference: `${registry.host}/${repository}:v1`,
        registry: registry.host,
        repository,
        digest: model.descriptor.digest,
        mediaType: "application/vnd.oci.image.manifest.v1+json",
        artifactType: null,
        format: "docker-v0.1",
      });
      expect(summary.layers.map((l: { path: string | null }) => l.path)).toEqual([
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        null,
      ]);
      expect(summary.layers[0].size).toBe(4096);
    });

    it("takes credentials from --username and --password-stdin", async () => {
      const args = ["inspect", `${registry.host}/${repository}:v1`];
      const result = await cli(
        auth === "none" ? args : [...args, "--username", USER.username, "--password-stdin"],
        {
          stdin: `${USER.password}\n`,
        },
      );
      expect(result.code).toBe(0);
      expect(result.stdout).toContain(model.descriptor.digest);
      expect(result.stdout).toContain("docker-v0.1");
    });

    it(
      auth === "none"
        ? "ignores credentials nobody asked for"
        : "exits 1 with UNAUTHORIZED for wrong credentials",
      async () => {
        const result = await cli(
          ["inspect", `${registry.host}/${repository}:v1`, "--username", USER.username, "--password-stdin"],
          { stdin: "wrong\n" },
        );
        if (auth === "none") {
          expect(result.code).toBe(0);
          return;
        }
        expect(result.code).toBe(1);
        expect(result.stdout).toBe("");
        expect(result.stderr).toMatch(/UNAUTHORIZED/);
      },
    );
  },
);

describe("oci-model usage errors", () => {
  it("exits 1 with INVALID_REFERENCE for a malformed reference", async () => {
    const result = await cli(["inspect", "Not/A/Valid:Ref:"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/INVALID_REFERENCE/);
  });

  it("exits 1 with NETWORK when nothing listens", async () => {
    const result = await cli(["inspect", "127.0.0.1:9/x/y:v1", "--timeout", "5"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/NETWORK/);
  });

  it("exits 1 with INVALID_ARGUMENT for --username without --password-stdin", async () => {
    const result = await cli(["inspect", "127.0.0.1:9/x/y:v1", "--username", "u"]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/INVALID_ARGUMENT.*--password-stdin/);
  });
});

const COMMANDS = ["pull", "inspect", "tensors", "ls", "rm", "gc", "verify", "pack", "push", "serve", "proxy"];

describe("oci-model commands, --help and exit codes", () => {
  it.each(COMMANDS)("`%s --help` exits 0 with its own usage on stdout", async (name) => {
    for (const flag of ["--help", "-h"]) {
      const result = await cli([name, flag]);
      expect(result, flag).toMatchObject({ code: 0, stderr: "" });
      expect(result.stdout, flag).toMatch(new RegExp(`^Usage: oci-model ${name} `));
    }
  });

  it("`oci-model --help` exits 0 and lists every command", async () => {
    const result = await cli(["--help"]);
    expect(result).toMatchObject({ code: 0, stderr: "" });
    expect(result.stdout).toMatch(/^Usage: oci-model <command>/);
    for (const name of COMMANDS) expect(result.stdout).toMatch(new RegExp(`^  ${name} `, "m"));
  });

  it("`oci-model` alone exits 1 and prints the usage", async () => {
    const result = await cli([]);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^Usage: oci-model <command>/);
    for (const name of COMMANDS) expect(result.stdout).toMatch(new RegExp(`^  ${name} `, "m"));
  });

  it("an unknown command exits 1, names it on stderr and prints nothing on stdout", async () => {
    const result = await cli(["fetch", "x/y:v1"]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/^oci-model: unknown command "fetch"\nUsage: oci-model <command>/);
  });

  it("an unknown flag exits 1 with INVALID_ARGUMENT and the command's usage", async () => {
    const result = await cli(["gc", "--everything"]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(/^oci-model gc: INVALID_ARGUMENT: .*--everything/);
    expect(result.stderr).toContain("Usage: oci-model gc ");
  });

  it.each(["x", "-1", "70000", "1.5"])(
    "`serve --port %s` exits 1 with INVALID_ARGUMENT, not a stack trace",
    async (port) => {
      const layout = await mkdtemp(join(tmpdir(), "oml-cli-serve-"));
      try {
        const result = await cli(["serve", layout, `--port=${port}`]);
        expect(result.code).toBe(1);
        expect(result.stdout).toBe("");
        expect(result.stderr).toBe(
          `oci-model serve: INVALID_ARGUMENT: Cannot serve: --port ${port} is not a port\n`,
        );
      } finally {
        await rm(layout, { recursive: true, force: true });
      }
    },
  );

  it.each(["0", "x", "-1", "1.5", "", "2x"])(
    "`pull --concurrency=%s` exits 1 with INVALID_ARGUMENT before it touches the network or the store",
    async (value) => {
      const store = await mkdtemp(join(tmpdir(), "oml-cli-concurrency-"));
      try {
        // nothing listens on port 9: had the pull started, it would fail with NETWORK
        const result = await cli([
          "pull",
          "127.0.0.1:9/x/y:v1",
          "--store",
          join(store, "store"),
          `--concurrency=${value}`,
        ]);
        expect(result.code).toBe(1);
        expect(result.stdout).toBe("");
        expect(result.stderr).toMatch(/^oci-model pull: INVALID_ARGUMENT: .*--concurrency/);
        expect(await readdir(store)).toEqual([]);
      } finally {
        await rm(store, { recursive: true, force: true });
      }
    },
  );

  it("`pull --concurrency 2` is accepted (the same pull then fails on the network)", async () => {
    const store = await mkdtemp(join(tmpdir(), "oml-cli-concurrency-"));
    try {
      const result = await cli(["pull", "127.0.0.1:9/x/y:v1", "--store", store, "--concurrency", "2"]);
      expect(result.code).toBe(1);
      expect(result.stderr).toMatch(/^oci-model pull: NETWORK: /);
    } finally {
      await rm(store, { recursive: true, force: true });
    }
  });
});
