/** Every guard between caller- or table-supplied text and an ESL command or dial string. */
import t from 'tap';
import { UnsafeValueError } from '../../src/esl/errors';
import { assertHeaderValue, buildDialString, dialableNumber, dtmfDigits, mediaPath, plainVariableValue, presentableCallerId } from '../../src/esl/safe';

t.test('header values: CR, LF and NUL refused', async (t) => {
  t.equal(assertHeaderValue('x', 'plain value: with colon'), 'plain value: with colon');
  for (const bad of ['a\r\nb', 'a\nb', 'a\rb', 'a\u0000b']) t.throws(() => assertHeaderValue('x', bad), UnsafeValueError);
});

t.test('dial strings: only digits reach them, variables are checked', async (t) => {
  t.equal(buildDialString('sofia/gateway/carrier/${number}', '13800000001', { leg_timeout: 15, origination_caller_id_number: '13912345678' }),
    '{leg_timeout=15,origination_caller_id_number=13912345678}sofia/gateway/carrier/13800000001');
  t.equal(buildDialString('sofia/gateway/carrier/${number}', '+8613800000001', {}), 'sofia/gateway/carrier/+8613800000001');
  const attacks = ['138,user/1000', '138|sofia/x/1', '${system(reboot)}', '138[leg_timeout=1]', '138{x=y}', '138:_:user/1', '138^^:x', '1 38', '138\r\n', '', 'a'.repeat(40)];
  for (const number of attacks) t.throws(() => buildDialString('sofia/gateway/carrier/${number}', number, {}), UnsafeValueError, JSON.stringify(number));
  for (const value of ['1,2', 'x}y', '${api(status)}', 'a|b', "it's", '[x]']) {
    t.throws(() => buildDialString('sofia/gateway/carrier/${number}', '138', { origination_caller_id_name: value }), UnsafeValueError, value);
  }
  t.throws(() => buildDialString('sofia/gateway/carrier/${number}', '138', { 'bad name': 1 }), UnsafeValueError);
  t.equal(dialableNumber('n', '*86#'), '*86#', 'feature codes');
});

t.test('presented caller ID: plain numbers only', async (t) => {
  t.equal(presentableCallerId('13912345678'), '13912345678');
  t.equal(presentableCallerId('+8613912345678'), '+8613912345678');
  for (const bad of ['anonymous', '', '139 1234', '${system(x)}', '139\r\n', '139,1']) t.equal(presentableCallerId(bad), null, JSON.stringify(bad));
});

t.test('media paths and variable values', async (t) => {
  t.equal(mediaPath('p', '/usr/share/freeswitch/sounds/hotline/welcome.wav'), '/usr/share/freeswitch/sounds/hotline/welcome.wav');
  t.equal(mediaPath('p', 'http_cache://http://prompts.local/t1/welcome.wav'), 'http_cache://http://prompts.local/t1/welcome.wav');
  for (const bad of ['', '/a b.wav', '/x/${system(id)}.wav', '/a.wav|/b.wav', '/a\n.wav', '/a,b.wav', '!x', 'a'.repeat(1100)]) {
    t.throws(() => mediaPath('p', bad), UnsafeValueError, JSON.stringify(bad));
  }
  t.equal(plainVariableValue('v', 'true'), 'true');
  t.throws(() => plainVariableValue('v', '${x}'), UnsafeValueError);
});

t.test('DTMF: only keypad symbols survive', async (t) => {
  t.equal(dtmfDigits('1234#'), '1234#');
  t.equal(dtmfDigits(undefined), '');
  t.equal(dtmfDigits('12;rm'), '');
});
