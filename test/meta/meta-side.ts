// One side of the namespace comparisons: the seeded operations of test/helpers/namespace-ops.ts
// applied through meta's RPC, paths relative to a directory, and the tree under it as list sees it.
import assert from 'node:assert/strict';
import type { MetaClient } from '../../daemons/client/meta-client.js';
import type { NamespaceSide, Op, Outcome, TreeEntry } from '../helpers/namespace-ops.js';

/** Far deeper than the operations nest (they move directories into others, a level at a time). */
const MAX_DEPTH = 64;

/** The system under test: the same operation through meta's RPC, paths relative to `rootId`. */
export class MetaSide implements NamespaceSide {
  constructor(
    private readonly meta: MetaClient,
    private readonly rootId: number,
  ) {}

  private at(p: string) {
    return { parent: this.rootId, path: p };
  }

  async apply(op: Op): Promise<Outcome> {
    try {
      switch (op.kind) {
        case 'mkdir':
          await this.meta.call('mkdirs', { at: this.at(op.path) });
          return { code: 'OK' };
        case 'create':
          await this.meta.call('create', {
            at: this.at(op.path),
            flags: { exclusive: op.exclusive },
          });
          return { code: 'OK' };
        case 'unlink':
          await this.meta.call('remove', { at: this.at(op.path), kind: 'file' });
          return { code: 'OK' };
        case 'rmdir':
          await this.meta.call('remove', { at: this.at(op.path), kind: 'dir' });
          return { code: 'OK' };
        case 'rename':
          await this.meta.call('rename', { from: this.at(op.from), to: this.at(op.to) });
          return { code: 'OK' };
        case 'link': {
          // link(2) does not follow a symlink it is given: the link names the symlink itself.
          const { attrs } = await this.meta.call('stat', { at: this.at(op.from), follow: false });
          await this.meta.call('hardLink', { inode: attrs.id, at: this.at(op.to) });
          return { code: 'OK' };
        }
        case 'symlink':
          await this.meta.call('symlink', { at: this.at(op.path), target: op.target });
          return { code: 'OK' };
        case 'stat': {
          const { attrs } = await this.meta.call('stat', {
            at: this.at(op.path),
            follow: op.follow,
          });
          return { code: 'OK', type: attrs.type, inode: String(attrs.id) };
        }
        case 'chmod': {
          // chmod(2) follows symlinks.
          const { attrs } = await this.meta.call('stat', { at: this.at(op.path) });
          await this.meta.call('setAttr', { inode: attrs.id, mode: op.mode });
          return { code: 'OK' };
        }
        case 'open': {
          const { attrs, session } = await this.meta.call('open', {
            at: this.at(op.path),
            flags: { write: op.write, truncate: op.truncate },
          });
          if (session) {
            await this.meta.call('close', {
              inode: attrs.id,
              sessionId: session.sessionId,
              updateLength: false,
            });
          }
          return { code: 'OK' };
        }
        case 'truncate': {
          // truncate(2) follows symlinks and needs write permission on the file.
          const { attrs } = await this.meta.call('stat', { at: this.at(op.path) });
          await this.meta.call('truncate', { inode: attrs.id, length: op.length });
          return { code: 'OK' };
        }
        case 'chown': {
          // chown(2) follows symlinks; -1 keeps an id.
          const { attrs } = await this.meta.call('stat', { at: this.at(op.path) });
          await this.meta.call('setAttr', {
            inode: attrs.id,
            ownerUid: op.uid === -1 ? undefined : op.uid,
            ownerGid: op.gid === -1 ? undefined : op.gid,
          });
          return { code: 'OK' };
        }
        case 'readdir': {
          const { attrs } = await this.meta.call('stat', { at: this.at(op.path) });
          if (attrs.type !== 'dir') return { code: 'ENOTDIR' };
          return { code: 'OK', names: (await this.entries(attrs.id)).map((e) => e.name) };
        }
      }
    } catch (err) {
      return { code: (err as { code?: string }).code ?? String(err) };
    }
  }

  private async entries(inode: number) {
    const all = [];
    let after = '';
    for (let page = 0; page < 1_000; page++) {
      const { entries, more } = await this.meta.call('list', {
        inode,
        after,
        limit: 64,
        withAttrs: true,
      });
      all.push(...entries);
      if (!more) return all;
      after = entries[entries.length - 1]!.name;
    }
    throw new Error(`directory ${inode} lists more than 64,000 entries`);
  }

  /** Every entry under the root, depth first; a directory deeper than MAX_DEPTH fails the walk. */
  async tree(dir = '', inode = this.rootId, depth = 0): Promise<TreeEntry[]> {
    assert.ok(depth <= MAX_DEPTH, `${dir} is ${depth} levels deep: a directory cycle?`);
    const out: TreeEntry[] = [];
    for (const e of await this.entries(inode)) {
      const p = dir === '' ? e.name : `${dir}/${e.name}`;
      assert.ok(e.attrs, `list with attributes returned none for ${p}`);
      const entry: TreeEntry = {
        path: p,
        type: e.type,
        inode: String(e.id),
        owner: `${e.attrs.uid}:${e.attrs.gid}`,
      };
      if (e.type !== 'dir') entry.nlink = e.attrs.nlink;
      if (e.type === 'symlink') entry.target = e.attrs.target ?? '';
      else entry.mode = e.attrs.mode & 0o7777;
      if (e.type === 'file') entry.length = e.attrs.length;
      out.push(entry);
      if (e.type === 'dir') out.push(...(await this.tree(p, e.id, depth + 1)));
    }
    return out;
  }
}
