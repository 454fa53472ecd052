// What a replica catching up reads of a closed round (GET /commit/<round>): the committed
// entries and counts, O(K) — not the stored record, which lists every member and delivery
// time, O(N). Measured on a record of N = 1,000 members and K = 20, the target run.
import { describe, expect, it } from 'vitest';
import { commitView } from '../../src/coordinator/run-record.ts';
import type { CommitRecord } from '../../src/coordinator/state-store.ts';
import { parseCommitView } from '../../src/protocol/messages.ts';

function record(n: number, k: number, addresses: string[]): CommitRecord {
  const members = addresses.slice(0, n).sort();
  const entries = members.map((sender, i) => ({ sender, hash: (i + 1).toString(16).padStart(64, '0'), stage: 0 }));
  const included = entries.filter((_, i) => i % Math.ceil(n / k) === 0).slice(0, k).map((e) => ({ ...e, pieces: 'ee'.repeat(32) }));
  return {
    round: 41, members, included, delivered: entries.slice(0, n - 5), missing: members.slice(n - 5), closedAt: 1_764_000_000_000,
    deliveredAt: Object.fromEntries(members.map((a, i) => [a, 1_764_000_000_000 - i * 37])), invalid: {},
  };
}

describe('commit view', () => {
  it('serves a replica O(K) bytes of a round however many members it had', () => {
    // 48 characters, as an ss58 address of prefix 42 (the view does not look inside them).
    const addresses = Array.from({ length: 1000 }, (_, i) => `5${i.toString(36).padStart(47, 'G')}`);
    const sizes = [100, 1000].map((n) => {
      const r = record(n, 20, addresses);
      const view = commitView(r);
      expect(view).toEqual({ round: 41, included: r.included, members: n, delivered: n - 5, missing: 5 });
      expect(parseCommitView(JSON.stringify(view), 41)).toEqual(view);
      return { n, full: JSON.stringify(r).length, view: JSON.stringify(view).length };
    });
    console.log(sizes.map((s) => `N = ${s.n}: full record ${s.full} B, replica view ${s.view} B`).join('; '));
    expect(sizes[1].full).toBeGreaterThan(200_000);
    expect(Math.abs(sizes[1].view - sizes[0].view)).toBeLessThan(10); // the same K entries, whatever N (the counts gain a digit)
    expect(sizes[1].view).toBeLessThan(5000);
    expect(parseCommitView(JSON.stringify(commitView(record(10, 2, addresses))), 40)).toBeNull(); // another round
    expect(parseCommitView('{"round":41,"included":[{"sender":"x"}],"members":1,"delivered":1,"missing":0}', 41)).toBeNull();
  });
});
