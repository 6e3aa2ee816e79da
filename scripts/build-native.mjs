// Builds native/ with node-gyp against the headers of the Node that runs this script. It never
// downloads headers: many storage nodes have no internet, and neither does CI.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const nodedir =
  process.env.npm_config_nodedir || path.resolve(path.dirname(process.execPath), '..');
const header = path.join(nodedir, 'include', 'node', 'node_api.h');
if (!existsSync(header)) {
  console.error(
    `threefs: Node headers not found at ${header}.\n` +
      'Install the headers that match this Node (Debian: apt-get install libnode-dev or nodejs-dev),\n' +
      'or set npm_config_nodedir to the prefix that holds include/node.',
  );
  process.exit(1);
}

// npm puts its bundled node-gyp on PATH for lifecycle scripts and names it in npm_config_node_gyp.
const gyp = process.env.npm_config_node_gyp;
const [command, prefixArgs] = gyp ? [process.execPath, [gyp]] : ['node-gyp', []];
const result = spawnSync(
  command,
  [...prefixArgs, 'rebuild', `--nodedir=${nodedir}`, '--jobs=max', '--directory=native'],
  { cwd: root, stdio: 'inherit', env: { ...process.env, npm_config_nodedir: nodedir } },
);
if (result.error) {
  console.error(`threefs: could not run node-gyp: ${result.error.message}`);
  process.exit(1);
}
process.exit(result.status ?? 1);
