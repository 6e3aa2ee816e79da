// Loads a compiled addon from native/build. A missing build is a setup problem, so the error says
// how to fix it instead of surfacing a bare "Cannot find module".
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);

/** The package root: two levels up from daemons/common, whether running from source or dist/. */
export const packageRoot = (() => {
  const here = path.dirname(fileURLToPath(import.meta.url));
  const up = path.resolve(here, '..', '..');
  return path.basename(up) === 'dist' ? path.dirname(up) : up;
})();

export function loadAddon<T>(name: string): T {
  const file = path.join(packageRoot, 'native', 'build', 'Release', `${name}.node`);
  try {
    return require(file) as T;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(
      `threefs native addon '${name}' could not be loaded from ${file}: ${reason}\n` +
        'Build it with `npm run build:native` (needs g++, make and the Node headers).',
    );
  }
}
