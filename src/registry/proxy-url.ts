/**
 * The registry proxy's URL scheme: `<proxy>/<upstream-host[:port]>/<path>?<query>` stands for
 * `https://<upstream-host[:port]>/<path>?<query>` (http for loopback or plain-http upstreams).
 */

/** Maps a URL to its proxied form, or decides where it goes. */
export type ProxyOption = string | ((url: URL) => URL);

function base(proxy: string): string {
  return proxy.endsWith("/") ? proxy : `${proxy}/`;
}

/** `https://host/path?q` → `<proxy>/host/path?q`. A URL already on the proxy is left alone. */
export function toProxyUrl(proxy: string, url: URL): URL {
  const prefix = base(proxy);
  if (url.href.startsWith(prefix)) return url;
  return new URL(`${prefix}${url.host}${url.pathname}${url.search}`);
}

/** `<proxy>/host/path?q` → `{ host, path: "/path", search: "?q" }`, or undefined when not of that form. */
export function fromProxyPath(pathAndQuery: string): { host: string; path: string } | undefined {
  const match = /^\/([^/?#]+)(\/[^#]*)?$/.exec(pathAndQuery);
  if (!match?.[1]) return undefined;
  return { host: decodeURIComponent(match[1]).toLowerCase(), path: match[2] ?? "/" };
}

/** Applies the client's `proxy` option to an outgoing URL. */
export function applyProxy(proxy: ProxyOption | undefined, url: URL): URL {
  if (proxy === undefined) return url;
  return typeof proxy === "string" ? toProxyUrl(proxy, url) : proxy(url);
}
