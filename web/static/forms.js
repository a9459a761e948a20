// A form the server refused comes back with the person's input and a message beside each
// field that failed (aria-invalid + aria-describedby): put the focus on the first of them, so
// a keyboard or screen-reader user lands on what to fix.
(function () {
  "use strict";
  var first = document.querySelector('main [aria-invalid="true"]');
  if (first && typeof first.focus === "function") first.focus();
})();
