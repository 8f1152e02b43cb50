/*! embedgate: keeps the page's embed tokens fresh. No dependencies, ES2017. */
(function () {
  "use strict";
  // Loaded twice? (A named element can make window.embedgate an element: not a function.)
  if (window.embedgate && typeof window.embedgate.getToken === "function") return;

  // The DOM through its prototypes only: markup in the page can shadow a document's own
  // properties by name (<img name="currentScript">, <form name="querySelectorAll">), and a
  // form's properties by its fields' names (<input name="getAttribute">).
  var HTML_NS = "http://www.w3.org/1999/xhtml";
  var DOC = Document.prototype;
  var EL = Element.prototype;
  var NODE = Node.prototype;
  function getter(proto, name) { return Object.getOwnPropertyDescriptor(proto, name).get; }
  var currentScriptOf = getter(DOC, "currentScript");
  var readyStateOf = getter(DOC, "readyState");
  var visibilityOf = getter(DOC, "visibilityState");
  var rootElementOf = getter(DOC, "documentElement");
  var baseOf = getter(NODE, "baseURI");
  var textOf = getter(NODE, "textContent");
  var nodeTypeOf = getter(NODE, "nodeType");
  var previousOf = getter(EL, "previousElementSibling");
  var localNameOf = getter(EL, "localName");
  var namespaceOf = getter(EL, "namespaceURI");
  var getAttr = EL.getAttribute;
  var setAttr = EL.setAttribute;
  var hasAttr = EL.hasAttribute;
  var matchesSel = EL.matches;
  var elementQuery = EL.querySelectorAll;
  var documentQuery = DOC.querySelectorAll;
  var listen = EventTarget.prototype.addEventListener;
  var dispatch = EventTarget.prototype.dispatchEvent;
  function attr(el, name) { return getAttr.call(el, name); }

  var FETCH_TIMEOUT = 15000; // ms
  var LOCK_WAIT = 20000; // ms: stop waiting for a tab that holds the lock too long
  var ASK_WAIT = 300; // ms: how long to wait for a peer tab's answer
  var ELECTION = 150; // ms: claim window of the fallback election
  var MAX_BACKOFF = 60; // s
  var MARGIN = 5; // s: a token this close to expiry is stale
  var MIN_DELAY = 2; // s: floor between scheduled refreshes
  var SDK_POLL = 100; // ms: how often to look for a provider SDK loaded by the page
  var SDK_WAIT = 20000; // ms: give up waiting for it after this long
  var TAB = Math.random().toString(36).slice(2);

  // The data block is the element the server rendered right before this script, never one
  // found by id: user content placed earlier with the same id (DOM clobbering) is not read.
  var script = currentScriptOf.call(document);
  var payload = readPayload(script ? previousOf.call(script) : null);
  var endpoint = sameOrigin((payload && payload.endpoint) ||
    (script && attr(script, "data-endpoint"))) || "/_embedgate/token";
  // The response's binding: the script writes tokens only into elements carrying it as
  // data-embedgate-bind (those the server rendered for this response), what the profile's
  // policy allows (payload.allow), and URLs only on the policy's origins.
  var BIND = payload && typeof payload.bind === "string" && /^[\w-]{16,64}$/.test(payload.bind)
    ? payload.bind : null;
  var allow = readAllow(payload && payload.allow);
  // The page says the provider has no session token (every token is bound to its resource:
  // Metabase static embedding, Looker): never ask for one, refresh only the resources.
  var sessionless = !!payload && payload.session === false;

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
  var reported = new WeakSet(); // elements whose refusal was reported once
  var resources = Object.create(null); // resource name -> its token and timer (see entry())
  var handed = new WeakSet(); // SDK mount points already handed to their SDK
  var sdkWaits = Object.create(null); // SDK name -> promise of its global
  var channel = typeof BroadcastChannel === "function" ? new BroadcastChannel("embedgate") : null;

  function noop() {}
  function nowL() { return Date.now() / 1000; }
  function num(v) { return typeof v === "number" && Number.isFinite(v); }

  function readPayload(el) {
    if (!el || namespaceOf.call(el) !== HTML_NS || localNameOf.call(el) !== "script" ||
      attr(el, "type") !== "application/json" || attr(el, "id") !== "embedgate-token") {
      return null;
    }
    try {
      var data = JSON.parse(textOf.call(el) || "null");
      return data && typeof data === "object" && !Array.isArray(data) ? data : null;
    } catch (e) {
      return null;
    }
  }

  function strings(v) {
    return Array.isArray(v) ? v.filter(function (s) { return typeof s === "string"; }) : [];
  }

  function readAllow(a) {
    a = a && typeof a === "object" ? a : {};
    return { origins: strings(a.origins), attributes: strings(a.attributes), sdks: strings(a.sdks) };
  }

  function sameOrigin(u) {
    if (typeof u !== "string" || !u) return null;
    try {
      return new URL(u, window.location.href).origin === window.location.origin ? u : null;
    } catch (e) {
      return null;
    }
  }

  // --- what the script may write: the one place every write and every handed-over URL
  // passes through.

  // Never written, whatever a policy says: event handlers, markup, styles, and every
  // attribute that makes the browser fetch or navigate (an iframe's src excepted: its value
  // is built from a template and checked by allowedUrl).
  var NEVER = new RegExp("^(on|data-embedgate|xml)|^(srcdoc|style|href|src|srcset|action|" +
    "formaction|data|poster|background|ping|codebase|cite|longdesc|lowsrc|dynsrc|manifest|" +
    "content|http-equiv|is|id|name|class|slot|target|rel|type|value|sandbox|allow|" +
    "referrerpolicy|integrity|nonce|form|for|itemprop|attributionsrc|popovertarget)$");

  function bound(el) {
    return BIND !== null && nodeTypeOf.call(el) === 1 && attr(el, "data-embedgate-bind") === BIND;
  }

  function allowed(list, name) { return list.indexOf(name) >= 0; }

  // How the token may go into attribute name of el: "url" (an iframe's src, through a
  // checked URL), "plain" (the bare token, a custom element's attribute) or null (never).
  function tokenAttribute(el, name) {
    if (typeof name !== "string" || !/^[a-z][a-z0-9-]*$/.test(name)) return null;
    if (namespaceOf.call(el) !== HTML_NS) return null; // no SVG or MathML
    var tag = localNameOf.call(el);
    if (name === "src") return tag === "iframe" && allowed(allow.attributes, "src") ? "url" : null;
    if (NEVER.test(name) || tag.indexOf("-") < 0) return null;
    return allowed(allow.attributes, name) || allowed(allow.attributes, "*") ? "plain" : null;
  }

  // URL classes, the same as embedgate.urls on the server (WHATWG rules: new URL()):
  // "self" for a reference that stays on the page's origin whatever the page (a path, a query,
  // a fragment: never "//host", "/\\host" or "https:host"), an origin for an absolute http(s)
  // URL that no base can change, else null (javascript:, data:, ambiguous, unparseable).
  var PAGE_BASES = ["https://page.embedgate.invalid/a/b", "http://page.embedgate.invalid/a/b"];

  function originOf(value, base) {
    try {
      var u = base === undefined ? new URL(value) : new URL(value, base);
      return u.protocol === "https:" || u.protocol === "http:" ? u.origin : null;
    } catch (e) {
      return null;
    }
  }

  function urlClass(value) {
    if (PAGE_BASES.every(function (b) { return originOf(value, b) === originOf(b); })) {
      return "self";
    }
    var o = originOf(value);
    return o !== null && originOf(value, PAGE_BASES[0]) === o ? o : null;
  }

  // value as a URL object if its class is one of the policy's origins and the browser,
  // resolving it for el (its base URL included: a <base> elsewhere refuses it), lands on that
  // origin; else null.
  function allowedUrl(value, el) {
    var c = typeof value === "string" ? urlClass(value) : null;
    if (c === null || !allowed(allow.origins, c)) return null;
    var url;
    try {
      url = new URL(value, baseOf.call(el || document));
    } catch (e) {
      return null;
    }
    return url.origin === (c === "self" ? window.location.origin : c) ? url : null;
  }

  function refuse(el, code, resource) {
    if (reported.has(el)) return;
    reported.add(el);
    var detail = { status: 0, code: code };
    if (resource) detail.resource = resource;
    emit("embedgate:error", detail);
  }

  function fill(tpl, token) { return tpl.split("{token}").join(encodeURIComponent(token)); }

  // Write value (from template tpl, or the bare token) into el's attribute name, if allowed.
  function write(el, name, tpl, token, resource) {
    var how = tokenAttribute(el, name);
    if (how === null) return refuse(el, "attribute_refused", resource);
    var value = token;
    if (tpl || how === "url") {
      var url = tpl ? allowedUrl(fill(tpl, token), el) : null;
      if (url === null) return refuse(el, "url_refused", resource);
      value = url.href;
    }
    if (attr(el, name) !== value) setAttr.call(el, name, value);
  }

  function isStale() {
    var t = nowL();
    return !state.token || t >= state.refreshAtL || t >= state.expiresAtL - MARGIN;
  }

  function emit(name, detail) {
    [window, document].forEach(function (target) {
      dispatch.call(target, new CustomEvent(name, { detail: detail }));
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
  function template(el, name) {
    var tpl = attr(el, "data-embedgate-url-template");
    if (tpl && tpl.indexOf("{token}") >= 0) return tpl;
    if (name !== "src") return null;
    // A URL attribute never gets the bare token: its first value is the template.
    if (!templates.has(el)) {
      var first = attr(el, name) || "";
      templates.set(el, first.indexOf("{token}") >= 0 ? first : null);
    }
    return templates.get(el);
  }

  function applyTo(el, token) {
    var name = attr(el, "data-embedgate-token") || "token";
    write(el, name, template(el, name), token, null);
  }

  // The elements under root (itself included) matching sel that the server rendered for
  // this response: nothing else is ever looked at.
  function within(root, sel) {
    if (BIND === null) return [];
    sel = "[data-embedgate-bind=\"" + BIND + "\"]" + sel;
    var found = [];
    if (root === document) {
      found = Array.prototype.slice.call(documentQuery.call(document, sel));
    } else if (nodeTypeOf.call(root) === 1) {
      if (matchesSel.call(root, sel)) found.push(root);
      found.push.apply(found, elementQuery.call(root, sel));
    }
    return found.filter(bound);
  }

  // Elements bound to one resource get that resource's token, never the session's.
  function applyAll(root) {
    if (!state.token) return;
    within(root, "[data-embedgate-token]:not([data-embedgate-resource])").forEach(function (el) {
      applyTo(el, state.token);
    });
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
      pushToken(null, token);
      emit("embedgate:token", { token: token, expiresAt: expiresAt, resource: null });
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

  // One call of the endpoint: the session's token, or with a resource name that resource's.
  async function ask(resource) {
    var ctrl = new AbortController();
    var t = setTimeout(function () { ctrl.abort(); }, FETCH_TIMEOUT);
    var headers = { "X-Embedgate": "1", Accept: "application/json" };
    var init = { method: "POST", credentials: "same-origin", cache: "no-store", headers: headers,
      signal: ctrl.signal };
    if (resource !== null) {
      headers["Content-Type"] = "application/json";
      init.body = JSON.stringify({ resource: resource });
    }
    var res;
    var body = null;
    try {
      res = await fetch(endpoint, init);
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
      return { token: body.token, expiresAt: body.expires_at, at: at,
        refreshAtL: at + Math.max(0, refreshIn), expiresAtL: body.expires_at - skew,
        url: typeof body.url === "string" ? body.url : null };
    }
    var code = body && typeof (body.error || body.code) === "string" ? body.error || body.code : "";
    code = code || (res.ok ? "bad_response" : "http_" + res.status);
    throw failure(res.status, code, retryAfter(res));
  }

  async function fetchToken() {
    var got = await ask(null);
    adopt(got.token, got.expiresAt, got.refreshAtL, got.expiresAtL, got.at);
    share();
    return got.token;
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
    if (sessionless) return Promise.reject(failure(404, "no_session_token", 0));
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

  // Seconds to wait after the n-th failure in a row: exponential, jittered, Retry-After.
  function backoff(n, err) {
    var cap = Math.min(MAX_BACKOFF, Math.pow(2, n - 1));
    var delay = cap / 2 + (Math.random() * cap) / 2;
    if (err.retryAfter > 0) delay = Math.max(delay, Math.min(err.retryAfter, 3600));
    return delay;
  }

  function failed(err) {
    if (err.status === 401) {
      unauthenticated(true);
      return;
    }
    if (err.code === "not_configured" || err.code === "no_session_token") {
      // The server cannot issue a session token: retrying will not change that until it is
      // reconfigured (a page older than the configuration may not have said so).
      if (err.code === "no_session_token") sessionless = true;
      clearTimeout(timer);
      timer = null;
      notBefore = Infinity;
    } else {
      failures++;
      var delay = backoff(failures, err);
      notBefore = nowL() + delay;
      schedule(delay);
    }
    // Last: a listener asking for a token again meets the backoff just set.
    emit("embedgate:error", { status: err.status || 0, code: err.code || "error" });
  }

  function unauthenticated(tell) {
    stopped = true;
    clearTimeout(timer);
    timer = null;
    state = EMPTY;
    Object.keys(resources).forEach(function (name) {
      var e = resources[name];
      clearTimeout(e.timer);
      e.timer = null;
      e.token = null;
    });
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

  // --- resource-bound tokens (Metabase static embedding, Looker): each element carrying
  // data-embedgate-resource follows its resource's token, on a timer of its own. The endpoint
  // refreshes only resources the page embedded for this session. No cross-tab coordination.
  function entry(name) {
    var e = resources[name];
    if (!e) {
      e = resources[name] = { name: name, token: null, url: null, expiresAt: 0, refreshAtL: 0,
        expiresAtL: 0, timer: null, failures: 0, notBefore: 0, inflight: null, refused: false };
    }
    return e;
  }

  function staleR(e) {
    var t = nowL();
    return !e.token || t >= e.refreshAtL || t >= e.expiresAtL - MARGIN;
  }

  // Elements the script keeps current for a resource: not SDK mounts (their SDK asks through
  // embedgate.getToken), not data-embedgate-refresh="none" (Looker: a new one-time URL
  // would reload a dashboard whose Looker session outlives the URL).
  function followers(root, name) {
    return within(root, "[data-embedgate-resource]").filter(function (el) {
      return !hasAttr.call(el, "data-embedgate-sdk") &&
        attr(el, "data-embedgate-refresh") !== "none" &&
        (name === undefined || attr(el, "data-embedgate-resource") === name);
    });
  }

  function applyResource(el, e) {
    var name = attr(el, "data-embedgate-token");
    var tpl = attr(el, "data-embedgate-url-template");
    if (tpl && tpl.indexOf("{token}") >= 0) {
      write(el, name || "src", tpl, e.token, e.name);
    } else if (e.url && (!name || name === "src")) {
      // The endpoint's URL for the resource (one URL per token): checked like a template.
      write(el, "src", e.url, "", e.name);
    } else if (name) {
      write(el, name, null, e.token, e.name);
    }
  }

  function adoptResource(e, got) {
    var changed = got.token !== e.token;
    e.token = got.token;
    e.url = got.url;
    e.expiresAt = got.expiresAt;
    e.refreshAtL = got.refreshAtL;
    e.expiresAtL = got.expiresAtL;
    e.failures = 0;
    e.notBefore = 0;
    e.refused = false;
    scheduleResource(e);
    if (changed) {
      followers(document, e.name).forEach(function (el) { applyResource(el, e); });
      pushToken(e.name, e.token);
      emit("embedgate:token", { token: e.token, expiresAt: e.expiresAt, resource: e.name });
    }
  }

  function scheduleResource(e, delay) {
    clearTimeout(e.timer);
    e.timer = null;
    // Only resources with elements to keep current refresh on their own; others (asked for
    // through embedgate.getToken) are fetched again when asked and stale.
    if (stopped || e.refused || (!followers(document, e.name).length && !pushed(e.name))) return;
    if (delay === undefined) {
      if (!e.token) return;
      var due = Math.min(e.refreshAtL, e.expiresAtL - MARGIN);
      delay = Math.max(MIN_DELAY, due - nowL()) + Math.random();
    }
    e.timer = setTimeout(function () {
      e.timer = null;
      refreshResource(e).catch(noop);
    }, Math.min(delay * 1000, 2147483647));
  }

  function refreshResource(e) {
    if (e.inflight) return e.inflight;
    e.inflight = ask(e.name).then(
      function (got) { e.inflight = null; adoptResource(e, got); return got.token; },
      function (err) { e.inflight = null; resourceFailed(e, err); throw err; },
    );
    return e.inflight;
  }

  function resourceFailed(e, err) {
    if (err.status === 401) {
      unauthenticated(true);
      return;
    }
    if (err.code === "resource_not_granted" || err.code === "not_configured") {
      // Not this session's to refresh (or never issuable): a page load grants it again.
      e.refused = true;
      clearTimeout(e.timer);
      e.timer = null;
    } else {
      e.failures++;
      var delay = backoff(e.failures, err);
      e.notBefore = nowL() + delay;
      scheduleResource(e, delay);
    }
    emit("embedgate:error", { status: err.status || 0, code: err.code || "error", resource: e.name });
  }

  // Explicit calls wait out a backoff too.
  function requestResource(name) {
    var e = entry(name);
    var wait = e.notBefore - nowL();
    if (e.inflight || wait <= 0) return refreshResource(e);
    return new Promise(function (resolve) { setTimeout(resolve, wait * 1000); }).then(function () {
      return refreshResource(e);
    });
  }

  // New resources under root: learn their token's timing from the endpoint (a cache hit);
  // known ones: bring the new elements up to date.
  function followResources(root) {
    followers(root).forEach(function (el) {
      var e = entry(attr(el, "data-embedgate-resource"));
      if (e.token) applyResource(el, e);
      else if (!e.inflight && !e.refused && !stopped) refreshResource(e).catch(noop);
    });
  }

  // --- provider SDKs: mount points the page's SDK script fills, asking embedgate for tokens.
  // A handover is an entry of HANDOVERS, used for bound mounts whose data-embedgate-sdk names
  // it and only if the profile's policy lists that name (BrowserPolicy.sdks on the server):
  //   global: the SDK's window property; ready(sdk): whether it has loaded;
  //   urls(el): every URL the handover gives the SDK, each of which must resolve to one of
  //     the policy's origins (else refused, "url_refused"), passed to embed as URL objects;
  //   embed(sdk, el, urls, getToken): the SDK call, tokens pulled through getToken.
  // Adding a provider's SDK = one entry here + its name in the profile's policy.
  var HANDOVERS = {
    superset: {
      global: "supersetEmbeddedSdk",
      ready: function (sdk) { return typeof sdk.embedDashboard === "function"; },
      urls: function (el) { return [attr(el, "data-embedgate-domain")]; },
      embed: embedSuperset,
    },
    // Preset's @preset-sdk/embedded: Superset's call under its own global.
    preset: {
      global: "presetSdk",
      ready: function (sdk) { return typeof sdk.embedDashboard === "function"; },
      urls: function (el) { return [attr(el, "data-embedgate-domain")]; },
      embed: embedSuperset,
    },
    // powerbi-client: the report is embedded with an Embed token; Power BI never asks for the
    // next one, so each token embedgate adopts for it is pushed with report.setAccessToken().
    powerbi: {
      global: "powerbi",
      ready: function (sdk) { return typeof sdk.embed === "function"; },
      urls: function (el) { return [attr(el, "data-embedgate-embed-url")]; },
      embed: embedPowerBI,
    },
    // ThoughtSpot's Visual Embed SDK (UMD build, global tsembed): trusted authentication
    // without cookies, the SDK pulling each token through getAuthToken.
    thoughtspot: {
      global: "tsembed",
      ready: function (sdk) { return typeof sdk.init === "function"; },
      urls: function (el) { return [attr(el, "data-embedgate-domain")]; },
      embed: embedThoughtSpot,
    },
  };

  // Functions an SDK handover registered to be given each new token of a resource (null:
  // the session's), called by the script itself (never through a DOM event a page could fake).
  var pushes = [];

  function onToken(resource, fn) { pushes.push({ resource: resource, fn: fn }); }

  function pushToken(resource, token) {
    pushes.forEach(function (p) {
      if (p.resource !== resource) return;
      Promise.resolve().then(function () { return p.fn(token); }).catch(function () {
        emit("embedgate:error", { status: 0, code: "sdk_refresh_failed" });
      });
    });
  }

  function pushed(name) {
    return pushes.some(function (p) { return p.resource === name; });
  }

  function embedPowerBI(sdk, el, urls, getToken) {
    var resource = attr(el, "data-embedgate-resource");
    var client = window["powerbi-client"];
    var models = client && client.models;
    var embedType = models && models.TokenType ? models.TokenType.Embed : 1;
    return (resource ? getToken(resource) : getToken()).then(function (token) {
      var report = sdk.embed(el, {
        type: "report",
        id: attr(el, "data-embedgate-report"),
        embedUrl: urls[0].href,
        accessToken: token,
        tokenType: embedType,
      });
      onToken(resource || null, function (t) { return report.setAccessToken(t); });
      if (resource) scheduleResource(entry(resource));
      return report;
    });
  }

  var tsInit = null; // the SDK is initialised once per page

  function embedThoughtSpot(sdk, el, urls, getToken) {
    var auth = sdk.AuthType || {};
    if (!tsInit) {
      tsInit = sdk.init({
        thoughtSpotHost: domain(urls[0]),
        authType: auth.TrustedAuthTokenCookieless || "AuthServerCookieless",
        getAuthToken: function () { return getToken(); },
      }) || true;
    }
    var kind = attr(el, "data-embedgate-kind") || "liveboard";
    var id = attr(el, "data-embedgate-object");
    var Embed = kind === "search" ? sdk.SearchEmbed : kind === "app" ? sdk.AppEmbed
      : sdk.LiveboardEmbed;
    var config = { frameParams: { width: "100%", height: "100%" } };
    if (kind === "liveboard") config.liveboardId = id;
    else if (kind === "search" && id) config.dataSource = id;
    else if (kind === "app" && id) config.pageId = id;
    return new Embed(el, config).render();
  }

  function whenSdk(h) {
    var found = function () {
      var sdk = window[h.global];
      return sdk && (typeof sdk === "object" || typeof sdk === "function") && h.ready(sdk)
        ? sdk : null;
    };
    if (found()) return Promise.resolve(found());
    if (!sdkWaits[h.global]) {
      sdkWaits[h.global] = new Promise(function (resolve, reject) {
        var started = Date.now();
        var poll = setInterval(function () {
          var sdk = found();
          if (sdk || Date.now() - started >= SDK_WAIT) {
            clearInterval(poll);
            delete sdkWaits[h.global];
            if (sdk) resolve(sdk);
            else reject(new Error("embedgate: " + h.global + " did not load"));
          }
        }, SDK_POLL);
      });
    }
    return sdkWaits[h.global];
  }

  // data-embedgate-filters: a JSON object as the SDK takes it ({"visible": .., "expanded": ..}),
  // or "hidden", "collapsed", "expanded".
  function uiFilters(value) {
    var v = (value || "").trim();
    if (v.charAt(0) === "{") {
      try {
        var parsed = JSON.parse(v);
        return parsed && typeof parsed === "object" && !Array.isArray(parsed) ? parsed : null;
      } catch (e) {
        return null;
      }
    }
    v = v.toLowerCase();
    if (v === "hidden" || v === "false") return { visible: false };
    if (v === "collapsed") return { visible: true, expanded: false };
    if (v === "expanded" || v === "visible" || v === "true") return { visible: true, expanded: true };
    return null;
  }

  // A domain as the SDK takes it: the origin, plus a path prefix without its final slash.
  function domain(url) { return url.origin + url.pathname.replace(/\/+$/, ""); }

  function embedSuperset(sdk, el, urls, getToken) {
    var resource = attr(el, "data-embedgate-resource"); // a per-dashboard guest token, if any
    var ui = { hideTitle: attr(el, "data-embedgate-hide-title") === "true" };
    var filters = uiFilters(attr(el, "data-embedgate-filters"));
    if (filters) ui.filters = filters;
    return sdk.embedDashboard({
      id: attr(el, "data-embedgate-dashboard"),
      supersetDomain: domain(urls[0]),
      mountPoint: el,
      fetchGuestToken: function () { return resource ? getToken(resource) : getToken(); },
      dashboardUiConfig: ui,
    });
  }

  function handOver(root) {
    within(root, "[data-embedgate-sdk]").forEach(function (el) {
      if (handed.has(el)) return;
      var name = attr(el, "data-embedgate-sdk");
      var h = Object.prototype.hasOwnProperty.call(HANDOVERS, name) ? HANDOVERS[name] : null;
      if (!h) return refuse(el, "sdk_unknown"); // no handover for it in this script
      if (!allowed(allow.sdks, name)) return refuse(el, "sdk_refused");
      var urls = h.urls(el).map(function (u) { return u ? allowedUrl(u, el) : null; });
      if (urls.indexOf(null) >= 0) return refuse(el, "url_refused");
      handed.add(el); // once per element, whatever the outcome
      whenSdk(h).then(function (sdk) {
        return Promise.resolve()
          .then(function () { return h.embed(sdk, el, urls, api.getToken); })
          .catch(function () { emit("embedgate:error", { status: 0, code: "sdk_embed_failed" }); });
      }, function () {
        emit("embedgate:error", { status: 0, code: "sdk_missing" });
      });
    });
  }

  function scan(root) {
    applyAll(root);
    followResources(root);
    handOver(root);
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
    if (stopped || visibilityOf.call(document) === "hidden") return;
    var t = nowL();
    if (!sessionless && t >= notBefore && isStale()) refresh(false).catch(noop);
    Object.keys(resources).forEach(function (name) {
      var e = resources[name];
      if (e.token && !e.refused && !e.inflight && t >= e.notBefore && staleR(e)) {
        refreshResource(e).catch(noop);
      }
    });
  }

  // --- start
  var api = {
    // A fresh token: fits Superset's and Preset's fetchGuestToken, ThoughtSpot's
    // getAuthToken. With a resource name (data-embedgate-resource), that
    // resource's token; the session must hold one (its page embedded the resource). Without
    // one on a page whose provider has no session token: rejected (no_session_token), no call.
    getToken: function (resource) {
      if (typeof resource === "string" && resource) {
        var e = entry(resource);
        return e.token && !staleR(e) ? Promise.resolve(e.token) : requestResource(resource);
      }
      return state.token && !isStale() ? Promise.resolve(state.token) : request(false);
    },
    // Metabase's embedding SDK: authConfig.fetchRequestToken answers {jwt} (its JWT SSO).
    fetchRequestToken: function () {
      return api.getToken().then(function (token) { return { jwt: token }; });
    },
    refresh: function (resource) {
      return typeof resource === "string" && resource ? requestResource(resource) : request(true);
    },
    current: function (resource) {
      if (typeof resource === "string" && resource) {
        var e = resources[resource];
        return e && e.token
          ? { token: e.token, expiresAt: e.expiresAt, url: e.url, resource: resource }
          : null;
      }
      return state.token ? { token: state.token, expiresAt: state.expiresAt } : null;
    },
  };
  window.embedgate = api;

  if (channel) channel.onmessage = onMessage;
  listen.call(document, "visibilitychange", wake);
  window.addEventListener("focus", wake);
  window.addEventListener("online", wake);
  window.addEventListener("pageshow", function (e) { if (e.persisted) wake(); });
  if (typeof MutationObserver === "function") {
    new MutationObserver(function (records) {
      records.forEach(function (r) { r.addedNodes.forEach(scan); });
    }).observe(rootElementOf.call(document), { childList: true, subtree: true });
  }

  if (payload && typeof payload.token === "string" && num(payload.expires_at)) {
    var at = nowL();
    if (num(payload.server_time)) skew = payload.server_time - at;
    var rin = num(payload.refresh_in) ? payload.refresh_in : 0.8 * (payload.expires_at - skew - at);
    adopt(payload.token, payload.expires_at, at + Math.max(0, rin), payload.expires_at - skew, 0);
    share(); // tabs holding an older token adopt this one
    if (isStale()) refresh(false).catch(noop);
  } else if (!sessionless) {
    // No token in the page (e.g. the provider was down at render): ask the other tabs first.
    post({ type: "want" });
    waitForToken(ASK_WAIT).then(function () {
      if (isStale()) refresh(false).catch(noop);
    });
  }

  // Resources and SDK mounts already in the page (again once it is parsed, for a script
  // that runs before the body; both steps skip what they have seen).
  followResources(document);
  handOver(document);
  if (readyStateOf.call(document) === "loading") {
    listen.call(document, "DOMContentLoaded", function () {
      followResources(document);
      handOver(document);
    });
  }
})();
