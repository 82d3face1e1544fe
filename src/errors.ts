/**
 * The stable error codes of oci-model-loader. Match on `error.code`, never on the message.
 */
export const ERROR_CODES = [
  "INVALID_REFERENCE",
  "INVALID_ARGUMENT",
  "UNAUTHORIZED",
  "DENIED",
  "NOT_FOUND",
  "MANIFEST_INVALID",
  "UNSUPPORTED_ARTIFACT",
  "DIGEST_MISMATCH",
  "SIZE_MISMATCH",
  "UNSAFE_ARCHIVE",
  "INVALID_SAFETENSORS",
  "UNSAFE_PICKLE",
  "INVALID_CHECKPOINT",
  "QUOTA_EXCEEDED",
  "STORAGE",
  "RATE_LIMITED",
  "REGISTRY_ERROR",
  "NETWORK",
  "TIMEOUT",
  "ABORTED",
  "GPU_LIMIT",
] as const;

/** One of `ERROR_CODES`: what went wrong, stable across releases (README.md says when each is thrown). */
export type OciErrorCode = (typeof ERROR_CODES)[number];

/** What an `OciError` carries besides its code and message. */
export interface OciErrorOptions {
  /** HTTP status of the response that caused the error, when there was one. */
  status?: number;
  /** What caused it: a fetch failure, a storage exception, a decoder's error. */
  cause?: unknown;
}

/**
 * The one error class of the library. `message` reads "Cannot <action>: <reason>" and says what to do.
 *
 * @example
 * ```ts
 * try { parseReference("Not A Ref") } catch (e) {
 *   if (e instanceof OciError && e.code === "INVALID_REFERENCE") console.error(e.message);
 * }
 * ```
 */
export class OciError extends Error {
  /** Always `"OciError"`. */
  override readonly name = "OciError";
  /** What went wrong: match on this. */
  readonly code: OciErrorCode;
  /** The HTTP status of the response that caused the error, when there was one. */
  readonly status: number | undefined;

  /**
   * @param code What went wrong.
   * @param message "Cannot <action>: <reason>", saying what to do.
   * @param options The HTTP status and the cause, when there are any.
   */
  constructor(code: OciErrorCode, message: string, options: OciErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = options.status;
  }
}

/**
 * True when `error` is an `OciError`, optionally with the given code.
 *
 * @param error Anything caught.
 * @param code When given, the code it must have.
 * @returns Whether `error` is an `OciError` (with `code`, when given).
 */
export function isOciError(error: unknown, code?: OciErrorCode): error is OciError {
  return error instanceof OciError && (code === undefined || error.code === code);
}

/**
 * Turns an abort reason into an `OciError`: `TIMEOUT` for a `TimeoutError`, `ABORTED` otherwise.
 * An `OciError` passes through unchanged.
 */
export function abortError(action: string, reason: unknown): OciError {
  if (reason instanceof OciError) return reason;
  const timedOut = reason instanceof DOMException && reason.name === "TimeoutError";
  return new OciError(
    timedOut ? "TIMEOUT" : "ABORTED",
    `Cannot ${action}: ${timedOut ? "it timed out" : "it was aborted"}`,
    { cause: reason },
  );
}

/** Throws an `ABORTED`/`TIMEOUT` `OciError` if `signal` is aborted. */
export function throwIfAborted(signal: AbortSignal | undefined, action: string): void {
  if (signal?.aborted) throw abortError(action, signal.reason);
}

/**
 * Turns anything thrown by fetch or a stream into an `OciError`: an `OciError` as is, aborts and
 * timeouts as `ABORTED`/`TIMEOUT`, anything else (a refused connection, a reset) as `NETWORK`.
 */
export function asOciError(error: unknown, action: string): OciError {
  if (error instanceof OciError) return error;
  if (error instanceof DOMException && (error.name === "AbortError" || error.name === "TimeoutError")) {
    return abortError(action, error);
  }
  const detail =
    error instanceof Error
      ? error.cause instanceof Error
        ? error.cause.message
        : error.message
      : String(error);
  return new OciError("NETWORK", `Cannot ${action}: the connection failed (${detail})`, { cause: error });
}

/** Waits for `promise`, but rejects with `ABORTED`/`TIMEOUT` as soon as `signal` aborts. */
export function untilAborted<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  action: string,
): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(abortError(action, signal.reason));
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abortError(action, signal.reason));
    signal.addEventListener("abort", onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener("abort", onAbort);
        resolve(value);
      },
      (error) => {
        signal.removeEventListener("abort", onAbort);
        reject(error);
      },
    );
  });
}
