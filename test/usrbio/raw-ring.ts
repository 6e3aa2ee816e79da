// A misbehaving program for tests: the ring addon and the control socket used directly, without
// the checks daemons/client/usrbio.ts makes, so SQEs the JS API would refuse reach the daemon.
import net from 'node:net';
import { stat } from 'node:fs/promises';
import { usrbioSocketPath } from '../../daemons/common/usrbio-protocol.js';
import { type ProgramRing, usrbioAddon } from '../../daemons/common/usrbio-native.js';

export class RawRing {
  private input = '';
  private readonly lines: string[] = [];
  private waiter: (() => void) | undefined;
  readonly native: ProgramRing;
  private socket!: net.Socket;

  constructor(entries: number, bytes: number) {
    this.native = new (usrbioAddon().ProgramRing)(entries, bytes);
  }

  async connect(mountPoint: string, socketDir: string): Promise<void> {
    const { dev } = await stat(mountPoint);
    this.socket = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.connect(usrbioSocketPath(socketDir, dev), () => resolve(s));
      s.once('error', reject);
    });
    this.socket.setEncoding('utf8');
    this.socket.on('data', (chunk: string) => {
      const parts = (this.input + chunk).split('\n');
      this.input = parts.pop() ?? '';
      this.lines.push(...parts.filter((l) => l.length > 0));
      this.waiter?.();
    });
    this.socket.on('close', () => this.waiter?.());
  }

  get closed(): boolean {
    return this.socket.destroyed || this.socket.readyState === 'closed';
  }

  send(text: string): void {
    this.socket.write(text);
  }

  /** The next line from the daemon that is not a completion doorbell. */
  async reply(timeoutMs = 10_000): Promise<Record<string, unknown>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const index = this.lines.findIndex((l) => !l.includes('"cq"'));
      if (index >= 0) return JSON.parse(this.lines.splice(index, 1)[0]!) as Record<string, unknown>;
      if (this.closed) throw new Error('the daemon closed the connection');
      if (Date.now() > deadline) throw new Error('no reply from the daemon');
      await new Promise<void>((resolve) => {
        this.waiter = resolve;
        setTimeout(resolve, 50);
      });
    }
  }

  /** Waits until `n` completions arrived; returns them as [userData, result] pairs. */
  async completions(n: number, timeoutMs = 10_000): Promise<Array<[number, number]>> {
    const out: Array<[number, number]> = [];
    const deadline = Date.now() + timeoutMs;
    while (out.length < n) {
      const pairs = this.native.reap(1024);
      for (let i = 0; i < pairs.length; i += 2) out.push([pairs[i]!, pairs[i + 1]!]);
      if (out.length >= n) break;
      if (Date.now() > deadline) throw new Error(`only ${out.length} of ${n} completions`);
      await new Promise((r) => setTimeout(r, 10));
    }
    return out;
  }

  destroy(): void {
    this.socket.destroy();
  }
}
