// The Node proxy's fetch (src/node/proxy-server.ts): uploads are sent without the clone undici
// makes to replay a request on a redirect, whose unread half holds every byte sent
// (nodejs/undici#4058). Against a real server with Node's real fetch.
import { createHash } from "node:crypto";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { uploadsUncloned } from "../../src/node/proxy-server.js";

describe("the Node proxy's fetch for uploads", () => {
  let server: Server;
  let base = "";
  const received: string[] = [];
  beforeAll(async () => {
    server = createServer((req, res) => {
      const hash = createHash("sha256");
      req.on("data", (chunk: Buffer) => hash.update(chunk));
      req.on("end", () => {
        received.push(hash.digest("hex"));
        if (req.url === "/redirect") res.writeHead(307, { location: "/elsewhere" });
        else res.writeHead(202);
        res.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => server.close());

  const body = (bytes: Uint8Array) => new Blob([bytes as Uint8Array<ArrayBuffer>]).stream();

  it("sends a streamed body whole, with redirects refused and no window", async () => {
    const seen: RequestInit[] = [];
    const fetch = uploadsUncloned((async (input: RequestInfo | URL, init?: RequestInit) => {
      seen.push(init ?? {});
      return globalThis.fetch(input, init);
    }) as typeof globalThis.fetch);
    const bytes = new Uint8Array(3 * 1024 * 1024).fill(7);
    const response = await fetch(`${base}/upload`, {
      method: "PATCH",
      body: body(bytes),
      duplex: "half",
      redirect: "manual",
    } as RequestInit);
    expect(response.status).toBe(202);
    expect(received.at(-1)).toBe(createHash("sha256").update(bytes).digest("hex"));
    expect(seen[0]?.redirect).toBe("error");
    expect(seen[0]?.window).toBeNull();
  });

  it("answers a redirect of an upload with a 502 that says why", async () => {
    const fetch = uploadsUncloned(globalThis.fetch);
    const response = await fetch(`${base}/redirect`, {
      method: "PATCH",
      body: body(new Uint8Array(10)),
      duplex: "half",
      redirect: "manual",
    } as RequestInit);
    expect(response.status).toBe(502);
    expect(JSON.stringify(await response.json())).toMatch(
      /redirected an upload, whose streamed body cannot be sent twice/,
    );
  });

  it("leaves a request without a body as it is: a redirect comes back to the proxy", async () => {
    const response = await uploadsUncloned(globalThis.fetch)(`${base}/redirect`, { redirect: "manual" });
    expect(response.status).toBe(307);
  });

  it("passes on a network failure as it is", async () => {
    const fetch = uploadsUncloned(globalThis.fetch);
    await expect(
      fetch("http://127.0.0.1:1/", {
        method: "PUT",
        body: body(new Uint8Array(1)),
        duplex: "half",
      } as RequestInit),
    ).rejects.toThrow(/fetch failed/);
  });
});
