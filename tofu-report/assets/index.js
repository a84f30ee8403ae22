/* tofu-report: the index's filters, by serial number and outcome. */
(function () {
  "use strict";
  var serial = document.getElementById("serial-filter");
  var outcome = document.getElementById("outcome-filter");
  var count = document.getElementById("run-count");
  function filter() {
    var query = serial ? serial.value.trim().toLowerCase() : "";
    var wanted = outcome ? outcome.value : "";
    var rows = document.querySelectorAll("table.runs tbody tr");
    var shown = 0;
    rows.forEach(function (row) {
      var visible = (!query || (row.getAttribute("data-serial") || "").toLowerCase().indexOf(query) >= 0) &&
        (!wanted || row.getAttribute("data-outcome") === wanted);
      row.hidden = !visible;
      if (visible) shown++;
    });
    if (count) count.textContent = shown + " of " + rows.length + " runs";
  }
  if (serial) serial.addEventListener("input", filter);
  if (outcome) outcome.addEventListener("change", filter);
  /* A filter in the address (index.html#serial=SN-1&outcome=FAIL) is applied on opening. */
  var hash = decodeURIComponent(location.hash.replace(/^#/, ""));
  hash.split("&").forEach(function (pair) {
    var kv = pair.split("=");
    if (kv[0] === "serial" && serial) serial.value = kv.slice(1).join("=");
    if (kv[0] === "outcome" && outcome) outcome.value = kv.slice(1).join("=");
  });
  filter();
})();
