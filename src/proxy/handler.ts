import type { CreateHasher } from "../digest/hasher.js";
import { parseChallenges } from "../registry/challenge.js";
import { hostName, isLoopbackHost, isPrivateHost } from "../registry/hosts.js";
import { fromProxyPath } from "../registry/proxy-url.js";
import type { CacheLike } from "../store/cache.js";
import { readAtMost } from "../streams.js";
import { BlobCache, blobDigest } from "./blob-cache.js";
import { addCorsHeaders, allowedOrigin, preflight } from "./cors.js";
import { upstreamHosts } from "./hosts.js";

/** Options of `createRegistryProxy`. */
export interface RegistryProxyOptions {
  /**
   * Upstream hosts (`host` or `host:port`) and presets (`dockerhub`, `ghcr`, `quay`, `gcr`, `mcr`,
   * `nvcr`, `ecr-public`, `ollama`, `huggingface`). `host` opens only the default port (443; 80 for plain http), `host:port`
   * only that port. Nothing else is ever contacted, except the token realm a listed registry names
   * in its challenge (for a while) and the targets of its blob redirects (never private ones, unless
   * listed here). A listed name is reached even where it resolves to a private address.
   */
  allow: readonly string[];
  /** Origins allowed to call the proxy from a page. Default `"*"` (no cookies are ever involved). */
  origins?: "*" | readonly string[];
  /**
   * Upstream hosts (`host` or `host:port`) to reach over plain http (loopback hosts always are).
   * Here and on `allow`, a plain-http `host` means port 80, the same as `host:80`.
   */
  plainHttp?: readonly string[];
  /** The proxy's public base URL, when it differs from what requests arrive on (behind another proxy). */
  publicUrl?: string;
  /**
   * Blob cache (Workers `caches.default`, any Cache API object): verified blobs by registry and
   * digest. A hit is served only after the registry admits the caller (a HEAD with its credentials).
   */
  cache?: CacheLike;
  /** Largest blob to cache, in bytes. Default 512 MiB (the Workers cache's object limit). */
  cacheMaxBytes?: number;
  /** Hash for verifying blobs before caching (default: feature-detected; `crypto.DigestStream` on Workers). */
  createHasher?: CreateHasher;
  /** The fetch used upstream. */
  fetch?: typeof fetch;
  /** How long a realm named in a challenge stays reachable, in ms. Default 10 minutes. */
  realmTtlMs?: number;
  /** Clock, for realm expiry. */
  now?: () => number;
  /**
   * Resolves a host name to addresses, so that a token realm or redirect target whose name points
   * at a private address is refused like the address itself (the Node server passes `dns.lookup`;
   * the fetch API has no DNS, so Workers rely on the allow-list). Hosts on `allow` are not looked
   * up: listing an internal registry by name is enough to reach it.
   */
  resolve?: (hostname: string) => Promise<string[]>;
  /** Largest request body accepted (uploads), in bytes. Default 512 MiB. */
  maxRequestBytes?: number;
  /** Largest response accepted for anything but blobs (manifests, tags, tokens), in bytes. Default 16 MiB. */
  maxMetadataBytes?: number;
}

/** Lets the handler finish work (caching) after the response went out (Workers `ExecutionContext`). */
export interface WaitUntil {
  /** Keeps the runtime alive until `promise` settles, after the response went out. */
  waitUntil(promise: Promise<unknown>): void;
}

/**
 * The proxy as a fetch handler. Pass Workers' `ExecutionContext` (anything with `waitUntil`) so that
 * a blob being cached is finished after the response went out; a second argument without
 * `waitUntil` (what `Deno.serve` and `Bun.serve` pass) is ignored.
 */
export type RegistryProxy = (request: Request, context?: WaitUntil | object) => Promise<Response>;

const HOP_BY_HOP = new Set([
  "connection",
  "keep-alive",
  "proxy-authenticate",
  "proxy-authorization",
  "te",
  "trailer",
  "transfer-encoding",
  "upgrade",
]);
/** Request headers passed upstream; everything else (cookies, origin, forwarding headers) stays here. */
const FORWARD_REQUEST = [
  "accept",
  "authorization",
  "range",
  "content-type",
  "content-range",
  "content-length",
  "if-none-match",
  "user-agent",
];
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
/** The largest body sent to a token realm: an OAuth2 form with a refresh token and a few scopes. */
const TOKEN_FORM_BYTES = 64 * 1024;

function refuse(status: number, message: string, origin: string | undefined): Response {
  const headers = new Headers({ "content-type": "application/json" });
  if (origin) addCorsHeaders(headers, origin);
  const code = status === 403 ? "DENIED" : status === 413 ? "SIZE_INVALID" : "UNKNOWN";
  return new Response(JSON.stringify({ errors: [{ code, message: `oci-model-loader proxy: ${message}` }] }), {
    status,
    headers,
  });
}

/**
 * A registry proxy for browsers: one fetch handler, the same on Cloudflare Workers, Node, Deno.
 * `<proxy>/<upstream-host>/<path>` is forwarded to `https://<upstream-host>/<path>` for allowed
 * hosts only, with CORS, challenge realms rewritten through the proxy, blob redirects followed
 * here (keeping `Range`, dropping `Authorization` on a host change) and an optional verified blob cache.
 *
 * @param options The upstream hosts it may reach (required), origins, cache, limits.
 * @returns The fetch handler.
 * @throws {OciError} `INVALID_ARGUMENT` for an `allow` or `plainHttp` entry that is not a host.
 *
 * @example
 * ```ts
 * import { createRegistryProxy, type WaitUntil } from "oci-model-loader/proxy";
 * const proxy = createRegistryProxy({ allow: ["dockerhub", "ghcr"] });
 * export default { fetch: (request: Request, _env: unknown, ctx: WaitUntil) => proxy(request, ctx) };
 * ```
 */
export function createRegistryProxy(options: RegistryProxyOptions): RegistryProxy {
  const { allowed, plainHttp } = upstreamHosts(options.allow, options.plainHttp ?? []);
  const origins = options.origins ?? "*";
  const upstreamFetch = options.fetch ?? ((input, init) => fetch(input, init));
  const now = options.now ?? Date.now;
  const realmTtl = options.realmTtlMs ?? 10 * 60_000;
  /** Realm URLs (host + path) named by allowed registries, with their expiry. */
  const realms = new Map<string, number>();
  const cache = options.cache
    ? new BlobCache(options.cache, {
        createHasher: options.createHasher,
        maxBytes: options.cacheMaxBytes ?? 512 * 1024 * 1024,
      })
    : undefined;

  const maxRequestBytes = options.maxRequestBytes ?? 512 * 1024 * 1024;
  const maxMetadataBytes = options.maxMetadataBytes ?? 16 * 1024 * 1024;

  const schemeFor = (host: string) => (isLoopbackHost(host) || plainHttp.has(host) ? "http:" : "https:");
  /** Exact host and port: an entry for `host` (port 443) does not open `host:22`. */
  const isExplicit = (host: string) => allowed.has(host);

  /**
   * True when a name the proxy reaches on an upstream's word (a token realm, a redirect target)
   * resolves to a private address. A host explicitly on the allow-list is never looked up: listing
   * `registry.corp` is the operator's word that it may be reached, and listing its address instead
   * would break TLS. Literals need no lookup; any other name is looked up, even one private by its
   * form (`registry.internal`, a single label).
   */
  async function resolvesPrivate(host: string): Promise<boolean> {
    if (!options.resolve || isExplicit(host)) return false;
    const name = hostName(host);
    if (/^[\d.]+$/.test(name) || name.startsWith("[") || /(^|\.)localhost\.*$/.test(name)) return false;
    const addresses = await options.resolve(name).catch(() => []);
    return addresses.some((a) => isPrivateHost(a.includes(":") ? `[${a}]` : a));
  }

  function realmAllowed(host: string, path: string): boolean {
    const key = `${host}${path}`;
    if ((realms.get(key) ?? 0) > now()) return true;
    realms.delete(key);
    return false;
  }

  function proxyBase(request: Request): string {
    const base = options.publicUrl ?? new URL(request.url).origin;
    return base.endsWith("/") ? base : `${base}/`;
  }

  const toProxy = (base: string, url: URL) => `${base}${url.host}${url.pathname}${url.search}`;

  /** Rewrites realms of Bearer challenges to pass through the proxy, and remembers them. */
  function rewriteChallenge(header: string, base: string, upstreamHost: string): string {
    let challenges: ReturnType<typeof parseChallenges>;
    try {
      challenges = parseChallenges(header);
    } catch {
      return header; // the client will refuse it with a clear error
    }
    return challenges
      .map((c) => {
        const params = { ...c.params };
        const realm = c.scheme === "bearer" ? webUrl(params.realm) : undefined;
        // A private realm only for a registry that is itself private (and so explicitly allowed).
        if (realm && (!isPrivateHost(realm.host) || isPrivateHost(upstreamHost))) {
          realms.set(`${realm.host}${realm.pathname}`, now() + realmTtl);
          params.realm = toProxy(base, realm);
        }
        const rendered = Object.entries(params).map(([k, v]) => `${k}="${v.replace(/["\\]/g, "\\$&")}"`);
        const scheme = c.scheme.charAt(0).toUpperCase() + c.scheme.slice(1);
        return c.token68 ? `${scheme} ${c.token68}` : `${scheme} ${rendered.join(",")}`;
      })
      .join(", ");
  }

  function responseHeaders(
    upstream: Response,
    upstreamUrl: URL,
    requestedHost: string,
    base: string,
    origin: string | undefined,
  ): Headers {
    const headers = new Headers();
    for (const [name, value] of upstream.headers) {
      if (HOP_BY_HOP.has(name) || name === "set-cookie" || name.startsWith("access-control-")) continue;
      headers.append(name, value);
    }
    if (headers.has("content-encoding")) {
      // fetch decoded the body: the upstream length and encoding no longer describe it.
      headers.delete("content-encoding");
      headers.delete("content-length");
    }
    const challenge = headers.get("www-authenticate");
    if (challenge && upstreamUrl.host !== requestedHost) {
      // A host reached by following a redirect (a CDN) may not challenge the client: passed on, its
      // challenge would look like the registry's and draw the registry's credentials to its realm.
      headers.delete("www-authenticate");
    } else if (challenge) {
      headers.set("www-authenticate", rewriteChallenge(challenge, base, upstreamUrl.host));
    }
    // Anything but an http(s) URL (a malformed one included) is passed on as it is.
    const location = webUrl(headers.get("location"), upstreamUrl);
    if (location) headers.set("location", toProxy(base, location));
    const link = headers.get("link");
    if (link) {
      const rewrite = (target: string, href: string) => {
        const url = webUrl(href, upstreamUrl);
        return url ? `<${toProxy(base, url)}>` : target;
      };
      headers.set("link", link.replace(/<([^>]*)>/g, rewrite));
    }
    if (origin) addCorsHeaders(headers, origin);
    return headers;
  }

  /** Follows redirects of GET/HEAD here, so `Range` survives and credentials do not travel. */
  async function forward(
    url: URL,
    init: RequestInit & { headers: Headers },
  ): Promise<{ response: Response; url: URL } | string> {
    let current = url;
    const follow = init.method === "GET" || init.method === "HEAD";
    for (let hops = 0; ; hops++) {
      const response = await upstreamFetch(current, { ...init, redirect: "manual" });
      const location = response.headers.get("location");
      if (!follow || !REDIRECTS.has(response.status) || !location) return { response, url: current };
      await response.body?.cancel().catch(() => {});
      if (hops >= MAX_REDIRECTS) return `more than ${MAX_REDIRECTS} redirects`;
      const next = new URL(location, current);
      if (next.protocol !== "https:" && next.protocol !== "http:")
        return `refusing a redirect to ${next.protocol}`;
      if (next.protocol === "http:" && current.protocol === "https:" && !plainHttp.has(next.host)) {
        return "refusing a redirect from https to plain http";
      }
      // A private target only for a registry that is itself private (and so explicitly allowed).
      if (isPrivateHost(next.host) && !isExplicit(next.host) && !isPrivateHost(url.host)) {
        return `refusing a redirect to the private address ${next.host}`;
      }
      if (await resolvesPrivate(next.host))
        return `refusing a redirect to ${next.host}, which resolves to a private address`;
      // Cookies never reach the upstream (see FORWARD_REQUEST); credentials stop at the first other host.
      if (next.host !== current.host) init.headers.delete("authorization");
      current = next;
    }
  }

  /**
   * The registry's access check for a cached blob: the caller's request as a HEAD, with its own
   * credentials and repository, redirects not followed. A 200 admits; so does a redirect to another
   * host, which is how registries hand an admitted caller its blob (Distribution's storage
   * redirect, Docker Hub's and GHCR's CDNs). A redirect on the registry's own host (http to https,
   * a login page, a trailing-slash fix) is sent to anyone, so it counts as a refusal, and the real
   * request goes upstream to get the registry's real answer.
   */
  async function registryAdmits(url: URL, headers: Headers, signal: AbortSignal): Promise<boolean> {
    const check = new Headers(headers);
    check.delete("range");
    let response: Response;
    try {
      response = await upstreamFetch(url, { method: "HEAD", headers: check, redirect: "manual", signal });
    } catch {
      return false; // the real request that follows reports the failure
    }
    await response.body?.cancel().catch(() => {});
    if (response.status === 200) return true;
    const target = REDIRECTS.has(response.status) ? webUrl(response.headers.get("location"), url) : undefined;
    if (!target) return false;
    // A change of scheme on the same name is canonicalisation, whatever the ports.
    const sameHost =
      target.host === url.host || (target.hostname === url.hostname && target.protocol !== url.protocol);
    return !sameHost;
  }

  return async function handle(request: Request, context?: WaitUntil | object): Promise<Response> {
    const origin = allowedOrigin(origins, request.headers.get("origin"));
    if (request.headers.has("origin") && !origin)
      return refuse(403, "this origin may not use the proxy", undefined);
    if (request.method === "OPTIONS") return origin ? preflight(origin) : new Response(null, { status: 204 });

    const base = proxyBase(request);
    const incoming = new URL(request.url);
    const basePath = new URL(base).pathname;
    const target = incoming.pathname.startsWith(basePath)
      ? fromProxyPath(`/${incoming.pathname.slice(basePath.length)}`)
      : undefined;
    if (!target) {
      return refuse(404, "use <proxy>/<registry-host>/v2/…, e.g. /registry-1.docker.io/v2/", origin);
    }
    const { host, path } = target;
    const explicit = isExplicit(host);
    // Realms are remembered only when public, or named by a private registry that is explicitly
    // allowed. A realm takes the token spec's GET, and the OAuth2 form POST that exchanges an
    // identity (refresh) token, as Docker's client sends it, of a few KiB at most.
    const tokenPost =
      request.method === "POST" &&
      /^application\/x-www-form-urlencoded\b/i.test(request.headers.get("content-type") ?? "");
    const realm = !explicit && (request.method === "GET" || tokenPost) && realmAllowed(host, path);
    if (!explicit && !realm) return refuse(403, `${host} is not on this proxy's allow-list`, origin);
    // Only a realm is looked up here: an explicitly allowed host is the operator's choice.
    if (await resolvesPrivate(host)) return refuse(403, `${host} resolves to a private address`, origin);
    const bodyLimit = explicit ? maxRequestBytes : TOKEN_FORM_BYTES;
    if (Number(request.headers.get("content-length") ?? 0) > bodyLimit) {
      return refuse(413, `request bodies are limited to ${bodyLimit} bytes`, origin);
    }

    let upstreamUrl: URL;
    try {
      upstreamUrl = new URL(`${schemeFor(host)}//${host}${path}${incoming.search}`);
    } catch {
      return refuse(400, `"${host}" is not a host`, origin);
    }
    if (upstreamUrl.host !== host) return refuse(400, `"${host}" is not a plain host[:port]`, origin);

    const headers = new Headers({ "accept-encoding": "identity" });
    for (const name of FORWARD_REQUEST) {
      const value = request.headers.get(name);
      if (value !== null) headers.set(name, value);
    }

    const digest = request.method === "GET" ? blobDigest(upstreamUrl.pathname) : undefined;
    if (cache && digest) {
      const range = request.headers.get("range");
      const mayRead = () => registryAdmits(upstreamUrl, headers, request.signal);
      const hit = await cache.serve(base.slice(0, -1), host, digest, range, mayRead);
      if (hit) {
        if (origin) addCorsHeaders(hit.headers, origin);
        return hit;
      }
    }

    // A body need not declare its length (or may declare a wrong one): it is counted as it streams.
    // (A GET or HEAD Request cannot carry one.)
    const upload = request.body ? capped(request.body, bodyLimit) : undefined;
    const init = {
      method: request.method,
      headers,
      body: upload?.body ?? null,
      signal: request.signal,
      ...(upload ? { duplex: "half" } : {}),
    } as RequestInit & { headers: Headers };
    const cannotReach = (error: unknown) =>
      upload?.exceeded()
        ? refuse(413, `request bodies are limited to ${bodyLimit} bytes`, origin)
        : refuse(
            502,
            `cannot reach ${host}: ${error instanceof Error ? error.message : String(error)}`,
            origin,
          );
    // A blob's first range, not cached yet, is asked for whole so that it can be cached: a server
    // may answer a range with the whole blob (200), and a client of ranges then takes it in one
    // stream (src/registry/ranges.ts); its next pull gets its ranges from the cache. Otherwise a
    // blob fetched in ranges, as large ones are, would never be cached. One too large to cache is
    // asked for again as the caller asked.
    const range = headers.get("range");
    const whole =
      cache !== undefined && digest !== undefined && range !== null && /^bytes=0-\d*$/.test(range);
    let ranged = range !== null && !whole;
    // Each try with its own headers: a redirect to another host drops Authorization from them.
    const ask = () => {
      const asked = new Headers(headers);
      if (!ranged) asked.delete("range");
      return forward(upstreamUrl, { ...init, headers: asked });
    };
    let result: Awaited<ReturnType<typeof forward>>;
    try {
      result = await ask();
      if (
        whole &&
        typeof result !== "string" &&
        result.response.status === 200 &&
        !cache.fits(result.response)
      ) {
        await result.response.body?.cancel().catch(() => {});
        ranged = true;
        result = await ask();
      }
    } catch (error) {
      return cannotReach(error);
    }
    if (typeof result === "string") return refuse(403, result, origin);
    const { response, url } = result;
    let body: BodyInit | null = response.body;
    if (!digest && !/\/blobs\//.test(url.pathname)) {
      // Manifests, tags, tokens: small, so read here whole, and refused past the limit whether or
      // not a length was declared (a decoded body may outgrow the declared one).
      const tooLarge = () =>
        refuse(
          502,
          `${host} sent a response over the ${maxMetadataBytes}-byte limit for non-blob requests`,
          origin,
        );
      if (Number(response.headers.get("content-length") ?? 0) > maxMetadataBytes) {
        await response.body?.cancel().catch(() => {});
        return tooLarge();
      }
      if (response.body) {
        let whole: Uint8Array<ArrayBuffer> | undefined;
        try {
          whole = await readAtMost(response.body, maxMetadataBytes);
        } catch (error) {
          return cannotReach(error);
        }
        if (!whole) return tooLarge();
        body = whole;
      }
    }
    const out = responseHeaders(response, url, upstreamUrl.host, base, origin);
    if (cache && digest && response.status === 200 && !ranged && response.body) {
      const stored = cache.store(base.slice(0, -1), host, digest, response);
      body = stored.body;
      // Deno.serve and Bun.serve pass a second argument of their own, without waitUntil: the
      // caching then finishes as the body is read, with no one to keep the runtime alive for it.
      if (context && "waitUntil" in context && typeof context.waitUntil === "function")
        context.waitUntil(stored.done);
    }
    return new Response(body, { status: response.status, statusText: response.statusText, headers: out });
  };
}

/**
 * `source` passed through while it stays within `limit` bytes; past it, the stream errors (which
 * fails the upload that reads it) and `exceeded()` turns true.
 */
function capped(
  source: ReadableStream<Uint8Array>,
  limit: number,
): { body: ReadableStream<Uint8Array>; exceeded: () => boolean } {
  let length = 0;
  const body = source.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        length += chunk.byteLength;
        if (length > limit) controller.error(new Error(`request body over ${limit} bytes`));
        else controller.enqueue(chunk);
      },
    }),
  );
  return { body, exceeded: () => length > limit };
}

/** `href` (resolved against `base`) when it is an http or https URL; undefined for anything else. */
function webUrl(href: string | null | undefined, base?: URL): URL | undefined {
  if (!href) return undefined;
  let url: URL;
  try {
    url = new URL(href, base);
  } catch {
    return undefined;
  }
  return url.protocol === "https:" || url.protocol === "http:" ? url : undefined;
}
