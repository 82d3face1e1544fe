// A push cut mid-upload resumes where CNCF Distribution says it got to. Between our client and the
// registry sits a proxy of ours that cuts one PATCH halfway through its body. In front of most
// registries sits a proxy that buffers request bodies (nginx's default), so the registry never sees
// a cut request: "buffering" forwards a PATCH only once it is whole. "passing" streams each PATCH
// through as it arrives, so Distribution keeps the half it got and declares the session invalid
// (BLOB_UPLOAD_INVALID): then the upload starts again in a new session. skopeo reads back the result.
import { mkdtemp, readFile, rm } from "node:fs/promises";
import { createServer, request, type Server } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createMemoryStore, pushModel } from "../../src/index.js";
import { buildManifest, sameBytes } from "../support/layout.js";
import { run } from "../support/process.js";
import { startRegistry, type TestRegistry } from "../support/registry.js";

const MiB = 1024 * 1024;

interface CutProxy {
  host: string;
  /** Request body bytes the proxy received from the client, PATCH and PUT together. */
  uploaded: () => number;
  /** Requests as `METHOD path` (no query). */
  seen: string[];
  cuts: () => number;
  close: () => Promise<void>;
}

/** Forwards to `upstream`; cuts the `cutPatch`-th PATCH (1-based) once half its body has arrived. */
async function cutProxy(
  upstream: string,
  mode: "buffering" | "passing",
  cutPatch: number,
): Promise<CutProxy> {
  let uploaded = 0;
  let patches = 0;
  let cuts = 0;
  const seen: string[] = [];
  const server: Server = createServer((req, res) => {
    seen.push(`${req.method} ${(req.url ?? "").split("?")[0]}`);
    const cutHere = req.method === "PATCH" && ++patches === cutPatch;
    const half = Number(req.headers["content-length"] ?? 0) / 2;
    let received = 0;
    const forward = (body?: Buffer) => {
      const out = request(
        `http://${upstream}${req.url}`,
        { method: req.method, headers: req.headers },
        (answer) => {
          res.writeHead(answer.statusCode ?? 502, answer.headers);
          answer.pipe(res);
        },
      );
      out.on("error", () => res.destroy());
      if (body) out.end(body);
      return out;
    };
    const chunks: Buffer[] = [];
    const passing = mode === "passing" ? forward() : undefined;
    req.on("data", (chunk: Buffer) => {
      received += chunk.byteLength;
      if (req.method === "PATCH" || req.method === "PUT") uploaded += chunk.byteLength;
      if (cutHere && received >= half) {
        cuts++;
        if (passing) {
          passing.write(chunk);
          // Let the registry take in what it was sent before both connections drop.
          setTimeout(() => {
            passing.destroy();
            req.socket.destroy();
          }, 200);
        } else req.socket.destroy();
        req.pause();
        return;
      }
      if (passing) passing.write(chunk);
      else chunks.push(chunk);
    });
    req.on("end", () => {
      if (cutHere && cuts > 0) return;
      if (passing) passing.end();
      else forward(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address() as { port: number };
  return {
    host: `127.0.0.1:${address.port}`,
    uploaded: () => uploaded,
    seen,
    cuts: () => cuts,
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A model of one 24 MiB weight and a config, in a memory store under "v1". */
async function storedModel() {
  const weight = new Uint8Array(24 * MiB);
  for (let i = 0; i < weight.byteLength; i += 65536) crypto.getRandomValues(weight.subarray(i, i + 65536));
  const artifact = buildManifest({
    config: {
      mediaType: "application/vnd.docker.ai.model.config.v0.1+json",
      bytes: new TextEncoder().encode("{}"),
    },
    layers: [{ mediaType: "application/vnd.docker.ai.safetensors", bytes: weight }],
  });
  const store = createMemoryStore();
  for (const [digest, bytes] of artifact.blobs) {
    await store.push(
      { digest, size: bytes.byteLength },
      new Blob([bytes as Uint8Array<ArrayBuffer>]).stream(),
    );
  }
  await store.push(artifact.descriptor, new Blob([artifact.bytes as Uint8Array<ArrayBuffer>]).stream());
  await store.tag("v1", artifact.descriptor);
  const total = [...artifact.blobs.values(), artifact.bytes].reduce((n, b) => n + b.byteLength, 0);
  return { store, artifact, weight, total };
}

/** The weight as skopeo copies it out of the registry (it verifies every digest on the way). */
async function weightReadBySkopeo(registry: TestRegistry, repository: string, digest: string) {
  const dir = await mkdtemp(join(tmpdir(), "oml-push-resume-"));
  try {
    await run("skopeo", [
      "copy",
      "--quiet",
      "--src-tls-verify=false",
      `docker://${registry.host}/${repository}:v1`,
      `oci:${dir}:v1`,
    ]);
    return new Uint8Array(await readFile(join(dir, "blobs", "sha256", digest.slice(7))));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe("a push cut mid-upload, against CNCF Distribution", () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startRegistry();
  });
  afterAll(() => registry?.stop());

  it("resumes from the registry's upload status behind a buffering proxy: at most 1.05x the bytes sent", async () => {
    const { store, artifact, weight, total } = await storedModel();
    const proxy = await cutProxy(registry.host, "buffering", 3);
    try {
      const result = await pushModel(store, "v1", `${proxy.host}/resume/buffered:v1`, { chunkSize: 1 * MiB });
      expect(result).toMatchObject({ digest: artifact.descriptor.digest, uploaded: 2, skipped: 0 });
      expect(proxy.cuts()).toBe(1);
      // After the cut: one GET of the upload's status, and no second upload session.
      expect(proxy.seen.filter((s) => s.startsWith("GET /v2/resume/buffered/blobs/uploads/"))).toHaveLength(
        1,
      );
      expect(proxy.seen.filter((s) => s === "POST /v2/resume/buffered/blobs/uploads/")).toHaveLength(2); // config, weight
      expect(proxy.uploaded()).toBeLessThanOrEqual(1.05 * total);
      expect(proxy.uploaded()).toBeGreaterThan(total); // the half piece was sent twice
      const digest = [...artifact.blobs.keys()].find((d) => artifact.blobs.get(d) === weight) as string;
      expect(sameBytes(await weightReadBySkopeo(registry, "resume/buffered", digest), weight)).toBe(true);
    } finally {
      await proxy.close();
    }
  });

  it("starts the upload again in a new session when the registry kept part of the cut request", async () => {
    const { store, artifact, weight, total } = await storedModel();
    const proxy = await cutProxy(registry.host, "passing", 3);
    try {
      await pushModel(store, "v1", `${proxy.host}/resume/passed:v1`, { chunkSize: 1 * MiB });
      expect(proxy.cuts()).toBe(1);
      expect(proxy.seen.filter((s) => s === "POST /v2/resume/passed/blobs/uploads/")).toHaveLength(3); // a new session
      // Sent again: the two pieces before the cut and what of the cut one got through, at most a piece.
      expect(proxy.uploaded()).toBeLessThanOrEqual(total + 3 * MiB);
      expect(proxy.uploaded()).toBeGreaterThan(total + 2 * MiB);
      const digest = [...artifact.blobs.keys()].find((d) => artifact.blobs.get(d) === weight) as string;
      expect(sameBytes(await weightReadBySkopeo(registry, "resume/passed", digest), weight)).toBe(true);
    } finally {
      await proxy.close();
    }
  });
});
