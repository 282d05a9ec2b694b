/* Figures of the analyses are PNGs drawn with 9-point text at 100 dpi (12.5 px at their
   natural size). On a narrow screen (below NARROW px) a figure scaled to the column would
   shrink that text below 9 CSS px; instead the figure keeps at least LEGIBLE of its natural
   width and scrolls sideways inside its own box. Wider screens show it scaled to the
   column. */
(function () {
  "use strict";
  var LEGIBLE = 0.72; /* 9 px / 12.5 px */
  var NARROW = 768;
  function fit(img) {
    if (!img.parentElement || !img.naturalWidth) { return; }
    var need = Math.ceil(img.naturalWidth * LEGIBLE);
    var box = img.parentElement.classList.contains("evidence-figure-scroll")
      ? img.parentElement.parentElement : img.parentElement;
    if (window.innerWidth < NARROW && need > box.clientWidth) {
      if (!img.parentElement.classList.contains("evidence-figure-scroll")) {
        var wrap = document.createElement("div");
        wrap.className = "evidence-figure-scroll";
        img.parentElement.insertBefore(wrap, img);
        wrap.appendChild(img);
      }
      img.style.minWidth = need + "px";
      img.style.maxWidth = "none";
    } else {
      img.style.minWidth = "";
      img.style.maxWidth = "";
    }
  }
  function fitAll() {
    document.querySelectorAll("main img[src*='_images/']").forEach(function (img) {
      if (img.complete) { fit(img); } else { img.addEventListener("load", function () { fit(img); }); }
    });
  }
  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", fitAll);
  } else { fitAll(); }
  window.addEventListener("resize", fitAll);
})();
