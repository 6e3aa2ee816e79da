import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { z } from 'zod';
import {
  ConfigError,
  describeConfig,
  formatConfigHelp,
  loadConfig,
} from '../../daemons/common/config.js';

const schema = z.object({
  listen: z
    .object({
      host: z.string().default('127.0.0.1').describe('address to bind'),
      port: z.number().int().min(0).max(65535).default(9000),
    })
    .prefault({}),
  heartbeatIntervalMs: z.number().int().positive().default(10_000),
  clusterId: z.string().default('threefs'),
  verbose: z.boolean().default(false),
  mode: z.enum(['embedded', 'fdb']).default('embedded'),
});

function tomlFile(text: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'threefs-config-'));
  const file = path.join(dir, 'daemon.toml');
  writeFileSync(file, text);
  return file;
}

describe('config', () => {
  it('takes every default when no source is given', () => {
    assert.deepEqual(loadConfig(schema), {
      listen: { host: '127.0.0.1', port: 9000 },
      heartbeatIntervalMs: 10_000,
      clusterId: 'threefs',
      verbose: false,
      mode: 'embedded',
    });
  });

  it('layers file < env < --set', () => {
    const file = tomlFile('heartbeatIntervalMs = 500\n[listen]\nport = 7000\nhost = "0.0.0.0"\n');
    const config = loadConfig(schema, {
      file,
      envPrefix: 'THREEFS_TEST_',
      env: {
        THREEFS_TEST_LISTEN__PORT: '7001',
        THREEFS_TEST_CLUSTER_ID: '1234',
        THREEFS_TEST_VERBOSE: 'true',
      },
      overrides: ['listen.port=7002', 'mode=fdb'],
    });
    assert.equal(config.heartbeatIntervalMs, 500);
    assert.equal(config.listen.host, '0.0.0.0');
    assert.equal(config.listen.port, 7002);
    assert.equal(config.clusterId, '1234', 'a string key keeps numeric-looking text as a string');
    assert.equal(config.verbose, true);
    assert.equal(config.mode, 'fdb');
  });

  it('names the key and the source of a bad value', () => {
    assert.throws(
      () => loadConfig(schema, { envPrefix: 'X_', env: { X_LISTEN__PORT: 'eighty' } }),
      (err: Error) =>
        err instanceof ConfigError && /X_LISTEN__PORT.*not a number/.test(err.message),
    );
    assert.throws(
      () => loadConfig(schema, { overrides: ['listen.port=70000'] }),
      (err: Error) => err instanceof ConfigError && /listen\.port/.test(err.message),
    );
    assert.throws(() => loadConfig(schema, { overrides: ['nope=1'] }), /unknown key 'nope'/);
    assert.throws(() => loadConfig(schema, { overrides: ['novalue'] }), /expected key=value/);
    assert.throws(
      () => loadConfig(schema, { file: tomlFile('mode = "raid"') }),
      (err: Error) => /mode/.test(err.message) && /daemon\.toml/.test(err.message),
    );
    assert.throws(() => loadConfig(schema, { file: tomlFile('this is [not toml') }), ConfigError);
    assert.throws(() => loadConfig(schema, { file: '/nonexistent/threefs.toml' }), /ENOENT/);
  });

  it('documents every key with its env name and default', () => {
    const keys = describeConfig(schema, 'THREEFS_MGMTD_');
    const port = keys.find((key) => key.path === 'listen.port');
    assert.deepEqual(port, {
      path: 'listen.port',
      env: 'THREEFS_MGMTD_LISTEN__PORT',
      type: 'number',
      defaultValue: 9000,
      description: undefined,
    });
    assert.equal(keys.length, 6);
    const help = formatConfigHelp(schema, 'THREEFS_MGMTD_');
    assert.match(
      help,
      /listen\.host \(string, default "127\.0\.0\.1", env THREEFS_MGMTD_LISTEN__HOST\) {2}address to bind/,
    );
    assert.match(help, /mode \(embedded\|fdb/);
  });
});
