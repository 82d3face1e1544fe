import { execFile } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ImageManifest } from "../../src/index.js";
import { pushWithSkopeo } from "../support/layout.js";
import { dockerV01, type ModelFixture, modelPackTarGzip } from "../support/models.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";

const CLI = join(import.meta.dirname, "../../dist/node/cli.js");

function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [CLI, ...args],
      { env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent" } },
      (error, stdout, stderr) => resolve({ code: error ? Number(error.code ?? 1) : 0, stdout, stderr }),
    );
  });
}

describe("oci-model pull progress, as people and programs read it (real registry, stderr a pipe)", () => {
  let registry: TestRegistry;
  let dir: string;
  let modelPack: ModelFixture;
  let docker: ModelFixture;

  beforeAll(async () => {
    registry = await startRegistry();
    modelPack = await modelPackTarGzip();
    docker = await dockerV01();
    await pushWithSkopeo(registry, modelPack.artifact, "models/pack", "v1");
    await pushWithSkopeo(registry, docker.artifact, "models/docker", "v1");
    dir = await mkdtemp(join(tmpdir(), "oml-cli-progress-"));
  });
  afterAll(async () => {
    await registry?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it("--json: stdout is the one JSON result, stderr NDJSON in Docker Model Runner's progress shape", async () => {
    const ref = `${registry.host}/models/pack:v1`;
    const result = await cli(["pull", ref, "--store", join(dir, "json"), "--json"]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout.trimEnd().split("\n")).toHaveLength(1);
    expect(JSON.parse(result.stdout)).toMatchObject({
      reference: ref,
      digest: modelPack.artifact.descriptor.digest,
    });

    expect(result.stderr).not.toContain("\r");
    const lines = result.stderr.trimEnd().split("\n");
    const messages = lines.map((line) => JSON.parse(line)); // every line is one JSON object
    const manifest: ImageManifest = JSON.parse(new TextDecoder().decode(modelPack.artifact.bytes));
    const blobs = [manifest.config, ...manifest.layers];
    const total = blobs.reduce((n, b) => n + b.size, 0);
    for (const m of messages) {
      expect(m).toMatchObject({ mode: "pull", total });
      expect(["progress", "success"]).toContain(m.type);
      expect(typeof m.message).toBe("string");
      expect(m.current).toBeGreaterThanOrEqual(0);
      expect(m.current).toBeLessThanOrEqual(total);
    }
    // each blob: its lines in order, ending at its size, named by role
    const names = new Map<string, string>();
    for (const blob of blobs) {
      const own = messages.filter((m) => m.type === "progress" && m.layer.id === blob.digest);
      expect(own.length, blob.digest).toBeGreaterThan(0);
      const currents = own.map((m) => m.layer.current);
      expect(currents).toEqual([...currents].sort((a, b) => a - b));
      expect(currents.at(-1)).toBe(blob.size);
      for (const m of own) expect(m.layer.size).toBe(blob.size);
      names.set(blob.mediaType, own[0]?.layer.name);
    }
    expect(names.get(manifest.config.mediaType)).toBe("config");
    expect(names.get("application/vnd.cncf.model.weight.v1.tar+gzip")).toBe("weight archive (gzip)");
    expect(names.get("application/vnd.cncf.model.weight.config.v1.tar")).toBe("config archive");
    expect(messages.at(-1)).toMatchObject({ type: "success", current: total });
  });

  it("--json: a failed pull ends its NDJSON with an error line carrying the code", async () => {
    const result = await cli([
      "pull",
      `${registry.host}/models/none:v1`,
      "--store",
      join(dir, "none"),
      "--json",
    ]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe("");
    const lines = result.stderr.trimEnd().split("\n");
    expect(JSON.parse(lines[0] as string)).toMatchObject({ type: "error", code: "NOT_FOUND", mode: "pull" });
    expect(lines.at(-1)).toMatch(/^oci-model pull: NOT_FOUND: /);
  });

  it("off a terminal: plain lines, human sizes, roles and speeds, no carriage returns", async () => {
    const ref = `${registry.host}/models/docker:v1`;
    const result = await cli(["pull", ref, "--store", join(dir, "plain")]);
    expect(result.code, result.stderr).toBe(0);
    expect(result.stdout).toBe(`${ref} ${docker.artifact.descriptor.digest}\n`);
    const text = result.stderr;
    expect(text).not.toContain("\r");
    expect(text).not.toMatch(/\d+\/\d+ bytes|sha256:[0-9a-f]{12}\b/);
    const lines = text.trimEnd().split("\n");
    expect(lines[0]).toMatch(/^pulling .* \(docker-v0\.1, 4 blobs, \d+\.\d KiB, 0 B stored\)$/);
    expect(lines.some((l) => /^ {2}config {2}\d+ B {2}in \d+\.\ds \(.*\/s\)$/.test(l))).toBe(true);
    expect(lines.some((l) => /^ {2}config archive {2}\d+\.\d KiB {2}in \d+\.\ds \(.*\/s\)$/.test(l))).toBe(
      true,
    );
    expect(lines.some((l) => /^ {2}model-00001-of-00002\.safetensors {2}39\.1 KiB {2}in /.test(l))).toBe(
      true,
    );
    expect(lines.at(-1)).toMatch(/^done: fetched \d+\.\d KiB, reused 0 B in \d+\.\d s$/);
  });
});
