/**
 * The FreeSWITCH stand-in (test/peer) must answer like the real one. Each test replays, byte for
 * byte, the commands a real controller sent in a capture, in the same lockstep (a command goes
 * out once the stand-in has sent what real FreeSWITCH had sent before it), and compares what the
 * stand-in sends back with what real FreeSWITCH sent: replies, application completions
 * (Application, Application-Response, DIALSTATUS, read_result and the digits variables), answer,
 * bridge, hangup causes and disconnect notices, in order — and for the five daemon-* calls the
 * answer and hangup times and every completion's time (Event-Date-Timestamp, relative, within
 * TOLERANCE_S of FreeSWITCH time, run at TIME_SCALE).
 *
 * The daemon-* calls are driven by the caller FreeSWITCH logged (daemon-cases.freeswitch-log.txt:
 * each RECV DTMF relative to the answer, the caller's BYE), which is what the fixtures README
 * describes in words (checked below), and by the prompt lengths FreeSWITCH played.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import t, { type Test } from 'tap';
import { frameToEvent, type EslEvent } from '../../src/esl/event';
import { EslFramer } from '../../src/esl/parser';
import type { CallerTimeline } from '../peer/channel-model';
import { fsUrlEncode, placeCall, type CallRecord, type CallScript } from '../peer/fake-freeswitch';
import { FIXTURE_DIR, captureNames, channelDataTemplate, readCapture, splitCommands, streamOf, systemPromptMs, type Chunk } from '../peer/fixtures';

/**
 * FreeSWITCH seconds per test second in the timed replays, and how far a time may be off. The
 * stand-in stamps events with the wall clock (A9), so any lag of a loaded machine counts 1/scale
 * times in FreeSWITCH seconds: at 0.25 a 0.9 s stall of the 2-vCPU CI machine (seen with other
 * suites running) came out as 3.7 s and failed by chance. At 0.5 a 0.8 s stall still used up the
 * 1.5 s tolerance. At 1 the replays run in real time and a stall counts once. (The real fix is a
 * stand-in clock that stamps modelled time, not wall time: not done yet.)
 */
const TIME_SCALE = 1;
const TOLERANCE_S = 1.5;

/**
 * How long each prompt played in the daemon-* calls: the system prompts `npm run prompts`
 * renders (the fixtures README: the captures were taken with them), as sox measures them —
 * welcome.wav 9.29 s and invalid_entry.wav 7.81 s are what the captures show (9.30 s, 7.82 s) —
 * the tenant's own greeting (0.5 s in daemon-pin-right-with-prompts), and the warning the
 * broadcast played (10.38 s from answer to its completion in daemon-spend-cut-…).
 */
const HOTLINE = '/usr/share/freeswitch/sounds/hotline';
const PROMPT_MS: Record<string, number> = { ...systemPromptMs(HOTLINE), [`${HOTLINE}/tenant-welcome.wav`]: 500 };

interface Item {
  text: string;
  /** Event-Date-Timestamp in seconds (events only). */
  at: number | null;
  name: string;
}

function summarize(events: EslEvent[]): Item[] {
  const out: Item[] = [];
  for (const e of events) {
    const at = e.getHeader('Event-Date-Timestamp') ? Number(e.getHeader('Event-Date-Timestamp')) / 1e6 : null;
    const push = (text: string): void => {
      out.push({ text, at, name: e.name });
    };
    // A bgapi's Job-UUID is random on both sides.
    if (e.contentType === 'command/reply') push(`reply:${(e.getHeader('Reply-Text') ?? '').replace(/Job-UUID: [0-9a-f-]{36}/, 'Job-UUID: …')}`);
    else if (e.contentType === 'api/response') push(`api:${e.body}`);
    else if (e.contentType === 'text/disconnect-notice') {
      // The linger notice goes out whenever the socket thread notices the hangup: its position
      // varies in real captures too, so it is compared by presence, not by position.
      if (e.outer['Content-Disposition'] !== 'linger') push(`notice:${e.outer['Content-Disposition']}`);
    } else if (e.name === 'CHANNEL_EXECUTE_COMPLETE') push(`complete:${e.getHeader('Application')}:${e.getHeader('Application-Response')}:${e.variable('DIALSTATUS') ?? ''}${digitVars(e)}${recordVars(e)}`);
    else if (e.name === 'CHANNEL_ANSWER') push('answer');
    else if (e.name === 'CHANNEL_BRIDGE') push('bridge');
    else if (e.name === 'CHANNEL_HANGUP') push(`hangup:${e.getHeader('Hangup-Cause')}`);
    else if (e.name === 'CHANNEL_HANGUP_COMPLETE') push(`hangup_complete:${e.getHeader('Hangup-Cause')}`);
  }
  return out;
}

/** read_result and the digits variable of a play_and_get_digits completion (M4, M5). */
function digitVars(e: EslEvent): string {
  if (e.getHeader('Application') !== 'play_and_get_digits') return '';
  const variable = (e.getHeader('Application-Data') ?? '').split(' ')[7] ?? '';
  return `:read_result=${e.variable('read_result') ?? '(unset)'},${variable}=${e.variable(variable) ?? '(unset)'}`;
}

/** What `record` reports when it ends (M12): the length written and whether silence ended it. */
function recordVars(e: EslEvent): string {
  if (e.getHeader('Application') !== 'record') return '';
  const v = (name: string): string => e.variable(name) ?? '(unset)';
  return `:record_ms=${v('record_ms')},record_samples=${v('record_samples')},record_seconds=${v('record_seconds')},silence_hits_exhausted=${v('silence_hits_exhausted')}`;
}

function parseAll(stream: Buffer): EslEvent[] {
  const framer = new EslFramer();
  return framer.push(stream).map((f) => frameToEvent(f, framer).event);
}

/**
 * The controller's commands with how many summary items real FreeSWITCH had sent before each:
 * the replay sends a command once the stand-in has sent as many.
 */
function commandsInLockstep(chunks: Chunk[]): Array<{ raw: Buffer; after: number }> {
  const framer = new EslFramer();
  let seen = 0;
  let pending: Buffer = Buffer.alloc(0);
  const out: Array<{ raw: Buffer; after: number }> = [];
  for (const chunk of chunks) {
    if (chunk.direction === 'FS->CTL') {
      seen += summarize(framer.push(chunk.bytes).map((f) => frameToEvent(f, framer).event)).length;
      continue;
    }
    const { commands, rest } = splitCommands(Buffer.concat([pending, chunk.bytes]));
    for (const raw of commands) out.push({ raw, after: seen });
    pending = rest;
  }
  return out;
}

interface Replay {
  real: EslEvent[];
  fake: EslEvent[];
  record: CallRecord;
}

/**
 * Plays the captured controller against the stand-in. `delays`: commands the controller sent on
 * a timer rather than on an event (the spend guard's cut), as FreeSWITCH ms after the answer.
 */
/** The call's Unique-ID in the stand-in's replays. */
const STAND_IN_UUID = '11111111-2222-3333-4444-555555555555';

/**
 * `extra`: commands real FreeSWITCH got on another connection of the capture (an inbound
 * socket's `api uuid_kill`), sent here on the call's own socket once the stand-in has sent
 * `after` summary items; their `api/response` is left out of the comparison by the caller.
 */
async function replay(name: string, script: Omit<CallScript, 'uuid'>, delays: Array<{ match: RegExp; afterAnswerMs: number }> = [], extra: Array<{ raw: Buffer; after: number }> = []): Promise<Replay> {
  const connection = readCapture(name).connections[0];
  const real = parseAll(streamOf(connection, 'FS->CTL'));
  const realUuid = real[0].getHeader('Unique-ID')!;
  const commands = [...commandsInLockstep(connection), ...extra].sort((a, b) => a.after - b.after);
  const scale = script.timeScale ?? 0.01;
  // A command real FreeSWITCH took while the channel lingered (a hangup after HANGUP_COMPLETE)
  // must reach the stand-in before its scaled linger ends; on a loaded machine 50 ms did not.
  const hangupComplete = summarize(real).findIndex((i) => i.text.startsWith('hangup_complete:'));
  if (hangupComplete >= 0 && commands.some((c) => c.after > hangupComplete)) script = { lingerFloorMs: 2000, ...script };
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const fake: EslEvent[] = [];
  const uuid = STAND_IN_UUID;
  const done = new Promise<void>((resolve, reject) => {
    server.once('connection', (socket) => {
      const framer = new EslFramer();
      let count = 0;
      let answeredAt: number | null = null;
      const waiters: Array<() => void> = [];
      socket.on('data', (chunk) => {
        for (const f of framer.push(chunk)) {
          const e = frameToEvent(f, framer).event;
          fake.push(e);
          if (e.name === 'CHANNEL_ANSWER') answeredAt ??= performance.now();
          count += summarize([e]).length;
          for (const w of waiters.splice(0)) w();
        }
      });
      const until = (pred: () => boolean, what: string): Promise<void> =>
        new Promise((res, rej) => {
          const timer = setTimeout(() => rej(new Error(`${name}: the stand-in never sent ${what}; it sent ${JSON.stringify(summarize(fake).map((i) => i.text))}`)), 60_000);
          const check = (): void => {
            if (pred()) {
              clearTimeout(timer);
              res();
            } else waiters.push(check);
          };
          check();
        });
      socket.on('close', () => {
        for (const w of waiters.splice(0)) w();
        resolve();
      });
      void (async () => {
        for (const { raw, after } of commands) {
          await until(() => count >= after || socket.destroyed, `the ${after} messages real FreeSWITCH sent before ${JSON.stringify(raw.toString('utf8', 0, 40))}`);
          const text = raw.toString('utf8').replaceAll(realUuid, uuid);
          const delay = delays.find((d) => d.match.test(text));
          if (delay) {
            await until(() => answeredAt !== null, 'an answer');
            const due = answeredAt! + delay.afterAnswerMs * scale;
            await new Promise((r) => setTimeout(r, Math.max(0, due - performance.now())));
          }
          if (!socket.destroyed) socket.write(text);
        }
        // The daemon closes its socket once it has CHANNEL_HANGUP_COMPLETE, before the linger runs
        // out: then the capture ends without FreeSWITCH's disconnect notice.
        const total = summarize(real).length;
        await until(() => count >= total || socket.destroyed, `all ${total} messages`);
        if (!summarize(real).some((i) => i.text === 'notice:disconnect')) socket.end();
      })().catch((err: unknown) => {
        socket.destroy();
        reject(err instanceof Error ? err : new Error(String(err)));
      });
    });
  });
  const [record] = await Promise.all([placeCall(port, { ...script, uuid }), done]);
  server.close();
  return { real, fake, record };
}

const texts = (items: Item[]): string[] => items.map((i) => i.text);

/**
 * Times of answer, hangup and every completion: the answer relative to the connect reply, the
 * rest relative to the answer; the stand-in's in FreeSWITCH seconds (wall time / scale).
 */
function timings(events: EslEvent[], scale: number): Array<{ text: string; s: number }> {
  const items = summarize(events);
  const t0 = Number(events[0].getHeader('Event-Date-Timestamp')) / 1e6;
  const answerIndex = items.findIndex((i) => i.text === 'answer');
  const answer = answerIndex >= 0 ? items[answerIndex].at! : null;
  return items
    .map((i, index) => ({ ...i, before: answer === null || index <= answerIndex }))
    .filter((i) => i.at !== null && /^(answer|hangup:|complete:)/.test(i.text) && !i.text.startsWith('complete:socket'))
    .map((i) => ({ text: i.text, s: (i.at! - (i.before ? t0 : answer!)) / scale }));
}

function checkTimes(t: Test, r: Replay, scale: number): void {
  const real = timings(r.real, 1);
  const fake = timings(r.fake, scale);
  t.equal(fake.length, real.length, 'as many timed events');
  real.forEach((x, i) => {
    const y = fake[i];
    t.ok(y && Math.abs(y.s - x.s) <= TOLERANCE_S, `${x.text} at ${x.s.toFixed(2)} s; stand-in ${y ? y.s.toFixed(2) : '—'} s`);
  });
}

// ---- the caller FreeSWITCH logged (daemon-cases.freeswitch-log.txt)

interface LoggedCall {
  caller: string;
  answeredAt: number;
  keys: Array<{ atMs: number; key: string }>;
  /** The caller's BYE (sofia.c), ms after answer; null when FreeSWITCH or the daemon hung up. */
  callerHangupMs: number | null;
}

function loggedCalls(): Map<string, LoggedCall> {
  const text = fs.readFileSync(path.join(FIXTURE_DIR, 'daemon-cases.freeswitch-log.txt'), 'utf8');
  const calls = new Map<string, LoggedCall>();
  let current: LoggedCall | null = null;
  const stamp = (line: string): number => Date.parse(`${line.slice(0, 10)}T${line.slice(11, 23)}Z`) + Number(line.slice(23, 26)) / 1000;
  for (const line of text.split('\n')) {
    const header = /^## caller (\d+)/.exec(line);
    if (header) {
      current = { caller: header[1], answeredAt: NaN, keys: [], callerHangupMs: null };
      calls.set(header[1], current);
      continue;
    }
    if (!current || !/^\d{4}-/.test(line)) continue;
    if (line.includes('has been answered')) current.answeredAt = stamp(line);
    const dtmf = /RECV DTMF (.):/.exec(line);
    if (dtmf) current.keys.push({ atMs: stamp(line) - current.answeredAt, key: dtmf[1] });
    if (line.includes('sofia.c') && line.includes('Hangup')) current.callerHangupMs = stamp(line) - current.answeredAt;
  }
  return calls;
}

function timelineOf(call: LoggedCall): CallerTimeline {
  return {
    keys: call.keys.map((k) => ({ atMs: Math.round(k.atMs), keys: k.key })),
    ...(call.callerHangupMs === null ? {} : { hangupAtMs: Math.round(call.callerHangupMs) }),
  };
}

// The timed replays wait on FreeSWITCH time; they run side by side.
t.jobs = 6;

const LOGGED = loggedCalls();
const callerOf = (name: string): LoggedCall => {
  const channel = parseAll(streamOf(readCapture(name).connections[0], 'FS->CTL'))[0];
  return LOGGED.get(channel.getHeader('Caller-Caller-ID-Number')!)!;
};

t.test('the logged callers are the ones the fixtures README describes', async (t) => {
  const pin = callerOf('daemon-pin-right-with-prompts.log');
  t.equal(pin.keys.map((k) => k.key).join(''), '4321', 'PIN: 4321');
  t.ok(Math.abs(pin.keys[0].atMs - 4000) < 100 && Math.abs(pin.keys[1].atMs - pin.keys[0].atMs - 400) < 50, 'keyed 4 s after answer, 400 ms apart');
  t.equal(callerOf('daemon-pin-prompt-file-missing.log').keys.length, 0, 'the missing-prompt call never got to key (the digits FreeSWITCH never logged)');
  const ivr = callerOf('daemon-ivr-key-typed-during-invalid-prompt.log');
  t.same(ivr.keys.map((k) => k.key), ['9', '1'], 'IVR: 9, then 1');
  t.ok(Math.abs(ivr.keys[0].atMs - 3000) < 100 && Math.abs(ivr.keys[1].atMs - ivr.keys[0].atMs - 2900) < 100, '9 at 3 s, 1 2.9 s later');
  t.ok(ivr.callerHangupMs! > 20_000, 'the caller gave up after more than 20 s');
  t.equal(callerOf('daemon-switchboard-extension-typed-during-invalid-prompt.log').keys.map((k) => k.key).join(''), '9#802#', 'switchboard: 9#, then 802#');
  t.equal(callerOf('daemon-spend-cut-during-warning-broadcast.log').keys.length, 0);
});

// ---- the captures of other controllers (no timeline: keys as older scripts give them)

t.test('hunt: busy, no answer (leg_timeout), answered then callee hangs up', async (t) => {
  const { real, fake } = await replay('outbound-plain-hunt-busy-noanswer-answer.log', {
    caller: '13912345678',
    destination: '4001012340',
    legs: { '13800000001': { result: 'busy' }, '13800000003': { result: 'no_answer' }, '13800000002': { result: 'answer', talkMs: 30 } },
  });
  t.same(texts(summarize(fake)), texts(summarize(real)));
  t.ok(fake.some((e) => e.outer['Content-Disposition'] === 'linger'), 'a linger notice was sent');
  t.equal(fake[0].getHeader('Reply-Text'), '+OK\n');
  t.equal(fake[0].getHeader('Control'), 'full');
});

t.test('caller cancels while the only leg rings', async (t) => {
  const { real, fake } = await replay('outbound-plain-caller-cancels-while-ringing.log', {
    caller: '13912345678',
    destination: '4001012340',
    defaultLeg: { result: 'answer', ringMs: 60_000 },
    // The capture's leg_timeout=20 is 200 ms at the default scale (0.01), and the caller hung up at
    // 150 ms: both races were lost by chance on a loaded machine (the hang-up before the bridge was
    // written, or the leg timing out first). At 0.2 the leg times out 4 s after the bridge, and the
    // caller hangs up at 1.5 s, long after the bridge is written (six commands).
    timeScale: 0.2,
    callerHangsUpAfterMs: 1500,
  });
  t.same(texts(summarize(fake)), texts(summarize(real)));
});

t.test('hangup UNALLOCATED_NUMBER before answer', async (t) => {
  const { real, fake } = await replay('outbound-plain-hangup-unallocated-before-answer.log', { caller: '13912345678', destination: '4001019999' });
  t.same(texts(summarize(fake)), texts(summarize(real)));
});

t.test('answer, missing prompt, no digits and wrong digits', async (t) => {
  const capture = readCapture('outbound-plain-missing-file-no-digits-record-silence.log').connections[0];
  const missing = '/nonexistent/missing.wav';
  t.ok(streamOf(capture, 'CTL->FS').includes(`content-length: ${missing.length}\n\n${missing}`), 'the capture played this missing file');
  const { real, fake } = await replay('outbound-plain-missing-file-no-digits-record-silence.log', {
    caller: '13912345678',
    destination: '4001012340',
    missingFiles: [missing],
    // The capture has no DTMF event: nobody keyed anything in either play_and_get_digits.
    digits: ['', ''],
    recordSeconds: 0,
    // M12: sipp sent no RTP while `record` ran: every frame CNG, none written (record_ms 0).
    recordSilence: 'cng',
    // The capture's record wrote a file in /var/tmp, which existed on that machine (M11).
    existingDirs: ['/var/tmp'],
  });
  t.same(texts(summarize(fake)), texts(summarize(real)));
});

t.test('PIN keyed, recording, hunt (RFC 2833 digits)', async (t) => {
  const { real, fake } = await replay('outbound-plain-pin-dtmf-record-hunt.log', {
    caller: '13912345678',
    destination: '4001012340',
    digits: ['1234'],
    legs: { '13800000001': { result: 'busy' }, '13800000003': { result: 'no_answer' }, '13800000002': { result: 'answer', talkMs: 30 } },
  });
  t.same(texts(summarize(fake)), texts(summarize(real)));
});

t.test('a bridged call killed by uuid_kill: the bridge completes after the hangup, then the socket and HANGUP_COMPLETE', async (t) => {
  // In the capture the broadcast and the kill came from an inbound connection; here they go on
  // the call's socket, at the same points of the call (after the bridge; after the broadcast's
  // playback completed).
  const name = 'outbound-plain-bridge-killed-by-uuid_kill.log';
  const real = texts(summarize(parseAll(streamOf(readCapture(name).connections[0], 'FS->CTL'))));
  const bridged = real.indexOf('bridge') + 1;
  const played = real.findIndex((x) => x.startsWith('complete:playback')) + 1;
  t.ok(bridged > 0 && played > bridged, 'sanity: the capture bridged, then played the broadcast');
  const r = await replay(name, {
    caller: '13912345678',
    destination: '4001012340',
    legs: { '13800000005': { result: 'answer', ringMs: 10, talkMs: 60_000 } },
    promptMs: { 'silence_stream://300': 300 },
  }, [], [
    { raw: Buffer.from(`api uuid_broadcast ${STAND_IN_UUID} silence_stream://300 aleg\n\n`), after: bridged },
    { raw: Buffer.from(`api uuid_kill ${STAND_IN_UUID} CALL_REJECTED\n\n`), after: played + 1 },
  ]);
  t.same(texts(summarize(r.fake)).filter((x) => !x.startsWith('api:')), real);
  t.ok(real.indexOf('hangup:CALL_REJECTED') < real.findIndex((x) => x.startsWith('complete:bridge')), 'what is compared: the hangup comes before the bridge\'s completion');
});

// ---- the daemon's own calls, timed

t.test('daemon-pin-right-with-prompts: 4321 typed over enter_pin.wav reaches play_and_get_digits', async (t) => {
  const name = 'daemon-pin-right-with-prompts.log';
  const r = await replay(name, {
    caller: '13933339001',
    destination: '4001010001',
    timeline: timelineOf(callerOf(name)),
    promptMs: PROMPT_MS,
    timeScale: TIME_SCALE,
    legs: { '13800000102': { result: 'answer', ringMs: 20 * TIME_SCALE, talkMs: 2000 * TIME_SCALE } },
  });
  t.same(texts(summarize(r.fake)), texts(summarize(r.real)));
  t.match(texts(summarize(r.real)), ['reply:+OK\n', 'reply:+OK Events Enabled'], 'sanity: the capture parsed');
  checkTimes(t, r, TIME_SCALE);
  t.same(r.record.keys.filter((k) => k.fate !== 'queued').map((k) => `${k.key}:${k.fate}`), ['4:collected', '3:collected', '2:collected', '1:collected']);
});

t.test('daemon-pin-prompt-file-missing: each try returns at once, no digits, _none_; playback says FILE NOT FOUND', async (t) => {
  const name = 'daemon-pin-prompt-file-missing.log';
  const r = await replay(name, {
    caller: '13933339002',
    destination: '4001010001',
    // The caller would have keyed 4321 4 s after answer (fixtures README); the call was over by then.
    timeline: { keys: [{ atMs: 4000, keys: '4321' }] },
    promptMs: PROMPT_MS,
    missingDirs: ['/nonexistent'],
    timeScale: TIME_SCALE,
  });
  t.same(texts(summarize(r.fake)), texts(summarize(r.real)));
  checkTimes(t, r, TIME_SCALE);
});

t.test('daemon-ivr-key-typed-during-invalid-prompt: playback drops the 1, the menu times out', async (t) => {
  const name = 'daemon-ivr-key-typed-during-invalid-prompt.log';
  const r = await replay(name, { caller: '13930009003', destination: '4001010003', timeline: timelineOf(callerOf(name)), promptMs: PROMPT_MS, timeScale: TIME_SCALE });
  t.same(texts(summarize(r.fake)), texts(summarize(r.real)));
  checkTimes(t, r, TIME_SCALE);
  t.same(r.record.keys.filter((k) => k.fate !== 'queued').map((k) => `${k.key}:${k.fate}`), ['9:collected', '1:dropped']);
});

t.test('daemon-switchboard-extension-typed-during-invalid-prompt: 802# typed during playback is lost', async (t) => {
  const name = 'daemon-switchboard-extension-typed-during-invalid-prompt.log';
  const r = await replay(name, { caller: '13930009006', destination: '02088880000', timeline: timelineOf(callerOf(name)), promptMs: PROMPT_MS, timeScale: TIME_SCALE });
  t.same(texts(summarize(r.fake)), texts(summarize(r.real)));
  checkTimes(t, r, TIME_SCALE);
  t.same(r.record.keys.filter((k) => k.fate !== 'queued').map((k) => `${k.key}:${k.fate}`), ['9:collected', '#:collected', '8:dropped', '0:dropped', '2:dropped', '#:dropped']);
});

t.test('daemon-spend-cut-during-warning-broadcast: the sendmsg hangup waits for the broadcast', async (t) => {
  const name = 'daemon-spend-cut-during-warning-broadcast.log';
  const r = await replay(
    name,
    {
      caller: '13910009004',
      destination: '4001010004',
      promptMs: PROMPT_MS,
      timeScale: TIME_SCALE,
      legs: { '13800002005': { result: 'answer', ringMs: 20 * TIME_SCALE, talkMs: 30_000 * TIME_SCALE } },
    },
    // The fixtures README: the guard cut at 4 s (sendmsg call-command: hangup).
    [{ match: /call-command: hangup/, afterAnswerMs: 4000 }],
  );
  t.same(texts(summarize(r.fake)), texts(summarize(r.real)));
  checkTimes(t, r, TIME_SCALE);
  const answered = r.record.answeredAtFs!;
  t.ok(r.record.hungUpAtFs! - answered > 9000, `hung up ${((r.record.hungUpAtFs! - answered) / 1000).toFixed(1)} s after answer, not at the 4 s cut`);
});

// ---- encoding and the connect reply

t.test('the peer URL-encodes exactly as FreeSWITCH does (every value of every plain capture)', async (t) => {
  let checked = 0;
  for (const name of captureNames().filter((n) => n.includes('plain') || n.startsWith('daemon-'))) {
    const stream = streamOf(readCapture(name).connections[0], 'FS->CTL').toString('utf8');
    for (const line of stream.split('\n')) {
      const m = /^([A-Za-z0-9_-]+): (.*)$/.exec(line);
      if (!m || !m[2].includes('%')) continue;
      if (fsUrlEncode(decodeURIComponent(m[2])) !== m[2]) t.fail(`${name}: ${m[1]} encodes differently`);
      checked++;
    }
  }
  t.ok(checked > 500, `checked ${checked} encoded values`);
});

t.test('the peer connect reply has the real header names in the real order', async (t) => {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  const got = new Promise<Buffer>((resolve) => {
    server.once('connection', (socket) => {
      let buf = Buffer.alloc(0);
      socket.on('data', (c) => {
        buf = Buffer.concat([buf, c]);
        if (buf.includes('\n\n')) {
          resolve(buf);
          socket.destroy();
        }
      });
      socket.write('connect\n\n');
    });
  });
  void placeCall(port, { caller: '13912345678', destination: '4001012340' });
  const reply = (await got).toString('utf8');
  server.close();
  const names = reply.split('\n').filter((l) => l.includes(': ')).map((l) => l.slice(0, l.indexOf(': ')));
  t.same(names, [...channelDataTemplate().map(([n]) => n), 'Content-Type', 'Reply-Text', 'Socket-Mode', 'Control']);
  t.match(reply, /Content-Type: command\/reply\nReply-Text: %2BOK%0A\nSocket-Mode: async\nControl: full\n\n$/);
});
