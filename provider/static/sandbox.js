// /sandbox: keep the one-time codes current without reloading the page.
// Each second the "s left" counters go down; when a code runs out (or every 30 s, for users who
// set one up meanwhile) the script asks this same page for its JSON and updates the cells.
// Without JavaScript, a <noscript> refresh reloads the page instead. Served from this origin only:
// the page's Content-Security-Policy allows no inline script.
(() => {
  "use strict";
  const table = document.getElementById("users");
  if (!table) return;
  const status = document.getElementById("codes-status");
  const codeCells = new Map();
  const factorCells = new Map();
  table.querySelectorAll("td[data-user]").forEach((td) => codeCells.set(td.dataset.user, td));
  table.querySelectorAll("td[data-factors-of]").forEach((td) => factorCells.set(td.dataset.factorsOf, td));
  let sinceFetch = 0;
  let fetching = false;

  function show(td, code, left) {
    td.textContent = "";
    if (!code) {
      td.textContent = "—";
      delete td.dataset.secondsLeft;
      return;
    }
    const value = document.createElement("code");
    value.textContent = code;
    const counter = document.createElement("span");
    counter.className = "left";
    counter.textContent = `${left} s left`;
    td.append(value, " ", counter);
    td.dataset.secondsLeft = String(left);
  }

  async function refresh() {
    fetching = true;
    try {
      const response = await fetch(window.location.pathname, {
        headers: { Accept: "application/json" },
        cache: "no-store",
      });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const body = await response.json();
      for (const user of body.users) {
        const codeCell = codeCells.get(user.username);
        if (codeCell) show(codeCell, user.code, user.seconds_left);
        const factorCell = factorCells.get(user.username);
        if (factorCell) factorCell.textContent = user.factors.join(", ");
      }
      sinceFetch = 0;
    } catch (error) {
      if (status) status.textContent = "The codes could not be refreshed: is the sandbox still running? Reload the page to try again.";
      sinceFetch = -10; // try again in a while, not every second
    } finally {
      fetching = false;
    }
  }

  setInterval(() => {
    if (fetching) return;
    sinceFetch += 1;
    let expired = sinceFetch >= 30;
    for (const td of codeCells.values()) {
      if (!td.dataset.secondsLeft) continue;
      const left = Number(td.dataset.secondsLeft) - 1;
      td.dataset.secondsLeft = String(left);
      const counter = td.querySelector(".left");
      if (left <= 0) expired = true;
      else if (counter) counter.textContent = `${left} s left`;
    }
    if (expired) refresh();
  }, 1000);
})();
