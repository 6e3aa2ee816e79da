// Service definitions: the single source of truth for what a daemon serves. A definition names a
// service id and its methods (id, request schema, response schema); the client's call() and the
// server's register() take their types from it, so a request, a handler and a reply are checked
// end to end by the compiler and, on the wire, by the same zod schemas.
import type { z } from 'zod';
import type { Logger } from '../log.js';
import { ThreeFsError } from '../errors.js';

export interface MethodSpec {
  id: number;
  request: z.ZodType;
  response: z.ZodType;
}

/** One method of a defined service, carrying its service's id and name for routing and metrics. */
export interface Method<Req extends z.ZodType = z.ZodType, Res extends z.ZodType = z.ZodType> {
  readonly serviceId: number;
  readonly serviceName: string;
  readonly id: number;
  readonly name: string;
  readonly request: Req;
  readonly response: Res;
}

export interface Service<M extends Record<string, MethodSpec> = Record<string, MethodSpec>> {
  readonly id: number;
  readonly name: string;
  readonly methods: { readonly [K in keyof M]: Method<M[K]['request'], M[K]['response']> };
}

/** What a handler returns and a call resolves to: the body and, for bulk data, a raw payload. */
export interface Reply<Body> {
  body: Body;
  payload?: Buffer | undefined;
  /** The payload's CRC32C, when the handler has it: spares checksumming it again for the frame. */
  payloadCrc?: number | undefined;
}

/**
 * The connection a call arrived on, for state that lives as long as it does (a client's shared
 * memory registered with a storage server, say).
 */
export interface ConnectionScope {
  /** Unique within the server process. */
  readonly id: number;
  /**
   * The connection came through the unix socket listener, whose file only local processes with
   * the right to open it can reach (never over the network).
   */
  readonly local: boolean;
  /** Runs `cleanup` once when the connection closes (at once if it already has). */
  onClose(cleanup: () => void): void;
}

export interface CallContext {
  /** The peer's address, e.g. "127.0.0.1:40312" or "unix:/run/threefs.sock". */
  readonly peer: string;
  readonly connection: ConnectionScope;
  readonly requestId: number;
  /** The raw payload segment of the request, if the caller sent one. */
  readonly payload: Buffer | undefined;
  /**
   * CRC32C of the payload (0 without one), derived from the frame's data CRC, which the transport
   * verified against the bytes received: a handler checking a checksum need not read them again.
   */
  readonly payloadCrc: number;
  /** Milliseconds since the epoch by which the caller stops waiting, if it set a deadline. */
  readonly deadline: number | undefined;
  /** Aborted when the deadline passes, the caller cancels, or the connection closes. */
  readonly signal: AbortSignal;
  /** The server's logger with this request's id, service and method. */
  readonly log: Logger;
}

export type Handler<M extends Method> = (
  request: z.output<M['request']>,
  ctx: CallContext,
) => Promise<Reply<z.input<M['response']>>> | Reply<z.input<M['response']>>;

export type Handlers<S extends Service> = { [K in keyof S['methods']]: Handler<S['methods'][K]> };

function assertId(what: string, id: number): void {
  if (!Number.isInteger(id) || id < 1 || id > 0xffff) {
    throw new ThreeFsError('INTERNAL', `${what} id must be an integer in 1..65535, got ${id}`);
  }
}

/** Defines a service; ids are checked here so a clash is found at startup, not on the wire. */
export function defineService<const M extends Record<string, MethodSpec>>(definition: {
  id: number;
  name: string;
  methods: M;
}): Service<M> {
  assertId(`service ${definition.name}`, definition.id);
  const seen = new Map<number, string>();
  const methods: Record<string, Method> = {};
  for (const [name, spec] of Object.entries(definition.methods)) {
    assertId(`method ${definition.name}.${name}`, spec.id);
    const clash = seen.get(spec.id);
    if (clash !== undefined) {
      throw new ThreeFsError(
        'INTERNAL',
        `service ${definition.name}: methods ${clash} and ${name} share id ${spec.id}`,
      );
    }
    seen.set(spec.id, name);
    methods[name] = Object.freeze({
      serviceId: definition.id,
      serviceName: definition.name,
      id: spec.id,
      name,
      request: spec.request,
      response: spec.response,
    });
  }
  return Object.freeze({
    id: definition.id,
    name: definition.name,
    methods: Object.freeze(methods) as Service<M>['methods'],
  });
}
