// The gateway's web console: the catalog, a SQL editor and a streaming
// results grid over the HTTP API. Every value from the gateway is set as
// text (textContent), never as markup.
"use strict";

(function () {
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const $ = (id) => document.getElementById(id);
  const shownRows = 1000; // the grid shows the first rows; the count goes on

  function el(tag, text, cls) {
    const e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }

  function api(path, opts) {
    opts = opts || {};
    opts.credentials = "same-origin";
    opts.headers = Object.assign({ "X-CSRF-Token": csrf }, opts.headers || {});
    return fetch(path, opts);
  }

  async function errorOf(resp) {
    try {
      const body = await resp.json();
      if (body && body.error) return body.error.message + " (" + body.error.code + ", HTTP " + resp.status + ")";
    } catch (e) { /* not JSON */ }
    return "HTTP " + resp.status;
  }

  // --- catalog ---------------------------------------------------------

  function insertName(name) {
    const ta = $("sql");
    const start = ta.selectionStart, end = ta.selectionEnd;
    ta.value = ta.value.slice(0, start) + name + ta.value.slice(end);
    ta.selectionStart = ta.selectionEnd = start + name.length;
    ta.focus();
  }

  function nameButton(name) {
    const b = el("button", name, "name");
    b.type = "button";
    b.title = "Insert " + name + " into the query";
    b.addEventListener("click", () => insertName(name));
    return b;
  }

  // access sums up what the policy does to a column across councils.
  function accessText(access) {
    if (!access) return "";
    const byKind = {};
    for (const [council, kind] of Object.entries(access)) {
      (byKind[kind] = byKind[kind] || []).push(council);
    }
    const kinds = Object.keys(byKind);
    if (kinds.length === 1) return kinds[0];
    return kinds.map((k) => k + " (" + byKind[k].join(", ") + ")").join("; ");
  }

  function columnList(columns) {
    const ul = el("ul", null, "columns");
    for (const c of columns) {
      const li = el("li");
      li.appendChild(nameButton(c.name));
      li.appendChild(el("span", c.type, "type"));
      const a = accessText(c.access);
      if (a) li.appendChild(el("span", a, "access access-" + a.split(" ")[0]));
      if (c.description) li.appendChild(el("p", c.description, "desc"));
      ul.appendChild(li);
    }
    return ul;
  }

  function renderCatalog(cat) {
    const tree = $("tree");
    tree.replaceChildren();
    const datasets = cat.standard_datasets || [];
    if (datasets.length) {
      tree.appendChild(el("h3", "Standard datasets"));
      for (const d of datasets) {
        const det = el("details", null, "dataset");
        det.dataset.name = d.sql_name;
        const sum = el("summary");
        sum.appendChild(nameButton(d.sql_name));
        det.appendChild(sum);
        if (d.description) det.appendChild(el("p", d.description, "desc"));
        const councils = (d.councils || []).map((m) => m.council || m.source);
        det.appendChild(el("p", "Councils: " + (councils.length ? councils.join(", ") : "none for this purpose"), "councils"));
        for (const x of d.excluded_councils || []) {
          det.appendChild(el("p", "Left out: " + (x.council || x.source) + ": " + x.reason, "excluded"));
        }
        det.appendChild(columnList(d.columns || []));
        tree.appendChild(det);
      }
    }
    const sources = (cat.sources || []).filter((s) => (s.tables || []).length);
    if (sources.length) {
      tree.appendChild(el("h3", "Councils' own tables"));
      for (const s of sources) {
        const det = el("details", null, "source");
        det.appendChild(el("summary", s.id + " · " + s.council));
        for (const t of s.tables) {
          const td = el("details", null, "table");
          const ts = el("summary");
          ts.appendChild(nameButton(t.sql_name));
          td.appendChild(ts);
          td.appendChild(columnList(t.columns || []));
          det.appendChild(td);
        }
        tree.appendChild(det);
      }
    }
    if (!datasets.length && !sources.length) tree.appendChild(el("p", "Nothing to read for this purpose."));
  }

  async function loadCatalog() {
    const status = $("catalog-status");
    status.textContent = "Loading…";
    const purpose = $("purpose").value;
    const resp = await api("/v1/catalog" + (purpose ? "?purpose=" + encodeURIComponent(purpose) : ""));
    if (!resp.ok) {
      status.textContent = "The catalog could not be read: " + (await errorOf(resp));
      return;
    }
    renderCatalog(await resp.json());
    status.textContent = "";
  }

  // --- results -----------------------------------------------------------

  // RowStream splits the JSON result as it arrives: the head (query id and
  // columns), each row of "rows" as soon as it is complete, and the tail
  // (stats, warnings, an error after rows).
  class RowStream {
    constructor(onHead, onRow) {
      this.buf = "";
      this.phase = "head";
      this.pos = 0;
      this.depth = 0;
      this.inString = false;
      this.escape = false;
      this.start = -1;
      this.onHead = onHead;
      this.onRow = onRow;
      this.tail = "";
    }
    push(text) {
      this.buf += text;
      if (this.phase === "head") {
        const i = this.buf.indexOf('"rows":[');
        if (i < 0) return;
        this.onHead(JSON.parse(this.buf.slice(0, i) + '"rows":[]}'));
        this.buf = this.buf.slice(i + 8);
        this.phase = "rows";
      }
      if (this.phase === "rows") this.scan();
      if (this.phase === "tail") {
        this.tail += this.buf;
        this.buf = "";
      }
    }
    scan() {
      const b = this.buf;
      let i = this.pos;
      for (; i < b.length; i++) {
        const ch = b[i];
        if (this.inString) {
          if (this.escape) this.escape = false;
          else if (ch === "\\") this.escape = true;
          else if (ch === '"') this.inString = false;
          continue;
        }
        if (ch === '"') { this.inString = true; continue; }
        if (ch === "[" || ch === "{") {
          if (this.depth === 0) this.start = i;
          this.depth++;
        } else if (ch === "]" || ch === "}") {
          if (this.depth === 0) { // the end of "rows"
            this.phase = "tail";
            this.buf = b.slice(i + 1);
            this.pos = 0;
            return;
          }
          this.depth--;
          if (this.depth === 0) this.onRow(JSON.parse(b.slice(this.start, i + 1)));
        }
      }
      // keep only the row being read
      if (this.depth > 0) {
        this.buf = b.slice(this.start);
        this.pos = i - this.start;
        this.start = 0;
      } else {
        this.buf = "";
        this.pos = 0;
      }
    }
    end() {
      const t = this.tail.trim();
      if (!t || t === "}") return {};
      return JSON.parse("{" + t.replace(/^,/, ""));
    }
  }

  function cellText(v) {
    if (v === null) return null;
    if (typeof v === "object") return JSON.stringify(v);
    return String(v);
  }

  let running = null;
  const chartRows = 5000; // the rows a chart is drawn from
  let last = { columns: [], rows: [] }; // the last result, for charts

  function setStatus(text) { $("status").textContent = text; }

  function showWarnings(list) {
    const w = $("warnings");
    w.replaceChildren();
    for (const text of list || []) w.appendChild(el("p", text, "warning"));
  }

  function showStats(stats) {
    const body = $("stats").tBodies[0];
    body.replaceChildren();
    for (const s of (stats && stats.sources) || []) {
      const tr = el("tr");
      for (const v of [s.source, s.table, s.rows === undefined ? "" : s.rows, s.elapsed_ms === undefined ? "" : s.elapsed_ms, s.pushed, s.not_pushed || ""]) {
        tr.appendChild(el("td", v));
      }
      body.appendChild(tr);
    }
    $("stats-box").open = true;
  }

  async function run() {
    if (running) return;
    const grid = $("grid");
    const head = grid.tHead, body = grid.tBodies[0];
    head.replaceChildren();
    body.replaceChildren();
    showWarnings([]);
    $("stats").tBodies[0].replaceChildren();
    const controller = new AbortController();
    running = controller;
    $("run").disabled = true;
    $("cancel").disabled = false;
    const started = performance.now();
    let rows = 0;
    let numeric = [];
    setStatus("Running…");
    try {
      const payload = request();
      const resp = await api("/v1/query", {
        method: "POST",
        headers: { "Content-Type": "application/json", "Accept": "application/json" },
        body: JSON.stringify(payload),
        signal: controller.signal,
      });
      if (!resp.ok) {
        setStatus("The query failed: " + (await errorOf(resp)));
        return;
      }
      const stream = new RowStream((h) => {
        numeric = h.columns.map((c) => /^(TINYINT|SMALLINT|INTEGER|BIGINT|HUGEINT|UTINYINT|USMALLINT|UINTEGER|UBIGINT|FLOAT|DOUBLE|DECIMAL)/.test(c.type));
        last = { columns: h.columns, numeric: numeric, rows: [] };
        const tr = el("tr");
        for (const c of h.columns) {
          const th = el("th", c.name);
          th.scope = "col";
          th.title = c.type;
          tr.appendChild(th);
        }
        head.appendChild(tr);
      }, (row) => {
        rows++;
        if (last.rows.length < chartRows) last.rows.push(row);
        if (rows <= shownRows) {
          const tr = el("tr");
          row.forEach((v, i) => {
            const t = cellText(v);
            tr.appendChild(t === null ? el("td", "NULL", "null") : el("td", t, numeric[i] ? "num" : undefined));
          });
          body.appendChild(tr);
        }
        if (rows % 500 === 0) setStatus(rows + " rows so far…");
      });
      const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        stream.push(value);
      }
      const tail = stream.end();
      const ms = Math.round(performance.now() - started);
      let text = rows + (rows === 1 ? " row" : " rows") + " in " + ms + " ms";
      if (rows > shownRows) text += " (the grid shows the first " + shownRows + ")";
      if (tail.error) text += "; then the query failed: " + tail.error.message;
      if (tail.stats && tail.stats.truncated) text += "; cut at the row cap of " + tail.stats.row_cap;
      setStatus(text);
      showWarnings(tail.warnings);
      showStats(tail.stats);
      chartChoices();
    } catch (e) {
      setStatus(e.name === "AbortError" ? "Cancelled after " + rows + " rows." : "The query failed: " + e.message);
    } finally {
      loadHistory(); // a failed or cancelled query is in it too
      running = null;
      $("run").disabled = false;
      $("cancel").disabled = true;
    }
  }

  function cancel() {
    if (running) running.abort();
  }

  function request() {
    const payload = { sql: $("sql").value, purpose: $("purpose").value };
    const caseRef = $("case-ref").value.trim();
    if (caseRef) payload.case_ref = caseRef;
    return payload;
  }

  // --- history -----------------------------------------------------------

  async function loadHistory() {
    const body = $("history").tBodies[0];
    const resp = await api("/v1/history?limit=50");
    if (!resp.ok) {
      body.replaceChildren(el("tr"));
      body.firstChild.appendChild(el("td", "The history could not be read: " + (await errorOf(resp))));
      return;
    }
    const h = await resp.json();
    body.replaceChildren();
    for (const e of h.entries || []) {
      const tr = el("tr");
      tr.appendChild(el("td", new Date(e.time).toLocaleString()));
      tr.appendChild(el("td", e.door));
      tr.appendChild(el("td", e.outcome, "outcome-" + e.outcome));
      tr.appendChild(el("td", e.purpose || ""));
      tr.appendChild(el("td", e.rows));
      tr.appendChild(el("td", e.sql.length > 200 ? e.sql.slice(0, 199) + "…" : e.sql, "sql"));
      const td = el("td");
      if (e.action === "query" && e.sql) {
        const b = el("button", "Run again", "secondary");
        b.type = "button";
        b.addEventListener("click", () => {
          $("sql").value = e.sql;
          const purposes = Array.from($("purpose").options).map((o) => o.value);
          if (e.purpose && purposes.includes(e.purpose)) $("purpose").value = e.purpose;
          $("case-ref").value = e.case_ref || "";
          run();
        });
        td.appendChild(b);
      }
      tr.appendChild(td);
      body.appendChild(tr);
    }
    if (!body.children.length) {
      const tr = el("tr");
      tr.appendChild(el("td", "No requests yet."));
      body.appendChild(tr);
    }
  }

  // --- EXPLAIN -----------------------------------------------------------

  async function explain() {
    const box = $("plan");
    box.replaceChildren(el("p", "Planning…"));
    $("explain-box").open = true;
    const resp = await api("/v1/explain", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(request()),
    });
    if (!resp.ok) {
      box.replaceChildren(el("p", "EXPLAIN failed: " + (await errorOf(resp)), "warning"));
      return;
    }
    const ex = await resp.json();
    box.replaceChildren();
    if (ex.allowed === false) {
      box.appendChild(el("p", "The policy refuses this query: " + (ex.error || ""), "warning"));
    }
    const how = { "duckdb": "Each council's rows are read and DuckDB runs the rest", "aggregate split": "Each council's store computes its share of the aggregate; DuckDB combines them", "whole query": "The store answers the whole query; its rows are the answer" };
    box.appendChild(el("p", "Plan: " + ex.plan + (how[ex.plan] ? " (" + how[ex.plan] + ")" : ""), "plan-kind"));
    for (const tb of ex.tables || []) {
      const sec = el("section", null, "plan-table");
      sec.appendChild(el("h4", tb.source + "." + tb.table + (tb.allowed ? "" : " (denied)")));
      if (tb.row_filter) sec.appendChild(el("p", "Row filter of the policy: " + tb.row_filter));
      if (tb.statement) {
        sec.appendChild(el("p", "Sent to the store" + (tb.pushed ? " (" + tb.pushed + ")" : "") + ":"));
        sec.appendChild(el("pre", tb.statement));
        if ((tb.parameters || []).length) sec.appendChild(el("p", "Parameters: " + JSON.stringify(tb.parameters)));
      }
      for (const n of tb.not_pushed || []) sec.appendChild(el("p", "Not pushed: " + n, "note"));
      box.appendChild(sec);
    }
    if (ex.duckdb_sql) {
      box.appendChild(el("h4", "What stays in the gateway (DuckDB)"));
      box.appendChild(el("pre", ex.duckdb_sql));
      if (ex.duckdb_plan) box.appendChild(el("pre", ex.duckdb_plan, "duckdb-plan"));
    }
  }

  // --- charts ------------------------------------------------------------

  function options(sel, names, blank) {
    sel.replaceChildren();
    if (blank) sel.appendChild(el("option", "(none)"));
    for (const [i, n] of names) {
      const o = el("option", n);
      o.value = String(i);
      sel.appendChild(o);
    }
  }

  function chartChoices() {
    const cols = last.columns.map((c, i) => [i, c.name]);
    const measures = cols.filter(([i]) => last.numeric[i]);
    const cats = cols.filter(([i]) => !last.numeric[i]);
    options($("chart-x"), cats.length ? cats : cols, false);
    options($("chart-y1"), measures, false);
    options($("chart-y2"), measures, true);
    if (measures.length > 1) $("chart-y2").selectedIndex = 0;
    $("chart").replaceChildren();
  }

  const svgNS = "http://www.w3.org/2000/svg";
  function svg(tag, attrs, text) {
    const e = document.createElementNS(svgNS, tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, String(v));
    if (text !== undefined) e.textContent = String(text);
    return e;
  }

  function drawChart() {
    const box = $("chart");
    box.replaceChildren();
    const x = parseInt($("chart-x").value, 10);
    const ys = [parseInt($("chart-y1").value, 10), parseInt($("chart-y2").value, 10)].filter((i) => !isNaN(i));
    if (isNaN(x) || !ys.length || !last.rows.length) {
      box.appendChild(el("p", "Run a query with a category or date column and a numeric one first."));
      return;
    }
    const rows = last.rows.slice(0, 200);
    const vals = rows.map((r) => ys.map((i) => (r[i] === null ? 0 : Number(r[i]))));
    let max = 0, min = 0;
    for (const v of vals.flat()) { max = Math.max(max, v); min = Math.min(min, v); }
    if (max === min) max = min + 1;
    const W = 900, H = 320, L = 80, B = 90, T = 20, R = 20;
    const pw = W - L - R, ph = H - T - B;
    const yOf = (v) => T + ph - ((v - min) / (max - min)) * ph;
    const s = svg("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", class: "chart-svg" });
    const colours = ["#0b5cad", "#c05800"];
    // axes and grid
    for (let k = 0; k <= 4; k++) {
      const v = min + ((max - min) * k) / 4, y = yOf(v);
      s.appendChild(svg("line", { x1: L, x2: W - R, y1: y, y2: y, class: "grid" }));
      s.appendChild(svg("text", { x: L - 6, y: y + 4, "text-anchor": "end", class: "tick" }, Number(v.toPrecision(4)).toLocaleString()));
    }
    s.appendChild(svg("line", { x1: L, x2: L, y1: T, y2: T + ph, class: "axis" }));
    const step = pw / rows.length;
    rows.forEach((r, j) => {
      const cx = L + step * j + step / 2;
      if (rows.length <= 40 || j % Math.ceil(rows.length / 40) === 0) {
        const label = cellText(r[x]) === null ? "NULL" : cellText(r[x]);
        s.appendChild(svg("text", { x: cx, y: T + ph + 12, transform: `rotate(45 ${cx} ${T + ph + 12})`, class: "tick" }, label.length > 18 ? label.slice(0, 17) + "…" : label));
      }
    });
    if ($("chart-kind").value === "bar") {
      const bw = Math.max(1, (step * 0.8) / ys.length);
      rows.forEach((r, j) => {
        vals[j].forEach((v, k) => {
          const x0 = L + step * j + step * 0.1 + bw * k, y0 = yOf(Math.max(v, 0)), y1 = yOf(Math.min(v, 0));
          const rect = svg("rect", { x: x0, y: y0, width: bw, height: Math.max(0, y1 - y0), fill: colours[k] });
          rect.appendChild(svg("title", {}, (cellText(r[x]) || "NULL") + ": " + v));
          s.appendChild(rect);
        });
      });
    } else {
      ys.forEach((_, k) => {
        const pts = rows.map((r, j) => `${L + step * j + step / 2},${yOf(vals[j][k])}`).join(" ");
        s.appendChild(svg("polyline", { points: pts, fill: "none", stroke: colours[k], "stroke-width": 2 }));
      });
    }
    ys.forEach((i, k) => {
      s.appendChild(svg("rect", { x: L + 10 + k * 220, y: 2, width: 12, height: 12, fill: colours[k] }));
      s.appendChild(svg("text", { x: L + 28 + k * 220, y: 12, class: "legend" }, last.columns[i].name));
    });
    box.appendChild(s);
    if (last.rows.length > rows.length) box.appendChild(el("p", "The chart shows the first " + rows.length + " rows.", "note"));
  }

  // --- downloads and snippets ---------------------------------------------

  function shellQuote(s) { return "'" + s.replace(/'/g, "'\\''") + "'"; }

  function snippets() {
    const req = request();
    const body = JSON.stringify(req);
    $("snippet-curl").textContent = "curl -s " + location.origin + "/v1/query -H \"Authorization: Bearer $GATEWAY_KEY\" -H 'Accept: text/csv' \\\n  -d " + shellQuote(body);
    const pg = document.querySelector('meta[name="postgres-door"]');
    $("snippet-psql").textContent = pg && pg.content
      ? "PGPASSWORD=\"$GATEWAY_KEY\" psql " + shellQuote("host=" + pg.content.replace(/:(\d+)$/, " port=$1") + " user=me dbname=" + req.purpose) + " -c " + shellQuote(req.sql)
      : "(the gateway serves no PostgreSQL door)";
    $("snippet-python").textContent = "import os, requests\n\nr = requests.post(" + JSON.stringify(location.origin + "/v1/query") + ",\n    headers={\"Authorization\": \"Bearer \" + os.environ[\"GATEWAY_KEY\"]},\n    json=" + body + ")\nr.raise_for_status()\nprint(r.json()[\"rows\"])";
  }

  function fillDownload() {
    const f = $("download"), req = request();
    f.elements.sql.value = req.sql;
    f.elements.purpose.value = req.purpose;
    f.elements.case_ref.value = req.case_ref || "";
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("run").addEventListener("click", run);
    $("cancel").addEventListener("click", cancel);
    $("explain").addEventListener("click", explain);
    $("chart-draw").addEventListener("click", drawChart);
    $("download").addEventListener("submit", fillDownload);
    $("export-box").addEventListener("toggle", snippets);
    for (const id of ["sql", "purpose", "case-ref"]) $(id).addEventListener("input", snippets);
    $("purpose").addEventListener("change", loadCatalog);
    $("sql").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        run();
      }
    });
    loadCatalog();
    loadHistory();
  });
})();
