// A call's spend guard reads the headroom of the day and month its CDR is charged to (the day it
// started in, usage.ts), at the answer and again at the cut, even once the tenant's midnight has
// passed. A review found the cut's re-read taking the new day's spend: with max_spend_day 1.0000
// and 0.9000 spent on 20 November, a call answered at 23:59:30 (planned to be cut after 58 s at
// 0.10 a minute) was read again after midnight, found the 21st's whole 1.0000, talked 598 s and
// left 1.9000 charged to the 20th.
import t from 'tap';
import { cdrTimes, chargedStart } from '../../src/calls/cdr-times';
import { leastLeft, readSpendHeadroom, sharedSpendLeft, type SpendLeft } from '../../src/billing/usage';

/** The least of what a shared read says is left (the call's headroom). */
const least = async (read: Promise<SpendLeft | null>): Promise<Money | null> => {
  const left = await read;
  return left === null ? null : leastLeft(left);
};
import { formatMoney, money, type Money } from '../../src/domain/money';
import { addTenant, eachDb, setUsage } from './helpers';

const ZONE = 'Asia/Shanghai';
// 23:59:30 on 20 November in Shanghai; the tenant's midnight is 16:00 UTC.
const STARTED = new Date('2026-11-20T15:59:30.000Z');
const AFTER_MIDNIGHT = new Date('2026-11-20T16:09:28.000Z');

t.test('chargedStart: the start the CDR will have (FreeSWITCH\'s channel creation), not the time of asking', async (t) => {
  const created = String(STARTED.getTime() * 1000);
  const header = (name: string): string | undefined => (name === 'Caller-Channel-Created-Time' ? created : undefined);
  t.same(chargedStart(header, new Date(STARTED.getTime() + 40), AFTER_MIDNIGHT), STARTED, 'asked after midnight: still 23:59:30');
  t.same(chargedStart(() => undefined, new Date(STARTED.getTime() + 40), AFTER_MIDNIGHT), new Date(STARTED.getTime() + 40), 'no FreeSWITCH time: the accept, as the CDR takes it');
  // FreeSWITCH's clock 2 s ahead of ours, asked at once (the guard is armed at identification): the
  // CDR, built at the end, keeps FreeSWITCH's start (00:00:00.500, the 21st); so must this.
  const accepted = new Date('2026-11-20T15:59:59.000Z');
  const ahead = String((accepted.getTime() + 1500) * 1000);
  const aheadHeader = (name: string): string | undefined => (name === 'Caller-Channel-Created-Time' ? ahead : undefined);
  const final = cdrTimes(aheadHeader, { accepted, answered: null, hungUp: new Date(accepted.getTime() + 60_000), now: new Date(accepted.getTime() + 60_000) }).started;
  t.same(chargedStart(aheadHeader, accepted, new Date(accepted.getTime() + 20)), final, 'the start the CDR will have');
  t.same(final, new Date(accepted.getTime() + 1500));
});

eachDb(t, 'the headroom of the day the call started in, read after midnight; calls of two days in one turn each get their own', async (t, { knex }) => {
  const tenant = await addTenant(knex, { max_spend_day: '1.0000' });
  await setUsage(knex, tenant, 'day', '2026-11-20', 3, '0.9000');
  await setUsage(knex, tenant, 'month', '2026-11-01', 3, '0.9000');
  const show = (m: Awaited<ReturnType<typeof readSpendHeadroom>>): string | null => (m === null ? null : formatMoney(money(m)));
  t.equal(show(await readSpendHeadroom(knex, tenant, STARTED, { zone: ZONE })), '0.1000', 'the 20th: 0.10 left');
  t.equal(show(await readSpendHeadroom(knex, tenant, AFTER_MIDNIGHT, { zone: ZONE })), '1.0000', 'the 21st: a new day');
  // One turn of the event loop: the call of the 20th and a call of the 21st answered together.
  const [old, fresh] = await Promise.all([least(sharedSpendLeft(knex, tenant, STARTED, ZONE)), least(sharedSpendLeft(knex, tenant, AFTER_MIDNIGHT, ZONE))]);
  t.equal(show(old), '0.1000', 'the call of the 20th: its day');
  t.equal(show(fresh), '1.0000', 'the call of the 21st: its own, not the first read of the turn');
});
