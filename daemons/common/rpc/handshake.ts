// The first frame on every connection: the client says which cluster it belongs to and, when the
// cluster has one, proves it holds the shared token. The protocol version travels in every frame
// header (see frame.ts). This keeps two clusters on one network apart and is where authenticated
// RPC will grow (fields are append-only, like every body).
import { createHash, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { ThreeFsError } from '../errors.js';

export const HandshakeRequest = z.object({
  clusterId: z.string().min(1).max(256),
  token: z.string().max(4096).optional(),
  /** Free text naming the caller in the server's logs, e.g. "meta-3". */
  clientName: z.string().max(256).default(''),
});
export type HandshakeRequest = z.output<typeof HandshakeRequest>;

export const HandshakeResponse = z.object({
  clusterId: z.string(),
  serverName: z.string().default(''),
});
export type HandshakeResponse = z.output<typeof HandshakeResponse>;

export interface ClusterIdentity {
  clusterId: string;
  /** When set, every peer must present the same token. */
  token?: string | undefined;
}

function tokensEqual(a: string, b: string): boolean {
  // Hash first: timingSafeEqual needs equal lengths, and the length must not leak either.
  const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest();
  return timingSafeEqual(digest(a), digest(b));
}

/** Server side: accepts the hello or throws HANDSHAKE_REFUSED with a message a human can act on. */
export function checkHandshake(server: ClusterIdentity, hello: HandshakeRequest): void {
  if (hello.clusterId !== server.clusterId) {
    throw new ThreeFsError(
      'HANDSHAKE_REFUSED',
      `cluster id mismatch: server is '${server.clusterId}', client sent '${hello.clusterId}'`,
    );
  }
  if (server.token === undefined || server.token === '') return;
  if (hello.token === undefined || hello.token === '') {
    throw new ThreeFsError(
      'HANDSHAKE_REFUSED',
      `cluster '${server.clusterId}' requires a token and the client sent none`,
    );
  }
  if (!tokensEqual(server.token, hello.token)) {
    throw new ThreeFsError('HANDSHAKE_REFUSED', `token mismatch for cluster '${server.clusterId}'`);
  }
}

/** Client side: the server must belong to the cluster we meant to reach. */
export function checkHandshakeReply(expectedClusterId: string, reply: HandshakeResponse): void {
  if (reply.clusterId !== expectedClusterId) {
    throw new ThreeFsError(
      'HANDSHAKE_REFUSED',
      `cluster id mismatch: client expects '${expectedClusterId}', server is '${reply.clusterId}'`,
    );
  }
}
