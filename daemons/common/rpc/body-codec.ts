// Message bodies: plain objects encoded by field name with MessagePack (msgpackr), validated by a zod
// schema on decode. By-name encoding is what makes fields append-only: a zod object drops keys it
// does not know (an old peer ignores new fields) and `.default()` fills keys that are missing (a new
// peer reading an old message). Records and other msgpackr extensions stay off, so every body is
// standalone, standard MessagePack.
import { type Options, Packr } from 'msgpackr';
import type { z } from 'zod';
import { ThreeFsError } from '../errors.js';

// `skipValues` is supported by msgpackr but missing from its type definitions.
const options: Options & { skipValues: unknown[] } = {
  useRecords: false,
  moreTypes: false,
  // An absent optional field is left out of the map instead of becoming an extension type.
  skipValues: [undefined],
};
const packr = new Packr(options);

/** Encodes a body. The result may be a view into msgpackr's arena: send or copy it, never keep it. */
export function encodeBody(value: unknown): Buffer {
  try {
    return packr.pack(value);
  } catch (err) {
    throw new ThreeFsError('INVALID_ARGUMENT', `body cannot be encoded: ${(err as Error).message}`);
  }
}

/** Decodes MessagePack bytes without validation (for envelopes like handshakes and errors). */
export function decodeRaw(bytes: Buffer): unknown {
  if (bytes.length === 0) return undefined;
  try {
    return packr.unpack(bytes);
  } catch (err) {
    // RangeError from absurd nesting lands here too: bad input, never a crash.
    throw new ThreeFsError(
      'INVALID_ARGUMENT',
      `body is not valid MessagePack: ${(err as Error).message}`,
    );
  }
}

/** Formats zod issues as "field.path: message; ..." so the error names the field. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map(
      (issue) =>
        `${issue.path.length > 0 ? issue.path.map(String).join('.') : '<body>'}: ${issue.message}`,
    )
    .join('; ');
}

/** Decodes and validates a body; throws INVALID_ARGUMENT naming the bad field. */
export function decodeBody<S extends z.ZodType>(
  schema: S,
  bytes: Buffer,
  what: string,
): z.output<S> {
  const raw = decodeRaw(bytes);
  const result = schema.safeParse(raw);
  if (!result.success) {
    throw new ThreeFsError(
      'INVALID_ARGUMENT',
      `${what} failed validation: ${describeIssues(result.error)}`,
      {
        issues: result.error.issues.map((issue) => ({
          path: issue.path.map(String),
          message: issue.message,
        })),
      },
    );
  }
  return result.data;
}
