import { asOciError, OciError, type OciErrorCode } from "../errors.js";
import { readAtMost } from "../streams.js";

/** Reads a body up to `limit` bytes; more is refused with `code` before it is all read. */
export async function readCapped(
  response: Response,
  limit: number,
  code: OciErrorCode,
  action: string,
): Promise<Uint8Array> {
  const declared = Number(response.headers.get("content-length") ?? Number.NaN);
  if (declared > limit) {
    await response.body?.cancel().catch(() => {});
    throw new OciError(
      code,
      `Cannot ${action}: the response declares ${declared} bytes, over the ${limit}-byte limit`,
    );
  }
  if (!response.body) return new Uint8Array(0);
  const bytes = await readAtMost(response.body, limit);
  if (!bytes) throw new OciError(code, `Cannot ${action}: the response is over the ${limit}-byte limit`);
  return bytes;
}

const REGISTRY_CODES: Record<string, OciErrorCode> = {
  BLOB_UNKNOWN: "NOT_FOUND",
  MANIFEST_UNKNOWN: "NOT_FOUND",
  NAME_UNKNOWN: "NOT_FOUND",
  BLOB_UPLOAD_UNKNOWN: "NOT_FOUND",
  UNAUTHORIZED: "UNAUTHORIZED",
  DENIED: "DENIED",
  TOOMANYREQUESTS: "RATE_LIMITED",
  MANIFEST_INVALID: "MANIFEST_INVALID",
  MANIFEST_BLOB_UNKNOWN: "MANIFEST_INVALID",
  MANIFEST_UNVERIFIED: "MANIFEST_INVALID",
  NAME_INVALID: "INVALID_REFERENCE",
  TAG_INVALID: "INVALID_REFERENCE",
  DIGEST_INVALID: "DIGEST_MISMATCH",
  SIZE_INVALID: "SIZE_MISMATCH",
};

function codeForStatus(status: number): OciErrorCode {
  if (status === 401) return "UNAUTHORIZED";
  if (status === 403) return "DENIED";
  if (status === 404) return "NOT_FOUND";
  if (status === 429) return "RATE_LIMITED";
  return "REGISTRY_ERROR";
}

const ADVICE: Partial<Record<OciErrorCode, string>> = {
  UNAUTHORIZED: "check the credentials for this registry",
  DENIED: "the credentials lack permission for this repository",
  NOT_FOUND: "check the repository name, tag or digest",
  RATE_LIMITED: "the registry is rate-limiting; wait and retry, or sign in",
};

/**
 * Turns a failed registry response into an `OciError`, mapping the distribution-spec error body
 * (`{"errors":[{"code":…,"message":…}]}`) onto our codes. Consumes the body.
 */
export async function responseError(response: Response, action: string): Promise<OciError> {
  let registryCode: string | undefined;
  let detail = "";
  try {
    const bytes = await readCapped(response, 64 * 1024, "REGISTRY_ERROR", action);
    const body = JSON.parse(new TextDecoder().decode(bytes)) as {
      errors?: { code?: string; message?: string }[];
    };
    const first = body.errors?.[0];
    if (first && typeof first.code === "string") {
      registryCode = first.code;
      detail = `${first.code}${first.message ? `: ${first.message}` : ""}`;
    }
  } catch {
    // not a registry error body
  }
  const code = (registryCode && REGISTRY_CODES[registryCode]) || codeForStatus(response.status);
  const advice = ADVICE[code];
  const reason = `the registry answered ${response.status}${detail ? ` (${detail})` : ""}`;
  return new OciError(code, `Cannot ${action}: ${reason}${advice ? `; ${advice}` : ""}`, {
    status: response.status,
  });
}

/** Seconds or an HTTP date in `Retry-After`, as milliseconds from now. */
export function retryAfterMs(response: Response, now: number): number | undefined {
  const value = response.headers.get("retry-after");
  if (value === null) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value) * 1000;
  const date = Date.parse(value);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** Cancels a response body we do not need, without letting a failure escape. */
export function discard(response: Response): void {
  response.body?.cancel().catch(() => {});
}

/**
 * Whether `fetch` here can stream a request body over HTTP/1.1. Node's can (`duplex: "half"`);
 * browsers stream request bodies only over HTTP/2 and reject them otherwise, so uploads there go
 * in bounded chunks instead.
 */
export function streamsRequestBodies(): boolean {
  return (
    typeof (globalThis as { process?: { versions?: { node?: unknown } } }).process?.versions?.node ===
    "string"
  );
}

/**
 * Wraps a body so that it errors with `TIMEOUT` when no chunk arrives for `ms` milliseconds;
 * `onTimeout` gets the error (to abort the underlying request).
 */
export function withIdleTimeout(
  body: ReadableStream<Uint8Array>,
  ms: number,
  what: string,
  onTimeout: (error: OciError) => void,
): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  // One watchdog per body, not a timer per chunk: it fires when a read has waited `ms` for data
  // (a slow consumer, between reads, never counts).
  let last = Date.now();
  let waiting = false;
  let watchdog: ReturnType<typeof setInterval> | undefined;
  const stop = () => {
    if (watchdog !== undefined) clearInterval(watchdog);
    watchdog = undefined;
  };
  return new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        // Started on the first read, so a body nobody reads holds no timer.
        watchdog ??= setInterval(
          () => {
            if (!waiting || Date.now() - last < ms) return;
            stop();
            const error = new OciError("TIMEOUT", `Cannot read ${what}: no data arrived for ${ms / 1000} s`);
            onTimeout(error);
            controller.error(error);
            reader.cancel(error).catch(() => {});
          },
          Math.max(10, Math.min(ms / 4, 1000)),
        );
        // Where timers can be unref'd (Node), the watchdog alone never keeps a process alive.
        (watchdog as { unref?: () => void }).unref?.();
        last = Date.now();
        waiting = true;
        try {
          const { done, value } = await reader.read();
          waiting = false;
          if (done) {
            stop();
            controller.close();
          } else controller.enqueue(value);
        } catch (error) {
          waiting = false;
          stop();
          controller.error(asOciError(error, `read ${what}`));
        }
      },
      cancel(reason) {
        stop();
        return reader.cancel(reason);
      },
    },
    { highWaterMark: 0 },
  );
}
