// The account page's copy button: copies the new key, or selects it when the clipboard is not
// available, and says which happened.
(function () {
  var button = document.getElementById("copy-key");
  var input = document.getElementById("new-key");
  var status = document.getElementById("copy-status");
  if (!button || !input || !status) return;
  button.addEventListener("click", function () {
    input.focus();
    input.select();
    var selected = function () { status.textContent = "Selected: press Ctrl+C (or Cmd+C) to copy."; };
    if (navigator.clipboard && navigator.clipboard.writeText) {
      navigator.clipboard.writeText(input.value).then(function () {
        status.textContent = "Copied to the clipboard.";
      }, selected);
    } else {
      selected();
    }
  });
})();
