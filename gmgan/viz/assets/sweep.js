(function () {
  var root = document.getElementById("__UID__");
  if (!root || root.getAttribute("data-ready")) { return; }
  root.setAttribute("data-ready", "1");
  var data = JSON.parse(root.querySelector("script.gmgan-sw-data").textContent);
  var range = root.querySelector(".gmgan-sw-level"), value = root.querySelector(".gmgan-sw-value");
  var imgs = root.querySelectorAll("img.gmgan-sw-img"), caption = root.querySelector(".gmgan-sw-caption");
  var s = {choice: data.choices[0], index: Math.min(data.start, data.values[data.choices[0]].length - 1)};
  function draw() {
    var frame = data.frames[s.choice][s.index], v = data.values[s.choice][s.index];
    range.max = String(data.values[s.choice].length - 1);
    range.value = String(s.index);
    value.textContent = v;
    imgs.forEach(function (img, i) {
      img.src = frame.src[i];
      img.alt = data.panels[i] + ": " + s.choice + ", " + data.label + " " + v;
    });
    caption.textContent = frame.caption;
    root.querySelectorAll("button[data-choice]").forEach(function (b) {
      var on = b.getAttribute("data-choice") === s.choice;
      b.classList.toggle("gmgan-on", on);
      b.setAttribute("aria-pressed", on ? "true" : "false");
    });
  }
  range.addEventListener("input", function () { s.index = parseInt(range.value, 10); draw(); });
  root.addEventListener("click", function (e) {
    var b = e.target.closest("button[data-choice]");
    if (!b || !root.contains(b)) { return; }
    s.choice = b.getAttribute("data-choice");
    s.index = Math.min(s.index, data.values[s.choice].length - 1);
    draw();
  });
  draw();
})();
