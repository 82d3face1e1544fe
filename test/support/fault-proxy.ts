// A fault-injecting HTTP proxy between a client and the real registry, on loopback. Seeded: the same
// seed injects the same faults in the same order. Bounded: each run closes its servers.

import { randomBytes } from "node:crypto";
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

export interface FaultProxyOptions {
  upstream: string;
  seed: number;
  /** Chance that a request gets a fault. */
  rate: number;
  faults?: readonly Fault[];
  /** How long a stall lasts before the connection closes (longer than the client's idle timeout). */
  stallMs?: number;
  /** Also cut every blob of 1 MiB or more at this fraction of its length (a deterministic reset). */
  cutAt?: number;
}

export interface FaultProxy {
  host: string;
  injected: Record<string, number>;
  /** Body bytes sent for blob requests (what the client had to download). */
  blobBytes(): number;
  close(): Promise<void>;
}

function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
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

export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const random = rng(options.seed);
  const faults = options.faults ?? FAULTS;
  const injected: Record<string, number> = {};
  let blobBytes = 0;
  const stallMs = options.stallMs ?? 400;

  const forward = async (req: IncomingMessage, res: ServerResponse, planned: Fault | undefined) => {
    let fault = planned;
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
      : Math.floor(random() * Math.max(1, length));
    let sent = 0;
    for await (const chunk of body as AsyncIterable<Uint8Array>) {
      let bytes = Buffer.from(chunk);
      if (fault === "wrong-blob") bytes = randomBytes(bytes.byteLength);
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
    const isBlob = /\/blobs\/sha256:/.test(req.url ?? "") && req.method === "GET";
    const applicable = faults.filter((f) => {
      if (["reset", "stall", "corrupt", "wrong-blob", "redirect"].includes(f)) return isBlob;
      if (f === "expire-token") return typeof req.headers.authorization === "string";
      return true;
    });
    const fault =
      random() < options.rate && applicable.length
        ? applicable[Math.floor(random() * applicable.length)]
        : undefined;
    if (fault) injected[fault] = (injected[fault] ?? 0) + 1;
    if (fault?.startsWith("status-")) return void res.writeHead(Number(fault.slice(7))).end();
    if (fault === "rate-limit") return void res.writeHead(429, { "retry-after": "0" }).end();
    if (fault === "redirect")
      return void res.writeHead(307, { location: `http://127.0.0.1:${otherPort}${req.url}` }).end();
    forward(req, res, fault).catch(() => res.destroy());
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
    blobBytes: () => blobBytes,
    close: async () => {
      await close(server);
      await close(other);
    },
  };
}
