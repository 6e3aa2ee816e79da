// Checks before mounting, each failing with a message a user can act on: FUSE itself present
// (/dev/fuse, and fusermount3 when not root), and a mount point that exists, is a directory, is
// empty and is not already a mount.
import { access, readdir, readFile, stat } from 'node:fs/promises';
import { constants } from 'node:fs';
import path from 'node:path';
import { ThreeFsError } from '../common/errors.js';

/** Mount points listed in a /proc/self/mountinfo text (field 5, octal escapes decoded). */
export function mountPoints(mountinfo: string): string[] {
  return mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined && p !== '')
    .map((p) =>
      p.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8))),
    );
}

async function onPath(program: string): Promise<boolean> {
  for (const dir of (process.env.PATH ?? '/usr/bin:/bin').split(':')) {
    try {
      await access(path.join(dir, program), constants.X_OK);
      return true;
    } catch {
      // not here
    }
  }
  return false;
}

export async function checkFuseAvailable(): Promise<void> {
  try {
    await access('/dev/fuse', constants.R_OK | constants.W_OK);
  } catch {
    throw new ThreeFsError(
      'FAILED_PRECONDITION',
      'FUSE is unavailable: /dev/fuse is missing or not accessible (install fuse3 and load the fuse module; in a container, pass --device /dev/fuse)',
    );
  }
  if (process.getuid?.() !== 0 && !(await onPath('fusermount3'))) {
    throw new ThreeFsError(
      'FAILED_PRECONDITION',
      'FUSE is unavailable: fusermount3 is not on PATH (install fuse3), and mounting without it needs root',
    );
  }
}

export async function checkMountPoint(mountpoint: string): Promise<string> {
  const dir = path.resolve(mountpoint);
  let info;
  try {
    info = await stat(dir);
  } catch (err) {
    throw new ThreeFsError(
      'FAILED_PRECONDITION',
      `mount point ${dir} does not exist (${(err as NodeJS.ErrnoException).code ?? 'error'}); create it first`,
    );
  }
  if (!info.isDirectory())
    throw new ThreeFsError('FAILED_PRECONDITION', `mount point ${dir} is not a directory`);
  const mounted = mountPoints(await readFile('/proc/self/mountinfo', 'utf8').catch(() => ''));
  if (mounted.includes(dir))
    throw new ThreeFsError('FAILED_PRECONDITION', `${dir} is already mounted; unmount it first`);
  if ((await readdir(dir)).length > 0)
    throw new ThreeFsError('FAILED_PRECONDITION', `mount point ${dir} is not empty`);
  return dir;
}
