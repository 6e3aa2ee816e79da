// Benchmark dispatcher: `npm run bench -- rpc` runs the named benchmarks, no names runs them all.
// Each benchmark is a module with a default `run()`; add new ones to the map.
const benchmarks: Record<string, () => Promise<{ run: () => Promise<unknown> }>> = {
  rpc: () => import('./rpc.js'),
  kv: () => import('./kv.js'),
  placement: () => import('./placement.js'),
  engine: () => import('./engine.js'),
  storage: () => import('./storage.js'),
  mount: () => import('./mount.js'),
  meta: () => import('./meta.js'),
  'fuse-dd': () => import('./fuse-dd.js'),
  usrbio: () => import('./usrbio.js'),
};

const names = process.argv.slice(2);
const unknown = names.filter((name) => !(name in benchmarks));
if (unknown.length > 0) {
  console.error(
    `unknown benchmark(s): ${unknown.join(', ')}; known: ${Object.keys(benchmarks).join(', ')}`,
  );
  process.exit(2);
}
for (const name of names.length > 0 ? names : Object.keys(benchmarks)) {
  console.log(`=== bench ${name}`);
  const load = benchmarks[name];
  if (load === undefined) throw new Error(`benchmark ${name} vanished`);
  await (await load()).run();
}
