// A real cluster plus a real FUSE mount for tests: mgmtd, one storage process (four chains),
// one meta process (MetaTestCluster), and the FUSE daemon as its own process mounted on an empty
// directory. stop() always unmounts, even after a failure (fusermount3 -u, then umount -l).
import { spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import type { Cadence } from '../helpers/cluster.js';
import { type DaemonProcess, startDaemon } from '../helpers/daemon-process.js';
import { MetaTestCluster } from '../meta/meta-cluster.js';

export class FuseTestCluster {
  readonly meta: MetaTestCluster;
  fuse: DaemonProcess | undefined;
  mountpoint = '';

  constructor(
    readonly name: string,
    layout?: ConstructorParameters<typeof MetaTestCluster>[1],
    cadence: Cadence = 'test',
  ) {
    this.meta = new MetaTestCluster(name, layout, cadence);
  }

  async start(fuseSettings: Record<string, string | number | boolean> = {}): Promise<void> {
    await this.meta.start();
    await this.meta.startProcess(21);
    await this.waitMeta(10_000);
    chmodSync(this.meta.base.dir, 0o755); // other users walk to the mount point in tests
    this.mountpoint = path.join(this.meta.base.dir, 'mnt');
    mkdirSync(this.mountpoint, { recursive: true });
    await this.mount(fuseSettings);
  }

  async mount(
    fuseSettings: Record<string, string | number | boolean> = {},
  ): Promise<DaemonProcess> {
    const settings: Record<string, unknown> = {
      clusterId: this.name,
      mgmtd: JSON.stringify([this.meta.base.mgmtd.ready.address]),
      mountpoint: this.mountpoint,
      'status.port': 0,
      routingRefreshMs: this.meta.base.timings.routingRefreshMs,
      opTimeoutMs: 20_000,
      attemptTimeoutMs: 2_000,
      ...fuseSettings,
    };
    const args = Object.entries(settings).flatMap(([k, v]) => ['--set', `${k}=${String(v)}`]);
    this.fuse = await startDaemon('fuse', args, { timeoutMs: 20_000 });
    return this.fuse;
  }

  /** Waits until routing info lists the meta process as connected (clients find it there). */
  async waitMeta(timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const info = await this.meta.base.routing.refresh();
      if (info.nodes.some((n) => n.type === 'META' && n.status === 'HEARTBEAT_CONNECTED')) return;
      if (Date.now() > deadline) throw new Error('meta never showed up in routing info');
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  path(...parts: string[]): string {
    return path.join(this.mountpoint, ...parts);
  }

  /** Unmounts whatever is left; never throws. */
  forceUnmount(): void {
    if (!this.mountpoint) return;
    spawnSync('fusermount3', ['-u', '-z', this.mountpoint], { stdio: 'ignore' });
    spawnSync('umount', ['-l', this.mountpoint], { stdio: 'ignore' });
  }

  async stop(): Promise<void> {
    try {
      await this.fuse?.kill('SIGTERM');
    } finally {
      this.forceUnmount();
      await this.fuse?.kill('SIGKILL');
      await this.meta.stop();
      if (this.mountpoint) rmSync(this.mountpoint, { recursive: true, force: true });
    }
  }
}
