// Draws the overview's charts from the app's own /api/ endpoints with the locally served Plotly.
"use strict";
(function () {
  const COLORS = { ok: "#16a34a", error: "#dc2626", aborted: "#d97706", bar: "#6366f1", line: "#0ea5e9" };
  const CONFIG = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };
  const FILTER_OF = { model: "model", tenant_id: "tenant", username: "user", status: "status" };
  const base = (extra) => Object.assign({
    margin: { l: 48, r: 16, t: 8, b: 40 }, height: 260, showlegend: true,
    legend: { orientation: "h", y: -0.22 }, font: { family: "system-ui, sans-serif", size: 12 },
    paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
  }, extra || {});
  const label = (v) => (v === null || v === undefined ? "(none)" : String(v));
  // Local wall time as the server computed it (the offset dropped), so the axis shows the chosen zone.
  function times(rows) {
    const hourly = rows.some((r) => r.start.slice(11, 16) !== "00:00");
    return rows.map((r) => (hourly ? r.start.slice(0, 16).replace("T", " ") : r.start.slice(0, 10)));
  }
  const timeAxis = (x) => (x.length && x[0].length === 10
    ? { type: "date", dtick: 86400000, tickformat: "%b %-d" } : { type: "date" });

  function message(el, cls, text) {
    el.replaceChildren();
    const p = document.createElement("p");
    p.className = cls;
    p.textContent = text;
    el.appendChild(p);
  }

  const draw = {
    volume(el, rows) {
      const x = times(rows);
      const ok = rows.map((r) => r.interactions - r.errors - r.aborted);
      return [[
        { type: "bar", name: "ok", x, y: ok, marker: { color: COLORS.ok } },
        { type: "bar", name: "error", x, y: rows.map((r) => r.errors), marker: { color: COLORS.error } },
        { type: "bar", name: "aborted", x, y: rows.map((r) => r.aborted), marker: { color: COLORS.aborted } },
      ], base({ barmode: "stack", xaxis: timeAxis(x), yaxis: { title: { text: "interactions" } } }),
      rows.some((r) => r.interactions)];
    },
    tokens(el, rows) {
      const x = times(rows);
      return [[
        { type: "bar", name: "prompt tokens", x, y: rows.map((r) => r.prompt_tokens), marker: { color: "#a5b4fc" } },
        { type: "bar", name: "completion tokens", x, y: rows.map((r) => r.completion_tokens), marker: { color: COLORS.bar } },
        { type: "scatter", mode: "lines+markers", name: "cost (USD)", x, y: rows.map((r) => r.cost_usd), yaxis: "y2",
          line: { color: COLORS.line }, connectgaps: false },
      ], base({ barmode: "stack", xaxis: timeAxis(x), yaxis: { title: { text: "tokens" } }, margin: { l: 56, r: 72, t: 8, b: 40 },
                yaxis2: { title: { text: "USD" }, overlaying: "y", side: "right", rangemode: "tozero", tickprefix: "$",
                          showgrid: false } }),
      rows.some((r) => r.prompt_tokens || r.completion_tokens)];
    },
    latency(el, rows) {
      const x = rows.map((r) => label(r.value));
      // percentiles merged from the rollups' sketches are within 1 % of the exact ones: say so
      const approx = rows.some((r) => r.approx) ? " ±1 %" : "";
      return [[
        { type: "bar", name: "duration p50" + approx, x, y: rows.map((r) => r.duration_ms.p50), marker: { color: "#a5b4fc" } },
        { type: "bar", name: "duration p95" + approx, x, y: rows.map((r) => r.duration_ms.p95), marker: { color: COLORS.bar } },
        { type: "bar", name: "first token p50" + approx, x, y: rows.map((r) => r.ttft_ms.p50), marker: { color: "#7dd3fc" } },
        { type: "bar", name: "first token p95" + approx, x, y: rows.map((r) => r.ttft_ms.p95), marker: { color: COLORS.line } },
      ], base({ barmode: "group", yaxis: { title: { text: "ms" } } }), rows.length > 0];
    },
    scores(el, rows) {
      const digits = rows.length && rows[0].high - rows[0].low < 1 ? 2 : 0;
      const x = rows.map((r) => r.low === r.high ? String(r.low) : `${r.low.toFixed(digits)}–${r.high.toFixed(digits)}`);
      return [[{ type: "bar", name: "scored interactions", x, y: rows.map((r) => r.count), marker: { color: COLORS.bar } }],
        base({ showlegend: false, xaxis: { type: "category", tickangle: 0 }, yaxis: { title: { text: "interactions" } } }),
        rows.some((r) => r.count)];
    },
    breakdown(el, rows) {
      const top = rows.slice(0, 12).reverse();
      const trace = { type: "bar", orientation: "h", y: top.map((r) => label(r.value)), x: top.map((r) => r.interactions),
        marker: { color: COLORS.bar }, customdata: top.map((r) => r.value),
        hovertemplate: "%{y}: %{x} interactions<extra></extra>" };
      return [[trace], base({ showlegend: false, margin: { l: 120, r: 16, t: 8, b: 36 }, xaxis: { title: { text: "interactions" } } }),
        rows.length > 0];
    },
    cost(el, rows) {
      const priced = rows.filter((r) => r.cost_usd !== null);
      return [[{ type: "bar", x: priced.map((r) => label(r.value)), y: priced.map((r) => r.cost_usd), marker: { color: COLORS.line },
        hovertemplate: "%{x}: $%{y:.6f}<extra></extra>" }], base({ showlegend: false, yaxis: { title: { text: "USD" } } }),
        priced.length > 0, "No model in this period has a known price (cost is 'unknown', never guessed)."];
    },
  };

  // One request per distinct URL: two charts draw the time series, and the latency and cost charts
  // share one breakdown by model, so the overview asks the server 6 times, not 8 (bench/read_side.py).
  const requests = new Map();
  function getJSON(src) {
    if (!requests.has(src)) {
      requests.set(src, (async () => {
        const response = await fetch(src, { headers: { Accept: "application/json" } });
        const body = await response.json();
        if (!response.ok) throw new Error(body.error || response.statusText);
        return body;
      })().catch((err) => { requests.delete(src); throw err; }));   // a failed chart may be asked again
    }
    return requests.get(src);
  }

  async function load(el) {
    message(el, "loading", "Loading…");
    let rows;
    try {
      rows = await getJSON(el.dataset.src);
    } catch (err) {
      message(el, "failed", "Could not load this chart: " + err.message);
      return;
    }
    const [traces, layout, any, empty] = draw[el.dataset.chart](el, rows);
    if (!any) { message(el, "nodata", empty || "No data for this period."); return; }
    el.replaceChildren();
    await Plotly.newPlot(el, traces, layout, CONFIG);
    el.dataset.drawn = "true";
    const field = el.dataset.field;
    if (field) {
      el.on("plotly_click", (event) => {
        const value = event.points[0].customdata;
        if (value === null || value === undefined) return;
        const params = new URLSearchParams(window.location.search);
        params.delete("by");
        params.set(FILTER_OF[field] || "f." + field, value);
        window.location.href = "/interactions?" + params.toString();
      });
    }
  }

  document.querySelectorAll("[data-chart]").forEach(load);
  const select = document.getElementById("field-select");
  if (select) {
    select.addEventListener("change", () => {
      const chart = document.getElementById("field-chart");
      chart.dataset.field = select.value;
      chart.dataset.src = chart.dataset.base + "&by=" + encodeURIComponent(select.value);
      if (chart.dataset.drawn) { Plotly.purge(chart); delete chart.dataset.drawn; }
      load(chart);
    });
  }
})();
