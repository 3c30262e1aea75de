/**
 * The captures of real FreeSWITCH traffic in test/fixtures/esl, for the test stand-in of FreeSWITCH:
 * reading them (src/warmup/captures.ts, shared with the daemon's warm-up and the bench), and what
 * only the tests need (their names, the system prompts' lengths, the controller's commands).
 */
import fs from 'node:fs';
import { FIXTURE_DIR } from '../../src/warmup/captures';

export { FIXTURE_DIR, channelDataTemplate, labelsSwapped, readCapture, readLabelled, streamOf, type Capture, type Chunk, type Direction } from '../../src/warmup/captures';

export function captureNames(): string[] {
  return fs.readdirSync(FIXTURE_DIR).filter((f) => f.endsWith('.log')).sort();
}

/**
 * FreeSWITCH ms each system prompt plays for, as `npm run prompts` renders them (sox measures
 * them; the daemon-* captures were taken with them: welcome.wav 9.29 s and invalid_entry.wav
 * 7.81 s are what they show), keyed by file under `dir` (the prompt folder of the test).
 */
export function systemPromptMs(dir: string): Record<string, number> {
  const ms: Record<string, number> = {
    welcome: 9285, invalid_entry: 7811, enter_pin: 10128, enter_extension: 15125, choose_option: 3000,
    wrong_pin: 8538, goodbye: 8023, capped: 10380,
  };
  return Object.fromEntries(Object.entries(ms).map(([name, n]) => [`${dir}/${name}.wav`, n]));
}

/**
 * The controller's commands as mod_event_socket reads them (read_packet: headers up to a blank
 * line, then content-length bytes), each whole; `rest` is an incomplete tail still to come.
 */
export function splitCommands(stream: Buffer): { commands: Buffer[]; rest: Buffer } {
  const commands: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const end = stream.indexOf('\n\n', pos);
    if (end < 0) break;
    const length = Number(/^content-length: (\d+)$/im.exec(stream.toString('utf8', pos, end))?.[1] ?? 0);
    if (stream.length < end + 2 + length) break;
    commands.push(stream.subarray(pos, end + 2 + length));
    pos = end + 2 + length;
  }
  return { commands, rest: stream.subarray(pos) };
}

/** Every whole command in a controller's stream (streamOf(…, 'CTL->FS')). */
export function commandsOf(stream: Buffer): Buffer[] {
  return splitCommands(stream).commands;
}

