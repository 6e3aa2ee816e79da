// The completion doorbell handshake of a USRBIO region, both ends in this process (the daemon's
// end maps the program's memfd through /proc/self/fd, as the FUSE daemon does through the
// program's pid): the daemon rings only for a program that armed a wake-up, once per arming, and
// a program that arms after CQEs were posted is told to reap them instead of waiting.
import assert from 'node:assert/strict';
import { closeSync, openSync, writeSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Posted, usrbioAddon } from '../../daemons/common/usrbio-native.js';

function pair(entries = 4) {
  const { ProgramRing, DaemonRing } = usrbioAddon();
  const program = new ProgramRing(entries, 4096);
  const daemon = new DaemonRing(process.pid, program.fd, entries, 4096, 4096);
  return { program, daemon };
}

const one = (userData: number) => Float64Array.of(userData, 4096);

describe('usrbio wake-up handshake', () => {
  it('posts quietly while the program is not waiting', () => {
    const { program, daemon } = pair();
    assert.equal(daemon.complete(one(1)), Posted.quiet);
    assert.deepEqual([...program.reap(4)], [1, 4096]);
  });

  it('rings once for an armed program, then quietly until it arms again', () => {
    const { program, daemon } = pair();
    assert.equal(program.armWakeup(), false, 'nothing posted yet: wait for the doorbell');
    assert.equal(daemon.complete(one(1)), Posted.wake);
    assert.equal(daemon.complete(one(2)), Posted.quiet, 'the request was used up');
    assert.deepEqual([...program.reap(4)], [1, 4096, 2, 4096]);
    assert.equal(program.armWakeup(), false);
    assert.equal(daemon.complete(one(3)), Posted.wake);
  });

  it('tells a program that arms after a quiet post to reap instead of waiting', () => {
    const { program, daemon } = pair();
    assert.equal(daemon.complete(one(1)), Posted.quiet);
    assert.equal(program.armWakeup(), true, 'a CQE is there that nobody rang for');
    assert.deepEqual([...program.reap(4)], [1, 4096]);
  });

  it('posts quietly after the program withdrew its request', () => {
    const { program, daemon } = pair();
    assert.equal(program.armWakeup(), false);
    program.disarmWakeup();
    assert.equal(daemon.complete(one(1)), Posted.quiet);
  });

  it('writes nothing and rings nobody when the completions do not fit', () => {
    const { program, daemon } = pair(2);
    assert.equal(program.armWakeup(), false);
    assert.equal(daemon.complete(Float64Array.of(1, 1, 2, 2, 3, 3)), Posted.noRoom);
    assert.equal(program.reap(4).length, 0);
    assert.equal(daemon.complete(one(4)), Posted.wake, 'the request is still armed');
  });
});

describe('usrbio region versions', () => {
  it('refuses a region of another layout version, naming both', () => {
    const program = new (usrbioAddon().ProgramRing)(4, 4096);
    // The header's second word is the layout version (ring_layout.h: Shape).
    const fd = openSync(`/proc/self/fd/${program.fd}`, 'r+');
    try {
      writeSync(fd, Buffer.from(Uint32Array.of(1).buffer), 0, 4, 4);
    } finally {
      closeSync(fd);
    }
    assert.throws(
      () => new (usrbioAddon().DaemonRing)(process.pid, program.fd, 4, 4096, 4096),
      /layout version 1, this daemon reads version 2/,
    );
  });
});
