// The file API for programs, and the one the FUSE daemon runs on: namespace calls go to meta
// (with the caller's identity), data goes to storage through the storage client. Per inode with
// open handles this client keeps one state: the write buffer, the end of what this client wrote
// (so stat and reads see it before meta's lazy length does), the dynamic stripe it has asked
// for, and the truncate version its length hints carry. Hints go to meta on a timer for
// write-opened files; close and fsync ask meta for the exact length.
import type { z } from 'zod';
import { ByteBudget } from '../common/byte-budget.js';
import { ThreeFsError } from '../common/errors.js';
import { type Layout } from '../common/layout.js';
import type { Logger } from '../common/log.js';
import type { DirEntry, InodeAttrs, OpenFlags, PathAt } from '../common/services/meta.js';
import { CloseBehind } from './close-behind.js';
import type { MetaClient, MetaReply, MetaUser } from './meta-client.js';
import type { SharedRegion } from './region-reads.js';
import type { StorageClient } from './storage-client.js';
import { WriteBuffer } from './write-buffer.js';

export type Attrs = z.output<typeof InodeAttrs>;
export type Entry = z.output<typeof DirEntry>;
export type { MetaUser };

export interface FileApiOptions {
  meta: MetaClient;
  storage: StorageClient;
  log?: Logger;
  /** Write buffer per inode (3FS: 1 MiB). */
  writeBufferBytes?: number;
  /** Buffered bytes reach storage at the latest this long after the write. */
  flushDelayMs?: number;
  /** Storage writes per inode in flight at once (write-behind depth). */
  maxInFlightWrites?: number;
  /** Bytes of storage writes in flight at once across every inode (write-behind memory). */
  writeBehindBytes?: number;
  /** How often write-opened files report their length to meta (3FS design: 5 s). */
  lengthHintMs?: number;
  /** How long the close of a write session that wrote nothing may wait to share a batch. */
  closeBehindMs?: number;
}

/** Attribute changes (chmod, chown, utimes, truncate). */
export interface AttrChanges {
  mode?: number;
  uid?: number;
  gid?: number;
  atimeMs?: number;
  mtimeMs?: number;
  size?: number;
}

const HINTS_PER_ROUND = 1_000;
/** A closed inode's state stays this long (see FileApi.linger). */
const LINGER_MS = 5_000;
const MAX_LINGERING = 100_000;
/** Closes of sessions that wrote nothing: per batch, queued at most, tries per batch. */
const CLOSE_BATCH = 64;
const MAX_CLOSES_BEHIND = 4 * CLOSE_BATCH;
const CLOSE_ROUNDS = 3;

/** What this client knows about an inode it has open. */
class OpenInode {
  handles = 0;
  writers = 0;
  /** End of the furthest byte this client wrote since the last truncate (buffered or stored). */
  localEnd = 0;
  /** End of the furthest byte stored (length hints report it). */
  storedEnd = 0;
  hintedEnd = 0;
  /** Meta calls in flight that carry storedEnd as their length hint (withLength). */
  lengthCalls = 0;
  truncateVer: number;
  dynStripe: number;
  metaLength: number;
  buffer: WriteBuffer | undefined;
  /** Identity for the background calls of this inode (hints, stripe widening): the writer's. */
  user: MetaUser;
  private widening: Promise<void> | undefined;

  constructor(
    readonly id: number,
    readonly layout: Layout,
    attrs: Attrs,
    user: MetaUser,
  ) {
    this.truncateVer = attrs.truncateVer;
    this.dynStripe = attrs.dynStripe;
    this.metaLength = attrs.length;
    this.user = user;
  }

  get length(): number {
    return Math.max(this.metaLength, this.localEnd);
  }

  /** Makes sure chunks up to `lastChunk` lie on chains meta measures (brief §2.3 dyn stripe). */
  async coverChunk(meta: MetaClient, lastChunk: number): Promise<void> {
    const need = Math.min(this.layout.stripeSize, lastChunk + 1);
    while (need > this.dynStripe) {
      this.widening ??= meta
        .call(
          'sync',
          { inode: this.id, wantStripe: need, truncateVer: this.truncateVer },
          this.user,
        )
        .then((reply) => {
          this.dynStripe = Math.max(this.dynStripe, reply.attrs.dynStripe);
          if (reply.attrs.dynStripe < need && reply.attrs.dynStripe >= this.layout.stripeSize)
            throw new ThreeFsError('INTERNAL', `dynamic stripe stuck below ${need}`);
        })
        .finally(() => {
          this.widening = undefined;
        });
      await this.widening;
    }
  }
}

export class FileHandle {
  private closed = false;
  /** Whether this handle wrote since meta last measured the length for it (flush, close). */
  private wrote = false;

  constructor(
    private readonly api: FileApi,
    private readonly state: OpenInode,
    readonly attrs: Attrs,
    private readonly user: MetaUser,
    private readonly flags: z.output<typeof OpenFlags>,
    private readonly sessionId: string | undefined,
  ) {}

  get inode(): number {
    return this.state.id;
  }

  get writable(): boolean {
    return this.sessionId !== undefined;
  }

  /** Current length as this client knows it (meta's, or further if it wrote past it). */
  get length(): number {
    return this.state.length;
  }

  /**
   * Reads into `target` from `position`; returns the bytes read (0 at end of file). When
   * `shared` says where `target` lies in a shared region, storage on this host may put the bytes
   * there itself.
   */
  async read(
    target: Buffer,
    position: number,
    shared?: { region: SharedRegion; offset: number },
  ): Promise<number> {
    this.check();
    checkRange(position, target.length);
    if (this.state.buffer) await this.state.buffer.flush(); // a read sees this client's writes
    return this.api.storage.readFileInto(
      this.state.layout,
      this.state.id,
      position,
      target,
      this.state.length,
      shared,
    );
  }

  /**
   * Sends this client's buffered writes of the inode to storage, so that a read sees them: for
   * FileApi.readMany, before readPlan. Undefined when nothing is buffered, so a batch of reads
   * waits for nothing then.
   */
  flushBeforeRead(): Promise<void> | undefined {
    this.check();
    return this.state.buffer?.flush();
  }

  /**
   * The storage read behind read(), for FileApi.readMany (after flushBeforeRead); `regionOffset`
   * is where `target` starts in the shared region it lies in, if it does.
   */
  readPlan(target: Buffer, position: number, regionOffset?: number) {
    this.check();
    checkRange(position, target.length);
    const { layout, id } = this.state;
    return {
      layout,
      inodeId: id,
      offset: position,
      target,
      fileLength: this.state.length,
      regionOffset,
    };
  }

  /**
   * Writes all of `data` at `position` straight to storage, past the write buffer, and resolves
   * once the chain committed it (the USRBIO path: the caller's memory may be reused right after,
   * and a completion means stored). Buffered writes of the inode go first so they land in order.
   */
  async writeThrough(data: Buffer, position: number): Promise<number> {
    this.check();
    if (!this.writable) throw new ThreeFsError('EBADF', 'file is not open for writing');
    checkRange(position, data.length);
    if (data.length === 0) return 0;
    this.wrote = true;
    if (this.state.buffer) await this.state.buffer.flush();
    const state = this.state;
    state.localEnd = Math.max(state.localEnd, position + data.length);
    const { chunkSize } = state.layout;
    await state.coverChunk(this.api.meta, Math.floor((position + data.length - 1) / chunkSize));
    await this.api.storage.writeFile(state.layout, state.id, position, data);
    state.storedEnd = Math.max(state.storedEnd, position + data.length);
    return data.length;
  }

  /**
   * Writes all of `data` at `position` (at the end with O_APPEND); returns data.length. `done`,
   * when given, is called once `data` is no longer referenced here (copied into the write
   * buffer, or its storage write settled), whatever the outcome: the FUSE daemon then recycles
   * the memory.
   */
  async write(data: Buffer, position: number, done?: () => void): Promise<number> {
    const length = data.length; // `done` may detach `data` (length 0) before this returns
    let handedOver = false;
    try {
      this.check();
      if (!this.writable) throw new ThreeFsError('EBADF', 'file is not open for writing');
      const at = this.flags.append ? this.state.length : position;
      checkRange(at, data.length);
      const buffer = this.state.buffer;
      if (!buffer) throw new ThreeFsError('INTERNAL', 'a writable handle without a write buffer');
      if (data.length > 0) this.wrote = true;
      this.state.localEnd = Math.max(this.state.localEnd, at + data.length);
      handedOver = true;
      await buffer.write(at, data, done);
    } finally {
      if (!handedOver) done?.();
    }
    return length;
  }

  /**
   * close(2) of one descriptor: sends buffered writes to storage, reports write errors, and when
   * this handle wrote, makes meta's length exact before close(2) returns (brief §6.3: exact after
   * close). The session's own close comes with RELEASE, which the kernel sends later without
   * waiting for it: until then a reader elsewhere saw the old length, and a daemon killed in
   * between left a closed file at its old length until meta pruned the dead session (minutes).
   */
  async flush(): Promise<void> {
    this.check();
    if (!this.state.buffer) return;
    await this.state.buffer.flush();
    if (this.wrote) await this.measureLength();
  }

  /** flush, then the exact length at meta. */
  async fsync(): Promise<void> {
    this.check();
    if (!this.state.buffer) return;
    await this.state.buffer.flush();
    if (this.writable) await this.measureLength();
  }

  /** The exact length at meta; the session's close then has none left to update. */
  private async measureLength(): Promise<void> {
    await this.api.syncExact(this.state, this.user);
    this.wrote = false;
  }

  /**
   * Flushes, closes the write session (the exact length, when this handle wrote) and forgets the
   * handle; once only.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.api.release(this.state, this.user, this.sessionId, this.wrote);
  }

  private check(): void {
    if (this.closed) throw new ThreeFsError('EBADF', 'file handle is closed');
  }
}

function checkRange(position: number, length: number): void {
  if (!Number.isSafeInteger(position) || position < 0 || !Number.isSafeInteger(position + length))
    throw new ThreeFsError('EINVAL', `bad file position ${position}`);
}

function at(where: PathAt | string): PathAt {
  return typeof where === 'string' ? { path: where } : where;
}

export class FileApi {
  readonly meta: MetaClient;
  readonly storage: StorageClient;
  private readonly openInodes = new Map<number, OpenInode>();
  private readonly hintTimer: NodeJS.Timeout;
  private hinting = false;
  private readonly writeBehind: ByteBudget;
  private readonly closesBehind: CloseBehind;

  constructor(private readonly options: FileApiOptions) {
    this.meta = options.meta;
    this.storage = options.storage;
    this.writeBehind = new ByteBudget(options.writeBehindBytes ?? 64 * 1024 * 1024);
    this.hintTimer = setInterval(() => void this.sendHints(), options.lengthHintMs ?? 5_000);
    this.hintTimer.unref();
    this.closesBehind = new CloseBehind({
      send: async (sessions) => {
        await this.meta.call('closeSessions', { sessions });
      },
      delayMs: options.closeBehindMs ?? 100,
      batch: CLOSE_BATCH,
      maxPending: MAX_CLOSES_BEHIND,
      maxRounds: CLOSE_ROUNDS,
      log: options.log,
    });
  }

  /**
   * Flushes and closes nothing: callers close their handles; this stops the hint timer and sends
   * the closes still waiting for a batch.
   */
  async close(): Promise<void> {
    clearInterval(this.hintTimer);
    await Promise.all([this.sendHints(), this.closesBehind.flush()]);
  }

  /**
   * Reads of many handles as one storage batch (per storage node one request); returns the bytes
   * read per item, or throws for the whole batch. With a shared `region` holding the targets
   * (each at `regionOffset` in it), storage on this host writes the bytes there directly.
   * `onItem` hears of each item as soon as its bytes are in place (StorageClient.readFilesInto).
   */
  async readMany(
    items: ReadonlyArray<{
      handle: FileHandle;
      target: Buffer;
      position: number;
      regionOffset?: number;
    }>,
    region?: SharedRegion,
    onItem?: (index: number, bytes: number) => void,
  ): Promise<number[]> {
    const plans = [];
    for (const item of items) {
      const flushing = item.handle.flushBeforeRead();
      if (flushing) await flushing;
      plans.push(item.handle.readPlan(item.target, item.position, item.regionOffset));
    }
    return this.storage.readFilesInto(plans, region, onItem);
  }

  // ---- namespace ------------------------------------------------------------------------------

  /** stat by path (following a final symlink unless follow=false). */
  async statPath(where: PathAt | string, user: MetaUser, follow = true): Promise<Attrs> {
    const { attrs } = await this.meta.call('stat', { at: at(where), follow }, user);
    return this.withLocalLength(attrs);
  }

  /** One name in a directory, not following a final symlink (FUSE lookup). */
  lookup(parent: number, name: string, user: MetaUser): Promise<Attrs> {
    return this.statPath({ parent, path: name }, user, false);
  }

  async stat(inode: number, user: MetaUser): Promise<Attrs> {
    const { attrs } = await this.meta.call('stat', { inode }, user);
    return this.withLocalLength(attrs);
  }

  /** One page of a directory in name order after `after`. */
  async list(
    inode: number,
    user: MetaUser,
    page: { after?: string; limit?: number; withAttrs?: boolean } = {},
  ): Promise<{ entries: Entry[]; more: boolean }> {
    const reply = await this.meta.call('list', { inode, ...page }, user);
    if (page.withAttrs)
      for (const entry of reply.entries)
        if (entry.attrs) entry.attrs = this.withLocalLength(entry.attrs);
    return reply;
  }

  async mkdir(where: PathAt | string, mode: number, user: MetaUser, umask = 0): Promise<Attrs> {
    return (await this.meta.call('mkdirs', { at: at(where), mode, umask }, user)).attrs;
  }

  async symlink(where: PathAt | string, target: string, user: MetaUser): Promise<Attrs> {
    return (await this.meta.call('symlink', { at: at(where), target }, user)).attrs;
  }

  async link(inode: number, where: PathAt | string, user: MetaUser): Promise<Attrs> {
    // The kernel takes the reply's size as the file's size (appends go there): include what this
    // client wrote but meta may not know yet, as stat does.
    return this.withLocalLength(
      (await this.meta.call('hardLink', { inode, at: at(where) }, user)).attrs,
    );
  }

  async readlink(inode: number, user: MetaUser): Promise<string> {
    const { attrs } = await this.meta.call('stat', { inode }, user);
    if (attrs.type !== 'symlink' || attrs.target === undefined)
      throw new ThreeFsError('EINVAL', `inode ${inode} is not a symbolic link`);
    return attrs.target;
  }

  async unlink(where: PathAt | string, user: MetaUser): Promise<void> {
    await this.meta.call('remove', { at: at(where), kind: 'file' }, user);
  }

  async rmdir(where: PathAt | string, user: MetaUser): Promise<void> {
    await this.meta.call('remove', { at: at(where), kind: 'dir' }, user);
  }

  async rename(
    from: PathAt | string,
    to: PathAt | string,
    user: MetaUser,
    noReplace = false,
  ): Promise<void> {
    await this.meta.call('rename', { from: at(from), to: at(to), noReplace }, user);
  }

  statFs(inode: number, user: MetaUser): Promise<MetaReply<'statFs'>> {
    return this.meta.call('statFs', { inode }, user);
  }

  /** chmod/chown/utimes through meta; a size goes through truncate. */
  async setAttr(inode: number, changes: AttrChanges, user: MetaUser): Promise<Attrs> {
    let attrs: Attrs | undefined;
    if (changes.size !== undefined) attrs = await this.truncate(inode, changes.size, user);
    const { mode, uid, gid, atimeMs, mtimeMs } = changes;
    if ([mode, uid, gid, atimeMs, mtimeMs].some((v) => v !== undefined)) {
      const reply = await this.meta.call(
        'setAttr',
        { inode, mode, ownerUid: uid, ownerGid: gid, atimeMs, mtimeMs },
        user,
      );
      attrs = reply.attrs;
    }
    return this.withLocalLength(attrs ?? (await this.meta.call('stat', { inode }, user)).attrs);
  }

  /**
   * truncate(2): buffered writes go first (they must not land after the cut), then meta sets the
   * length (and removes whole chunks past it), then the partial chunk at the new end is cut so
   * growing the file later reads zeros there, not old bytes.
   */
  async truncate(inode: number, length: number, user: MetaUser): Promise<Attrs> {
    if (!Number.isSafeInteger(length) || length < 0)
      throw new ThreeFsError('EINVAL', `bad length ${length}`);
    const state = this.openInodes.get(inode);
    if (state?.buffer) await state.buffer.flush();
    const { attrs } = await this.meta.call('truncate', { inode, length }, user);
    const layout = attrs.layout;
    if (!layout) throw new ThreeFsError('INTERNAL', `file ${inode} has no layout`);
    if (length % layout.chunkSize !== 0) {
      const chunkIndex = Math.floor(length / layout.chunkSize);
      const covering = state ?? new OpenInode(inode, layout, attrs, user);
      if (!state) covering.user = user;
      await covering.coverChunk(this.meta, chunkIndex);
      await this.storage.truncateFileChunk(layout, inode, chunkIndex, length % layout.chunkSize);
    }
    if (state) {
      state.truncateVer = attrs.truncateVer;
      state.metaLength = attrs.length;
      state.localEnd = length;
      state.storedEnd = 0;
      state.hintedEnd = 0;
    }
    return attrs;
  }

  // ---- files ----------------------------------------------------------------------------------

  /** open(2) of an existing file by inode or path. */
  async open(
    target: number | PathAt | string,
    flags: OpenFlags,
    user: MetaUser,
  ): Promise<FileHandle> {
    const where = typeof target === 'number' ? { inode: target } : { at: at(target) };
    const reply = await this.meta.call(
      'open',
      { ...where, flags: { ...flags, truncate: false } },
      user,
    );
    const attrs = await this.truncateAtOpen(reply.attrs, flags, user);
    return this.handleFor(attrs, reply.session?.sessionId, flags, user);
  }

  /** open(2) with O_CREAT (and O_EXCL / O_TRUNC / O_APPEND as flags say). */
  async create(
    where: PathAt | string,
    mode: number,
    flags: OpenFlags,
    user: MetaUser,
    umask = 0,
  ): Promise<FileHandle> {
    const reply = await this.meta.call(
      'create',
      { at: at(where), mode, umask, flags: { ...flags, truncate: false } },
      user,
    );
    const attrs = reply.created ? reply.attrs : await this.truncateAtOpen(reply.attrs, flags, user);
    return this.handleFor(attrs, reply.session?.sessionId, flags, user);
  }

  /**
   * O_TRUNC as a separate truncate: meta's truncate waits until the chunks past the new end are
   * removed, while a truncating open does not, so its delayed removal could eat what the caller
   * writes right after opening.
   */
  private async truncateAtOpen(attrs: Attrs, flags: OpenFlags, user: MetaUser): Promise<Attrs> {
    if (!flags.truncate || attrs.type !== 'file') return attrs;
    return this.truncate(attrs.id, 0, user);
  }

  private handleFor(
    attrs: Attrs,
    sessionId: string | undefined,
    flags: OpenFlags,
    user: MetaUser,
  ): FileHandle {
    const parsed = {
      read: flags.read ?? true,
      write: flags.write ?? false,
      truncate: flags.truncate ?? false,
      append: flags.append ?? false,
      exclusive: flags.exclusive ?? false,
    };
    if (attrs.type !== 'file') {
      // Directories and symlinks have no data; meta already refused writes to them.
      return new FileHandle(
        this,
        new OpenInode(attrs.id, dirLayout, attrs, user),
        attrs,
        user,
        parsed,
        undefined,
      );
    }
    const layout = attrs.layout;
    if (!layout) throw new ThreeFsError('INTERNAL', `file ${attrs.id} has no layout`);
    let state = this.openInodes.get(attrs.id);
    if (!state) {
      state = new OpenInode(attrs.id, layout, attrs, user);
      this.openInodes.set(attrs.id, state);
    } else {
      state.metaLength = attrs.length;
      state.dynStripe = Math.max(state.dynStripe, attrs.dynStripe);
      if (attrs.truncateVer > state.truncateVer) {
        state.truncateVer = attrs.truncateVer; // O_TRUNC at this open
        state.localEnd = attrs.length;
        state.storedEnd = 0;
        state.hintedEnd = 0;
      }
    }
    state.handles++;
    if (sessionId !== undefined) {
      state.writers++;
      state.user = user;
      state.buffer ??= this.newBuffer(state);
    }
    return new FileHandle(this, state, attrs, user, parsed, sessionId);
  }

  private newBuffer(state: OpenInode): WriteBuffer {
    const { chunkSize } = state.layout;
    return new WriteBuffer({
      capacity: Math.min(this.options.writeBufferBytes ?? 1024 * 1024, chunkSize),
      chunkSize,
      maxInFlight: this.options.maxInFlightWrites ?? 16,
      flushDelayMs: this.options.flushDelayMs ?? 1_000,
      budget: this.writeBehind,
      sink: async (offset, data) => {
        await state.coverChunk(this.meta, Math.floor((offset + data.length - 1) / chunkSize));
        await this.storage.writeFile(state.layout, state.id, offset, data);
        state.storedEnd = Math.max(state.storedEnd, offset + data.length);
      },
    });
  }

  /** fsync: exact length from storage, with this client's hint. */
  async syncExact(state: OpenInode, user: MetaUser): Promise<void> {
    const { attrs } = await this.withLength(state, (end) =>
      this.meta.call(
        'sync',
        { inode: state.id, exact: true, lengthHint: end, truncateVer: state.truncateVer },
        user,
      ),
    );
    state.metaLength = attrs.length;
  }

  /**
   * A meta call that carries this client's stored end as its length hint. Meanwhile no periodic
   * hint goes out for the inode (it would say the same), and afterwards the end it carried, not
   * whatever was stored while it ran, counts as hinted.
   */
  private async withLength<T>(state: OpenInode, call: (end: number) => Promise<T>): Promise<T> {
    const end = state.storedEnd;
    state.lengthCalls++;
    try {
      const result = await call(end);
      state.hintedEnd = Math.max(state.hintedEnd, end);
      return result;
    } finally {
      state.lengthCalls--;
    }
  }

  /**
   * The end of a handle: flush, close its session (measuring the exact length when the handle
   * wrote; queued for a batch when it wrote nothing), forget the inode when no handle is left.
   */
  async release(
    state: OpenInode,
    user: MetaUser,
    sessionId: string | undefined,
    wrote: boolean,
  ): Promise<void> {
    let failure: unknown;
    try {
      if (sessionId !== undefined && state.buffer) await state.buffer.flush();
    } catch (err) {
      failure = err;
    }
    try {
      if (sessionId !== undefined && !wrote) {
        // Nothing to measure and nobody waiting: it goes in the next batch (close-behind.ts).
        await this.closesBehind.add({ inode: state.id, sessionId });
      } else if (sessionId !== undefined) {
        const { attrs } = await this.withLength(state, (end) =>
          this.meta.call(
            'close',
            {
              inode: state.id,
              sessionId,
              lengthHint: end,
              truncateVer: state.truncateVer,
              updateLength: wrote,
            },
            user,
          ),
        );
        state.metaLength = attrs.length;
      }
    } catch (err) {
      failure ??= err;
    }
    if (this.openInodes.get(state.id) === state) {
      state.handles--;
      if (sessionId !== undefined) state.writers--;
      if (state.handles < 0 || state.writers < 0)
        throw new ThreeFsError('INTERNAL', `inode ${state.id}: handle counts went negative`);
      if (state.writers === 0) {
        state.buffer?.dispose();
        state.buffer = undefined;
      }
      if (state.handles === 0) this.linger(state);
    }
    if (failure !== undefined) throw failure;
  }

  /**
   * Keeps a closed inode's state a little while: an open racing with the last close may get a
   * reply from meta read before the close recorded the length, and this client's own view of
   * what it wrote must win over that stale length. Bounded in time and in count.
   */
  private linger(state: OpenInode): void {
    if (this.openInodes.size > MAX_LINGERING) {
      this.openInodes.delete(state.id);
      return;
    }
    const timer = setTimeout(() => {
      if (this.openInodes.get(state.id) === state && state.handles === 0)
        this.openInodes.delete(state.id);
    }, LINGER_MS);
    timer.unref();
  }

  /** Length hints for write-opened files this client wrote past their last hint. */
  private async sendHints(): Promise<void> {
    if (this.hinting) return;
    this.hinting = true;
    try {
      let sent = 0;
      for (const state of this.openInodes.values()) {
        if (sent >= HINTS_PER_ROUND) break;
        if (state.writers === 0 || state.lengthCalls > 0 || state.storedEnd <= state.hintedEnd)
          continue;
        const end = state.storedEnd;
        sent++;
        try {
          await this.meta.call(
            'sync',
            { inode: state.id, lengthHint: end, truncateVer: state.truncateVer },
            state.user,
          );
          state.hintedEnd = Math.max(state.hintedEnd, end);
        } catch (err) {
          this.options.log?.warn({ err, inode: state.id }, 'length hint failed; will retry');
        }
      }
    } finally {
      this.hinting = false;
    }
  }

  /** Meta's attributes with this client's unreported writes counted in the length. */
  private withLocalLength(attrs: Attrs): Attrs {
    const state = this.openInodes.get(attrs.id);
    if (!state || attrs.type !== 'file') return attrs;
    state.metaLength = attrs.length;
    return state.length === attrs.length ? attrs : { ...attrs, length: state.length };
  }
}

/** A stand-in layout for handles on directories and symlinks, which never touch storage. */
const dirLayout: Layout = {
  chainTableId: 0,
  chainTableVersion: 0,
  chunkSize: 1024 * 1024,
  stripeSize: 1,
  chains: { kind: 'empty' },
};
