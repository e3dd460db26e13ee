// AgroStress viewer: draw or paste a field, run an analysis, see the stress map over the field.
// Plain JavaScript, no external resources. Talks to the same server's /v1 API.
"use strict";

(function () {
  const W = 800, H = 560, SVGNS = "http://www.w3.org/2000/svg";
  const CLASSES = ["healthy", "nitrogen_deficiency", "yellow_rust", "uncertain", "too_early",
                   "not_wheat"];
  const STRESS = ["healthy", "nitrogen_deficiency", "yellow_rust"];
  const COLOURS = { healthy: "#2e8b3a", nitrogen_deficiency: "#e8c547", yellow_rust: "#c2410c",
                    uncertain: "#8e7cc3", too_early: "#9ab8d8", not_wheat: "#4b5563" };
  const EXAMPLE = {
    type: "Polygon",
    coordinates: [[[5.0, 51.0], [5.01, 51.0], [5.01, 51.0063], [5.0, 51.0063], [5.0, 51.0]]],
  };
  const $ = (id) => document.getElementById(id);
  const svg = $("map");
  const state = {
    lon0: 5.005, lat0: 51.003, mpp: 2.0,   // view centre and metres per SVG unit
    drawing: [], fields: null,             // vertices being drawn / the GeoJSON to analyse
    zones: null,                           // class zones of the last result
    polling: null,
  };

  // ------------------------------------------------------------------ projection
  const kx = () => 111320 * Math.cos((state.lat0 * Math.PI) / 180);
  const ky = 110540;
  const proj = (lon, lat) => [
    W / 2 + ((lon - state.lon0) * kx()) / state.mpp,
    H / 2 - ((lat - state.lat0) * ky) / state.mpp,
  ];
  const unproj = (x, y) => [
    state.lon0 + ((x - W / 2) * state.mpp) / kx(),
    state.lat0 - ((y - H / 2) * state.mpp) / ky,
  ];

  function polygonsOf(gj) {
    if (!gj || typeof gj !== "object") return [];
    switch (gj.type) {
      case "Polygon": return [gj.coordinates];
      case "MultiPolygon": return gj.coordinates;
      case "Feature": return polygonsOf(gj.geometry);
      case "FeatureCollection": return (gj.features || []).flatMap(polygonsOf);
      default: return [];
    }
  }

  function fit(gj) {
    const pts = polygonsOf(gj).flat(2);
    if (!pts.length) return;
    const lons = pts.map((p) => p[0]), lats = pts.map((p) => p[1]);
    const w = Math.min(...lons), e = Math.max(...lons), s = Math.min(...lats), n = Math.max(...lats);
    state.lon0 = (w + e) / 2;
    state.lat0 = (s + n) / 2;
    const width = (e - w) * kx(), height = (n - s) * ky;
    state.mpp = Math.max(width / (W * 0.8), height / (H * 0.8), 0.2);
  }

  // ------------------------------------------------------------------ drawing
  function el(name, attrs, parent) {
    const node = document.createElementNS(SVGNS, name);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
    if (parent) parent.appendChild(node);
    return node;
  }

  function pathOf(polys) {
    return polys.map((rings) => rings.map((ring) => ring.map((p, i) => {
      const [x, y] = proj(p[0], p[1]);
      return `${i ? "L" : "M"}${x.toFixed(1)} ${y.toFixed(1)}`;
    }).join("") + "Z").join("")).join("");
  }

  function niceStep(m) {
    const p = Math.pow(10, Math.floor(Math.log10(m)));
    for (const f of [1, 2, 5, 10]) if (f * p >= m) return f * p;
    return 10 * p;
  }

  function render() {
    svg.replaceChildren();
    el("rect", { x: 0, y: 0, width: W, height: H, class: "bg" }, svg);
    // metric grid
    const step = niceStep(state.mpp * 80);
    const g = el("g", { class: "grid" }, svg);
    const x0 = -(W / 2) * state.mpp, y0 = -(H / 2) * state.mpp;
    for (let m = Math.ceil(x0 / step) * step; m <= -x0; m += step) {
      const x = W / 2 + m / state.mpp;
      el("line", { x1: x, y1: 0, x2: x, y2: H }, g);
    }
    for (let m = Math.ceil(y0 / step) * step; m <= -y0; m += step) {
      const y = H / 2 + m / state.mpp;
      el("line", { x1: 0, y1: y, x2: W, y2: y }, g);
    }
    // result: the class zones (GeoJSON from the server) drawn exactly over the field
    if (state.zones) {
      let layer = svg;
      if (state.fields) {
        // pixel zones are clipped to the field outline; grey underneath = no data
        const fieldPath = pathOf(polygonsOf(state.fields));
        const clip = el("clipPath", { id: "field-clip" }, el("defs", {}, svg));
        el("path", { d: fieldPath, "clip-rule": "evenodd" }, clip);
        el("path", { d: fieldPath, class: "field-under" }, svg);
        layer = el("g", { "clip-path": "url(#field-clip)" }, svg);
      }
      for (const f of state.zones.features || []) {
        const name = (f.properties || {}).class_name || "";
        const p = el("path", { d: pathOf(polygonsOf(f)), class: `zone ${name}` }, layer);
        el("title", {}, p).textContent = `${name}: ${(f.properties.area_ha ?? 0).toFixed(2)} ha`;
      }
    }
    // fields
    if (state.fields) el("path", { d: pathOf(polygonsOf(state.fields)), class: "field" }, svg);
    // polygon being drawn
    if (state.drawing.length) {
      const pts = state.drawing.map((p) => proj(p[0], p[1]).map((v) => v.toFixed(1)).join(","));
      el("polyline", { points: pts.join(" "), class: "drawing" }, svg);
      for (const p of state.drawing) {
        const [x, y] = proj(p[0], p[1]);
        el("circle", { cx: x, cy: y, r: 4, class: "vertex" }, svg);
      }
    }
    // scale bar
    const bar = step / state.mpp;
    const sb = el("g", { class: "scale" }, svg);
    el("line", { x1: 16, y1: H - 18, x2: 16 + bar, y2: H - 18 }, sb);
    el("text", { x: 16, y: H - 26 }, sb).textContent =
      step >= 1000 ? `${step / 1000} km` : `${step} m`;
    el("text", { x: W - 10, y: H - 10, "text-anchor": "end", class: "coords" }, svg).textContent =
      `${state.lat0.toFixed(5)}°, ${state.lon0.toFixed(5)}°`;
  }

  function setFields(gj, { refit = true } = {}) {
    state.fields = gj;
    state.drawing = [];
    $("geojson").value = gj ? JSON.stringify(gj) : "";
    if (gj && refit) fit(gj);
    render();
  }

  function svgPoint(evt) {
    const pt = svg.createSVGPoint();
    pt.x = evt.clientX;
    pt.y = evt.clientY;
    const p = pt.matrixTransform(svg.getScreenCTM().inverse());
    return [p.x, p.y];
  }

  let drag = null;
  svg.addEventListener("pointerdown", (evt) => {
    drag = { start: svgPoint(evt), lon0: state.lon0, lat0: state.lat0, moved: false };
    svg.setPointerCapture(evt.pointerId);
  });
  svg.addEventListener("pointermove", (evt) => {
    if (!drag) return;
    const [x, y] = svgPoint(evt);
    const dx = x - drag.start[0], dy = y - drag.start[1];
    if (Math.hypot(dx, dy) > 4) drag.moved = true;
    if (drag.moved) {
      state.lon0 = drag.lon0 - (dx * state.mpp) / kx();
      state.lat0 = drag.lat0 + (dy * state.mpp) / ky;
      render();
    }
  });
  svg.addEventListener("pointerup", (evt) => {
    if (drag && !drag.moved) {
      const [lon, lat] = unproj(...svgPoint(evt));
      if (state.fields && !state.drawing.length) state.fields = null;
      state.drawing.push([+lon.toFixed(7), +lat.toFixed(7)]);
      render();
    }
    drag = null;
  });
  svg.addEventListener("wheel", (evt) => {
    evt.preventDefault();
    zoom(evt.deltaY > 0 ? 1.25 : 0.8);
  }, { passive: false });

  function zoom(f) {
    state.mpp = Math.min(Math.max(state.mpp * f, 0.1), 2000);
    render();
  }

  function closePolygon() {
    if (state.drawing.length < 3) {
      say("Add at least three corners first.", "err");
      return;
    }
    const ring = [...state.drawing, state.drawing[0]];
    setFields({ type: "Polygon", coordinates: [ring] }, { refit: false });
    say("Polygon ready — choose dates and source, then run.");
  }

  // ------------------------------------------------------------------ API
  function headers(extra) {
    const h = Object.assign({ Accept: "application/json" }, extra || {});
    const key = $("apikey").value.trim();
    if (key) h["X-API-Key"] = key;
    return h;
  }

  async function api(path, opts) {
    const res = await fetch(path, Object.assign({}, opts, { headers: headers((opts || {}).headers) }));
    let body = null;
    try { body = await res.json(); } catch (e) { body = null; }
    return { res, body };
  }

  async function blobUrl(path) {
    const res = await fetch(path, { headers: headers() });
    if (!res.ok) return null;
    return URL.createObjectURL(await res.blob());
  }

  function say(text, kind) {
    const s = $("status");
    s.textContent = text;
    s.className = kind || "";
  }

  function errorText(body, res) {
    if (body && body.error) return `${body.error.code}: ${body.error.message}`;
    return `HTTP ${res.status}`;
  }

  async function loadOptions() {
    const models = await api("/v1/models");
    if (models.res.status === 401) {
      say("This server needs an API key: enter it, then run.", "err");
      return;
    }
    if (models.res.ok) {
      const sel = $("model");
      for (const m of models.body) {
        const o = document.createElement("option");
        o.value = m.id;
        o.textContent = `${m.id} v${m.version}${m.default ? " (default)" : ""}`;
        sel.appendChild(o);
      }
    }
    const sources = await api("/v1/sources");
    if (sources.res.ok) {
      for (const s of sources.body) {
        const o = [...$("source").options].find((x) => x.value === s.name);
        if (o && !s.available) { o.disabled = true; o.title = s.reason || ""; }
      }
    }
  }

  async function run(evt) {
    evt.preventDefault();
    if (state.drawing.length >= 3 && !state.fields) closePolygon();
    let gj = state.fields;
    if (!gj) {
      try { gj = JSON.parse($("geojson").value); setFields(gj); } catch (e) {
        say("Draw a field or paste GeoJSON first.", "err");
        return;
      }
    }
    const body = {
      fields: gj, start: $("start").value, end: $("end").value, source: $("source").value,
      explain: $("explain").checked,
    };
    if ($("model").value) body.model = $("model").value;
    if ($("as-of").value) body.as_of = $("as-of").value;
    const preset = $("crop-preset").value;
    if (preset === "custom") {
      body.crop_column = $("crop-column").value.trim();
      body.wheat_values = $("wheat-values").value.split(",").map((v) => v.trim()).filter(Boolean);
    } else if (preset) {
      body.crop_preset = preset;
    }
    $("btn-run").disabled = true;
    $("results").hidden = true;
    state.zones = null;
    render();
    say("Submitting…");
    const bar = $("progress");
    bar.hidden = false;
    bar.value = 0;
    try {
      let { res, body: out } = await api("/v1/analyses", {
        method: "POST", body: JSON.stringify(body),
        headers: { "Content-Type": "application/json", Prefer: "respond-async" },
      });
      if (!res.ok) throw new Error(errorText(out, res));
      while (out.status === "queued" || out.status === "running") {
        bar.value = out.progress || 0;
        say(`${out.status}: ${out.stage || ""} (${Math.round((out.progress || 0) * 100)} %)`);
        await new Promise((r) => setTimeout(r, 600));
        ({ res, body: out } = await api(out.links.self));
        if (!res.ok) throw new Error(errorText(out, res));
      }
      if (out.status === "failed") throw new Error(`${out.error.code}: ${out.error.message}`);
      bar.value = 1;
      await showResult(out);
      say(`done: analysis ${out.id}`, "ok");
    } catch (e) {
      say(String(e.message || e), "err");
    } finally {
      $("btn-run").disabled = false;
      bar.hidden = true;
    }
  }

  const pct = (v) => (v === null || v === undefined ? "–" : `${(100 * v).toFixed(1)} %`);

  // one small chart per field: class probabilities on every past date, the call as a strip
  function showTimelines(fields, asOf) {
    const box = $("timelines");
    box.replaceChildren();
    const withLine = fields.filter((f) => f.timeline && f.timeline.dates.length > 1);
    $("timeline-section").hidden = withLine.length === 0;
    $("timeline-asof").textContent = asOf ? ` (as of ${asOf})` : "";
    const w = 300, h = 130, pad = 24;
    for (const f of withLine) {
      const t = f.timeline, n = t.dates.length;
      const x = (i) => pad + (i * (w - 2 * pad)) / Math.max(1, n - 1);
      const y = (p) => h - pad - p * (h - 2 * pad);
      const svg = document.createElementNS(SVGNS, "svg");
      svg.setAttribute("viewBox", `0 0 ${w} ${h}`);
      svg.setAttribute("class", "timeline");
      svg.setAttribute("role", "img");
      svg.setAttribute("aria-label", `time line of field ${f.name || f.field_id}`);
      el("text", { x: pad, y: 12, class: "tl-title" }, svg).textContent =
        `${f.name || "#" + f.field_id}: ${(f.call || "insufficient data").replace("_", " ")}` +
        (f.call_since ? ` since ${f.call_since}` : "");
      t.calls.forEach((c, i) => {
        el("rect", { x: x(i) - (w - 2 * pad) / (2 * Math.max(1, n - 1)), y: h - pad + 3,
          width: (w - 2 * pad) / Math.max(1, n - 1), height: 6,
          fill: COLOURS[c] || "#bdbdbd" }, svg).appendChild(
          document.createElementNS(SVGNS, "title")).textContent = `${t.dates[i]}: ${c}`;
      });
      for (const c of STRESS) {
        const pts = t.probabilities[c].map((p, i) => `${x(i)},${y(p === null ? 0 : p)}`);
        el("polyline", { points: pts.join(" "), fill: "none", stroke: COLOURS[c],
          "stroke-width": 2, class: `tl-${c}` }, svg);
      }
      el("text", { x: pad, y: h - 2, class: "tl-date" }, svg).textContent = t.dates[0];
      el("text", { x: w - pad, y: h - 2, "text-anchor": "end", class: "tl-date" }, svg)
        .textContent = t.dates[n - 1];
      box.appendChild(svg);
    }
  }

  async function showResult(a) {
    const tbody = $("fields-table").querySelector("tbody");
    tbody.replaceChildren();
    for (const f of a.result.fields) {
      const tr = document.createElement("tr");
      const cells = [
        f.name || `#${f.field_id}`,
        f.call || "insufficient data",
        pct(f.confidence),
        f.call_since || "–",
        ...CLASSES.map((c) => pct((f.class_fractions || {})[c])),
        pct(f.valid_pixel_share),
        f.area_ha === null || f.area_ha === undefined ? "–" : f.area_ha.toFixed(2),
      ];
      cells.forEach((text, i) => {
        const td = document.createElement("td");
        if (i === 1) {
          const span = document.createElement("span");
          span.className = `badge ${f.call || "none"}`;
          span.textContent = text;
          td.appendChild(span);
        } else td.textContent = text;
        tr.appendChild(td);
      });
      tbody.appendChild(tr);
    }
    showTimelines(a.result.fields, (a.result.season || {}).as_of);
    const links = a.links || {};
    if (links["zones.geojson"]) {
      const z = await api(links["zones.geojson"]);
      if (z.res.ok) state.zones = z.body;
    }
    for (const [id, name] of [["img-map", "stress_map.png"], ["img-traj", "trajectories.png"],
                              ["img-timeline", "timeline.png"]]) {
      const url = links[name] ? await blobUrl(links[name]) : null;
      $(id).src = url || "";
      $(id).closest("figure").hidden = !url;
    }
    if (links["attributions.png"]) {
      $("img-attr").src = (await blobUrl(links["attributions.png"])) || "";
      $("img-attr").hidden = false;
      $("attr-note").textContent = "";
    } else {
      $("img-attr").hidden = true;
      $("attr-note").textContent = "Tick “Explain” to compute attributions.";
    }
    const p = $("links");
    p.replaceChildren(document.createTextNode("Artefacts: "));
    for (const [name, href] of Object.entries(links)) {
      if (name === "self") continue;
      const link = document.createElement("a");
      link.href = "#";
      link.textContent = name;
      link.addEventListener("click", async (e) => {
        e.preventDefault();
        const url = await blobUrl(href);
        if (url) window.open(url, "_blank");
      });
      p.append(link, " ");
    }
    $("results").hidden = false;
    if (state.fields) fit(state.fields);
    render();
  }

  // ------------------------------------------------------------------ wiring
  $("btn-close").addEventListener("click", closePolygon);
  $("btn-clear").addEventListener("click", () => {
    state.zones = null;
    setFields(null);
    say("");
  });
  $("btn-example").addEventListener("click", () => setFields(EXAMPLE));
  $("crop-preset").addEventListener("change", () => {
    $("crop-custom").hidden = $("crop-preset").value !== "custom";
  });
  $("btn-use").addEventListener("click", () => {
    try { setFields(JSON.parse($("geojson").value)); say(""); } catch (e) {
      say(`Not valid JSON: ${e.message}`, "err");
    }
  });
  $("btn-goto").addEventListener("click", () => {
    const lon = parseFloat($("goto-lon").value), lat = parseFloat($("goto-lat").value);
    if (Number.isFinite(lon) && Number.isFinite(lat)) {
      state.lon0 = lon;
      state.lat0 = lat;
      render();
    }
  });
  $("zoom-in").addEventListener("click", () => zoom(0.8));
  $("zoom-out").addEventListener("click", () => zoom(1.25));
  $("btn-fit").addEventListener("click", () => { if (state.fields) { fit(state.fields); render(); } });
  $("apikey").addEventListener("change", () => {
    sessionStorage.setItem("agrostress-key", $("apikey").value);
    loadOptions();
  });
  $("form").addEventListener("submit", run);
  $("apikey").value = sessionStorage.getItem("agrostress-key") || "";
  setFields(EXAMPLE);
  loadOptions();
})();
