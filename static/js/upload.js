// The import wizard's enhancements. Every step works without this file (plain forms and links);
// with it: a chosen or dropped file uploads at once with a progress bar (and the Upload step says so),
// the custom attribute name shows only when "Custom attribute" is chosen, and focus moves to each new
// step's heading.
(function () {
  "use strict";

  function uploadForm(el) {
    return el && el.closest ? el.closest("form[data-upload]") : null;
  }

  function submit(form) {
    if (form.requestSubmit) form.requestSubmit();
    else form.submit();
  }

  // A file chosen in the picker, or dropped on the input that covers the drop zone, uploads at once.
  document.addEventListener("change", function (event) {
    var input = event.target;
    var form = uploadForm(input);
    if (form && input.type === "file" && input.files && input.files.length) submit(form);
  });

  // A file dropped on the zone but not on the input (or anywhere while the upload step is shown)
  // fills the input; the browser must not open the file instead.
  function dropTarget(event) {
    var zone = document.querySelector("[data-dropzone]");
    if (!zone || (event.target.closest && event.target.closest("input[type=file]"))) return null;
    return zone;
  }
  document.addEventListener("dragover", function (event) {
    if (dropTarget(event)) event.preventDefault();
  });
  document.addEventListener("drop", function (event) {
    var zone = dropTarget(event);
    if (!zone) return;  // the input takes its own drops
    event.preventDefault();
    zone.classList.remove("is-dragover");
    var input = zone.querySelector("input[type=file]");
    var files = event.dataTransfer && event.dataTransfer.files;
    if (!input || !files || !files.length) return;
    input.files = files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });

  // Upload progress, from htmx's XMLHttpRequest upload events.
  function progressBox(form) {
    return form.querySelector("[data-upload-progress]");
  }
  function showProgress(form, percent, text) {
    var box = progressBox(form);
    if (!box) return;
    box.hidden = false;
    var bar = box.querySelector("progress");
    if (percent === null) bar.removeAttribute("value");
    else bar.value = percent;
    box.querySelector("[data-upload-status]").textContent = text;
    box.querySelector("[data-upload-percent]").textContent = percent === null ? "" : percent + "%";
  }
  document.addEventListener("htmx:beforeRequest", function (event) {
    var form = uploadForm(event.target);
    if (form) showProgress(form, 0, "Uploading…");
  });
  document.addEventListener("htmx:xhr:progress", function (event) {
    var form = uploadForm(event.target);
    var detail = event.detail;
    if (!form || !detail.lengthComputable || !detail.total) return;
    var percent = Math.min(100, Math.round(detail.loaded * 100 / detail.total));
    if (percent < 100) showProgress(form, percent, "Uploading…");
    else showProgress(form, null, "Reading the file…");
  });
  document.addEventListener("htmx:sendError", function (event) {
    var form = uploadForm(event.target);
    if (form) showProgress(form, 0, "The upload failed: check your connection and try again.");
  });

  // "Custom attribute" shows the attribute name next to its select.
  function syncAttribute(select) {
    var cell = select.closest("td");
    var box = cell && cell.querySelector("[data-attribute-name]");
    if (!box) return;
    var on = select.value === "attribute";
    box.hidden = !on;
    box.querySelector("input").disabled = !on;
  }
  function syncAll(root) {
    (root.querySelectorAll ? root : document).querySelectorAll("select[data-target-select]").forEach(syncAttribute);
  }
  document.addEventListener("change", function (event) {
    if (event.target.matches && event.target.matches("select[data-target-select]")) {
      syncAttribute(event.target);
      if (event.target.value === "attribute") {
        var input = event.target.closest("td").querySelector("[data-attribute-name] input");
        if (input) input.select();
      }
    }
  });

  // A new step (not a poll of the same one) moves focus to its heading, for keyboard and screen reader users.
  function stepOf(root) {
    var step = root.id === "wizard-step" ? root : (root.querySelector && root.querySelector("#wizard-step"));
    return step ? step.getAttribute("data-step") : null;
  }
  // The upload starts by itself only with this script: say so where it runs.
  function showAutoUpload(root) {
    (root.querySelectorAll ? root : document).querySelectorAll("[data-auto-upload]").forEach(function (hint) {
      hint.hidden = false;
    });
  }

  // A deferred script runs once the page is parsed: the page's own step keeps its focus where it is.
  var currentStep = stepOf(document);
  syncAll(document);
  showAutoUpload(document);
  document.addEventListener("htmx:load", function (event) {
    var root = event.target;
    syncAll(root);
    showAutoUpload(root);
    var step = stepOf(root);
    if (step && step !== currentStep) {
      currentStep = step;
      var heading = document.getElementById("step-title");
      if (heading) heading.focus({ preventScroll: false });
    }
  });
})();
