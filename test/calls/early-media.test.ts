/**
 * Phones that send early media while they ring. Assumed of FreeSWITCH (switch_ivr_originate.c,
 * modelled as M10 in test/peer/channel-model.ts): without ignore_early_media in the dial string
 * the originate returns at the first leg with early media (a 183 with SDP: a mobile network's
 * 彩铃, or an announcement before a failure), as if it had answered: DIALSTATUS SUCCESS, the other
 * legs of the batch cancelled, leg_timeout no longer counting. And a caller who has heard a prompt
 * (the greeting pre-answers) hears silence while the phones ring unless `ringback` is set: the
 * phones' 180 is not passed on to a channel that already has early media (switch_channel.c).
 */
import t from 'tap';
import { placeCall, type CallRecord, type CallScript } from '../peer/fake-freeswitch';
import { startTestDaemon, tempSqliteUrl } from '../helpers/daemon';

const CALLER = '13912345678';
const DEMO = '4001012345';
const FIRST = '13800000001';
const SECOND = '13800000002';

t.test('early media on SQLite (the demo tenant: greeting, then Sales, sequential, 15 s a phone)', async (t) => {
  const d = await startTestDaemon(tempSqliteUrl());
  t.teardown(() => d.stop());
  // Hunting order is what these tests read; caller memory would reorder it.
  await d.knex('tenants').update({ caller_memory_hours: 0 });
  await d.daemon.store.poll();
  const call = async (script: Omit<CallScript, 'caller' | 'destination'>): Promise<{ c: CallRecord; cdr: Record<string, unknown> }> => {
    const c = await placeCall(d.port, { caller: CALLER, destination: DEMO, ...script });
    return { c, cdr: await d.cdr(c.uuid) };
  };

  t.test('the first phone plays its network\'s ringback (early media) and never answers: after 15 s the second phone rings and answers', async (t) => {
    const { c, cdr } = await call({ legs: { [FIRST]: { result: 'no_answer', earlyMediaMs: 20, ringMs: 400 }, [SECOND]: { result: 'answer', ringMs: 30, talkMs: 20 } } });
    t.same(c.bridges.map((b) => [b.number, b.result]), [[FIRST, 'no_answer'], [SECOND, 'answer']], 'both phones rung, in order');
    t.same(c.bridges.map((b) => b.vars.ignore_early_media), ['true', 'true'], 'early media ignored in every dial string');
    t.match(cdr, { outcome: 'answered', answered_by: SECOND });
  });

  t.test('early media, then busy (an announcement before a 486): the next phone, not "answered"', async (t) => {
    const { c, cdr } = await call({ legs: { [FIRST]: { result: 'busy', earlyMediaMs: 10, ringMs: 50 }, [SECOND]: { result: 'answer', ringMs: 30, talkMs: 20 } } });
    t.same(c.bridges.map((b) => b.number), [FIRST, SECOND]);
    t.match(cdr, { outcome: 'answered', answered_by: SECOND });
  });

  t.test('every phone sends early media and none answers: no answer, voicemail or not, but never "answered"', async (t) => {
    const { c, cdr } = await call({ defaultLeg: { result: 'no_answer', earlyMediaMs: 10, ringMs: 2000 } });
    t.ok(c.bridges.length >= 2, `every phone rung (${c.bridges.length})`);
    t.not(cdr.outcome, 'answered', `outcome ${String(cdr.outcome)}`);
    t.equal(cdr.answered_by, null);
  });

  t.test('while the phones ring after the greeting, the caller hears a ringback, not silence', async (t) => {
    const { c } = await call({ legs: { [FIRST]: { result: 'answer', ringMs: 30, talkMs: 20 } } });
    t.same(c.ringing.map((r) => r.heard), ['/sounds/hotline/ringback.wav'], 'the system ringback (the demo tenant has no company ringback)');
  });

  t.test('a simultaneous batch: one phone\'s early media does not cancel the others; the one that answers is connected', async (t) => {
    const group = ((await d.knex('destination_groups').first()) as { id: number }).id;
    await d.knex('destination_groups').where({ id: group }).update({ strategy: 'simultaneous' });
    await d.daemon.store.poll();
    t.teardown(async () => {
      await d.knex('destination_groups').where({ id: group }).update({ strategy: 'sequential' });
      await d.daemon.store.poll();
    });
    const { c, cdr } = await call({ legs: { [FIRST]: { result: 'no_answer', earlyMediaMs: 10, ringMs: 400 }, [SECOND]: { result: 'answer', ringMs: 50, talkMs: 20 } } });
    t.equal(c.bridges.length, 2, 'one batch of two');
    t.same(c.bridges.map((b) => [b.number, b.result]), [[FIRST, 'cancelled'], [SECOND, 'answer']]);
    t.match(cdr, { outcome: 'answered', answered_by: SECOND });
  });
});
