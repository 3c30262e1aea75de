// Which visitor numbers click-to-call rings (src/clicktocall/number.ts): subscriber numbers only,
// whatever the spelling; never a premium, shared-cost, service or satellite number.
import t from 'tap';
import { checkVisitorNumber } from '../../src/clicktocall/number';

const CN = { allowInternational: false };
const WORLD = { allowInternational: true };

t.test('callable numbers, in the spellings visitors type', async (t) => {
  t.match(checkVisitorNumber('13912345678', CN), { ok: true, dial: '13912345678', e164: '+8613912345678', country: 'CN' });
  t.match(checkVisitorNumber('+86 139-1234-5678', CN), { ok: true, dial: '13912345678' });
  t.match(checkVisitorNumber('１３９１２３４５６７８', CN), { ok: true, dial: '13912345678' }, 'full-width digits');
  t.match(checkVisitorNumber('020-8888 6666', CN), { ok: true, dial: '02088886666' }, 'a fixed line keeps its trunk 0');
  t.match(checkVisitorNumber('+1 212 555 0123', WORLD), { ok: true, dial: '0012125550123', country: 'US' });
});

t.test('refused: not a number, not callable, abroad without the widget allowing it', async (t) => {
  t.match(checkVisitorNumber('call me', CN), { ok: false, code: 'CTC_ERR_INVALID_NUMBER' });
  t.match(checkVisitorNumber('4001012345', CN), { ok: false, code: 'CTC_ERR_NUMBER_NOT_CALLABLE' }, "a 400 number (shared cost)");
  t.match(checkVisitorNumber('95555', CN), { ok: false }, 'a service number');
  t.match(checkVisitorNumber('+1 212 555 0123', CN), { ok: false, reason: 'international' });
});

t.test('satellite numbers are refused even where international calls are allowed (revenue-share fraud)', async (t) => {
  // Each is a number libphonenumber takes as valid and callable (MOBILE): the checks below are
  // what refuses them.
  for (const [number, reason, what] of [
    ['+881 6 12345678', 'non_geographic', 'Iridium (+881 6)'],
    ['+870 773 123 456', 'non_geographic', 'Inmarsat (+870)'],
    ['008816 12345678', 'non_geographic', 'Iridium dialled with 00'],
    ['13490001234', 'satellite', 'China Satcom 1349'],
    ['+86 1349 000 1234', 'satellite', 'China Satcom 1349 with +86'],
    ['17400012345', 'satellite', 'Tiantong 17400'],
  ] as const) {
    for (const opts of [CN, WORLD]) {
      t.match(checkVisitorNumber(number, opts), { ok: false, code: 'CTC_ERR_NUMBER_NOT_CALLABLE', reason }, `${what} (${opts.allowInternational ? 'international allowed' : 'China only'})`);
    }
  }
  // 1749 (Tiantong): libphonenumber's metadata has it as no valid number today; refused either way.
  t.match(checkVisitorNumber('17490012345', WORLD), { ok: false });
  t.match(checkVisitorNumber('17401234567', CN), { ok: false, reason: 'satellite' });
});
