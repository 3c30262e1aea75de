// CLUSTER_WORKERS: 1 by default (a single process), a count, or 0/auto for one worker per core;
// anything else is refused naming the key.
import os from 'node:os';
import t from 'tap';
import { ConfigError, loadSettings } from '../../src/config';

t.test('CLUSTER_WORKERS: default 1, a count, 0 or auto = one per core', async (t) => {
  t.equal(loadSettings({ env: {} }).cluster.workers, 1, 'default: one process');
  t.equal(loadSettings({ env: { CLUSTER_WORKERS: '2' } }).cluster.workers, 2);
  t.equal(loadSettings({ env: { CLUSTER_WORKERS: ' 4 ' } }).cluster.workers, 4);
  t.equal(loadSettings({ env: { CLUSTER_WORKERS: '0' } }).cluster.workers, os.availableParallelism());
  t.equal(loadSettings({ env: { CLUSTER_WORKERS: 'auto' } }).cluster.workers, os.availableParallelism());
  t.equal(loadSettings({ env: {}, overrides: { cluster: { workers: 'auto' } } }).cluster.workers, os.availableParallelism(), 'from a config file too');
});

t.test('CLUSTER_WORKERS: anything else is refused naming the key', async (t) => {
  for (const bad of ['-1', 'two', '1.5', '257', 'AUTO2', '']) {
    t.throws(() => loadSettings({ env: { CLUSTER_WORKERS: bad } }), { constructor: ConfigError, message: /cluster\.workers: must be auto or a whole number from 0 to 256/ }, JSON.stringify(bad));
  }
});
