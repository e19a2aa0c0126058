/* Datasette's _codemirror_foot.html, as a file (no inline script under excon's CSP): the SQL
   editor and the "Format SQL" button. */
window.addEventListener("load", () => {
  const sqlFormat = document.querySelector("button#sql-format");
  const readOnly = document.querySelector("pre#sql-query");
  const sqlInput = document.querySelector("textarea#sql-editor");
  if (sqlFormat && !readOnly) {
    sqlFormat.hidden = false;
  }
  if (sqlInput) {
    const editor = CodeMirror.fromTextArea(sqlInput, {
      lineNumbers: true, mode: "text/x-sql", lineWrapping: true,
    });
    editor.setOption("extraKeys", {
      "Shift-Enter": () => { document.getElementsByClassName("sql")[0].submit(); },
      Tab: false,
    });
    if (sqlFormat) {
      sqlFormat.addEventListener("click", () => {
        editor.setValue(sqlFormatter.format(editor.getValue()));
      });
    }
    cmResize(editor, { resizableWidth: false });
  }
  if (sqlFormat && readOnly) {
    const formatted = sqlFormatter.format(readOnly.innerHTML);
    if (formatted !== readOnly.innerHTML) {
      sqlFormat.hidden = false;
      sqlFormat.addEventListener("click", () => { readOnly.innerHTML = formatted; });
    }
  }
});
