/*
 * The demo page's token panel: which token the dashboard holds, how long it has left, and
 * how often embedgate.js has replaced it. It only listens: embedgate.js does the refreshing
 * (the embedgate:token event fires for the page's first token and for every new one).
 */
(function () {
  "use strict";
  const panel = document.getElementById("token-panel");
  if (!panel) {
    return;
  }
  const $ = (id) => document.getElementById(id);
  const serverTime = Number(document.body.dataset.serverTime);
  const skew = serverTime > 0 ? serverTime - Date.now() / 1000 : 0; // server clock - local clock
  const ttl = Number(panel.dataset.ttl) || 60;
  const margin = Number(panel.dataset.margin) || 0;
  let current = null;
  let refreshes = -1; // the first event is the page's own token

  function base64url(text) {
    const b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    const bytes = Uint8Array.from(atob(b64 + "===".slice((b64.length + 3) % 4)), (c) => c.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(bytes));
  }

  /** A JWT's header and claims (readable by anyone holding it), or null for opaque tokens. */
  function decode(token) {
    const parts = token.split(".");
    if (parts.length !== 3) {
      return null;
    }
    try {
      return { header: base64url(parts[0]), claims: base64url(parts[1]) };
    } catch (e) {
      return null;
    }
  }

  /** A short, non-reversible label for an opaque token (FNV-1a). */
  function fingerprint(token) {
    let hash = 0x811c9dc5;
    for (let i = 0; i < token.length; i++) {
      hash ^= token.charCodeAt(i);
      hash = Math.imul(hash, 0x01000193) >>> 0;
    }
    return "#" + hash.toString(16).padStart(8, "0");
  }

  function show(token, expiresAt) {
    refreshes += 1;
    current = { expiresAt };
    const jwt = decode(token);
    const id = jwt && jwt.claims.jti ? String(jwt.claims.jti) : fingerprint(token);
    panel.dataset.tokenId = id;
    $("token-id").textContent = id.length > 12 ? `${id.slice(0, 12)}…` : id;
    $("token-id").title = jwt ? `jti ${id}` : "fingerprint of an opaque token";
    $("token-kind").textContent = jwt
      ? `JWT · ${jwt.header.alg} · signed by the host`
      : "opaque · minted and encrypted by the provider";
    $("token-refreshes").textContent = String(refreshes);
    $("token-status").textContent = "";
    $("token-claims").textContent = jwt
      ? JSON.stringify(jwt.claims, null, 2)
      : "An opaque token: the provider encrypted it, so only the provider can read it.\n" +
        "It knows who you are from what the host sent to /embed/generate-token.";
    if (refreshes > 0) {
      panel.classList.add("fresh");
      setTimeout(() => panel.classList.remove("fresh"), 1500);
    }
    tick();
  }

  function tick() {
    if (!current) {
      return;
    }
    const left = current.expiresAt - (Date.now() / 1000 + skew);
    $("token-expires").textContent = left > 0 ? `${Math.floor(left)} s` : "expired";
    $("token-meter").style.width = `${Math.max(0, Math.min(100, (100 * left) / ttl))}%`;
    panel.classList.toggle("due", left > 0 && left <= margin);
    panel.classList.toggle("expired", left <= 0);
  }

  document.addEventListener("embedgate:token", (e) => show(e.detail.token, e.detail.expiresAt));
  document.addEventListener("embedgate:error", (e) => {
    $("token-status").textContent = `Refresh failed (${e.detail.code}); retrying.`;
  });
  // Logged out elsewhere (another tab): show a signed-out state, never the last user's rows.
  document.addEventListener("embedgate:unauthenticated", () => {
    $("token-status").textContent = "Your session ended: log in again.";
    const dashboard = document.getElementById("dashboard");
    if (dashboard && !document.getElementById("signed-out")) {
      const notice = document.createElement("section");
      notice.id = "signed-out";
      notice.className = "card";
      notice.setAttribute("role", "alert");
      const text = document.createElement("p");
      text.textContent = "You are signed out (your session ended, perhaps in another tab). ";
      const link = document.createElement("a");
      link.href = "/login?next=" + encodeURIComponent(location.pathname);
      link.textContent = "Log in again";
      text.appendChild(link);
      notice.appendChild(text);
      dashboard.replaceWith(notice);
    }
    $("token-claims").textContent = "";
    $("token-id").textContent = "…";
    current = null;
  });
  setInterval(tick, 250);
})();
