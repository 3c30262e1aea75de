/**
 * The widget in a real headless Chromium (Debian's /usr/bin/chromium through playwright-core; no
 * browser is downloaded): the demo page, served from its own origin, loads widget.js from a real
 * daemon; a visitor opens the 400 button with the keyboard, types a number, clicks 免费接通 and
 * follows the progress (aria-live) to `connected` against the FreeSWITCH stand-ins. On a page in
 * another language the widget still says it is Chinese (lang); a number refused by the widget or
 * by the API marks the field aria-invalid, described by the announced message. Screenshots
 * are kept in test-artifacts/ (git-ignored).
 */
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { chromium, type BrowserContext } from 'playwright-core';
import t from 'tap';
import { WEB_DIR } from '../../src/clicktocall/api';
import { tempSqliteUrl } from '../helpers/daemon';
import { startRig, widgetLoaded, WIDGET_KEY } from './helpers';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.resolve(__dirname, '..', '..', 'test-artifacts');

t.setTimeout(180_000);

t.test('demo page → widget → connected, in Chromium', async (t) => {
  t.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} is installed (apt-get install chromium; .ci/run does it)`);
  const rig = await startRig(tempSqliteUrl(), {
    fs: {
      visitors: { '13912345678': { result: 'answer', ringMs: 300 } },
      callScript: () => ({ legs: { '13800000001': { result: 'answer', ringMs: 50, talkMs: 4000 } } }),
    },
    widget: { max_per_visitor_day: 1 },
  });
  t.teardown(() => rig.stop());

  // The demo page, from an origin of its own (a tenant's web site), with the snippet pointing at this daemon.
  // In English: the widget must still mark its own text as Chinese.
  const html = fs.readFileSync(path.join(WEB_DIR, 'demo.html'), 'utf8').replaceAll('http://127.0.0.1:9470', rig.api).replace('<html lang="zh-CN">', '<html lang="en">');
  const site = http.createServer((req, res) => {
    res.writeHead(req.url === '/' ? 200 : 204, { 'content-type': 'text/html; charset=utf-8' });
    res.end(req.url === '/' ? html : undefined);
  });
  await new Promise<void>((r) => site.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => site.close(() => r())));
  const siteOrigin = `http://127.0.0.1:${(site.address() as { port: number }).port}`;
  await rig.d.knex('click_to_call_widgets').where({ public_key: WIDGET_KEY }).update({ allowed_origins: siteOrigin });
  await widgetLoaded(rig.d, WIDGET_KEY, () => rig.d.daemon.store.current.widgets.get(WIDGET_KEY)?.allowedOrigins.includes(siteOrigin) ?? false);

  const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'hotline-chromium-'));
  t.teardown(() => fs.rmSync(profile, { recursive: true, force: true }));
  const browser: BrowserContext = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    viewport: { width: 390, height: 844 },
    locale: 'zh-CN',
  });
  t.teardown(() => browser.close());
  const page = browser.pages()[0] ?? (await browser.newPage());
  const consoleErrors: string[] = [];
  page.on('console', (m) => {
    if (process.env.DEBUG_BROWSER) console.error('PAGE', m.type(), m.text());
    if (m.type() === 'error') consoleErrors.push(m.text());
  });
  await page.goto(`${siteOrigin}/`);

  const open = page.getByRole('button', { name: '免费通话' });
  await open.waitFor();
  await open.focus();
  await page.keyboard.press('Enter');
  const number = page.getByLabel('您的手机或固定电话号码');
  await number.waitFor();
  t.equal(await page.evaluate('document.activeElement.id'), await number.getAttribute('id'), 'the number field has the focus when the panel opens');
  t.equal(await open.getAttribute('aria-expanded'), 'true');
  const root = page.locator('.h400-root');
  t.equal(await root.getAttribute('lang'), 'zh-CN', 'the widget says its text is Chinese on an English page');
  t.equal(await page.evaluate('document.documentElement.lang'), 'en');
  const status = page.getByRole('status');
  const statusId = await status.getAttribute('id');
  t.equal(await number.getAttribute('aria-invalid'), null, 'not invalid before anything is typed');

  // Too short: refused in the page, the field marked and described by the message.
  await number.fill('12');
  await page.getByRole('button', { name: '免费接通' }).click();
  await page.locator('.h400-root[data-status="invalid"]').waitFor();
  t.equal(await status.textContent(), '请输入正确的手机或固定电话号码。', 'the message in the live region');
  t.equal(await number.getAttribute('aria-invalid'), 'true');
  t.equal(await number.getAttribute('aria-describedby'), statusId, 'the field is described by the message');
  t.equal(await page.evaluate('document.activeElement.id'), await number.getAttribute('id'), 'the focus is back on the field');
  await number.fill('139');
  t.equal(await number.getAttribute('aria-invalid'), null, 'typing again clears the mark');

  // Refused by the API (a short service number): the same marks, the API's Chinese message.
  await number.fill('10086');
  await page.getByRole('button', { name: '免费接通' }).click();
  await page.locator('.h400-root[data-status="invalid"]').waitFor({ timeout: 60_000 });
  t.equal(await status.textContent(), '请输入正确的手机或固定电话号码', 'CTC_ERR_INVALID_NUMBER said in Chinese');
  t.equal(await number.getAttribute('aria-invalid'), 'true');
  t.equal(await number.getAttribute('aria-describedby'), statusId);
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'click-to-call-invalid.png') });

  await number.fill('139 1234 5678');
  await page.getByRole('button', { name: '免费接通' }).click();

  t.equal(await number.getAttribute('aria-invalid'), null, 'a good number: not invalid');
  await page.locator('.h400-root[data-status="connected"]').waitFor({ timeout: 60_000 });
  t.equal(await status.textContent(), '已接通，请通话。', 'progress said in the aria-live region');
  t.equal(await root.getAttribute('data-status'), 'connected');
  const shot = path.join(ARTIFACTS, 'click-to-call-connected.png');
  await page.screenshot({ path: shot, fullPage: true });
  t.ok(fs.statSync(shot).size > 1000, `screenshot kept: ${path.relative(process.cwd(), shot)}`);

  await page.locator('.h400-root[data-status="ended"]').waitFor({ timeout: 60_000 });
  t.equal(await status.textContent(), '通话已结束，感谢您的来电。');
  await page.screenshot({ path: path.join(ARTIFACTS, 'click-to-call-ended.png') });
  const originate = rig.fs.originates[0];
  t.equal(originate?.visitor, '13912345678', 'the number typed in the browser was dialled');
  t.match(await rig.d.cdr(originate.vars.origination_uuid), { outcome: 'answered', origin: 'click_to_call', caller: '13912345678' });

  // A refusal shows the API's Chinese message: the same visitor again (one call a day for this widget).
  await number.fill('13912345678');
  await page.getByRole('button', { name: '免费接通' }).click();
  await page.locator('.h400-root[data-status="refused"]').waitFor({ timeout: 60_000 });
  t.match(await status.textContent(), /请求过于频繁，请稍后再试 请在 \d+ 秒后再试。/);
  t.equal(await number.getAttribute('aria-invalid'), null, 'a rate limit is not the number\'s fault');
  await page.keyboard.press('Escape');
  t.equal(await open.getAttribute('aria-expanded'), 'false', 'Escape closes the panel');
  t.same(consoleErrors.filter((e) => !/429|400/.test(e)), [], 'no script errors in the page');
});
