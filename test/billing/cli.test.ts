// `npm run report` and `npm run usage` (their main(), with the environment they would get).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import t from 'tap';
import { main as report } from '../../src/cli/report';
import { main as usageCli } from '../../src/cli/usage';
import { toDbTimestamp } from '../../src/db/connect';
import { DateTime } from 'luxon';
import { addCdrs, addTenant, eachDb, setUsage } from './helpers';

function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  const chunks: Buffer[] = [];
  stream.on('data', (c: Buffer) => chunks.push(c));
  return { stream, text: () => Buffer.concat(chunks).toString('utf8') };
}

eachDb(t, 'npm run report -- --tenant N --day D rebuilds and prints; usage shows usage against caps', async (t, { db, knex }) => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-cli-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const env = { DATABASE_URL: db.url, REPORTS_DIR: dir };
  const tenant = await addTenant(knex, { name: '上海某某公司', balance: '20.0000', max_calls_day: 3, max_spend_month: '100' });
  await addCdrs(knex, [
    { tenant_id: tenant, started_at: '2026-11-20T02:00:00Z', caller: '13912345678', billsec: 61, cost: '0.3000' },
    { tenant_id: tenant, started_at: '2026-11-20T03:00:00Z', caller: '02112345678', outcome: 'busy' },
  ]);
  const out = sink();
  const err = sink();
  t.equal(await report(['--tenant', String(tenant), '--day', '2026-11-20'], out.stream, err.stream, env), 0, err.text());
  t.match(out.text(), /report for tenant \d+ \(上海某某公司\), day 2026-11-20 in Asia\/Shanghai/);
  t.match(out.text(), /2 calls, 1 answered/);
  t.match(out.text(), /summary,all,2,1,1,0,0,0,0,61,61\.00,100\.00,0\.3000/);
  t.ok(fs.existsSync(path.join(dir, `tenant-${tenant}`, 'day-2026-11-20.csv')));
  t.equal((await knex('call_reports')).length, 1);
  t.equal(await report([`--tenant=${tenant}`, '--month', '2026-11'], sink().stream, sink().stream, env), 0);
  t.equal((await knex('call_reports')).length, 2);

  const bad = async (args: string[], code: number, pattern: RegExp): Promise<void> => {
    const e = sink();
    t.equal(await report(args, sink().stream, e.stream, env), code, args.join(' '));
    t.match(e.text(), pattern);
  };
  await bad([], 2, /--tenant <id> is required/);
  await bad(['--tenant', 'x', '--day', '2026-11-20'], 2, /tenant id/);
  await bad(['--tenant', '1'], 2, /exactly one of --day or --month/);
  await bad(['--tenant', '1', '--day', '2026-11'], 2, /YYYY-MM-DD/);
  await bad(['--tenant', '1', '--bogus', '1'], 2, /unknown argument/);
  await bad(['--tenant', '9999', '--day', '2026-11-20'], 1, /no tenant with id 9999/);
  await bad(['--tenant', '1', '--day', '2026-02-30'], 1, /not a day/);

  // usage: "today" for the command is a fixed instant (10:00 in Shanghai), not the wall clock,
  // whose local midnight could fall between these lines and the command.
  const now = new Date('2026-11-21T02:00:00.000Z');
  const today = DateTime.fromJSDate(now).setZone('Asia/Shanghai');
  await addCdrs(knex, [
    { tenant_id: tenant, started_at: today.startOf('day').plus({ minutes: 1 }).toJSDate(), cost: '1.0000', admitted: 1 },
    { tenant_id: tenant, started_at: today.startOf('day').plus({ minutes: 2 }).toJSDate(), cost: '0.5000', admitted: 1 },
  ]);
  await setUsage(knex, tenant, 'day', today.toISODate()!, 3, '1.5000');
  await knex('capped_tenants').insert({ tenant_id: tenant, reason: 'calls_day', period_start: today.toISODate(), capped_at: toDbTimestamp(now), detail: '3 calls of 3 today' });
  const u = sink();
  t.equal(await usageCli(['--tenant', String(tenant)], u.stream, sink().stream, env, () => now), 0);
  t.match(u.text(), /tenant \d+ 上海某某公司 \(active\), timezone Asia\/Shanghai/);
  t.match(u.text(), /balance: 20\.0000/);
  t.match(u.text(), new RegExp(`day   ${today.toISODate()}: calls 3 / 3, spend 1\\.5000 / no cap`));
  t.match(u.text(), /from CDRs \+ live calls: calls 2, spend 1\.5000; 0 live call\(s\) costing 0\.0000 so far {2}← differs: the caps job corrects it/);
  t.match(u.text(), /capped: calls_day \(\d{4}-\d\d-\d\d\): 3 calls of 3 today/);
  const missing = sink();
  t.equal(await usageCli(['--tenant', '9999'], sink().stream, missing.stream, env), 1);
  t.match(missing.text(), /no tenant with id 9999/);
  t.equal(await usageCli([], sink().stream, sink().stream, env), 2);
});
