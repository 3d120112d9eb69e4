// disbench results site: sortable tables and a row filter. No dependencies, nothing fetched.
//
// A table with class "sortable" sorts by a column when its header is clicked: cells are
// compared by their data-sort attribute (numbers when the header has data-type="number",
// text otherwise; empty values last). The first click sorts in the header's data-first
// direction ("desc" for a metric where higher is better), the next click reverses.
// An <input data-filter> hides the rows of every table with class "filterable" whose text
// does not contain what is typed (case-insensitive; every word must appear).
"use strict";

(function () {
  function sortValue(cell, numeric) {
    const raw = cell ? (cell.dataset.sort !== undefined ? cell.dataset.sort : cell.textContent) : "";
    if (!numeric) return raw.trim().toLowerCase();
    const v = parseFloat(raw);
    return Number.isFinite(v) ? v : null;
  }

  function compare(a, b, numeric, sign) {
    if (a === null || a === "") return (b === null || b === "") ? 0 : 1;  // missing last
    if (b === null || b === "") return -1;
    if (numeric) return sign * (a - b);
    return sign * a.localeCompare(b, undefined, { numeric: true });
  }

  function sortTable(table, th) {
    const index = Array.prototype.indexOf.call(th.parentNode.children, th);
    const numeric = th.dataset.type === "number";
    const current = th.getAttribute("aria-sort");
    const first = th.dataset.first === "desc" ? "descending" : "ascending";
    const next = current === first ? (first === "ascending" ? "descending" : "ascending") : first;
    const sign = next === "ascending" ? 1 : -1;
    const body = table.tBodies[0];
    const rows = Array.from(body.rows).map(function (row, i) {
      return { row: row, key: sortValue(row.cells[index], numeric), i: i };
    });
    rows.sort(function (x, y) { return compare(x.key, y.key, numeric, sign) || x.i - y.i; });
    rows.forEach(function (r) { body.appendChild(r.row); });
    table.querySelectorAll("th[aria-sort]").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", next);
  }

  function applyFilter(input) {
    const words = input.value.toLowerCase().split(/\s+/).filter(Boolean);
    let shown = 0, total = 0;
    document.querySelectorAll("table.filterable").forEach(function (table) {
      Array.from(table.tBodies[0].rows).forEach(function (row) {
        const text = row.textContent.toLowerCase();
        const keep = words.every(function (w) { return text.indexOf(w) >= 0; });
        row.hidden = !keep;
        total += 1;
        if (keep) shown += 1;
      });
    });
    const count = document.getElementById(input.dataset.count || "");
    if (count) count.textContent = words.length ? shown + " of " + total + " rows" : "";
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table.sortable").forEach(function (table) {
      table.querySelectorAll("thead th").forEach(function (th) {
        th.tabIndex = 0;
        th.addEventListener("click", function () { sortTable(table, th); });
        th.addEventListener("keydown", function (e) {
          if (e.key === "Enter" || e.key === " ") { e.preventDefault(); sortTable(table, th); }
        });
      });
    });
    document.querySelectorAll("input[data-filter]").forEach(function (input) {
      input.addEventListener("input", function () { applyFilter(input); });
      if (input.value) applyFilter(input);
    });
  });
})();
