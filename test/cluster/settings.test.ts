// CLUSTER_WORKERS: 1 by default (a single process), a count, or 0/auto for one worker per core;
// anything else is refused naming the key.
import cluster from 'node:cluster';
import os from 'node:os';
import t from 'tap';
import { schedulingPolicyOf } from '../../src/cluster/policy';
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

t.test('CLUSTER_SCHEDULING: round_robin by default, os on request, anything else refused naming the key', async (t) => {
  t.equal(loadSettings({ env: {} }).cluster.scheduling, 'round_robin');
  t.equal(loadSettings({ env: { CLUSTER_SCHEDULING: 'os' } }).cluster.scheduling, 'os');
  t.equal(schedulingPolicyOf('round_robin'), cluster.SCHED_RR, 'round_robin: the primary hands connections out');
  t.equal(schedulingPolicyOf('os'), cluster.SCHED_NONE, 'os: the workers accept from the shared socket');
  for (const bad of ['rr', 'OS', 'none', '']) {
    t.throws(() => loadSettings({ env: { CLUSTER_SCHEDULING: bad } }), { constructor: ConfigError, message: /cluster\.scheduling/ }, JSON.stringify(bad));
  }
});
