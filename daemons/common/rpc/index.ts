// The RPC layer's public surface: define services, serve them, call them.
export { parseAddress, formatAddress, type RpcAddress } from './address.js';
export { type BackoffPolicy, DEFAULT_BACKOFF } from './backoff.js';
export { RpcClient, type RpcClientOptions, type CallOptions, CLIENT_DEFAULTS } from './client.js';
export { RpcClientPool, type RpcClientPoolOptions } from './client-pool.js';
export { CoreService, coreHandlers } from './core-service.js';
export { DEFAULT_MAX_FRAME_BYTES, PROTOCOL_VERSION } from './frame.js';
export { RpcServer, type RpcServerOptions, SERVER_DEFAULTS } from './server.js';
export {
  defineService,
  type CallContext,
  type ConnectionScope,
  type Handler,
  type Handlers,
  type Method,
  type Reply,
  type Service,
} from './service.js';
