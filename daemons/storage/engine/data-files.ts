// The data files of one disk: <dir>/data/<class>/<nn>, one directory per size class, opened with
// O_DIRECT (every engine I/O is page-aligned in offset, length and memory) or, on a file system
// that refuses O_DIRECT (tmpfs), buffered, said once in the log. Files grow by fallocate, through
// the I/O executor so the JS thread never blocks on the disk.
import { closeSync, constants, fstatSync, mkdirSync, openSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { syncDirectory } from '../../common/durable-files.js';
import type { Logger } from '../../common/log.js';
import { ThreeFsError } from '../../common/errors.js';
import { errnoName, type ChunkIo } from './chunk-io.js';
import { CLASS_COUNT, classBytes, className } from './size-classes.js';

/** Largest single zero-filling write when preparing a new extent. */
const ZERO_WRITE_BYTES = 8 * 2 ** 20;

export interface DataFilesOptions {
  dir: string;
  filesPerClass: number;
  /** 'auto': O_DIRECT when the file system supports it; 'off': always buffered. */
  directIo: 'auto' | 'off';
  /** Write zeros over each new extent, so later writes find written (not unwritten) extents. */
  zeroNewExtents: boolean;
  log: Logger;
}

export class DataFiles {
  /** Whether data I/O bypasses the page cache. */
  direct: boolean;
  private readonly fds = new Map<string, number>();

  constructor(
    private readonly options: DataFilesOptions,
    private readonly io: ChunkIo,
  ) {
    this.direct = options.directIo === 'auto';
  }

  private classDir(cls: number): string {
    return path.join(this.options.dir, 'data', className(cls));
  }

  filePath(cls: number, file: number): string {
    return path.join(this.classDir(cls), file.toString(16).padStart(2, '0'));
  }

  /**
   * Creates the class directories (so a nearly full disk never fails on a mkdir later) and opens
   * every existing data file; returns each one's preallocated blocks.
   */
  openExisting(): Array<{ cls: number; file: number; blocks: number }> {
    const found: Array<{ cls: number; file: number; blocks: number }> = [];
    for (let cls = 0; cls < CLASS_COUNT; cls++) {
      mkdirSync(this.classDir(cls), { recursive: true });
      const names = readdirSync(this.classDir(cls));
      for (const name of names) {
        const file = Number.parseInt(name, 16);
        if (!/^[0-9a-f]{2,}$/.test(name) || file >= this.options.filesPerClass) {
          // A data file past filesPerClass would hold chunks we could not address: refuse.
          throw new ThreeFsError(
            'FAILED_PRECONDITION',
            `unexpected data file ${path.join(this.classDir(cls), name)} (filesPerClass is ` +
              `${this.options.filesPerClass}; it may not shrink)`,
          );
        }
        const fd = this.fd(cls, file);
        found.push({ cls, file, blocks: Math.floor(fstatSync(fd).size / classBytes(cls)) });
      }
    }
    return found;
  }

  /** The fd for I/O on a data file, creating the file on first use. */
  fd(cls: number, file: number): number {
    const key = `${cls}/${file}`;
    const open = this.fds.get(key);
    if (open !== undefined) return open;
    try {
      return this.openFile(key, cls, file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new ThreeFsError(
        code === 'ENOSPC' || code === 'EDQUOT' ? 'NO_SPACE' : 'UNAVAILABLE',
        `cannot open data file ${this.filePath(cls, file)}: ${(err as Error).message}`,
      );
    }
  }

  private openFile(key: string, cls: number, file: number): number {
    const dir = this.classDir(cls);
    const filePath = this.filePath(cls, file);
    mkdirSync(dir, { recursive: true });
    const flags = constants.O_RDWR | constants.O_CREAT;
    let fd: number | undefined;
    if (this.direct) {
      try {
        fd = openSync(filePath, flags | constants.O_DIRECT, 0o600);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EINVAL') throw err;
        this.direct = false;
        this.options.log.warn(
          { dir: this.options.dir },
          'the file system refuses O_DIRECT (tmpfs?): chunk data I/O goes through the page cache',
        );
      }
    }
    fd ??= openSync(filePath, flags, 0o600);
    this.fds.set(key, fd);
    // The directory entry must be durable before any record can name a block in this file.
    syncDirectory(dir);
    return fd;
  }

  /** Preallocates blocks [fromBlock, fromBlock + count) of a data file. */
  async extend(cls: number, file: number, fromBlock: number, count: number): Promise<void> {
    const fd = this.fd(cls, file);
    const offset = fromBlock * classBytes(cls);
    const length = count * classBytes(cls);
    const [result] = await this.io.submit([{ op: 'fallocate', fd, offset, length, mode: 0 }]);
    if (!result || result.result < 0) {
      const errno = result?.result ?? -5;
      throw new ThreeFsError(
        errno === -28 || errno === -122 ? 'NO_SPACE' : 'UNAVAILABLE',
        `cannot preallocate ${length} bytes in data file ${className(cls)}/${file}: ${errnoName(errno)}`,
      );
    }
    if (!this.options.zeroNewExtents) return;
    const ops: Parameters<ChunkIo['submit']>[0][number][] = [];
    for (let at = 0; at < length; at += ZERO_WRITE_BYTES) {
      const n = Math.min(ZERO_WRITE_BYTES, length - at);
      ops.push({ op: 'write', fd, offset: offset + at, length: n, pieces: [], granule: 0 });
    }
    ops.push({ op: 'fdatasync', fd });
    const results = await this.io.submit(ops);
    const failed = results.find((r) => r.result < 0);
    if (failed) {
      throw new ThreeFsError(
        failed.result === -28 ? 'NO_SPACE' : 'UNAVAILABLE',
        `cannot zero a new extent of ${className(cls)}/${file}: ${errnoName(failed.result)}`,
      );
    }
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}
