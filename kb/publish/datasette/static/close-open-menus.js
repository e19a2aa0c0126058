/* Datasette's _close_open_menus.html, as a file: the Content-Security-Policy of `excon serve`
   runs no inline script. Closes any open <details> menu when a click lands outside it. */
document.body.addEventListener("click", (ev) => {
  let target = ev.target;
  while (target && target.tagName !== "DETAILS") {
    target = target.parentNode;
  }
  const within = target && target.tagName === "DETAILS" ? target : null;
  Array.from(document.getElementsByTagName("details"))
    .filter((details) => details.open && details !== within)
    .forEach((details) => { details.open = false; });
});
