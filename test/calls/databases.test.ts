/**
 * The same calls on both production databases: real MariaDB (MySQL protocol) and SQLite.
 * Concurrency: 60 simultaneous calls give 60 CDRs, none lost, none doubled.
 */
import t from 'tap';
import { placeCall } from '../peer/fake-freeswitch';
import { dbTargets } from '../helpers/db';
import { startTestDaemon } from '../helpers/daemon';

for (const target of dbTargets()) {
  t.test(target.name, async (t) => {
    const db = await target.create({ migrate: false });
    const d = await startTestDaemon(db.url);
    t.teardown(async () => {
      await d.stop();
      await db.destroy();
    });

    const answered = await placeCall(d.port, { caller: '13912345678', destination: '4001012345', legs: { '13800000001': { result: 'busy' }, '13800000002': { result: 'answer', talkMs: 1100 } } });
    const row = await d.cdr(answered.uuid);
    t.match(row, { outcome: 'answered', answered_by: '13800000002', tenant_id: 1, hangup_cause: 'NORMAL_CLEARING' });
    t.ok(Number(row.billsec) >= 1, `billsec ${String(row.billsec)} counts the talk time`);
    t.ok(row.answered_at, 'answered_at recorded');

    const calls = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        placeCall(d.port, { caller: `1391234${String(i).padStart(4, '0')}`, destination: i % 5 === 0 ? '4009999999' : '4001012345', defaultLeg: { result: 'answer', talkMs: 20 } }),
      ),
    );
    await d.daemon.cdrs.flush();
    const uuids = calls.map((c) => c.uuid);
    const deadline = Date.now() + 10_000;
    let rows: Array<{ call_uuid: string; outcome: string }> = [];
    while (Date.now() < deadline) {
      rows = await d.knex<{ call_uuid: string; outcome: string }>('cdrs').whereIn('call_uuid', uuids).select('call_uuid', 'outcome');
      if (rows.length === uuids.length) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    t.equal(rows.length, 60, 'one CDR per call');
    t.equal(new Set(rows.map((r) => r.call_uuid)).size, 60, 'no call recorded twice');
    t.equal(rows.filter((r) => r.outcome === 'announced').length, 12, 'unknown-number calls announced');
    t.equal(rows.filter((r) => r.outcome === 'answered').length, 48);
  });
}
