// The form's live preview of the adjustments: the picked photo drawn on a canvas (at most 480 px
// on its longer side) with the worker's steps, in the worker's order and with Pillow's arithmetic
// (images/adjustments.py), so that the preview is what the model is given. Where the canvas
// cannot be read, the plain photo stays; without this script the form posts the same fields.
(function () {
  "use strict";
  var preview = document.getElementById("preview");
  var canvas = document.getElementById("adjusted-preview");
  var rotate = document.getElementById("rotate");
  var flip = document.getElementById("flip");
  var reset = document.getElementById("reset-adjustments");
  var FACTORS = ["brightness", "contrast", "color", "sharpness"];
  var ROTATIONS = { 0: true, 90: true, 180: true, 270: true };
  var MAX_SIDE = 480;
  var inputs = {};
  var outputs = {};
  var controls = [rotate, flip];
  var present = preview && canvas && canvas.getContext && rotate && flip && reset;
  FACTORS.forEach(function (name) {
    inputs[name] = document.getElementById(name);
    outputs[name] = document.getElementById(name + "-value");
    controls.push(inputs[name]);
    present = present && inputs[name] && outputs[name];
  });
  if (!present) return;
  var source = null; // the picture's pixels as drawn, before any adjustment
  var pending = false;

  // As the server: factors kept to two decimals, a rotation it accepts, else none.
  function settings() {
    var values = { rotate: ROTATIONS[rotate.value] ? Number(rotate.value) : 0, flip: flip.checked };
    FACTORS.forEach(function (name) {
      var factor = Number(inputs[name].value);
      values[name] = isFinite(factor) ? Math.round(Math.min(2, Math.max(0, factor)) * 100) / 100 : 1;
    });
    return values;
  }

  function describe(values) {
    var words = ["Preview of the photo"];
    FACTORS.forEach(function (name) {
      if (values[name] !== 1) words.push(name + " " + values[name].toFixed(2));
    });
    if (values.rotate) words.push("rotated " + values.rotate + " degrees clockwise");
    if (values.flip) words.push("mirrored");
    return words.join(", ");
  }

  // The picture turned `degrees` clockwise, then mirrored left-right if `mirror`: each output
  // pixel fetched from where it came from, alpha made opaque.
  function turned(image, degrees, mirror) {
    var width = image.width;
    var height = image.height;
    var from = image.data;
    var sideways = degrees === 90 || degrees === 270;
    var outWidth = sideways ? height : width;
    var outHeight = sideways ? width : height;
    var out = new Uint8Array(outWidth * outHeight * 4);
    for (var y = 0; y < outHeight; y++) {
      for (var x = 0; x < outWidth; x++) {
        var u = mirror ? outWidth - 1 - x : x; // the column in the turned picture
        var sx = u;
        var sy = y;
        if (degrees === 90) {
          sx = y;
          sy = height - 1 - u;
        } else if (degrees === 180) {
          sx = width - 1 - u;
          sy = height - 1 - y;
        } else if (degrees === 270) {
          sx = width - 1 - y;
          sy = u;
        }
        var i = (sy * width + sx) * 4;
        var o = (y * outWidth + x) * 4;
        out[o] = from[i];
        out[o + 1] = from[i + 1];
        out[o + 2] = from[i + 2];
        out[o + 3] = 255;
      }
    }
    return { width: outWidth, height: outHeight, data: out };
  }

  // Image.blend(degenerate, image, factor) for every pair of 8-bit values: Pillow computes
  // degenerate + factor * (image - degenerate) in single precision (Math.fround), then truncates
  // and clips. Single precision matters: 0.7 * 10 is 7 there, 6.99... in double.
  function blendTable(factor) {
    var f = Math.fround(factor);
    var table = new Uint8Array(65536);
    for (var d = 0; d < 256; d++) {
      for (var v = 0; v < 256; v++) {
        var value = Math.fround(d + Math.fround(f * (v - d)));
        table[(d << 8) | v] = value <= 0 ? 0 : value >= 255 ? 255 : Math.floor(value);
      }
    }
    return table;
  }

  function blend(pixels, degenerate, factor) {
    var table = blendTable(factor);
    for (var i = 0; i < pixels.length; i += 4) {
      pixels[i] = table[(degenerate[i] << 8) | pixels[i]];
      pixels[i + 1] = table[(degenerate[i + 1] << 8) | pixels[i + 1]];
      pixels[i + 2] = table[(degenerate[i + 2] << 8) | pixels[i + 2]];
    }
  }

  // Pillow's RGB -> L: ITU-R 601-2 luma in 16-bit fixed point, rounded.
  function luma(pixels, i) {
    return (pixels[i] * 19595 + pixels[i + 1] * 38470 + pixels[i + 2] * 7471 + 0x8000) >> 16;
  }

  function grey(pixels) {
    var out = new Uint8Array(pixels.length);
    for (var i = 0; i < pixels.length; i += 4) {
      out[i] = out[i + 1] = out[i + 2] = luma(pixels, i);
    }
    return out;
  }

  // Contrast's degenerate: one grey, ImageStat's mean of the L picture rounded half up.
  function meanGrey(pixels) {
    var sum = 0;
    for (var i = 0; i < pixels.length; i += 4) sum += luma(pixels, i);
    var level = Math.floor(sum / (pixels.length / 4) + 0.5);
    var out = new Uint8Array(pixels.length);
    for (var j = 0; j < pixels.length; j += 4) out[j] = out[j + 1] = out[j + 2] = level;
    return out;
  }

  // ImageFilter.SMOOTH: weights 1 around a centre of 5, over 13. Pillow's 3x3 filter leaves the
  // outermost rows and columns as they are, adds 0.5 and truncates; a sum of whole numbers over 13
  // never lands near a half, so whole-number arithmetic gives its single-precision result.
  function smoothed(pixels, width, height) {
    var out = new Uint8Array(pixels);
    var row = width * 4;
    for (var y = 1; y < height - 1; y++) {
      for (var x = 1; x < width - 1; x++) {
        for (var c = 0; c < 3; c++) {
          var i = y * row + x * 4 + c;
          var sum =
            pixels[i - row - 4] + pixels[i - row] + pixels[i - row + 4] +
            pixels[i - 4] + 5 * pixels[i] + pixels[i + 4] +
            pixels[i + row - 4] + pixels[i + row] + pixels[i + row + 4];
          out[i] = Math.floor((2 * sum + 13) / 26);
        }
      }
    }
    return out;
  }

  function adjusted(values) {
    var picture = turned(source, values.rotate, values.flip);
    var pixels = picture.data;
    var degenerates = {
      brightness: function () {
        return new Uint8Array(pixels.length);
      },
      contrast: function () {
        return meanGrey(pixels);
      },
      color: function () {
        return grey(pixels);
      },
      sharpness: function () {
        return smoothed(pixels, picture.width, picture.height);
      }
    };
    // Each enhancer works on the previous one's result, as ImageEnhance does in the worker.
    FACTORS.forEach(function (name) {
      if (values[name] !== 1) blend(pixels, degenerates[name](), values[name]);
    });
    return picture;
  }

  // Whatever went wrong (a tainted canvas, memory), the photo is still worth showing unadjusted.
  function fallBack() {
    source = null;
    canvas.hidden = true;
    preview.hidden = false;
  }

  // The picture at its drawn size, on white as the decoder lays transparency; null when there is
  // none, or when the browser refuses to read it back (a picture from another site).
  function capture() {
    source = null;
    if (!preview.getAttribute("src") || !preview.complete || !preview.naturalWidth) return;
    var scale = Math.min(1, MAX_SIDE / Math.max(preview.naturalWidth, preview.naturalHeight));
    var work = document.createElement("canvas");
    work.width = Math.max(1, Math.round(preview.naturalWidth * scale));
    work.height = Math.max(1, Math.round(preview.naturalHeight * scale));
    var context = work.getContext("2d");
    try {
      context.fillStyle = "#fff";
      context.fillRect(0, 0, work.width, work.height);
      context.imageSmoothingQuality = "high";
      context.drawImage(preview, 0, 0, work.width, work.height);
      source = context.getImageData(0, 0, work.width, work.height);
    } catch (error) {
      fallBack();
    }
  }

  function draw() {
    pending = false;
    var values = settings();
    FACTORS.forEach(function (name) {
      outputs[name].textContent = values[name].toFixed(2);
    });
    if (!source) {
      canvas.hidden = true;
      return;
    }
    try {
      var picture = adjusted(values);
      canvas.width = picture.width;
      canvas.height = picture.height;
      var context = canvas.getContext("2d");
      var image = context.createImageData(picture.width, picture.height);
      image.data.set(picture.data);
      context.putImageData(image, 0, 0);
    } catch (error) {
      fallBack();
      return;
    }
    canvas.setAttribute("aria-label", describe(values));
    canvas.hidden = false;
    preview.hidden = true;
  }

  function schedule() {
    if (pending) return;
    pending = true;
    window.requestAnimationFrame(draw);
  }

  // A new picture (form.js sets or removes the src) is read again once it has loaded; until then,
  // or when it has none or fails, the canvas is hidden.
  function take() {
    capture();
    if (!source) canvas.hidden = true;
    schedule();
  }

  preview.addEventListener("load", take);
  preview.addEventListener("error", take);
  new MutationObserver(take).observe(preview, { attributes: true, attributeFilter: ["src"] });
  controls.forEach(function (control) {
    control.addEventListener("input", schedule);
    control.addEventListener("change", schedule);
  });
  reset.addEventListener("click", function () {
    FACTORS.forEach(function (name) {
      inputs[name].value = "1";
    });
    rotate.value = "0";
    flip.checked = false;
    schedule();
  });

  take();
})();
