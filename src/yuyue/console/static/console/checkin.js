// Check-in scanner: reads the voucher QR with the device camera and submits it like a typed code.
// Uses the browser's BarcodeDetector where it exists, else the bundled jsQR decoder (no network).
(function () {
  "use strict";
  var script = document.currentScript;
  var form = document.getElementById("checkin-form");
  var input = document.getElementById("c_code");
  var video = document.getElementById("scan-video");
  var canvas = document.getElementById("scan-canvas");
  var status = document.getElementById("scan-status");
  var button = document.getElementById("scan-start");
  if (!form || !button) return;

  function say(text) { status.hidden = false; status.textContent = text; }

  // The camera keeps scanning after a result, and the voucher just checked in is usually still in
  // front of it: the same code within a few seconds is the same scan, not a second visit.
  var REPEAT_MS = 5000;
  function isRepeat(text) {
    var last = sessionStorage.getItem("yuyue-scan-last") || "";
    var at = Number(sessionStorage.getItem("yuyue-scan-at") || 0);
    return text === last && Date.now() - at < REPEAT_MS;
  }

  function submit(text) {
    sessionStorage.setItem("yuyue-scan-last", text);
    sessionStorage.setItem("yuyue-scan-at", String(Date.now()));
    input.value = text;
    form.submit();
  }

  function detectorLoop(stream) {
    var detector = new window.BarcodeDetector({ formats: ["qr_code"] });
    function tick() {
      detector.detect(video).then(function (codes) {
        if (codes.length && !isRepeat(codes[0].rawValue)) { stop(stream); submit(codes[0].rawValue); } else { requestAnimationFrame(tick); }
      }).catch(function () { requestAnimationFrame(tick); });
    }
    tick();
  }

  function jsqrLoop(stream) {
    var context = canvas.getContext("2d", { willReadFrequently: true });
    function tick() {
      if (video.readyState === video.HAVE_ENOUGH_DATA) {
        var size = Math.min(video.videoWidth, video.videoHeight, 640);
        var scale = size / Math.min(video.videoWidth, video.videoHeight);
        canvas.width = Math.round(video.videoWidth * scale);
        canvas.height = Math.round(video.videoHeight * scale);
        context.drawImage(video, 0, 0, canvas.width, canvas.height);
        var image = context.getImageData(0, 0, canvas.width, canvas.height);
        var code = window.jsQR(image.data, image.width, image.height, { inversionAttempts: "dontInvert" });
        if (code && code.data && !isRepeat(code.data)) { stop(stream); submit(code.data); return; }
      }
      requestAnimationFrame(tick);
    }
    tick();
  }

  function stop(stream) {
    stream.getTracks().forEach(function (track) { track.stop(); });
  }

  function start() {
    if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) { say(script.dataset.noCamera); return; }
    navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" }, audio: false }).then(function (stream) {
      video.srcObject = stream;
      video.hidden = false;
      say(script.dataset.scanning);
      return video.play().then(function () {
        var native = "BarcodeDetector" in window;
        if (native) {
          window.BarcodeDetector.getSupportedFormats().then(function (formats) {
            if (formats.indexOf("qr_code") >= 0) { detectorLoop(stream); } else { jsqrLoop(stream); }
          }).catch(function () { jsqrLoop(stream); });
        } else {
          jsqrLoop(stream);
        }
      });
    }).catch(function () { say(script.dataset.noCamera); });
  }

  button.addEventListener("click", start);
  // Keep scanning after each result when the page was opened for scanning.
  if (sessionStorage.getItem("yuyue-scan") === "1") { start(); }
  button.addEventListener("click", function () { sessionStorage.setItem("yuyue-scan", "1"); });
  form.addEventListener("submit", function (event) {
    if (event.submitter && event.submitter.type === "submit" && !video.srcObject) { sessionStorage.removeItem("yuyue-scan"); }
  });
})();
