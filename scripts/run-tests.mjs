// Runs the compiled test files with Node's built-in runner. Node 20's `--test` takes no globs, so
// this finds the files. An optional argument keeps only files whose path contains it.
import { spawnSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const testRoot = path.join(root, 'dist', 'test');
const filter = process.argv[2];

function find(dir) {
  const found = [];
  for (const name of readdirSync(dir).sort()) {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) found.push(...find(full));
    else if (name.endsWith('.test.js')) found.push(full);
  }
  return found;
}

const files = find(testRoot).filter((file) => !filter || file.includes(filter));
if (files.length === 0) {
  console.error(`no test files under ${testRoot}${filter ? ` matching '${filter}'` : ''}`);
  process.exit(1);
}
const result = spawnSync(
  process.execPath,
  ['--enable-source-maps', '--test', '--test-concurrency=1', '--test-timeout=600000', ...files],
  { stdio: 'inherit', cwd: root },
);
process.exit(result.status ?? 1);
