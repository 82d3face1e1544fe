/** Host classification shared by the registry client and the proxy. */

/** The host name of `host[:port]`, IPv6 brackets kept (the port comes after the closing bracket). */
export function hostName(host: string): string {
  return host.replace(/:\d*$/, "");
}

function ipv4Private(a: number, b: number, c: number): boolean {
  return (
    a === 0 ||
    a === 10 ||
    a === 127 ||
    (a === 100 && b >= 64 && b <= 127) ||
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) ||
    // IETF protocol assignments: 192.0.0.170/171 answer NAT64 prefix discovery, the rest are
    // gateway and relay addresses that mean something only inside a network.
    (a === 192 && b === 0 && c === 0) ||
    (a === 192 && b === 168) ||
    (a === 198 && (b === 18 || b === 19)) ||
    a >= 224
  );
}

/** The eight 16-bit groups of an IPv6 address as the URL parser serialises it (hex, `::` compressed). */
function ipv6Groups(address: string): number[] {
  const parse = (part: string) => (part === "" ? [] : part.split(":").map((g) => Number.parseInt(g, 16)));
  const [head, tail] = address.split("::") as [string, string?]; // split gives at least one part
  const front = parse(head);
  if (tail === undefined) return front;
  const back = parse(tail);
  return [...front, ...new Array<number>(8 - front.length - back.length).fill(0), ...back];
}

/** An IPv4 address carried in two 16-bit groups. */
const embeddedPrivate = (high: number, low: number) => ipv4Private(high >> 8, high & 0xff, low >> 8);

function ipv6Private(address: string): boolean {
  const [a = 0, b = 0, c = 0, d = 0, e = 0, f = 0, g = 0, h = 0] = ipv6Groups(address);
  // ::/96 (unspecified, loopback, IPv4-compatible), ::ffff:0:0/96 (mapped), ::ffff:0:0:0/96
  // (translated): each reaches the IPv4 address in its low 32 bits.
  if (
    a === 0 &&
    b === 0 &&
    c === 0 &&
    d === 0 &&
    ((e === 0 && (f === 0 || f === 0xffff)) || (e === 0xffff && f === 0))
  ) {
    return embeddedPrivate(g, h);
  }
  // NAT64: the well-known 64:ff9b::/96 translates to the IPv4 address in its low 32 bits; the rest
  // of 64:ff9b::/32 holds the local-use prefix 64:ff9b:1::/48, which is private by definition.
  if (a === 0x64 && b === 0xff9b) return c !== 0 || d !== 0 || e !== 0 || f !== 0 || embeddedPrivate(g, h);
  if (a === 0x2002) return embeddedPrivate(b, c); // 6to4 relays to the IPv4 address in bits 16–47
  // Teredo 2001::/32 tunnels to an IPv4 server and client (the client's address inverted in the
  // low 32 bits): rather than decode both, the whole prefix counts as private. No registry lives there.
  if (a === 0x2001 && b === 0) return true;
  if (a === 0x100 && b === 0 && c === 0 && d === 0) return true; // discard-only 100::/64 (RFC 6666)
  return (
    (a & 0xfe00) === 0xfc00 || // unique local fc00::/7
    (a & 0xff80) === 0xfe80 || // link-local fe80::/10 and the deprecated site-local fec0::/10
    (a & 0xff00) === 0xff00 // multicast
  );
}

/**
 * Names that only mean something inside a network: special-use `localhost`, `.internal` (cloud
 * metadata: `metadata.google.internal`, `instance-data.ec2.internal`), mDNS `.local`, `.home.arpa`,
 * `localdomain`, and GCE's `metadata.goog`.
 */
const INTERNAL_NAMES = ["localhost", "internal", "local", "localdomain", "home.arpa", "metadata.goog"];

/**
 * True for loopback, private, link-local, site-local, CGNAT, multicast, unspecified and IETF
 * protocol-assignment (192.0.0.0/24) addresses (IPv4-mapped, -compatible, -translated, NAT64 and
 * 6to4 spellings of them included), for all of Teredo (2001::/32) and the discard prefix
 * (100::/64), for internal names (see INTERNAL_NAMES) and for single-label names, which resolve
 * through the local search domains (GCE's `metadata`). A trailing dot changes nothing. Numeric forms (`2130706433`, `0x7f.1`)
 * are normalised by the URL parser first. Public names that merely resolve to private addresses
 * cannot be seen here (no DNS in the fetch API).
 */
export function isPrivateHost(host: string): boolean {
  let name: string;
  try {
    name = new URL(`http://${host}/`).hostname; // lowercase, IPv4 and IPv6 in canonical form
  } catch {
    return true; // not even a host: refuse
  }
  if (name.startsWith("[")) return ipv6Private(name.slice(1, -1));
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.\d+$/.exec(name);
  if (v4) return ipv4Private(Number(v4[1]), Number(v4[2]), Number(v4[3]));
  name = name.replace(/\.+$/, "");
  if (!name.includes(".")) return true;
  return INTERNAL_NAMES.some((internal) => name === internal || name.endsWith(`.${internal}`));
}

/** True for `localhost`, `127.0.0.0/8` and `[::1]`, with or without a port: these talk plain http. */
export function isLoopbackHost(host: string): boolean {
  const name = hostName(host).toLowerCase();
  return name === "localhost" || name === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}
