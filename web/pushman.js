/*! pushman.js: a small dependency-free browser client for pushman (and push.php servers).
 *
 *   var p = new Pushman('ws://127.0.0.1:1234', { uid: 'uid1' });   // or { token: '...' }, { getToken: fn }
 *   p.onmessage = function (data) { console.log(data); };
 *   p.onstatus = function (status, detail) { console.log(status, detail); };
 *   p.connect();
 *   p.close();                                                       // clean close, no reconnect
 *
 * No push lost to a reconnect: against a pushman with `[inbox] enabled = true` the client
 * asks to resume (?resume=1, then ?since=EPOCH:O:A) and gets exactly the pushes it missed, in
 * order, before live ones; when they are no longer kept it reports `gap` (reload your state).
 *
 * Status: connecting | open | closed | reconnecting | stopped; onstatus also hears `gap`
 * (an event: the connection stays open). `open` comes once the server has
 * bound the uid or token (pushman confirms it when the URL asks with ?pushman=1, which this
 * client adds). Kicks (4000) and refusals (1008) stop it; other closes reconnect with jittered
 * exponential backoff that resets once a connection has stayed up `stableAfter` ms.
 * Options, statuses and close codes: docs/CLIENT.md.
 */
(function (root) {
  'use strict';

  // The server's 1008 reasons that a later attempt can cure; every other 1008 is final.
  var TRANSIENT_1008 = { 'slow consumer': true, 'no uid in time': true };
  var TOKEN_1008 = { 'invalid token': true, 'token expired': true };

  function Pushman(url, options) {
    options = options || {};
    this.url = url;
    this.uid = options.uid === undefined ? null : options.uid;
    this.token = options.token || null;
    this.tokenInUrl = !!options.tokenInUrl;
    this.getToken = options.getToken || null;
    this.tokenRetries = options.tokenRetries === undefined ? 3 : options.tokenRetries;
    this.confirm = options.confirm !== false;
    this.resume = this.confirm && options.resume !== false;
    this.position = null;      // {key, e, o, a}: the last push seen of each stream (resume)
    this.minDelay = options.minDelay || 500;
    this.maxDelay = options.maxDelay || 30000;
    this.stableAfter = options.stableAfter === undefined ? 10000 : options.stableAfter;
    this.onmessage = options.onmessage || function () {};
    this.onstatus = options.onstatus || function () {};
    this.status = 'idle';
    this.boundUid = null;      // the uid the server confirmed (in token mode: the token's)
    this.attempt = 0;          // reconnects since the last connection that stayed up
    this.tokenFailures = 0;    // refused or unobtainable tokens in a row
    this.ws = null;
    this.timer = null;         // the pending reconnect
    this.stableTimer = null;   // resets `attempt` once a connection has lasted
    this.stopped = true;
    this.generation = 0;       // bumped by connect/close, so stale callbacks do nothing
    this.needToken = !this.token && !!this.getToken;
  }

  Pushman.prototype._setStatus = function (status, detail) {
    this.status = status;
    this._report(status, detail);
  };

  Pushman.prototype._report = function (status, detail) {
    try { this.onstatus(status, detail); } catch (e) { if (root.console) root.console.error(e); }
  };

  Pushman.prototype._clearTimers = function () {
    if (this.timer) { clearTimeout(this.timer); this.timer = null; }
    if (this.stableTimer) { clearTimeout(this.stableTimer); this.stableTimer = null; }
  };

  /** Connects (again); fetches a token first when one is needed and `getToken` is given. */
  Pushman.prototype.connect = function () {
    this.stopped = false;
    this._clearTimers();
    this._drop();
    var generation = ++this.generation;
    var self = this;
    this._setStatus('connecting');
    if (!this.needToken) { this._open(); return; }
    var pending;
    try { pending = Promise.resolve(this.getToken()); } catch (e) { pending = Promise.reject(e); }
    pending.then(function (token) {
      if (self.generation !== generation || self.stopped) return;
      if (!token) throw new Error('getToken gave no token');
      self.token = String(token);
      self.needToken = false;
      self._open();
    }).catch(function (e) {
      if (self.generation !== generation || self.stopped) return;
      self._tokenFailed({ error: String(e && e.message || e) });
    });
  };

  Pushman.prototype._url = function () {
    var url = this.url;
    var add = function (param) { url += (url.indexOf('?') < 0 ? '?' : '&') + param; };
    if (this.confirm) add('pushman=1');
    if (this.resume) {
      var pos = this.position;
      if (pos && pos.key === this._positionKey()) add('since=' + pos.e + ':' + pos.o + ':' + pos.a);
      else add('resume=1');
    }
    if (this.token && this.tokenInUrl) add('token=' + encodeURIComponent(this.token));
    return url;
  };

  Pushman.prototype._open = function () {
    var self = this;
    var ws;
    try {
      ws = new WebSocket(this._url());
    } catch (e) {
      this._scheduleReconnect({ error: String(e) });
      return;
    }
    this.ws = ws;
    this.boundUid = null;
    var bound = false;
    var plainUid = this.token || this.uid === null ? null : String(this.uid);
    function markBound(uid, confirmed) { bound = true; self._bound(uid, confirmed); }
    ws.onopen = function () {
      if (self.ws !== ws) return;
      if (self.token && !self.tokenInUrl) ws.send(self.token);
      else if (plainUid !== null) ws.send(plainUid);
      if (!self.confirm) markBound(plainUid, false);
    };
    ws.onmessage = function (event) {
      if (self.ws !== ws) return;
      var data = event.data;
      if (!bound) {
        var frame = controlFrame(data, 'bound');
        if (frame && typeof frame.uid === 'string') {
          self._track(frame);
          markBound(frame.uid, true);
          return;
        }
        // A server that does not confirm (push.php): its first frame is already a push.
        markBound(plainUid, false);
      }
      if (self.position) {
        var control = controlFrame(data, 'msg') || controlFrame(data, 'gap');
        if (control && control.pushman === 'gap') {
          // An event, not a state: the connection stays open and live pushes follow.
          self._report('gap', { stream: control.s, reason: control.reason });
          return;
        }
        if (control) {
          // A stream's offsets only grow: anything at or below the position was seen.
          var stream = control.o !== undefined ? 'o' : 'a';
          if (typeof control[stream] !== 'number' || control[stream] <= self.position[stream]) return;
          self.position[stream] = control[stream];
          data = control.d;
        }
      }
      try { self.onmessage(data, event); } catch (e) { if (root.console) root.console.error(e); }
    };
    ws.onclose = function (event) {
      if (self.ws !== ws) return;
      self.ws = null;
      self._closed({ code: event.code, reason: event.reason, wasClean: event.wasClean });
    };
    ws.onerror = function () { /* onclose follows and decides */ };
  };

  /** `{"pushman":KIND,...}` parsed, for the server's own frames (bound, msg, gap); else null. */
  function controlFrame(data, kind) {
    if (typeof data !== 'string' || data.indexOf('{"pushman":"' + kind + '"') !== 0) return null;
    try { return JSON.parse(data); } catch (e) { return null; }
  }

  /** Whose position it is: the uid it will bind as. With tokens (refreshed by `getToken`)
   *  that is the uid the server confirmed last: a tab that logs in as another user makes a
   *  new Pushman. */
  Pushman.prototype._positionKey = function () {
    return this.token || this.uid === null ? this.boundUid : String(this.uid);
  };

  /** The bound frame of a server with an inbox carries the position; keep following it. */
  Pushman.prototype._track = function (frame) {
    if (!this.resume || typeof frame.e !== 'string') { this.position = null; return; }
    this.position = { key: frame.uid, e: frame.e, o: frame.o, a: frame.a };
  };

  Pushman.prototype._bound = function (uid, confirmed) {
    var self = this;
    this.boundUid = uid;
    this.tokenFailures = 0;
    if (this.stableTimer) clearTimeout(this.stableTimer);
    this.stableTimer = setTimeout(function () { self.stableTimer = null; self.attempt = 0; }, this.stableAfter);
    this._setStatus('open', { uid: uid, confirmed: confirmed });
  };

  Pushman.prototype._closed = function (detail) {
    if (this.stableTimer) { clearTimeout(this.stableTimer); this.stableTimer = null; }
    if (this.stopped) { this._setStatus('stopped', detail); return; }
    this._setStatus('closed', detail);
    var code = detail.code;
    if (code === 1008 && TOKEN_1008[detail.reason] && this.getToken) {
      this.needToken = true;
      this._tokenFailed(detail);
    } else if (code === 4000 || (code === 1008 && !TRANSIENT_1008[detail.reason])) {
      this._stop(detail);   // kicked, or refused: trying again would be refused again
    } else {
      this._scheduleReconnect(detail);
    }
  };

  Pushman.prototype._tokenFailed = function (detail) {
    this.tokenFailures += 1;
    if (this.tokenFailures > this.tokenRetries) { this._stop(detail); return; }
    this._scheduleReconnect(detail);
  };

  Pushman.prototype._stop = function (detail) {
    this.stopped = true;
    this._clearTimers();
    this._setStatus('stopped', detail);
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

  /** Forgets the current socket (closing it if it is still up) without reporting anything. */
  Pushman.prototype._drop = function () {
    var ws = this.ws;
    this.ws = null;
    if (ws && (ws.readyState === 0 || ws.readyState === 1)) ws.close(1000, 'client reconnecting');
  };

  /** Closes cleanly and stops reconnecting; `stopped` follows. */
  Pushman.prototype.close = function () {
    this.stopped = true;
    this.generation += 1;
    this._clearTimers();
    if (this.ws && (this.ws.readyState === 0 || this.ws.readyState === 1)) {
      this.ws.close(1000, 'client closed');   // onclose reports `stopped`
    } else {
      this.ws = null;
      this._setStatus('stopped');
    }
  };

  if (typeof module === 'object' && module.exports) module.exports = Pushman;
  else root.Pushman = Pushman;
})(typeof self !== 'undefined' ? self : this);
