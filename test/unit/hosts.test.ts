import { describe, expect, it } from "vitest";
import { createRegistryClient, type OciError } from "../../src/index.js";
import { hostName, isLoopbackHost, isPrivateHost } from "../../src/registry/hosts.js";

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

/** Each range's edges: the first and last address inside it, and the neighbours just outside. */
const IPV4_EDGES: [string, boolean][] = [
  ["0.0.0.0", true],
  ["0.255.255.255", true],
  ["1.0.0.0", false],
  ["9.255.255.255", false],
  ["10.0.0.0", true],
  ["10.255.255.255", true],
  ["11.0.0.0", false],
  ["126.255.255.255", false],
  ["127.0.0.1", true],
  ["127.255.255.255", true],
  ["128.0.0.0", false],
  ["100.63.255.255", false],
  ["100.64.0.0", true],
  ["100.127.255.255", true],
  ["100.128.0.0", false],
  ["99.64.0.1", false],
  ["101.64.0.1", false],
  ["169.253.255.255", false],
  ["169.254.0.0", true],
  ["169.254.255.255", true],
  ["169.255.0.0", false],
  ["168.254.0.1", false],
  ["172.15.255.255", false],
  ["172.16.0.0", true],
  ["172.31.255.255", true],
  ["172.32.0.0", false],
  ["171.16.0.1", false],
  ["173.20.0.1", false],
  ["192.0.0.0", true],
  ["192.0.1.0", false],
  ["192.1.0.0", false],
  ["191.0.0.1", false],
  ["193.0.0.1", false],
  ["192.167.255.255", false],
  ["192.168.0.0", true],
  ["192.168.255.255", true],
  ["192.169.0.0", false],
  ["193.168.0.1", false],
  ["198.17.255.255", false],
  ["198.18.0.0", true],
  ["198.19.255.255", true],
  ["198.20.0.0", false],
  ["197.18.0.1", false],
  ["199.19.0.1", false],
  ["223.255.255.255", false],
  ["224.0.0.0", true],
  ["255.255.255.255", true],
];

/**
 * IPv6 edges: each embedding prefix (::/96, ::ffff:0:0/96, ::ffff:0:0:0/96, 64:ff9b::/96, 2002::/16)
 * reads the IPv4 address in its bits, so a public one inside is public; one group off the prefix,
 * the same bits are not read as an IPv4 address at all.
 */
const IPV6_EDGES: [string, boolean][] = [
  ["[::]", true],
  ["[::1]", true],
  ["[::808:808]", false], // IPv4-compatible 8.8.8.8
  ["[::ffff:808:808]", false],
  ["[::ffff:192.0.0.1]", true],
  ["[::ffff:192.0.1.1]", false], // 192.0.0.0/24 is read from the third octet too
  ["[::ffff:193.0.0.1]", false],
  ["[2606::ffff:7f00:1]", false], // one group off each zero of the prefix
  ["[0:1::ffff:7f00:1]", false],
  ["[0:0:1::ffff:7f00:1]", false],
  ["[::1:0:ffff:7f00:1]", false],
  ["[::1:ffff:7f00:1]", false],
  ["[::1:0:7f00:1]", false],
  ["[::ffff:1:7f00:1]", false],
  ["[::2:7f00:1]", false],
  ["[64:ff9b:0:1::808:808]", true], // the rest of 64:ff9b::/32: local use
  ["[64:ff9b::1:0:808:808]", true],
  ["[64:ff9b::1:808:808]", true],
  ["[64:ff9b:1::808:808]", true],
  ["[65:ff9b::7f00:1]", false],
  ["[64:ff9a::7f00:1]", false],
  ["[2002:a9fe:a9fe::1]", true],
  ["[2002:c000:1aa::1]", false], // 6to4 of 192.0.1.170
  ["[2003:a9fe:a9fe::1]", false],
  ["[2001::]", true],
  ["[2001:0:ffff:ffff:ffff:ffff:ffff:ffff]", true],
  ["[2000::1]", false],
  ["[100::]", true],
  ["[101::1]", false],
  ["[100:1::1]", false],
  ["[100:0:1::1]", false],
  ["[fc00::1]", true],
  ["[fdff:ffff::1]", true],
  ["[fbff::1]", false],
  ["[fe00::1]", false],
  ["[fe7f::1]", false],
  ["[fe80::1]", true],
  ["[feff:ffff::1]", true],
  ["[ff00::1]", true],
  ["[ff02::1]", true],
  ["[ff02::1]:443", true],
];

describe("isPrivateHost at the edges of each range", () => {
  it.each([...IPV4_EDGES, ...IPV6_EDGES])("classifies %s as private: %s", (host, expected) => {
    expect(isPrivateHost(host)).toBe(expected);
  });

  it.each([
    ["localdomain", true],
    ["printer.localdomain", true],
    ["home.arpa", true],
    ["printer.local", true],
    ["api.internal", true],
    ["metadata.google.internal..", true], // trailing dots, however many
    ["notinternal.example", false], // a name only ends with an internal one after a dot
    ["internal.example", false],
    ["metadata.goog.example", false],
    ["10.0.0.1x.example", false], // starts like an address, is a name
    ["bad host", true], // not a host at all
    ["[zz::1]", true],
    ["", true],
  ] as const)("classifies the name %j as private: %s", (host, expected) => {
    expect(isPrivateHost(host)).toBe(expected);
  });
});

describe("hostName and isLoopbackHost", () => {
  it.each([
    ["registry.test", "registry.test"],
    ["registry.test:5000", "registry.test"],
    ["registry.test:", "registry.test"],
    ["[::1]", "[::1]"],
    ["[::1]:5000", "[::1]"],
    ["[2001:db8::5]:443", "[2001:db8::5]"],
  ])("reads the name of %s as %s", (host, name) => {
    expect(hostName(host)).toBe(name);
  });

  it.each([
    ["localhost", true],
    ["LocalHost:5000", true],
    ["127.0.0.1", true],
    ["127.255.255.254:5000", true],
    ["[::1]", true],
    ["[::1]:5000", true],
    ["localhost.example", false],
    ["127.0.0.1.example", false],
    ["x127.0.0.1", false],
    ["127.0.0.1000", false],
    ["127.1", false],
    ["128.0.0.1", false],
    ["[::2]", false],
    ["10.0.0.1", false],
  ] as const)("classifies %s as loopback: %s", (host, expected) => {
    expect(isLoopbackHost(host)).toBe(expected);
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
