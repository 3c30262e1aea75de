// The CDR writer thread's nice value (src/cdr/thread-priority.ts), against a stand-in of node:os;
// the real thread's value is checked in /proc by batch-thread.test.ts.
import t from 'tap';
import { lowerThisThreadPriority, type PriorityCalls } from '../../src/cdr/thread-priority';

/** A stand-in of os.getPriority/setPriority for the calling thread (pid 0), recording the calls. */
function calls(current: number, refuse: Error | null = null): PriorityCalls & { set: Array<[number, number]> } {
  const set: Array<[number, number]> = [];
  return {
    set,
    getPriority: (pid?: number) => {
      if (pid !== 0) throw new Error(`asked for pid ${String(pid)}, not the calling thread (0)`);
      return current;
    },
    setPriority: ((pid: number, priority?: number) => {
      if (refuse) throw refuse;
      set.push([pid, priority as number]);
    }),
  };
}

t.test('Linux: the calling thread (pid 0) is lowered to the value asked', async (t) => {
  const os = calls(0);
  t.same(lowerThisThreadPriority(10, 'linux', os), { nice: 10 });
  t.same(os.set, [[0, 10]], 'setpriority on the calling thread only');
});

t.test('0 leaves the thread as it is, without asking the system', async (t) => {
  const os = calls(0);
  t.same(lowerThisThreadPriority(0, 'linux', os), { nice: null });
  t.same(os.set, []);
});

t.test('never raised above the process\'s own priority: a service manager\'s nice 15 stays', async (t) => {
  const os = calls(15);
  t.same(lowerThisThreadPriority(10, 'linux', os), { nice: 15 }, 'no problem: the thread is already at least that low');
  t.same(os.set, []);
  t.same(lowerThisThreadPriority(15, 'linux', calls(15)), { nice: 15 }, 'equal: nothing to do');
});

t.test('a refusal is reported with the value in force, never thrown', async (t) => {
  const eacces = Object.assign(new Error('A system error occurred: uv_os_setpriority returned EACCES (permission denied)'), { code: 'ERR_SYSTEM_ERROR' });
  const got = lowerThisThreadPriority(10, 'linux', calls(3, eacces));
  t.equal(got.nice, 3, 'still the value it had');
  t.match(got.problem, /nice 10 was refused: .*EACCES/);
  const unreadable = lowerThisThreadPriority(10, 'linux', {
    getPriority: () => {
      throw new Error('ESRCH');
    },
    setPriority: () => t.fail('not set when it could not be read'),
  });
  t.same(unreadable, { nice: null, problem: 'its nice value could not be read: ESRCH' });
});

t.test('elsewhere the nice value is the whole process\'s: nothing is changed, and the log says why', async (t) => {
  for (const platform of ['darwin', 'win32', 'freebsd'] as const) {
    const os = calls(0);
    const got = lowerThisThreadPriority(10, platform, os);
    t.equal(got.nice, null, platform);
    t.match(got.problem, new RegExp(`whole process's on ${platform}`), platform);
    t.same(os.set, [], `${platform}: the main thread is not slowed with it`);
  }
});
