// Closes of write sessions that wrote nothing, sent to meta in batches. Such a close changes no
// length and nothing waits for it: the kernel does not wait for RELEASE, and GC only waits for the
// session to be gone. Sent one by one, each is a durable transaction of its own, so a program that
// creates and closes files one after another pays two commits per file and every create queues
// behind the previous close's log sync; batched, a close costs a fraction of a commit. A session
// stays open about `delayMs` longer than the handle (plus a batch in flight when the delay ran
// out; the client's stop sends everything). Bounded: at most `maxPending` sessions wait, and a
// close over that waits for a batch to go; a batch meta refused or could not take is tried
// `maxRounds` times in all, then logged and left to meta (the session pruner closes it once this
// client is gone).
import { ThreeFsError } from '../common/errors.js';
import type { Logger } from '../common/log.js';

export interface SessionToClose {
  inode: number;
  sessionId: string;
}

export interface CloseBehindOptions {
  /** Sends one batch (at most `batch` sessions); rejects when meta did not take it. */
  send(sessions: SessionToClose[]): Promise<void>;
  delayMs: number;
  batch: number;
  maxPending: number;
  maxRounds: number;
  log?: Logger | undefined;
}

interface Pending extends SessionToClose {
  rounds: number;
}

export class CloseBehind {
  private readonly pending: Pending[] = [];
  private timer: NodeJS.Timeout | undefined;
  private sending: Promise<void> | undefined;
  /** The delay ran out (or a flush asked): partial batches go too, until the queue is empty. */
  private due = false;
  /** Sessions given up after maxRounds failed batches (tests and diagnosis). */
  givenUp = 0;

  constructor(private readonly options: CloseBehindOptions) {
    const { delayMs, batch, maxPending, maxRounds } = options;
    if (!(delayMs >= 0 && batch >= 1 && maxPending >= batch && maxRounds >= 1)) {
      throw new ThreeFsError('INVALID_ARGUMENT', 'close-behind bounds are inconsistent');
    }
  }

  get queued(): number {
    return this.pending.length;
  }

  /** Queues a session; waits only while `maxPending` are queued already. */
  async add(session: SessionToClose): Promise<void> {
    // Bounded in rounds: every round sends or gives up at least one batch.
    for (let round = 0; this.pending.length >= this.options.maxPending; round++) {
      if (round > this.options.maxPending * this.options.maxRounds)
        throw new ThreeFsError('INTERNAL', 'close-behind queue does not drain');
      await this.send();
    }
    this.pending.push({ ...session, rounds: 0 });
    if (this.pending.length >= this.options.batch) void this.send();
    else this.arm();
  }

  /** Sends everything queued now; resolves once every batch was sent or given up. */
  async flush(): Promise<void> {
    while (this.pending.length > 0 || this.sending !== undefined) {
      this.due = true;
      await this.send();
    }
  }

  private arm(): void {
    if (this.pending.length === 0 || this.sending !== undefined || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.due = true;
      void this.send();
    }, this.options.delayMs);
  }

  /** One sender at a time: the running one, or a new one. */
  private send(): Promise<void> {
    this.sending ??= this.drain().finally(() => {
      this.sending = undefined;
      this.arm();
    });
    return this.sending;
  }

  /** Sends full batches, and the rest once due; stops at the first failure (retried later). */
  private async drain(): Promise<void> {
    if (this.due) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    while (this.pending.length >= (this.due ? 1 : this.options.batch)) {
      const batch = this.pending.splice(0, this.options.batch);
      try {
        await this.options.send(batch.map(({ inode, sessionId }) => ({ inode, sessionId })));
      } catch (err) {
        const again = batch.filter((s) => ++s.rounds < this.options.maxRounds);
        this.givenUp += batch.length - again.length;
        this.options.log?.warn(
          { err, sessions: batch.length, retrying: again.length },
          'closing write sessions failed',
        );
        this.pending.unshift(...again);
        return;
      }
    }
    if (this.pending.length === 0) this.due = false;
  }
}
