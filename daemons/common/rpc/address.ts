// RPC addresses as strings: "host:port" for TCP, "unix:/path" (or an absolute path) for a unix socket.
import { ThreeFsError } from '../errors.js';

export type RpcAddress =
  { kind: 'tcp'; host: string; port: number } | { kind: 'unix'; path: string };

export function parseAddress(text: string): RpcAddress {
  if (text.startsWith('unix:')) {
    const path = text.slice('unix:'.length);
    if (path === '')
      throw new ThreeFsError('INVALID_ARGUMENT', `address '${text}' has no socket path`);
    return { kind: 'unix', path };
  }
  if (text.startsWith('/')) return { kind: 'unix', path: text };
  const colon = text.lastIndexOf(':');
  const host = text.slice(0, colon).replace(/^\[(.*)\]$/, '$1');
  const port = Number(text.slice(colon + 1));
  if (colon <= 0 || host === '' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw new ThreeFsError('INVALID_ARGUMENT', `address '${text}' is not host:port or unix:/path`);
  }
  return { kind: 'tcp', host, port };
}

export function formatAddress(address: RpcAddress): string {
  if (address.kind === 'unix') return `unix:${address.path}`;
  return address.host.includes(':')
    ? `[${address.host}]:${address.port}`
    : `${address.host}:${address.port}`;
}
