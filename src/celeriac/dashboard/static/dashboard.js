// celeriac dashboard: live updates from /events/stream (SSE) and small SVG charts.
// User data (task args, results, tracebacks) is only ever set with textContent.
"use strict";

(function () {
  const page = document.body.dataset.page;

  function when(ts) {
    if (ts === null || ts === undefined) return "";
    return new Date(ts * 1000).toISOString().replace("T", " ").replace("Z", "");
  }
  function text(value) {
    return value === null || value === undefined ? "" : String(value);
  }
  function setField(root, name, value) {
    root.querySelectorAll('[data-field="' + name + '"]').forEach(function (el) {
      el.textContent = text(value);
    });
  }
  function cell(row, name, value) {
    const td = document.createElement("td");
    td.dataset.field = name;
    td.textContent = text(value);
    row.appendChild(td);
    return td;
  }
  function byData(selector, key, value) {
    const rows = document.querySelectorAll(selector);
    for (const row of rows) if (row.dataset[key] === value) return row;
    return null;
  }

  // -- workers ------------------------------------------------------------------
  function workerRow(w) {
    let row = byData("#workers tbody tr", "hostname", w.hostname);
    if (!row) {
      row = document.createElement("tr");
      row.dataset.hostname = w.hostname;
      ["hostname", "status", "active", "processed", "loadavg", "pool", "queues", "sw",
       "heartbeat"].forEach(function (f) { cell(row, f, ""); });
      document.querySelector("#workers tbody").appendChild(row);
      const empty = document.getElementById("no-workers");
      if (empty) empty.hidden = true;
    }
    setField(row, "hostname", w.hostname);
    setField(row, "status", w.status ? "online" : "offline");
    row.querySelector('[data-field="status"]').className = w.status ? "online" : "offline";
    setField(row, "active", w.active);
    setField(row, "processed", w.processed);
    setField(row, "loadavg", (w.loadavg || []).join(", "));
    if (w.pool) setField(row, "pool", text(w.pool.implementation) + " x" + text(w.pool["max-concurrency"]));
    if (w.queues && w.queues.length) setField(row, "queues", w.queues.join(", "));
    setField(row, "sw", text(w.sw_ident) + " " + text(w.sw_ver));
    setField(row, "heartbeat", when(w.heartbeat));
  }

  // -- tasks --------------------------------------------------------------------
  function filterAccepts(t) {
    const form = document.getElementById("filters");
    if (!form) return true;
    const f = new FormData(form);
    const state = f.get("state"), name = f.get("name"), worker = f.get("worker");
    const search = (f.get("search") || "").toLowerCase();
    if (state && t.state !== state) return false;
    if (name && t.name !== name) return false;
    if (worker && t.worker !== worker) return false;
    if (search) {
      const hay = [t.uuid, text(t.args), text(t.kwargs)].map(function (s) { return s.toLowerCase(); });
      if (!hay.some(function (s) { return s.includes(search); })) return false;
    }
    return true;
  }
  function taskRow(t) {
    let row = byData("#tasks tbody tr", "uuid", t.uuid);
    if (!row) {
      if (!filterAccepts(t)) return;
      row = document.createElement("tr");
      row.dataset.uuid = t.uuid;
      const td = document.createElement("td");
      const link = document.createElement("a");
      link.dataset.field = "uuid";
      link.href = "/task/" + encodeURIComponent(t.uuid);
      td.appendChild(link);
      row.appendChild(td);
      ["name", "state", "args", "kwargs", "result", "received", "runtime", "worker"]
        .forEach(function (f) { cell(row, f, ""); });
      const body = document.querySelector("#tasks tbody");
      body.insertBefore(row, body.firstChild);
      const empty = document.getElementById("no-tasks");
      if (empty) empty.hidden = true;
    }
    setField(row, "uuid", t.uuid);
    setField(row, "name", t.name);
    setField(row, "state", t.state);
    row.querySelector('[data-field="state"]').className = "state " + t.state;
    setField(row, "args", t.args);
    setField(row, "kwargs", t.kwargs);
    setField(row, "result", t.result !== null && t.result !== undefined ? t.result : t.exception);
    setField(row, "received", when(t.received || t.sent));
    setField(row, "runtime", t.runtime === null || t.runtime === undefined ? "" : t.runtime.toFixed(3) + " s");
    setField(row, "worker", t.worker);
  }
  const TIMELINE = ["sent", "received", "started", "retried", "succeeded", "failed", "revoked", "rejected"];
  function taskDetail(t) {
    const root = document.getElementById("task");
    if (!root || root.dataset.uuid !== t.uuid) return;
    ["name", "state", "worker", "args", "kwargs", "result", "exception", "runtime", "retries",
     "eta", "expires", "root_id", "parent_id", "traceback"].forEach(function (f) { setField(root, f, t[f]); });
    document.getElementById("task-state").className = "state " + t.state;
    const list = document.getElementById("timeline");
    list.textContent = "";
    TIMELINE.filter(function (k) { return t[k] !== null && t[k] !== undefined; })
      .sort(function (a, b) { return t[a] - t[b]; })
      .forEach(function (k) {
        const li = document.createElement("li");
        const kind = document.createElement("span");
        kind.className = "kind";
        kind.textContent = k;
        const time = document.createElement("time");
        time.textContent = when(t[k]);
        li.appendChild(kind);
        li.appendChild(document.createTextNode(" "));
        li.appendChild(time);
        list.appendChild(li);
      });
    if (["SUCCESS", "FAILURE", "REVOKED"].includes(t.state)) {
      ["revoke", "terminate"].forEach(function (id) {
        const b = document.getElementById(id);
        if (b) b.disabled = true;
      });
    }
  }

  // -- live stream --------------------------------------------------------------
  function connect() {
    if (!window.EventSource || page === "charts" || page === "queues") return;
    const badge = document.getElementById("live");
    const source = new EventSource("/events/stream");
    source.onopen = function () { badge.textContent = "live"; badge.className = "live on"; };
    source.onerror = function () { badge.textContent = "reconnecting"; badge.className = "live off"; };
    source.onmessage = function (ev) {
      const msg = JSON.parse(ev.data);
      if (msg.type === "resync") { window.location.reload(); return; }
      if (msg.worker && page === "workers") workerRow(msg.worker);
      if (msg.task && page === "tasks") taskRow(msg.task);
      if (msg.task && page === "task") taskDetail(msg.task);
    };
  }

  // -- charts -------------------------------------------------------------------
  const SVG = "http://www.w3.org/2000/svg";
  function draw(svg, points, series) {
    while (svg.firstChild) svg.removeChild(svg.firstChild);
    const W = 800, H = 200, L = 50, B = 20, T = 10;
    let max = 0;
    series.forEach(function (s) {
      points.forEach(function (p) { if (p[s.key] !== null && p[s.key] > max) max = p[s.key]; });
    });
    if (max <= 0) max = 1;
    const t0 = points.length ? points[0].t : 0;
    const t1 = points.length ? points[points.length - 1].t : 1;
    const span = Math.max(t1 - t0, 1);
    function x(t) { return L + (W - L - 10) * (t - t0) / span; }
    function y(v) { return H - B - (H - B - T) * v / max; }
    function add(tag, attrs, content) {
      const el = document.createElementNS(SVG, tag);
      Object.keys(attrs).forEach(function (k) { el.setAttribute(k, attrs[k]); });
      if (content !== undefined) el.textContent = content;
      svg.appendChild(el);
      return el;
    }
    add("line", {x1: L, y1: H - B, x2: W - 10, y2: H - B, class: "axis"});
    add("line", {x1: L, y1: T, x2: L, y2: H - B, class: "axis"});
    add("text", {x: L - 4, y: T + 10, "text-anchor": "end", class: "label"}, max.toPrecision(3));
    add("text", {x: L - 4, y: H - B, "text-anchor": "end", class: "label"}, "0");
    if (points.length) {
      add("text", {x: L, y: H - 4, class: "label"}, when(t0).slice(11, 19));
      add("text", {x: W - 10, y: H - 4, "text-anchor": "end", class: "label"}, when(t1).slice(11, 19));
    }
    series.forEach(function (s, i) {
      const coords = points.filter(function (p) { return p[s.key] !== null; })
        .map(function (p) { return x(p.t).toFixed(1) + "," + y(p[s.key]).toFixed(1); });
      if (coords.length) add("polyline", {points: coords.join(" "), class: "series s" + i});
      add("text", {x: L + 10 + i * 160, y: T + 10, class: "legend s" + i}, s.label);
    });
  }
  function charts() {
    fetch("/api/charts", {headers: {"Accept": "application/json"}})
      .then(function (r) { return r.json(); })
      .then(function (data) {
        draw(document.getElementById("chart-throughput"), data.points,
             [{key: "throughput", label: "finished/s"}]);
        draw(document.getElementById("chart-latency"), data.points,
             [{key: "runtime_avg", label: "runtime avg"}, {key: "wait_avg", label: "wait avg"}]);
      })
      .catch(function () {});
  }

  if (page === "charts") { charts(); setInterval(charts, 5000); }
  connect();
})();
