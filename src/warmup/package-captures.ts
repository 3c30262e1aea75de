/**
 * Run by `npm run build` after tsc: copies the captures the warm-up replays (TEMPLATE_CAPTURES,
 * with the folder's README, which says where they come from) from test/fixtures/esl into
 * dist/captures/esl, so that a daemon deployed as dist/ and node_modules, without test/, still
 * warms up (src/warmup/captures.ts looks there when test/fixtures/esl is absent).
 */
import fs from 'node:fs';
import path from 'node:path';
import { FIXTURE_DIR, PACKAGED_CAPTURE_DIR } from './captures';
import { TEMPLATE_CAPTURES } from './templates';

/** Copies the warm-up's captures from `from` to `to` (made if missing); returns the files copied. Throws when one is missing. */
export function packageCaptures(from: string, to: string): string[] {
  fs.mkdirSync(to, { recursive: true });
  const files = [...TEMPLATE_CAPTURES, 'README.md'];
  for (const name of files) fs.copyFileSync(path.join(from, name), path.join(to, name));
  return files;
}

if (require.main === module) {
  // On stderr: `npm run route --silent > file` builds first, and its stdout is the command's.
  if (FIXTURE_DIR === PACKAGED_CAPTURE_DIR) {
    // Built where test/ is absent: the copy already there is all there is.
    const missing = TEMPLATE_CAPTURES.filter((name) => !fs.existsSync(path.join(PACKAGED_CAPTURE_DIR, name)));
    process.stderr.write(
      missing.length === 0
        ? `captures: no test/fixtures/esl here; keeping ${PACKAGED_CAPTURE_DIR}\n`
        : `captures: no test/fixtures/esl here, and ${PACKAGED_CAPTURE_DIR} lacks ${missing.join(', ')}: the daemon built here starts without its warm-up\n`,
    );
  } else if (!fs.existsSync(FIXTURE_DIR)) {
    // A source tree without test/ (an image that copies src/ alone): the daemon runs, cold at start.
    process.stderr.write(`captures: no test/fixtures/esl here and no earlier copy: the daemon built here starts without its warm-up (README "Warm-up at start-up")\n`);
  } else {
    // The folder is there: a capture missing from it is a defect, and fails the build.
    packageCaptures(FIXTURE_DIR, PACKAGED_CAPTURE_DIR);
  }
}
