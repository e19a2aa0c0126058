/* Renders the charts of a datasette-dashboards page from the JSON data block the page carries
   (excon's CSP runs no inline script, and the plugin's page calls renderChart inline). */
(() => {
  const data = JSON.parse(document.getElementById("excon-dashboard").textContent);
  for (const [slug, chart] of Object.entries(data.charts)) {
    renderChart(slug, chart, data.query_string, data.absolute_url, data.full_height);
  }
  if (data.autorefresh) {
    autorefresh(data.autorefresh);
  }
  for (const button of document.querySelectorAll("button[data-excon-fullscreen]")) {
    button.addEventListener("click", () => toggleFullscreen());
  }
})();
