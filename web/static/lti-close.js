// LTI Dynamic Registration: tell the LMS that registration is over (it closes our frame).
(function () {
  "use strict";
  var host = window.opener || (window.parent !== window ? window.parent : null);
  if (host) host.postMessage({ subject: "org.imsglobal.lti.close" }, "*");
})();
