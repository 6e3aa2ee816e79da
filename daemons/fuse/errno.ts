// ThreeFsError codes → errno numbers the kernel hands to the application. Meta's POSIX codes map
// 1:1; a peer that stayed unreachable past the operation timeout is EIO (never a hang).
import { constants } from 'node:os';
import { isStatusCode, type StatusCode, ThreeFsError } from '../common/errors.js';

export const errno = constants.errno;

const byCode: Partial<Record<StatusCode, number>> = {
  ENOENT: errno.ENOENT,
  EEXIST: errno.EEXIST,
  ENOTEMPTY: errno.ENOTEMPTY,
  EISDIR: errno.EISDIR,
  ENOTDIR: errno.ENOTDIR,
  EACCES: errno.EACCES,
  EPERM: errno.EPERM,
  EXDEV: errno.EXDEV,
  EDQUOT: errno.EDQUOT,
  ENAMETOOLONG: errno.ENAMETOOLONG,
  ELOOP: errno.ELOOP,
  EINVAL: errno.EINVAL,
  ENOSPC: errno.ENOSPC,
  EBADF: errno.EBADF,
  EFBIG: errno.EFBIG,
  EMLINK: errno.EMLINK,
  NOT_FOUND: errno.ENOENT,
  ALREADY_EXISTS: errno.EEXIST,
  PERMISSION_DENIED: errno.EACCES,
  INVALID_ARGUMENT: errno.EINVAL,
  NO_SPACE: errno.ENOSPC,
  RESOURCE_EXHAUSTED: errno.EAGAIN,
  UNIMPLEMENTED: errno.ENOSYS,
  CANCELLED: errno.EINTR,
};

/** The errno for any thrown value: unknown failures (and timeouts) are EIO. */
export function errnoOf(err: unknown): number {
  if (err instanceof ThreeFsError || (err instanceof Error && isStatusCode(err.name))) {
    const code = (err as ThreeFsError).code;
    return byCode[code] ?? errno.EIO;
  }
  return errno.EIO;
}
