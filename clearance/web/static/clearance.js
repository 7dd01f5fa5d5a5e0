// Keep the evidence-set digest shown in the signing form in step with the chosen environment.
// Without script the page still works: the server refuses a signature over a digest it did not
// show (409) and shows the right one.
document.addEventListener("DOMContentLoaded", function () {
  var select = document.querySelector("[data-evidence-set-select]");
  var input = document.querySelector("[data-evidence-set-input]");
  var shown = document.querySelector("[data-evidence-set-shown]");
  if (!select || !input || !shown) {
    return;
  }
  select.addEventListener("change", function () {
    var option = select.options[select.selectedIndex];
    var digest = option.getAttribute("data-evidence-set") || "";
    input.value = digest;
    shown.textContent = digest;
  });
});
