// Insertion into a Map kept at a fixed bound, oldest out first: the eviction every bounded cache
// here uses (decoded inodes, directory entries, client stripes). A Map iterates in insertion
// order, so re-setting a key moves it to the back and the first key is the one longest unset.
import { ThreeFsError } from './errors.js';

/** Sets `key`, first evicting the oldest key when the map already holds `max`; `what` names it. */
export function setBounded<K, V>(
  map: Map<K, V>,
  key: K,
  value: V,
  max: number,
  what: string,
): void {
  map.delete(key);
  if (map.size >= max) {
    const oldest = map.keys().next();
    if (oldest.done !== true) map.delete(oldest.value);
  }
  map.set(key, value);
  if (map.size > max) throw new ThreeFsError('INTERNAL', `${what} grew past its bound`);
}
