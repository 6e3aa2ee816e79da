// A Prometheus counter whose hot path adds to a plain number. prom-client's inc() validates and
// hashes the labels on every call, and five such calls per RPC were ~3 µs of a ~60 µs metadata
// stat. Here a caller looks up the entry of its label set once and keeps it; the sums reach
// prom-client when /metrics is scraped (the counter's collect hook). One entry per label set,
// shared by every caller asking for it, so entries stay as few as the label sets however many
// callers come and go (an RPC client per peer, say).
import { Counter, type Registry } from 'prom-client';

/** One label set's count since the last scrape: add to `count`. */
export interface CountEntry {
  count: number;
}

const byRegistry = new WeakMap<Registry, Map<string, DeferredCounter<string>>>();

export class DeferredCounter<L extends string> {
  private readonly entries = new Map<string, { labels: Record<L, string>; entry: CountEntry }>();

  private constructor(registry: Registry, name: string, help: string, labelNames: readonly L[]) {
    const entries = this.entries;
    new Counter({
      name,
      help,
      labelNames: [...labelNames],
      registers: [registry],
      collect() {
        // Zero counts too: a label set shows up at 0 as soon as it has an entry.
        for (const { labels, entry } of entries.values()) {
          this.inc({ ...labels }, entry.count);
          entry.count = 0;
        }
      },
    });
  }

  /** The counter `name` of `registry`, registered on first use. */
  static of<L extends string>(
    registry: Registry,
    name: string,
    help: string,
    labelNames: readonly L[],
  ): DeferredCounter<L> {
    let counters = byRegistry.get(registry);
    if (counters === undefined) {
      counters = new Map();
      byRegistry.set(registry, counters);
    }
    let counter = counters.get(name);
    if (counter === undefined) {
      counter = new DeferredCounter(registry, name, help, labelNames);
      counters.set(name, counter);
    }
    return counter as DeferredCounter<L>;
  }

  /** The entry of `labels` (keep it: finding it is the slow part). */
  entry(labels: Record<L, string>): CountEntry {
    const key = JSON.stringify(labels);
    let found = this.entries.get(key);
    if (found === undefined) {
      found = { labels: { ...labels }, entry: { count: 0 } };
      this.entries.set(key, found);
    }
    return found.entry;
  }
}
