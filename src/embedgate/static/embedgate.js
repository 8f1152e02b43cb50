/*! embedgate: keeps the page's embed token fresh. No dependencies, ES2017. */
(function () {
  "use strict";
  if (window.embedgate && window.embedgate.getToken) return; // loaded twice

  var FETCH_TIMEOUT = 15000; // ms
  var LOCK_WAIT = 20000; // ms: stop waiting for a tab that holds the lock too long
  var ASK_WAIT = 300; // ms: how long to wait for a peer tab's answer
  var ELECTION = 150; // ms: claim window of the fallback election
  var MAX_BACKOFF = 60; // s
  var MARGIN = 5; // s: a token this close to expiry is stale
  var MIN_DELAY = 2; // s: floor between scheduled refreshes
  var TAB = Math.random().toString(36).slice(2);

  var script = document.currentScript || document.querySelector("script[data-endpoint]");
  var payload = readPayload();
  var endpoint = (payload && payload.endpoint) ||
    (script && script.getAttribute("data-endpoint")) || "/_embedgate/token";

  // Times ending in L are local clock (Date.now()) seconds; skew = server - local.
  // fetchedAt: local time the endpoint answered (0 for a token rendered into the page).
  var EMPTY = { token: null, expiresAt: 0, refreshAtL: 0, expiresAtL: 0, fetchedAt: 0 };
  var state = EMPTY;
  var skew = 0;
  var timer = null;
  var failures = 0;
  var notBefore = 0; // local seconds; backoff / Retry-After
  var stopped = false; // after a 401
  var inflight = null;
  var leading = false; // won the fallback election and is refreshing
  var election = null;
  var waiters = [];
  var templates = new WeakMap();
  var channel = typeof BroadcastChannel === "function" ? new BroadcastChannel("embedgate") : null;

  function noop() {}
  function nowL() { return Date.now() / 1000; }
  function num(v) { return typeof v === "number" && Number.isFinite(v); }

  function readPayload() {
    var el = document.getElementById("embedgate-token");
    try {
      var data = el && JSON.parse(el.textContent || "null");
      return data && typeof data === "object" ? data : null;
    } catch (e) {
      return null;
    }
  }

  function isStale() {
    var t = nowL();
    return !state.token || t >= state.refreshAtL || t >= state.expiresAtL - MARGIN;
  }

  function emit(name, detail) {
    [window, document].forEach(function (target) {
      target.dispatchEvent(new CustomEvent(name, { detail: detail }));
    });
  }

  function post(msg) {
    if (!channel) return;
    msg.ep = endpoint;
    try { channel.postMessage(msg); } catch (e) { /* closed */ }
  }

  function share() {
    if (state.token) {
      post({
        type: "token",
        token: state.token,
        expiresAt: state.expiresAt,
        refreshAt: state.refreshAtL + skew,
        fetchedAt: state.fetchedAt,
        skew: skew,
      });
    }
  }

  // --- elements
  function applyTo(el, token) {
    var attr = el.getAttribute("data-embedgate-token") || "token";
    var tpl = el.getAttribute("data-embedgate-url-template");
    if (!tpl || tpl.indexOf("{token}") < 0) {
      tpl = null;
      if (attr === "src" || attr === "href") {
        // A URL attribute never gets the bare token: use its first value as the template.
        if (!templates.has(el)) {
          var first = el.getAttribute(attr) || "";
          templates.set(el, first.indexOf("{token}") >= 0 ? first : null);
        }
        tpl = templates.get(el);
        if (!tpl) return;
      }
    }
    var value = tpl ? tpl.split("{token}").join(encodeURIComponent(token)) : token;
    if (el.getAttribute(attr) !== value) el.setAttribute(attr, value);
  }

  function applyAll(root) {
    if (!state.token) return;
    var sel = "[data-embedgate-token]";
    if (root.nodeType === 1 && root.matches(sel)) applyTo(root, state.token);
    if (root.querySelectorAll) {
      root.querySelectorAll(sel).forEach(function (el) { applyTo(el, state.token); });
    }
  }

  // --- state
  // Tokens are ordered by (expiresAt, fetchedAt); a tab only ever adopts a newer one.
  function newer(expiresAt, fetchedAt) {
    var s = state;
    return expiresAt > s.expiresAt || (expiresAt === s.expiresAt && fetchedAt > s.fetchedAt);
  }

  function adopt(token, expiresAt, refreshAtL, expiresAtL, fetchedAt) {
    var changed = token !== state.token;
    state = { token: token, expiresAt: expiresAt, refreshAtL: refreshAtL,
      expiresAtL: expiresAtL, fetchedAt: fetchedAt };
    stopped = false;
    failures = 0;
    notBefore = 0;
    schedule();
    if (changed) {
      applyAll(document);
      emit("embedgate:token", { token: token, expiresAt: expiresAt });
    }
    waiters.splice(0).forEach(function (f) { f(); });
  }

  function waitForToken(ms) {
    return new Promise(function (resolve) {
      var done = function () {
        clearTimeout(t);
        resolve();
      };
      var t = setTimeout(function () {
        waiters = waiters.filter(function (f) { return f !== done; });
        resolve();
      }, ms);
      waiters.push(done);
    });
  }

  function schedule(delay) {
    clearTimeout(timer);
    timer = null;
    if (stopped) return;
    if (delay === undefined) {
      if (!state.token) return;
      var due = Math.min(state.refreshAtL, state.expiresAtL - MARGIN);
      delay = Math.max(MIN_DELAY, due - nowL()) + Math.random(); // jitter spreads tabs out
    }
    timer = setTimeout(function () {
      timer = null;
      refresh(false).catch(noop);
    }, Math.min(delay * 1000, 2147483647));
  }

  // --- network
  function failure(status, code, retryAfter) {
    var err = new Error("embedgate: token refresh failed (" + code + ")");
    err.status = status;
    err.code = code;
    err.retryAfter = retryAfter;
    return err;
  }

  function retryAfter(res) {
    var v = res.headers.get("Retry-After");
    if (!v) return 0;
    var s = /^\s*\d+\s*$/.test(v) ? parseInt(v, 10) : (Date.parse(v) - Date.now()) / 1000;
    return s > 0 ? s : 0;
  }

  async function fetchToken() {
    var ctrl = new AbortController();
    var t = setTimeout(function () { ctrl.abort(); }, FETCH_TIMEOUT);
    var res;
    var body = null;
    try {
      res = await fetch(endpoint, {
        method: "POST",
        credentials: "same-origin",
        cache: "no-store",
        headers: { "X-Embedgate": "1", Accept: "application/json" },
        signal: ctrl.signal,
      });
      body = await res.json().catch(function () { return null; });
    } catch (e) {
      throw failure(0, ctrl.signal.aborted ? "timeout" : "network", 0);
    } finally {
      clearTimeout(t);
    }
    if (res.ok && body && typeof body.token === "string" && num(body.expires_at)) {
      var at = nowL();
      if (num(body.server_time)) skew = body.server_time - at;
      var refreshIn = num(body.refresh_in)
        ? body.refresh_in
        : 0.8 * (num(body.expires_in) ? body.expires_in : body.expires_at - skew - at);
      adopt(body.token, body.expires_at, at + Math.max(0, refreshIn), body.expires_at - skew, at);
      share();
      return body.token;
    }
    var code = body && typeof (body.error || body.code) === "string" ? body.error || body.code : "";
    code = code || (res.ok ? "bad_response" : "http_" + res.status);
    throw failure(res.status, code, retryAfter(res));
  }

  // --- coordination between tabs
  function elect() {
    return new Promise(function (resolve) {
      var me = (election = { t: Date.now(), lost: false });
      post({ type: "claim", t: me.t, id: TAB });
      setTimeout(function () {
        election = null;
        resolve(!me.lost);
      }, ELECTION);
    });
  }

  // Run fn in at most one tab at a time; a tab that had to wait first looks for the winner's token.
  async function lead(fn, satisfied) {
    var locks = navigator.locks;
    if (locks && locks.request) {
      var name = "embedgate " + endpoint;
      var mine = false;
      var result = await locks.request(name, { ifAvailable: true }, function (lock) {
        if (!lock) return null;
        mine = true;
        return fn();
      });
      if (mine) return result;
      var ctrl = new AbortController();
      var t = setTimeout(function () { ctrl.abort(); }, LOCK_WAIT);
      try {
        return await locks.request(name, { signal: ctrl.signal }, async function () {
          clearTimeout(t);
          if (!satisfied()) {
            post({ type: "want" });
            await waitForToken(ASK_WAIT);
          }
          return fn();
        });
      } catch (e) {
        if (e && e.name === "AbortError") return fn();
        throw e;
      }
    }
    if (!channel || satisfied()) return fn();
    if (await elect()) {
      leading = true;
      try {
        return await fn();
      } finally {
        leading = false;
      }
    }
    await waitForToken(FETCH_TIMEOUT + 1000);
    return lead(fn, satisfied);
  }

  function refresh(force, t0) {
    if (inflight) return inflight;
    if (t0 === undefined) t0 = nowL();
    // Done if a token is fresh (forced: fetched after the call), e.g. thanks to another tab.
    var satisfied = function () {
      return state.token && !isStale() && (!force || state.fetchedAt >= t0);
    };
    var p = lead(function () {
      return satisfied() ? state.token : fetchToken();
    }, satisfied);
    inflight = p.then(
      function (token) { inflight = null; return token; },
      function (err) { inflight = null; failed(err); throw err; },
    );
    return inflight;
  }

  function failed(err) {
    if (err.status === 401) {
      unauthenticated(true);
      return;
    }
    failures++;
    var cap = Math.min(MAX_BACKOFF, Math.pow(2, failures - 1));
    var delay = cap / 2 + (Math.random() * cap) / 2;
    if (err.retryAfter > 0) delay = Math.max(delay, Math.min(err.retryAfter, 3600));
    notBefore = nowL() + delay;
    schedule(delay);
    emit("embedgate:error", { status: err.status || 0, code: err.code || "error" });
  }

  function unauthenticated(tell) {
    stopped = true;
    clearTimeout(timer);
    timer = null;
    state = EMPTY;
    if (tell) post({ type: "unauth" });
    emit("embedgate:unauthenticated", { status: 401 });
  }

  // Explicit calls wait out a backoff instead of hammering a failing endpoint.
  function request(force) {
    var t0 = nowL();
    var wait = notBefore - t0;
    if (inflight || wait <= 0) return refresh(force, t0);
    return waitForToken(wait * 1000).then(function () {
      return refresh(force, t0);
    });
  }

  function onMessage(ev) {
    var m = ev.data;
    if (!m || typeof m !== "object" || m.ep !== endpoint) return;
    if (m.type === "token") {
      if (typeof m.token !== "string" || !num(m.expiresAt) || !num(m.refreshAt)) return;
      if (!num(m.fetchedAt)) return;
      if (newer(m.expiresAt, m.fetchedAt)) {
        if (num(m.skew)) skew = m.skew;
        adopt(m.token, m.expiresAt, m.refreshAt - skew, m.expiresAt - skew, m.fetchedAt);
      } else if (
        (m.expiresAt < state.expiresAt ||
          (m.expiresAt === state.expiresAt && m.fetchedAt < state.fetchedAt)) &&
        !isStale()
      ) {
        share(); // the sender is behind
      }
    } else if (m.type === "want") {
      if (!isStale()) share();
    } else if (m.type === "claim") {
      // The earliest claim wins; a candidate or leader tells later claimers it is busy.
      if (leading) post({ type: "busy", to: m.id });
      else if (election && (m.t < election.t || (m.t === election.t && m.id < TAB))) {
        election.lost = true;
      } else if (election) post({ type: "busy", to: m.id });
    } else if (m.type === "busy") {
      if (election && m.to === TAB) election.lost = true;
    } else if (m.type === "unauth") {
      if (!stopped) unauthenticated(false);
    }
  }

  function wake() {
    if (!stopped && document.visibilityState !== "hidden" && nowL() >= notBefore && isStale()) {
      refresh(false).catch(noop);
    }
  }

  // --- start
  window.embedgate = {
    // A fresh token: fits Superset's fetchGuestToken, Metabase's fetchRequestToken,
    // ThoughtSpot's getAuthToken.
    getToken: function () {
      return state.token && !isStale() ? Promise.resolve(state.token) : request(false);
    },
    refresh: function () { return request(true); },
    current: function () {
      return state.token ? { token: state.token, expiresAt: state.expiresAt } : null;
    },
  };

  if (channel) channel.onmessage = onMessage;
  document.addEventListener("visibilitychange", wake);
  window.addEventListener("focus", wake);
  window.addEventListener("online", wake);
  window.addEventListener("pageshow", function (e) { if (e.persisted) wake(); });
  if (typeof MutationObserver === "function") {
    new MutationObserver(function (records) {
      records.forEach(function (r) { r.addedNodes.forEach(applyAll); });
    }).observe(document.documentElement, { childList: true, subtree: true });
  }

  if (payload && typeof payload.token === "string" && num(payload.expires_at)) {
    var at = nowL();
    if (num(payload.server_time)) skew = payload.server_time - at;
    var rin = num(payload.refresh_in) ? payload.refresh_in : 0.8 * (payload.expires_at - skew - at);
    adopt(payload.token, payload.expires_at, at + Math.max(0, rin), payload.expires_at - skew, 0);
    share(); // tabs holding an older token adopt this one
    if (isStale()) refresh(false).catch(noop);
  } else {
    // No token in the page (e.g. the provider was down at render): ask the other tabs first.
    post({ type: "want" });
    waitForToken(ASK_WAIT).then(function () {
      if (isStale()) refresh(false).catch(noop);
    });
  }
})();
