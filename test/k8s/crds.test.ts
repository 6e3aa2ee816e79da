// The generated threefs.io CRDs against a real kube-apiserver (tier 1): they install, the examples
// are accepted, defaults are applied, bad specs are refused with a message naming the field,
// immutable fields stay put, status is its own subresource, and printer columns show.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { buildCrd, crdName } from '../../operator/api/crd.js';
import { allKinds } from '../../operator/api/kinds.js';
import { renderCrd } from '../../scripts/generate-crds.js';
import { startControlPlane, type ControlPlane } from './control-plane.js';
import { repoRoot } from './harness/testbin.js';
import { waitFor } from './harness/wait.js';
import { cluster, storageChain, storageTarget, withValue, type Obj } from './manifests.js';

const NS = 'threefs';

interface InvalidRow {
  name: string;
  object: Obj;
  /** Substrings the apiserver's message must contain: the field path first. */
  expect: string[];
}

const base = cluster('row', NS);
const invalidRows: InvalidRow[] = [
  {
    name: 'unknown metadata backend',
    object: withValue(base, 'spec.metadataStore.backend', 'Sqlite'),
    expect: ['spec.metadataStore.backend', 'Unsupported value'],
  },
  {
    name: 'negative mgmtd replicas',
    object: withValue(base, 'spec.mgmtd.replicas', -1),
    expect: ['spec.mgmtd.replicas', 'greater than or equal to 1'],
  },
  {
    name: 'zero meta replicas',
    object: withValue(base, 'spec.meta.replicas', 0),
    expect: ['spec.meta.replicas', 'greater than or equal to 1'],
  },
  {
    name: 'replication factor above the schema bound',
    object: withValue(base, 'spec.storage.replicationFactor', 6),
    expect: ['spec.storage.replicationFactor', 'less than or equal to 5'],
  },
  {
    name: 'replication factor above the listed node count',
    object: withValue(base, 'spec.storage', {
      replicationFactor: 3,
      nodes: [
        { name: 'node-a', devices: ['/dev/nvme0n1'] },
        { name: 'node-b', devices: ['/dev/nvme0n1'] },
      ],
    }),
    expect: ['spec.storage.replicationFactor', 'exceeds the number of storage nodes'],
  },
  {
    name: 'chunk size not a power of two',
    object: withValue(base, 'spec.storage.chunkSize', '3Mi'),
    expect: ['spec.storage.chunkSize', 'Unsupported value'],
  },
  {
    name: 'zero targets per disk',
    object: withValue(base, 'spec.storage.targetsPerDisk', 0),
    expect: ['spec.storage.targetsPerDisk'],
  },
  {
    name: 'negative stripe',
    object: withValue(base, 'spec.storage.stripe', -4),
    expect: ['spec.storage.stripe'],
  },
  {
    name: 'storage without any disk',
    object: withValue(base, 'spec.storage', { replicationFactor: 1 }),
    expect: ['spec.storage', 'storage needs disks'],
  },
  {
    name: 'storage node without devices or directories',
    object: withValue(base, 'spec.storage', { replicationFactor: 1, nodes: [{ name: 'node-a' }] }),
    expect: ['spec.storage.nodes[0]', 'at least one device or directory'],
  },
  {
    name: 'empty storage node list',
    object: withValue(base, 'spec.storage', { replicationFactor: 1, nodes: [] }),
    expect: ['spec.storage.nodes', 'at least 1 items'],
  },
  {
    name: 'relative storage directory',
    object: withValue(base, 'spec.storage.directories', ['var/lib/disk']),
    expect: ['spec.storage.directories[0]'],
  },
  {
    name: 'destructive cleanup without confirmation',
    object: withValue(base, 'spec.cleanupPolicy', { onDelete: 'DeleteData' }),
    expect: ['spec.cleanupPolicy.confirmation', 'yes-really-destroy-data'],
  },
  {
    name: 'destructive cleanup with a wrong confirmation',
    object: withValue(base, 'spec.cleanupPolicy', { onDelete: 'DeleteData', confirmation: 'yes' }),
    expect: ['spec.cleanupPolicy.confirmation', 'yes-really-destroy-data'],
  },
  {
    name: 'unknown cleanup policy',
    object: withValue(base, 'spec.cleanupPolicy.onDelete', 'Shred'),
    expect: ['spec.cleanupPolicy.onDelete', 'Unsupported value'],
  },
  {
    name: 'RDMA transport without RDMA resources',
    object: withValue(base, 'spec.network.transport', 'RDMA'),
    expect: ['spec.network.rdma', 'needs network.rdma.resourceNames'],
  },
  {
    name: 'unknown transport',
    object: withValue(base, 'spec.network.transport', 'UDP'),
    expect: ['spec.network.transport', 'Unsupported value'],
  },
  {
    name: 'existing FoundationDB without a cluster file',
    object: withValue(base, 'spec.metadataStore', { backend: 'ExistingFoundationDB' }),
    expect: ['spec.metadataStore.existingFoundationDB', 'needs metadataStore.existingFoundationDB'],
  },
  {
    name: 'cluster file from both a ConfigMap and a Secret',
    object: withValue(base, 'spec.metadataStore', {
      backend: 'ExistingFoundationDB',
      existingFoundationDB: {
        clusterFileConfigMap: { name: 'fdb' },
        clusterFileSecret: { name: 'fdb' },
      },
    }),
    expect: [
      'spec.metadataStore.existingFoundationDB',
      'exactly one of clusterFileConfigMap and clusterFileSecret',
    ],
  },
  {
    name: 'embedded store with three mgmtd replicas',
    object: withValue(base, 'spec.mgmtd.replicas', 3),
    expect: ['spec.metadataStore.backend', 'must be 1'],
  },
  {
    name: 'updates allowed to stop every replica',
    object: withValue(base, 'spec.updateStrategy.maxUnavailableStorageNodes', 3),
    expect: ['spec.updateStrategy.maxUnavailableStorageNodes', 'below storage.replicationFactor'],
  },
  {
    name: 'missing version',
    object: withValue(base, 'spec.version', undefined),
    expect: ['spec.version', 'Required value'],
  },
  {
    name: 'version not semver',
    object: withValue(base, 'spec.version', 'latest'),
    expect: ['spec.version', 'should match'],
  },
  {
    name: 'unknown image pull policy',
    object: withValue(base, 'spec.images.pullPolicy', 'Sometimes'),
    expect: ['spec.images.pullPolicy', 'Unsupported value'],
  },
  {
    name: 'unknown toleration operator',
    object: withValue(base, 'spec.storage.placement.tolerations', [
      { key: 'k', operator: 'Maybe' },
    ]),
    expect: ['spec.storage.placement.tolerations[0].operator', 'Unsupported value'],
  },
  {
    name: 'chain with a repeated target',
    object: withValue(storageChain('row', NS), 'spec.targets', [101, 201, 101]),
    expect: ['spec.targets', 'targets must be distinct'],
  },
  {
    name: 'chain longer than the replication bound',
    object: withValue(storageChain('row', NS), 'spec.targets', [1, 2, 3, 4, 5, 6]),
    expect: ['spec.targets', 'must have at most 5 items'],
  },
  {
    name: 'target id zero',
    object: withValue(storageTarget('row', NS), 'spec.targetId', 0),
    expect: ['spec.targetId', 'greater than or equal to 1'],
  },
  {
    name: 'target without a node',
    object: withValue(storageTarget('row', NS), 'spec.node', undefined),
    expect: ['spec.node', 'Required value'],
  },
];

interface UpdateRow {
  name: string;
  object: Obj;
  change: (o: Obj) => Obj;
  expect: string[];
}

const updateRows: UpdateRow[] = [
  {
    name: 'replication factor',
    object: cluster('imm-rf', NS),
    change: (o) => withValue(o, 'spec.storage.replicationFactor', 2),
    expect: ['spec.storage.replicationFactor', 'immutable'],
  },
  {
    name: 'chunk size',
    object: cluster('imm-chunk', NS),
    change: (o) => withValue(o, 'spec.storage.chunkSize', '4Mi'),
    expect: ['spec.storage.chunkSize', 'immutable'],
  },
  {
    name: 'metadata backend',
    object: cluster('imm-backend', NS),
    change: (o) =>
      withValue(o, 'spec.metadataStore', {
        backend: 'ExistingFoundationDB',
        existingFoundationDB: { clusterFileConfigMap: { name: 'fdb' } },
      }),
    expect: ['spec.metadataStore.backend', 'immutable'],
  },
  {
    name: 'CSI driver name',
    object: cluster('imm-csi', NS),
    change: (o) => withValue(o, 'spec.csi.driverName', 'other.threefs.io'),
    expect: ['spec.csi.driverName', 'immutable'],
  },
  {
    name: 'target id',
    object: storageTarget('imm-target', NS),
    change: (o) => withValue(o, 'spec.targetId', 102),
    expect: ['spec.targetId', 'immutable'],
  },
  {
    name: 'target node',
    object: storageTarget('imm-node', NS),
    change: (o) => withValue(o, 'spec.node', 'node-b'),
    expect: ['spec.node', 'immutable'],
  },
  {
    name: 'chain id',
    object: storageChain('imm-chain', NS),
    change: (o) => withValue(o, 'spec.chainId', 2),
    expect: ['spec.chainId', 'immutable'],
  },
];

describe('threefs.io CRDs on a real kube-apiserver', () => {
  let cp: ControlPlane;

  before(async () => {
    cp = await startControlPlane({ tier: 1 });
    await cp.kubectlOk(['apply', '--server-side', '-f', path.join(repoRoot(), 'crds')]);
    // Polled rather than `kubectl wait`, which fails at once (instead of waiting) when it looks
    // before the apiserver has written any status condition.
    const names = allKinds.map((k) => `crd/${crdName(k)}`);
    await waitFor(
      'the CRDs to be Established',
      async () => {
        const out = await cp.kubectlOk([
          'get',
          ...names,
          '-o',
          'jsonpath={range .items[*]}{.status.conditions[?(@.type=="Established")].status}{" "}{end}',
        ]);
        const states = out.trim().split(/\s+/);
        return states.length === names.length && states.every((s) => s === 'True')
          ? true
          : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200 },
    );
    await cp.kubectlOk(['create', 'namespace', NS]);
  });

  after(async () => {
    await cp?.stop();
  });

  it('installs the committed CRDs, which match the zod schemas', () => {
    for (const kind of allKinds) {
      const committed = readFileSync(
        path.join(repoRoot(), 'crds', `${crdName(kind)}.yaml`),
        'utf8',
      );
      assert.equal(
        committed,
        renderCrd(buildCrd(kind)),
        `crds/${crdName(kind)}.yaml is stale: run the generator`,
      );
    }
  });

  it('accepts both examples', async () => {
    for (const name of ['minimal-embedded.yaml', 'production-fdb-rdma.yaml']) {
      const out = await cp.kubectlOk([
        'apply',
        '--server-side',
        '-f',
        path.join(repoRoot(), 'examples', name),
      ]);
      assert.match(out, /serverside-applied/, name);
    }
    const prod = JSON.parse(
      await cp.kubectlOk(['get', 'threefscluster', 'prod', '-n', NS, '-o', 'json']),
    ) as Obj;
    const spec = prod.spec as { network: { transport: string }; storage: { chunkSize: string } };
    assert.equal(spec.network.transport, 'RDMA');
    assert.equal(spec.storage.chunkSize, '4Mi');
  });

  it('fills defaults from the schema', async () => {
    const created = JSON.parse(
      await cp.kubectlOk(['create', '-o', 'json', '-f', '-'], {
        input: JSON.stringify(cluster('defaults', NS)),
      }),
    ) as { spec: Record<string, Record<string, unknown>> };
    const { spec } = created;
    assert.equal(spec.storage?.replicationFactor, 3);
    assert.equal(spec.storage?.chunkSize, '1Mi');
    assert.equal(spec.storage?.targetsPerDisk, 1);
    assert.equal(spec.metadataStore?.backend, 'Embedded');
    assert.equal(spec.mgmtd?.replicas, 1);
    assert.deepEqual(spec.cleanupPolicy, { onDelete: 'Retain', sanitizeDisks: 'Quick' });
    assert.deepEqual(spec.csi?.storageClass, {
      create: true,
      name: 'threefs',
      reclaimPolicy: 'Delete',
      allowVolumeExpansion: true,
    });
    assert.equal(spec.paused as unknown, false);
  });

  describe('rejects invalid specs with a message naming the field', () => {
    assert.ok(invalidRows.length >= 15);
    for (const row of invalidRows) {
      it(row.name, async () => {
        const res = await cp.kubectl(['create', '--dry-run=server', '-f', '-'], {
          input: JSON.stringify(row.object),
        });
        assert.notEqual(res.code, 0, `accepted: ${JSON.stringify(row.object.spec)}`);
        for (const part of row.expect)
          assert.ok(res.stderr.includes(part), `expected '${part}' in: ${res.stderr}`);
      });
    }
  });

  describe('refuses to change immutable fields', () => {
    for (const row of updateRows) {
      it(row.name, async () => {
        await cp.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(row.object) });
        const res = await cp.kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], {
          input: JSON.stringify(row.change(row.object)),
        });
        assert.notEqual(res.code, 0, 'the change was accepted');
        for (const part of row.expect)
          assert.ok(res.stderr.includes(part), `expected '${part}' in: ${res.stderr}`);
        // A change elsewhere in the same object still goes through.
        const ok = await cp.kubectl(['apply', '--server-side', '--force-conflicts', '-f', '-'], {
          input: JSON.stringify(withValue(row.object, 'metadata.labels', { touched: 'yes' })),
        });
        assert.equal(ok.code, 0, ok.stderr);
      });
    }
  });

  it('keeps status a separate subresource from spec', async () => {
    await cp.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(cluster('status', NS)) });
    const get = async (): Promise<{ metadata: { generation: number }; spec: Obj; status?: Obj }> =>
      JSON.parse(
        await cp.kubectlOk(['get', 'threefscluster', 'status', '-n', NS, '-o', 'json']),
      ) as never;
    const before = await get();

    const status = {
      phase: 'Ready',
      observedGeneration: before.metadata.generation,
      conditions: [
        {
          type: 'Ready',
          status: 'True',
          reason: 'AllChainsServing',
          message: 'ok',
          lastTransitionTime: '2026-01-01T00:00:00Z',
          observedGeneration: before.metadata.generation,
        },
      ],
      chains: { total: 4, healthy: 3, degraded: 1, unavailable: 0 },
      nodes: { desired: 3, ready: 3, notReady: 0 },
      mgmtdPrimary: 'status-mgmtd-0',
      capacity: { totalBytes: 4096, usedBytes: 1024 },
    };
    // Through /status: status changes, spec and generation do not (a spec change there is dropped).
    await cp.kubectlOk([
      'patch',
      'threefscluster',
      'status',
      '-n',
      NS,
      '--subresource=status',
      '--type=merge',
      '-p',
      JSON.stringify({ status, spec: { paused: true } }),
    ]);
    const afterStatus = await get();
    assert.equal(afterStatus.status?.phase, 'Ready');
    assert.equal(afterStatus.spec.paused, false);
    assert.equal(afterStatus.metadata.generation, before.metadata.generation);

    // Through the main resource: a status change is dropped, a spec change bumps generation.
    await cp.kubectlOk([
      'patch',
      'threefscluster',
      'status',
      '-n',
      NS,
      '--type=merge',
      '-p',
      JSON.stringify({ status: { phase: 'Failed' }, spec: { paused: true } }),
    ]);
    const afterMain = await get();
    assert.equal(afterMain.status?.phase, 'Ready');
    assert.equal(afterMain.spec.paused, true);
    assert.equal(afterMain.metadata.generation, before.metadata.generation + 1);

    // Status is validated too.
    const bad = await cp.kubectl([
      'patch',
      'threefscluster',
      'status',
      '-n',
      NS,
      '--subresource=status',
      '--type=merge',
      '-p',
      '{"status":{"phase":"Happy"}}',
    ]);
    assert.notEqual(bad.code, 0);
    assert.ok(bad.stderr.includes('status.phase'), bad.stderr);
  });

  it('shows the printer columns in kubectl get', async () => {
    const table = await cp.kubectlOk(['get', 'threefsclusters', 'status', '-n', NS]);
    const [header, row] = table.trim().split('\n');
    assert.deepEqual(header?.split(/\s+/), [
      'NAME',
      'PHASE',
      'READY',
      'HEALTHY-CHAINS',
      'DEGRADED-CHAINS',
      'STORAGE-NODES',
      'VERSION',
      'AGE',
    ]);
    assert.deepEqual(row?.split(/\s+/).slice(0, 7), [
      'status',
      'Ready',
      'True',
      '3',
      '1',
      '3',
      '0.1.0',
    ]);
    const wide = await cp.kubectlOk(['get', 'tfs', 'status', '-n', NS, '-o', 'wide']);
    assert.match(wide, /PRIMARY/);
    assert.match(wide, /status-mgmtd-0/);
  });

  it('lists every kind under the threefs category', async () => {
    await cp.kubectlOk(['create', '-f', '-'], {
      input: JSON.stringify(storageTarget('listed-target', NS)),
    });
    await cp.kubectlOk(['create', '-f', '-'], {
      input: JSON.stringify(storageChain('listed-chain', NS)),
    });
    const out = await cp.kubectlOk(['get', 'threefs', '-n', NS, '-o', 'name']);
    assert.match(out, /threefscluster\.threefs\.io\/minimal|threefscluster\.threefs\.io\/demo/);
    assert.match(out, /storagetarget\.threefs\.io\/listed-target/);
    assert.match(out, /storagechain\.threefs\.io\/listed-chain/);
  });
});
