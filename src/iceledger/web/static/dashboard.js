// The dashboard's only script. Charts are Vega-Lite specs from the JSON API, drawn by vega-embed
// with `ast: true` so that Vega interprets expressions instead of compiling them with
// `new Function` (the Content-Security-Policy forbids eval). No inline script, no CDN.
"use strict";

const EMBED_OPTIONS = {
  actions: false,
  ast: true,
  defaultStyle: false,
  renderer: "svg",
  tooltip: { disableDefaultStyle: true },
};
// Above this many rows a chart is drawn on a canvas: thousands of SVG nodes make a page crawl.
const SVG_MAX_ROWS = 5000;

// Drawn views by metric name ("map" for the map), for people poking at the page and for tests.
window.iceledgerViews = {};

function pageFilters() {
  const form = document.getElementById("filters");
  const chosen = { from: "", to: "", filters: {} };
  if (!form) return chosen;
  chosen.from = form.elements.from.value;
  chosen.to = form.elements.to.value;
  for (const select of form.querySelectorAll("select[data-filter]")) {
    if (select.value) chosen.filters[select.dataset.filter] = select.value;
  }
  return chosen;
}

function cardQuery(card) {
  const chosen = pageFilters();
  const allowed = JSON.parse(card.dataset.filters || "[]");
  const query = new URLSearchParams();
  const by = card.querySelector("select.by");
  if (by && by.value) query.append("by", by.value);
  const value = card.querySelector("select.value");
  if (value && value.value) query.append("value", value.value);
  if (chosen.from) query.append("from", chosen.from);
  if (chosen.to) query.append("to", chosen.to);
  const ignored = [];
  for (const [name, value] of Object.entries(chosen.filters)) {
    if (allowed.includes(name)) query.append(name, value);
    else ignored.push(name);
  }
  return { query: query.toString(), ignored };
}

function describe(meta, ignored) {
  const parts = [];
  const period = meta.period || {};
  // Rows of a month, quarter or fiscal year name the whole of it: "2026-01", never
  // "2026-01-01" (which reads as one day); fiscal years as FY2025.
  if (period.data_from) {
    const grain = period.grain;
    if (grain === "fiscal_year") {
      const first = Number(period.data_from.slice(0, 4)) + 1;
      parts.push(`Period: FY${first} to FY${period.data_to.slice(0, 4)} (fiscal years).`);
    } else if (grain === "month" || grain === "quarter") {
      parts.push(`Period: ${period.data_from.slice(0, 7)} to ${period.data_to.slice(0, 7)} (${grain}s).`);
    } else {
      parts.push(`Period: ${period.data_from} to ${period.data_to}.`);
    }
  }
  parts.push(`${meta.row_count} row${meta.row_count === 1 ? "" : "s"}.`);
  const suppression = meta.suppression;
  if (suppression && (suppression.small_cells || suppression.complementary_cells)) {
    parts.push(
      `${suppression.small_cells} count(s) under ${suppression.k} shown as <${suppression.k}; ` +
        `${suppression.complementary_cells} more hidden so they cannot be worked out.`
    );
  }
  if (ignored.length) parts.push(`Not filtered by ${ignored.join(", ")} (this metric cannot be).`);
  return parts.join(" ");
}

// The source files behind a figure: listed inline when few, folded away when many.
function sourcesElement(sources) {
  const names = (sources || []).map((s) => `${s.file_name} (${s.sha256.slice(0, 12)})`);
  if (names.length <= 3) {
    return Object.assign(document.createElement("span"), {
      textContent: names.length ? ` Sources: ${names.join(", ")}.` : " Sources: none loaded.",
    });
  }
  const details = document.createElement("details");
  details.append(
    Object.assign(document.createElement("summary"), { textContent: `Sources: ${names.length} files` }),
    Object.assign(document.createElement("span"), { textContent: names.join(", ") })
  );
  return details;
}

// The numeric columns a chart can draw, kept in step with what the last response had.
function offerValues(select, columns) {
  const chosen = select.value;
  const options = [Object.assign(document.createElement("option"), { value: "", textContent: "(default)" })];
  for (const column of columns) {
    options.push(Object.assign(document.createElement("option"), { value: column, textContent: column }));
  }
  select.replaceChildren(...options);
  select.value = columns.includes(chosen) ? chosen : "";
}

function formatted(value) {
  return typeof value === "number" ? value.toLocaleString("en-US", { maximumFractionDigits: 1 }) : String(value);
}

// A chart whose groups have pages of their own (field offices, facilities) is followed by its
// ranking as a table, each row linked to the group's page: the last period's, largest first.
function rankingTable(spec) {
  const meta = spec.usermeta || {};
  const rows = (spec.data || {}).values || [];
  if (!meta.link || !rows.length) return [];
  const { field, path } = meta.link;
  const measure = meta.measure;
  const time = ["date", "month"].find((c) => c in rows[0]);
  const last = time ? rows.reduce((latest, r) => (r[time] > latest ? r[time] : latest), "") : null;
  const value = (r) => (r[measure] === null || r[measure] === undefined ? -Infinity : r[measure]);
  const ranked = rows.filter((r) => r[field] !== null && (!time || r[time] === last))
    .sort((a, b) => value(b) - value(a));
  const head = document.createElement("tr");
  for (const title of ["rank", field.replace(/_/g, " "), meta.unit || measure]) {
    head.append(Object.assign(document.createElement("th"), { textContent: title }));
  }
  const body = ranked.map((r, position) => {
    const row = document.createElement("tr");
    const page = Object.assign(document.createElement("a"), {
      href: `${path}${encodeURIComponent(r[field])}`, textContent: r[field],
    });
    const hidden = r[measure] === null || r[measure] === undefined;
    const shown = !hidden ? formatted(r[measure])
      : r.suppressed && r.suppressed.startsWith("<") ? `fewer than ${r.suppressed.slice(1)}` : "hidden";
    // A hidden value has no rank to show: its place in the order is not published either.
    const rank = hidden ? "" : String(r.rank ?? position + 1);
    row.append(
      Object.assign(document.createElement("td"), { className: "num", textContent: rank }),
      Object.assign(document.createElement("td"), {}),
      Object.assign(document.createElement("td"), { className: "num", textContent: shown }),
    );
    row.children[1].append(page);
    return row;
  });
  const table = Object.assign(document.createElement("table"), { className: "values" });
  table.append(document.createElement("thead"), document.createElement("tbody"));
  table.tHead.append(head);
  table.tBodies[0].append(...body);
  const scroll = Object.assign(document.createElement("div"), { className: "scroll" });
  scroll.append(table);
  const details = document.createElement("details");
  const period = last ? ` in ${String(last).slice(0, 7)}` : "";
  details.append(
    Object.assign(document.createElement("summary"), { textContent: `Ranking${period} (${ranked.length}), each linked to its page` }),
    scroll
  );
  return [details];
}

async function fetchJson(url) {
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  const body = await response.json().catch(() => ({ detail: response.statusText }));
  if (!response.ok) throw new Error(body.detail || `HTTP ${response.status}`);
  return body;
}

async function drawCard(card) {
  const name = card.dataset.metric;
  const status = card.querySelector(".status");
  const { query, ignored } = cardQuery(card);
  const suffix = query ? `?${query}` : "";
  card.dataset.state = "loading";
  status.textContent = "Loading…";
  try {
    const body = await fetchJson(`/api/metrics/${encodeURIComponent(name)}/chart${suffix}`);
    const renderer = body.meta.row_count > SVG_MAX_ROWS ? "canvas" : "svg";
    const result = await vegaEmbed(card.querySelector(".chart"), body.spec, { ...EMBED_OPTIONS, renderer });
    if (window.iceledgerViews[name]) window.iceledgerViews[name].finalize();
    window.iceledgerViews[name] = result;
    offerValues(card.querySelector("select.value"), body.meta.value_columns);
    const meta = card.querySelector(".meta");
    meta.textContent = describe(body.meta, ignored);
    meta.append(sourcesElement(body.meta.sources));
    card.querySelector(".ranking").replaceChildren(...rankingTable(body.spec));
    for (const kind of ["csv", "parquet"]) {
      card.querySelector(`a.${kind}`).href = `/api/metrics/${encodeURIComponent(name)}.${kind}${suffix}`;
    }
    card.querySelector("a.json").href = `/api/metrics/${encodeURIComponent(name)}${suffix}`;
    status.textContent = "";
    card.dataset.query = query;
    card.dataset.state = "drawn";
  } catch (problem) {
    status.textContent = problem.message;
    card.dataset.query = query;
    card.dataset.state = "error";
  }
}

function drawAllCards() {
  for (const card of document.querySelectorAll(".card[data-metric][data-available='yes']")) {
    drawCard(card);
  }
}

function listItem(text) {
  return Object.assign(document.createElement("li"), { textContent: text });
}

// What the map could not draw as it is, each with its reason: nothing is left off silently.
function mapExceptions(meta) {
  const groups = [
    ["Facilities not drawn", meta.facilities_not_drawn.map((f) => `${f.name} (${f.city || "?"}, ${f.state || "?"}): ${f.reason}`)],
    ["Field offices not drawn", meta.field_offices_not_drawn.map((o) => `${o.aor || "no field office"} (${o.facilities} ${o.facilities === 1 ? "facility" : "facilities"}): ${o.reason}`)],
    ["Facilities with no population figure (drawn small, in grey)", meta.facilities_without_adp],
  ];
  const parts = [];
  for (const [title, items] of groups) {
    if (!items.length) continue;
    parts.push(Object.assign(document.createElement("p"), { textContent: `${title}: ${items.length}` }));
    const list = document.createElement("ul");
    list.replaceChildren(...items.map(listItem));
    parts.push(list);
  }
  return parts;
}

// The release slider: one step per workbook that lists facilities, oldest first; the chosen
// release is kept in the URL (?release=YYYY-MM-DD) like the pages' filters.
function offerReleases(releases, shown) {
  const slider = document.getElementById("release");
  if (!slider || !releases.length) return;
  slider.max = String(releases.length - 1);
  const at = releases.findIndex((r) => r.date === shown);
  slider.value = String(at < 0 ? releases.length - 1 : at);
  slider.closest("label").hidden = false;
  const release = releases[Number(slider.value)];
  document.getElementById("release-label").textContent = `${release.date} (${release.workbook})`;
  slider.onchange = () => {
    const chosen = releases[Number(slider.value)].date;
    const newest = Number(slider.value) === releases.length - 1;
    window.history.replaceState(null, "", newest ? window.location.pathname : `?release=${chosen}`);
    drawMap(newest ? "" : chosen);
  };
}

async function drawMap(releaseDate = new URLSearchParams(window.location.search).get("release") || "") {
  const card = document.getElementById("map-card");
  const status = card.querySelector(".status");
  card.dataset.state = "loading";
  status.textContent = "Loading…";
  try {
    const query = releaseDate ? `?release=${encodeURIComponent(releaseDate)}` : "";
    const body = await fetchJson(`/api/map/chart${query}`);
    const meta = body.meta;
    document.getElementById("map-definition").replaceChildren(
      ...meta.metrics.map((m) => Object.assign(document.createElement("p"), { textContent: `${m.title} (${m.name}, ${m.unit}): ${m.definition}` }))
    );
    document.getElementById("map-caveats").replaceChildren(...meta.caveats.map(listItem));
    if (!meta.available) {
      status.textContent = `No map: ${meta.reason}.`;
      card.dataset.state = "error";
      return;
    }
    if (window.iceledgerViews.map) window.iceledgerViews.map.finalize();
    window.iceledgerViews.map = await vegaEmbed(document.getElementById("map-chart"), body.spec, EMBED_OPTIONS);
    offerReleases(meta.releases || [], meta.publication_date);
    const release = Object.assign(document.createElement("p"), {
      textContent: `Workbook ${meta.workbook}, published ${meta.publication_date}, data as of ${meta.as_of_date}.`,
    });
    release.append(sourcesElement(meta.sources));
    document.getElementById("map-meta").replaceChildren(release, ...mapExceptions(meta));
    status.textContent = "";
    card.dataset.state = "drawn";
  } catch (problem) {
    status.textContent = problem.message;
    card.dataset.state = "error";
  }
}

// The page's view lives in its URL, so that it can be shared: the filters under their names, and
// each card's breakdown and column under `<metric>.by` and `<metric>.value`. Read on load,
// written on every change (replaceState: no history entry per click).
const CARD_CHOICES = { by: "select.by", value: "select.value" };

function restoreView(form) {
  const params = new URLSearchParams(window.location.search);
  for (const field of form ? form.elements : []) {
    if (field.name && params.has(field.name)) field.value = params.get(field.name);
  }
  for (const card of document.querySelectorAll(".card[data-metric]")) {
    for (const [choice, selector] of Object.entries(CARD_CHOICES)) {
      const select = card.querySelector(selector);
      const wanted = params.get(`${card.dataset.metric}.${choice}`);
      if (!select || !wanted) continue;
      // The columns a card can show arrive with its first response: offer the wanted one now,
      // and the response's list keeps it if the metric has it.
      if (![...select.options].some((o) => o.value === wanted)) {
        select.append(Object.assign(document.createElement("option"), { value: wanted, textContent: wanted }));
      }
      select.value = wanted;
    }
  }
}

function rememberView(form) {
  const params = new URLSearchParams();
  for (const field of form ? form.elements : []) {
    if (field.name && field.value) params.set(field.name, field.value);
  }
  for (const card of document.querySelectorAll(".card[data-metric]")) {
    for (const [choice, selector] of Object.entries(CARD_CHOICES)) {
      const select = card.querySelector(selector);
      if (select && select.value) params.set(`${card.dataset.metric}.${choice}`, select.value);
    }
  }
  const query = params.toString();
  window.history.replaceState(null, "", query ? `?${query}` : window.location.pathname);
}

// Charts whose spec the page carries (facility and field-office pages): drawn as they are.
async function drawInlineCharts() {
  for (const holder of document.querySelectorAll("script.chart-spec")) {
    const target = document.getElementById(holder.dataset.target);
    try {
      window.iceledgerViews[holder.dataset.target] = await vegaEmbed(target, JSON.parse(holder.textContent), EMBED_OPTIONS);
      target.dataset.state = "drawn";
    } catch (problem) {
      target.textContent = `Chart failed: ${problem.message}`;
      target.dataset.state = "error";
    }
  }
}

document.addEventListener("DOMContentLoaded", () => {
  drawInlineCharts();
  const form = document.getElementById("filters");
  restoreView(form);
  if (form) {
    form.addEventListener("change", () => {
      rememberView(form);
      drawAllCards();
    });
    form.addEventListener("submit", (event) => event.preventDefault());
  }
  for (const select of document.querySelectorAll(".card select.by, .card select.value")) {
    select.addEventListener("change", () => {
      rememberView(form);
      drawCard(select.closest(".card"));
    });
  }
  drawAllCards();
  if (document.getElementById("map-card")) drawMap();
});
