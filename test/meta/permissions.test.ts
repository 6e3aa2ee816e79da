import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type Caller,
  chmodResult,
  chownResult,
  inheritedOwnership,
  mayAccess,
  mayHardLink,
  mayRemoveEntry,
  modeAfterWrite,
  type Owned,
  R_OK,
  W_OK,
  X_OK,
} from '../../daemons/meta/permissions.js';

const root: Caller = { uid: 0, gid: 0, groups: [] };
const alice: Caller = { uid: 1000, gid: 1000, groups: [50] };
const bob: Caller = { uid: 1001, gid: 1001, groups: [] };
const file = (mode: number, uid = 1000, gid = 1000): Owned => ({ uid, gid, mode });

describe('access checks', () => {
  const rows: Array<[string, Owned, Caller, number, boolean, boolean]> = [
    ['owner reads 0600', file(0o600), alice, R_OK, false, true],
    ['other cannot read 0600', file(0o600), bob, R_OK, false, false],
    ['group reads 0640', file(0o640, 1001, 1000), alice, R_OK, false, true],
    ['supplementary group reads 0640', file(0o640, 1001, 50), alice, R_OK, false, true],
    [
      'owner class decides even when other allows more (0077)',
      file(0o077),
      alice,
      R_OK,
      false,
      false,
    ],
    [
      'group class decides even when other allows more (0707)',
      file(0o707, 1001, 1000),
      alice,
      R_OK,
      false,
      false,
    ],
    ['read+write needs both bits', file(0o400), alice, R_OK | W_OK, false, false],
    ['root reads and writes 0000', file(0o000), root, R_OK | W_OK, false, true],
    ['root cannot execute a file with no x bit', file(0o600), root, X_OK, false, false],
    ['root executes a file with any x bit', file(0o601), root, X_OK, false, true],
    ['root searches a directory with no x bit', file(0o000), root, X_OK, true, true],
  ];
  for (const [name, inode, caller, want, dir, expected] of rows) {
    it(name, () => assert.equal(mayAccess(inode, caller, want, dir), expected));
  }
});

describe('sticky directories', () => {
  const tmp = file(0o1777, 0, 0);
  it('anyone may remove their own entry', () =>
    assert.equal(mayRemoveEntry(tmp, file(0o644, 1001), bob), true));
  it("nobody may remove another user's entry", () =>
    assert.equal(mayRemoveEntry(tmp, file(0o644, 1000), bob), false));
  it("the directory owner may remove anyone's entry", () =>
    assert.equal(mayRemoveEntry(file(0o1777, 1001), file(0o644, 1000), bob), true));
  it('root may remove anything', () =>
    assert.equal(mayRemoveEntry(tmp, file(0o644, 1000), root), true));
  it('without the sticky bit, write on the directory suffices', () =>
    assert.equal(mayRemoveEntry(file(0o777, 0, 0), file(0o644, 1000), bob), true));
  it('without write on the directory nobody but root removes', () =>
    assert.equal(mayRemoveEntry(file(0o755, 1000), file(0o644, 1001), bob), false));
});

describe('special bits', () => {
  it('a write by a non-root caller clears setuid, and setgid when group-execute is set', () => {
    assert.equal(modeAfterWrite(0o6755, bob), 0o0755);
    assert.equal(
      modeAfterWrite(0o6745, bob),
      0o2745,
      'setgid without group-exec marks mandatory locking: kept',
    );
    assert.equal(modeAfterWrite(0o6755, root), 0o6755);
  });

  it('chmod: owner or root only; setgid needs membership of the group', () => {
    assert.deepEqual(chmodResult(file(0o644), bob, 0o777), { ok: false, errno: 'EPERM' });
    assert.deepEqual(chmodResult(file(0o644), alice, 0o2755), { ok: true, mode: 0o2755 });
    assert.deepEqual(chmodResult(file(0o644, 1000, 77), alice, 0o2755), { ok: true, mode: 0o0755 });
    assert.deepEqual(chmodResult(file(0o644), root, 0o4755), { ok: true, mode: 0o4755 });
  });

  it('chown as Linux: only root gives files away, owners pick their own groups, any chown of a file drops suid', () => {
    const rows: Array<
      [
        string,
        Owned,
        Caller,
        number | undefined,
        number | undefined,
        boolean,
        ReturnType<typeof chownResult>,
      ]
    > = [
      [
        'the owner may not give a file away',
        file(0o4755),
        alice,
        1001,
        undefined,
        false,
        { ok: false, errno: 'EPERM' },
      ],
      [
        'the owner picks a supplementary group; setuid drops',
        file(0o4755),
        alice,
        undefined,
        50,
        false,
        { ok: true, mode: 0o755 },
      ],
      [
        'the owner may not pick a group of others',
        file(0o644),
        alice,
        undefined,
        77,
        false,
        { ok: false, errno: 'EPERM' },
      ],
      [
        'a non-owner may not change the group',
        file(0o644),
        bob,
        undefined,
        1001,
        false,
        { ok: false, errno: 'EPERM' },
      ],
      [
        'a non-owner may not even name the same owner',
        file(0o644),
        bob,
        1000,
        undefined,
        false,
        { ok: false, errno: 'EPERM' },
      ],
      [
        'the owner naming itself and its group changes nothing',
        file(0o644),
        alice,
        1000,
        1000,
        false,
        { ok: true, mode: 0o644 },
      ],
      [
        "root's chown drops setuid and group-executable setgid too",
        file(0o6755),
        root,
        1001,
        1001,
        false,
        { ok: true, mode: 0o755 },
      ],
      [
        'root keeps a setgid without group execute (a locking mark)',
        file(0o2745),
        root,
        0,
        0,
        false,
        { ok: true, mode: 0o2745 },
      ],
      [
        'an owner in the group keeps it as well',
        file(0o2745),
        alice,
        undefined,
        50,
        false,
        { ok: true, mode: 0o2745 },
      ],
      [
        'directories keep their bits',
        file(0o6755),
        root,
        1001,
        1001,
        true,
        { ok: true, mode: 0o6755 },
      ],
    ];
    for (const [what, inode, caller, uid, gid, isDir, expected] of rows) {
      const typed = { ...inode, type: isDir ? ('dir' as const) : ('file' as const) };
      assert.deepEqual(chownResult(typed, caller, uid, gid), expected, what);
    }
  });

  it('new inodes take the umask, and setgid directories pass their group down', () => {
    assert.deepEqual(inheritedOwnership(file(0o755), alice, 0o666, 0o022, false), {
      uid: 1000,
      gid: 1000,
      mode: 0o644,
    });
    assert.deepEqual(inheritedOwnership(file(0o2775, 0, 77), alice, 0o777, 0o002, true), {
      uid: 1000,
      gid: 77,
      mode: 0o2775,
    });
    assert.deepEqual(inheritedOwnership(file(0o2775, 0, 77), alice, 0o666, 0o002, false), {
      uid: 1000,
      gid: 77,
      mode: 0o664,
    });
  });
});

describe('hard links by other users (Linux with fs.protected_hardlinks = 1)', () => {
  const typed = (type: 'file' | 'dir' | 'symlink', mode: number, uid = 1001) => ({
    ...file(mode, uid, 1001),
    type,
  });
  const rows: Array<[string, ReturnType<typeof typed>, Caller, boolean]> = [
    ['the owner links anything of theirs', typed('file', 0o000, 1000), alice, true],
    ['root links anything', typed('file', 0o4755), root, true],
    ["another's file they may read and write", typed('file', 0o666), alice, true],
    ["another's file they may only read", typed('file', 0o644), alice, false],
    ["another's setuid file, even writable", typed('file', 0o4777), alice, false],
    ["another's setgid, group-executable file", typed('file', 0o2777), alice, false],
    ["another's setgid file without group execute", typed('file', 0o2766), alice, true],
    ["another's symlink", typed('symlink', 0o777), alice, false],
  ];
  for (const [what, inode, caller, allowed] of rows) {
    it(what, () => assert.equal(mayHardLink(inode, caller), allowed));
  }
});
