/**
 * Run by pretenuring.test.ts, under the flags given there: a burst in which many objects of one
 * allocation site are alive at once (a hundred calls in flight), then a steady load in which each
 * call makes one object at that site holding 8 KB of its own, and drops both. Prints how much the
 * old generation grew over the steady load.
 *
 * V8 (Node.js 20) counts, at each young-generation collection, how many objects of a literal's
 * allocation site survive; when nearly all do while the young generation is at its largest, it
 * allocates that site's objects straight in the old generation from then on. Such an object, once
 * dropped, is dead to a full collection but still a root to every scavenge (the old generation's
 * pointers into the young one are), so what it holds outlives two scavenges and is promoted, to
 * be freed only by the next mark-compact.
 */
import { exposedGc, oldSpaceUsed } from '../helpers/heap';

const collect = exposedGc();

const CALLS = 2000;
const CALL_DATA_ELEMENTS = 1024;

interface CallRecord { data: number[] | null; i: number; inner: { a: number; b: number }; junk?: unknown }

/** One allocation site: the call's record, and a nested literal so that V8 tracks the site. */
function callRecord(data: number[] | null, i: number): CallRecord {
  return { data, i, inner: { a: 1, b: 2 } };
}

// The burst: up to 50,000 records alive at once, across the scavenges their allocation causes.
const alive: unknown[] = [];
for (let i = 0; i < 400_000; i++) {
  alive.push(callRecord(null, i));
  if (alive.length > 50_000) alive.length = 0;
}
alive.length = 0;
collect();

const before = oldSpaceUsed();
for (let call = 0; call < CALLS; call++) {
  const data = new Array<number>(CALL_DATA_ELEMENTS).fill(call);
  const record = callRecord(data, call);
  // The rest of the call: short-lived garbage, which is what makes the scavenges happen.
  for (let j = 0; j < 50; j++) record.junk = { j };
}
process.stdout.write(JSON.stringify({ oldGrownBytes: oldSpaceUsed() - before, callDataBytes: CALLS * CALL_DATA_ELEMENTS * 8 }));
