// The conformance suite on the embedded engine (LMDB), which is always present.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after } from 'node:test';
import { kvConfig } from '../../../daemons/common/kv/config.js';
import { conformanceSuite } from './conformance.js';

const root = mkdtempSync(path.join(tmpdir(), 'threefs-kv-conformance-'));
after(() => rmSync(root, { recursive: true, force: true }));
let basePath: string | undefined;
let count = 0;

conformanceSuite({
  name: 'embedded (LMDB)',
  skip: false,
  config(input, fresh = false) {
    // Every fresh config gets its own directory; the others share the suite's first one, which
    // is also what the child processes open.
    if (fresh || basePath === undefined) {
      const dir = path.join(root, `store-${count++}`);
      if (basePath === undefined) basePath = dir;
      return kvConfig({ ...input, engine: 'embedded', path: dir });
    }
    return kvConfig({ ...input, engine: 'embedded', path: basePath });
  },
});
