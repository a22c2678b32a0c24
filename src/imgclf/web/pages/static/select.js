// Shows the picked catalogue photo next to the form.
(function () {
  "use strict";
  var select = document.getElementById("image_id");
  var preview = document.getElementById("preview");
  if (!select || !preview) return;
  function show() {
    if (!select.value) { preview.hidden = true; return; }
    preview.src = "/images/" + encodeURIComponent(select.value);
    preview.hidden = false;
  }
  select.addEventListener("change", show);
  show();
})();
