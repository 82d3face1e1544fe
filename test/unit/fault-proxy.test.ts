// The soak's fault proxy (test/support/fault-proxy.ts) must be reproducible: one seed, the same
// faults in the same requests, whatever order concurrent requests arrive in (issue 24, item 5).

import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  FAULTS,
  type FaultDecision,
  FaultPlan,
  type PlannedRequest,
  startFaultProxy,
} from "../support/fault-proxy.js";

/** A seeded Fisher-Yates shuffle. */
function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  let a = seed >>> 0;
  const random = () => {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    return a / 4294967296;
  };
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j] as T, out[i] as T];
  }
  return out;
}

const DIGESTS = ["a", "b", "c", "d"].map((x) => `sha256:${createHash("sha256").update(x).digest("hex")}`);

/** What a few pull attempts ask: challenges, manifests, blobs whole and resumed, some asked twice. */
function requests(): PlannedRequest[] {
  const out: PlannedRequest[] = [];
  for (let round = 0; round < 25; round++) {
    out.push({ method: "GET", path: "/v2/", authorized: false });
    out.push({ method: "GET", path: "/v2/public/soak/manifests/v1", authorized: true });
    for (const digest of DIGESTS) {
      out.push({ method: "GET", path: `/v2/public/soak/blobs/${digest}`, authorized: true });
      out.push({ method: "HEAD", path: `/v2/public/soak/blobs/${digest}`, authorized: true });
      out.push({
        method: "GET",
        path: `/v2/public/soak/blobs/${digest}`,
        range: `bytes=${round * 100}-`,
        authorized: true,
      });
    }
  }
  return out;
}

/** Decisions by key (occurrence included): what a run did, whatever the order it did it in. */
function decisions(seed: number, order: readonly PlannedRequest[]): Map<string, Omit<FaultDecision, "key">> {
  const plan = new FaultPlan({ seed, rate: 0.3 });
  plan.scope("run 1");
  const out = new Map<string, Omit<FaultDecision, "key">>();
  for (const request of order) {
    const { key, ...rest } = plan.decide(request);
    out.set(key, rest);
  }
  return out;
}

describe("the fault proxy's plan", () => {
  it("makes the same decisions for the same seed when the requests come in another order", () => {
    const inOrder = decisions(42, requests());
    const reordered = decisions(42, shuffled(requests(), 7));
    expect(reordered.size).toBe(requests().length);
    expect(reordered).toEqual(inOrder);
    const faults = [...inOrder.values()].filter((d) => d.fault).length;
    // Not a vacuous comparison: a fair share of requests got faults, and another seed picks others.
    expect(faults).toBeGreaterThan(requests().length * 0.2);
    expect(faults).toBeLessThan(requests().length * 0.4);
    expect(decisions(43, requests())).not.toEqual(inOrder);
  });

  it("gives body faults only to blob GETs and expiry only to authorized requests; weights count", () => {
    const plan = new FaultPlan({ seed: 1, rate: 1, weights: { stall: 0, "status-500": 10 } });
    const seen = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      const blob = plan.decide({ method: "GET", path: `/v2/x/blobs/${DIGESTS[0]}`, authorized: true });
      const manifest = plan.decide({ method: "GET", path: "/v2/x/manifests/v1", authorized: false });
      expect(["reset", "corrupt", "wrong-blob", "redirect", "stall"]).not.toContain(manifest.fault);
      expect(manifest.fault).not.toBe("expire-token");
      for (const d of [blob, manifest]) seen.set(d.fault as string, (seen.get(d.fault as string) ?? 0) + 1);
    }
    expect(seen.get("stall")).toBeUndefined();
    expect(seen.get("status-500")).toBeGreaterThan(seen.get("status-502") ?? 0);
    for (const fault of FAULTS.filter((f) => f !== "stall"))
      expect(seen.get(fault), fault).toBeGreaterThan(0);
  });

  it("starts occurrence counts again in a new scope, and keys the scope", () => {
    const plan = new FaultPlan({ seed: 5, rate: 0.5 });
    const request = { method: "GET", path: "/v2/x/manifests/v1", authorized: true };
    plan.scope("a");
    const first = [plan.decide(request), plan.decide(request)].map((d) => d.key);
    plan.scope("b");
    const second = plan.decide(request).key;
    expect(first).toEqual([
      "a\nGET\n/v2/x/manifests/v1\n\nauth\n#0",
      "a\nGET\n/v2/x/manifests/v1\n\nauth\n#1",
    ]);
    expect(second).toBe("b\nGET\n/v2/x/manifests/v1\n\nauth\n#0");
  });
});

describe("the fault proxy under concurrent requests", () => {
  let upstream: Server;
  let upstreamHost = "";
  const blob = new Uint8Array(200_000).map((_, i) => (i * 31) & 0xff);

  beforeAll(async () => {
    upstream = createServer((req, res) => {
      if (/\/blobs\//.test(req.url ?? "")) {
        res.writeHead(200, { "content-type": "application/octet-stream", "content-length": blob.byteLength });
        return void res.end(blob);
      }
      res.writeHead(200, { "content-type": "application/json" }).end("{}");
    });
    await new Promise<void>((resolve) => upstream.listen(0, "127.0.0.1", resolve));
    const address = upstream.address();
    upstreamHost = `127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
  });
  afterAll(async () => {
    upstream.closeAllConnections();
    await new Promise<void>((resolve) => upstream.close(() => resolve()));
  });

  /** Sends every request at once, in `order`; returns what each got: status and body hash, or the failure. */
  async function outcomes(seed: number, order: readonly PlannedRequest[]) {
    const proxy = await startFaultProxy({ upstream: upstreamHost, seed, rate: 0.4, stallMs: 20 });
    try {
      const results = await Promise.all(
        order.map(async (request, i) => {
          const headers: Record<string, string> = {};
          if (request.authorized) headers.authorization = "Bearer t";
          if (request.range) headers.range = request.range;
          try {
            const response = await fetch(`http://${proxy.host}${request.path}`, {
              method: request.method,
              headers,
              redirect: "manual",
            });
            const body = Buffer.from(await response.arrayBuffer());
            return [i, `${response.status} ${createHash("sha256").update(body).digest("hex").slice(0, 12)}`];
          } catch {
            return [i, "cut"];
          }
        }),
      );
      // By request: equal requests (same key but for the occurrence) are interchangeable, so their
      // outcomes are compared as a sorted list.
      const byRequest = new Map<string, string[]>();
      for (const [i, outcome] of results as [number, string][]) {
        const request = order[i] as PlannedRequest;
        const id = JSON.stringify([request.method, request.path, request.range, request.authorized]);
        byRequest.set(id, [...(byRequest.get(id) ?? []), outcome].sort());
      }
      return { byRequest, keys: proxy.events.map((e) => `${e.key} ${e.fault}`).sort() };
    } finally {
      await proxy.close();
    }
  }

  it("injects the same faults into the same requests, whatever order they arrive in", async () => {
    const list = requests().slice(0, 120);
    const first = await outcomes(99, list);
    const second = await outcomes(99, shuffled(list, 3));
    expect(second.keys).toEqual(first.keys);
    expect(second.byRequest).toEqual(first.byRequest);
    const outcomesSeen = new Set([...first.byRequest.values()].flat().map((o) => o.split(" ")[0]));
    // Faults did land (cut bodies, 5xx, 429, redirects) next to clean answers.
    expect(outcomesSeen).toContain("200");
    expect(outcomesSeen).toContain("cut");
    expect([...outcomesSeen].some((o) => /^(500|502|503|429|307)$/.test(o as string))).toBe(true);
  });
});
