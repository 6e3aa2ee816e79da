// The whole RPC suite again on the net.Socket transport (the default is native), in a child
// process so the environment variable selects the transport for every server and client.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const self = path.basename(fileURLToPath(import.meta.url));

describe('RPC suite on the node transport', () => {
  it('passes every RPC test file with THREEFS_RPC_TRANSPORT=node', () => {
    const files = readdirSync(here)
      .filter((name) => name.endsWith('.test.js') && name !== self)
      .filter((name) => name !== 'native-transport.test.js')
      .map((name) => path.join(here, name));
    assert.ok(files.length >= 7, `found the suite: ${files.join(', ')}`);
    const run = spawnSync(
      process.execPath,
      ['--test', '--test-concurrency=1', '--test-reporter=dot', ...files],
      {
        encoding: 'utf8',
        timeout: 90_000,
        env: { ...process.env, THREEFS_RPC_TRANSPORT: 'node' },
      },
    );
    assert.equal(run.status, 0, `node-transport run failed:\n${run.stdout}\n${run.stderr}`);
  });
});
