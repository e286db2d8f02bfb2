// brisk operations dashboard: polls /dashboard/data every second and draws
// its charts as SVG (no library).
"use strict";
(() => {
  const { api, el } = window.brisk;
  const $ = (s) => document.querySelector(s);
  const NS = "http://www.w3.org/2000/svg";
  const KEEP = 300; // points kept: 5 minutes at 1 s
  const COLORS = {
    all: "#17202a", browse: "#1d5fa8", search: "#0f766e", cart: "#a16207", checkout: "#be185d", orders: "#6d28d9",
    auth: "#9a3412", admin: "#334155", web: "#3f6212", ops: "#64748b", other: "#94a3b8",
  };
  let points = [], seq = 0, data = null, failures = 0;

  const fmt = (v, d = 1) => (v == null || Number.isNaN(v) ? "–" : Number(v).toLocaleString("en-US", { maximumFractionDigits: d, minimumFractionDigits: 0 }));
  const pct = (v) => (v == null ? "–" : (v * 100).toFixed(1) + "%");

  function s(tag, attrs, text) {
    const e = document.createElementNS(NS, tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text != null) e.textContent = text;
    return e;
  }

  // niceMax rounds a maximum up to 1, 2 or 5 times a power of ten.
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  // chart draws line series [{name, color, values: [[t, v|null]...]}] into box.
  function chart(box, series, unit) {
    const W = Math.max(280, box.clientWidth || 600), H = 190, L = 48, R = 8, T = 8, B = 22;
    const all = series.flatMap((x) => x.values);
    const now = all.length ? Math.max(...all.map((p) => p[0])) : Date.now();
    const first = all.length ? Math.min(...all.map((p) => p[0])) : now;
    const span = Math.min(120000, Math.max(10000, now - first)); // up to two minutes, as much as there is
    const t0 = now - span;
    const vals = all.filter((p) => p[0] >= t0 && p[1] != null).map((p) => p[1]);
    const ymax = niceMax(vals.length ? Math.max(...vals) : 0);
    const x = (t) => L + ((t - t0) / span) * (W - L - R);
    const y = (v) => T + (1 - v / ymax) * (H - T - B);
    const g = s("svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", height: H, role: "img" });
    for (let i = 0; i <= 5; i++) {
      const v = (ymax * i) / 5;
      g.append(s("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "grid-line" }));
      g.append(s("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, fmt(v, ymax <= 2 ? 2 : ymax <= 5 ? 1 : 0)));
    }
    const step = span > 60000 ? 30 : span > 30000 ? 10 : 5;
    for (let sec = Math.floor(span / 1000 / step) * step; sec >= 0; sec -= step) {
      if (sec !== 0 && span / 1000 - sec < step / 2) continue; // no label crowding the left edge
      g.append(s("text", { x: x(now - sec * 1000), y: H - 6, "text-anchor": sec === 0 ? "end" : "middle", class: "axis" }, sec ? `-${sec}s` : "now"));
    }
    const labels = [];
    for (const ser of series) {
      let d = "", pen = false;
      for (const [t, v] of ser.values) {
        if (t < t0 || v == null) { pen = false; continue; }
        d += (pen ? "L" : "M") + x(t).toFixed(1) + " " + y(Math.min(v, ymax)).toFixed(1);
        pen = true;
      }
      if (d) g.append(s("path", { d, fill: "none", stroke: ser.color, "stroke-width": ser.width || 2, "stroke-linejoin": "round" }));
      const last = ser.values.length ? ser.values[ser.values.length - 1][1] : null;
      labels.push(`${ser.name} ${fmt(last)}${unit}`);
    }
    g.setAttribute("aria-label", labels.join(", "));
    box.replaceChildren(g);
  }

  function legend(box, series, unit) {
    box.replaceChildren(...series.map((ser) => {
      const last = ser.values.length ? ser.values[ser.values.length - 1][1] : null;
      const sw = el("span", { class: "key" });
      sw.style.background = ser.color;
      return el("span", { class: "legend-item" }, sw, `${ser.name} `, el("b", {}, fmt(last) + unit));
    }));
  }

  const series = (name, color, f, width) => ({ name, color, width, values: points.map((p) => [p.t, f(p)]) });
  const gv = (g, k) => (p) => (p.groups[g] ? p.groups[g][k] : null);

  function draw() {
    const last = points[points.length - 1];
    if (!last) return;
    const a = last.groups.all || {};
    $("#t-rps").textContent = fmt(a.rps);
    $("#t-eps").textContent = fmt(a.eps, 2);
    $("#t-p99").textContent = a.p99 == null ? "–" : fmt(a.p99) + " ms";
    $("#t-inflight").textContent = fmt(last.in_flight, 0) + " / " + fmt(last.limit, 0);
    $("#t-db").textContent = fmt(last.db_in_use, 0) + (last.db_max != null ? " / " + fmt(last.db_max, 0) : "");
    const br = $("#t-breaker");
    br.textContent = last.breaker || "–";
    br.className = "tile-value breaker-" + (last.breaker || "none");

    const groups = (data.groups || []).filter((g) => g !== "all");
    const rps = [series("all", COLORS.all, gv("all", "rps"), 3), ...groups.map((g) => series(g, COLORS[g] || "#777", gv(g, "rps")))];
    chart($("#c-rps"), rps, "/s");
    legend($("#l-rps"), rps, "/s");

    const sel = $("#lat-group");
    const want = ["all", ...groups];
    if (sel.options.length !== want.length) {
      const cur = sel.value;
      sel.replaceChildren(...want.map((g) => el("option", { value: g }, g)));
      sel.value = want.includes(cur) ? cur : "all";
    }
    const lg = sel.value;
    const lat = [series("p50", "#0f766e", gv(lg, "p50")), series("p95", "#a16207", gv(lg, "p95")), series("p99", "#b3261e", gv(lg, "p99"))];
    chart($("#c-lat"), lat, " ms");
    legend($("#l-lat"), lat, " ms");

    const err = [series("5xx", "#b3261e", gv("all", "eps")), series("503", "#a16207", gv("all", "limited"))];
    chart($("#c-err"), err, "/s");
    legend($("#l-err"), err, "/s");

    const sat = [series("in flight", "#1d5fa8", (p) => p.in_flight), series("limit", "#586271", (p) => p.limit),
      series("DB in use", "#6d28d9", (p) => p.db_in_use)];
    chart($("#c-sat"), sat, "");
    legend($("#l-sat"), sat, "");

    $("#groups tbody").replaceChildren(...["all", ...groups].map((g) => {
      const v = last.groups[g] || {};
      return el("tr", { "data-group": g }, el("th", { scope: "row" }, g), ...[fmt(v.rps), fmt(v.eps, 2), fmt(v.p50), fmt(v.p95), fmt(v.p99), fmt(v.total, 0)]
        .map((t) => el("td", { class: "num" }, t)));
    }));

    const cache = data.cache || [];
    $("#cache").replaceChildren(...(cache.length ? cache.map((c) => {
      const bar = el("span", { class: "bar-fill" });
      bar.style.width = ((c.recent != null ? c.recent : c.ratio || 0) * 100).toFixed(1) + "%";
      return el("div", { class: "bar-row" }, el("span", { class: "bar-name" }, c.layer),
        el("span", { class: "bar", role: "img", "aria-label": `${c.layer} hit ratio ${pct(c.recent)}` }, bar),
        el("span", { class: "bar-val" }, pct(c.recent)), el("span", { class: "muted small" }, `since start ${pct(c.ratio)}`));
    }) : [el("p", { class: "muted" }, "No cache metrics yet.")]));

    const burnCell = (v) => el("td", { class: "num " + (v == null ? "" : v >= 14.4 ? "burn-page" : v >= 1 ? "burn-warn" : "burn-ok") }, v == null ? "–" : fmt(v, 2) + "×");
    $("#slo tbody").replaceChildren(...(data.slos || []).map((o) => el("tr", {},
      el("th", { scope: "row" }, o.name),
      el("td", { class: "num" }, (o.goal * 100).toFixed(2).replace(/\.?0+$/, "") + "%" + (o.latency_ms ? ` < ${o.latency_ms} ms` : "")),
      burnCell(o.burn["5m"]), burnCell(o.burn["1h"]), burnCell(o.burn["6h"]),
      el("td", { class: "num" }, o.budget_left == null ? "–" : pct(Math.max(-9.99, o.budget_left))))));
  }

  async function tick() {
    let r = null;
    try { r = await api("GET", "/dashboard/data" + (seq ? "?since=" + seq : "")); } catch (_) { r = null; }
    if (r && (r.status === 401 || r.status === 403)) {
      $("#dash-auth").hidden = false;
      $("#dash").hidden = true;
      $("#dash-status").textContent = r.status === 403 ? "Signed in without the admin role." : "Not signed in.";
      return;
    }
    if (r && r.ok) {
      failures = 0;
      data = r.data;
      if (data.seq < seq) points = []; // the server restarted
      points = points.concat(data.points).slice(-KEEP);
      seq = data.seq;
      $("#dash").hidden = false;
      const up = Math.round((data.now - data.started) / 1000);
      $("#dash-status").textContent = `Live · sample ${seq} · up ${up}s` + (data.missing && data.missing.length ? ` · not reported: ${data.missing.join(", ")}` : "");
      draw();
    } else {
      failures++;
      $("#dash-status").textContent = "Cannot reach the server; retrying…";
    }
    setTimeout(tick, Math.min(1000 * (1 + failures), 5000));
  }

  $("#lat-group").addEventListener("change", draw);
  window.addEventListener("resize", draw);
  tick();
})();
