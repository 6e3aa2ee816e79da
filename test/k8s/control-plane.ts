// A real Kubernetes control plane for tests, on 127.0.0.1 only, built from test/k8s/testbin.sh:
//   tier 1: etcd + kube-apiserver (schemas, CEL rules, status subresource, server-side apply);
//   tier 2: plus kube-controller-manager, kube-scheduler and kwok, so workloads get Running pods on
//           labelled fake Nodes.
// Pod, node and Service IPs here are fake: nothing may dial them.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, readFileSync, readdirSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { runKubectl, type KubectlOptions, type KubectlResult } from './harness/kubectl.js';
import { createPki, writeKubeconfig, type Pki } from './harness/pki.js';
import { freePorts } from './harness/ports.js';
import { startProcess, stopProcess, tail, type Managed } from './harness/processes.js';
import { findTestbin, type Testbin } from './harness/testbin.js';
import { waitFor } from './harness/wait.js';

export interface FakeNode {
  name: string;
  labels?: Record<string, string>;
}

export interface ControlPlaneOptions {
  tier: 1 | 2;
  /** Fake Nodes for tier 2 (kwok marks them Ready). */
  nodes?: readonly FakeNode[];
  /** Keep the temp directory after stop() for debugging. */
  keepDir?: boolean;
}

export interface ControlPlane {
  tier: 1 | 2;
  dir: string;
  kubeconfig: string;
  server: string;
  /** Runs kubectl against this control plane. Never throws on a non-zero exit: check `code`. */
  kubectl(args: readonly string[], opts?: KubectlOptions): Promise<KubectlResult>;
  /** Runs kubectl and throws with its stderr unless it exits 0. */
  kubectlOk(args: readonly string[], opts?: KubectlOptions): Promise<string>;
  stop(): Promise<void>;
}

/** Only kwok manages nodes with this label, so it never touches a real node by accident. */
export const KWOK_NODE_LABEL = { type: 'kwok' } as const;

const STARTUP_TIMEOUT_MS = 90_000;

function describeLogs(procs: readonly Managed[]): string {
  return procs
    .map((p) => `--- ${p.name} (pid ${p.pid}) log tail ---\n${tail(p.logFile)}`)
    .join('\n');
}

function exitedEarly(procs: readonly Managed[]): string | undefined {
  const dead = procs.find((p) => p.exit);
  return dead
    ? `${dead.name} exited (code ${dead.exit?.code}, signal ${dead.exit?.signal})`
    : undefined;
}

/** GET url over TLS with the admin client certificate; resolves the status code and body. */
function httpsGet(url: string, pki: Pki): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      {
        ca: readFileSync(pki.caCert),
        cert: readFileSync(pki.adminCert),
        key: readFileSync(pki.adminKey),
        timeout: 5_000,
      },
      (res) => {
        let body = '';
        res.on('data', (c: Buffer) => {
          if (body.length < 65536) body += c.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

async function httpGetOk(url: string): Promise<true | undefined> {
  const res = await fetch(url, { signal: AbortSignal.timeout(5_000) });
  return res.ok ? true : undefined;
}

function kwokConfig(testbin: Testbin): string {
  const stages = readdirSync(testbin.kwokStages)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => readFileSync(path.join(testbin.kwokStages, f), 'utf8').trim());
  const header = [
    'apiVersion: config.kwok.x-k8s.io/v1alpha1',
    'kind: KwokConfiguration',
    'options:',
    '  nodeIP: 127.0.0.1',
    // With --config kwok takes these from the file rather than its defaults; 0 is refused.
    '  nodePlayStageParallelism: 4',
    '  podPlayStageParallelism: 4',
    '  nodeLeaseParallelism: 4',
    '  podsOnNodeSyncParallelism: 4',
    '  nodeLeaseDurationSeconds: 40',
  ].join('\n');
  return [header, ...stages].join('\n---\n') + '\n';
}

export function fakeNodeManifest(node: FakeNode): string {
  const labels = {
    ...node.labels,
    ...KWOK_NODE_LABEL,
    'kubernetes.io/hostname': node.name,
    'kubernetes.io/os': 'linux',
    'kubernetes.io/arch': 'amd64',
  };
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: node.name,
      labels,
      annotations: { 'node.alpha.kubernetes.io/ttl': '0', 'kwok.x-k8s.io/node': 'fake' },
    },
    spec: {},
    status: {
      allocatable: { cpu: '32', memory: '256Gi', pods: '110' },
      capacity: { cpu: '32', memory: '256Gi', pods: '110' },
    },
  });
}

export async function startControlPlane(options: ControlPlaneOptions): Promise<ControlPlane> {
  const testbin = findTestbin(
    options.tier === 1
      ? ['etcd', 'kube-apiserver']
      : ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok'],
  );
  if (options.tier === 1 && options.nodes && options.nodes.length > 0) {
    throw new Error('fake nodes need tier 2 (kwok makes them Ready)');
  }
  const dir = mkdtempSync(path.join(tmpdir(), 'threefs-k8s-'));
  const pidFile = path.join(dir, 'pids');
  writeFileSync(pidFile, '');
  const procs: Managed[] = [];
  let stopped = false;

  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    // Reverse order: clients of the apiserver first, etcd last.
    for (const proc of [...procs].reverse()) await stopProcess(proc);
    if (!options.keepDir) rmSync(dir, { recursive: true, force: true });
  };

  try {
    const pki = await createPki(dir);
    const [etcdClient, etcdPeer, apiPort] = await freePorts(3);
    if (etcdClient === undefined || etcdPeer === undefined || apiPort === undefined) {
      throw new Error('internal: freePorts returned too few ports');
    }
    const server = `https://127.0.0.1:${apiPort}`;
    const kubeconfig = path.join(dir, 'admin.kubeconfig');
    writeKubeconfig(kubeconfig, server, pki);
    const log = (name: string): string => path.join(dir, `${name}.log`);

    const etcdUrl = `http://127.0.0.1:${etcdClient}`;
    const peerUrl = `http://127.0.0.1:${etcdPeer}`;
    const etcd = startProcess(
      'etcd',
      testbin.bin('etcd'),
      [
        '--name=test',
        `--data-dir=${path.join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=test=${peerUrl}`,
        '--unsafe-no-fsync=true', // test data: durability is not the point, speed is
        '--log-level=warn',
      ],
      log('etcd'),
      pidFile,
    );
    procs.push(etcd);
    await waitFor('etcd /health', () => httpGetOk(`${etcdUrl}/health`), {
      timeoutMs: STARTUP_TIMEOUT_MS,
      describe: () => describeLogs([etcd]),
      abort: () => exitedEarly(procs),
    });

    const apiserverArgs = [
      `--etcd-servers=${etcdUrl}`,
      '--bind-address=127.0.0.1',
      '--advertise-address=127.0.0.1',
      `--secure-port=${apiPort}`,
      `--cert-dir=${path.join(dir, 'apiserver-certs')}`,
      `--tls-cert-file=${pki.serverCert}`,
      `--tls-private-key-file=${pki.serverKey}`,
      `--client-ca-file=${pki.caCert}`,
      '--authorization-mode=RBAC',
      '--service-account-issuer=https://kubernetes.default.svc.cluster.local',
      `--service-account-key-file=${pki.serviceAccountPub}`,
      `--service-account-signing-key-file=${pki.serviceAccountKey}`,
      '--service-cluster-ip-range=198.19.0.0/16',
      '--allow-privileged=true', // CSI node plugins are privileged
      '--endpoint-reconciler-type=none', // no Endpoints pointing at 127.0.0.1 for the kubernetes Service
      '--profiling=false',
      '--v=1',
    ];
    // Without the controller-manager nobody creates ServiceAccounts, so the admission plugin
    // that requires them would reject every Pod.
    if (options.tier === 1) apiserverArgs.push('--disable-admission-plugins=ServiceAccount');
    const apiserver = startProcess(
      'kube-apiserver',
      testbin.bin('kube-apiserver'),
      apiserverArgs,
      log('kube-apiserver'),
      pidFile,
    );
    procs.push(apiserver);
    await waitFor(
      'kube-apiserver /readyz',
      async () => ((await httpsGet(`${server}/readyz`, pki)).status === 200 ? true : undefined),
      {
        timeoutMs: STARTUP_TIMEOUT_MS,
        intervalMs: 500,
        describe: () => describeLogs([apiserver]),
        abort: () => exitedEarly(procs),
      },
    );

    const kubectl = (args: readonly string[], opts?: KubectlOptions): Promise<KubectlResult> =>
      runKubectl(kubeconfig, args, opts);
    const kubectlOk = async (args: readonly string[], opts?: KubectlOptions): Promise<string> => {
      const res = await kubectl(args, opts);
      if (res.code !== 0)
        throw new Error(`kubectl ${args.join(' ')} failed (${res.code}): ${res.stderr}`);
      return res.stdout;
    };

    if (options.tier === 2) {
      mkdirSync(path.join(dir, 'kcm-certs'));
      const kcm = startProcess(
        'kube-controller-manager',
        testbin.bin('kube-controller-manager'),
        [
          `--kubeconfig=${kubeconfig}`,
          `--authentication-kubeconfig=${kubeconfig}`,
          `--authorization-kubeconfig=${kubeconfig}`,
          `--service-account-private-key-file=${pki.serviceAccountKey}`,
          `--root-ca-file=${pki.caCert}`,
          '--use-service-account-credentials=false',
          '--leader-elect=false',
          '--bind-address=127.0.0.1',
          '--secure-port=0', // no HTTPS endpoint: nothing here scrapes it
          `--cert-dir=${path.join(dir, 'kcm-certs')}`,
          '--controllers=*,-nodeipam,-cloud-node-lifecycle',
          '--v=1',
        ],
        log('kube-controller-manager'),
        pidFile,
      );
      procs.push(kcm);
      const scheduler = startProcess(
        'kube-scheduler',
        testbin.bin('kube-scheduler'),
        [
          `--kubeconfig=${kubeconfig}`,
          `--authentication-kubeconfig=${kubeconfig}`,
          `--authorization-kubeconfig=${kubeconfig}`,
          '--leader-elect=false',
          '--bind-address=127.0.0.1',
          '--secure-port=0',
          '--v=1',
        ],
        log('kube-scheduler'),
        pidFile,
      );
      procs.push(scheduler);
      const kwokFile = path.join(dir, 'kwok.yaml');
      writeFileSync(kwokFile, kwokConfig(testbin));
      const kwok = startProcess(
        'kwok',
        testbin.bin('kwok'),
        [
          `--kubeconfig=${kubeconfig}`,
          `--config=${kwokFile}`,
          `--manage-nodes-with-label-selector=type=${KWOK_NODE_LABEL.type}`,
          // No --server-address or --node-port: kwok then serves nothing (no port to bind).
        ],
        log('kwok'),
        pidFile,
      );
      procs.push(kwok);

      for (const node of options.nodes ?? []) {
        await kubectlOk(['create', '-f', '-'], { input: fakeNodeManifest(node) });
      }
      if ((options.nodes ?? []).length > 0) {
        await waitFor(
          'fake nodes Ready',
          async () => {
            const res = await kubectl([
              'wait',
              '--for=condition=Ready',
              'node',
              '-l',
              'type=kwok',
              '--timeout=5s',
            ]);
            return res.code === 0 ? true : undefined;
          },
          {
            timeoutMs: STARTUP_TIMEOUT_MS,
            intervalMs: 500,
            describe: () => describeLogs([kwok]),
            abort: () => exitedEarly(procs),
          },
        );
      }
      // Pods need the namespace's default ServiceAccount, which the controller-manager creates.
      await waitFor(
        'default ServiceAccount',
        async () =>
          (await kubectl(['get', 'serviceaccount', 'default', '-n', 'default'])).code === 0
            ? true
            : undefined,
        {
          timeoutMs: STARTUP_TIMEOUT_MS,
          intervalMs: 500,
          describe: () => describeLogs([kcm]),
          abort: () => exitedEarly(procs),
        },
      );
    }

    return { tier: options.tier, dir, kubeconfig, server, kubectl, kubectlOk, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
