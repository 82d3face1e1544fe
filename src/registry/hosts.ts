/** Host classification shared by the registry client and the proxy. */

/** The host name of `host[:port]`, IPv6 brackets kept. */
export function hostName(host: string): string {
  if (host.startsWith("[")) return host.slice(0, host.indexOf("]") + 1);
  return host.replace(/:\d*$/, "");
}

function ipv4Private(a: number, b: number): boolean {
  return (
    a === 0 ||
    a === 10 ||
    a === 127 ||
    (a === 100 && b >= 64 && b <= 127) ||
    (a === 169 && b === 254) ||
    (a === 172 && b >= 16 && b <= 31) ||
    (a === 192 && b === 168) ||
    (a === 198 && (b === 18 || b === 19)) ||
    a >= 224
  );
}

/**
 * True for loopback, private, link-local, CGNAT, multicast and unspecified addresses, and for
 * `localhost` names. Numeric forms (`2130706433`, `0x7f.1`) are normalised by the URL parser first.
 * Names that merely resolve to such addresses cannot be seen here (no DNS in the fetch API).
 */
export function isPrivateHost(host: string): boolean {
  let name: string;
  try {
    name = new URL(`http://${host}/`).hostname.toLowerCase();
  } catch {
    return true; // not even a host: refuse
  }
  if (name === "localhost" || name.endsWith(".localhost")) return true;
  const v4 = /^(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(name);
  if (v4) return ipv4Private(Number(v4[1]), Number(v4[2]));
  if (name.startsWith("[")) {
    const v6 = name.slice(1, -1);
    if (v6 === "::" || v6 === "::1") return true;
    const mapped =
      /^::ffff:(\d+)\.(\d+)\.\d+\.\d+$/.exec(v6) ?? /^::ffff:([0-9a-f]{1,4}):[0-9a-f]{1,4}$/.exec(v6);
    if (mapped) {
      if (v6.includes(".")) return ipv4Private(Number(mapped[1]), Number(mapped[2]));
      const high = Number.parseInt(mapped[1] as string, 16);
      return ipv4Private(high >> 8, high & 0xff);
    }
    return /^f[cd]/.test(v6) || /^fe[89ab]/.test(v6) || /^ff/.test(v6);
  }
  return false;
}

/** True for `localhost`, `127.0.0.0/8` and `[::1]`, with or without a port: these talk plain http. */
export function isLoopbackHost(host: string): boolean {
  const name = hostName(host).toLowerCase();
  return name === "localhost" || name === "[::1]" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}
