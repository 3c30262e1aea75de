/**
 * lenientDecode (src/esl/parser.ts) in one pass over bytes: the same result as the per-character
 * decoder it replaced (kept here as the reference), on values a seeded generator mangles with
 * bad escapes, valid escapes, non-ASCII text and lone surrogates. The old one took 1.5 s on a
 * 1.5 MB value of bad escapes and stalled every call of the process: test/fuzz/esl-fuzz.test.ts
 * with FUZZ_SEED=3 lost two calls to handshake timeouts behind it.
 */
import t from 'tap';
import { lenientDecode } from '../../src/esl/parser';
import { Prng } from '../fuzz/prng';

function reference(value: string): string {
  const bytes: number[] = [];
  const hex = (c: number): boolean => (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66);
  for (let i = 0; i < value.length; i++) {
    const ch = value.charCodeAt(i);
    if (ch === 0x25 && i + 2 < value.length && hex(value.charCodeAt(i + 1)) && hex(value.charCodeAt(i + 2))) {
      bytes.push(parseInt(value.substr(i + 1, 2), 16));
      i += 2;
    } else if (ch < 0x80) {
      bytes.push(ch);
    } else {
      const cp = value.codePointAt(i) ?? ch;
      for (const b of Buffer.from(String.fromCodePoint(cp), 'utf8')) bytes.push(b);
      if (cp > 0xffff) i++;
    }
  }
  return Buffer.from(bytes).toString('utf8');
}

t.test('the same as the reference decoder on mangled values', async (t) => {
  const rng = new Prng(20261202);
  const parts = ['%', '%G1', '%E4%B8', '%E4%BD%A0', '%zz', '%2b', '%2B', 'a', ' ', '你', '\u00ff', '\ud83d\ude00', '\ud800', '%ED%A0%80', '%C3', '(', '%%41', '%0', '%f0%9f%98%80'];
  for (let n = 0; n < 2000; n++) {
    const value = Array.from({ length: rng.int(12) }, () => rng.pick(parts)).join('');
    if (lenientDecode(value) !== reference(value)) t.fail(`differs on ${JSON.stringify(value)}`);
  }
  t.equal(lenientDecode('%E4%BD%A0%E5%A5%BD%ZZ'), '你好%ZZ');
  t.equal(lenientDecode('100%'), '100%');
  t.equal(lenientDecode('%4'), '%4');
  t.equal(lenientDecode('%41%'), 'A%');
});

t.test('a 1.5 MB value of bad escapes decodes to itself', async (t) => {
  const value = '%ZZ'.repeat(500_000);
  t.equal(lenientDecode(value), value);
  t.equal(lenientDecode('%'.repeat(1_500_000)).length, 1_500_000);
});
