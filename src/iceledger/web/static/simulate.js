// The strategy page: asks /api/simulate for the chosen strategy and draws its expected path
// (vega-embed, as dashboard.js does) beside the steady state and the model's assumptions.
"use strict";

// As dashboard.js's: no eval, no injected styles (the Content-Security-Policy allows neither).
const SIMULATE_EMBED = {
  actions: false,
  ast: true,
  defaultStyle: false,
  renderer: "svg",
  tooltip: { disableDefaultStyle: true },
};

function simulateQuery(form) {
  const query = new URLSearchParams();
  for (const name of ["strategy", "target", "fill", "beds", "days"]) {
    const value = form.elements[name].value;
    if (value) query.append(name, value);
  }
  return query.toString();
}

function formatted(value, unit) {
  if (value === null || value === undefined) return "not measurable";
  const digits = Math.abs(value) < 100 ? 1 : 0;
  const text = value.toLocaleString("en-US", { maximumFractionDigits: digits });
  return unit === "US dollars" ? `$${text}` : text;
}

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

async function drawStrategy() {
  const form = document.getElementById("simulate-form");
  const card = document.getElementById("simulate-card");
  const status = card.querySelector(".status");
  card.dataset.state = "loading";
  status.textContent = "Computing…";
  try {
    const response = await fetch(`/api/simulate?${simulateQuery(form)}`);
    const body = await response.json();
    if (!response.ok) throw new Error(body.detail || response.statusText);
    document.getElementById("simulate-description").textContent =
      (body.synthetic ? "SYNTHETIC DATA. " : "") + body.description;
    const rows = body.steady_state.map((row) => {
      const tr = document.createElement("tr");
      tr.append(
        cell(row.measure),
        cell(formatted(row.estimate, row.unit)),
        cell(row.low_90 === null ? "" :
          `${formatted(row.low_90, row.unit)} to ${formatted(row.high_90, row.unit)}`),
        cell(row.definition)
      );
      return tr;
    });
    document.querySelector("#simulate-table tbody").replaceChildren(...rows);
    // The assumptions name the rate and capacity sources already; "  - " marks a strategy's own.
    document.getElementById("simulate-assumptions").replaceChildren(
      ...body.assumptions.map((text) => {
        const li = document.createElement("li");
        li.textContent = text.replace(/^\s*-\s*/, "");
        return li;
      })
    );
    const spec = {
      $schema: "https://vega.github.io/schema/vega-lite/v5.json",
      width: "container",
      height: 260,
      data: { values: body.path },
      mark: { type: "line" },
      encoding: {
        x: { field: "date", type: "temporal", title: null },
        y: { field: "population", type: "quantitative", title: "people held at 00:00 (expected)" },
        tooltip: [{ field: "date", type: "temporal" }, { field: "population", format: ",.0f" }],
      },
    };
    window.iceledgerViews = window.iceledgerViews || {};
    window.iceledgerViews.simulate = await vegaEmbed(
      document.getElementById("simulate-chart"), spec, SIMULATE_EMBED);
    status.textContent = "";
    card.dataset.state = "drawn";
  } catch (problem) {
    status.textContent = problem.message;
    card.dataset.state = "error";
  }
}

const simulateForm = document.getElementById("simulate-form");
if (simulateForm) {
  simulateForm.addEventListener("change", drawStrategy);
  simulateForm.addEventListener("submit", (event) => {
    event.preventDefault();
    drawStrategy();
  });
  drawStrategy();
}
