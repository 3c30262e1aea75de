// One spool, one owner (issue 10: two daemons on one folder replayed and deleted each other's
// open segment). Real daemon processes: a second one on the same CDR_SPOOL_DIR exits 3 naming the
// folder; after a `kill -9` of the owner the next start is not blocked by a stale lock; without a
// database and without a cached configuration the daemon still refuses to start, clearly.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { CdrSpool } from '../../src/cdr/spool';
import { SpoolLockedError } from '../../src/cdr/spool-lock';
import { healthz, startDaemonProcess } from './spawn';

function tempDir(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-own-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

t.test('two spools of one process on one folder: the second is refused until the first closes', async (t) => {
  const dir = path.join(tempDir(), 'spool');
  const a = new CdrSpool(dir);
  await a.open();
  await a.open();
  t.pass('open() again on the same spool is a no-op');
  const b = new CdrSpool(dir);
  await t.rejects(b.open(), { constructor: SpoolLockedError, code: 'SPOOL_LOCKED', dir, message: new RegExp(`CDR spool folder ${dir} is in use by another daemon \\(pid ${process.pid} on `) });
  await a.close();
  await b.open();
  t.pass('after close() the folder can be taken');
  await b.close();
});

t.test('a second daemon process on the same spool folder exits 3 naming the folder; kill -9 leaves no stale lock', async (t) => {
  const dir = tempDir();
  const spool = path.join(dir, 'spool');
  const env = { DATABASE_URL: `sqlite:${path.join(dir, 'calls.db')}`, CDR_SPOOL_DIR: spool, TTS_CACHE_DIR: path.join(dir, 'tts'), REPORTS_DIR: path.join(dir, 'reports') };
  const first = startDaemonProcess(env);
  t.teardown(() => void first.child.kill('SIGKILL'));
  const port = await first.listening;
  t.equal((await healthz(port)).code, 200, 'the first daemon runs');

  const second = startDaemonProcess(env);
  t.equal(await second.exited, 3, 'the second daemon exits with code 3');
  t.match(second.stderr(), new RegExp(`hotline: the CDR spool folder ${spool} is in use by another daemon \\(pid \\d+ on .*\\); each daemon needs its own CDR_SPOOL_DIR`));
  t.match(second.stdout(), /"level":60.*"code":"SPOOL_LOCKED"/, 'and logs it as fatal with the stable code');
  t.notMatch(second.stdout(), /database migrated|configuration loaded/, 'it stopped before touching the database');
  t.equal((await healthz(port)).code, 200, 'the first one is unharmed');

  first.child.kill('SIGKILL');
  t.equal(await first.exited, 'SIGKILL');
  t.ok(fs.existsSync(path.join(spool, 'spool.lock')), 'the lock file is still there after kill -9');
  const third = startDaemonProcess(env);
  t.teardown(() => void third.child.kill('SIGKILL'));
  const thirdPort = await third.listening;
  t.equal((await healthz(thirdPort)).code, 200, 'the next daemon starts on the folder: a dead owner holds no lock');
  third.child.kill('SIGTERM');
  t.equal(await third.exited, 0, 'and stops cleanly');
});

t.test('two daemons with the default spool folder, started from different working directories, still meet on one folder', async (t) => {
  // The default CDR_SPOOL_DIR (var/spool/cdr) is relative to the installation, so daemons started
  // anywhere resolve it to the same folder, and the second refuses instead of spooling elsewhere.
  // Shown with another relative CDR_SPOOL_DIR (the default one may be in use on this machine).
  const dir = tempDir();
  const relative = path.relative(path.join(__dirname, '..', '..'), path.join(dir, 'spool'));
  const env = (db: string) => ({ DATABASE_URL: `sqlite:${path.join(dir, db)}`, CDR_SPOOL_DIR: relative, TTS_CACHE_DIR: path.join(dir, 'tts'), REPORTS_DIR: path.join(dir, 'reports') });
  const first = startDaemonProcess(env('a.db'));
  t.teardown(() => void first.child.kill('SIGKILL'));
  await first.listening;
  const second = startDaemonProcess(env('b.db'), os.tmpdir());
  t.equal(await second.exited, 3, `started from ${os.tmpdir()}: the same folder, refused`);
  t.match(second.stderr(), path.join(dir, 'spool'), 'the message names the folder, resolved from the installation');
  first.child.kill('SIGTERM');
  t.equal(await first.exited, 0);
});

t.test('no database and no cached configuration: exit 1 with a message that says so', async (t) => {
  const dir = tempDir();
  const d = startDaemonProcess({ DATABASE_URL: 'mysql://root@127.0.0.1:1/hotline', CDR_SPOOL_DIR: path.join(dir, 'spool'), TTS_CACHE_DIR: path.join(dir, 'tts') });
  t.equal(await d.exited, 1);
  t.match(d.stderr(), /hotline: cannot start: the configuration cannot be read from the database \(ECONNREFUSED.*\) and there is no usable cached configuration at .*config-cache\.json/);
  t.notMatch(d.stdout() + d.stderr(), /secret/);
});
