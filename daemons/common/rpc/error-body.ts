// The body of an error frame: a ThreeFsError's code, message and details, so the caller rethrows
// the same error. A code from a newer peer that we do not know is kept in details, never dropped.
import { z } from 'zod';
import { isStatusCode, ThreeFsError } from '../errors.js';
import { decodeRaw, encodeBody } from './body-codec.js';

const ErrorBody = z.object({
  code: z.string(),
  message: z.string().default(''),
  details: z.record(z.string(), z.unknown()).optional(),
});

export function encodeErrorBody(err: ThreeFsError): Buffer {
  try {
    return encodeBody({ code: err.code, message: err.message, details: err.details });
  } catch {
    // Details that cannot be encoded (functions, cycles) must not lose the error itself.
    return encodeBody({ code: err.code, message: err.message });
  }
}

/** Turns a received error body into the ThreeFsError to throw; a garbled body is PROTOCOL_ERROR. */
export function decodeErrorBody(bytes: Buffer): ThreeFsError {
  let raw: unknown;
  try {
    raw = decodeRaw(bytes);
  } catch (err) {
    return new ThreeFsError(
      'PROTOCOL_ERROR',
      `error reply is not valid: ${(err as Error).message}`,
    );
  }
  const parsed = ErrorBody.safeParse(raw);
  if (!parsed.success) return new ThreeFsError('PROTOCOL_ERROR', 'error reply has no valid code');
  const { code, message, details } = parsed.data;
  if (isStatusCode(code)) return new ThreeFsError(code, message, details);
  return new ThreeFsError('INTERNAL', message, { ...details, unknownCode: code });
}
