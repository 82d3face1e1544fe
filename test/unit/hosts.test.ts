import { describe, expect, it } from "vitest";
import { createRegistryClient, type OciError } from "../../src/index.js";
import { isPrivateHost } from "../../src/registry/hosts.js";

/** Spellings of private addresses and internal names that once passed as public (issue 16, item 10). */
const PRIVATE_SPELLINGS = [
  "localhost.",
  "foo.localhost.",
  "localhost.:5000",
  "[::127.0.0.1]", // IPv4-compatible, normalised to [::7f00:1]
  "[::ffff:0:7f00:1]", // IPv4-translated (SIIT)
  "[::ffff:0:10.0.0.1]",
  "[64:ff9b::7f00:1]", // NAT64 of 127.0.0.1
  "[64:ff9b::169.254.169.254]",
  "[64:ff9b::a00:1]",
  "[64:ff9b:1::1]", // local-use NAT64 prefix
  "[2002:a9fe:a9fe::1]", // 6to4 of 169.254.169.254
  "[fec0::1]", // site-local
  "[feff::1]",
  "metadata.google.internal",
  "metadata.google.internal.",
  "METADATA.GOOGLE.INTERNAL:80",
  "instance-data.ec2.internal",
  "metadata.goog",
  "metadata", // single-label names resolve through the local search domains
  "kubernetes.default.svc.cluster.local",
  "router.home.arpa",
  "192.0.0.170", // NAT64 prefix discovery (RFC 7050), in the IETF protocol assignments 192.0.0.0/24
  "192.0.0.8",
  "192.0.0.255",
  "[::ffff:192.0.0.170]",
  "[64:ff9b::c000:aa]", // NAT64 of 192.0.0.170
  "[2002:c000:aa::1]", // 6to4 of 192.0.0.170
  "[2001::1]", // Teredo 2001::/32: the obfuscated IPv4 address inside is not worth decoding
  "[2001:0:4136:e378:8000:63bf:3fff:fdd2]",
  "[100::1]", // discard-only 100::/64
  "[100::ffff:ffff:ffff:ffff]",
];

describe("isPrivateHost", () => {
  it.each(PRIVATE_SPELLINGS)("classifies %s as private", (host) => {
    expect(isPrivateHost(host)).toBe(true);
  });

  it.each([
    "registry-1.docker.io",
    "registry-1.docker.io.",
    "ghcr.io:443",
    "8.8.8.8",
    "[2606:4700::1111]",
    "[64:ff9b::808:808]", // NAT64 of 8.8.8.8
    "[::ffff:0:808:808]",
    "[2002:808:808::1]",
    "[2001:db8::1]",
    "[2001:1::1]", // next to Teredo, outside it
    "[2001:4860:4860::8888]",
    "[100:0:0:1::1]", // next to the discard prefix, outside it
    "192.0.1.1", // next to 192.0.0.0/24, outside it
    "[64:ff9b::c000:1aa]", // NAT64 of 192.0.1.170
  ])("classifies %s as public", (host) => {
    expect(isPrivateHost(host)).toBe(false);
  });
});

describe("the client's realm check", () => {
  it.each(PRIVATE_SPELLINGS)(
    "refuses a public registry's realm on %s, sending nothing there",
    async (host) => {
      const requests: string[] = [];
      const client = createRegistryClient({
        retries: 0,
        credentials: { "registry.test": { username: "u", password: "p" } },
        fetch: (async (input: RequestInfo | URL, init?: RequestInit) => {
          const request = new Request(input, init);
          requests.push(request.url);
          return new Response("", {
            status: 401,
            headers: { "www-authenticate": `Bearer realm="https://${host}/token",service="s"` },
          });
        }) as typeof fetch,
      });
      const error = (await client
        .getManifest("registry.test/ns/model:v1")
        .catch((e: unknown) => e)) as OciError;
      expect(error.code).toBe("REGISTRY_ERROR");
      expect(error.message).toMatch(/private address/);
      expect(requests.map((url) => new URL(url).host)).toEqual(["registry.test"]);
    },
  );
});
