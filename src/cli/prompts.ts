/**
 * `npm run prompts [-- [--force] [--out DIR]]`: renders the system prompts (src/prompts/names.ts,
 * texts in src/prompts/system-texts.ts) as 8 kHz mono 16-bit WAV placeholders into PROMPTS_DIR
 * or DIR, with espeak-ng (voice TTS_VOICE) and sox, the same pipeline as tenant TTS prompts.
 * Existing files are kept unless --force. freeswitch/sounds/generate.sh runs this.
 * Exit 0 when every prompt is there, 1 when one could not be rendered, 2 on bad usage or settings.
 */
import path from 'node:path';
import { parseArgs } from 'node:util';
import { ConfigError, loadSettings } from '../config';
import { TtsError } from '../prompts/render';
import { renderSystemPrompts } from '../prompts/system-prompts';

const USAGE = 'usage: npm run prompts -- [--force] [--out DIR]';

async function main(argv: string[]): Promise<number> {
  let values: { force?: boolean; out?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: { force: { type: 'boolean' }, out: { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (err) {
    process.stderr.write(`prompts: ${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const settings = loadSettings();
  const outDir = path.resolve(values.out ?? settings.prompts.systemDir);
  const report = await renderSystemPrompts(outDir, { voice: settings.tts.voice, force: values.force ?? false });
  for (const f of report.failed) process.stderr.write(`prompts: ${f.name}: ${f.error}\n`);
  process.stdout.write(`prompts: ${report.rendered.length} rendered, ${report.kept.length} kept, ${report.failed.length} failed, in ${outDir}\n`);
  return report.failed.length === 0 ? 0 : 1;
}

if (require.main === module) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`prompts: ${err instanceof ConfigError || err instanceof TtsError ? err.message : (err as Error).stack ?? String(err)}\n`);
      process.exit(2);
    },
  );
}
