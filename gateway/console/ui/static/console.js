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
      const payload = { sql: $("sql").value, purpose: $("purpose").value };
      const caseRef = $("case-ref").value.trim();
      if (caseRef) payload.case_ref = caseRef;
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
    } catch (e) {
      setStatus(e.name === "AbortError" ? "Cancelled after " + rows + " rows." : "The query failed: " + e.message);
    } finally {
      running = null;
      $("run").disabled = false;
      $("cancel").disabled = true;
    }
  }

  function cancel() {
    if (running) running.abort();
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("run").addEventListener("click", run);
    $("cancel").addEventListener("click", cancel);
    $("purpose").addEventListener("change", loadCatalog);
    $("sql").addEventListener("keydown", (e) => {
      if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
        e.preventDefault();
        run();
      }
    });
    loadCatalog();
  });
})();
