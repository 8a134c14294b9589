// The dashboard's only script (no build step): polls the JSON twin of a live page, draws the
// charts with the vendored uPlot, and copies a new private key. Every page works without it;
// this only keeps the numbers moving. Text goes in through textContent, never innerHTML.
"use strict";

(function () {
  const css = getComputedStyle(document.documentElement);
  const colour = (name, fallback) => css.getPropertyValue(name).trim() || fallback;
  const VIEWS = colour("--views", "#0b5cad");
  const VIEWERS = colour("--viewers", "#a23b00");

  function formatTime(epoch) {
    if (epoch === null || epoch === undefined) return "—";
    return new Date(epoch * 1000).toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  function setFields(root, document) {
    for (const cell of root.querySelectorAll("[data-field]")) {
      const value = document[cell.dataset.field];
      if (value === undefined) continue;
      cell.textContent = "time" in cell.dataset ? formatTime(value) : String(value);
    }
  }

  async function poll(url, apply, seconds) {
    const status = document.querySelector("[data-updated]");
    for (;;) {
      try {
        const answer = await fetch(url, { credentials: "same-origin", cache: "no-store" });
        if (answer.redirected || answer.status === 401 || answer.status === 303) {
          window.location.assign("/dashboard/sign-in?ended=1"); // the session ended
          return;
        }
        if (answer.ok) {
          apply(await answer.json());
          if (status) status.textContent = "Last update " + new Date().toLocaleTimeString() + ".";
        }
      } catch (error) {
        if (status) status.textContent = "Not updating: the server does not answer.";
      }
      await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    }
  }

  // Minutes are UTC everywhere on the dashboard, whatever the browser's own time zone.
  const utc = (seconds) => uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC");

  function columns(series) {
    const x = [], views = [], viewers = [], most = [];
    for (const m of series) {
      x.push(m[0]);
      views.push(m[1]);
      viewers.push(m[2]);
      most.push(m[3]);
    }
    return [x, views, viewers, most];
  }

  // -- the live list: rows rebuilt from each answer, one sparkline per row ------------------

  const sparks = new Map();

  function sparkline(cell, series, key) {
    const data = columns(series).slice(0, 2);
    let chart = sparks.get(key);
    if (chart && chart.root.isConnected) {
      chart.setData(data);
      return chart;
    }
    chart = new uPlot(
      {
        width: window.matchMedia("(max-width: 40rem)").matches ? 80 : 140,
        height: 32,
        legend: { show: false },
        cursor: { show: false },
        select: { show: false },
        axes: [{ show: false }, { show: false }],
        scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
        series: [{}, { stroke: VIEWS, width: 1.5, fill: VIEWS + "22" }],
      },
      data,
      cell,
    );
    sparks.set(key, chart);
    return chart;
  }

  function row(entry) {
    const tr = document.createElement("tr");
    tr.dataset.row = entry.id_type + "/" + entry.id;
    const th = document.createElement("th");
    th.scope = "row";
    const link = document.createElement("a");
    link.href = "/dashboard/ids/" + entry.id_type + "/" + encodeURIComponent(entry.id);
    link.textContent = entry.id;
    th.append(link);
    tr.append(th);
    for (const [field, numeric] of [["id_type", false], ["views", true], ["viewers", true], ["peak_views", true]]) {
      const td = document.createElement("td");
      td.className = numeric ? "num" : "narrow-hide";
      td.dataset.field = field;
      td.textContent = String(entry[field]);
      tr.append(td);
    }
    const spark = document.createElement("td");
    spark.className = "spark";
    spark.dataset.spark = "";
    spark.setAttribute("aria-label", "Views over the last hour, peak " + entry.peak_views);
    tr.append(spark);
    return tr;
  }

  function liveList(table) {
    const body = table.tBodies[0];
    const empty = document.querySelector("[data-empty]");
    const total = document.querySelector("[data-live-total]");
    return function apply(answer) {
      if (total) setFields(total, answer.environment);
      const kept = new Map();
      for (const tr of body.rows) kept.set(tr.dataset.row, tr);
      const wanted = [];
      for (const entry of answer.data) {
        const key = entry.id_type + "/" + entry.id;
        let tr = kept.get(key);
        if (tr && tr.querySelector("[data-spark]")) {
          setFields(tr, entry);
          tr.querySelector("[data-spark]").setAttribute(
            "aria-label", "Views over the last hour, peak " + entry.peak_views);
        } else {
          tr = row(entry);
        }
        wanted.push([tr, entry, key]);
      }
      // Re-append in rank order: rows keep their focus and their chart as they move.
      for (const [tr] of wanted) body.append(tr);
      const present = new Set(wanted.map(([, , key]) => key));
      for (const [key, tr] of kept) if (!present.has(key)) tr.remove();
      for (const [tr, entry, key] of wanted) sparkline(tr.querySelector("[data-spark]"), entry.series, key);
      if (empty) empty.hidden = answer.data.length > 0;
    };
  }

  // -- one id: the per-minute chart ---------------------------------------------------------

  function detailChart(section) {
    const target = document.getElementById("chart");
    let chart = null;
    return function apply(answer) {
      setFields(section, answer);
      const data = columns(answer.series);
      if (chart) {
        chart.setData(data);
        return;
      }
      chart = new uPlot(
        {
          width: Math.max(280, Math.min(target.clientWidth || 720, 960)),
          height: 260,
          tzDate: utc,
          scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
          series: [
            { label: "Minute" },
            { label: "Views", stroke: VIEWS, width: 2 },
            { label: "Viewers", stroke: VIEWERS, width: 2, dash: [6, 3] },
            { label: "Most views", stroke: VIEWS + "88", width: 1, dash: [2, 2] },
          ],
        },
        data,
        target,
      );
      window.addEventListener("resize", () => {
        chart.setSize({ width: Math.max(280, Math.min(target.clientWidth, 960)), height: 260 });
      });
    };
  }

  // -- copy a new private key --------------------------------------------------------------

  function copyButtons() {
    for (const button of document.querySelectorAll("[data-copy]")) {
      button.addEventListener("click", async () => {
        const field = document.getElementById(button.dataset.copy);
        const said = document.querySelector('[data-copied-for="' + button.dataset.copy + '"]');
        let copied = false;
        try {
          await navigator.clipboard.writeText(field.value);
          copied = true;
        } catch (error) {
          // No clipboard API (plain http on another host): select it for Ctrl+C instead.
          field.focus();
          field.select();
          copied = document.execCommand && document.execCommand("copy");
        }
        if (said) said.textContent = copied ? "Copied." : "Selected: press Ctrl+C to copy.";
      });
    }
  }

  function start() {
    copyButtons();
    if (document.querySelector("[data-shown-once]")) {
      // This page answers a POST: without this a reload would post again (another key).
      history.replaceState(null, "", window.location.href);
    }
    const table = document.querySelector("table[data-poll]");
    if (table) poll(table.dataset.poll, liveList(table), Number(table.dataset.pollSeconds) || 5);
    const section = document.querySelector("[data-detail]");
    if (section) poll(section.dataset.detail, detailChart(section), Number(section.dataset.pollSeconds) || 5);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
