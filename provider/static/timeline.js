// /sandbox/timeline: new exchanges appear without reloading the page.
// Every two seconds the script asks this same page for its JSON and, when the steps changed,
// rebuilds the table's rows (as text: nothing received is ever parsed as HTML). Without
// JavaScript, a <noscript> refresh reloads the page instead. Served from this origin only: the
// page's Content-Security-Policy allows no inline script.
(() => {
  "use strict";
  const table = document.getElementById("timeline");
  if (!table) return;
  const box = document.getElementById("timeline-box");
  const empty = document.getElementById("timeline-empty");
  const live = document.getElementById("live");
  const body = table.tBodies[0];
  const EVERY_MS = 2000;
  let shown = null; // the JSON of the steps on the page, once fetched

  function cell(className, text) {
    const td = document.createElement("td");
    td.className = className;
    td.textContent = text;
    return td;
  }

  function row(step) {
    const tr = document.createElement("tr");
    tr.dataset.kind = step.kind || "";
    const iso = new Date(step.at * 1000).toISOString().replace(".000Z", "Z");
    const when = cell("when", "");
    const time = document.createElement("time");
    time.dateTime = iso;
    time.textContent = iso.slice(11, 19);
    when.append(time);
    tr.append(when, cell("from", step.from), cell("to", step.to), cell("what", step.text));
    return tr;
  }

  async function refresh() {
    try {
      const response = await fetch(window.location.pathname, {
        headers: { Accept: "application/json" },
        cache: "no-store",
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const text = await response.text();
      if (text !== shown) {
        const steps = JSON.parse(text).steps;
        body.replaceChildren(...steps.map(row));
        box.hidden = steps.length === 0;
        empty.hidden = steps.length !== 0;
        shown = text;
      }
      live.textContent = "New exchanges appear here as they happen.";
    } catch (error) {
      live.textContent = "The timeline could not be refreshed: is the sandbox still running? It tries again.";
    }
  }

  refresh();
  setInterval(refresh, EVERY_MS);
})();
