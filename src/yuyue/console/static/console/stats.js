/* The statistics page's charts, drawn with the vendored ECharts from the JSON in #stats-data.
   No inline script: the page only carries data (json_script), this file draws it. */
(function () {
  "use strict";

  var PALETTE = ["#1664ff", "#e34d59", "#ff8800", "#00a870", "#8d4eda", "#14c9c9"];

  function base() {
    return {
      color: PALETTE,
      animation: false,
      textStyle: { fontFamily: "inherit" },
      // Tooltips drawn on the canvas: ECharts' HTML tooltips carry style attributes, which the
      // strict CSP (no 'unsafe-inline' styles) blocks.
      tooltip: { trigger: "axis", confine: true, renderMode: "richText" }
    };
  }

  function heatmap(spec) {
    var max = 0;
    spec.cells.forEach(function (cell) { if (cell[2] > max) { max = cell[2]; } });
    return Object.assign(base(), {
      tooltip: {
        renderMode: "richText",
        position: "top",
        formatter: function (p) {
          return spec.weekdays[p.value[1]] + " " + spec.hours[p.value[0]] + ":00 · " + spec.name + " " + p.value[2];
        }
      },
      grid: { left: 64, right: 16, top: 8, bottom: 64 },
      xAxis: { type: "category", data: spec.hours, splitArea: { show: true } },
      yAxis: { type: "category", data: spec.weekdays, inverse: true, splitArea: { show: true } },
      visualMap: {
        min: 0, max: Math.max(max, 1), calculable: true, orient: "horizontal", left: "center", bottom: 0,
        itemHeight: 120, inRange: { color: ["#f2f6ff", "#8fb4ff", "#1664ff", "#0b2f8a"] }
      },
      series: [{ name: spec.name, type: "heatmap", data: spec.cells, emphasis: { itemStyle: { borderColor: "#333" } } }]
    });
  }

  function axes(spec, type) {
    return Object.assign(base(), {
      legend: { top: 0 },
      grid: { left: 48, right: 16, top: 36, bottom: 28 },
      xAxis: { type: "category", data: spec.labels },
      yAxis: { type: "value" },
      series: spec.series.map(function (s) {
        return { name: s.name, type: type, data: s.data, connectNulls: true, barMaxWidth: 28 };
      })
    });
  }

  function horizontal(spec, max) {
    var option = Object.assign(base(), {
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" }, confine: true, renderMode: "richText" },
      grid: { left: 8, right: 48, top: 8, bottom: 24, containLabel: true },
      xAxis: { type: "value", max: max || null },
      yAxis: { type: "category", data: spec.labels, inverse: true, axisLabel: { width: 160, overflow: "truncate" } },
      series: spec.series.map(function (s) {
        return { name: s.name, type: "bar", data: s.data, barMaxWidth: 18, label: { show: true, position: "right" } };
      })
    });
    return option;
  }

  function optionFor(kind, spec, element) {
    if (kind === "heatmap") { return heatmap(spec); }
    if (kind === "lines") { return axes(spec, "line"); }
    if (kind === "hbar") {
      // Room for every bar: one row per label.
      element.style.height = Math.max(160, spec.labels.length * 30 + 48) + "px";
      return horizontal(spec, Number(element.getAttribute("data-max")) || null);
    }
    return axes(spec, "bar");
  }

  function isEmpty(kind, spec) {
    return kind === "heatmap" ? spec.cells.length === 0 : spec.labels.length === 0;
  }

  function draw() {
    var source = document.getElementById("stats-data");
    if (!source || !window.echarts) { return; }
    var data = JSON.parse(source.textContent);
    var drawn = [];
    document.querySelectorAll("[data-chart]").forEach(function (element) {
      var spec = data[element.getAttribute("data-chart")];
      var kind = element.getAttribute("data-kind");
      if (!spec) { return; }
      if (isEmpty(kind, spec)) {
        element.classList.add("chart-empty");
        element.setAttribute("data-empty", "1");
        return;
      }
      var chart = window.echarts.init(element, null, { renderer: "canvas" });
      chart.setOption(optionFor(kind, spec, element));
      chart.resize();
      drawn.push(chart);
    });
    window.addEventListener("resize", function () {
      drawn.forEach(function (chart) { chart.resize(); });
    });
  }

  draw();
})();
