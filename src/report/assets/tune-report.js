// Runs in a tune or shrink report page (plain ES2017, no modules): draws the scatter charts that the
// page's JSON describes with Chart.js.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("tune-data").textContent);
  var drawn = 0;
  Chart.register({
    id: "distillRendered",
    afterRender: function () { document.body.dataset.chartsRendered = String(++drawn); }
  });

  // Log axes ignore "grace": pad their bounds by hand so no point sits on the frame.
  function logBounds(datasets) {
    var xs = [];
    datasets.forEach(function (d) { d.data.forEach(function (p) { if (p.x > 0) xs.push(p.x); }); });
    if (!xs.length) return {};
    return { min: Math.min.apply(null, xs) / 1.6, max: Math.max.apply(null, xs) * 1.6 };
  }

  // Log-axis labels only at 1, 2 and 5 × 10^n (Chart.js would also label the padded bounds).
  function roundTicksOnly(v) {
    var m = v / Math.pow(10, Math.floor(Math.log10(v) + 1e-9));
    return [1, 2, 5].some(function (k) { return Math.abs(m - k) < 1e-6; }) ? v.toLocaleString("en-US") : "";
  }

  data.charts.forEach(function (c) {
    var x = { title: { display: true, text: c.xTitle } };
    if (c.logX) {
      var b = logBounds(c.datasets);
      x.type = "logarithmic";
      x.min = b.min;
      x.max = b.max;
      x.ticks = { maxRotation: 0, autoSkip: false, callback: roundTicksOnly };
    }
    new Chart(document.getElementById(c.id), {
      type: "scatter",
      data: { datasets: c.datasets },
      options: {
        maintainAspectRatio: false,
        animation: false,
        layout: { padding: 12 },
        plugins: { tooltip: { callbacks: { label: function (t) { var name = t.raw.label || t.raw.id; return (name ? name + ": " : "") + t.raw.y.toFixed(4); } } } },
        scales: { x: x, y: { title: { display: true, text: c.yTitle }, grace: "15%" } }
      }
    });
  });
})();
