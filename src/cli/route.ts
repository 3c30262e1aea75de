/**
 * `npm run route -- explain --number 4001012345 --caller 13800138000 [--at 2026-11-21T20:00+08:00]`
 * Prints, from the live database, every decision a call would go through and why.
 * `--widget <public key>`: the call as a click-to-call from that widget (the visitor is --caller,
 * --number defaults to the widget's access number).
 */
import { explainCall } from '../calls/explain';
import { loadSettings } from '../config';
import { runCommand } from './run';
import { createKnex } from '../db/connect';
import { loadGeoData } from '../domain/geo';
import { commandSnapshot } from './command-snapshot';

function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<number> {
  if (process.argv[2] !== 'explain') {
    process.stderr.write('usage: npm run route -- explain --number <dialled> --caller <number> [--at <ISO time>] [--widget <public key>]\n');
    return 2;
  }
  const caller = option('caller') ?? '';
  const widgetKey = option('widget');
  const atText = option('at');
  const at = atText ? new Date(atText) : new Date();
  if ((!option('number') && !widgetKey) || Number.isNaN(at.getTime())) {
    process.stderr.write('route explain: --number (or --widget) is required and --at must be an ISO time such as 2026-11-21T20:00+08:00\n');
    return 2;
  }
  const settings = loadSettings();
  const knex = createKnex(settings.database.url);
  try {
    await loadGeoData();
    const { snapshot } = await commandSnapshot(settings, knex);
    const widget = widgetKey === undefined ? undefined : snapshot.widgets.get(widgetKey);
    if (widgetKey !== undefined && !widget) {
      process.stderr.write(`route explain: no click-to-call widget with key ${JSON.stringify(widgetKey)} is in force (npm run config:lint)\n`);
      return 2;
    }
    const number = option('number') ?? widget?.accessNumber;
    if (number === undefined) {
      process.stderr.write('route explain: give --number (the access number dialled) or --widget\n');
      return 2;
    }
    const facts = { dialed: number, caller, at, clickToCall: widget ? { widgetId: widget.id } : null };
    for (const line of await explainCall(snapshot, facts, knex, settings.calls.maxFailoverGroups)) process.stdout.write(`${line}\n`);
    if (snapshot.rejected.length > 0) process.stdout.write(`(${snapshot.rejected.length} configuration rows are rejected in all: npm run config:lint)\n`);
    return 0;
  } finally {
    await knex.destroy();
  }
}

runCommand('route', main, (message) => (/no such table|doesn't exist/i.test(message) ? ' (is the database migrated? npm run migrate)' : ''));
