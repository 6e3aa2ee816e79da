// POSIX permission rules for the namespace (brief §5.3), as pure functions over the caller's
// identity and an inode's owner and mode. Meta decides every access with these; the FUSE mount
// passes the caller's uid, gid and supplementary groups with every request.

export interface Caller {
  uid: number;
  gid: number;
  /** Supplementary groups. */
  groups: readonly number[];
}

export interface Owned {
  uid: number;
  gid: number;
  /** Permission and special bits (07777); the file type is kept elsewhere. */
  mode: number;
}

/** An owned inode whose kind decides a rule (hard links, chown). */
export type OwnedInode = Owned & { type: 'file' | 'dir' | 'symlink' };

export const S_ISUID = 0o4000;
export const S_ISGID = 0o2000;
export const S_ISVTX = 0o1000;
export const R_OK = 4;
export const W_OK = 2;
export const X_OK = 1;

export function isRoot(caller: Caller): boolean {
  return caller.uid === 0;
}

export function inGroup(caller: Caller, gid: number): boolean {
  return caller.gid === gid || caller.groups.includes(gid);
}

/**
 * Whether the caller may access an inode with every bit of `want` (R_OK|W_OK|X_OK). One class
 * decides, as in POSIX: the owner's bits for the owner even if "other" would allow more. Root may
 * read and write anything, and execute a file only if some execute bit is set.
 */
export function mayAccess(
  inode: Owned,
  caller: Caller,
  want: number,
  isDirectory: boolean,
): boolean {
  if (isRoot(caller)) {
    if ((want & X_OK) === 0 || isDirectory) return true;
    return (inode.mode & 0o111) !== 0;
  }
  let bits: number;
  if (caller.uid === inode.uid) bits = (inode.mode >> 6) & 7;
  else if (inGroup(caller, inode.gid)) bits = (inode.mode >> 3) & 7;
  else bits = inode.mode & 7;
  return (bits & want) === want;
}

/**
 * Removing or renaming an entry needs write and search on the directory; in a sticky directory
 * (like /tmp) the caller must also own the entry or the directory, or be root.
 */
export function mayRemoveEntry(directory: Owned, entry: Owned, caller: Caller): boolean {
  if (!mayAccess(directory, caller, W_OK | X_OK, true)) return false;
  if ((directory.mode & S_ISVTX) === 0 || isRoot(caller)) return true;
  return caller.uid === entry.uid || caller.uid === directory.uid;
}

/**
 * Hard links by someone other than the owner, as Linux with fs.protected_hardlinks = 1 (the
 * distributions' default) allows them: only to a regular file the caller may read and write that
 * is neither setuid nor setgid-and-group-executable. Stops a user pinning, in a shared directory,
 * a file they could not otherwise keep (a setuid binary about to be replaced, another's secret).
 */
export function mayHardLink(inode: OwnedInode, caller: Caller): boolean {
  if (isRoot(caller) || caller.uid === inode.uid) return true;
  if (inode.type !== 'file' || (inode.mode & S_ISUID) !== 0) return false;
  if ((inode.mode & (S_ISGID | 0o010)) === (S_ISGID | 0o010)) return false;
  return mayAccess(inode, caller, R_OK | W_OK, false);
}

/** Mode after a write: setuid always drops; setgid drops if group-execute is set (Linux rules). */
export function modeAfterWrite(mode: number, caller: Caller): number {
  if (isRoot(caller)) return mode;
  let next = mode & ~S_ISUID;
  if (mode & 0o010) next &= ~S_ISGID;
  return next;
}

export type AttrChangeResult = { ok: true; mode: number } | { ok: false; errno: 'EPERM' };

/**
 * Mode after a write open by `caller`. Linux clears setuid (and setgid with group-execute) at the
 * first write by anyone but root; meta sees opens, not writes, so a non-owner's write open clears
 * them now, and an owner's writes leave them to the kernel (through the mount it sends the change
 * as a setattr when the first write comes).
 */
export function modeAfterWriteOpen(inode: Owned, caller: Caller): number {
  return caller.uid === inode.uid ? inode.mode : modeAfterWrite(inode.mode, caller);
}

/** chmod: owner or root only; a non-root caller outside the file's group cannot set setgid. */
export function chmodResult(inode: Owned, caller: Caller, newMode: number): AttrChangeResult {
  if (!isRoot(caller) && caller.uid !== inode.uid) return { ok: false, errno: 'EPERM' };
  let mode = newMode & 0o7777;
  if (!isRoot(caller) && !inGroup(caller, inode.gid)) mode &= ~S_ISGID;
  return { ok: true, mode };
}

/**
 * chown as Linux decides it (fs/attr.c chown_ok, chgrp_ok): a new uid only from root, or from the
 * owner naming itself; a new gid only from root, or from the owner naming the current group or
 * one of its own. Any chown of a non-directory, root's included, clears setuid, and setgid when
 * group-execute is set (or the caller is outside the file's group and not root).
 */
export function chownResult(
  inode: OwnedInode,
  caller: Caller,
  uid: number | undefined,
  gid: number | undefined,
): AttrChangeResult {
  if (!isRoot(caller)) {
    const owner = caller.uid === inode.uid;
    if (uid !== undefined && !(owner && uid === inode.uid)) return { ok: false, errno: 'EPERM' };
    if (gid !== undefined && !(owner && (gid === inode.gid || inGroup(caller, gid)))) {
      return { ok: false, errno: 'EPERM' };
    }
  }
  let mode = inode.mode;
  if (inode.type !== 'dir') {
    mode &= ~S_ISUID;
    const keepsGroupRights = isRoot(caller) || inGroup(caller, inode.gid);
    if ((mode & S_ISGID) !== 0 && ((mode & 0o010) !== 0 || !keepsGroupRights)) mode &= ~S_ISGID;
  }
  return { ok: true, mode };
}

/** A new inode's mode: requested bits less the umask; setgid directories pass their group down. */
export function inheritedOwnership(
  parent: Owned,
  caller: Caller,
  requestedMode: number,
  umask: number,
  isDirectory: boolean,
): { uid: number; gid: number; mode: number } {
  let mode = requestedMode & 0o7777 & ~umask;
  let gid = caller.gid;
  if (parent.mode & S_ISGID) {
    gid = parent.gid;
    if (isDirectory) mode |= S_ISGID;
  }
  return { uid: caller.uid, gid, mode };
}
