/* tofu-report: filters, and the charts (drawn with uPlot). Reads only what the page embeds. */
(function () {
  "use strict";
  var body = document.body;

  /* Logs: by level, and by text. */
  var levelBoxes = document.querySelectorAll("input[data-level-filter]");
  var logSearch = document.getElementById("log-search");
  function filterLogs() {
    var hiddenLevels = {};
    levelBoxes.forEach(function (box) {
      if (!box.checked) hiddenLevels[box.getAttribute("data-level-filter")] = true;
    });
    var query = logSearch ? logSearch.value.toLowerCase() : "";
    var shown = 0, rows = document.querySelectorAll("#logs tbody tr");
    rows.forEach(function (row) {
      var visible = !hiddenLevels[row.getAttribute("data-level")] &&
        (!query || row.textContent.toLowerCase().indexOf(query) >= 0);
      row.hidden = !visible;
      if (visible) shown++;
    });
    var count = document.getElementById("log-count");
    if (count) count.textContent = shown + " of " + rows.length + " shown";
  }
  levelBoxes.forEach(function (box) { box.addEventListener("change", filterLogs); });
  if (logSearch) logSearch.addEventListener("input", filterLogs);
  filterLogs();

  /* Measurements: failures only. */
  var onlyFailures = document.getElementById("only-failures");
  if (onlyFailures) {
    onlyFailures.addEventListener("change", function () {
      document.querySelectorAll("table.measurements tbody tr").forEach(function (row) {
        row.hidden = onlyFailures.checked && row.getAttribute("data-outcome") !== "FAIL";
      });
    });
  }

  /* Charts. */
  var charts = document.querySelectorAll("[data-chart]");
  var pending = charts.length;
  function allDrawn() {
    body.setAttribute("data-render-ms", String(Math.round(performance.now())));
  }
  if (!pending || typeof uPlot === "undefined") {
    allDrawn();
    return;
  }

  var COLORS = { limit: "#b91c1c", marginal: "#b45309", line: "#2563eb" };
  /* The lines of a 2-D sweep, one per value of its second dimension. */
  var PALETTE = ["#2563eb", "#059669", "#7c3aed", "#d97706", "#0891b2", "#db2777",
    "#4b5563", "#65a30d", "#9333ea", "#0d9488", "#c2410c", "#1d4ed8"];

  function finite(v) { return typeof v === "number" && isFinite(v); }

  function limitLines(d) {
    var lines = [];
    if (finite(d.lower)) lines.push({ value: d.lower, label: "lower limit " + d.lower, kind: "limit" });
    if (finite(d.upper)) lines.push({ value: d.upper, label: "upper limit " + d.upper, kind: "limit" });
    if (finite(d.marginalLower)) lines.push({ value: d.marginalLower, label: "marginal " + d.marginalLower, kind: "marginal" });
    if (finite(d.marginalUpper)) lines.push({ value: d.marginalUpper, label: "marginal " + d.marginalUpper, kind: "marginal" });
    return lines;
  }

  /* Shades what lies outside the limits, under the series. */
  function drawBands(u, d) {
    var ctx = u.ctx, b = u.bbox;
    ctx.save();
    ctx.fillStyle = "rgba(185, 28, 28, 0.07)";
    if (finite(d.upper)) {
      var top = Math.max(b.top, Math.min(b.top + b.height, u.valToPos(d.upper, "y", true)));
      ctx.fillRect(b.left, b.top, b.width, top - b.top);
    }
    if (finite(d.lower)) {
      var bottom = Math.max(b.top, Math.min(b.top + b.height, u.valToPos(d.lower, "y", true)));
      ctx.fillRect(b.left, bottom, b.width, b.top + b.height - bottom);
    }
    ctx.restore();
  }

  /* Draws the limit lines over the series; returns how many of each kind were drawn. */
  function drawLimits(u, lines) {
    var ctx = u.ctx, b = u.bbox, ratio = uPlot.pxRatio || 1;
    var drawn = { limit: 0, marginal: 0 };
    ctx.save();
    ctx.font = (11 * ratio) + "px system-ui, sans-serif";
    lines.forEach(function (line) {
      var y = Math.round(u.valToPos(line.value, "y", true)) + 0.5;
      if (!(y >= b.top - 1 && y <= b.top + b.height + 1)) return;
      ctx.strokeStyle = ctx.fillStyle = COLORS[line.kind];
      ctx.lineWidth = (line.kind === "limit" ? 1.5 : 1) * ratio;
      ctx.setLineDash(line.kind === "limit" ? [8 * ratio, 4 * ratio] : [3 * ratio, 3 * ratio]);
      ctx.beginPath();
      ctx.moveTo(b.left, y);
      ctx.lineTo(b.left + b.width, y);
      ctx.stroke();
      var width = ctx.measureText(line.label).width;
      ctx.fillText(line.label, b.left + b.width - width - 6 * ratio, y - 4 * ratio);
      drawn[line.kind]++;
    });
    ctx.restore();
    return drawn;
  }

  function draw(el) {
    var source = document.getElementById(el.getAttribute("data-chart"));
    if (!source) return;
    var d = JSON.parse(source.textContent);
    el.setAttribute("role", "img");
    el.setAttribute("aria-label", String(d.title));
    var lines = limitLines(d);
    /* One line, or one per value of a 2-D sweep's second dimension (nulls where it has no point). */
    var ys = d.series ? d.series.map(function (s) { return s.y; }) : [d.y];
    var lineSeries = d.series
      ? d.series.map(function (s, k) {
        return { label: s.label, stroke: PALETTE[k % PALETTE.length], width: 1.5, spanGaps: true, points: { show: false } };
      })
      : [{ label: d.yLabel, stroke: COLORS.line, width: 1, points: { show: false } }];
    el.setAttribute("data-lines", String(ys.length));
    function isOutside(y) {
      return finite(y) && ((finite(d.lower) && y < d.lower) || (finite(d.upper) && y > d.upper));
    }
    /* The points outside the limits, drawn as dots over the lines. */
    var outside = d.x.map(function (_, i) {
      for (var k = 0; k < ys.length; k++) if (isOutside(ys[k][i])) return ys[k][i];
      return null;
    });
    var first = true;
    var opts = {
      width: Math.max(320, el.clientWidth || 900),
      height: 360,
      scales: {
        x: { time: false },
        y: {
          range: function (u, min, max) {
            lines.forEach(function (l) {
              min = min == null ? l.value : Math.min(min, l.value);
              max = max == null ? l.value : Math.max(max, l.value);
            });
            if (min == null || max == null) return [0, 1];
            return uPlot.rangeNum(min, max, 0.1, true);
          },
        },
      },
      axes: [
        { label: d.xLabel, stroke: "#374151", grid: { stroke: "#eef0f3" } },
        { label: d.yLabel, stroke: "#374151", grid: { stroke: "#eef0f3" }, size: 70 },
      ],
      series: [{ label: d.xLabel }].concat(lineSeries, [
        {
          label: "outside the limits", stroke: COLORS.limit, fill: COLORS.limit, width: 0,
          paths: function () { return null; },
          points: { show: true, size: 7, stroke: COLORS.limit, fill: COLORS.limit },
        },
      ]),
      hooks: {
        drawClear: [function (u) { drawBands(u, d); }],
        draw: [function (u) {
          var drawn = drawLimits(u, lines);
          el.setAttribute("data-limit-lines", String(drawn.limit));
          el.setAttribute("data-marginal-lines", String(drawn.marginal));
          el.setAttribute("data-chart-drawn", "1");
          if (first) {
            first = false;
            if (--pending === 0) allDrawn();
          }
        }],
      },
    };
    var plot = new uPlot(opts, [d.x].concat(ys, [outside]), el);
    var timer = null;
    window.addEventListener("resize", function () {
      clearTimeout(timer);
      timer = setTimeout(function () {
        plot.setSize({ width: Math.max(320, el.clientWidth || 900), height: 360 });
      }, 150);
    });
  }

  charts.forEach(function (el) {
    try {
      draw(el);
    } catch (e) {
      el.setAttribute("data-chart-error", String(e));
      el.textContent = "This chart could not be drawn: " + e;
      if (--pending === 0) allDrawn();
    }
  });
})();
