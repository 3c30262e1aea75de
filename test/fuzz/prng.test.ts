// The fuzz test's seed: fixed unless asked otherwise, so `npm test` draws the same calls every run.
import t from 'tap';
import { DEFAULT_FUZZ_SEED, fuzzSeed, Prng } from './prng';

t.test('FUZZ_SEED: unset or empty is the fixed seed, a number is itself, random is a new one, anything else an error', async (t) => {
  t.equal(fuzzSeed(undefined), DEFAULT_FUZZ_SEED);
  t.equal(fuzzSeed(''), DEFAULT_FUZZ_SEED);
  t.equal(fuzzSeed('42'), 42);
  t.equal(fuzzSeed('4294967295'), 4294967295);
  const drawn = new Set(Array.from({ length: 20 }, () => fuzzSeed('random')));
  t.ok(drawn.size > 1, 'random draws new seeds');
  for (const bad of ['-1', '4294967296', '1.5', 'abc']) t.throws(() => fuzzSeed(bad), /FUZZ_SEED must be/);
});

t.test('the same seed and call number give the same inputs', async (t) => {
  const draw = (seed: number, index: number): number[] => {
    const rng = Prng.forCase(seed, index);
    return Array.from({ length: 8 }, () => rng.int(1000));
  };
  t.same(draw(DEFAULT_FUZZ_SEED, 7), draw(DEFAULT_FUZZ_SEED, 7));
  t.not(draw(DEFAULT_FUZZ_SEED, 7).join(), draw(DEFAULT_FUZZ_SEED, 8).join());
});
