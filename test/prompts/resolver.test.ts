// PromptResolver (pure given its cache index) and the speak-text sanitiser: every kind of
// prompt, every fallback, and nothing FreeSWITCH would expand or split reaching `speak`.
import path from 'node:path';
import t from 'tap';
import { SYSTEM_PROMPTS } from '../../src/calls/prompts';
import { PromptResolver } from '../../src/prompts/resolver';
import { sanitizeSpeakText, SPEAK_MAX_CHARS, ttsCacheKey } from '../../src/prompts/text';
import type { Prompt } from '../../src/snapshot/types';

const CACHE = '/var/cache/hotline/tts';

function settings(over: { engine?: 'espeak' | 'freeswitch'; cacheDir?: string; systemDir?: string; freeswitchEngine?: string } = {}) {
  return {
    tts: { engine: over.engine ?? 'espeak', cacheDir: over.cacheDir ?? CACHE, voice: 'cmn', freeswitchEngine: over.freeswitchEngine ?? 'flite|kal' },
    prompts: { systemDir: over.systemDir ?? '/usr/share/freeswitch/sounds/hotline' },
  } as const;
}

function prompt(id: number, extra: Partial<Prompt>): Prompt {
  return { id, tenantId: 1, name: `p${id}`, file: null, ttsText: null, language: 'zh-CN', ...extra };
}

const cacheWith = (...texts: string[]) => {
  const keys = new Set(texts.map((x) => ttsCacheKey('cmn', x)));
  return { has: (k: string) => keys.has(k) };
};

t.test('system prompts: a file in PROMPTS_DIR for every name', async (t) => {
  const r = new PromptResolver(settings(), cacheWith());
  for (const name of SYSTEM_PROMPTS) {
    t.same(r.system(name), { app: 'playback', arg: `/usr/share/freeswitch/sounds/hotline/${name}.wav` }, name);
  }
  t.throws(() => r.system('rm_rf' as never), /unknown system prompt/);
});

t.test('file prompts play their file, with either engine; file wins over tts_text', async (t) => {
  for (const engine of ['espeak', 'freeswitch'] as const) {
    const r = new PromptResolver(settings({ engine }), cacheWith());
    t.same(r.resolve(prompt(1, { file: '/sounds/acme/welcome.wav' }), 'welcome'), { app: 'playback', arg: '/sounds/acme/welcome.wav' }, engine);
    t.same(r.resolve(prompt(2, { file: '/sounds/acme/w.wav', ttsText: '不用' }), 'welcome'), { app: 'playback', arg: '/sounds/acme/w.wav' }, `${engine}: file wins`);
  }
});

t.test('a file that fails the guards falls back (the snapshot should have refused it)', async (t) => {
  const r = new PromptResolver(settings(), cacheWith());
  for (const file of ['/s/${system(id)}.wav', '/s/a b.wav', '/s/a\r\nb.wav', '/s/a|b.wav', '']) {
    t.match(r.resolve(prompt(3, { file }), 'after_hours'), { app: 'playback', arg: '/usr/share/freeswitch/sounds/hotline/after_hours.wav', fallback: /prompt 3/ }, JSON.stringify(file));
  }
});

t.test('no prompt, unknown id, empty prompt: the fallback', async (t) => {
  const r = new PromptResolver(settings(), cacheWith());
  const sys = { app: 'playback', arg: '/usr/share/freeswitch/sounds/hotline/welcome.wav' };
  t.same(r.resolve(null, 'welcome'), sys);
  t.same(r.resolve(undefined, 'welcome'), sys);
  t.same(r.resolveId(new Map(), null, 'welcome'), sys, 'id NULL = system default, no fallback reason');
  t.match(r.resolveId(new Map(), 42, 'welcome'), { ...sys, fallback: /prompt 42 not in the configuration/ });
  t.match(r.resolve(prompt(4, { ttsText: '   ' }), 'welcome'), { ...sys, fallback: /neither/ });
  const map = new Map([[5, prompt(5, { file: '/sounds/x.wav' })]]);
  t.same(r.resolveId(map, 5, 'welcome'), { app: 'playback', arg: '/sounds/x.wav' });
});

t.test('espeak: a rendered tts_text plays its cached WAV; an unrendered one falls back', async (t) => {
  const text = '您好，欢迎致电。';
  const r = new PromptResolver(settings(), cacheWith(text));
  const key = ttsCacheKey('cmn', text);
  t.match(key, /^[0-9a-f]{64}$/);
  t.same(r.resolve(prompt(6, { ttsText: text }), 'welcome'), { app: 'playback', arg: `${CACHE}/${key}.wav` });
  t.same(r.resolve(prompt(7, { ttsText: `\n ${text}  ` }), 'welcome'), { app: 'playback', arg: `${CACHE}/${key}.wav` }, 'surrounding whitespace: same file');
  t.match(r.resolve(prompt(8, { ttsText: '别的文字' }), 'nobody_answered'), {
    app: 'playback',
    arg: '/usr/share/freeswitch/sounds/hotline/nobody_answered.wav',
    fallback: /not rendered/,
  });
  const playback = r.resolve(prompt(9, { ttsText: '${system(id)}\r\nhangup' }), 'welcome');
  t.equal(playback.arg, '/usr/share/freeswitch/sounds/hotline/welcome.wav', 'the text itself never reaches the command: only a hash path does');
});

t.test('a row not rendered at first plays its file once the render lands (the key is kept, not the answer)', async (t) => {
  const text = '稍后再拨';
  const rendered = new Set<string>();
  const r = new PromptResolver(settings(), { has: (k: string) => rendered.has(k) });
  const row = prompt(10, { ttsText: text });
  t.match(r.resolve(row, 'welcome'), { arg: '/usr/share/freeswitch/sounds/hotline/welcome.wav', fallback: /not rendered/ }, 'before the render');
  rendered.add(ttsCacheKey('cmn', text));
  t.same(r.resolve(row, 'welcome'), { app: 'playback', arg: `${CACHE}/${ttsCacheKey('cmn', text)}.wav` }, 'the same row object, after');
  const reloaded = prompt(10, { ttsText: '另一句' });
  t.match(r.resolve(reloaded, 'welcome'), { fallback: /not rendered/ }, 'a reloaded row with a new text: its own key');
});

t.test('the hash is of voice and text', async (t) => {
  t.not(ttsCacheKey('cmn', 'abc'), ttsCacheKey('en', 'abc'), 'another voice, another file');
  t.not(ttsCacheKey('cm', 'nabc'), ttsCacheKey('cmn', 'abc'), 'no ambiguity between voice and text');
  t.equal(ttsCacheKey('cmn', ' abc\n'), ttsCacheKey('cmn', 'abc'));
});

t.test('a relative TTS_CACHE_DIR becomes absolute (FreeSWITCH does not share our cwd)', async (t) => {
  const r = new PromptResolver(settings({ cacheDir: './var/tts' }), cacheWith('x'));
  t.equal(r.resolve(prompt(1, { ttsText: 'x' }), 'welcome').arg, path.join(process.cwd(), 'var/tts', `${ttsCacheKey('cmn', 'x')}.wav`));
});

t.test('freeswitch engine: speak engine|voice|text with the text made safe', async (t) => {
  const r = new PromptResolver(settings({ engine: 'freeswitch' }), cacheWith());
  t.same(r.resolve(prompt(10, { ttsText: '您好，欢迎致电 Acme。' }), 'welcome'), { app: 'speak', arg: 'flite|kal|您好，欢迎致电 Acme。' });
  const hostile = r.resolve(prompt(11, { ttsText: 'Hi ${system(rm -rf /)}\r\nevent-lock: true\r\n\r\napi bgapi originate|x|y $${hold_music} \\n' }), 'welcome');
  t.equal(hostile.app, 'speak');
  const text = hostile.arg.slice('flite|kal|'.length);
  t.notMatch(text, /[$|{}\r\n\\]/, `nothing FreeSWITCH reads: ${JSON.stringify(text)}`);
  t.equal(hostile.arg.split('|').length, 3, 'exactly engine|voice|text');
  t.match(text, /^Hi system\(rm -rf \/\) event-lock: true api bgapi originate x y hold_music n$/, 'the words are kept');
  t.match(r.resolve(prompt(12, { ttsText: '${}|\r\n' }), 'goodbye'), { app: 'playback', arg: /goodbye\.wav$/, fallback: /nothing speakable/ });
  t.match(r.resolve(prompt(13, { ttsText: '   ' }), 'goodbye'), { app: 'playback', fallback: /neither/ });
});

t.test('sanitizeSpeakText', async (t) => {
  const cases: Array<[string, string | null, string]> = [
    ['您好', '您好', 'Chinese untouched'],
    ['a\r\nb\tc\u0000d\u2028e\u0085f', 'a b c d e f', 'control characters and line separators become spaces'],
    ['${system(id)}', 'system(id)', 'no ${ expansion'],
    ['$${sounds_dir}', 'sounds_dir', 'no $${ either'],
    ['a|b|c', 'a b c', 'no speak separators'],
    ['say \\${x}', 'say x', 'no backslash escapes'],
    ['"quoted" \'single\'', 'quoted single', 'no quotes switch_separate_string would strip'],
    ['<speak>hi</speak>', 'speak hi /speak', 'no SSML'],
    ['/etc/passwd', 'etc/passwd', 'no leading slash (engines that read a file)'],
    ['  / /x', 'x', 'no leading slashes after whitespace'],
    ['^^:a:b', ':a:b', 'no ^^ delimiter syntax'],
    ['', null, 'empty'],
    ['${}|\r\n', null, 'nothing left'],
  ];
  for (const [input, expected, why] of cases) t.equal(sanitizeSpeakText(input), expected, why);
  const long = '长'.repeat(SPEAK_MAX_CHARS + 50);
  t.equal(Array.from(sanitizeSpeakText(long) ?? '').length, SPEAK_MAX_CHARS, 'cut to SPEAK_MAX_CHARS characters (not UTF-16 units)');
  t.equal(sanitizeSpeakText('😀'.repeat(SPEAK_MAX_CHARS + 1)), '😀'.repeat(SPEAK_MAX_CHARS), 'no split surrogate pair');
});

t.test('settings that cannot give safe commands are refused at construction', async (t) => {
  t.throws(() => new PromptResolver(settings({ engine: 'freeswitch', freeswitchEngine: 'flite' }), cacheWith()), /TTS_FREESWITCH_ENGINE/);
  t.throws(() => new PromptResolver(settings({ engine: 'freeswitch', freeswitchEngine: 'flite|kal|x' }), cacheWith()), /TTS_FREESWITCH_ENGINE/);
  t.throws(() => new PromptResolver(settings({ engine: 'freeswitch', freeswitchEngine: 'flite|${x}' }), cacheWith()), /TTS_FREESWITCH_ENGINE/);
  t.throws(() => new PromptResolver(settings({ cacheDir: '/var/tts cache' }), cacheWith()), /TTS_CACHE_DIR/);
  t.throws(() => new PromptResolver(settings({ systemDir: '/sounds/${x}' }), cacheWith()), /PROMPTS_DIR/);
  t.doesNotThrow(() => new PromptResolver(settings({ engine: 'freeswitch', cacheDir: '/odd dir' }), cacheWith()), 'cache dir unused with the freeswitch engine');
});
