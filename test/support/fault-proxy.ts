// A fault-injecting HTTP proxy between a client and the real registry, on loopback. Seeded per
// request: whether a request gets a fault, which one, and where a cut lands are drawn from a PRNG
// seeded with the seed and the request's key (scope, method, path, Range, authorized or not, and
// how many times that key was seen before in the scope). The same seed therefore injects the same
// faults into the same requests whatever order concurrent requests arrive in. Bounded: each run
// closes its servers.

import { createCipheriv, createHash } from "node:crypto";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";

export const FAULTS = [
  "reset",
  "stall",
  "corrupt",
  "status-500",
  "status-502",
  "status-503",
  "rate-limit",
  "expire-token",
  "redirect",
  "wrong-blob",
] as const;
export type Fault = (typeof FAULTS)[number];

/** Faults that only a blob GET can get (they act on its body, or send it elsewhere). */
const BLOB_FAULTS: readonly Fault[] = ["reset", "stall", "corrupt", "wrong-blob", "redirect"];

export interface FaultPlanOptions {
  seed: number;
  /** Chance that a request gets a fault. */
  rate: number;
  faults?: readonly Fault[];
  /** Relative weight of each fault among those that apply (default 1 each). */
  weights?: Partial<Record<Fault, number>>;
}

export interface FaultProxyOptions extends FaultPlanOptions {
  upstream: string;
  /** How long a stall lasts before the connection closes (longer than the client's idle timeout). */
  stallMs?: number;
  /** Also cut every blob of 1 MiB or more at this fraction of its length (a deterministic reset). */
  cutAt?: number;
}

/** What the proxy is asked, as far as the plan cares. */
export interface PlannedRequest {
  method: string;
  /** Path and query, as received. */
  path: string;
  range?: string;
  /** Whether it carries `Authorization` (only such a request can have its token "expire"). */
  authorized: boolean;
}

export interface FaultDecision {
  /** The request's key, occurrence included: equal keys get equal decisions under one seed. */
  key: string;
  fault?: Fault;
  /** Where in the body a reset, stall or corruption lands, as a fraction of its length. */
  at: number;
  /** 16 bytes for the deterministic noise of a wrong blob. */
  noiseKey: Buffer;
}

export interface InjectedFault {
  scope: string;
  key: string;
  fault: Fault;
}

export interface FaultProxy {
  host: string;
  injected: Record<string, number>;
  /** Every fault injected, in arrival order (a log: compare by key, not by position). */
  events: InjectedFault[];
  /**
   * Starts a new scope (one pull attempt, say): keys include it and their occurrence counts start
   * again, so one attempt's decisions do not depend on how many requests an earlier one made.
   */
  scope(name: string): void;
  /** Body bytes sent for blob requests (what the client had to download). */
  blobBytes(): number;
  close(): Promise<void>;
}

/** mulberry32: a small PRNG, good enough to spread faults. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const isBlobGet = (request: PlannedRequest) =>
  request.method === "GET" && /\/blobs\/sha256:/.test(request.path);

/**
 * The proxy's decisions, apart from its sockets: `decide` depends only on the seed, the scope and
 * the request (and how many equal requests came before it in the scope), never on arrival order
 * across different requests.
 */
export class FaultPlan {
  readonly #options: FaultPlanOptions;
  readonly #faults: readonly Fault[];
  #scope = "";
  #seen = new Map<string, number>();

  constructor(options: FaultPlanOptions) {
    this.#options = options;
    this.#faults = options.faults ?? FAULTS;
  }

  get currentScope(): string {
    return this.#scope;
  }

  scope(name: string): void {
    this.#scope = name;
    this.#seen = new Map();
  }

  decide(request: PlannedRequest): FaultDecision {
    const base = [
      this.#scope,
      request.method,
      request.path,
      request.range ?? "",
      request.authorized ? "auth" : "anon",
    ].join("\n");
    const occurrence = this.#seen.get(base) ?? 0;
    this.#seen.set(base, occurrence + 1);
    const key = `${base}\n#${occurrence}`;
    const digest = createHash("sha256").update(`${this.#options.seed}\n${key}`).digest();
    const random = rng(digest.readUInt32LE(0));
    const noiseKey = digest.subarray(16, 32);
    const blob = isBlobGet(request);
    const applicable = this.#faults.filter((f) => {
      if (BLOB_FAULTS.includes(f)) return blob;
      if (f === "expire-token") return request.authorized;
      return true;
    });
    // Always three draws, so a change of rate or fault list moves no other number.
    const [hit, pick, at] = [random(), random(), random()];
    let fault: Fault | undefined;
    if (hit < this.#options.rate && applicable.length) {
      const weight = (f: Fault) => this.#options.weights?.[f] ?? 1;
      let left = pick * applicable.reduce((sum, f) => sum + weight(f), 0);
      for (const f of applicable) {
        fault = f;
        left -= weight(f);
        if (left < 0) break;
      }
    }
    return { key, fault, at, noiseKey };
  }
}

const PASS = [
  "content-type",
  "content-length",
  "content-range",
  "docker-content-digest",
  "www-authenticate",
  "location",
  "link",
  "retry-after",
  "accept-ranges",
];

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  return typeof address === "object" && address ? address.port : 0;
}

/** The request as the plan sees it. */
export function plannedRequest(req: IncomingMessage): PlannedRequest {
  return {
    method: req.method ?? "GET",
    path: req.url ?? "/",
    range: typeof req.headers.range === "string" ? req.headers.range : undefined,
    authorized: typeof req.headers.authorization === "string",
  };
}

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const plan = new FaultPlan(options);
  const injected: Record<string, number> = {};
  const events: InjectedFault[] = [];
  let blobBytes = 0;
  const stallMs = options.stallMs ?? 400;

  const forward = async (req: IncomingMessage, res: ServerResponse, decision: FaultDecision | undefined) => {
    let fault = decision?.fault;
    const headers: Record<string, string> = {};
    for (const name of ["accept", "authorization", "range", "content-type"]) {
      const value = req.headers[name];
      if (typeof value === "string" && !(fault === "expire-token" && name === "authorization"))
        headers[name] = value;
    }
    const upstream = await fetch(`http://${options.upstream}${req.url}`, {
      method: req.method ?? "GET",
      headers,
      redirect: "manual",
    });
    const out: Record<string, string> = {};
    for (const name of PASS) {
      const value = upstream.headers.get(name);
      if (value !== null) out[name] = value;
    }
    res.writeHead(upstream.status, out);
    const isBlob = /\/blobs\/sha256:/.test(req.url ?? "") && req.method === "GET";
    const body = upstream.body;
    if (!body || req.method === "HEAD") return void res.end();
    const length = Number(upstream.headers.get("content-length") ?? 0);
    const cutBig = options.cutAt !== undefined && isBlob && length >= 1024 * 1024;
    if (cutBig) {
      fault = "reset";
      injected.reset = (injected.reset ?? 0) + 1;
    }
    const cut = cutBig
      ? Math.floor(length * (options.cutAt as number))
      : Math.floor((decision?.at ?? 0) * Math.max(1, length));
    // A wrong blob is seeded noise (AES-CTR over zeros), the same bytes on every run.
    const noise =
      fault === "wrong-blob" && decision
        ? createCipheriv("aes-128-ctr", decision.noiseKey, Buffer.alloc(16))
        : undefined;
    let sent = 0;
    for await (const chunk of body as AsyncIterable<Uint8Array>) {
      let bytes = Buffer.from(chunk);
      if (noise) bytes = noise.update(Buffer.alloc(bytes.byteLength));
      if (fault === "corrupt" && cut >= sent && cut < sent + bytes.byteLength)
        bytes[cut - sent] = (bytes[cut - sent] ?? 0) ^ 0xff;
      if ((fault === "reset" || fault === "stall") && sent + bytes.byteLength > cut) {
        const part = bytes.subarray(0, cut - sent);
        if (isBlob) blobBytes += part.byteLength;
        await new Promise<void>((resolve) => res.write(part, () => resolve()));
        if (fault === "stall") await new Promise((r) => setTimeout(r, stallMs));
        res.socket?.destroy();
        return;
      }
      if (isBlob) blobBytes += bytes.byteLength;
      sent += bytes.byteLength;
      if (!res.write(bytes)) await new Promise((r) => res.once("drain", r));
    }
    res.end();
  };

  const other = createServer((req, res) => void forward(req, res, undefined).catch(() => res.destroy()));
  const otherPort = await listen(other);

  const server = createServer((req, res) => {
    const decision = plan.decide(plannedRequest(req));
    const { fault } = decision;
    if (fault) {
      injected[fault] = (injected[fault] ?? 0) + 1;
      events.push({ scope: plan.currentScope, key: decision.key, fault });
    }
    if (fault?.startsWith("status-")) return void res.writeHead(Number(fault.slice(7))).end();
    if (fault === "rate-limit") return void res.writeHead(429, { "retry-after": "0" }).end();
    if (fault === "redirect")
      return void res.writeHead(307, { location: `http://127.0.0.1:${otherPort}${req.url}` }).end();
    forward(req, res, decision).catch(() => res.destroy());
  });
  const port = await listen(server);
  const close = (s: Server) =>
    new Promise<void>((resolve) => {
      s.closeAllConnections();
      s.close(() => resolve());
    });
  return {
    host: `127.0.0.1:${port}`,
    injected,
    events,
    scope: (name) => plan.scope(name),
    blobBytes: () => blobBytes,
    close: async () => {
      await close(server);
      await close(other);
    },
  };
}
