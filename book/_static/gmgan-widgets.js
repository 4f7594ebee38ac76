/* Glue that lets the ipywidgets embed manager render saved widgets in the offline book.
 * Loaded on notebook pages with widget state only (myst-nb's nb_ipywidgets_js in _config.yml),
 * after require.js and before vendor/html-manager/embed-amd.js. */
(function () {
  "use strict";
  var here = document.currentScript ? document.currentScript.src : document.baseURI;
  var vendor = new URL("vendor/", here).href;

  // 1. The embed manager finds its fonts (Font Awesome) next to the URL of its AMD module, which
  //    RequireJS resolves against the page by default; map that module path to our local copy.
  if (window.require && typeof window.require.config === "function") {
    window.require.config({paths: {"@jupyter-widgets/html-manager/dist": vendor + "html-manager"}});
  }

  // 2. Widgets typeset their labels through the MathJax 2 API (MathJax.Hub.Queue); the book loads
  //    MathJax 3. Provide that one call on top of MathJax 3 once it has replaced its config object
  //    (deferred scripts run before DOMContentLoaded; the widgets render on "load").
  function mathjax2Queue() {
    var mj = window.MathJax;
    if (!mj || mj.Hub || typeof mj.typesetPromise !== "function") { return; }
    mj.Hub = {
      Queue: function (command) {
        var element = command && command[2];
        if (element) { mj.typesetPromise([element]).catch(function () {}); }
      }
    };
  }
  document.addEventListener("DOMContentLoaded", mathjax2Queue);
})();
