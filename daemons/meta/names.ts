// Rules for names and paths, as pure functions (brief §12 item 18 limits; Linux's NAME_MAX and
// PATH_MAX): a bad name gets a clear POSIX error before any transaction runs.
import { ThreeFsError } from '../common/errors.js';

export const NAME_MAX_BYTES = 255;
export const PATH_MAX_BYTES = 4096;
/** Symlinks followed while resolving one path before ELOOP (3FS: 10). */
export const MAX_SYMLINK_FOLLOWS = 10;
/** Directory levels walked upwards (ancestor checks) before the tree is declared corrupt. */
export const MAX_DIR_DEPTH = 4096;

/** Whether `name` is over NAME_MAX bytes (UTF-8 takes 1 to 3 bytes per UTF-16 unit). */
export function nameTooLong(name: string): boolean {
  if (name.length > NAME_MAX_BYTES) return true;
  return name.length * 3 > NAME_MAX_BYTES && Buffer.byteLength(name) > NAME_MAX_BYTES;
}

export function tooLongError(name: string): ThreeFsError {
  return new ThreeFsError(
    'ENAMETOOLONG',
    `name of ${Buffer.byteLength(name)} bytes is over ${NAME_MAX_BYTES}`,
  );
}

export function checkName(name: string): void {
  if (name.length === 0) throw new ThreeFsError('ENOENT', 'empty file name');
  if (nameTooLong(name)) throw tooLongError(name);
  if (name.includes('\u0000')) throw new ThreeFsError('EINVAL', 'a name may not contain NUL');
  if (name.includes('/')) throw new ThreeFsError('EINVAL', `name "${name}" contains "/"`);
}

/**
 * The components of a path; "." dropped, ".." kept for the resolver. A component over NAME_MAX is
 * refused where the walk reaches it (MetaTxn.dentry), as Linux does: "missing/<long name>" is
 * ENOENT, "existing/<long name>" ENAMETOOLONG.
 */
export function splitPath(path: string): { absolute: boolean; parts: string[] } {
  if (Buffer.byteLength(path) > PATH_MAX_BYTES) {
    throw new ThreeFsError(
      'ENAMETOOLONG',
      `path of ${Buffer.byteLength(path)} bytes is over ${PATH_MAX_BYTES}`,
    );
  }
  if (path.includes('\u0000')) throw new ThreeFsError('EINVAL', 'a path may not contain NUL');
  const parts = path.split('/').filter((p) => p !== '' && p !== '.');
  return { absolute: path.startsWith('/'), parts };
}
