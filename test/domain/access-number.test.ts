import t from 'tap';
import { accessNumberDigits, accessNumberProblem, dialledNationalNumber, nationalNumber } from '../../src/domain/access-number';
import { identify } from '../../src/domain/routing';
import { buildSnapshot } from '../../src/snapshot/build';
import { accessNumberRow, goodRaw } from '../snapshot/fixtures';

t.test('nationalNumber: every spelling of one number is one key', async (t) => {
  for (const spelling of ['4001012345', '+86 400 101 2345', '+864001012345', '0086 400-101-2345', '00864001012345', '864001012345', '400-101-2345', '400.101.2345', '(400) 101 2345', ' 4001012345 ', '４００１０１２３４５']) {
    t.equal(nationalNumber(spelling), '4001012345', JSON.stringify(spelling));
  }
  for (const spelling of ['02088886666', '020-8888-6666', '2088886666', '+86 20 8888 6666', '+86 020 8888 6666', '0086 20 88886666']) {
    t.equal(nationalNumber(spelling), '2088886666', `${JSON.stringify(spelling)}: a trunk 0 is not part of the national number`);
  }
  t.equal(nationalNumber('8612'), '8612', 'a country code is not stripped down to fewer than 4 digits');
  t.equal(nationalNumber('86110'), '86110', 'a short number starting 86 keeps its digits');
  t.equal(nationalNumber('00442079460000'), '00442079460000', 'an international 00 prefix is not a trunk 0');
  t.equal(nationalNumber('+44 20 7946 0000'), '00442079460000', 'another country +CC is 00CC, never a national number');
  for (const junk of ['', '   ', '40', '400ABC1234', '400${x}', '++864001012345', '4001012345#', '4'.repeat(33), '400-101-2345 ext 1']) {
    t.equal(nationalNumber(junk), null, `${JSON.stringify(junk)} is not a number`);
  }
});

t.test('accessNumberDigits keeps a trunk 0 as written (what the daemon shows and dials)', async (t) => {
  t.equal(accessNumberDigits('020-8888-6666'), '02088886666');
  t.equal(accessNumberDigits('+86 400-101-2345'), '4001012345');
  t.equal(accessNumberDigits('+86 20 8888 6666'), '2088886666');
});

t.test('dialledNationalNumber: the digits of what FreeSWITCH passes', async (t) => {
  t.equal(dialledNationalNumber('sip:+864001012345'), '4001012345', 'a + after other text is not a leading +');
  t.equal(dialledNationalNumber('+864001012345'), '4001012345');
  t.equal(dialledNationalNumber('4001012345#'), '4001012345');
  t.equal(dialledNationalNumber(''), null);
  t.equal(dialledNationalNumber('12'), null);
});

t.test('a number held in several spellings: the build and a call agree', async (t) => {
  const raw = goodRaw();
  raw.access_numbers = [
    accessNumberRow(1, 1, '+86 400-100-0001'),
    accessNumberRow(2, 2, '020 8888 0002', { kind: 'switchboard' }),
    accessNumberRow(7, 2, '0086 4001000001'),
    accessNumberRow(5, 1, '2088880002', { kind: 'switchboard' }),
  ];
  const s = buildSnapshot(raw, 1, new Date(0));
  t.equal(s.accessNumbers.get('4001000001')?.id, 1, 'the lower id keeps the number');
  t.equal(s.accessNumbers.get('4001000001')?.number, '4001000001', 'shown and dialled without the country code');
  t.equal(s.accessNumbers.get('2088880002')?.id, 2);
  t.equal(s.accessNumbers.get('2088880002')?.number, '02088880002', 'the trunk 0 as the DBA wrote it');
  t.match(s.rejected, [
    { table: 'access_numbers', id: 5, column: 'number', status: 'skipped', reason: /number 2088880002 is listed twice \(access number 2 has it as 02088880002\)/ },
    { table: 'access_numbers', id: 7, column: 'number', status: 'skipped', reason: /listed twice \(access number 1 has it\)/ },
  ]);
  t.equal(s.rejected.length, 2);
  for (const dialled of ['4001000001', '+864001000001', '00864001000001', '864001000001']) {
    const id = identify(s, dialled);
    t.equal(id.kind === 'ok' && id.accessNumber.id, 1, `${dialled} reaches access number 1`);
  }
  for (const dialled of ['02088880002', '2088880002', '+862088880002']) {
    const id = identify(s, dialled);
    t.equal(id.kind === 'tenant_suspended' && id.accessNumber.id, 2, `${dialled} reaches access number 2 (its tenant is suspended)`);
  }
  // Same rows the other way round: the answer does not depend on row order.
  raw.access_numbers.reverse();
  const again = buildSnapshot(raw, 2, new Date(0));
  t.equal(again.accessNumbers.get('4001000001')?.id, 1);
  t.equal(again.accessNumbers.get('2088880002')?.id, 2);
});

t.test('a number in force keeps it against a new row in another spelling with a lower id', async (t) => {
  const raw = goodRaw();
  raw.access_numbers = [accessNumberRow(5, 1, '4001000009')];
  const before = buildSnapshot(raw, 1, new Date(0));
  raw.access_numbers = [accessNumberRow(3, 2, '+86 400 100 0009'), accessNumberRow(5, 1, '4001000009')];
  const after = buildSnapshot(raw, 2, new Date(0), before.lastGood);
  t.equal(after.accessNumbers.get('4001000009')?.id, 5, 'the row in force, unchanged, keeps its number');
  t.match(after.rejected.filter((f) => f.table === 'access_numbers'), [{ table: 'access_numbers', id: 3, status: 'skipped', value: '"4001000009"', reason: /number 4001000009 is listed twice \(access number 5 has it\)/ }]);
});

t.test('accessNumberProblem: a 400 or 800 number has 10 digits, counted after the country code and trunk 0', async (t) => {
  for (const ok of ['4001012345', '8001012345', '04001012345', '2088886666', '95588', '13912345678', '00442079460000']) {
    t.equal(accessNumberProblem(ok), null, ok);
  }
  for (const bad of ['400101234', '40010123456', '0400101234', '800123', '400']) {
    t.match(accessNumberProblem(bad), /400 and 800 numbers have 10/, bad);
  }
});
