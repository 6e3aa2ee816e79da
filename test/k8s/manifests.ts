// Small valid threefs.io objects that the Kubernetes API tests change in one place per table row.

export type Obj = Record<string, unknown>;

export function clone<T>(value: T): T {
  return structuredClone(value);
}

/** Sets a dotted path (`spec.storage.nodes.0.name`) in a copy of obj; undefined deletes the key. */
export function withValue(obj: Obj, dotted: string, value: unknown): Obj {
  const copy = clone(obj);
  const keys = dotted.split('.');
  let node: Record<string, unknown> = copy;
  for (const key of keys.slice(0, -1)) {
    if (typeof node[key] !== 'object' || node[key] === null)
      node[key] = /^\d+$/.test(key) ? [] : {};
    node = node[key] as Record<string, unknown>;
  }
  const last = keys[keys.length - 1] as string;
  if (value === undefined) delete node[last];
  else node[last] = value;
  return copy;
}

export function cluster(name: string, namespace: string, spec: Obj = {}): Obj {
  return {
    apiVersion: 'threefs.io/v1alpha1',
    kind: 'ThreeFSCluster',
    metadata: { name, namespace },
    spec: { version: '0.1.0', storage: { directories: ['/var/lib/threefs/disk0'] }, ...spec },
  };
}

export function storageTarget(name: string, namespace: string): Obj {
  return {
    apiVersion: 'threefs.io/v1alpha1',
    kind: 'StorageTarget',
    metadata: { name, namespace },
    spec: {
      cluster: 'demo',
      node: 'node-a',
      disk: '/dev/nvme0n1',
      diskIndex: 0,
      targetId: 101,
      chainId: 1,
    },
  };
}

export function storageChain(name: string, namespace: string): Obj {
  return {
    apiVersion: 'threefs.io/v1alpha1',
    kind: 'StorageChain',
    metadata: { name, namespace },
    spec: { cluster: 'demo', chainId: 1, targets: [101, 201, 301] },
  };
}
