// The metadata RPC service (brief §1.3): the POSIX namespace served by any meta server. Method ids
// follow 3FS's MetaSerde where 3FS has the method; ours (quotas, layouts) are ≥ 30. Every request
// carries the caller's identity (checked against inode permissions), the client id (write
// sessions belong to it) and a request id (retries of remove and rename reuse it: idempotency).
import { z } from 'zod';
import { ChunkSize, Layout } from '../layout.js';
import { defineService } from '../rpc/index.js';

const U32 = z.number().int().min(0).max(0xffff_ffff);
const InodeId = z.number().int().positive().max(Number.MAX_SAFE_INTEGER);
const Mode = z.number().int().min(0).max(0o7777);
/** Path lengths are checked by meta itself so the caller gets ENAMETOOLONG rather than a schema error. */
const PathText = z.string().max(65_536);
const Empty = z.object({});
/** Write sessions one closeSessions call may close. */
const MAX_CLOSE_BATCH = 256;

/** Who asks and which request this is; on every request. */
export const MetaRequestHeader = z.object({
  uid: U32,
  gid: U32,
  groups: z.array(U32).max(256).default([]),
  clientId: z.string().min(1).max(128),
  requestId: z.string().min(1).max(128),
});
export type MetaRequestHeader = z.infer<typeof MetaRequestHeader>;

/** A path resolved from a directory inode (absolute paths start at the root whatever `parent`). */
export const PathAt = z.object({ parent: InodeId.default(1), path: PathText });
export type PathAt = z.input<typeof PathAt>;

export const InodeType = z.enum(['file', 'dir', 'symlink']);
export type InodeType = z.infer<typeof InodeType>;

export const QuotaLimits = z.object({
  /** 0 = no byte limit. */
  maxBytes: z.number().int().min(0),
  /** 0 = no inode limit. */
  maxInodes: z.number().int().min(0),
});
export type QuotaLimits = z.infer<typeof QuotaLimits>;

export const InodeAttrs = z.object({
  id: InodeId,
  type: InodeType,
  mode: Mode,
  uid: U32,
  gid: U32,
  nlink: z.number().int().min(0),
  length: z.number().int().min(0),
  atimeMs: z.number(),
  mtimeMs: z.number(),
  ctimeMs: z.number(),
  /** Files: the chains they live on; directories: the default their new children inherit. */
  layout: Layout.optional(),
  /** Files: chains of the stripe holding data so far (brief §2.3 dynamic stripe). */
  dynStripe: z.number().int().min(0).default(0),
  /** Files: bumped by every truncate; length hints carrying an older one are ignored. */
  truncateVer: z.number().int().min(0).default(0),
  /** Symlinks: where they point. */
  target: z.string().optional(),
  /** Directories that are quota roots. */
  quota: QuotaLimits.optional(),
});
export type InodeAttrs = z.infer<typeof InodeAttrs>;

export const OpenFlags = z.object({
  read: z.boolean().default(true),
  write: z.boolean().default(false),
  truncate: z.boolean().default(false),
  append: z.boolean().default(false),
  /** With create: fail with EEXIST if the name exists (O_EXCL). */
  exclusive: z.boolean().default(false),
});
export type OpenFlags = z.input<typeof OpenFlags>;

const AttrsReply = z.object({ attrs: InodeAttrs });
/** A write open's session; reads open nothing in meta. */
const SessionReply = z.object({ sessionId: z.string() }).optional();

const LayoutOverride = z.object({
  chainTableId: z.number().int().positive().optional(),
  chunkSize: ChunkSize.optional(),
  stripeSize: z.number().int().min(1).max(65_536).optional(),
});

const req = <T extends z.ZodRawShape>(shape: T) => MetaRequestHeader.extend(shape);

export const DirEntry = z.object({
  name: z.string(),
  id: InodeId,
  type: InodeType,
  attrs: InodeAttrs.optional(),
});

export const MetaService = defineService({
  id: 4,
  name: 'Meta',
  methods: {
    statFs: {
      id: 1,
      request: req({ inode: InodeId.default(1) }),
      response: z.object({
        totalBytes: z.number(),
        usedBytes: z.number(),
        freeBytes: z.number(),
        totalInodes: z.number(),
        usedInodes: z.number(),
        /** The quota directory whose limits are reported, 0 when the cluster's totals are. */
        quotaRoot: z.number().int().min(0),
      }),
    },
    /** By inode id, or lookup by path (the last component followed unless follow=false). */
    stat: {
      id: 2,
      request: req({
        inode: InodeId.optional(),
        at: PathAt.optional(),
        follow: z.boolean().default(true),
      }),
      response: AttrsReply,
    },
    /** open(O_CREAT [O_EXCL] [O_TRUNC] [O_APPEND]) of a regular file. */
    create: {
      id: 3,
      request: req({
        at: PathAt,
        mode: Mode.default(0o644),
        umask: Mode.default(0),
        flags: OpenFlags.prefault({}),
      }),
      response: z.object({ attrs: InodeAttrs, created: z.boolean(), session: SessionReply }),
    },
    mkdirs: {
      id: 4,
      request: req({
        at: PathAt,
        mode: Mode.default(0o755),
        umask: Mode.default(0),
        recursive: z.boolean().default(false),
        layout: LayoutOverride.optional(),
      }),
      response: AttrsReply,
    },
    symlink: { id: 5, request: req({ at: PathAt, target: PathText }), response: AttrsReply },
    hardLink: { id: 6, request: req({ inode: InodeId, at: PathAt }), response: AttrsReply },
    /** unlink (kind file), rmdir (kind dir), or either; recursive moves a subtree to GC in O(1). */
    remove: {
      id: 7,
      request: req({
        at: PathAt,
        kind: z.enum(['file', 'dir', 'any']).default('any'),
        recursive: z.boolean().default(false),
      }),
      response: Empty,
    },
    open: {
      id: 8,
      request: req({
        inode: InodeId.optional(),
        at: PathAt.optional(),
        flags: OpenFlags.prefault({}),
      }),
      response: z.object({ attrs: InodeAttrs, session: SessionReply }),
    },
    /** Length hint (lazy length) and/or exact length (fsync); may widen the dynamic stripe. */
    sync: {
      id: 9,
      request: req({
        inode: InodeId,
        lengthHint: z.number().int().min(0).optional(),
        truncateVer: z.number().int().min(0).default(0),
        exact: z.boolean().default(false),
        wantStripe: z.number().int().min(0).default(0),
      }),
      response: AttrsReply,
    },
    close: {
      id: 10,
      request: req({
        inode: InodeId,
        sessionId: z.string().min(1).max(256),
        lengthHint: z.number().int().min(0).optional(),
        truncateVer: z.number().int().min(0).default(0),
        /**
         * Whether the session wrote: only then is the exact length asked of storage (3FS's
         * updateLength). A session that wrote nothing cannot have changed it.
         */
        updateLength: z.boolean().default(true),
      }),
      response: z.object({ attrs: InodeAttrs, lengthExact: z.boolean() }),
    },
    rename: {
      id: 11,
      request: req({ from: PathAt, to: PathAt, noReplace: z.boolean().default(false) }),
      response: Empty,
    },
    /** Directory entries in name order after `after`, a page at a time (readdirplus with attrs). */
    list: {
      id: 12,
      request: req({
        inode: InodeId,
        after: z.string().max(1024).default(''),
        limit: z.number().int().min(1).max(1024).default(128),
        withAttrs: z.boolean().default(false),
      }),
      response: z.object({ entries: z.array(DirEntry), more: z.boolean() }),
    },
    truncate: {
      id: 13,
      request: req({
        inode: InodeId,
        length: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
      }),
      response: AttrsReply,
    },
    setAttr: {
      id: 15,
      request: req({
        inode: InodeId,
        mode: Mode.optional(),
        /** chown: the new owner and group (the caller's own uid/gid are in the header). */
        ownerUid: U32.optional(),
        ownerGid: U32.optional(),
        atimeMs: z.number().optional(),
        mtimeMs: z.number().optional(),
      }),
      response: AttrsReply,
    },
    /** Closes every write session of a (dead) client. */
    pruneSession: {
      id: 16,
      request: req({ deadClientId: z.string().min(1).max(128) }),
      response: z.object({ pruned: z.number().int() }),
    },
    /**
     * Closes write sessions that wrote nothing, many in one transaction (the client defers them:
     * such a close changes no length, so nothing waits on it). Only sessions of the calling
     * client are closed; a session already gone counts as closed, so a retry is harmless.
     */
    closeSessions: {
      id: 33,
      request: req({
        sessions: z
          .array(z.object({ inode: InodeId, sessionId: z.string().min(1).max(256) }))
          .min(1)
          .max(MAX_CLOSE_BATCH),
      }),
      response: z.object({ closed: z.number().int() }),
    },
    batchStat: {
      id: 20,
      request: req({ inodes: z.array(InodeId).max(1024) }),
      response: z.object({ attrs: z.array(InodeAttrs.nullable()) }),
    },
    setQuota: {
      id: 30,
      request: req({ inode: InodeId, limits: QuotaLimits }),
      response: Empty,
    },
    getQuota: {
      id: 31,
      request: req({ inode: InodeId }),
      response: z.object({
        limits: QuotaLimits,
        usedBytes: z.number().int(),
        usedInodes: z.number().int(),
      }),
    },
    setLayout: {
      id: 32,
      request: req({ inode: InodeId, layout: LayoutOverride }),
      response: AttrsReply,
    },
  },
});

export type MetaMethods = (typeof MetaService)['methods'];
