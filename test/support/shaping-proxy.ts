// A WAN-shaped HTTP proxy in front of a registry on loopback: each request waits half a round trip
// before it is forwarded and its answer half a round trip before it starts; each response body, and
// each request body (uploads), is held to a per-connection rate and all of them together to a total
// rate; `dropRanges` strips the Range header (a server that serves no ranges); `resets` cuts blob
// bodies at random, from a seed (a lossy path whose connections die). It counts what passes, for
// tests and benchmarks.
import { createServer, request as httpRequest, type IncomingMessage, type Server } from "node:http";

export interface ShapingOptions {
  /** Where requests go: `host:port`. */
  upstream: string;
  /** Round trip added to each request, ms. Default 0. */
  rttMs?: number;
  /** Bytes per second of one response body. Default unlimited. */
  connectionRate?: number;
  /** Bytes per second of all response bodies together. Default unlimited. */
  totalRate?: number;
  /** Forward requests without their Range header. */
  dropRanges?: boolean;
  /**
   * Cut blob bodies: after each MiB of a body, the connection is destroyed with this probability,
   * drawn from a PRNG seeded with `seed` (the same seed, the same sequence of draws).
   */
  resets?: { seed: number; perMiB: number };
}

export interface ShapingProxy {
  /** `127.0.0.1:port`: use it as the registry host. */
  host: string;
  /** Range headers of the blob GETs, in arrival order ("" for none). */
  blobRanges: string[];
  /** Body bytes sent for blob GETs. */
  blobBytes(): number;
  /** Most blob GETs open at once. */
  peakBlobRequests(): number;
  /** Blob bodies cut by `resets`. */
  resets(): number;
  /** Request body bytes passed on (uploads). */
  uploadBytes(): number;
  close(): Promise<void>;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));

/** A line of `rate` bytes/s: `send(n)` resolves when the line is free, and then holds it for `n` bytes. */
function line(rate: number | undefined) {
  let free = 0;
  return async (bytes: number) => {
    if (!rate) return;
    const now = Date.now();
    const start = Math.max(free, now);
    free = start + (bytes / rate) * 1000;
    await sleep(start - now);
  };
}

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
function seeded(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export async function startShapingProxy(options: ShapingOptions): Promise<ShapingProxy> {
  const [upstreamHost, upstreamPort] = options.upstream.split(":");
  const half = (options.rttMs ?? 0) / 2;
  const total = line(options.totalRate);
  const blobRanges: string[] = [];
  let blobBytes = 0;
  let open = 0;
  let peak = 0;
  let resets = 0;
  let uploadBytes = 0;
  const draw = options.resets ? seeded(options.resets.seed) : undefined;

  const server: Server = createServer((req, res) => {
    const isBlob = req.method === "GET" && /\/blobs\/sha256:/.test(req.url ?? "");
    const headers = { ...req.headers };
    if (options.dropRanges) delete headers.range;
    if (isBlob) {
      blobRanges.push(headers.range ?? "");
      peak = Math.max(peak, ++open);
    }
    const done = () => {
      if (isBlob) open--;
    };
    void sleep(half).then(() => {
      const upstream = httpRequest(
        { host: upstreamHost, port: Number(upstreamPort), method: req.method, path: req.url, headers },
        (answer: IncomingMessage) => {
          void sleep(half).then(async () => {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            const connection = line(options.connectionRate);
            let sent = 0;
            try {
              for await (const chunk of answer as AsyncIterable<Buffer>) {
                // One draw per MiB boundary this chunk would cross; a hit cuts the body before it.
                const before = Math.floor(sent / 1048576);
                sent += chunk.byteLength;
                for (let mib = before; isBlob && draw && mib < Math.floor(sent / 1048576); mib++) {
                  if (draw() < (options.resets?.perMiB ?? 0)) {
                    resets++;
                    answer.destroy();
                    res.destroy();
                    return;
                  }
                }
                await Promise.all([connection(chunk.byteLength), total(chunk.byteLength)]);
                if (isBlob) blobBytes += chunk.byteLength;
                if (!res.write(chunk)) await new Promise((resolve) => res.once("drain", resolve));
              }
              res.end();
            } catch {
              res.destroy();
            } finally {
              done();
            }
          });
        },
      );
      upstream.on("error", () => {
        done();
        res.destroy();
      });
      // A request body (an upload) is held to the same rates as a response body.
      void (async () => {
        const connection = line(options.connectionRate);
        try {
          for await (const chunk of req as AsyncIterable<Buffer>) {
            await Promise.all([connection(chunk.byteLength), total(chunk.byteLength)]);
            uploadBytes += chunk.byteLength;
            if (!upstream.write(chunk)) await new Promise((resolve) => upstream.once("drain", resolve));
          }
          upstream.end();
        } catch {
          upstream.destroy();
        }
      })();
    });
    res.on("close", () => req.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : 0;
  return {
    host: `127.0.0.1:${port}`,
    blobRanges,
    blobBytes: () => blobBytes,
    peakBlobRequests: () => peak,
    resets: () => resets,
    uploadBytes: () => uploadBytes,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
