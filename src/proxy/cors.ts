/** Request headers a browser may send through the proxy (Authorization must be listed by name). */
export const ALLOW_HEADERS = "authorization, range, accept, content-type, content-range, if-none-match";
export const ALLOW_METHODS = "GET, HEAD, POST, PUT, PATCH, DELETE";
/** Response headers the registry protocol needs a page to read. */
export const EXPOSE_HEADERS = [
  "www-authenticate",
  "docker-content-digest",
  "docker-upload-uuid",
  "content-range",
  "content-length",
  "link",
  "location",
  "range",
  "retry-after",
].join(", ");

/** The `Access-Control-Allow-Origin` value for a request's origin, or undefined when it is not allowed. */
export function allowedOrigin(origins: "*" | readonly string[], origin: string | null): string | undefined {
  if (origin === null) return undefined;
  if (origins === "*") return "*";
  return origins.includes(origin) ? origin : undefined;
}

/** Adds the CORS response headers for an allowed origin. No credentials mode: cookies never cross. */
export function addCorsHeaders(headers: Headers, origin: string): void {
  headers.set("access-control-allow-origin", origin);
  headers.set("access-control-expose-headers", EXPOSE_HEADERS);
  if (origin !== "*") headers.append("vary", "Origin");
}

/** The answer to a preflight `OPTIONS` from an allowed origin. */
export function preflight(origin: string): Response {
  const headers = new Headers({
    "access-control-allow-methods": ALLOW_METHODS,
    "access-control-allow-headers": ALLOW_HEADERS,
    "access-control-max-age": "86400",
  });
  addCorsHeaders(headers, origin);
  return new Response(null, { status: 204, headers });
}
