import { abortError, asOciError, OciError, throwIfAborted } from "../errors.js";
import { Authenticator } from "./auth.js";
import type { CredentialProvider } from "./credentials.js";
import { discard, retryAfterMs, withIdleTimeout } from "./http.js";
import { applyProxy, fromProxyPath, type ProxyOption } from "./proxy-url.js";

export interface TransportOptions {
  fetch: typeof fetch;
  credentials?: CredentialProvider | undefined;
  /** Retries of a failed idempotent request (network error, 5xx, 429). */
  retries: number;
  /** First backoff delay in ms (doubling, with jitter, capped at 8 s). */
  retryDelay: number;
  /** Idle timeout: the longest wait for response headers or for the next body chunk. */
  timeoutMs: number;
  now: () => number;
  allowsPlainHttp: (host: string) => boolean;
  /**
   * A registry's own origin (`https://host[:port]`, http where plain http is configured): the only
   * origin its credentials are sent to and whose challenges are answered with them (a redirect
   * target's Bearer challenge is answered anonymously).
   */
  registryOrigin: (registry: string) => string;
  /** A CORS proxy every request goes through (see `proxy-url.ts`). */
  proxy?: ProxyOption | undefined;
}

/** One request to a registry. */
export interface RegistryRequest {
  /** Canonical registry name, for looking up credentials. */
  registry: string;
  /** Token scopes, e.g. `repository:ai/model:pull`. */
  scopes: string[];
  /** What we are doing, for error messages ("fetch manifest …"). */
  action: string;
  method?: string;
  headers?: HeadersInit;
  body?: BodyInit | null;
  signal?: AbortSignal | undefined;
}

/** Authorization for a redirect hop to another origin (an anonymous token), or undefined. */
type HopAuthorization = (target: URL) => Promise<string | undefined>;

/** Cloudflare Workers, whose fetch takes no `redirect: "error"`. */
const ON_WORKERS =
  typeof navigator !== "undefined" &&
  (navigator as { userAgent?: string }).userAgent === "Cloudflare-Workers";
const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 10;
/** A `Retry-After` longer than this is not waited for: the error goes to the caller. */
const MAX_RETRY_AFTER_MS = 60_000;
const BACKOFF_CAP_MS = 8_000;

/**
 * Registry responses are verified and kept by a store: a browser's HTTP cache would only write a
 * second copy of every blob (and could answer a tag's revalidation from stale bytes). Only in
 * browsers (pages and their workers): elsewhere there is no such cache, and `no-store` would only
 * add `Cache-Control: no-cache` to requests that CDNs in front of registries may then pass to origin.
 */
let noStore: { cache?: RequestCache } | undefined;
function bypassHttpCache(): { cache?: RequestCache } {
  const scope = globalThis as { document?: unknown; importScripts?: unknown };
  noStore ??=
    scope.document !== undefined || typeof scope.importScripts === "function" ? { cache: "no-store" } : {};
  return noStore;
}

function isRetriableStatus(status: number): boolean {
  return status === 429 || status === 408 || (status >= 500 && status !== 501 && status !== 505);
}

function sleep(ms: number, signal: AbortSignal | undefined, action: string): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortError(action, signal.reason));
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(action, signal?.reason));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * The registry client's one HTTP seam: auth, redirects (never carrying `Authorization` to another
 * origin, never downgrading https), bounded retries with backoff, and an idle timeout on headers
 * and body. Non-2xx responses are returned for the caller to map.
 */
export class Transport {
  readonly #options: TransportOptions;
  readonly auth: Authenticator;
  /** Browsers hide redirects from `redirect: "manual"`; there we let fetch follow them (it strips credentials cross-origin). */
  #redirect: RequestRedirect = "manual";

  constructor(options: TransportOptions) {
    this.#options = options;
    this.auth = new Authenticator({
      credentials: options.credentials,
      now: options.now,
      allowsPlainHttp: options.allowsPlainHttp,
      isProxied: (url) =>
        typeof options.proxy === "string" &&
        url.href.startsWith(options.proxy.endsWith("/") ? options.proxy : `${options.proxy}/`),
      send: async (url, init) =>
        (await this.#timed(url, init, `request ${url.origin}${url.pathname}`)).response,
    });
  }

  /**
   * Sends `request` to `url`, retrying what is safe to retry. `url` may be off the registry's origin
   * (an upload `Location`): it then goes without credentials, and never as plain http from an https
   * registry that is not configured plain-http.
   */
  async request(url: URL, request: RegistryRequest): Promise<Response> {
    const origin = this.#options.registryOrigin(request.registry);
    const target = this.#unproxied(url);
    if (
      origin.startsWith("https:") &&
      target.protocol === "http:" &&
      !this.#options.allowsPlainHttp(target.host)
    ) {
      // A TLS-terminating balancer that forgot the scheme: what would go in the clear is refused.
      throw new OciError(
        "REGISTRY_ERROR",
        `Cannot ${request.action}: ${request.registry} sent a plain http location (${target.origin}); refusing to send anything there in the clear`,
      );
    }
    const own = target.origin === origin;
    const method = request.method ?? "GET";
    const idempotent = method === "GET" || method === "HEAD";
    for (let attempt = 0; ; attempt++) {
      throwIfAborted(request.signal, request.action);
      const canRetry = idempotent && attempt < this.#options.retries;
      let response: Response;
      try {
        response = await this.#authorized(url, own ? origin : undefined, method, request);
      } catch (error) {
        const failure = asOciError(error, request.action);
        const transient = failure.code === "NETWORK" || failure.code === "TIMEOUT";
        if (!canRetry || !transient || request.signal?.aborted) throw failure;
        await sleep(this.#backoff(attempt), request.signal, request.action);
        continue;
      }
      if (!canRetry || !isRetriableStatus(response.status)) return response;
      const wait = retryAfterMs(response, this.#options.now()) ?? this.#backoff(attempt);
      if (wait > MAX_RETRY_AFTER_MS) return response;
      discard(response);
      await sleep(wait, request.signal, request.action);
    }
  }

  #backoff(attempt: number): number {
    return Math.min(BACKOFF_CAP_MS, this.#options.retryDelay * 2 ** attempt) * (0.5 + Math.random() / 2);
  }

  /**
   * One exchange with auth. `origin` is the registry's own origin when `url` is on it, else
   * undefined: then no credential is attached and no challenge answered. A GET or HEAD on the
   * registry's origin that is redirected elsewhere may carry an anonymous token there (`hop`).
   */
  async #authorized(
    url: URL,
    origin: string | undefined,
    method: string,
    request: RegistryRequest,
  ): Promise<Response> {
    const { registry, scopes, signal } = request;
    const headers = new Headers(request.headers);
    const sent = origin ? await this.auth.authorization(registry, origin, scopes, signal) : undefined;
    if (sent) headers.set("authorization", sent);
    const init = {
      method,
      headers,
      body: request.body ?? null,
      signal: signal ?? null,
      ...(request.body instanceof ReadableStream ? { duplex: "half" } : {}),
      ...bypassHttpCache(),
    };
    // Reads only: an anonymous token could never push, and a 303 turns the method into GET.
    const hop: HopAuthorization | undefined =
      origin !== undefined && (method === "GET" || method === "HEAD")
        ? (target) =>
            target.origin === origin
              ? Promise.resolve(undefined)
              : this.auth.redirectAuthorization(registry, origin, target.origin, scopes, signal)
        : undefined;
    const response = await this.#answered(url, origin, init, request, hop);
    const challenge = response.headers.get("www-authenticate");
    if (response.status !== 401 || !challenge || !resendable(request.body)) return response;
    // Only a 401 from the registry's own origin gets here (`#answered` refuses any other).
    const next = await this.auth.challenge(registry, origin as string, challenge, scopes, sent, signal);
    if (!next) return response;
    discard(response);
    headers.set("authorization", next);
    return this.#answered(url, origin, init, request, hop);
  }

  /**
   * One exchange, never answering a 401 from another origin than the registry's with the
   * registry's credentials: its challenge names a realm the registry did not choose. A redirect
   * target's Bearer challenge (`hop` given) is answered anonymously, as Docker and containerd do
   * (registry.k8s.io redirects to regional pkg.dev hosts that want a token even for public images),
   * and the request is sent again straight to that target; anything else from another origin (Basic,
   * an upload location elsewhere, a refused anonymous token) is UNAUTHORIZED.
   */
  async #answered(
    url: URL,
    origin: string | undefined,
    init: RequestInit,
    request: RegistryRequest,
    hop?: HopAuthorization,
  ): Promise<Response> {
    const { response, from, sent } = await this.#timed(url, init, request.action, hop);
    if (response.status !== 401 || (origin !== undefined && from.origin === origin)) return response;
    const challenge = response.headers.get("www-authenticate");
    discard(response);
    const own = this.#options.registryOrigin(request.registry);
    if (hop && origin !== undefined && challenge) {
      const next = await this.auth.redirectChallenge(
        request.registry,
        origin,
        from.origin,
        challenge,
        request.scopes,
        sent,
        request.signal,
      );
      if (next) {
        // Replaces whatever went to the registry: only the target's anonymous token goes there.
        const headers = new Headers(init.headers);
        headers.set("authorization", next);
        const again = await this.#timed(from, { ...init, headers }, request.action, hop);
        if (again.response.status !== 401) return again.response;
        discard(again.response);
        throw new OciError(
          "UNAUTHORIZED",
          `Cannot ${request.action}: ${from.origin}, where ${request.registry} redirects, refuses anonymous access, and the credentials for ${request.registry} are sent only to ${own}`,
          { status: 401 },
        );
      }
    }
    throw new OciError(
      "UNAUTHORIZED",
      `Cannot ${request.action}: ${from.origin} asks for credentials, but those for ${request.registry} are sent only to ${own}`,
      { status: 401 },
    );
  }

  /**
   * One exchange (following redirects) under the idle timeout, linked to the caller's signal.
   * `from` is the URL that answered, proxy mapping undone; `sent` what `hop` gave that last hop.
   */
  async #timed(
    url: URL,
    init: RequestInit,
    action: string,
    hop?: HopAuthorization,
  ): Promise<{ response: Response; from: URL; sent?: string | undefined }> {
    const timeout = new AbortController();
    const signal = init.signal ? AbortSignal.any([init.signal, timeout.signal]) : timeout.signal;
    const ms = this.#options.timeoutMs;
    const expire = () =>
      timeout.abort(new OciError("TIMEOUT", `Cannot ${action}: no response for ${ms / 1000} s`));
    let timer = setTimeout(expire, ms);
    let answered = false;
    // A streamed upload can take longer than the timeout: the clock runs from its last byte moved.
    const upload =
      init.body instanceof ReadableStream
        ? init.body.pipeThrough(
            new TransformStream<Uint8Array, Uint8Array>({
              transform(chunk, controller) {
                if (!answered) {
                  clearTimeout(timer);
                  timer = setTimeout(expire, ms);
                }
                controller.enqueue(chunk);
              },
            }),
          )
        : init.body;
    let response: Response;
    let from: URL;
    let sent: string | undefined;
    try {
      ({ response, from, sent } = await this.#follow(url, { ...init, body: upload, signal }, hop));
    } catch (error) {
      throw signal.aborted ? abortError(action, signal.reason) : asOciError(error, action);
    } finally {
      answered = true;
      clearTimeout(timer);
    }
    if (!response.body) return { response, from, sent };
    const body = withIdleTimeout(response.body, ms, action, (error) => timeout.abort(error));
    const timed = new Response(body, {
      status: response.status,
      statusText: response.statusText,
      headers: response.headers,
    });
    return { response: timed, from, sent };
  }

  #unproxied(url: URL): URL {
    return unproxy(this.#options.proxy, url, (host) =>
      this.#options.allowsPlainHttp(host) ? "http:" : "https:",
    );
  }

  /** Where a response that fetch may have followed redirects for came from. */
  #source(response: Response, current: URL): URL {
    return response.redirected && response.url ? this.#unproxied(new URL(response.url)) : current;
  }

  /**
   * Sends a streamed body (an upload PATCH) once, a redirect refused: a stream cannot be sent twice.
   * Redirects are errors for fetch itself, and the request has no window, as the fetch standard
   * then sends the request as it is: otherwise fetch clones it to replay on a redirect, and the
   * clone's unread half of the teed body holds every byte sent (nodejs/undici#4058, in Node 20, 22
   * and 24 here: a 256 MiB streamed PUT peaked at 320-333 MiB RSS, and at 90-107 MiB without the
   * clone, in half the time). Workers' fetch knows only "follow" and "manual": there, "manual".
   */
  async #sendStream(current: URL, init: RequestInit, url: URL): Promise<{ response: Response; from: URL }> {
    const redirected = (cause?: unknown) =>
      new OciError(
        "REGISTRY_ERROR",
        `Cannot send ${url.href}: the registry redirects a streamed upload, which cannot be sent twice`,
        cause ? { cause } : {},
      );
    const sent = applyProxy(this.#options.proxy, current);
    let response: Response;
    try {
      response = await this.#options.fetch(
        sent,
        ON_WORKERS ? { ...init, redirect: "manual" } : { ...init, redirect: "error", window: null },
      );
    } catch (error) {
      // undici: TypeError "fetch failed", cause "unexpected redirect".
      const cause = error instanceof Error ? error.cause : undefined;
      if (cause instanceof Error && /redirect/i.test(cause.message)) throw redirected(error);
      throw error;
    }
    if (REDIRECTS.has(response.status) && response.headers.has("location")) {
      discard(response);
      throw redirected();
    }
    return { response, from: current };
  }

  /**
   * Follows redirects by hand where fetch lets us (`sent`: the authorization `hop` gave the last
   * hop, if it went elsewhere); in browsers fetch follows them itself and no hop gets a token.
   */
  async #follow(
    url: URL,
    init: RequestInit,
    hop?: HopAuthorization,
  ): Promise<{ response: Response; from: URL; sent?: string | undefined }> {
    let current = this.#unproxied(url);
    let request = init;
    let given: string | undefined;
    if (init.body instanceof ReadableStream) return this.#sendStream(current, init, url);
    for (let hops = 0; ; hops++) {
      const sent = applyProxy(this.#options.proxy, current);
      const response = await this.#options.fetch(sent, { ...request, redirect: this.#redirect });
      if (response.type === "opaqueredirect") {
        this.#redirect = "follow";
        const followed = await this.#options.fetch(sent, { ...request, redirect: "follow" });
        return { response: followed, from: this.#source(followed, current) };
      }
      const location = response.headers.get("location");
      if (!REDIRECTS.has(response.status) || !location)
        return { response, from: this.#source(response, current), sent: given };
      discard(response);
      if (hops >= MAX_REDIRECTS) {
        throw new OciError(
          "REGISTRY_ERROR",
          `Cannot request ${url.href}: more than ${MAX_REDIRECTS} redirects`,
        );
      }
      const next = this.#unproxied(new URL(location, sent));
      if (next.protocol !== "https:" && next.protocol !== "http:") {
        throw new OciError("REGISTRY_ERROR", `Cannot follow a redirect to ${next.protocol} (${url.href})`);
      }
      if (
        current.protocol === "https:" &&
        next.protocol === "http:" &&
        !this.#options.allowsPlainHttp(next.host)
      ) {
        throw new OciError(
          "REGISTRY_ERROR",
          `Cannot follow a redirect from https to plain http (${next.origin})`,
        );
      }
      const headers = new Headers(request.headers);
      if (next.origin !== current.origin) {
        headers.delete("authorization");
        given = await hop?.(next);
        if (given) headers.set("authorization", given);
      }
      request =
        response.status === 303
          ? { ...request, method: "GET", body: null, headers }
          : { ...request, headers };
      current = next;
    }
  }
}

/** The URL a proxied location stands for, so origin checks see the real hosts. */
function unproxy(proxy: ProxyOption | undefined, url: URL, scheme: (host: string) => string): URL {
  if (typeof proxy !== "string") return url;
  const base = proxy.endsWith("/") ? proxy : `${proxy}/`;
  if (!url.href.startsWith(base)) return url;
  const target = fromProxyPath(`/${url.href.slice(base.length)}`);
  return target ? new URL(`${scheme(target.host)}//${target.host}${target.path}`) : url;
}

function resendable(body: BodyInit | null | undefined): boolean {
  return !(body instanceof ReadableStream);
}
