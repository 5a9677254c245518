// Draws every <canvas class="chart" data-chart="..."> with the vendored Chart.js, and
// sends the session's CSRF token (from <meta name="csrf-token">) with htmx requests.
"use strict";
(function () {
  const meta = document.querySelector('meta[name="csrf-token"]');
  document.body.addEventListener("htmx:configRequest", function (event) {
    if (meta) { event.detail.headers["X-CSRF-Token"] = meta.content; }
  });
  const colours = { started: "#4c6ef5", delivered: "#15aabf", approved: "#40c057", expired: "#fa5252" };
  document.querySelectorAll("canvas.chart").forEach(function (canvas) {
    const data = JSON.parse(canvas.dataset.chart);
    new Chart(canvas, {
      type: canvas.dataset.kind || "bar",
      data: {
        labels: data.labels,
        datasets: Object.keys(data.series).map(function (name) {
          return { label: name, data: data.series[name], backgroundColor: colours[name], borderColor: colours[name] };
        }),
      },
      options: { animation: false, responsive: true, maintainAspectRatio: false },
    });
  });
})();
