// Virtual time for the deterministic simulation: a seeded PRNG and an event queue. Code under test
// sleeps and receives messages only through this scheduler, so one seed gives one run, exactly.
import type { Clock } from '../../../daemons/storage/seams.js';
import { Rng } from '../../helpers/rng.js';

interface Event {
  at: number;
  seq: number;
  run: () => void;
}

export class Scheduler implements Clock {
  private time = 0;
  private seq = 0;
  private readonly queue: Event[] = [];
  events = 0;

  constructor(readonly rng: Rng) {}

  now(): number {
    return this.time;
  }

  sleep(ms: number): Promise<void> {
    return new Promise((resolve) => this.at(this.time + Math.max(0, ms), resolve));
  }

  at(time: number, run: () => void): void {
    const event = { at: time, seq: this.seq++, run };
    // Sorted insert: queues stay small (hundreds of events).
    let i = this.queue.length;
    while (
      i > 0 &&
      (this.queue[i - 1]!.at > event.at ||
        (this.queue[i - 1]!.at === event.at && this.queue[i - 1]!.seq > event.seq))
    )
      i--;
    this.queue.splice(i, 0, event);
  }

  /** Runs events in time order until `until` (virtual ms) or the event budget runs out. */
  async runUntil(until: number, maxEvents = 500_000): Promise<void> {
    while (this.queue.length > 0 && this.queue[0]!.at <= until) {
      if (++this.events > maxEvents) throw new Error(`simulation exceeded ${maxEvents} events`);
      const event = this.queue.shift()!;
      this.time = event.at;
      event.run();
      // Let every promise continuation triggered by this event run before the next event.
      await new Promise((resolve) => setImmediate(resolve));
    }
    this.time = Math.max(this.time, until);
  }
}
