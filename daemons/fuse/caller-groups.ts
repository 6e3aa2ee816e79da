// Supplementary groups of the process behind a FUSE request: the kernel sends only uid/gid/pid,
// and meta checks permissions with all groups, so they come from /proc/<pid>/status ("Groups:"),
// cached briefly per pid (a process's groups rarely change; the cache is bounded).
import { readFile } from 'node:fs/promises';

/** The numbers on the Groups: line of a /proc status file. */
export function parseGroupsLine(status: string): number[] {
  const line = status.split('\n').find((l) => l.startsWith('Groups:'));
  if (!line) return [];
  return line
    .slice('Groups:'.length)
    .trim()
    .split(/\s+/)
    .filter((t) => /^\d+$/.test(t))
    .map(Number)
    .slice(0, 256);
}

export class CallerGroups {
  private readonly cache = new Map<number, { groups: number[]; at: number }>();

  constructor(
    private readonly ttlMs: number,
    private readonly maxEntries = 4_096,
  ) {}

  async of(pid: number): Promise<number[]> {
    if (pid <= 0) return [];
    const now = Date.now();
    const hit = this.cache.get(pid);
    if (hit && now - hit.at < this.ttlMs) return hit.groups;
    let groups: number[];
    try {
      groups = parseGroupsLine(await readFile(`/proc/${pid}/status`, 'utf8'));
    } catch {
      groups = []; // the process is gone (or hidden): primary gid only
    }
    if (this.cache.size >= this.maxEntries) this.cache.clear();
    this.cache.set(pid, { groups, at: now });
    return groups;
  }
}
