/*! pushman.js: a small dependency-free browser client for pushman (and push.php servers).
 *
 *   var p = new Pushman('ws://127.0.0.1:1234', { uid: 'uid1' });      // or { token: '...' }
 *   p.onmessage = function (data) { console.log(data); };
 *   p.onstatus = function (status, detail) { console.log(status); };   // connecting|open|closed|reconnecting|stopped
 *   p.connect();
 *   p.close();                                                          // clean close, no reconnect
 *
 * The first message is the uid (compatibility mode) or the token. With { token, tokenInUrl: true }
 * the token goes in the URL (?token=) instead. Reconnects with jittered exponential backoff.
 */
(function (root) {
  'use strict';

  function Pushman(url, options) {
    options = options || {};
    this.url = url;
    this.uid = options.uid || null;
    this.token = options.token || null;
    this.tokenInUrl = !!options.tokenInUrl;
    this.minDelay = options.minDelay || 500;
    this.maxDelay = options.maxDelay || 30000;
    this.onmessage = options.onmessage || function () {};
    this.onstatus = options.onstatus || function () {};
    this.status = 'idle';
    this.attempt = 0;
    this.ws = null;
    this.timer = null;
    this.stopped = true;
  }

  Pushman.prototype._setStatus = function (status, detail) {
    this.status = status;
    try { this.onstatus(status, detail); } catch (e) { if (root.console) root.console.error(e); }
  };

  Pushman.prototype.connect = function () {
    this.stopped = false;
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    var self = this;
    var url = this.url;
    if (this.token && this.tokenInUrl) {
      url += (url.indexOf('?') < 0 ? '?' : '&') + 'token=' + encodeURIComponent(this.token);
    }
    this._setStatus('connecting');
    var ws;
    try {
      ws = new WebSocket(url);
    } catch (e) {
      this._scheduleReconnect(String(e));
      return;
    }
    this.ws = ws;
    ws.onopen = function () {
      if (self.ws !== ws) return;
      self.attempt = 0;
      if (self.token && !self.tokenInUrl) ws.send(self.token);
      else if (!self.token && self.uid !== null) ws.send(String(self.uid));
      self._setStatus('open');
    };
    ws.onmessage = function (event) {
      if (self.ws !== ws) return;
      try { self.onmessage(event.data, event); } catch (e) { if (root.console) root.console.error(e); }
    };
    ws.onclose = function (event) {
      if (self.ws !== ws) return;
      self.ws = null;
      var detail = { code: event.code, reason: event.reason, wasClean: event.wasClean };
      if (self.stopped) { self._setStatus('stopped', detail); return; }
      self._setStatus('closed', detail);
      self._scheduleReconnect(detail);
    };
    ws.onerror = function () { /* onclose follows and decides */ };
  };

  Pushman.prototype._scheduleReconnect = function (detail) {
    if (this.stopped) return;
    var self = this;
    var base = Math.min(this.maxDelay, this.minDelay * Math.pow(2, this.attempt));
    var delay = Math.round(base / 2 + Math.random() * base / 2);   // jitter: [base/2, base]
    this.attempt += 1;
    this._setStatus('reconnecting', { delay: delay, attempt: this.attempt, cause: detail });
    this.timer = setTimeout(function () { self.timer = null; self.connect(); }, delay);
  };

  Pushman.prototype.close = function () {
    this.stopped = true;
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    if (this.ws) {
      var ws = this.ws;
      if (ws.readyState === 0 || ws.readyState === 1) ws.close(1000, 'client closed');
      else { this.ws = null; this._setStatus('stopped'); }
    } else {
      this._setStatus('stopped');
    }
  };

  if (typeof module === 'object' && module.exports) module.exports = Pushman;
  else root.Pushman = Pushman;
})(typeof self !== 'undefined' ? self : this);
