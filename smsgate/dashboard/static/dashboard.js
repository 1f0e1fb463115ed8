// smsgate dashboard: refresh the overview from its JSON endpoint and sort tables. No dependencies.
(function () {
  "use strict";
  var SVG = "http://www.w3.org/2000/svg";
  var REFRESH_MS = 5000;

  function fmtNumber(n, lang) {
    if (n === null || n === undefined) return "–";
    var s = Number(n).toLocaleString("en-US");
    return lang === "id" ? s.replace(/,/g, ".") : s;
  }
  // Whole numbers per minute ("2,274", not "2274.0"); one decimal only below 10 (as the "rate" filter).
  function fmtRate(x, lang) {
    var n = Number(x) || 0;
    if (n >= 10 || n === Math.round(n)) return fmtNumber(Math.round(n), lang);
    var s = n.toFixed(1);
    return lang === "id" ? s.replace(".", ",") : s;
  }
  function fmtPct(x, lang) {
    var s = Number(x).toFixed(1) + "%";
    return lang === "id" ? s.replace(".", ",") : s;
  }
  function el(name, attrs, text) {
    var node = document.createElementNS(SVG, name);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined) node.textContent = text;
    return node;
  }
  function field(doc, path) {
    return path.split(".").reduce(function (o, k) { return o === undefined || o === null ? o : o[k]; }, doc);
  }

  function barChart(rows, lang) {
    var svg = el("svg", { "class": "chart", id: "vote-chart", viewBox: "0 0 600 " + (34 * rows.length + 10), role: "img" });
    rows.forEach(function (c, i) {
      var g = el("g", { transform: "translate(0, " + (34 * i + 5) + ")" });
      g.appendChild(el("text", { x: 0, y: 18, "class": "label" }, c.code + " " + c.name));
      g.appendChild(el("rect", { x: 190, y: 2, height: 24, width: 3 * c.share, "class": "c" + (i % 6) }));
      g.appendChild(el("text", { x: 196 + 3 * c.share, y: 19, "class": "value" },
        fmtNumber(c.votes, lang) + " (" + fmtPct(c.share, lang) + ")"));
      svg.appendChild(g);
    });
    return svg;
  }

  function activityChart(activity, lang) {
    var svg = el("svg", { "class": "chart", viewBox: "0 0 600 160", role: "img" });
    var points = activity.points;
    if (!points.length) return svg;
    var peak = activity.peak || 1, w = 580 / points.length;
    points.forEach(function (p, i) {
      var h = 118 * p.per_minute / peak;  // the tallest bar stays below the "max" label
      var r = el("rect", { "class": "c0", x: 10 + w * i, width: Math.max(w - 1, 1), y: 140 - h, height: h });
      r.appendChild(el("title", {}, p.label + ": " + fmtRate(p.per_minute, lang)));
      svg.appendChild(r);
    });
    svg.appendChild(el("text", { x: 10, y: 156, "class": "label" }, points[0].label));
    svg.appendChild(el("text", { x: 590, y: 156, "class": "label", "text-anchor": "end" },
      points[points.length - 1].label));
    svg.appendChild(el("text", { x: 590, y: 12, "class": "label", "text-anchor": "end" }, "max " + fmtRate(activity.peak, lang) + "/min"));
    return svg;
  }

  function quickCountChart(qc, lang) {
    var svg = el("svg", { "class": "chart", viewBox: "0 0 600 " + (34 * qc.candidates.length + 10), role: "img" });
    qc.candidates.forEach(function (c, i) {
      var g = el("g", { transform: "translate(0, " + (34 * i + 5) + ")" });
      g.appendChild(el("text", { x: 0, y: 18, "class": "label" }, c.code + " " + c.name));
      g.appendChild(el("rect", { x: 190, y: 4, height: 20, width: 3 * c.estimate, "class": "c" + (i % 6) + " faint" }));
      if (c.low === null || c.low === undefined) {  // indicative: no interval to draw
        g.appendChild(el("text", { x: 196 + 3 * c.estimate, y: 19, "class": "value" }, fmtPct(c.estimate, lang)));
        svg.appendChild(g);
        return;
      }
      g.appendChild(el("line", { "class": "err", x1: 190 + 3 * c.low, x2: 190 + 3 * c.high, y1: 14, y2: 14 }));
      g.appendChild(el("line", { "class": "err", x1: 190 + 3 * c.low, x2: 190 + 3 * c.low, y1: 6, y2: 22 }));
      g.appendChild(el("line", { "class": "err", x1: 190 + 3 * c.high, x2: 190 + 3 * c.high, y1: 6, y2: 22 }));
      g.appendChild(el("text", { x: 196 + 3 * c.high, y: 19, "class": "value" },
        fmtPct(c.estimate, lang) + " (" + fmtPct(c.low, lang) + "–" + fmtPct(c.high, lang) + ")"));
      svg.appendChild(g);
    });
    return svg;
  }

  function historyChart(h, label) {
    var svg = el("svg", { "class": "chart qc-history", viewBox: "0 0 600 160", role: "img" });
    h.series.forEach(function (s, i) {
      var line = el("polyline", { "class": "line c" + (i % 6), fill: "none", points: s.points });
      line.appendChild(el("title", {}, s.code));
      svg.appendChild(line);
    });
    svg.appendChild(el("text", { x: 10, y: 156, "class": "label" }, h.first_label));
    svg.appendChild(el("text", { x: 590, y: 156, "class": "label", "text-anchor": "end" }, h.last_label));
    svg.appendChild(el("text", { x: 10, y: 12, "class": "label" }, label + " (0–" + Math.round(h.top) + "%)"));
    return svg;
  }

  function html(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function quickCountCard(root, qc, lang) {
    var nodes = [];
    var called = html("p", "qc-call");
    called.setAttribute("data-call", qc.call);
    called.appendChild(html("strong", "", qc.call_text));
    nodes.push(called);
    if (qc.warning_texts.length) {
      var list = html("ul", "qc-warnings");
      qc.warning_texts.forEach(function (w) { list.appendChild(html("li", "", w)); });
      nodes.push(list);
    }
    nodes.push(quickCountChart(qc, lang));
    nodes.push(html("p", "qc-lead", qc.lead_text));
    if (qc.adjusted) {
      var parts = Object.keys(qc.adjusted.estimate).map(function (code) {
        return code + " " + fmtPct(qc.adjusted.estimate[code], lang);
      });
      nodes.push(html("p", "muted qc-adjusted", root.getAttribute("data-adjusted-label") + " (" +
        qc.adjusted.method + "): " + parts.join(" · ")));
    }
    nodes.push(historyChart(qc.history, root.getAttribute("data-history-label")));
    nodes.push(html("p", "muted", root.getAttribute("data-sample-label") + ": " + fmtNumber(qc.counted, lang) +
      "/" + fmtNumber(qc.sample, lang) + " " + root.getAttribute("data-stations-label")));
    var fresh = html("p", "muted qc-freshness", qc.freshness_text);
    fresh.setAttribute("data-current", String(qc.freshness.current));
    nodes.push(fresh);
    return nodes;
  }

  function render(root, doc) {
    var lang = root.getAttribute("data-lang");
    var s = doc.stations;
    s.missing = Math.max(s.total - s.reported, 0);
    doc.progress = s.total ? 100 * s.reported / s.total : 0;
    root.querySelectorAll("[data-field]").forEach(function (node) {
      var name = node.getAttribute("data-field"), value = field(doc, name);
      if (name === "progress") node.textContent = fmtPct(value, lang);
      else if (name === "updated_local") node.textContent = value;
      else node.textContent = fmtNumber(value, lang);
    });
    var verified = root.querySelector('[data-bar="verified"]'), reported = root.querySelector('[data-bar="reported"]');
    var verifiedPct = s.total ? 100 * s.verified / s.total : 0;
    if (verified) verified.setAttribute("width", verifiedPct + "%");
    if (reported) {
      reported.setAttribute("x", verifiedPct + "%");
      reported.setAttribute("width", (s.total ? 100 * (s.reported - s.verified) / s.total : 0) + "%");
    }
    var votes = root.querySelector("#votes");
    if (votes) votes.replaceChildren(barChart(doc.candidates, lang));
    var activity = root.querySelector("#activity");
    if (activity) activity.replaceChildren(activityChart(doc.activity, lang));
    var qc = root.querySelector("#quick-count");
    if (qc && doc.quick_count) {
      qc.replaceChildren.apply(qc, quickCountCard(root, doc.quick_count, lang));
    }
    root.setAttribute("data-refreshed", doc.updated_at);
  }

  function startRefresh(root) {
    var url = root.getAttribute("data-url");
    function tick() {
      fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (r) { if (!r.ok) throw new Error(r.status); return r.json(); })
        .then(function (doc) { render(root, doc); })
        .catch(function () { /* keep the last numbers; try again next tick */ })
        .then(function () { setTimeout(tick, REFRESH_MS); });
    }
    setTimeout(tick, REFRESH_MS);
  }

  function sortable(table) {
    table.querySelectorAll("th[data-sort]").forEach(function (th, index) {
      function sort() {
        var numeric = th.getAttribute("data-type") === "num";
        var ascending = th.getAttribute("aria-sort") !== "ascending";
        table.querySelectorAll("th[aria-sort]").forEach(function (o) { o.removeAttribute("aria-sort"); });
        th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
        var body = table.tBodies[0];
        var rows = Array.prototype.slice.call(body.rows).filter(function (r) { return r.cells.length > index; });
        rows.sort(function (a, b) {
          var x = a.cells[index].getAttribute("data-value"), y = b.cells[index].getAttribute("data-value");
          var c = numeric ? parseFloat(x) - parseFloat(y) : x.localeCompare(y);
          return ascending ? c : -c;
        });
        rows.forEach(function (r) { body.appendChild(r); });
      }
      th.addEventListener("click", sort);
      th.addEventListener("keydown", function (e) { if (e.key === "Enter") sort(); });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var root = document.getElementById("overview");
    if (root) startRefresh(root);
    document.querySelectorAll("table.sortable").forEach(sortable);
  });
})();
