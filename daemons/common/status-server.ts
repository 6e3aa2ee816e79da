// The HTTP side door every daemon opens: Prometheus metrics on /metrics and liveness on /healthz.
// It never serves file-system traffic, so it stays small and has no routing framework.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { collectDefaultMetrics, Registry } from 'prom-client';

export interface Health {
  ok: boolean;
  detail?: Record<string, unknown>;
}

export interface StatusServerOptions {
  host: string;
  port: number;
  registry: Registry;
  health: () => Health | Promise<Health>;
}

export interface StatusServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** A registry with Node's process metrics, labelled with the daemon's role. */
export function createMetricsRegistry(role: string): Registry {
  const registry = new Registry();
  registry.setDefaultLabels({ role });
  collectDefaultMetrics({ register: registry, prefix: 'threefs_' });
  return registry;
}

export async function startStatusServer(options: StatusServerOptions): Promise<StatusServer> {
  const server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const reply = (status: number, type: string, body: string) => {
      res.writeHead(status, { 'content-type': type });
      res.end(body);
    };
    if (req.method !== 'GET') return reply(405, 'text/plain', 'method not allowed\n');
    if (path === '/metrics') {
      options.registry.metrics().then(
        (text) => reply(200, options.registry.contentType, text),
        (err: Error) => reply(500, 'text/plain', `metrics failed: ${err.message}\n`),
      );
      return;
    }
    if (path === '/healthz') {
      Promise.resolve()
        .then(options.health)
        .then(
          (health) => reply(health.ok ? 200 : 503, 'application/json', JSON.stringify(health)),
          (err: Error) =>
            reply(503, 'application/json', JSON.stringify({ ok: false, error: err.message })),
        );
      return;
    }
    reply(404, 'text/plain', 'not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  return {
    server,
    url: `http://${options.host}:${address.port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
