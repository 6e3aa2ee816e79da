// One opendir(): serves readdir offsets over meta's name-ordered pages. Entry k (0 = ".",
// 1 = "..", then the directory's names) has offset k, and the kernel resumes at the offset of
// the last entry it got. Only a window of entries is kept: entries before the requested offset
// are dropped, pages after the last name fetched are loaded as needed, and seeking back before
// the window restarts the listing. So a huge directory costs a page or two of memory.
import type { Attrs, Entry } from '../client/file-api.js';

export interface DirItem {
  name: string;
  attrs: Attrs;
}

export type PageLoader = (
  after: string,
  limit: number,
) => Promise<{ entries: Entry[]; more: boolean }>;

export const PAGE_LIMIT = 512;

export class DirHandle {
  private items: DirItem[] = [];
  private base = 0;
  private cursor = '';
  private more = true;

  constructor(
    private readonly self: Attrs,
    private readonly load: PageLoader,
  ) {
    this.restart();
  }

  private restart(): void {
    this.items = [
      { name: '.', attrs: this.self },
      { name: '..', attrs: this.self },
    ];
    this.base = 0;
    this.cursor = '';
    this.more = true;
  }

  /** Entries from `offset`, at least `count` of them unless the directory ends first. */
  async from(offset: number, count: number): Promise<{ first: number; items: DirItem[] }> {
    if (offset < this.base) this.restart();
    while (this.base + this.items.length < offset + count && this.more) {
      const page = await this.load(this.cursor, PAGE_LIMIT);
      for (const entry of page.entries) {
        if (!entry.attrs) continue; // removed between list and stat: skip it
        this.items.push({ name: entry.name, attrs: entry.attrs });
      }
      const last = page.entries[page.entries.length - 1];
      if (last) this.cursor = last.name;
      this.more = page.more && last !== undefined;
      // Drop what lies before the requested offset: the window stays small.
      const drop = Math.min(Math.max(0, offset - this.base), this.items.length);
      this.items.splice(0, drop);
      this.base += drop;
    }
    const skip = Math.max(0, offset - this.base);
    return { first: this.base + skip, items: this.items.slice(skip, skip + count) };
  }
}
