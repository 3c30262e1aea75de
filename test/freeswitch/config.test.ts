// Static checks of the FreeSWITCH configuration shipped in freeswitch/.
//
// FreeSWITCH is not installed here, so this test (1) checks that every XML file is well formed
// with a small dependency-free parser (tag balance, attribute quoting, entities, comments),
// (2) replays FreeSWITCH's line-based pre-processor (src/switch_xml.c, preprocess()) on the
// files to resolve $${...} references the way FreeSWITCH will, and (3) checks the behaviour
// the daemon depends on: which numbers reach the daemon, where the socket points, what
// follows the socket, how the inbound event socket is locked down, and the prompt names.
import t from 'tap';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { ConfigError, describeSettings, loadSettings } from '../../src/config';
import { dialledNationalNumber, nationalNumber } from '../../src/domain/access-number';
import { HANDLED_VARIABLE } from '../../src/esl/call-channel';
import { SOX_OUTPUT_FORMAT } from '../../src/prompts/render';
import { SYSTEM_PROMPT_TEXTS } from '../../src/prompts/system-texts';

const REPO = join(__dirname, '..', '..');
const FS_DIR = join(REPO, 'freeswitch');

// ---------------------------------------------------------------------------------------------
// A minimal XML well-formedness checker and tree builder.

interface XmlElement {
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  line: number;
}

interface XmlComment {
  start: number; // offset of "<!--"
  end: number; // offset just after "-->"
  text: string;
}

interface XmlDoc {
  roots: XmlElement[];
  comments: XmlComment[];
}

const NAME = /^[A-Za-z_][A-Za-z0-9_.:-]*/;
const ENTITY = /^&(?:lt|gt|amp|quot|apos|#[0-9]+|#x[0-9A-Fa-f]+);/;

function lineOf(text: string, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset && i < text.length; i++) if (text[i] === '\n') line++;
  return line;
}

function decodeEntities(value: string): string {
  return value.replace(/&(lt|gt|amp|quot|apos|#[0-9]+|#x[0-9A-Fa-f]+);/g, (_m, e: string) => {
    switch (e) {
      case 'lt':
        return '<';
      case 'gt':
        return '>';
      case 'amp':
        return '&';
      case 'quot':
        return '"';
      case 'apos':
        return "'";
      default:
        return String.fromCodePoint(e.startsWith('#x') ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    }
  });
}

/** Parses `text`; throws an Error naming file and line on the first well-formedness problem. */
function parseXml(text: string, file: string, opts: { fragment: boolean; allowEmpty?: boolean }): XmlDoc {
  const fail: (offset: number, msg: string) => never = (offset, msg) => {
    throw new Error(`${file}:${lineOf(text, offset)}: ${msg}`);
  };
  const checkText = (s: string, offset: number): void => {
    for (let i = 0; i < s.length; i++) {
      if (s[i] === '&' && !ENTITY.test(s.slice(i))) fail(offset + i, 'bare "&" (write &amp;)');
    }
    if (s.includes(']]>')) fail(offset, '"]]>" in text');
  };

  const roots: XmlElement[] = [];
  const comments: XmlComment[] = [];
  const stack: XmlElement[] = [];
  let i = 0;

  while (i < text.length) {
    const lt = text.indexOf('<', i);
    const chunk = lt === -1 ? text.slice(i) : text.slice(i, lt);
    checkText(chunk, i);
    if (stack.length === 0 && chunk.trim() !== '') fail(i, `text outside the root element: "${chunk.trim().slice(0, 40)}"`);
    if (lt === -1) break;
    i = lt;

    if (text.startsWith('<!--', i)) {
      const end = text.indexOf('-->', i + 4);
      if (end === -1) fail(i, 'unterminated comment');
      const body = text.slice(i + 4, end);
      if (body.includes('--')) fail(i, 'comment contains "--"');
      if (body.endsWith('-')) fail(i, 'comment ends with "-"');
      comments.push({ start: i, end: end + 3, text: body });
      i = end + 3;
      continue;
    }
    if (text.startsWith('<![CDATA[', i)) {
      if (stack.length === 0) fail(i, 'CDATA outside an element');
      const end = text.indexOf(']]>', i);
      if (end === -1) fail(i, 'unterminated CDATA section');
      i = end + 3;
      continue;
    }
    if (text.startsWith('<?', i)) {
      const end = text.indexOf('?>', i);
      if (end === -1) fail(i, 'unterminated processing instruction');
      if (text.slice(0, i).trim() !== '') fail(i, 'processing instruction after the start of the document');
      i = end + 2;
      continue;
    }
    if (text.startsWith('<!', i)) fail(i, 'DOCTYPE / declarations are not used in FreeSWITCH configuration');

    if (text.startsWith('</', i)) {
      const m = NAME.exec(text.slice(i + 2));
      if (!m) fail(i, 'bad end tag');
      const name = m[0];
      let j = i + 2 + name.length;
      while (/\s/.test(text[j] ?? '')) j++;
      if (text[j] !== '>') fail(i, `end tag </${name}> not closed with ">"`);
      const open = stack.pop();
      if (!open) fail(i, `end tag </${name}> without a start tag`);
      if (open.name !== name) fail(i, `</${name}> closes <${open.name}> (line ${open.line})`);
      i = j + 1;
      continue;
    }

    // Start tag.
    const m = NAME.exec(text.slice(i + 1));
    if (!m) fail(i, 'bad start tag (a bare "<" must be written &lt;)');
    const name = m[0];
    const el: XmlElement = { name, attrs: {}, children: [], line: lineOf(text, i) };
    let j = i + 1 + name.length;
    let selfClosing = false;
    for (;;) {
      const wsStart = j;
      while (/\s/.test(text[j] ?? '')) j++;
      if (j >= text.length) fail(i, `unterminated start tag <${name}>`);
      if (text.startsWith('/>', j)) {
        selfClosing = true;
        j += 2;
        break;
      }
      if (text[j] === '>') {
        j += 1;
        break;
      }
      if (j === wsStart) fail(j, `attributes of <${name}> must be separated by whitespace`);
      const an = NAME.exec(text.slice(j));
      if (!an) fail(j, `bad attribute in <${name}>`);
      const attr = an[0];
      j += attr.length;
      while (/\s/.test(text[j] ?? '')) j++;
      if (text[j] !== '=') fail(j, `attribute ${attr} of <${name}> has no value`);
      j++;
      while (/\s/.test(text[j] ?? '')) j++;
      const quote = text[j];
      if (quote !== '"' && quote !== "'") fail(j, `attribute ${attr} of <${name}> is not quoted`);
      const close = text.indexOf(quote, j + 1);
      if (close === -1) fail(j, `unterminated value of attribute ${attr}`);
      const raw = text.slice(j + 1, close);
      if (raw.includes('<')) fail(j, `"<" in the value of attribute ${attr} (write &lt;)`);
      for (let k = 0; k < raw.length; k++) {
        if (raw[k] === '&' && !ENTITY.test(raw.slice(k))) fail(j + 1 + k, `bare "&" in attribute ${attr} (write &amp;)`);
      }
      if (attr in el.attrs) fail(j, `duplicate attribute ${attr} in <${name}>`);
      el.attrs[attr] = decodeEntities(raw);
      j = close + 1;
    }

    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(el);
    else {
      if (roots.length > 0 && !opts.fragment) fail(i, `second root element <${name}>`);
      roots.push(el);
    }
    if (!selfClosing) stack.push(el);
    i = j;
  }

  const unclosed = stack.pop();
  if (unclosed) fail(text.length, `<${unclosed.name}> (line ${unclosed.line}) is never closed`);
  if (roots.length === 0 && !opts.allowEmpty) fail(0, 'no element at all');
  return { roots, comments };
}

function* walk(el: XmlElement): Generator<XmlElement> {
  yield el;
  for (const c of el.children) yield* walk(c);
}

function findAll(doc: XmlDoc, name: string): XmlElement[] {
  const out: XmlElement[] = [];
  for (const r of doc.roots) for (const e of walk(r)) if (e.name === name) out.push(e);
  return out;
}

function kids(el: XmlElement, name: string): XmlElement[] {
  return el.children.filter((c) => c.name === name);
}

// ---------------------------------------------------------------------------------------------
// The FreeSWITCH pre-processor, as far as these files need it (src/switch_xml.c).

// Core globals set before any XML is read (src/switch_core.c, switch_core_init); value for Debian.
const CORE_VARS: Record<string, string> = {
  sounds_dir: '/usr/share/freeswitch/sounds',
  conf_dir: '/etc/freeswitch',
  base_dir: '/usr',
  recordings_dir: '/var/lib/freeswitch/recordings',
  local_ip_v4: '192.0.2.10',
};

const vars: Record<string, string> = { ...CORE_VARS };
const unknownRefs: string[] = [];

function expand(s: string, where: string): string {
  return s.replace(/\$\$\{([^}]*)\}/g, (_m, name: string) => {
    const v = vars[name];
    if (v === undefined) {
      unknownRefs.push(`${where}: $\${${name}}`);
      return '';
    }
    return v;
  });
}

const PP_LINE = /^\s*<X-PRE-PROCESS\s+cmd="(set|include|exec|exec-set)"\s+data="([^"]*)"\s*\/>\s*$/;

/** Mimics preprocess(): returns the text FreeSWITCH would feed to its XML parser. */
function preprocess(text: string, where: string): string {
  const out: string[] = [];
  for (const rawLine of text.split('\n')) {
    const line = expand(rawLine, where);
    if (line.includes('<include>') || line.includes('</include>') || line.includes('<?')) continue;
    if (/x-pre-process/i.test(line)) {
      const m = PP_LINE.exec(line);
      if (m && m[1] === 'set') {
        const data = m[2];
        const eq = data.indexOf('=');
        if (eq > 0) vars[data.slice(0, eq).trim()] = data.slice(eq + 1).trim();
      }
      continue;
    }
    out.push(line);
  }
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Load everything.

function listFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...listFiles(p));
    else out.push(p);
  }
  return out.sort();
}

const allFiles = listFiles(FS_DIR);
const xmlFiles = allFiles.filter((f) => f.endsWith('.xml') || f.endsWith('.xml.fragment'));
const rel = (f: string): string => relative(REPO, f);
const read = (p: string): string => readFileSync(join(FS_DIR, p), 'utf8');

const VARS_FILE = 'vars_hotline.xml';
const DIALPLAN_PUBLIC = 'dialplan/public/00_hotline.xml';
const DIALPLAN_AFTER = 'dialplan/hotline_after_socket.xml';
const ESL_CONF = 'autoload_configs/event_socket.conf.xml';
const GATEWAY = 'sip_profiles/external/hotline_carrier.xml';

const PROMPTS = [
  'not_in_service.wav',
  'service_unavailable.wav',
  'nobody_answered.wav',
  'all_busy.wav',
  'blocked.wav',
  'capped.wav',
  'enter_pin.wav',
  'wrong_pin.wav',
  'pin_failed.wav',
  'welcome.wav',
  'after_hours.wav',
  'leave_message.wav',
  'suspended.wav',
  'ringback.wav',
  'invalid_entry.wav',
  'enter_extension.wav',
  'goodbye.wav',
  'choose_option.wav',
];

// The variables file first (as vars.xml is first in freeswitch.xml), then everything else.
preprocess(read(VARS_FILE), VARS_FILE);

function loadProcessed(p: string): XmlDoc {
  return parseXml(preprocess(read(p), p), `${p} (pre-processed)`, { fragment: true });
}

// ---------------------------------------------------------------------------------------------

void t.test('every XML file under freeswitch/ is well formed', (t) => {
  t.ok(xmlFiles.length >= 6, `found ${xmlFiles.length} XML files`);
  for (const f of xmlFiles) {
    const text = readFileSync(f, 'utf8');
    const fragment = f.endsWith('.fragment');
    t.doesNotThrow(() => parseXml(text, rel(f), { fragment }), `${rel(f)} is well formed`);
    // What FreeSWITCH parses after substitution must be well formed too (a value with a raw
    // "<" or "&" in vars_hotline.xml would break it). vars_hotline.xml is only comments then.
    if (!fragment) {
      t.doesNotThrow(
        () => parseXml(preprocess(text, rel(f)), `${rel(f)} (pre-processed)`, { fragment: true, allowEmpty: true }),
        `${rel(f)} is well formed after pre-processing`,
      );
    }
  }
  t.end();
});

void t.test('the FreeSWITCH pre-processor will read these files as intended', (t) => {
  for (const f of xmlFiles) {
    const text = readFileSync(f, 'utf8');
    const doc = parseXml(text, rel(f), { fragment: f.endsWith('.fragment') });
    const inComment = (offset: number): boolean => doc.comments.some((c) => offset >= c.start && offset < c.end);
    const lines = text.split('\n');
    let offset = 0;
    lines.forEach((line, n) => {
      const where = `${rel(f)}:${n + 1}`;
      const pp = /x-pre-process/i.exec(line);
      if (pp) {
        // preprocess() executes such a line even inside an XML comment, and drops a line that
        // mentions the directive without "<" in front (which can cut a comment in half).
        t.notOk(inComment(offset + pp.index), `${where}: no pre-processor directive inside a comment`);
        t.match(line, PP_LINE, `${where}: one complete pre-processor directive per line`);
      }
      const dd = line.indexOf('$${');
      if (dd !== -1) t.notOk(inComment(offset + dd), `${where}: no $\${...} reference inside a comment (it would be expanded)`);
      if (line.includes('<include>') || line.includes('</include>')) {
        t.match(line.trim(), /^<\/?include>$/, `${where}: include tags alone on their line (preprocess() drops the whole line)`);
      }
      offset += line.length + 1;
    });
  }

  // Pre-processor values: switch_core_set_variable() turns "${" into "%{" (src/switch_core.c).
  for (const [name, value] of Object.entries(vars)) {
    t.notMatch(value, /\$\{/, `global ${name} holds no runtime \${...} reference`);
  }

  // Load every file once more so that all references are checked against the final variables.
  for (const f of xmlFiles) preprocess(readFileSync(f, 'utf8'), rel(f));
  t.same(unknownRefs, [], 'every $${...} reference is defined in vars_hotline.xml or by the core');
  t.end();
});

void t.test('dialplan: which numbers reach the daemon', (t) => {
  const doc = loadProcessed(DIALPLAN_PUBLIC);
  const exts = findAll(doc, 'extension');
  const ext400 = exts.find((e) => e.attrs.name === 'hotline_400_access_number');
  if (!ext400) {
    t.fail('no hotline_400_access_number extension');
    t.end();
    return;
  }
  const cond = kids(ext400, 'condition').find((c) => c.attrs.field === 'destination_number');
  const expr = cond?.attrs.expression ?? '';
  const re = new RegExp(expr);
  for (const n of ['4001012345', '+864001012345', '864001012345', '00864001012345', '4008001234']) {
    t.match(n, re, `${n} reaches the daemon`);
  }
  for (const n of ['40010123456', '8004001234', '400101234', '+8640010123456', '14001012345', '']) {
    t.notMatch(n, re, `${JSON.stringify(n)} does not`);
  }
  t.equal(re.exec('+864001012345')?.[1], '4001012345', 'the national number is captured without the prefix');

  const sb = exts.find((e) => e.attrs.name === 'hotline_switchboard_access_number');
  const sbExpr = sb ? (kids(sb, 'condition').find((c) => c.attrs.field === 'destination_number')?.attrs.expression ?? '') : '';
  t.not(sbExpr, '', 'the switchboard regex is filled in from hotline_switchboard_regex');
  t.doesNotThrow(() => new RegExp(sbExpr), 'the default switchboard regex compiles');
  t.notMatch('4001012345', new RegExp(sbExpr), 'the default switchboard regex matches nothing');
  t.end();
});

// Every spelling the dialplan hands to the daemon must name the same access number there: the
// daemon identifies the tenant by the dialled number's national number (nationalNumber in
// src/domain/access-number.ts), and a spelling it does not recognise is answered "not in service"
// with UNALLOCATED_NUMBER. access_numbers.number is "digits as dialed" (SCHEMA.md), so a
// switchboard number may be stored with its trunk 0 (02088886666) or without (2088886666).
void t.test('every spelling the dialplan routes to the daemon is identified by the daemon', (t) => {
  const ext400 = findAll(loadProcessed(DIALPLAN_PUBLIC), 'extension').find((e) => e.attrs.name === 'hotline_400_access_number');
  const re400 = new RegExp(ext400 ? (kids(ext400, 'condition')[0]?.attrs.expression ?? '') : '');
  for (const spelling of ['4001012345', '+864001012345', '864001012345', '00864001012345']) {
    t.match(spelling, re400, `${spelling} reaches the daemon`);
    t.equal(dialledNationalNumber(spelling), nationalNumber('4001012345'), `${spelling} is identified as 4001012345`);
  }

  // The switchboard regex DBAs copy from vars_hotline.xml (and freeswitch/README.md).
  const line = read(VARS_FILE).split('\n').find((l) => l.includes('2088886666|1066668888')) ?? '';
  const example = new RegExp(line.trim());
  t.match('2088886666', example, 'the example switchboard regex is found in vars_hotline.xml');
  const spellings = ['2088886666', '02088886666', '862088886666', '+862088886666', '00862088886666'];
  for (const stored of ['02088886666', '2088886666']) {
    for (const spelling of spellings) {
      t.match(spelling, example, `${spelling} reaches the daemon`);
      t.equal(dialledNationalNumber(spelling), nationalNumber(stored), `${spelling} is identified as a switchboard number stored as ${stored}`);
    }
  }
  t.end();
});

void t.test('dialplan: socket to the daemon, then a safe fallback', (t) => {
  const pub = loadProcessed(DIALPLAN_PUBLIC);
  const exts = findAll(pub, 'extension');
  t.equal(exts.length, 2, 'two access-number extensions');
  for (const ext of exts) {
    const name = ext.attrs.name ?? '?';
    const actions = kids(ext, 'condition').flatMap((c) => kids(c, 'action'));
    const idx = actions.findIndex((a) => a.attrs.application === 'socket');
    t.ok(idx >= 0, `${name}: has a socket action`);
    const socket = actions[idx];
    const args = (socket?.attrs.data ?? '').trim().split(/\s+/);
    t.equal(args[0], '127.0.0.1:8084', `${name}: socket targets the daemon on 127.0.0.1:8084`);
    t.ok(args.includes('async'), `${name}: socket is async`);
    t.ok(args.includes('full'), `${name}: socket has full control`);
    t.notMatch(args[0] ?? '', /\|/, `${name}: no unverified host1|host2 list syntax`);

    const before = actions.slice(0, idx);
    t.ok(
      before.some((a) => a.attrs.application === 'set' && a.attrs.data === 'socket_resume=false'),
      `${name}: socket_resume is explicitly false before the socket`,
    );
    t.ok(
      before.some((a) => a.attrs.application === 'unset' && a.attrs.data === HANDLED_VARIABLE),
      `${name}: a stale hotline_handled is cleared before the socket`,
    );
    const next = actions[idx + 1];
    t.equal(next?.attrs.application, 'execute_extension', `${name}: a fallback action follows the socket`);
    t.equal(next?.attrs.data, '${destination_number} XML hotline_after_socket', `${name}: the fallback runs in hotline_after_socket with the dialed number`);
  }

  for (const f of xmlFiles) {
    for (const a of findAll(parseXml(readFileSync(f, 'utf8'), rel(f), { fragment: true }), 'action')) {
      t.notMatch(a.attrs.data ?? '', /socket_resume=true/, `${rel(f)}:${a.line}: never sets socket_resume=true`);
    }
  }

  const after = loadProcessed(DIALPLAN_AFTER);
  const ctx = findAll(after, 'context');
  t.equal(ctx[0]?.attrs.name, 'hotline_after_socket', 'the fallback context exists');
  const fexts = ctx[0] ? kids(ctx[0], 'extension') : [];
  const actionsOf = (e: XmlElement | undefined): XmlElement[] => (e ? kids(e, 'condition').flatMap((c) => kids(c, 'action')) : []);
  const apps = (e: XmlElement | undefined): string[] => actionsOf(e).map((a) => a.attrs.application ?? '');

  // 1. The guard comes first: a call the daemon owned is never given the fallback.
  const guard = fexts[0];
  const guardCond = guard ? kids(guard, 'condition') : [];
  t.ok(
    guardCond.some((c) => c.attrs.field === `\${${HANDLED_VARIABLE}}` && c.attrs.expression === '^true$'),
    'first fallback extension checks the variable the daemon sets at claim (EslCallChannel HANDLED_VARIABLE = true)',
  );
  // The README tells installers what the daemon does with it: set at claim, never set on release.
  const fsReadme = readFileSync(join(__dirname, '..', '..', 'freeswitch', 'README.md'), 'utf8');
  t.match(fsReadme, `\`${HANDLED_VARIABLE}=true\``, 'freeswitch/README.md: the daemon sets it right after connect');
  t.match(fsReadme, /api uuid_kill <uuid> <cause>/, 'freeswitch/README.md: cuts are uuid_kill, not a queued sendmsg hangup');
  t.same(apps(guard), ['log', 'hangup'], 'a call the daemon owned is just hung up');
  t.equal(actionsOf(guard).find((a) => a.attrs.application === 'hangup')?.attrs.data, 'NORMAL_CLEARING');

  // 2. Second daemon, tried once.
  const second = fexts.find((e) => e.attrs.name === 'hotline_secondary_daemon');
  const secondSocket = actionsOf(second).find((a) => a.attrs.application === 'socket');
  t.match(secondSocket?.attrs.data ?? '', /^\$1 async full$/, 'second daemon: async full socket to hotline_daemon2');
  t.ok(actionsOf(second).some((a) => a.attrs.application === 'set' && a.attrs.data === 'hotline_secondary_tried=true'), 'second daemon is tried only once');

  // 3. Backup destination, then the announcement if the bridge fails.
  const backup = fexts.find((e) => e.attrs.name === 'hotline_backup_destination');
  const ba = apps(backup);
  t.ok(ba.includes('bridge'), 'backup destination is bridged');
  t.ok(
    actionsOf(backup).some((a) => a.attrs.application === 'set' && a.attrs.data === 'continue_on_fail=true'),
    'a failed backup bridge continues to the announcement',
  );
  t.ok(ba.indexOf('playback') > ba.indexOf('bridge') && ba.lastIndexOf('hangup') > ba.indexOf('playback'), 'announcement and hangup follow the backup bridge');

  // 4. The last extension always matches and announces, then hangs up.
  const last = fexts[fexts.length - 1];
  t.same(last ? kids(last, 'condition').map((c) => c.attrs.field ?? '') : [], [''], 'the last fallback extension is unconditional');
  const la = actionsOf(last);
  t.ok(['answer', 'pre_answer'].includes(la.find((a) => a.attrs.application === 'answer' || a.attrs.application === 'pre_answer')?.attrs.application ?? ''), 'announcement is answered (or pre-answered)');
  t.equal(la.find((a) => a.attrs.application === 'playback')?.attrs.data, '/usr/share/freeswitch/sounds/hotline/service_unavailable.wav', 'plays service_unavailable.wav from the prompts dir');
  t.equal(la[la.length - 1]?.attrs.application, 'hangup', 'ends with hangup');
  t.equal(la[la.length - 1]?.attrs.data, 'NORMAL_TEMPORARY_FAILURE', 'with a temporary-failure cause');
  t.end();
});

void t.test('inbound event socket: loopback, own password, ACL', (t) => {
  const raw = read(ESL_CONF);
  t.notMatch(raw, /cluecon/i, 'event_socket.conf.xml does not mention the default password');
  t.notMatch(read(VARS_FILE), /cluecon/i, 'vars_hotline.xml does not contain the default password');
  const doc = loadProcessed(ESL_CONF);
  t.equal(doc.roots[0]?.name, 'configuration');
  t.equal(doc.roots[0]?.attrs.name, 'event_socket.conf');
  const params: Record<string, string[]> = {};
  for (const p of findAll(doc, 'param')) (params[p.attrs.name ?? ''] ??= []).push(p.attrs.value ?? '');
  t.same(params['listen-ip'], ['127.0.0.1'], 'listens on 127.0.0.1 only');
  t.same(params['listen-port'], ['8021'], 'on port 8021');
  t.same(params['nat-map'], ['false'], 'nat-map false');
  t.same(params['apply-inbound-acl'], ['loopback.auto'], 'inbound ACL: the built-in loopback.auto');
  // mod_event_socket.c: a failed bind with stop-on-bind-error true sets prefs.done, and
  // read_packet() then refuses every socket of the module, the outbound ones the dialplan's
  // "socket" application opens to the daemon included: every call would hang in silence.
  t.ok((params['stop-on-bind-error'] ?? ['false']).every((v) => !/^(true|yes|on|enabled|active|allow|1)$/i.test(v)), 'stop-on-bind-error is not true: a taken 8021 must not stop the outbound socket');
  const password = params.password?.[0] ?? '';
  t.ok(password.length >= 12, 'a non-empty password (an empty one falls back to the default)');
  t.notMatch(password, /^cluecon$/i, 'the password is not the default');
  t.match(raw, /value="\$\$\{hotline_esl_password\}"/, 'the password comes from vars_hotline.xml');
  t.match(vars.hotline_esl_password ?? '', /CHANGE_ME/, 'the shipped password is a clearly marked placeholder');
  // FreeSWITCH loads the placeholder as the real password (config() in mod_event_socket.c only
  // replaces an EMPTY one), and it is public in this repository: the daemon must refuse to run
  // with it, so that a node where nobody changed it fails at start-up instead of in production.
  const refused = (password: string): unknown => {
    try {
      loadSettings({ env: { FS_ESL_PASSWORD: password } });
      return null;
    } catch (err) {
      return err;
    }
  };
  t.type(refused(vars.hotline_esl_password ?? ''), ConfigError, 'the daemon refuses the shipped placeholder as FS_ESL_PASSWORD');
  t.type(refused('secret\nexit'), ConfigError, 'and a password that would end the auth command early');
  t.equal(refused('0123456789abcdef0123456789abcdef0123456789abcdef'), null, 'a real (openssl rand -hex 24) password is taken');
  t.end();
});

void t.test('modules: the fragment names the TTS engine module TTS_ENGINE=freeswitch needs', (t) => {
  // speak ENGINE|VOICE|text opens the engine registered by mod_<engine> (mod_flite for flite),
  // which the stock modules.conf.xml does not load.
  const fragment = read('autoload_configs/modules.conf.xml.fragment');
  const engine = (describeSettings().find((r) => r.env === 'TTS_FREESWITCH_ENGINE')?.default ?? '').replace(/^"|"$/g, '').split('|')[0] ?? '';
  t.not(engine, '', 'TTS_FREESWITCH_ENGINE has a default engine');
  t.match(fragment, new RegExp(`<load module="mod_${engine}"/>`), `modules.conf.xml.fragment names mod_${engine} for TTS_ENGINE=freeswitch`);
  t.end();
});

void t.test('gateway "carrier" for the outgoing legs', (t) => {
  const doc = loadProcessed(GATEWAY);
  const gws = findAll(doc, 'gateway');
  t.equal(gws.length, 1);
  t.equal(gws[0]?.attrs.name, 'carrier', 'named carrier (dial string sofia/gateway/carrier/NUMBER)');
  const params: Record<string, string> = {};
  for (const p of gws[0] ? kids(gws[0], 'param') : []) params[p.attrs.name ?? ''] = p.attrs.value ?? '';
  t.equal(params['caller-id-in-from'], 'true', 'the callee sees the caller ID in From');
  for (const k of ['proxy', 'realm', 'register']) t.ok((params[k] ?? '') !== '', `${k} is set`);
  t.match(params.proxy ?? '', /CHANGE_ME/, 'the shipped proxy is a clearly marked placeholder');
  t.end();
});

void t.test('system prompts: the contract list of names', (t) => {
  const readme = read('sounds/hotline/README.md');
  const listed = [...readme.matchAll(/^\|\s*`([a-z_]+\.wav)`\s*\|/gm)].map((m) => m[1]);
  t.same([...listed].sort(), [...PROMPTS].sort(), 'sounds/hotline/README.md lists exactly the contract names');
  t.equal(new Set(listed).size, listed.length, 'no name is listed twice');

  // generate.sh renders through `npm run prompts`: one list of texts (src/prompts/system-texts.ts)
  // and one pipeline (src/prompts/render.ts, tested in test/prompts/) for system and TTS prompts.
  const script = read('sounds/generate.sh');
  const rendered = Object.keys(SYSTEM_PROMPT_TEXTS).map((name) => `${name}.wav`);
  t.same([...rendered].sort(), [...PROMPTS].sort(), 'npm run prompts (generate.sh) renders exactly the contract names');
  t.match(script, /^set -euo pipefail$/m, 'generate.sh fails loudly');
  t.match(script, /espeak-ng/, 'checks for espeak-ng');
  t.match(script, /npm run --silent prompts -- /, 'renders with npm run prompts');
  t.same([...SOX_OUTPUT_FORMAT].join(' '), '-t wav -r 8000 -c 1 -b 16 -e signed-integer', 'resamples to 8 kHz mono 16-bit with sox');
  t.match(read('sounds/hotline/.gitignore'), /^\*\.wav$/m, 'rendered WAVs are not committed');
  t.ok(PROMPTS.includes(vars.hotline_fallback_prompt?.split('/').pop() ?? ''), 'the fallback prompt is one of the contract files');
  t.end();
});
