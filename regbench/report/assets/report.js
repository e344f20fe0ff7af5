/* report.html: the tables (DataTables, from the itables package) and the charts (plotly.js)
   of a regbench report, drawn from the JSON the page embeds (regbench/report/html_data.py).
   Nothing is fetched: every asset is inside the page. When everything is drawn,
   window.regbenchReady holds the time since navigation start (ms), and <html> gets
   data-ready="true". */
(function () {
  "use strict";

  // performance marks of the stages (the timing tool prints them)
  performance.mark("rb-script");
  const DATA = JSON.parse(document.getElementById("rb-data").textContent);
  const C = DATA.cells;
  const L = C.labels;
  const N = C.id.length;
  const PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                   "#e377c2", "#bcbd22", "#17becf", "#393b79"];
  const NA = "\u2014";
  const state = {
    filter: {task: "", arch: "", family: "", status: ""},
    tables: [],
    byId: {},
    setting: null,
    cell: null,
    curveLines: null,
  };

  // -- small helpers ------------------------------------------------------------------------
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined) continue;
      if (k === "text") node.textContent = v;
      else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
      else node.setAttribute(k, v);
    }
    for (const c of children) if (c !== null && c !== undefined) node.append(c);
    return node;
  }

  function fmt(v, digits) {
    if (v === null || v === undefined || !Number.isFinite(v)) return NA;
    return String(Number(v.toPrecision(digits || 4)));
  }

  function unique(values) { return Array.from(new Set(values)); }

  function select(id, label, options, onchange) {
    const s = el("select", {id: id, onchange: (e) => onchange(e.target.value)});
    for (const [value, text] of options) s.append(el("option", {value: value, text: text}));
    return el("label", {class: "rb-select"}, label + " ", s);
  }

  function section(id, title, ...children) {
    const s = el("section", {id: id}, el("h2", {text: title}), ...children);
    document.getElementById("rb-main").append(s);
    document.getElementById("rb-nav").append(el("a", {href: "#" + id, text: title}));
    return s;
  }

  function chartDiv(id, caption) {
    return el("figure", {class: "rb-figure"}, el("div", {id: id, class: "rb-chart"}),
              caption ? el("figcaption", {text: caption}) : null);
  }

  // -- plotly -------------------------------------------------------------------------------
  function config(name) {
    return {
      displaylogo: false, responsive: true, displayModeBar: true,
      toImageButtonOptions: {format: "png", filename: name, scale: 2},
      modeBarButtonsToRemove: ["lasso2d", "select2d"],
      modeBarButtonsToAdd: [{
        name: "Download plot as SVG", icon: Plotly.Icons.disk,
        click: (gd) => Plotly.downloadImage(gd, {format: "svg", filename: name}),
      }],
    };
  }

  function plot(id, traces, layout, name) {
    const base = {margin: {l: 60, r: 20, t: 50, b: 50}, font: {size: 11},
                  hoverlabel: {align: "left"}, paper_bgcolor: "white", plot_bgcolor: "white"};
    const t0 = performance.now();
    const done = Plotly.react(id, traces, Object.assign(base, layout), config(name));
    performance.measure("rb-plot-" + id, {start: t0, end: performance.now()});
    return done;
  }

  function axisName(k) { return k === 0 ? "" : String(k + 1); }

  // a grid of panels: layout axes for n panels in `cols` columns, titles as annotations
  function panels(n, cols, titles, shareY) {
    const rows = Math.ceil(n / cols);
    const layout = {grid: {rows: rows, columns: cols, pattern: "independent",
                           roworder: "top to bottom", xgap: 0.08, ygap: 0.35 / rows + 0.1},
                    annotations: [], showlegend: false};
    for (let k = 0; k < n; k++) {
      const a = axisName(k);
      layout["xaxis" + a] = {automargin: true, showgrid: true, gridcolor: "#eee",
                             zeroline: false};
      layout["yaxis" + a] = {automargin: true, showgrid: true, gridcolor: "#eee",
                             zeroline: false};
      if (shareY && k > 0) layout["yaxis" + a].matches = "y";
      layout.annotations.push({text: titles[k], showarrow: false, xref: "x" + a + " domain",
                               yref: "y" + a + " domain", x: 0.5, y: 1.0, yanchor: "bottom",
                               font: {size: 11}});
    }
    return layout;
  }

  // -- cells --------------------------------------------------------------------------------
  function cellTitle(i) {
    return `${L.task[C.task[i]]} / ${L.arch[C.arch[i]]} / ${L.reg[C.reg[i]]} ` +
      `strength ${fmt(C.strength[i])}, seed ${C.seed[i]}`;
  }

  function cellHover(i) {
    const m = L.metric[C.metric[i]] || "metric";
    return `<b>cell ${C.id[i]}</b> (${L.status[C.status[i]]})<br>` +
      `${L.task[C.task[i]]} / ${L.arch[C.arch[i]]} / ${L.reg[C.reg[i]]}<br>` +
      `strength ${fmt(C.strength[i])}, seed ${C.seed[i]}<br>${L.params[C.params[i]]}<br>` +
      `${m}: train ${fmt(C.train_metric[i])}, val ${fmt(C.val_metric[i])}, ` +
      `test ${fmt(C.test_metric[i])}, gap ${fmt(C.gap_metric[i])}<br>` +
      `loss: train ${fmt(C.train_loss[i])}, test ${fmt(C.test_loss[i])}, ` +
      `gap ${fmt(C.gap_loss[i])}<br>epochs ${C.epochs[i] ?? NA}, best ${C.best_epoch[i] ?? NA}`;
  }

  const SETTINGS = (function () {
    const seen = new Map();
    for (let i = 0; i < N; i++) {
      const key = C.task[i] + "|" + C.arch[i];
      if (!seen.has(key)) seen.set(key, {task: C.task[i], arch: C.arch[i], cells: []});
      seen.get(key).cells.push(i);
    }
    return Array.from(seen.values());
  })();

  // -- tables -------------------------------------------------------------------------------
  function renderCell(d, type) {
    if (Array.isArray(d)) {
      if (type === "sort" || type === "type") return d[1] === null ? -Infinity : d[1];
      return d[0];
    }
    return d;
  }

  function keep(key) {
    const f = state.filter;
    if (f.task && key[0] !== null && key[0] !== f.task) return false;
    if (f.arch && key[1] !== null && key[1] !== f.arch) return false;
    if (f.family && key[2] !== null && key[2] !== f.family) return false;
    if (f.status && key[3] !== null && !key[3].includes(f.status)) return false;
    return true;
  }

  function makeTable(DT, spec, container, onRow) {
    const table = el("table", {id: "table-" + spec.id, class: "display compact rb-table"});
    container.append(el("div", {class: "rb-table-wrap"}, table),
                     el("p", {class: "rb-caption", text: spec.caption}));
    const n = spec.columns.length;
    const dt = new DT(table, {
      data: spec.rows,
      columns: spec.columns.map((c, i) => ({
        title: c.title, data: i, type: c.type === "num" ? "num" : "string",
        render: renderCell, className: c.type === "num" ? "dt-right" : "dt-left"})),
      deferRender: true, pageLength: 10, order: [], autoWidth: false,
      lengthMenu: [10, 25, 100, 1000],
      layout: {
        topStart: ["pageLength", {buttons: [{
          extend: "csvHtml5", text: "Download CSV", filename: "regbench-" + spec.id,
          exportOptions: {orthogonal: "export"}}]}],
        topEnd: "search",
      },
    });
    table.dataset.keyColumn = String(n);
    if (onRow) {
      table.classList.add("rb-clickable");
      table.querySelector("tbody").addEventListener("click", (e) => {
        const tr = e.target.closest("tr");
        if (!tr) return;
        const row = dt.row(tr).data();
        if (row) onRow(row);
      });
    }
    state.tables.push(dt);
    state.byId[spec.id] = dt;
    return dt;
  }

  function cellsSpec() {
    const rows = new Array(N);
    for (let i = 0; i < N; i++) {
      const st = L.status[C.status[i]];
      const n = (v) => [fmt(v), v];
      rows[i] = [C.id[i], L.task[C.task[i]], L.arch[C.arch[i]], L.reg[C.reg[i]],
                 n(C.strength[i]), [String(C.seed[i]), C.seed[i]], st, L.metric[C.metric[i]],
                 n(C.train_metric[i]), n(C.val_metric[i]), n(C.test_metric[i]),
                 n(C.gap_metric[i]), n(C.gap_loss[i]),
                 [C.epochs[i] === null ? NA : String(C.epochs[i]), C.epochs[i]],
                 [C.best_epoch[i] === null ? NA : String(C.best_epoch[i]), C.best_epoch[i]],
                 n(C.wall_s[i]),
                 [L.task[C.task[i]], L.arch[C.arch[i]], L.family[C.family[i]], [st]], i];
    }
    const num = (t) => ({title: t, type: "num"});
    const text = (t) => ({title: t, type: "text"});
    return {
      id: "cells", title: "Every cell",
      caption: "One row per stored grid cell (the store's cells table); click a row to " +
        "show its learning curves in the cell view.",
      columns: [text("Cell"), text("Task"), text("Arch"), text("Regularizer"), num("Strength"),
                num("Seed"), text("Status"), text("Metric"), num("Train"), num("Val"),
                num("Test"), num("Gap (metric)"), num("Gap (loss)"), num("Epochs"),
                num("Best epoch"), num("Wall (s)")],
      rows: rows,
    };
  }

  function filterBar() {
    const opts = (values) => [["", "all"]].concat(values.map((v) => [v, v]));
    const keys = DATA.tables.flatMap((t) => t.rows.map((r) => r[r.length - 1]));
    const pick = (j) => unique(keys.map((k) => k[j]).filter((v) => v !== null)
      .concat(j === 0 ? L.task : j === 1 ? L.arch : L.family));
    const statuses = unique(L.status);
    const set = (k) => (v) => { state.filter[k] = v; redraw(); };
    return el("div", {id: "rb-filters", class: "rb-filters"},
              el("strong", {text: "Filter the tables: "}),
              select("filter-task", "task", opts(pick(0)), set("task")),
              select("filter-arch", "architecture", opts(pick(1)), set("arch")),
              select("filter-regularizer", "regularizer", opts(pick(2)), set("family")),
              select("filter-status", "status", opts(statuses), set("status")));
  }

  function redraw() { for (const dt of state.tables) dt.draw(); }

  // -- gap and test against strength -------------------------------------------------------
  // One axes for every regularizer of a setting: a group of positions per regularizer (none
  // first), one position per strength, the seeds' points jittered around it, the mean and
  // its 95% t-CI (from the summary) on it, and none's mean and CI as a band across. Two
  // traces in all (points; means with their bars), so a setting of many regularizers
  // draws as fast as one of few.
  function strengthChart(id, which, setting) {
    const none = L.reg.indexOf("none");
    const ok = L.status.indexOf("ok");
    const regs = unique(setting.cells.map((i) => C.reg[i]));
    regs.sort((p, q) => (q === none) - (p === none));
    const lines = DATA.lines.filter((l) => l[0] === setting.task && l[1] === setting.arch);
    const col = which === "gap" ? 4 : 7;
    const metric = L.metric[C.metric[setting.cells[0]]] || "metric";
    const shapes = [];
    const annotations = [];
    const tickvals = [];
    const ticktext = [];
    const pts = {x: [], y: [], c: [], idx: []};
    const mean = {x: [], y: [], c: [], up: [], down: [], text: []};
    let pos = 0;
    regs.forEach((r, k) => {
      const color = r === none ? "#555" : PALETTE[k % PALETTE.length];
      const mine = setting.cells.filter((i) => C.reg[i] === r);
      const strengths = unique(mine.map((i) => C.strength[i])).sort((p, q) => p - q);
      const at = new Map(strengths.map((x, j) => [x, pos + j]));
      const start = pos;
      pos += strengths.length;
      strengths.forEach((x) => { tickvals.push(at.get(x)); ticktext.push(fmt(x, 3)); });
      const idx = mine.filter((i) => C.status[i] === ok);
      const seeds = unique(idx.map((i) => C.seed[i])).sort((p, q) => p - q);
      for (const i of idx) {
        const jitter = seeds.length < 2 ? 0 :
          0.5 * (seeds.indexOf(C.seed[i]) / (seeds.length - 1) - 0.5);
        pts.x.push(at.get(C.strength[i]) + jitter);
        pts.y.push(which === "gap" ? C.gap_metric[i] : C.test_metric[i]);
        pts.c.push(color);
        pts.idx.push(i);
      }
      const rows = lines.filter((l) => l[2] === r && l[col] !== null && at.has(l[3]))
        .sort((p, q) => p[3] - q[3]);
      for (const l of rows) {
        mean.x.push(at.get(l[3]));
        mean.y.push(l[col]);
        mean.c.push(color);
        mean.up.push((l[col + 2] ?? l[col]) - l[col]);
        mean.down.push(l[col] - (l[col + 1] ?? l[col]));
        mean.text.push(`${L.reg[r]} at ${fmt(l[3])}: mean ${fmt(l[col])} ` +
          `[${fmt(l[col + 1])}, ${fmt(l[col + 2])}]` +
          (l[10] ? `, ${l[10]} diverged/failed` : ""));
      }
      for (const a of [mean.x, mean.y, mean.up, mean.down, mean.text]) a.push(null);
      mean.c.push(color);
      const bad = lines.filter((l) => l[2] === r).reduce((n, l) => n + l[10], 0);
      if (k % 2 === 1) {
        shapes.push({type: "rect", xref: "x", yref: "paper", x0: start - 0.5, x1: pos - 0.5,
                     y0: 0, y1: 1, fillcolor: "#f3f3f3", line: {width: 0}, layer: "below"});
      }
      annotations.push({text: L.reg[r] + (bad ? ` (${bad}\u2020)` : ""), showarrow: false,
                        xref: "x", yref: "paper", x: (start + pos - 1) / 2, y: 1.01,
                        yanchor: "bottom", xanchor: regs.length > 6 ? "left" : "center",
                        textangle: regs.length > 6 ? -40 : 0, font: {size: 10, color: color}});
      pos += 1;  // a gap between regularizers
    });
    const traces = [
      {type: "scatter", mode: "markers", x: pts.x, y: pts.y, customdata: pts.idx,
       text: pts.idx.map(cellHover), hovertemplate: "%{text}<extra></extra>", name: "seeds",
       marker: {size: 6, color: pts.c, opacity: 0.65, line: {width: 0.5, color: "white"}}},
      {type: "scatter", mode: "lines+markers", x: mean.x, y: mean.y, text: mean.text,
       name: "mean", connectgaps: false, hovertemplate: "%{text}<extra></extra>",
       line: {color: "#444", width: 1}, marker: {symbol: "line-ew-open", size: 14,
                                                 color: mean.c, line: {width: 2}},
       error_y: {type: "data", symmetric: false, array: mean.up, arrayminus: mean.down,
                 color: "#444", thickness: 1.2, width: 4}},
    ];
    const base = lines.find((l) => l[2] === none && l[col] !== null);
    if (base) {
      if (base[col + 1] !== null) {
        shapes.push({type: "rect", xref: "paper", yref: "y", x0: 0, x1: 1, y0: base[col + 1],
                     y1: base[col + 2], fillcolor: "#888", opacity: 0.12, line: {width: 0},
                     layer: "below"});
      }
      shapes.push({type: "line", xref: "paper", yref: "y", x0: 0, x1: 1, y0: base[col],
                   y1: base[col], line: {color: "#555", dash: "dash", width: 1}});
    }
    const top = regs.length > 6 ? 30 + 4.2 * Math.max(...regs.map((r) => L.reg[r].length)) : 60;
    const layout = {
      height: 380 + top, showlegend: false, shapes: shapes, annotations: annotations,
      margin: {l: 60, r: 20, t: top + 30, b: 60},
      title: {text: `${L.task[setting.task]} / ${L.arch[setting.arch]}: ` +
        (which === "gap" ? `generalization gap (${metric})` : `test ${metric}`) +
        " against strength. Points: seeds; bars: mean and 95% t-CI; grey band: none" +
        " (\u2020 diverged/failed cells)", font: {size: 12}, y: 0.99, yanchor: "top"},
      xaxis: {tickvals: tickvals, ticktext: ticktext, range: [-0.7, pos - 0.3],
              title: {text: "strength, per regularizer"}, showgrid: false, zeroline: false},
      yaxis: {title: {text: which === "gap" ? `gap (${metric})` : `test ${metric}`},
              gridcolor: "#eee", zeroline: false},
    };
    return plot(id, traces, layout, `${which}_vs_strength`).then((gd) => {
      if (!gd._rbClick) {
        gd.on("plotly_click", (ev) => {
          const p = ev.points && ev.points[0];
          if (p && typeof p.customdata === "number") selectCell(p.customdata);
        });
        gd._rbClick = true;
      }
      return gd;
    });
  }

  function fillCellSelect() {
    const s = document.getElementById("cell-select");
    s.replaceChildren(...state.setting.cells.map((i) => el("option", {
      value: String(i), text: `${L.reg[C.reg[i]]} ${fmt(C.strength[i])} seed ${C.seed[i]} ` +
        `(${C.id[i]})`})));
    if (state.cell !== null) s.value = String(state.cell);
  }

  function drawSetting(k) {
    state.setting = SETTINGS[k];
    fillCellSelect();
    return Promise.all([strengthChart("chart-gap", "gap", state.setting),
                        strengthChart("chart-test", "test", state.setting)]);
  }

  // -- the cell view ------------------------------------------------------------------------
  function curvesOf(i) {
    if (!state.curveLines) {
      state.curveLines = document.getElementById("rb-curves").textContent.split("\n");
    }
    const line = state.curveLines[i];
    return line ? JSON.parse(line) : [];
  }

  function selectCell(i) {
    state.cell = i;
    const s = document.getElementById("cell-select");
    if (s && Array.from(s.options).some((o) => o.value === String(i))) s.value = String(i);
    const info = document.getElementById("cell-info");
    const m = L.metric[C.metric[i]] || "metric";
    const rows = [
      ["cell", C.id[i]], ["task", L.task[C.task[i]]], ["architecture", L.arch[C.arch[i]]],
      ["regularizer", L.reg[C.reg[i]]], ["strength", fmt(C.strength[i])], ["seed", C.seed[i]],
      ["parameters", L.params[C.params[i]]], ["status", L.status[C.status[i]]],
      [`${m} train / val / test`, `${fmt(C.train_metric[i])} / ${fmt(C.val_metric[i])} / ` +
        fmt(C.test_metric[i])],
      [`gap (${m}) / gap (loss)`, `${fmt(C.gap_metric[i])} / ${fmt(C.gap_loss[i])}`],
      ["epochs (best)", `${C.epochs[i] ?? NA} (${C.best_epoch[i] ?? NA})`],
      ["wall time (s)", fmt(C.wall_s[i])]];
    info.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {text: k}),
                                                        el("dd", {text: String(v)})]));
    const c = curvesOf(i);
    const traces = [];
    if (c.length) {
      traces.push({type: "scatter", mode: "lines", x: c[0], y: c[1], name: "train loss",
                   line: {color: PALETTE[0]}});
      traces.push({type: "scatter", mode: "lines", x: c[0], y: c[2], name: "val loss",
                   line: {color: PALETTE[1]}});
      traces.push({type: "scatter", mode: "lines", x: c[0], y: c[3], name: `val ${m}`,
                   yaxis: "y2", line: {color: PALETTE[2], dash: "dot"}});
    }
    const layout = {
      height: 400, showlegend: true, legend: {orientation: "h", y: -0.2},
      margin: {l: 60, r: 70, t: 70, b: 50},
      title: {text: c.length ? `Learning curves of ${C.id[i]}: ${cellTitle(i)}` :
        `No curves stored for ${C.id[i]}`, font: {size: 12}, x: 0, xanchor: "left",
              y: 0.98, yanchor: "top"},
      xaxis: {title: {text: "epoch"}, gridcolor: "#eee"},
      yaxis: {title: {text: "loss"}, gridcolor: "#eee"},
      yaxis2: {title: {text: `val ${m}`}, overlaying: "y", side: "right", showgrid: false,
               automargin: true, tickmode: "auto"},
      shapes: C.best_epoch[i] ? [{type: "line", xref: "x", yref: "paper", x0: C.best_epoch[i],
                                  x1: C.best_epoch[i], y0: 0, y1: 1,
                                  line: {color: "#777", dash: "dash", width: 1}}] : [],
    };
    document.getElementById("chart-curves").dataset.cell = C.id[i];
    return plot("chart-curves", traces, layout, `curves_${C.id[i]}`);
  }

  // -- across tasks -------------------------------------------------------------------------
  function aggregatesChart(id) {
    const a = DATA.aggregates.filter((r) => r[2] !== null);
    const y = a.map((r) => `${r[0]} (${r[1]})`);
    const err = (p, lo, hi) => ({type: "data", symmetric: false,
                                 array: a.map((r) => (r[hi] ?? r[p]) - r[p]),
                                 arrayminus: a.map((r) => r[p] - (r[lo] ?? r[p]))});
    const poi = a.filter((r) => r[5] !== null);
    const traces = [
      {type: "scatter", mode: "markers", x: a.map((r) => r[2]), y: y, error_x: err(2, 3, 4),
       marker: {color: PALETTE[0], size: 8}, name: "IQM",
       hovertemplate: "%{y}: IQM %{x:.3f}<extra></extra>"},
      {type: "scatter", mode: "markers", x: poi.map((r) => r[5]),
       y: poi.map((r) => `${r[0]} (${r[1]})`), xaxis: "x2", yaxis: "y2",
       error_x: {type: "data", symmetric: false,
                 array: poi.map((r) => (r[7] ?? r[5]) - r[5]),
                 arrayminus: poi.map((r) => r[5] - (r[6] ?? r[5]))},
       marker: {color: PALETTE[2], size: 8}, name: "P(> none)",
       hovertemplate: "%{y}: P(> none) %{x:.3f}<extra></extra>"},
    ];
    const layout = panels(2, 2, ["Interquartile mean (95% CI)",
                                 "Probability of improvement over none (95% CI)"], false);
    layout.yaxis.autorange = "reversed";
    layout.yaxis2.autorange = "reversed";
    layout.yaxis2.matches = "y";
    layout.yaxis2.showticklabels = false;
    layout.xaxis.title = {text: "IQM of normalized test score (1 = best in setting)"};
    layout.xaxis2.title = {text: "P(regularizer > none)"};
    layout.xaxis2.range = [0, 1];
    layout.shapes = [{type: "line", xref: "x2", yref: "y2 domain", x0: 0.5, x1: 0.5, y0: 0,
                      y1: 1, line: {color: "#555", dash: "dash", width: 1}}];
    layout.height = 120 + 24 * a.length;
    layout.title = {text: "Across tasks, tuned view (rliable; stratified bootstrap; " +
      "(n) = settings)", font: {size: 13}};
    return plot(id, traces, layout, "aggregates");
  }

  function cdFigure(cd) {
    return el("figure", {class: "rb-figure", id: "figure-cd"},
              el("img", {src: cd.svg, alt: "Critical-difference diagram: mean rank of each " +
                         "regularizer over the settings", class: "rb-cd"}),
              el("figcaption", {}, cd.note + " Download: ",
                 el("a", {href: cd.svg, download: "critical_difference.svg", text: "SVG"}),
                 ", ",
                 el("a", {href: cd.png, download: "critical_difference.png", text: "PNG"}),
                 "."));
  }

  // -- budget -------------------------------------------------------------------------------
  function evpChart(id, setting) {
    const b = DATA.budget;
    const rows = b.evp.filter((r) => r[0] === setting);
    const regs = unique(rows.map((r) => r[1]));
    const traces = [];
    regs.forEach((reg, k) => {
      const r = rows.filter((x) => x[1] === reg).sort((p, q) => p[2] - q[2]);
      const color = PALETTE[k % PALETTE.length];
      const lo = Math.min(r[0][5], r[0][6]);
      const hi = Math.max(r[0][5], r[0][6]);
      const clip = (v) => Math.min(hi, Math.max(lo, v));
      const ks = r.map((x) => x[2]);
      traces.push({type: "scatter", mode: "lines", x: ks.concat(ks.slice().reverse()),
                   y: r.map((x) => clip(x[3] + x[4])).concat(
                     r.map((x) => clip(x[3] - x[4])).reverse()),
                   fill: "toself", fillcolor: color, opacity: 0.15, line: {width: 0},
                   hoverinfo: "skip", showlegend: false});
      traces.push({type: "scatter", mode: "lines+markers", x: ks, y: r.map((x) => x[3]),
                   name: reg, line: {color: color}, marker: {size: 4},
                   hovertemplate: reg + ": %{y:.4f} with %{x} trials<extra></extra>"});
    });
    return plot(id, traces, {
      height: 420, title: {text: `${setting}: expected best validation ${b.metric} of k ` +
        "trials (band: \u00b11 sd)", font: {size: 13}},
      xaxis: {title: {text: "trials (k)"}, gridcolor: "#eee"},
      yaxis: {title: {text: `expected best val ${b.metric}`}, gridcolor: "#eee"},
    }, "evp");
  }

  function rankBudgetChart(id) {
    const b = DATA.budget;
    const regs = unique(b.ranks.map((r) => r[0]));
    const traces = regs.map((reg, k) => {
      const r = b.ranks.filter((x) => x[0] === reg).sort((p, q) => p[1] - q[1]);
      return {type: "scatter", mode: "lines+markers", x: r.map((x) => x[1]),
              y: r.map((x) => x[2]), name: reg, line: {color: PALETTE[k % PALETTE.length]},
              hovertemplate: reg + ": mean rank %{y:.2f} at budget %{x}<extra></extra>"};
    });
    return plot(id, traces, {
      height: 420, title: {text: `Mean rank over ${b.n_settings} settings against the ` +
        "budget (from expected best validation)", font: {size: 13}},
      xaxis: {title: {text: "budget (trials per study)"}, type: "log", gridcolor: "#eee"},
      yaxis: {title: {text: "mean rank (1 = best)"}, autorange: "reversed", gridcolor: "#eee"},
    }, "rank_budget");
  }

  // -- kernel throughput --------------------------------------------------------------------
  function throughputCharts(config) {
    return Promise.all([gbpsChart(config), speedupChart(config)]);
  }

  function gbpsChart(config) {
    const b = DATA.bench;
    const rows = b.gbps.filter((r) => r[0] === config);
    const ops = unique(rows.map((r) => r[1])).filter((o) => o !== "copy");
    const copy = rows.filter((r) => r[1] === "copy").sort((p, q) => p[3] - q[3]);
    const layout = panels(ops.length, Math.min(3, ops.length), ops, false);
    const traces = [];
    ops.forEach((op, k) => {
      const a = axisName(k);
      const impls = unique(rows.filter((r) => r[1] === op).map((r) => r[2]));
      impls.forEach((impl, j) => {
        const r = rows.filter((x) => x[1] === op && x[2] === impl).sort((p, q) => p[3] - q[3]);
        traces.push({type: "scatter", mode: "lines+markers", x: r.map((x) => x[3]),
                     y: r.map((x) => x[4]), xaxis: "x" + a, yaxis: "y" + a, name: impl,
                     line: {color: PALETTE[j % PALETTE.length], dash: r[0][5] ? "solid" : "dash"},
                     hovertemplate: `${op} ${impl}: %{y:.3g} GB/s at %{x} elements<extra></extra>`});
      });
      if (copy.length) {
        traces.push({type: "scatter", mode: "lines", x: copy.map((x) => x[3]),
                     y: copy.map((x) => x[4]), xaxis: "x" + a, yaxis: "y" + a, name: "copy_",
                     line: {color: "#888", dash: "dot"},
                     hovertemplate: "copy_: %{y:.3g} GB/s at %{x} elements<extra></extra>"});
      }
      layout["xaxis" + a].type = "log";
      layout["xaxis" + a].title = {text: "elements", font: {size: 10}};
      if (k % 3 === 0) layout["yaxis" + a].title = {text: "GB/s"};
    });
    layout.height = 90 + 280 * Math.ceil(ops.length / 3);
    layout.showlegend = false;
    layout.title = {text: `Achieved bandwidth (${config}): ours solid, native dashed, ` +
      "copy_ dotted (hover for names)", font: {size: 13}};
    return plot("chart-gbps", traces, layout, "kernel_bandwidth");
  }

  function speedupChart(config) {
    const speed = DATA.bench.speedup.filter((r) => r[0] === config);
    const sops = unique(speed.map((r) => r[1]));
    const straces = sops.map((op, k) => {
      const r = speed.filter((x) => x[1] === op).sort((p, q) => p[2] - q[2]);
      return {type: "scatter", mode: "lines+markers", x: r.map((x) => x[2]),
              y: r.map((x) => x[3]), name: op, text: r.map((x) => x[4]),
              line: {color: PALETTE[k % PALETTE.length]},
              hovertemplate: op + " (%{text}): %{y:.2f}x at %{x} elements<extra></extra>"};
    });
    return plot("chart-speedup", straces, {
        height: 400, title: {text: `Speed-up over the fastest native baseline (${config}; ` +
          "above 1: ours faster)", font: {size: 13}},
        xaxis: {title: {text: "elements"}, type: "log", gridcolor: "#eee"},
        yaxis: {title: {text: "native time / ours"}, type: "log", gridcolor: "#eee"},
        shapes: [{type: "line", xref: "paper", x0: 0, x1: 1, y0: 1, y1: 1,
                  line: {color: "#555", dash: "dash", width: 1}}],
      }, "kernel_speedup");
  }

  // -- the page -----------------------------------------------------------------------------
  async function loadDataTables() {
    const b64 = document.getElementById("rb-datatables").textContent.trim();
    const bin = atob(b64);
    const bytes = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
    const url = URL.createObjectURL(new Blob([bytes], {type: "text/javascript"}));
    try {
      const mod = await import(url);
      performance.mark("rb-datatables-imported");
      return mod.DataTable || mod.default;
    } finally {
      URL.revokeObjectURL(url);
    }
  }

  function summaryLine() {
    const i = DATA.info;
    const c = i.counts;
    document.getElementById("rb-summary").textContent =
      `${i.description ? i.description + ". " : ""}${c.ok + c.diverged + c.failed} grid cells ` +
      `of ${i.n_matrix} in the matrix: ${c.ok} ok, ${c.diverged} diverged, ${c.failed} ` +
      `failed. Made by: ${i.command}. Tables: sortable by any column, filterable, CSV ` +
      "button; charts: hover a point for its cell, click it for its learning curves; the " +
      "camera (PNG) and disk (SVG) buttons download a chart.";
  }

  // Drawing on demand: a chart or table is drawn when it comes near the viewport, and after
  // the first screen is ready the rest are drawn one per task (the page answers input in
  // between). <html data-ready="true"> and window.regbenchReady: the first screen is drawn
  // and the page is interactive; data-complete="true" and window.regbenchComplete: every
  // chart and table is drawn.
  const lazy = {items: new Map(), observer: null};

  function later(node, draw) {
    const item = {draw: draw, promise: null};
    lazy.items.set(node, item);
    lazy.observer.observe(node);
  }

  function run(node) {
    const item = lazy.items.get(node);
    if (!item.promise) {
      lazy.observer.unobserve(node);
      const name = node.id || (node.closest("section") || {}).id || "item";
      item.promise = Promise.resolve().then(item.draw).then((r) => {
        performance.mark("rb-drawn-" + name);
        return r;
      });
    }
    return item.promise;
  }

  async function drawTheRest() {
    for (const node of lazy.items.keys()) {
      await run(node);
      await new Promise((resolve) => setTimeout(resolve, 0));
    }
  }

  async function main() {
    performance.mark("rb-data");
    summaryLine();
    const DTPromise = loadDataTables().then((DT) => {
      performance.mark("rb-datatables");
      DT.ext.search.push((settings, _search, index, row) => {
        const col = settings.nTable.dataset.keyColumn;
        return col === undefined ? true : keep(row[Number(col)]);
      });
      return DT;
    });
    lazy.observer = new IntersectionObserver((entries) => {
      for (const e of entries) if (e.isIntersecting) run(e.target);
    }, {rootMargin: "100px"});
    document.getElementById("rb-loading").remove();
    const byId = Object.fromEntries(DATA.tables.map((t) => [t.id, t]));
    // a table's place is kept in its section; the table fills it when drawn
    const table = (spec, parent, onRow) => {
      const slot = el("div", {class: "rb-slot"});
      parent.append(slot);
      later(slot, async () => makeTable(await DTPromise, typeof spec === "function" ? spec() :
        spec, slot, onRow));
    };
    const chart = (parent, id, draw) => {
      const fig = chartDiv(id);
      parent.append(fig);
      later(fig.querySelector(".rb-chart"), draw);
    };

    document.getElementById("rb-main").append(filterBar());
    if (byId.tuned) table(byId.tuned, section("sec-tuned", "Tuned view"));
    if (SETTINGS.length) {
      const s = section("sec-strength", "Gap and test metric against strength",
        select("setting-select", "setting", SETTINGS.map((st, k) =>
          [String(k), `${L.task[st.task]} / ${L.arch[st.arch]}`]),
        (v) => drawSetting(Number(v))));
      s.classList.add("rb-charts");
      state.setting = SETTINGS[0];
      chart(s, "chart-gap", () => strengthChart("chart-gap", "gap", state.setting));
      chart(s, "chart-test", () => strengthChart("chart-test", "test", state.setting));
      const cv = section("sec-cell", "Cell view",
        el("p", {text: "Choose a cell here, click a point of the charts above or a row of " +
                 "the cells table: its learning curves (per epoch, from the store; val " +
                 "metric on the right axis; dashed: best epoch) and its numbers."}),
        el("label", {class: "rb-select"}, "cell ",
           el("select", {id: "cell-select",
                         onchange: (e) => selectCell(Number(e.target.value))})));
      cv.classList.add("rb-charts");
      const box = el("div", {class: "rb-cell"}, el("dl", {id: "cell-info"}));
      cv.append(box);
      fillCellSelect();
      chart(box, "chart-curves", () => state.cell === null ?
        selectCell(SETTINGS[0].cells[0]) : undefined);
    }
    if (byId.across || byId.ranking || DATA.cd || DATA.aggregates.length) {
      const s = section("sec-across", "Across tasks");
      if (byId.across) table(byId.across, s);
      if (DATA.cd) s.append(cdFigure(DATA.cd));
      if (DATA.aggregates.some((r) => r[2] !== null)) {
        chart(s, "chart-aggregates", () => aggregatesChart("chart-aggregates"));
      }
      if (byId.ranking) {
        s.append(el("h3", {text: byId.ranking.title}));
        table(byId.ranking, s);
      }
    }
    if (byId.strengths) table(byId.strengths, section("sec-strengths", "Every strength"));
    if (N) {
      table(cellsSpec, section("sec-cells", "Every cell"), (row) => {
        selectCell(row[row.length - 1]);
        document.getElementById("sec-cell").scrollIntoView();
      });
    }
    if (byId.variants) table(byId.variants, section("sec-variants", "Implementation variants"));
    if (DATA.budget) {
      const b = DATA.budget;
      const settings = unique(b.evp.map((r) => r[0]));
      const s = section("sec-budget", "Tuned at equal budget");
      if (byId.budget) table(byId.budget, s);
      if (byId.budget_across) {
        s.append(el("h3", {text: byId.budget_across.title}));
        table(byId.budget_across, s);
      }
      if (settings.length) {
        s.append(select("budget-setting", "setting", settings.map((x) => [x, x]),
                        (v) => evpChart("chart-evp", v)));
        chart(s, "chart-evp", () => evpChart("chart-evp", settings[0]));
      }
      if (b.ranks.length) chart(s, "chart-rank-budget", () => rankBudgetChart("chart-rank-budget"));
    }
    if (DATA.bench) {
      const configs = unique(DATA.bench.gbps.map((r) => r[0]));
      const s = section("sec-bench", "Kernel throughput");
      if (configs.length) {
        state.bench = configs[0];
        s.append(select("bench-config", "configuration", configs.map((x) => [x, x]),
                        (v) => { state.bench = v; return throughputCharts(v); }));
        chart(s, "chart-gbps", () => gbpsChart(state.bench));
        chart(s, "chart-speedup", () => speedupChart(state.bench));
      }
      if (byId.bench) table(byId.bench, s);
    }
    // for the console (and the tests): the DataTables by table id, and the cell view
    window.regbench = {tables: state.byId, selectCell: selectCell, data: DATA};
    performance.mark("rb-sync");

    await DTPromise;
    // the observer has had a frame to report what is in view: those items make the first
    // screen
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
    const first = Array.from(lazy.items.values()).filter((i) => i.promise);
    await Promise.all(first.map((i) => i.promise));
    performance.mark("rb-first-screen");
    window.regbenchReady = performance.now();
    document.documentElement.dataset.ready = "true";
    await drawTheRest();
    performance.mark("rb-complete");
    window.regbenchComplete = performance.now();
    document.documentElement.dataset.complete = "true";
  }

  main().catch((err) => {
    console.error("report.html:", err);
    document.documentElement.dataset.ready = "error";
    document.documentElement.dataset.complete = "error";
  });
})();
