/**
 * The queue of bridged calls' input (src/esl/deferred-input.ts): runs behind the rest of a turn,
 * in arrival order, at most a budget of each turn unless an item has waited too long, and a throw
 * does not stop it. And the connection's side: after deferInput() a socket's data, end and close
 * reach the channel in the order they came, also when the peer closes in the same write.
 */
import net from 'node:net';
import t, { type Test } from 'tap';
import { DEFERRED_INPUT_BUDGET_MS, DeferredInput, deferredInput } from '../../src/esl/deferred-input';
import { EslConnection } from '../../src/esl/connection';

const turn = (): Promise<void> => new Promise((r) => setImmediate(r));

/** A queue on a hand-moved clock (a test moves `clock.t`; an item that takes time moves it itself), its errors kept. */
function clocked(budgetMs: number, maxWaitMs: number): { q: DeferredInput; clock: { t: number }; errors: unknown[] } {
  const clock = { t: 0 };
  const errors: unknown[] = [];
  const q = new DeferredInput({ budgetMs, maxWaitMs, onError: (e) => errors.push(e), now: () => clock.t });
  return { q, clock, errors };
}

/** `count` items pushed, each recording its index in the returned array and taking `ms` of the clock. */
function pushTimed(q: DeferredInput, clock: { t: number }, count: number, ms: number): number[] {
  const ran: number[] = [];
  for (let i = 0; i < count; i++) {
    q.push(() => {
      ran.push(i);
      clock.t += ms;
    });
  }
  return ran;
}

t.test('items run after what the turn runs synchronously, in the order they came', async (t) => {
  const { q } = clocked(10, 100);
  const ran: string[] = [];
  q.push(() => ran.push('a'));
  q.push(() => ran.push('b'));
  ran.push('the rest of the turn');
  t.same(ran, ['the rest of the turn']);
  await turn();
  t.same(ran, ['the rest of the turn', 'a', 'b']);
  t.equal(q.size, 0);
});

t.test('at most the budget of a turn, at least one item; the rest in later turns, in order', async (t) => {
  const { q, clock } = clocked(1, 1000);
  const ran = pushTimed(q, clock, 6, 0.4); // three items spend the budget of 1 ms
  await turn();
  t.same(ran, [0, 1, 2], 'the first turn: until the budget was spent');
  t.equal(q.size, 3);
  await turn();
  t.same(ran, [0, 1, 2, 3, 4, 5], 'the next turn: the rest');
  const slow = clocked(1, 1000);
  const order: number[] = [];
  slow.q.push(() => {
    order.push(1);
    slow.clock.t += 5; // one item over the whole budget
  });
  slow.q.push(() => order.push(2));
  await turn();
  t.same(order, [1], 'an item over the budget runs; the next waits');
  await turn();
  t.same(order, [1, 2]);
});

t.test('an item that has waited maxWaitMs runs whatever the budget', async (t) => {
  const { q, clock } = clocked(1, 50);
  const turns: Array<[number, number]> = [];
  q.watch({ turn: (waited, overdue) => turns.push([waited, overdue]) });
  const ran: string[] = [];
  q.push(() => {
    ran.push('old');
    clock.t += 2;
  });
  clock.t += 60; // the second item too is old by the time the queue runs
  q.push(() => ran.push('also waited'));
  clock.t += 60;
  q.push(() => ran.push('new'));
  await turn();
  t.same(ran, ['old', 'also waited'], 'past the budget, the items that waited 50 ms still ran; the fresh one waits');
  await turn();
  t.same(ran, ['old', 'also waited', 'new']);
  t.same(turns, [[120, 2], [2, 0]], 'the observer: the longest wait 120 ms, two items had waited 50 ms; then the fresh one');
});

t.test('the observer hears once a turn the longest wait and the items that waited maxWaitMs; one that throws is dropped and stops nothing', async (t) => {
  const { q, clock, errors } = clocked(1, 10);
  const turns: Array<[number, number]> = [];
  const observer = { turn: (waited: number, overdue: number) => turns.push([waited, overdue]) };
  q.watch(observer);
  t.ok(q.isWatching(observer));
  const ran: number[] = [];
  for (let i = 0; i < 4; i++) {
    q.push(() => {
      ran.push(i);
      clock.t += 2; // each item is over the budget
    });
    clock.t += 1;
  }
  await turn();
  t.same(ran, [0], 'one item a turn, the budget spent');
  clock.t += 10; // the rest are now old
  await turn();
  t.same(ran, [0, 1, 2, 3]);
  t.same(turns, [[4, 0], [17, 3]], 'turn 1: 4 ms, none overdue; turn 2: the last item run had waited longest (17 ms), all three had waited 10 ms');
  const broken = {
    turn: () => {
      throw new Error('metric broke');
    },
  };
  q.watch(broken);
  q.push(() => ran.push(4));
  q.push(() => ran.push(5));
  await turn();
  t.same(ran, [0, 1, 2, 3, 4, 5], 'the queue ran its items');
  t.equal(errors.length, 1, 'the observer\'s throw reported once');
  t.notOk(q.isWatching(broken), 'the observer that threw is dropped');
  t.equal(turns.length, 3, 'the other one was still told');
  q.unwatch(observer);
  q.push(() => ran.push(6));
  await turn();
  t.same(ran.at(-1), 6);
  t.equal(turns.length, 3, 'nobody told once unwatched');
  t.equal(errors.length, 1);
});

t.test('an item that throws is reported and the queue goes on', async (t) => {
  const { q, errors } = clocked(10, 100);
  const ran: string[] = [];
  q.push(() => {
    throw new Error('a bug');
  });
  q.push(() => ran.push('next'));
  await turn();
  t.equal(errors.length, 1);
  t.same(ran, ['next']);
});

t.test('an onError that throws (the process queue\'s: the error is rethrown) leaves the queue running: the rest next turn, a later push scheduled', (t) => {
  // The turns are run by hand: the thrown error must reach the test, not the process.
  const immediates: Array<() => void> = [];
  const q = new DeferredInput({
    budgetMs: 10,
    maxWaitMs: 100,
    now: () => 0,
    schedule: (run) => immediates.push(run),
    onError: (err) => {
      throw new Error(`rethrown: ${(err as Error).message}`);
    },
  });
  const ran: string[] = [];
  q.push(() => {
    throw new Error('a bug');
  });
  q.push(() => ran.push('second'));
  t.equal(immediates.length, 1, 'one immediate for the two items');
  t.throws(() => immediates.shift()!(), /rethrown: a bug/);
  t.same(ran, [], 'the item after the throw waits for the next turn');
  t.equal(immediates.length, 1, 'the next turn is scheduled');
  immediates.shift()!();
  t.same(ran, ['second']);
  t.equal(q.size, 0);
  q.push(() => ran.push('later'));
  t.equal(immediates.length, 1, 'a later push schedules the queue: it is not left marked as draining');
  immediates.shift()!();
  t.same(ran, ['second', 'later']);
  t.end();
});

t.test('budgets are their owners\': the one set last is in force, each owner takes back only its own, in any order', (t) => {
  const q = new DeferredInput({ budgetMs: 1, maxWaitMs: 100, onError: () => undefined });
  const [a, b, c] = [{}, {}, {}];
  t.equal(q.budgetMs, 1, 'none set: the default');
  q.setBudget(a, 5);
  q.setBudget(b, 3);
  t.equal(q.budgetMs, 3);
  q.clearBudget(a);
  t.equal(q.budgetMs, 3, 'the first owner leaving first takes nothing from the second');
  q.setBudget(a, 7);
  q.setBudget(c, 2);
  q.clearBudget(c);
  t.equal(q.budgetMs, 7, 'the last set before it');
  q.setBudget(b, 4);
  t.equal(q.budgetMs, 4, 'set again: the latest');
  q.clearBudget(b);
  t.equal(q.budgetMs, 7);
  q.clearBudget(b);
  t.equal(q.budgetMs, 7, 'clearing twice changes nothing');
  q.clearBudget(a);
  t.equal(q.budgetMs, 1, 'all cleared: the default');
  t.end();
});

t.test('items pushed while the queue runs run after those before them', async (t) => {
  const { q } = clocked(10, 100);
  const ran: string[] = [];
  q.push(() => {
    ran.push('first');
    q.push(() => ran.push('pushed by the first'));
  });
  q.push(() => ran.push('second'));
  await turn();
  await turn();
  t.same(ran, ['first', 'second', 'pushed by the first']);
});

t.test('a long queue is cut down as it runs, without losing an item', async (t) => {
  const { q, clock } = clocked(1, 1e9);
  const ran = pushTimed(q, clock, 5000, 0.001);
  while (q.size > 0) await turn();
  t.equal(ran.length, 5000);
  t.ok(ran.every((v, i) => v === i), 'in order');
});

/** A connection over a loopback socket pair: the test writes as FreeSWITCH. */
async function pair(t: Test, options: { maxFrameBytes?: number } = {}): Promise<{ conn: EslConnection; peer: net.Socket }> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const peer = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  t.teardown(() => peer.destroy());
  const socket = await accepted;
  t.teardown(() => socket.destroy());
  return { conn: new EslConnection(socket, options), peer };
}

const EVENT_BODY = 'Event-Name: CHANNEL_HANGUP_COMPLETE\nUnique-ID: u-1\nHangup-Cause: NORMAL_CLEARING\n\n';
const EVENT = `Content-Length: ${Buffer.byteLength(EVENT_BODY)}\nContent-Type: text/event-plain\n\n${EVENT_BODY}`;
const DISCONNECT = 'Content-Type: text/disconnect-notice\nContent-Disposition: disconnect\nContent-Length: 0\n\n';

for (const deferred of [false, true]) {
  t.test(`${deferred ? 'deferred' : 'plain'} input: the event, the notice, the end and the close reach the channel in the order they came`, async (t) => {
    const { conn, peer } = await pair(t);
    if (deferred) conn.deferInput();
    const seen: string[] = [];
    conn.handlers = { event: (e) => seen.push(`event ${e.name}`), notice: (e) => seen.push(`notice ${e.contentType}`) };
    const closed = new Promise<void>((r) =>
      conn.once('esl::close', () => {
        seen.push('close');
        r();
      }),
    );
    conn.once('esl::end', () => {
      seen.push('end');
      conn.socket.end();
    });
    // One write and the FIN right behind it: the data, the end and the close may come in one turn.
    peer.end(EVENT + DISCONNECT);
    await closed;
    t.same(seen, ['event CHANNEL_HANGUP_COMPLETE', 'notice text/disconnect-notice', 'end', 'close']);
  });
}

t.test('deferred input: a close while its data still waits in the queue comes after that data\'s events', async (t) => {
  const { conn, peer } = await pair(t);
  conn.deferInput();
  const seen: string[] = [];
  conn.handlers = { event: (e) => seen.push(`event ${e.name}`), notice: (e) => seen.push(`notice ${e.contentType}`) };
  // Ahead of the connection's own listener: a busy item (over the turn's budget) goes into the
  // queue first, so the chunk's waits for the next turn, and the socket is destroyed: its 'close'
  // fires in this turn's close phase, before the queue reaches the chunk.
  conn.socket.prependOnceListener('data', () => {
    deferredInput.push(() => {
      const until = performance.now() + 2 * DEFERRED_INPUT_BUDGET_MS;
      while (performance.now() < until);
    });
    conn.socket.destroy();
  });
  const closed = new Promise<void>((r) =>
    conn.once('esl::close', () => {
      seen.push('close');
      r();
    }),
  );
  peer.write(EVENT + DISCONNECT);
  await closed;
  t.same(seen, ['event CHANNEL_HANGUP_COMPLETE', 'notice text/disconnect-notice', 'close']);
});

/** A frame header over a 64-byte frame limit. */
const TOO_LARGE = 'Content-Length: 100000\nContent-Type: text/event-plain\n\n';

/** A deferred connection with a 64-byte frame limit, what it reports in `seen`, and its close. */
async function unframeable(t: Test): Promise<{ conn: EslConnection; peer: net.Socket; seen: string[]; closed: Promise<void> }> {
  const { conn, peer } = await pair(t, { maxFrameBytes: 64 });
  conn.deferInput();
  const seen: string[] = [];
  conn.on('esl::protocol-error', (err: Error & { code?: string }) => seen.push(`protocol-error ${err.code ?? ''}`));
  const closed = new Promise<void>((r) =>
    conn.once('esl::close', () => {
      seen.push('close');
      r();
    }),
  );
  return { conn, peer, seen, closed };
}

t.test('deferred input: a stream that cannot be framed is reported also when the socket closed while its bytes waited in the queue', async (t) => {
  const { conn, peer, seen, closed } = await unframeable(t);
  const read = new Promise<void>((r) => conn.socket.once('data', () => r()));
  peer.write(TOO_LARGE);
  // The read is queued; the queue runs in this turn's check phase, after this continuation, in
  // which the daemon drops the socket (a reply timeout, a stop). A peer's FIN or reset can come
  // first the same way under load.
  await read;
  conn.socket.destroy();
  t.same(seen, [], 'nothing handled yet');
  await closed;
  t.same(seen, ['protocol-error ESL_FRAME_TOO_LARGE', 'close'], 'the error, then the close');
});

t.test('deferred input: a stream that cannot be framed is reported once, however many reads wait behind the break', async (t) => {
  const { conn, peer, seen, closed } = await unframeable(t);
  const socket = conn.socket;
  // The queue held (setups writing, turn after turn) while two reads come: both wait in it. Should
  // the machine stall past the queue's 100 ms bound, the first runs early and the second never
  // comes; the outcome asserted is the same.
  deferredInput.hold();
  try {
    const first = new Promise<void>((r) => socket.once('data', () => r()));
    peer.write(TOO_LARGE);
    await first;
    const next = new Promise<void>((r) => {
      socket.once('data', () => r());
      socket.once('close', () => r());
    });
    peer.write('more bytes after the break');
    await next;
  } finally {
    deferredInput.release();
  }
  await closed;
  t.same(seen, ['protocol-error ESL_FRAME_TOO_LARGE', 'close']);
});

t.test('a handler that throws on the close is counted, not thrown', async (t) => {
  const { conn, peer } = await pair(t);
  conn.deferInput();
  const errors: unknown[] = [];
  conn.on('esl::listener-error', (err) => errors.push(err));
  conn.once('esl::close', () => {
    throw new Error('a bug in the close handler');
  });
  peer.destroy();
  conn.socket.destroy();
  while (errors.length === 0) await turn();
  t.equal(conn.stats.listenerErrors, 1);
  t.match(String(errors[0]), /a bug in the close handler/);
});

t.test('the queue waits for the immediates held ahead of it (a setup\'s end-of-turn write)', async (t) => {
  const { q } = clocked(10, 100);
  const ran: string[] = [];
  q.push(() => ran.push('bridged call\'s event'));
  q.hold();
  setImmediate(() => {
    ran.push('setup\'s write');
    q.release();
  });
  await turn();
  await turn();
  await turn();
  t.same(ran, ['setup\'s write', 'bridged call\'s event'], 'the write queued after the queue\'s own immediate still went first');
});

t.test('holds that follow one another turn after turn do not starve the queue past maxWaitMs', async (t) => {
  const { q, clock } = clocked(1, 50);
  const turns: Array<[number, number]> = [];
  q.watch({ turn: (waited, overdue) => turns.push([waited, overdue]) });
  let ranAt: number | null = null;
  q.push(() => {
    ranAt = clock.t;
  });
  let left = 10;
  // Each held immediate, before it releases, holds the next turn's: a hold is always out.
  const chain = (): void => {
    q.hold();
    setImmediate(() => {
      clock.t += 20;
      if (--left > 0) chain();
      q.release();
    });
  };
  chain();
  while (left > 0) await turn();
  t.not(ranAt, null, 'the item ran while holds were still out');
  t.ok(ranAt! >= 50 && ranAt! <= 60, `once it had waited 50 ms (ran at ${ranAt} ms), not when the holds ended (200 ms)`);
  t.same(turns, [[ranAt, 1]], 'counted overdue: it ran within the budget, but only because the bound overrode the holds');
});
