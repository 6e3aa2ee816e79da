// One error type crosses every boundary: thrown in a daemon, carried by an RPC error reply, and
// rethrown in the caller with the same code. Codes are strings so logs and CLI output read well;
// add new ones at the end, never rename (peers of an older release must still understand them).

export const StatusCodes = [
  // generic
  'INVALID_ARGUMENT', // the request is malformed or fails validation; retrying will not help
  'NOT_FOUND',
  'ALREADY_EXISTS',
  'PERMISSION_DENIED',
  'FAILED_PRECONDITION', // the system is not in a state that allows the operation
  'RESOURCE_EXHAUSTED', // a limit was hit: queue, quota, size
  'DEADLINE_EXCEEDED',
  'CANCELLED',
  'UNAVAILABLE', // a peer could not be reached or is shutting down; retryable
  'UNIMPLEMENTED',
  'INTERNAL', // a bug: an invariant failed
  // RPC layer
  'PROTOCOL_ERROR', // a frame or handshake broke the wire protocol
  'HANDSHAKE_REFUSED', // wrong cluster id, token or protocol version
  // KV store
  'TXN_CONFLICT', // serializable transaction lost a conflict; the retry loop handles it
  'TXN_TOO_LARGE',
  'TXN_TOO_OLD',
  // cluster and storage
  'NOT_PRIMARY', // this mgmtd is not the primary; details.primary names the one to ask
  'ROUTING_VERSION_MISMATCH',
  'CHAIN_VERSION_MISMATCH',
  'NOT_COMMITTED', // CRAQ: the replica holds a pending version; read again or relax
  'CHECKSUM_MISMATCH',
  'NO_SPACE',
  // POSIX errno names from the metadata service, mapped 1:1 to errno by the FUSE layer
  'ENOENT',
  'EEXIST',
  'ENOTEMPTY',
  'EISDIR',
  'ENOTDIR',
  'EACCES',
  'EPERM',
  'EXDEV',
  'EDQUOT',
  'ENAMETOOLONG',
  'ELOOP',
  'EINVAL',
  'ENOSPC',
  'EBADF',
  'EFBIG',
  'EMLINK',
] as const;

export type StatusCode = (typeof StatusCodes)[number];

const retryableCodes: ReadonlySet<StatusCode> = new Set<StatusCode>([
  'UNAVAILABLE',
  'DEADLINE_EXCEEDED',
  'TXN_CONFLICT',
  'NOT_PRIMARY',
  'ROUTING_VERSION_MISMATCH',
  'CHAIN_VERSION_MISMATCH',
  'NOT_COMMITTED',
]);

export class ThreeFsError extends Error {
  override name = 'ThreeFsError';
  readonly code: StatusCode;
  readonly details: Record<string, unknown> | undefined;

  constructor(code: StatusCode, message: string, details?: Record<string, unknown>) {
    // A POSIX code is an answer (no such entry, it exists, not empty), not a fault: its stack
    // says nothing, and capturing one costs more than the lookup that found the answer.
    const stackTraceLimit = Error.stackTraceLimit;
    if (isErrnoCode(code)) Error.stackTraceLimit = 0;
    super(message);
    Error.stackTraceLimit = stackTraceLimit;
    this.code = code;
    this.details = details;
  }

  /** Whether a caller may retry the same request, possibly after refreshing routing. */
  get retryable(): boolean {
    return retryableCodes.has(this.code);
  }
}

/** The POSIX codes (the only ones spelled E...): namespace answers, passed on as errno. */
function isErrnoCode(code: StatusCode): boolean {
  return code.charCodeAt(0) === 0x45; // 'E'
}

/** Whether a status code (as carried in per-item results) may be retried. */
export function isRetryableCode(code: string): boolean {
  return isStatusCode(code) && retryableCodes.has(code);
}

export function isStatusCode(value: unknown): value is StatusCode {
  return typeof value === 'string' && (StatusCodes as readonly string[]).includes(value);
}

/** Whether an error (ours or not) carries the given code. */
export function hasCode(err: unknown, code: StatusCode): boolean {
  return err instanceof ThreeFsError && err.code === code;
}
