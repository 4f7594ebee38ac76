(function () {
  var root = document.getElementById("__UID__");
  if (!root || root.getAttribute("data-ready")) { return; }
  root.setAttribute("data-ready", "1");
  var data = JSON.parse(root.querySelector("script.gmgan-ba-data").textContent);
  var frame = root.querySelector(".gmgan-ba-frame"), stage = root.querySelector(".gmgan-ba-stage");
  var inner = root.querySelector(".gmgan-ba-inner");
  var imgL = root.querySelector("img.gmgan-ba-left"), imgR = root.querySelector("img.gmgan-ba-right");
  var divider = root.querySelector(".gmgan-ba-divider"), range = root.querySelector(".gmgan-ba-split");
  var tagL = root.querySelector(".gmgan-ba-tag-left"), tagR = root.querySelector(".gmgan-ba-tag-right");
  var readout = root.querySelector(".gmgan-ba-metrics");
  var s = {image: 0, left: data.left, right: data.right, split: 0.5, zoom: 1, cx: 0.5, cy: 0.5,
           render: "pixels"};

  function clamp(v, lo, hi) { return Math.min(Math.max(v, lo), hi); }
  function esc(t) { var d = document.createElement("span"); d.textContent = t; return d.innerHTML; }
  function origin() {  // top-left corner of the view, as fractions of the image
    var f = 1 / s.zoom;
    return [clamp(s.cx - f / 2, 0, 1 - f), clamp(s.cy - f / 2, 0, 1 - f)];
  }
  function side(name, method) {
    var im = data.images[s.image];
    var text = method === data.reference ? "reference" : im.scores[method];
    return "<b>" + name + "</b> " + esc(method) + ": " + text;
  }
  function mark(kind, value) {
    root.querySelectorAll("button[data-" + kind + "]").forEach(function (b) {
      var on = b.getAttribute("data-" + kind) === String(value);
      b.classList.toggle("gmgan-on", on);
      b.setAttribute("aria-pressed", on ? "true" : "false");
    });
  }
  function draw() {
    var im = data.images[s.image], o = origin();
    var u = o[0] + s.split / s.zoom;  // the split in image coordinates
    inner.style.transform = "translate(" + (-o[0] * s.zoom * 100) + "%," + (-o[1] * s.zoom * 100) +
      "%) scale(" + s.zoom + ")";
    imgL.style.clipPath = "inset(0 " + ((1 - u) * 100) + "% 0 0)";
    divider.style.left = (s.split * 100) + "%";
    range.value = String(Math.round(s.split * 1000));
    tagL.textContent = s.left; tagR.textContent = s.right;
    readout.innerHTML = side("left", s.left) + " &nbsp;|&nbsp; " + side("right", s.right);
  }
  function show() {  // new image or methods: swap sources and the stage's size
    var im = data.images[s.image];
    imgL.src = im.src[s.left]; imgR.src = im.src[s.right];
    imgL.alt = im.name + ": " + s.left + ", left of the divider";
    imgR.alt = im.name + ": " + s.right + ", right of the divider";
    frame.style.width = (im.width * im.scale) + "px";
    stage.style.aspectRatio = im.width + " / " + im.height;
    mark("image", im.name); mark("left", s.left); mark("right", s.right); mark("zoom", s.zoom + "x");
    mark("render", s.render);
    imgL.style.imageRendering = imgR.style.imageRendering = data.renderings[s.render];
    draw();
  }
  root.addEventListener("click", function (e) {
    var b = e.target.closest("button");
    if (!b || !root.contains(b)) { return; }
    if (b.hasAttribute("data-image")) {
      var name = b.getAttribute("data-image");
      s.image = data.images.findIndex(function (im) { return im.name === name; });
      s.zoom = 1; s.cx = 0.5; s.cy = 0.5;
    } else if (b.hasAttribute("data-left")) { s.left = b.getAttribute("data-left");
    } else if (b.hasAttribute("data-right")) { s.right = b.getAttribute("data-right");
    } else if (b.hasAttribute("data-zoom")) { s.zoom = parseInt(b.getAttribute("data-zoom"), 10);
    } else if (b.hasAttribute("data-render")) { s.render = b.getAttribute("data-render"); }
    show();
  });
  range.addEventListener("input", function () { s.split = range.value / 1000; draw(); });
  var dragging = false;
  function follow(e) {
    var r = stage.getBoundingClientRect();
    s.split = clamp((e.clientX - r.left) / r.width, 0, 1);
    draw();
  }
  stage.addEventListener("pointerdown", function (e) {
    dragging = true; stage.setPointerCapture(e.pointerId); follow(e); e.preventDefault();
  });
  stage.addEventListener("pointermove", function (e) { if (dragging) { follow(e); } });
  stage.addEventListener("pointerup", function () { dragging = false; });
  stage.addEventListener("pointercancel", function () { dragging = false; });
  stage.addEventListener("dblclick", function (e) {
    var r = stage.getBoundingClientRect(), o = origin();
    s.cx = o[0] + (e.clientX - r.left) / r.width / s.zoom;
    s.cy = o[1] + (e.clientY - r.top) / r.height / s.zoom;
    var i = data.zooms.indexOf(s.zoom) + (e.shiftKey ? -1 : 1);
    s.zoom = data.zooms[clamp(i, 0, data.zooms.length - 1)];
    show();
  });
  show();
})();
