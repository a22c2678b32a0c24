// The form: a preview of the picked catalogue photo or of the person's own (chosen, dropped or
// pasted), and the upload limit checked before anything is sent. Without it the plain form still
// posts, and the server checks everything again.
(function () {
  "use strict";
  var form = document.querySelector("form.pick");
  if (!form) return;
  var select = document.getElementById("image_id");
  var input = document.getElementById("file");
  var zone = document.getElementById("dropzone");
  var preview = document.getElementById("preview");
  var caption = document.getElementById("preview-caption");
  var fileError = document.getElementById("file-error");
  var maxBytes = Number(form.dataset.maxFileBytes);
  var blobUrl = null;

  // With this script, picking a file sets the catalogue's choice to None by itself.
  Array.prototype.forEach.call(form.querySelectorAll(".with-script, .without-script"), function (element) {
    element.hidden = element.classList.contains("without-script");
  });

  function showPreview(src, text) {
    if (blobUrl && src !== blobUrl) {
      URL.revokeObjectURL(blobUrl);
      blobUrl = null;
    }
    preview.hidden = !src;
    if (src) preview.src = src;
    else preview.removeAttribute("src");
    caption.textContent = text || "";
    caption.hidden = !text;
  }

  // The picked catalogue photo, or the earlier result's photo ("try again": its option names its URL).
  function showCatalogue() {
    var option = select.options[select.selectedIndex];
    if (option && option.dataset.previewUrl) showPreview(option.dataset.previewUrl);
    else showPreview(select.value ? form.dataset.imagesUrl + encodeURIComponent(select.value) : null);
  }

  function sayFile(message) {
    fileError.textContent = message || "";
    fileError.hidden = !message;
    if (message) input.setAttribute("aria-invalid", "true");
    else input.removeAttribute("aria-invalid");
  }

  function megabytes(bytes) {
    return (bytes / 1048576).toFixed(1) + " MB";
  }

  // The person's own photo: refused here if over the limit, else previewed, and the catalogue
  // choice set to None (a request names one photo).
  function take(file) {
    if (!file) {
      sayFile("");
      showCatalogue();
      return;
    }
    if (file.size > maxBytes) {
      input.value = "";
      sayFile(
        "\u201c" + file.name + "\u201d is " + megabytes(file.size) + ", over the limit of " +
          form.dataset.maxFileSize + ": pick a smaller photo."
      );
      showCatalogue();
      return;
    }
    sayFile("");
    select.value = "";
    var url = URL.createObjectURL(file);
    showPreview(url, file.name);
    blobUrl = url;
  }

  // A dropped or pasted file goes into the file input, so that the form posts it as if picked.
  function use(files) {
    if (!files || !files.length) return;
    var transfer = new DataTransfer();
    transfer.items.add(files[0]);
    input.files = transfer.files;
    take(files[0]);
  }

  function carriesFiles(event) {
    return event.dataTransfer && Array.prototype.indexOf.call(event.dataTransfer.types, "Files") >= 0;
  }

  select.addEventListener("change", function () {
    if (select.value) {
      input.value = "";
      sayFile("");
      showCatalogue();
    } else {
      take(input.files[0]);
    }
  });
  input.addEventListener("change", function () {
    take(input.files[0]);
  });
  preview.addEventListener("error", function () {
    if (!blobUrl || preview.src !== blobUrl) return;
    // Some accepted types (TIFF) are not shown by every browser; the server reads them anyway.
    preview.hidden = true;
    caption.textContent = "No preview of this file in this browser; it can still be classified.";
    caption.hidden = false;
  });

  // A file dropped anywhere on the page is taken (instead of the browser opening it).
  document.addEventListener("dragover", function (event) {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    event.dataTransfer.dropEffect = "copy";
    zone.classList.add("dragging");
  });
  document.addEventListener("dragleave", function (event) {
    if (!event.relatedTarget) zone.classList.remove("dragging");
  });
  document.addEventListener("drop", function (event) {
    if (!carriesFiles(event)) return;
    event.preventDefault();
    zone.classList.remove("dragging");
    use(event.dataTransfer.files);
  });
  document.addEventListener("paste", function (event) {
    var files = event.clipboardData && event.clipboardData.files;
    if (!files || !files.length) return;
    event.preventDefault();
    use(files);
  });
  form.addEventListener("submit", function (event) {
    var file = input.files[0];
    if (file && file.size > maxBytes) {
      event.preventDefault();
      take(file);
    }
  });

  // A file the browser kept in the input (back to this page) is shown as well.
  if (input.files && input.files[0]) take(input.files[0]);
  else showCatalogue();
})();
