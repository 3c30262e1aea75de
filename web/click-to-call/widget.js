/*
 * 网上400 click-to-call widget, served by the daemon as GET /v1/widget.js?key=<widget key>.
 * No dependencies. It reads its key and the API's address from its own <script src>, draws the
 * 400 button (in <div id="hotline-click-to-call"> when the page has one, else floating at the
 * bottom right), asks for the visitor's number, posts it, polls the request and says what is
 * happening in an aria-live region. Keyboard: the button and the form are ordinary controls;
 * Escape closes the panel. The widget says it is Chinese (lang="zh-CN") whatever the page's own
 * language, so a screen reader reads it in Chinese; a number that is refused (too short here, or
 * not a callable number for the API) marks the field aria-invalid and points the field at the
 * message (aria-describedby), which the live region also announces.
 */
(function () {
  'use strict';
  var script = document.currentScript;
  if (!script || !script.src) return;
  var src = new URL(script.src);
  var key = src.searchParams.get('key') || '';
  var api = src.origin;
  var POLL_MS = 1500;
  var GIVE_UP_MS = 10 * 60 * 1000;

  var TEXT = {
    button: '免费通话',
    title: '免费回电',
    intro: '输入您的电话号码，我们马上免费给您回电。',
    label: '您的手机或固定电话号码',
    invalid: '请输入正确的手机或固定电话号码。',
    placeholder: '例如 13912345678',
    submit: '免费接通',
    close: '关闭',
    sending: '正在提交…',
    dialing: '正在呼叫您的电话，请注意接听…',
    visitor_answered: '您已接听，正在为您转接…',
    connecting: '正在为您接通客服，请稍候…',
    connected: '已接通，请通话。',
    busy: '您的电话正忙，请稍后再试。',
    no_answer: '您没有接听电话，请稍后再试。',
    unreachable: '无法接通您的号码，请检查后再试。',
    failed: '呼叫没有成功，请稍后再试。',
    ended: '通话已结束，感谢您的来电。',
    voicemail: '您的留言已记录，感谢您的来电。',
    agents_busy: '客服暂时无人接听，请稍后再试。',
    not_connected: '暂时无法为您接通，请稍后再试。',
    network: '网络异常，请稍后再试。',
    retry: '请在 {s} 秒后再试。'
  };

  var css = '' +
    '.h400-root{font:15px/1.5 -apple-system,"PingFang SC","Microsoft YaHei",sans-serif;color:#1f2933;z-index:2147483000}' +
    '.h400-float{position:fixed;right:16px;bottom:16px}' +
    '.h400-btn{display:flex;align-items:center;gap:8px;border:0;border-radius:28px;padding:10px 18px 10px 10px;background:#d93025;color:#fff;font:inherit;font-weight:600;cursor:pointer;box-shadow:0 2px 8px rgba(0,0,0,.25)}' +
    '.h400-btn:focus-visible,.h400-panel button:focus-visible,.h400-panel input:focus-visible{outline:3px solid #1a73e8;outline-offset:2px}' +
    '.h400-icon{width:36px;height:36px;flex:none}' +
    '.h400-panel{margin-top:8px;width:min(320px,calc(100vw - 32px));box-sizing:border-box;background:#fff;border-radius:12px;padding:16px;box-shadow:0 4px 24px rgba(0,0,0,.25)}' +
    '.h400-panel[hidden]{display:none}' +
    '.h400-panel h2{font-size:18px;margin:0 0 4px}' +
    '.h400-panel p{margin:0 0 12px}' +
    '.h400-panel label{display:block;font-weight:600;margin-bottom:4px}' +
    '.h400-panel input{width:100%;box-sizing:border-box;font:inherit;font-size:18px;padding:10px;border:1px solid #9aa5b1;border-radius:8px}' +
    '.h400-row{display:flex;gap:8px;margin-top:12px}' +
    '.h400-submit{flex:1;border:0;border-radius:8px;padding:12px;background:#d93025;color:#fff;font:inherit;font-weight:600;cursor:pointer}' +
    '.h400-submit[disabled]{background:#9aa5b1;cursor:default}' +
    '.h400-close{border:1px solid #9aa5b1;border-radius:8px;background:#fff;font:inherit;padding:12px;cursor:pointer}' +
    '.h400-panel input[aria-invalid="true"]{border:2px solid #d93025}' +
    '.h400-status{min-height:1.5em;margin-top:12px;font-weight:600}';

  var ICON = '<svg class="h400-icon" viewBox="0 0 36 36" aria-hidden="true" focusable="false">' +
    '<circle cx="18" cy="18" r="18" fill="#fff"/>' +
    '<text x="18" y="23" text-anchor="middle" font-size="13" font-weight="700" font-family="Arial,sans-serif" fill="#d93025">400</text></svg>';

  function el(tag, attrs, html) {
    var e = document.createElement(tag);
    for (var name in attrs) if (Object.prototype.hasOwnProperty.call(attrs, name)) e.setAttribute(name, attrs[name]);
    if (html) e.innerHTML = html;
    return e;
  }

  function render() {
    var style = el('style');
    style.textContent = css;
    document.head.appendChild(style);
    var host = document.getElementById('hotline-click-to-call');
    var root = el('div', { 'class': 'h400-root' + (host ? '' : ' h400-float'), 'data-status': 'idle', lang: 'zh-CN' });
    var uid = 'h400-' + Math.random().toString(36).slice(2, 8);
    var button = el('button', { type: 'button', 'class': 'h400-btn', 'aria-expanded': 'false', 'aria-controls': uid + '-panel' }, ICON + '<span>' + TEXT.button + '</span>');
    var panel = el('div', { id: uid + '-panel', 'class': 'h400-panel', role: 'dialog', 'aria-labelledby': uid + '-title', hidden: '' });
    panel.innerHTML =
      '<h2 id="' + uid + '-title">' + TEXT.title + '</h2>' +
      '<p>' + TEXT.intro + '</p>' +
      '<form novalidate>' +
      '<label for="' + uid + '-number">' + TEXT.label + '</label>' +
      '<input id="' + uid + '-number" name="number" type="tel" inputmode="tel" autocomplete="tel" maxlength="32" required placeholder="' + TEXT.placeholder + '">' +
      '<div class="h400-row"><button type="submit" class="h400-submit">' + TEXT.submit + '</button>' +
      '<button type="button" class="h400-close">' + TEXT.close + '</button></div>' +
      '<div id="' + uid + '-status" class="h400-status" role="status" aria-live="polite" aria-atomic="true"></div>' +
      '</form>';
    root.appendChild(button);
    root.appendChild(panel);
    (host || document.body).appendChild(root);

    var form = panel.querySelector('form');
    var input = panel.querySelector('input');
    var submit = panel.querySelector('.h400-submit');
    var status = panel.querySelector('.h400-status');
    var timer = null;

    function open(show) {
      panel.hidden = !show;
      button.setAttribute('aria-expanded', String(show));
      if (show) input.focus(); else button.focus();
    }
    function say(text, state) {
      status.textContent = text;
      if (state) root.setAttribute('data-status', state);
    }
    /** Marks the number field invalid (or valid again), its message the field's description. */
    function invalid(on) {
      if (on) {
        input.setAttribute('aria-invalid', 'true');
        input.setAttribute('aria-describedby', status.id);
      } else {
        input.removeAttribute('aria-invalid');
        input.removeAttribute('aria-describedby');
      }
    }
    function busy(on) {
      submit.disabled = on;
      input.readOnly = on;
    }
    function chinese(message) {
      return String(message || '').split(' (')[0] || TEXT.failed;
    }
    button.addEventListener('click', function () { open(panel.hidden); });
    input.addEventListener('input', function () { if (input.getAttribute('aria-invalid')) invalid(false); });
    panel.querySelector('.h400-close').addEventListener('click', function () { open(false); });
    // On the document: a disabled submit button drops the focus to <body> while a call is placed.
    document.addEventListener('keydown', function (e) { if (e.key === 'Escape' && !panel.hidden) open(false); });

    form.addEventListener('submit', function (e) {
      e.preventDefault();
      var number = input.value.trim();
      if (number.replace(/[^0-9]/g, '').length < 3) {
        say(TEXT.invalid, 'invalid');
        invalid(true);
        input.focus();
        return;
      }
      invalid(false);
      busy(true);
      say(TEXT.sending, 'sending');
      fetch(api + '/v1/click-to-call', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ widget: key, number: number })
      }).then(function (res) {
        return res.json().then(function (body) { return { res: res, body: body }; });
      }).then(function (r) {
        if (r.res.status !== 202) {
          var retry = r.res.headers.get('Retry-After');
          var error = (r.body && r.body.error) || {};
          var badNumber = error.code === 'CTC_ERR_INVALID_NUMBER' || error.code === 'CTC_ERR_NUMBER_NOT_CALLABLE' ||
            (error.code === 'CTC_ERR_VALIDATION' && error.reason === 'number');
          say(chinese(error.message) + (retry ? ' ' + TEXT.retry.replace('{s}', retry) : ''), badNumber ? 'invalid' : 'refused');
          busy(false);
          if (badNumber) {
            invalid(true);
            input.focus();
          }
          return;
        }
        follow(r.body.id, Date.now());
      }).catch(function () {
        say(TEXT.network, 'error');
        busy(false);
      });
    });

    function follow(id, started) {
      show({ status: 'dialing' });
      var poll = function () {
        fetch(api + '/v1/click-to-call/' + encodeURIComponent(id) + '?widget=' + encodeURIComponent(key)).then(function (res) {
          return res.json();
        }).then(function (view) {
          if (show(view) || Date.now() - started > GIVE_UP_MS) return;
          timer = setTimeout(poll, POLL_MS);
        }).catch(function () {
          timer = setTimeout(poll, POLL_MS * 2);
        });
      };
      clearTimeout(timer);
      timer = setTimeout(poll, POLL_MS);
    }

    /** Shows a request's state; true when it is over. */
    function show(view) {
      if (!view || !view.status) return false;
      if (view.status !== 'ended') {
        say(TEXT[view.status] || TEXT.dialing, view.status);
        return false;
      }
      var visitor = view.visitor;
      var outcome = view.outcome;
      var text = visitor && visitor !== 'answered' ? TEXT[visitor]
        : outcome === 'answered' ? TEXT.ended
          : outcome === 'voicemail' ? TEXT.voicemail
            : outcome === 'no_answer' || outcome === 'busy' ? TEXT.agents_busy
              : outcome === 'failed' ? TEXT.failed : TEXT.not_connected;
      say(text, 'ended');
      busy(false);
      return true;
    }
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', render);
  else render();
})();
