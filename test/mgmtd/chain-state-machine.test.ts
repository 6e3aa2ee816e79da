// Every row of the chain state machine (brief §2.4), then a bounded randomized run over long event
// sequences that checks the safety invariants against a model of which replicas hold the data.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { shutdownChain } from '../../daemons/mgmtd/chain-admin.js';
import {
  type Chain,
  nextPublicStates,
  updateChain,
} from '../../daemons/mgmtd/chain-state-machine.js';
import type { LocalTargetState, PublicTargetState } from '../../daemons/common/target-states.js';
import { mulberry32 } from '../helpers/rng.js';

type Row = {
  name: string;
  chain: Array<[PublicTargetState, LocalTargetState | undefined]>;
  expect: PublicTargetState[];
};

// Chains are given head first as [old public state, local state]; `expect` is in the same order.
const rows: Row[] = [
  { name: 'SERVING + ONLINE stays SERVING', chain: [['SERVING', 'ONLINE']], expect: ['SERVING'] },
  {
    name: 'SERVING + UPTODATE stays SERVING',
    chain: [['SERVING', 'UPTODATE']],
    expect: ['SERVING'],
  },
  {
    name: 'SERVING + OFFLINE with another serving goes OFFLINE',
    chain: [
      ['SERVING', 'OFFLINE'],
      ['SERVING', 'UPTODATE'],
    ],
    expect: ['OFFLINE', 'SERVING'],
  },
  {
    name: 'SERVING + OFFLINE with another finishing sync goes OFFLINE',
    chain: [
      ['SERVING', 'OFFLINE'],
      ['SYNCING', 'UPTODATE'],
    ],
    expect: ['OFFLINE', 'SERVING'],
  },
  {
    name: 'SERVING + OFFLINE, nobody serves: the first becomes LASTSRV, the rest OFFLINE',
    chain: [
      ['SERVING', 'OFFLINE'],
      ['SERVING', 'OFFLINE'],
      ['SERVING', undefined],
    ],
    expect: ['LASTSRV', 'OFFLINE', 'OFFLINE'],
  },
  {
    name: 'LASTSRV + ONLINE with nobody serving becomes SERVING',
    chain: [
      ['LASTSRV', 'ONLINE'],
      ['OFFLINE', 'ONLINE'],
    ],
    expect: ['SERVING', 'SYNCING'],
  },
  {
    name: 'LASTSRV + UPTODATE with nobody serving becomes SERVING',
    chain: [
      ['LASTSRV', 'UPTODATE'],
      ['OFFLINE', 'OFFLINE'],
    ],
    expect: ['SERVING', 'OFFLINE'],
  },
  {
    name: 'LASTSRV + OFFLINE with nobody serving stays LASTSRV',
    chain: [
      ['LASTSRV', 'OFFLINE'],
      ['WAITING', 'ONLINE'],
      ['OFFLINE', 'ONLINE'],
    ],
    expect: ['LASTSRV', 'WAITING', 'WAITING'],
  },
  {
    name: 'LASTSRV + ONLINE with another SERVING goes OFFLINE',
    chain: [
      ['SERVING', 'UPTODATE'],
      ['LASTSRV', 'ONLINE'],
    ],
    expect: ['SERVING', 'OFFLINE'],
  },
  {
    name: 'LASTSRV + OFFLINE with another SERVING goes OFFLINE',
    chain: [
      ['SERVING', 'UPTODATE'],
      ['LASTSRV', 'OFFLINE'],
    ],
    expect: ['SERVING', 'OFFLINE'],
  },
  {
    name: 'SYNCING + UPTODATE becomes SERVING',
    chain: [
      ['SERVING', 'UPTODATE'],
      ['SYNCING', 'UPTODATE'],
    ],
    expect: ['SERVING', 'SERVING'],
  },
  {
    name: 'SYNCING + ONLINE with someone serving stays SYNCING',
    chain: [
      ['SERVING', 'UPTODATE'],
      ['SYNCING', 'ONLINE'],
    ],
    expect: ['SERVING', 'SYNCING'],
  },
  {
    name: 'SYNCING + ONLINE with nobody serving goes WAITING (and the dead server LASTSRV)',
    chain: [
      ['SERVING', 'OFFLINE'],
      ['SYNCING', 'ONLINE'],
    ],
    expect: ['LASTSRV', 'WAITING'],
  },
  {
    name: 'SYNCING + OFFLINE goes OFFLINE',
    chain: [
      ['SERVING', 'UPTODATE'],
      ['SYNCING', 'OFFLINE'],
    ],
    expect: ['SERVING', 'OFFLINE'],
  },
  {
    name: 'WAITING + ONLINE with someone serving and nobody syncing starts SYNCING',
    chain: [
      ['SERVING', 'UPTODATE'],
      ['WAITING', 'ONLINE'],
    ],
    expect: ['SERVING', 'SYNCING'],
  },
  {
    name: 'OFFLINE + ONLINE with someone serving and nobody syncing starts SYNCING',
    chain: [
      ['SERVING', 'UPTODATE'],
      ['OFFLINE', 'ONLINE'],
    ],
    expect: ['SERVING', 'SYNCING'],
  },
  {
    name: 'only one of two returning targets syncs; the other waits',
    chain: [
      ['SERVING', 'UPTODATE'],
      ['OFFLINE', 'ONLINE'],
      ['WAITING', 'ONLINE'],
    ],
    expect: ['SERVING', 'SYNCING', 'WAITING'],
  },
  {
    name: 'WAITING + ONLINE waits while another target keeps syncing',
    chain: [
      ['SERVING', 'UPTODATE'],
      ['SYNCING', 'ONLINE'],
      ['WAITING', 'ONLINE'],
    ],
    expect: ['SERVING', 'SYNCING', 'WAITING'],
  },
  {
    name: 'WAITING + ONLINE starts syncing in the update where the syncing target dies',
    chain: [
      ['SERVING', 'UPTODATE'],
      ['SYNCING', 'OFFLINE'],
      ['WAITING', 'ONLINE'],
    ],
    expect: ['SERVING', 'OFFLINE', 'SYNCING'],
  },
  {
    name: 'WAITING + ONLINE with nobody serving stays WAITING',
    chain: [
      ['LASTSRV', 'OFFLINE'],
      ['WAITING', 'ONLINE'],
    ],
    expect: ['LASTSRV', 'WAITING'],
  },
  {
    name: 'OFFLINE + UPTODATE is not trusted: it waits (it must sync first)',
    chain: [
      ['SERVING', 'UPTODATE'],
      ['OFFLINE', 'UPTODATE'],
    ],
    expect: ['SERVING', 'WAITING'],
  },
  {
    name: 'WAITING + UPTODATE waits',
    chain: [
      ['SERVING', 'UPTODATE'],
      ['SYNCING', 'ONLINE'],
      ['WAITING', 'UPTODATE'],
    ],
    expect: ['SERVING', 'SYNCING', 'WAITING'],
  },
  {
    name: 'WAITING + OFFLINE goes OFFLINE; OFFLINE + OFFLINE stays OFFLINE',
    chain: [
      ['SERVING', 'UPTODATE'],
      ['WAITING', 'OFFLINE'],
      ['OFFLINE', 'OFFLINE'],
    ],
    expect: ['SERVING', 'OFFLINE', 'OFFLINE'],
  },
  {
    name: 'a target with no heartbeat counts as OFFLINE',
    chain: [
      ['SERVING', undefined],
      ['SERVING', 'ONLINE'],
    ],
    expect: ['OFFLINE', 'SERVING'],
  },
];

function chainOf(row: Row): { chain: Chain; local: Map<number, LocalTargetState> } {
  const local = new Map<number, LocalTargetState>();
  const targets = row.chain.map(([state, localState], i) => {
    if (localState) local.set(101 + i, localState);
    return { targetId: 101 + i, state };
  });
  return { chain: { chainId: 1, chainVersion: 7, targets }, local };
}

describe('chain state machine: every row of the table', () => {
  for (const row of rows) {
    it(row.name, () => {
      const { chain, local } = chainOf(row);
      assert.deepEqual(nextPublicStates(chain.targets, local), row.expect);
    });
  }
});

describe('chain state machine: ordering and versions', () => {
  it('re-orders SERVING, LASTSRV, SYNCING, WAITING, OFFLINE, stable within a state, and bumps the version', () => {
    const chain: Chain = {
      chainId: 9,
      chainVersion: 3,
      targets: [
        { targetId: 1, state: 'SERVING' },
        { targetId: 2, state: 'SERVING' },
        { targetId: 3, state: 'OFFLINE' },
        { targetId: 4, state: 'SERVING' },
        { targetId: 5, state: 'WAITING' },
      ],
    };
    const local = new Map<number, LocalTargetState>([
      [1, 'OFFLINE'],
      [2, 'UPTODATE'],
      [3, 'ONLINE'],
      [4, 'UPTODATE'],
      [5, 'ONLINE'],
    ]);
    const next = updateChain(chain, local);
    assert.equal(next.chainVersion, 4);
    assert.deepEqual(
      next.targets.map((t) => [t.targetId, t.state]),
      [
        [2, 'SERVING'],
        [4, 'SERVING'],
        [3, 'SYNCING'],
        [5, 'WAITING'],
        [1, 'OFFLINE'],
      ],
    );
  });

  it('returns the same chain, same version, when nothing changes', () => {
    const chain: Chain = {
      chainId: 1,
      chainVersion: 5,
      targets: [
        { targetId: 1, state: 'SERVING' },
        { targetId: 2, state: 'SYNCING' },
      ],
    };
    const local = new Map<number, LocalTargetState>([
      [1, 'UPTODATE'],
      [2, 'ONLINE'],
    ]);
    assert.equal(updateChain(chain, local), chain);
  });

  it('the dead head moves to the end, so its successor becomes head', () => {
    const chain: Chain = {
      chainId: 1,
      chainVersion: 1,
      targets: [1, 2, 3].map((targetId) => ({ targetId, state: 'SERVING' as const })),
    };
    const next = updateChain(
      chain,
      new Map<number, LocalTargetState>([
        [1, 'OFFLINE'],
        [2, 'UPTODATE'],
        [3, 'UPTODATE'],
      ]),
    );
    assert.deepEqual(
      next.targets.map((t) => t.targetId),
      [2, 3, 1],
    );
  });
});

// ---- randomized model check -------------------------------------------------------------------

interface ModelTarget {
  alive: boolean;
  /** Restart protocol: a returning target reports OFFLINE until mgmtd has demoted it. */
  restarting: boolean;
  /** Synced by its predecessor and told so (syncDone): reports UPTODATE. */
  syncDone: boolean;
  /** Whether this replica holds every acknowledged write (the model's ground truth). */
  hasAllData: boolean;
}

/**
 * Simulates one chain under random crashes, restarts, writes, sync completions and mgmtd updates
 * that run late (a slow failure detector). Returns a description of the first broken invariant.
 */
function simulate(seed: number, length: number, steps: number): string | undefined {
  const random = mulberry32(seed);
  const model = new Map<number, ModelTarget>();
  let chain: Chain = { chainId: 1, chainVersion: 1, targets: [] };
  const targets = [];
  for (let i = 0; i < length; i++) {
    model.set(i + 1, { alive: true, restarting: false, syncDone: false, hasAllData: true });
    targets.push({ targetId: i + 1, state: 'SERVING' as PublicTargetState });
  }
  chain = { ...chain, targets };
  let writesAcked = 0;

  const reportedLocal = (): Map<number, LocalTargetState> => {
    const local = new Map<number, LocalTargetState>();
    for (const t of chain.targets) {
      const m = model.get(t.targetId)!;
      if (!m.alive) continue; // no heartbeat: mgmtd's failure detector sees OFFLINE
      if (m.restarting) {
        const demoted = !['SERVING', 'SYNCING', 'WAITING'].includes(t.state);
        if (!demoted) {
          local.set(t.targetId, 'OFFLINE');
          continue;
        }
        m.restarting = false;
      }
      // Self-fencing: a target told it is no longer serving drops to OFFLINE until it restarts.
      local.set(t.targetId, t.state === 'SERVING' || m.syncDone ? 'UPTODATE' : 'ONLINE');
    }
    return local;
  };

  for (let step = 0; step < steps; step++) {
    const roll = random();
    const pick = chain.targets[Math.floor(random() * chain.targets.length)]!;
    const m = model.get(pick.targetId)!;
    if (roll < 0.01) {
      // A planned stop of the whole chain (admin shutdown-all-chains), then every process exits.
      chain = shutdownChain(chain);
      for (const tm of model.values()) {
        tm.alive = false;
        tm.syncDone = false;
      }
    } else if (roll < 0.15) {
      m.alive = false; // crash; data on disk survives
      m.syncDone = false;
    } else if (roll < 0.3) {
      if (!m.alive) {
        m.alive = true;
        m.restarting = true;
      }
    } else if (roll < 0.55) {
      // A client write: acknowledged only if every SERVING and SYNCING replica in the current
      // routing is alive (CRAQ forwards through all of them); then those hold it, others miss it.
      const writers = chain.targets.filter((t) => t.state === 'SERVING' || t.state === 'SYNCING');
      const serving = writers.filter((t) => t.state === 'SERVING');
      if (serving.length > 0 && writers.every((t) => model.get(t.targetId)!.alive)) {
        writesAcked++;
        for (const t of chain.targets) {
          const tm = model.get(t.targetId)!;
          if (t.state !== 'SERVING' && t.state !== 'SYNCING') tm.hasAllData = false;
        }
      }
    } else if (roll < 0.7) {
      // The predecessor finishes syncing a live SYNCING target: it now holds everything.
      const syncing = chain.targets.find((t) => t.state === 'SYNCING');
      const feeder = chain.targets.find(
        (t) => t.state === 'SERVING' && model.get(t.targetId)!.alive,
      );
      if (syncing && feeder && model.get(syncing.targetId)!.alive) {
        const sm = model.get(syncing.targetId)!;
        sm.syncDone = true;
        sm.hasAllData = model.get(feeder.targetId)!.hasAllData;
      }
    } else {
      const before = chain;
      chain = updateChain(chain, reportedLocal()); // asserts transition invariants itself
      if (chain.chainVersion < before.chainVersion) return `step ${step}: version went down`;
      for (const t of chain.targets) {
        const tm = model.get(t.targetId)!;
        if (t.state !== 'SERVING') tm.syncDone = false;
        if (t.state === 'SERVING' && !tm.hasAllData) {
          return `step ${step}: target ${t.targetId} SERVING without every acknowledged write`;
        }
      }
      const keepers = chain.targets.filter((t) => t.state === 'SERVING' || t.state === 'LASTSRV');
      if (writesAcked > 0 && !keepers.some((t) => model.get(t.targetId)!.hasAllData)) {
        return `step ${step}: no SERVING or LASTSRV replica holds every acknowledged write`;
      }
      if (chain.targets.filter((t) => t.state === 'SYNCING').length > 1) {
        return `step ${step}: two SYNCING targets`;
      }
    }
  }
  return undefined;
}

describe('chain state machine: randomized model check', () => {
  it('keeps every invariant over 600 seeded runs of 2,000 events (chains of 1 to 4)', () => {
    const deadline = Date.now() + 20_000;
    let runs = 0;
    for (let seed = 1; seed <= 600 && Date.now() < deadline; seed++) {
      const length = 1 + (seed % 4);
      const broken = simulate(seed, length, 2_000);
      assert.equal(broken, undefined, `seed ${seed}, chain length ${length}: ${broken}`);
      runs++;
    }
    assert.ok(runs >= 100, `only ${runs} runs fit in the time bound`);
  });
});
