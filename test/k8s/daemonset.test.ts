// Tier 2 smoke test of the harness the operator's tests build on: a DaemonSet selecting RDMA+NVMe
// nodes gets exactly one Running pod on each matching fake node and none elsewhere, placed by the
// real controller-manager and scheduler and run by kwok.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startControlPlane, type ControlPlane, type FakeNode } from './control-plane.js';
import { sleep, waitFor } from './harness/wait.js';

const RDMA = 'feature.node.kubernetes.io/rdma.capable';
const NVME = 'threefs.io/nvme';

const nodes: FakeNode[] = [
  { name: 'storage-a', labels: { [RDMA]: 'true', [NVME]: 'true' } },
  { name: 'storage-b', labels: { [RDMA]: 'true', [NVME]: 'true' } },
  { name: 'nvme-only', labels: { [NVME]: 'true' } },
  { name: 'plain', labels: {} },
];

const daemonSet = {
  apiVersion: 'apps/v1',
  kind: 'DaemonSet',
  metadata: { name: 'storage', namespace: 'default' },
  spec: {
    selector: { matchLabels: { app: 'storage' } },
    template: {
      metadata: { labels: { app: 'storage' } },
      spec: {
        nodeSelector: { [RDMA]: 'true', [NVME]: 'true' },
        containers: [{ name: 'storage', image: 'registry.invalid/threefs:test' }], // kwok never pulls
      },
    },
  },
};

interface PodList {
  items: { metadata: { name: string }; spec: { nodeName?: string }; status: { phase?: string } }[];
}

describe('tier 2 control plane: pods on labelled fake nodes', () => {
  let cp: ControlPlane;

  before(async () => {
    cp = await startControlPlane({ tier: 2, nodes });
  });

  after(async () => {
    await cp?.stop();
  });

  it('has every fake node Ready', async () => {
    const out = await cp.kubectlOk([
      'get',
      'nodes',
      '-o',
      'jsonpath={range .items[*]}{.metadata.name}={.status.conditions[?(@.type=="Ready")].status}{"\\n"}{end}',
    ]);
    assert.deepEqual(out.trim().split('\n').sort(), nodes.map((n) => `${n.name}=True`).sort());
  });

  it('runs one DaemonSet pod per RDMA+NVMe node and none elsewhere', async () => {
    await cp.kubectlOk(['create', '-f', '-'], { input: JSON.stringify(daemonSet) });
    const pods = async (): Promise<PodList['items']> =>
      (
        JSON.parse(
          await cp.kubectlOk(['get', 'pods', '-n', 'default', '-l', 'app=storage', '-o', 'json']),
        ) as PodList
      ).items;

    // Wait until the DaemonSet controller has settled: every pod it wants exists and is Ready.
    interface DaemonSetStatus {
      status?: {
        desiredNumberScheduled?: number;
        numberReady?: number;
        observedGeneration?: number;
      };
    }
    const settled = await waitFor(
      'the DaemonSet to have all its pods Ready',
      async () => {
        const ds = JSON.parse(
          await cp.kubectlOk(['get', 'daemonset', 'storage', '-n', 'default', '-o', 'json']),
        ) as DaemonSetStatus;
        const st = ds.status;
        if (!st?.observedGeneration || !st.desiredNumberScheduled) return undefined;
        return st.numberReady === st.desiredNumberScheduled ? st : undefined;
      },
      { timeoutMs: 60_000, intervalMs: 500, describe: () => `control plane logs in ${cp.dir}` },
    );
    assert.equal(
      settled.desiredNumberScheduled,
      2,
      'the DaemonSet wants pods on non-matching nodes',
    );

    // Give the controllers a moment to (wrongly) add pods elsewhere before checking there are none.
    await sleep(2_000);
    const list = await pods();
    assert.deepEqual(list.map((p) => p.spec.nodeName).sort(), ['storage-a', 'storage-b']);
    assert.ok(
      list.every((p) => p.status.phase === 'Running'),
      JSON.stringify(list.map((p) => p.status)),
    );
  });
});
