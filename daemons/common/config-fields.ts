// Config fields every daemon shares, defined once so their names, defaults and help read the
// same everywhere (mgmtd, meta, storage, fuse).
import { z } from 'zod';

/** A duration in milliseconds with its default and help text. */
export const durationMs = (value: number, description: string) =>
  z.number().int().positive().default(value).describe(description);

export const clusterFields = {
  clusterId: z.string().min(1).default('threefs').describe('cluster id every peer must present'),
  token: z.string().default('').describe('shared cluster token; empty = none'),
};

export const mgmtdAddresses = z
  .array(z.string().min(1))
  .min(1)
  .describe('mgmtd addresses (host:port)');

const port = (value: number, description: string) =>
  z.number().int().min(0).max(65_535).default(value).describe(description);

/** Where a daemon serves RPC, and what address peers should dial. */
export const listenSchema = (defaultPort: number) =>
  z
    .object({
      host: z.string().default('127.0.0.1').describe('RPC listen address'),
      port: port(defaultPort, 'RPC port (0 = any free port)'),
      advertise: z
        .string()
        .default('')
        .describe('host:port peers dial; empty = the listen address'),
    })
    .prefault({});

/**
 * A unix socket beside the TCP listener for clients on this host (advertised in routing as the
 * node's localAddress): loopback TCP costs each call a trip through the TCP stack on both sides.
 */
export const localSocketField = (description: string) =>
  z.string().max(100).default('').describe(`${description} (empty = none)`);

/** Where a daemon serves /metrics and /healthz. */
export const statusSchema = (defaultPort: number) =>
  z
    .object({
      host: z.string().default('127.0.0.1').describe('/metrics and /healthz listen address'),
      port: port(defaultPort, '/metrics and /healthz port (0 = any free port)'),
    })
    .prefault({});
