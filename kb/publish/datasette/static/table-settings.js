/* The table page's settings, read from this script element's data attributes instead of an
   inline script (excon's CSP runs none). Loaded before Datasette's deferred table.js. */
window.DATASETTE_ALLOW_FACET = document.currentScript.dataset.allowFacet === "true";
