/*
 * <demo-dashboard auth-token="..." dashboard="sales" api-base="..."> — the embedgate demo
 * provider's dashboard, as a dependency-free web component.
 *
 * Attributes:
 *   auth-token  the embed token (a host-signed JWT or a provider token); setting it again
 *               (embedgate.js does, on refresh) fetches the data again with the new token
 *   dashboard   dashboard id (default "sales")
 *   api-base    the provider's base URL (default: the folder above this script's /static/)
 * Reflected state: data-state = idle | loading | ready | error | expired
 * Events (bubbling, composed): demo-dashboard:load {dashboard, subject, tenant, rows, filter},
 *   demo-dashboard:error {status, code, message}, demo-dashboard:expired {dashboard}
 *
 * Every value from the server reaches the page through textContent or SVG attributes,
 * never as HTML. The token is only ever sent in the Authorization header.
 */
(function () {
  "use strict";
  if (!window.customElements || customElements.get("demo-dashboard")) {
    return;
  }

  const SVG = "http://www.w3.org/2000/svg";
  const script = document.currentScript;
  const scriptUrl = script && script.src ? script.src : null;
  const DEFAULT_BASE = scriptUrl ? new URL("../", scriptUrl).href : new URL("./", location.href).href;
  const STYLE_URL = scriptUrl ? new URL("demo-dashboard.css", scriptUrl).href : null;
  const money = new Intl.NumberFormat("en-US", { style: "currency", currency: "USD" });

  function el(tag, attrs, text) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      node.setAttribute(name, value);
    }
    if (text !== undefined && text !== null) {
      node.textContent = String(text);
    }
    return node;
  }

  function svg(tag, attrs, text) {
    const node = document.createElementNS(SVG, tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      node.setAttribute(name, String(value));
    }
    if (text !== undefined) {
      node.textContent = String(text);
    }
    return node;
  }

  function shown(value) {
    if (value === null || value === undefined || value === "") {
      return "—";
    }
    return Array.isArray(value) ? value.join(", ") : String(value);
  }

  function duration(seconds) {
    const s = Math.max(0, Math.floor(seconds));
    const m = Math.floor(s / 60);
    return m > 0 ? `${m}m ${String(s % 60).padStart(2, "0")}s` : `${s}s`;
  }

  const compact = new Intl.NumberFormat("en-US", {
    style: "currency",
    currency: "USD",
    notation: "compact",
    maximumFractionDigits: 1,
  });

  function barChart(chart) {
    const points = chart.points || [];
    const width = 640;
    const height = 260;
    const pad = { top: 24, right: 8, bottom: 36, left: 64 };
    const root = svg("svg", {
      viewBox: `0 0 ${width} ${height}`,
      role: "img",
      "aria-label": chart.title || "chart",
      class: "bars",
    });
    if (points.length === 0) {
      root.appendChild(svg("text", { x: width / 2, y: height / 2, "text-anchor": "middle" }, "No data"));
      return root;
    }
    const max = Math.max(...points.map((p) => p.value), 1);
    const slot = (width - pad.left - pad.right) / points.length;
    const plot = height - pad.top - pad.bottom;
    const bottom = pad.top + plot;
    // The value axis: a line, and ticks at 0, half and the largest value.
    root.appendChild(svg("line", { x1: pad.left, y1: pad.top, x2: pad.left, y2: bottom, class: "axis-line y-axis" }));
    for (const fraction of [0, 0.5, 1]) {
      const y = bottom - fraction * plot;
      root.appendChild(svg("line", { x1: pad.left - 4, y1: y, x2: pad.left, y2: y, class: "axis-line tick" }));
      root.appendChild(
        svg("text", { x: pad.left - 8, y: y + 4, "text-anchor": "end", class: "axis tick-label" }, compact.format(max * fraction)),
      );
    }
    root.appendChild(svg("line", { x1: pad.left, y1: bottom, x2: width - pad.right, y2: bottom, class: "axis-line x-axis" }));
    points.forEach((point, i) => {
      const h = Math.max(1, (point.value / max) * plot);
      const x = pad.left + i * slot + slot * 0.1;
      const y = bottom - h;
      const bar = svg("rect", { x, y, width: slot * 0.8, height: h, class: "bar", "data-label": point.label });
      bar.appendChild(svg("title", {}, `${point.label}: ${money.format(point.value)}`));
      root.appendChild(bar);
      root.appendChild(
        svg("text", { x: x + slot * 0.4, y: y - 6, "text-anchor": "middle", class: "value" }, compact.format(point.value)),
      );
      root.appendChild(
        svg("text", { x: x + slot * 0.4, y: height - pad.bottom + 16, "text-anchor": "middle", class: "axis" }, point.label),
      );
    });
    return root;
  }

  class DemoDashboard extends HTMLElement {
    static get observedAttributes() {
      return ["auth-token", "dashboard", "api-base"];
    }

    constructor() {
      super();
      this._seq = 0;
      this._controller = null;
      this._timer = null;
      this._queued = false;
      this._expiresAt = null;
      this._skew = 0;
      this._expiredSent = false;
      const root = this.attachShadow({ mode: "open" });
      if (STYLE_URL) {
        root.appendChild(el("link", { rel: "stylesheet", href: STYLE_URL }));
      }
      const box = el("section", { class: "dd", part: "container" });
      const head = el("header");
      this._title = el("h2", { class: "title" }, "Dashboard");
      this._status = el("span", { class: "status", role: "status" });
      head.append(this._title, this._status);
      this._identity = el("dl", { class: "identity" });
      this._fields = {};
      for (const [key, label] of [
        ["subject", "Viewer"],
        ["tenant", "Tenant"],
        ["region", "Region"],
        ["roles", "Role"],
        ["source", "Token from"],
        ["remaining", "Token life"],
      ]) {
        const value = el("dd", { "data-field": key }, "—");
        const term = el("dt", { "data-term": key }, label);
        this._fields[key] = value;
        this._terms = this._terms || {};
        this._terms[key] = term;
        this._identity.append(term, value);
      }
      this._filter = el("p", { class: "filter", "data-field": "filter" });
      this._error = el("div", { class: "error", role: "alert", hidden: "" });
      this._chart = el("figure", { class: "chart" });
      this._table = el("table", { class: "rows" });
      box.append(head, this._error, this._identity, this._filter, this._chart, this._table);
      root.appendChild(box);
    }

    connectedCallback() {
      this._timer = setInterval(() => this._tick(), 1000);
      this._queue();
    }

    disconnectedCallback() {
      clearInterval(this._timer);
      this._timer = null;
      if (this._controller) {
        this._controller.abort();
      }
    }

    attributeChangedCallback(name, oldValue, newValue) {
      if (oldValue !== newValue && this.isConnected) {
        this._queue();
      }
    }

    /** Fetch the data again (several attribute changes in one task fetch once). */
    refresh() {
      return this._load();
    }

    _queue() {
      if (this._queued) {
        return;
      }
      this._queued = true;
      queueMicrotask(() => {
        this._queued = false;
        this._load();
      });
    }

    _emit(name, detail) {
      this.dispatchEvent(new CustomEvent(`demo-dashboard:${name}`, { detail, bubbles: true, composed: true }));
    }

    _setState(state, message) {
      this.dataset.state = state;
      this._status.textContent = message || "";
    }

    _clear() {
      this._expiresAt = null;
      this._chart.replaceChildren();
      this._table.replaceChildren();
      this._filter.textContent = "";
      for (const value of Object.values(this._fields)) {
        value.textContent = "—";
      }
    }

    _showError(status, code, message) {
      // The data (and identity) belonged to the token that just failed: do not keep showing it.
      this._clear();
      this._error.hidden = false;
      this._error.textContent = `Cannot show this dashboard: ${message} (${code}${status ? `, HTTP ${status}` : ""})`;
      this._setState("error", "error");
      this._emit("error", { status, code, message });
    }

    async _load() {
      const token = (this.getAttribute("auth-token") || "").trim();
      const dashboard = this.getAttribute("dashboard") || "sales";
      const seq = ++this._seq;
      if (this._controller) {
        this._controller.abort();
      }
      if (!token) {
        this._clear();
        this._error.hidden = true;
        this._setState("idle", "waiting for an embed token");
        return;
      }
      const controller = new AbortController();
      this._controller = controller;
      this._setState("loading", "loading…");
      const base = this.getAttribute("api-base") || DEFAULT_BASE;
      // A relative api-base ("/provider") is resolved against the page.
      const root = new URL(base.endsWith("/") ? base : `${base}/`, location.href);
      const url = new URL(`api/dashboard/${encodeURIComponent(dashboard)}`, root);
      let response;
      let body;
      try {
        response = await fetch(url.href, {
          headers: { Authorization: `Bearer ${token}`, Accept: "application/json" },
          cache: "no-store",
          credentials: "omit",
          signal: controller.signal,
        });
        body = await response.json().catch(() => null);
      } catch (err) {
        if (seq === this._seq && !controller.signal.aborted) {
          this._showError(0, "network_error", "the provider could not be reached");
        }
        return;
      }
      if (seq !== this._seq) {
        return; // a newer token or dashboard was set meanwhile
      }
      if (!response.ok || !body) {
        const code = (body && body.error) || "http_error";
        const message = (body && body.message) || response.statusText || "request failed";
        this._showError(response.status, code, message);
        return;
      }
      this._render(body);
    }

    _render(data) {
      const id = data.identity || {};
      this._error.hidden = true;
      this._error.textContent = "";
      this._title.textContent = data.dashboard ? data.dashboard.title : "Dashboard";
      this._fields.subject.textContent = shown(id.subject);
      this._fields.tenant.textContent = shown(id.tenant);
      this._fields.region.textContent = shown(id.region);
      this._fields.roles.textContent = shown(id.roles);
      this._fields.source.textContent = id.source === "provider" ? "provider (API key)" : "host (signed JWT)";
      // Measure remaining life on the server's clock: a skewed browser clock does not matter.
      this._skew = (data.server_time || Date.now() / 1000) - Date.now() / 1000;
      this._expiresAt = id.expires_at || null;
      this._expiredSent = false;
      const filter = data.filter || {};
      this._filter.textContent = `Rows shown: ${filter.reason || "?"} — WHERE ${filter.sql || "?"}`;
      this._filter.dataset.rule = filter.rule || "";
      this._chart.replaceChildren(barChart(data.chart || {}), el("figcaption", {}, data.chart ? data.chart.title : ""));
      this._renderTable(data.table || {}, data.totals || {});
      this._setState("ready", "");
      this._tick();
      this._emit("load", {
        dashboard: data.dashboard ? data.dashboard.id : null,
        subject: id.subject,
        tenant: id.tenant,
        rows: data.totals ? data.totals.rows : 0,
        filter,
      });
    }

    _renderTable(table, totals) {
      const columns = table.columns || [];
      const head = el("thead");
      const headRow = el("tr");
      for (const column of columns) {
        headRow.appendChild(el("th", { scope: "col" }, column.label));
      }
      head.appendChild(headRow);
      const tbody = el("tbody");
      for (const row of table.rows || []) {
        const tr = el("tr");
        for (const column of columns) {
          const value = column.key === "amount" ? money.format(row.amount) : row[column.key];
          tr.appendChild(el("td", { "data-col": column.key }, value));
        }
        tbody.appendChild(tr);
      }
      const caption = el(
        "caption",
        {},
        `Top ${(table.rows || []).length} of ${totals.rows || 0} sales, ${money.format(totals.amount || 0)} in total`,
      );
      this._table.replaceChildren(caption, head, tbody);
    }

    _tick() {
      // countdown="off": the host page shows the token's life itself (one countdown).
      const hidden = this.getAttribute("countdown") === "off";
      this._fields.remaining.hidden = hidden;
      this._terms.remaining.hidden = hidden;
      if (this._expiresAt === null) {
        return;
      }
      const left = this._expiresAt - (Date.now() / 1000 + this._skew);
      if (left > 0) {
        this._fields.remaining.textContent = duration(left);
        return;
      }
      this._fields.remaining.textContent = "expired";
      if (!this._expiredSent) {
        this._expiredSent = true;
        this._setState("expired", "token expired: waiting for a fresh one");
        this._emit("expired", { dashboard: this.getAttribute("dashboard") || "sales" });
      }
    }
  }

  customElements.define("demo-dashboard", DemoDashboard);
})();
