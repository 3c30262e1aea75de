/**
 * M12 (channel-model.ts): what `record` leaves on the channel when it ends, as
 * switch_ivr_record_file sets it: record_ms / record_samples / record_seconds count the audio
 * WRITTEN (the silence that ended it less its last frame included, CNG frames only with
 * record_fill_cng), silence_hits_exhausted says whether silence ended it. The capture
 * (outbound-plain-missing-file-no-digits-record-silence) is replayed in test/esl/peer-fidelity.test.ts.
 */
import t from 'tap';
import { recordEnd } from '../../src/esl/channel';
import { ScriptedChannel, type ScriptedOptions } from './scripted-channel';

/** Runs one `record /rec/x.wav <max> 200 <hits>` on an answered channel; returns the variables and how long it ran. */
async function record(opts: ScriptedOptions, args: { max?: number; hits?: number; vars?: Record<string, string> } = {}): Promise<{ vars: Record<string, string>; ranMs: number; channel: ScriptedChannel }> {
  const channel = new ScriptedChannel({ existingDirs: ['/rec'], ...opts });
  await channel.answer();
  if (args.vars) await channel.setVariables(args.vars);
  await channel.record('/rec/x.wav', args.max ?? 120, 200, args.hits ?? 5).catch(() => undefined);
  const rec = channel.apps.find((a) => a.app === 'record')!;
  return { vars: channel.model.vars, ranMs: rec.endedAt - rec.startedAt, channel };
}

t.test('ended on silence: the silence window less one frame is in record_ms, untrimmed', async (t) => {
  const { vars, ranMs } = await record({ recordSeconds: 4 });
  t.equal(ranMs, 9000, '4 s of speech, then 5 s of silence end it');
  t.equal(vars.silence_hits_exhausted, 'true');
  t.equal(vars.record_ms, String(4000 + 5000 - 20));
  t.equal(vars.record_samples, String((4000 + 5000 - 20) * 8));
  t.equal(vars.record_seconds, '8');
});

t.test('a silent caller whose phone sends nothing (CNG): nothing written, as the capture shows', async (t) => {
  const { vars, ranMs } = await record({ recordSeconds: 0, recordSilence: 'cng' }, { max: 6, hits: 2 });
  t.equal(ranMs, 2000);
  t.match(vars, { silence_hits_exhausted: 'true', record_ms: '0', record_samples: '0', record_seconds: '0' });
});

t.test('record_fill_cng writes comfort noise for CNG frames: the silence is then in record_ms', async (t) => {
  const { vars } = await record({ recordSeconds: 2, recordSilence: 'cng' }, { hits: 2, vars: { record_fill_cng: 'true' } });
  t.match(vars, { silence_hits_exhausted: 'true', record_ms: String(2000 + 2000 - 20) });
  const without = await record({ recordSeconds: 2, recordSilence: 'cng' }, { hits: 2 });
  t.equal(without.vars.record_ms, '2000', 'without it only the speech is written');
});

t.test('# ends it: no silence, everything until the key', async (t) => {
  const { vars, ranMs } = await record({ recordSeconds: 30, timeline: { keys: [{ atMs: 7000, keys: '#' }] } }, { vars: { playback_terminators: '#' } });
  t.ok(ranMs > 6000 && ranMs <= 7000, `ran ${ranMs} ms`);
  t.equal(vars.silence_hits_exhausted, 'false', 'set false when the file opened, left so');
  t.equal(Number(vars.record_ms), Math.floor(ranMs / 20) * 20);
});

t.test('max seconds end it in the epoch second after the limit', async (t) => {
  const { vars, ranMs } = await record({ recordSeconds: 30 }, { max: 3 });
  t.ok(ranMs > 3000 && ranMs <= 4000, `ran ${ranMs} ms`);
  t.equal(vars.silence_hits_exhausted, 'false');
  t.equal(Number(vars.record_ms), Math.floor(ranMs / 20) * 20);
});

t.test('the caller hangs up mid-message: the variables are still set, the completion still comes', async (t) => {
  const { vars, channel } = await record({ recordSeconds: 30, timeline: { hangupAtMs: 6000 } });
  t.ok(channel.hungUp);
  t.equal(vars.silence_hits_exhausted, 'false');
  const rec = channel.apps.find((a) => a.app === 'record')!;
  t.equal(Number(vars.record_ms), Math.floor((6000 - rec.startedAt) / 20) * 20);
});

t.test('recordEnd reads the completion: record_ms, silence, the frame from rtp_use_codec_ptime', async (t) => {
  const vars: Record<string, string> = { record_ms: '8980', silence_hits_exhausted: 'true', rtp_use_codec_ptime: '30' };
  t.same(recordEnd((n) => vars[n]), { ms: 8980, endedOnSilence: true, frameMs: 30 });
  t.same(recordEnd(() => undefined), { ms: 0, endedOnSilence: false, frameMs: 20 }, 'nothing said: nothing recorded, 20 ms frames');
  const bad: Record<string, string> = { record_ms: 'x', rtp_use_codec_ptime: '0' };
  t.same(recordEnd((n) => bad[n]), { ms: 0, endedOnSilence: false, frameMs: 20 }, 'garbage is read as nothing');
});
