// Runs in the report page (plain ES2017, no modules, so any recent browser opens it from disk).
// Reads the JSON the report embeds and draws the charts with Chart.js and the example thumbnails.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var drawn = new Set();
  Chart.register({
    id: "distillRendered",
    afterRender: function (chart) {
      drawn.add(chart.canvas.id);
      document.body.dataset.chartsRendered = String(drawn.size);
    }
  });
  // Each point's name next to it, so a reader needs no legend lookup. placeLabels (chart-geometry,
  // inlined before this script) keeps names off each other and off the points, however close the
  // models sit; the boxes are left on the canvas for tests.
  Chart.register({
    id: "pointNames",
    afterDatasetsDraw: function (chart) {
      if (!chart.options.plugins.pointNames || !chart.options.plugins.pointNames.show) return;
      var ctx = chart.ctx, area = chart.chartArea, height = 14;
      ctx.save();
      ctx.font = "12px " + Chart.defaults.font.family;
      var named = [];
      chart.data.datasets.forEach(function (ds, i) {
        if (ds.pareto) return;
        chart.getDatasetMeta(i).data.forEach(function (el) {
          named.push({ label: ds.label, color: ds.borderColor, x: el.x, y: el.y, width: Math.ceil(ctx.measureText(ds.label).width) + 2, height: height });
        });
      });
      var boxes = placeLabels(named, { left: area.left, top: 0, right: chart.width, bottom: area.bottom }, 6);
      ctx.textBaseline = "top";
      boxes.forEach(function (b, i) {
        var p = named[i];
        if (b.leader) {
          ctx.strokeStyle = p.color;
          ctx.lineWidth = 1;
          ctx.beginPath();
          ctx.moveTo(p.x, p.y);
          ctx.lineTo(Math.min(Math.max(p.x, b.left), b.left + b.width), Math.min(Math.max(p.y, b.top), b.top + b.height));
          ctx.stroke();
        }
        // In the point's colour: with names moved apart, colour says which point a name belongs to.
        ctx.fillStyle = p.color;
        ctx.fillText(p.label, b.left + 1, b.top + 1);
      });
      ctx.restore();
      chart.canvas.dataset.labelBoxes = JSON.stringify(boxes.map(function (b, i) { return { label: named[i].label, left: b.left, top: b.top, width: b.width, height: b.height, leader: b.leader }; }));
    }
  });
  // Vertical bars spanning mean ± std over seeds (the data point carries yMin and yMax).
  Chart.register({
    id: "errorBars",
    afterDatasetsDraw: function (chart) {
      var y = chart.scales.y;
      var ctx = chart.ctx;
      ctx.save();
      chart.data.datasets.forEach(function (ds, i) {
        chart.getDatasetMeta(i).data.forEach(function (el, j) {
          var p = ds.data[j];
          if (p == null || p.yMin == null || p.yMax == null || p.yMax <= p.yMin) return;
          var top = y.getPixelForValue(p.yMax), bottom = y.getPixelForValue(p.yMin);
          ctx.strokeStyle = ds.borderColor;
          ctx.lineWidth = 1.5;
          ctx.beginPath();
          ctx.moveTo(el.x, top); ctx.lineTo(el.x, bottom);
          ctx.moveTo(el.x - 4, top); ctx.lineTo(el.x + 4, top);
          ctx.moveTo(el.x - 4, bottom); ctx.lineTo(el.x + 4, bottom);
          ctx.stroke();
        });
      });
      ctx.restore();
    }
  });
  Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
  Chart.defaults.color = "#3b4654";
  Chart.defaults.animation = false;
  Chart.defaults.maintainAspectRatio = false;

  function alpha(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + a + ")";
  }
  // Legend entries only for the mean lines; the seed-range bands are unlabeled.
  var legend = { labels: { filter: function (item, d) { return !d.datasets[item.datasetIndex].band; } } };

  function lineChart(id, series, yTitle, digits) {
    var datasets = [];
    series.forEach(function (s) {
      var seeded = s.points.some(function (p) { return p.n > 1; });
      if (seeded) {
        datasets.push({ band: true, label: s.label + " min", data: s.points.map(function (p) { return { x: p.epoch, y: p.min }; }), borderWidth: 0, pointRadius: 0, backgroundColor: alpha(s.color, 0.15), fill: false });
        datasets.push({ band: true, label: s.label + " max", data: s.points.map(function (p) { return { x: p.epoch, y: p.max }; }), borderWidth: 0, pointRadius: 0, backgroundColor: alpha(s.color, 0.15), fill: "-1" });
      }
      datasets.push({ label: s.label, data: s.points.map(function (p) { return { x: p.epoch, y: p.mean }; }), borderColor: s.color, backgroundColor: s.color, borderWidth: 2, pointRadius: 3, tension: 0 });
    });
    return new Chart(document.getElementById(id), {
      type: "line",
      data: { datasets: datasets },
      options: {
        interaction: { mode: "nearest", intersect: false },
        scales: {
          x: { type: "linear", title: { display: true, text: "epoch" }, ticks: { precision: 0, stepSize: 1 } },
          y: { title: { display: true, text: yTitle } }
        },
        plugins: {
          legend: legend,
          tooltip: { filter: function (item) { return !item.dataset.band; }, callbacks: { label: function (c) { return c.dataset.label + ": " + c.parsed.y.toFixed(digits); } } }
        }
      }
    });
  }

  // Log-axis labels only at 1, 2 and 5 × 10^n; Chart.js would label every minor tick.
  function logTicks(fmt) {
    return function (v) {
      var m = v / Math.pow(10, Math.floor(Math.log10(v) + 1e-9));
      return [1, 2, 5].some(function (k) { return Math.abs(m - k) < 1e-6; }) ? fmt(v) : "";
    };
  }

  // Accuracy (mean, with ± std bars) against a cost on a log axis, every model a named point, and
  // the Pareto front: the models no other model beats on both accuracy and that cost.
  function tradeoffChart(id, points, costKey, xTitle, fmtCost, tickValues) {
    var pts = points.filter(function (m) { return m[costKey] > 0 && isFinite(m.accuracy); });
    var xs = pts.map(function (m) { return m[costKey]; });
    var datasets = pts.map(function (m) {
      return {
        label: m.label,
        data: [{ x: m[costKey], y: m.accuracy, yMin: m.accuracy - m.accuracyStd, yMax: m.accuracy + m.accuracyStd }],
        backgroundColor: m.color, borderColor: m.color, pointRadius: 5, pointHoverRadius: 7
      };
    });
    var front = pts.slice().sort(function (a, b) { return a[costKey] - b[costKey]; })
      .filter(function (m, i, sorted) { return sorted.slice(0, i).every(function (o) { return o.accuracy < m.accuracy; }); });
    datasets.push({ pareto: true, type: "line", label: "Pareto front", data: front.map(function (m) { return { x: m[costKey], y: m.accuracy }; }), borderColor: "#9aa4b1", borderDash: [5, 4], borderWidth: 1.5, pointRadius: 0, fill: false, stepped: "before" });
    return new Chart(document.getElementById(id), {
      type: "scatter",
      data: { datasets: datasets },
      options: {
        layout: { padding: { top: 16, right: 60 } },
        scales: {
          // "grace" does not apply to log axes, so their bounds are padded by hand (×/÷ 1.8).
          x: {
            type: "logarithmic", min: Math.min.apply(null, xs) / 1.8, max: Math.max.apply(null, xs) * 1.8, title: { display: true, text: xTitle },
            ticks: { maxRotation: 0, autoSkip: false, callback: tickValues ? fmtCost : logTicks(fmtCost) },
            // Sizes are ticked at round binary values (200 KiB = 204,800 B), so each label is its tick's value.
            afterBuildTicks: tickValues ? function (axis) { axis.ticks = tickValues(axis.min, axis.max).map(function (v) { return { value: v }; }); } : undefined
          },
          y: { title: { display: true, text: "test accuracy (%)" }, grace: "15%" }
        },
        plugins: {
          pointNames: { show: true },
          legend: { labels: { filter: function (item, d) { return !!d.datasets[item.datasetIndex].pareto; } } },
          tooltip: { callbacks: { label: function (c) { return c.dataset.label + ": " + c.parsed.y.toFixed(2) + " %, " + fmtCost(c.parsed.x); } } }
        }
      }
    });
  }

  function ms(v) { return v < 1 ? +(v * 1000).toPrecision(3) + " µs" : +v.toPrecision(3) + " ms"; }

  lineChart("chart-val-accuracy", data.valAccuracy, "validation accuracy (%)", 2);
  lineChart("chart-val-loss", data.valLoss, "validation loss (NLL, nats)", 4);
  lineChart("chart-student-terms", data.studentTerms, "training loss term (mean over the epoch)", 4);
  tradeoffChart("chart-accuracy-latency", data.tradeoff, "latency", "p50 latency at batch 1 (log scale)", ms);
  tradeoffChart("chart-accuracy-size", data.tradeoff, "onnxBytes", "ONNX file size (log scale)", byteTickLabel, binaryByteTicks);

  if (data.perClass) {
    new Chart(document.getElementById("chart-per-class"), {
      type: "bar",
      data: {
        labels: data.perClass.classLabels,
        datasets: data.perClass.series.map(function (s) { return { label: s.label, data: s.errors, backgroundColor: s.color }; })
      },
      options: { scales: { x: { title: { display: true, text: "true class" } }, y: { beginAtZero: true, title: { display: true, text: "test errors (one model; mean over seeds)" } } } }
    });
  }

  // Thumbnails of the examples the student and teacher disagree on: raw pixels from the JSON.
  document.querySelectorAll("canvas.thumb").forEach(function (canvas) {
    var bytes = atob(canvas.dataset.pixels);
    var w = Number(canvas.dataset.width), h = Number(canvas.dataset.height), channels = Number(canvas.dataset.channels || 1);
    canvas.width = w; canvas.height = h;
    var ctx = canvas.getContext("2d");
    var img = ctx.createImageData(w, h);
    for (var i = 0; i < w * h; i++) {
      if (channels === 3) { // planes [R, G, B], as models see them
        for (var c = 0; c < 3; c++) img.data[4 * i + c] = bytes.charCodeAt(c * w * h + i);
      } else {
        var v = bytes.charCodeAt(i);
        img.data[4 * i] = img.data[4 * i + 1] = img.data[4 * i + 2] = 255 - v; // ink dark on white
      }
      img.data[4 * i + 3] = 255;
    }
    ctx.putImageData(img, 0, 0);
    canvas.dataset.drawn = "1";
  });
  document.body.dataset.thumbnailsDrawn = String(document.querySelectorAll("canvas.thumb[data-drawn]").length);
})();
